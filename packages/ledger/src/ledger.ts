import type { LedgerEvent, VersionVector } from '@hermes-mesh/protocol';
import {
  type ActionQuery,
  type FoldImage,
  type GoalQuery,
  LedgerCore,
  type RejectedEvent,
  type SeqConflict,
} from './core.js';
import { checkEnvelope, checkSemantics, type EventInput } from './events.js';
import type { Action, Goal, LogEntry, NodeRecord } from './fold.js';
import type { SearchHit } from './search.js';
import {
  type BatchOp,
  checkFormatMarker,
  type Db,
  decodeSegment,
  encodeEvent,
  GroupCommit,
  LedgerOpenError,
  openDatabase,
  readAllSegments,
  readSnapshot,
  snapshotOps,
} from './storage.js';
import { type EventPage, eventsMissingFrom, type PageLimits } from './sync.js';

export interface LedgerInit {
  /** Directory of the LevelDB database; created when missing. */
  path: string;
  /** This node's id: the origin of every event it appends. */
  origin: string;
  /** fsync every batch: an acknowledged append then survives power loss, not only a killed process. */
  sync?: boolean;
  /** Write a snapshot of the fold after this many new events (default 100 000; 0 turns snapshots off). */
  snapshotEvery?: number;
  /** Clock for event timestamps (ms). The fold never reads a clock; only appends do, through this. */
  now?: () => number;
}

export type AppendResult =
  | {
      ok: true;
      event: LedgerEvent;
      position: number;
      /** Set when the fold recorded the event as rejected (illegal transition, stale epoch, not allowed, ...). */
      rejected?: string;
    }
  | { ok: false; error: string };

export interface IngestReport {
  /** Events new to this replica, now folded and durable (including held ones they released). */
  accepted: number;
  duplicates: number;
  /** Events parked behind a gap in their origin's seq. */
  held: number;
  invalid: Array<{ reason: string }>;
  conflicts: SeqConflict[];
}

/** One event at its local ingest position, as subscribers see it. */
export interface LedgerEntry {
  position: number;
  event: LedgerEvent;
}

export type Listener = (entries: LedgerEntry[]) => void;

export interface OpenStats {
  events: number;
  /** Position of the snapshot used; 0 when the fold was rebuilt from the whole log. */
  snapshotPosition: number;
  /** Why a stored snapshot was not used, when it was not. */
  snapshotIgnored?: string;
  ms: number;
}

export interface AppendOptions {
  shareTick?: boolean;
}

export interface Ledger {
  readonly origin: string;
  readonly openStats: OpenStats;
  append(input: EventInput): Promise<AppendResult>;
  /**
   * Appends several events in one batch; results in input order. They are folded before this returns. The
   * write starts at once unless `shareTick` is set: then it starts on the next turn of the event loop, and what
   * else is appended in this turn (decisions taken on what was just folded) shares the one disk write.
   */
  appendMany(inputs: readonly EventInput[], options?: AppendOptions): Promise<AppendResult[]>;
  /** Takes events from other replicas (any order, duplicates fine). Resolves once the new ones are durable. */
  ingest(events: readonly unknown[]): Promise<IngestReport>;
  goal(id: string): Goal | undefined;
  goals(query?: GoalQuery): Goal[];
  action(id: string): Action | undefined;
  actions(query?: ActionQuery): Action[];
  node(id: string): NodeRecord | undefined;
  nodes(): NodeRecord[];
  /** An action's own events in replay order (the fold's view), with the reason for any it rejected. */
  history(actionId: string): Array<{ event: LedgerEvent; rejected?: string }>;
  rejections(filter?: { goalId?: string; actionId?: string }): RejectedEvent[];
  conflicts(): readonly SeqConflict[];
  /** Origins with events waiting behind a gap. */
  gaps(): Array<{ origin: string; have: number; heldFrom: number; held: number }>;
  versionVector(): VersionVector;
  /** Durable events the holder of `have` lacks, one page. */
  eventsSince(have: VersionVector, limit: number, maxBytes?: number): EventPage;
  /** Highest durable local position. */
  position(): number;
  /**
   * Calls `listener` with every durable entry after `fromPosition`, in position order with none skipped or
   * repeated: first the backlog, then live. Returns the unsubscribe function.
   */
  subscribe(fromPosition: number, listener: Listener): () => void;
  search(query: string, limit?: number): SearchHit[];
  stateHash(): string;
  counts(): ReturnType<LedgerCore['counts']>;
  close(): Promise<void>;
}

const DELIVERY_CHUNK = 1000;
const DEFAULT_SNAPSHOT_EVERY = 100_000;

/** Opens (or creates) a ledger: checks the format marker, loads the log and snapshot, rebuilds the fold. */
export async function openLedger(init: LedgerInit): Promise<Ledger> {
  const started = performance.now();
  const db = await openDatabase(init.path);
  try {
    await checkFormatMarker(db, init.path);
    const { core, ...snapshot } = await load(db, init.path);
    const openStats = { events: core.position, ...snapshot, ms: performance.now() - started };
    return new LevelLedger(db, core, init, openStats);
  } catch (err) {
    await db.close().catch(() => {});
    throw err;
  }
}

/**
 * Loads the log and the fold. With a usable snapshot, the events it covers are placed in their logs without
 * being decoded (the snapshot says where each lies and whose it is) and the fold is restored from it; only the
 * events after it are decoded and folded. Otherwise, or when the snapshot does not fit the log, the whole log
 * is replayed.
 */
async function load(db: Db, path: string): Promise<Omit<OpenStats, 'events' | 'ms'> & { core: LedgerCore }> {
  const [snapshot, segments] = await Promise.all([readSnapshot(db), readAllSegments(db)]);
  let snapshotIgnored = snapshot && 'error' in snapshot ? snapshot.error : undefined;
  if (snapshot && 'image' in snapshot) {
    const core = new LedgerCore();
    core.deferIndexes();
    snapshotIgnored = restoreFromSnapshot(core, snapshot.image, snapshot.meta.position, segments, path);
    if (snapshotIgnored === undefined) return { core, snapshotPosition: snapshot.meta.position };
  }
  const core = new LedgerCore();
  core.deferIndexes();
  for (const [first, segment] of segments) restoreSegment(core, first, segment, path);
  for (const entry of core.byPosition) core.foldEntry(entry);
  return snapshotIgnored === undefined ? { core, snapshotPosition: 0 } : { core, snapshotPosition: 0, snapshotIgnored };
}

/** Where the events a snapshot covers lie in the stored log: whose each is and its encoded size. */
interface LogLayout {
  /** Origins in order of first appearance. */
  origins: string[];
  /** Runs of consecutive positions of one origin: [origin index, count, origin index, count, ...]. */
  runs: number[];
  /** Encoded size of the event at each position, u32 little-endian. */
  sizes: Uint8Array;
}

/** The snapshot image: the fold, the version vector, the Lamport clock and the log layout, all at one position. */
interface SnapshotImage {
  layout: typeof SNAPSHOT_LAYOUT;
  vector: VersionVector;
  clock: number;
  log: LogLayout;
  fold: FoldImage;
}

const SNAPSHOT_LAYOUT = 2;

function snapshotImage(core: LedgerCore): SnapshotImage {
  const origins: string[] = [];
  const index = new Map<string, number>();
  const runs: number[] = [];
  const sizes = Buffer.allocUnsafe(core.position * 4);
  let last = -1;
  for (const entry of core.byPosition) {
    let i = index.get(entry.origin);
    if (i === undefined) {
      i = origins.length;
      origins.push(entry.origin);
      index.set(entry.origin, i);
    }
    if (i === last) runs[runs.length - 1]!++;
    else runs.push(i, 1);
    last = i;
    sizes.writeUInt32LE(entry.size, (entry.position - 1) * 4);
  }
  const log = { origins, runs, sizes };
  return { layout: SNAPSHOT_LAYOUT, vector: core.versionVector(), clock: core.clock, log, fold: core.foldImage() };
}

/**
 * Restores `core` from a snapshot at `position` and the stored segments; returns why the snapshot could not be
 * used (then `core` is half-built and must be dropped), or undefined when it was.
 */
function restoreFromSnapshot(
  core: LedgerCore,
  raw: unknown,
  position: number,
  segments: ReadonlyArray<[number, Buffer]>,
  path: string,
): string | undefined {
  const image = raw as Partial<SnapshotImage> | undefined;
  if (image?.layout !== SNAPSHOT_LAYOUT) return 'snapshot of an older layout';
  const { vector, fold, log, clock } = image;
  if (!vector || !fold || !log || typeof clock !== 'number' || fold.position !== position) {
    return 'snapshot image malformed';
  }
  const { origins, runs, sizes } = log;
  if (!Array.isArray(origins) || !Array.isArray(runs) || !(sizes instanceof Uint8Array)) {
    return 'snapshot image malformed';
  }
  if (sizes.length !== position * 4) return 'snapshot image malformed';
  const sizeOf = Buffer.from(sizes.buffer, sizes.byteOffset, sizes.byteLength);
  try {
    // Place the covered events: walk the runs of origins and the sizes through the segments, checking that
    // every covered segment is filled exactly and spot-checking one decoded event per segment.
    let run = 0;
    let left = 0;
    let origin = '';
    let covered = 0;
    for (const [first, segment] of segments) {
      if (first > position) {
        restoreSegment(core, first, segment, path);
        continue;
      }
      if (first !== core.position + 1) return 'snapshot does not match the log';
      let offset = 0;
      while (core.position < position && offset < segment.length) {
        if (left === 0) {
          origin = origins[runs[run]!]!;
          left = runs[run + 1]!;
          run += 2;
          if (typeof origin !== 'string' || !(left > 0)) return 'snapshot image malformed';
        }
        const size = sizeOf.readUInt32LE(core.position * 4);
        if (size === 0 || offset + size > segment.length) return 'snapshot does not match the log';
        core.appendStored(origin, size, segment, offset);
        offset += size;
        left--;
      }
      // Reads the segment's first event: its bytes must decode to the origin and seq the snapshot gives it.
      void core.byPosition[first - 1]!.event;
      covered = core.position;
      if (offset < segment.length) {
        if (core.position !== position) return 'snapshot does not match the log';
        restoreSegment(core, position + 1, segment.subarray(offset), path);
      }
    }
    if (covered !== position || left !== 0 || run !== runs.length) return 'snapshot does not match the log';
    if (!sameVector(vectorAt(core, position), vector)) return 'snapshot does not match the log';
    const last = core.byPosition[position - 1];
    if (last && last.event.lamport > clock) return 'snapshot does not match the log';
    if (clock > core.clock) core.clock = clock;
    core.restoreFold(fold);
  } catch (err) {
    return `snapshot unusable: ${(err as Error).message}`;
  }
  for (let i = position; i < core.byPosition.length; i++) core.foldEntry(core.byPosition[i]!);
  return undefined;
}

/** The version vector of the first `position` entries. */
function vectorAt(core: LedgerCore, position: number): VersionVector {
  const vector = core.versionVector();
  for (let i = position; i < core.byPosition.length; i++) vector[core.byPosition[i]!.origin]!--;
  for (const origin of Object.keys(vector)) if (vector[origin] === 0) delete vector[origin];
  return vector;
}

function restoreSegment(core: LedgerCore, first: number, segment: Buffer, path: string): void {
  const corrupt = (position: number, why: string) =>
    new LedgerOpenError('corrupt', `${path}: stored event at position ${position} ${why}; restore from a replica`);
  if (first !== core.position + 1) throw corrupt(first, `follows position ${core.position}`);
  try {
    decodeSegment(segment, (value, size) => {
      const checked = checkEnvelope(value);
      if (!checked.ok) throw corrupt(core.position + 1, `is not an event (${checked.reason})`);
      if (checked.value.seq !== core.seqOf(checked.value.origin) + 1) {
        throw corrupt(core.position + 1, 'breaks its origin sequence');
      }
      core.appendEntry(checked.value, size);
    });
  } catch (err) {
    if (err instanceof LedgerOpenError) throw err;
    throw corrupt(core.position + 1, `cannot be decoded (${(err as Error).message})`);
  }
}

function sameVector(a: VersionVector, b: VersionVector): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => a[k] === b[k]);
}

/**
 * Copies only the fields of a LedgerEvent: a peer's extra fields are neither stored nor passed on. The usual
 * combinations of fields are built as one literal each, so the event holds all its fields in the object itself.
 */
function normalizeEvent(
  fields: Omit<LedgerEvent, 'origin' | 'seq' | 'lamport' | 'ts'>,
  origin: string,
  seq: number,
  lamport: number,
  ts: number,
): LedgerEvent {
  const { type, goalId, actionId, epoch, state, data } = fields;
  if (data !== undefined) {
    if (goalId !== undefined && actionId !== undefined) {
      if (epoch !== undefined) {
        if (state !== undefined) return { origin, seq, lamport, ts, type, goalId, actionId, epoch, state, data };
        return { origin, seq, lamport, ts, type, goalId, actionId, epoch, data };
      }
      if (state === undefined) return { origin, seq, lamport, ts, type, goalId, actionId, data };
    } else if (actionId === undefined && epoch === undefined && state === undefined) {
      if (goalId !== undefined) return { origin, seq, lamport, ts, type, goalId, data };
      return { origin, seq, lamport, ts, type, data };
    }
  }
  const out: LedgerEvent = { origin, seq, lamport, ts, type };
  if (goalId !== undefined) out.goalId = goalId;
  if (actionId !== undefined) out.actionId = actionId;
  if (epoch !== undefined) out.epoch = epoch;
  if (state !== undefined) out.state = state;
  if (data !== undefined) out.data = data;
  return out;
}

interface Subscription {
  cursor: number;
  listener: Listener;
  active: boolean;
  pumping: boolean;
}

class LevelLedger implements Ledger {
  private readonly committer: GroupCommit;
  private readonly now: () => number;
  private readonly snapshotEvery: number;
  private durable: number;
  private lastSnapshot: { position: number; parts: number } | undefined;
  private readonly subscriptions = new Set<Subscription>();
  private closed = false;

  constructor(
    private readonly db: Db,
    private readonly core: LedgerCore,
    private readonly init: LedgerInit,
    readonly openStats: OpenStats,
  ) {
    this.now = init.now ?? Date.now;
    this.snapshotEvery = init.snapshotEvery ?? DEFAULT_SNAPSHOT_EVERY;
    this.durable = core.position;
    this.committer = new GroupCommit(db, init.sync ?? false, (mark) => this.onWritten(mark));
  }

  get origin(): string {
    return this.init.origin;
  }

  append(input: EventInput): Promise<AppendResult> {
    // Not appendMany([input]): a tick of single appends shares one batch, and each costs little more than its
    // event (one promise per call, chained to the batch's shared one).
    try {
      const unusable = this.unusable();
      if (unusable) return Promise.resolve({ ok: false, error: unusable });
      this.committer.expect(1);
      const result = this.appendOne(input);
      if (!result.ok) return Promise.resolve(result);
      const written = this.write();
      // A full segment goes to disk at once, between two calls (never splitting one): LevelDB writes it while the
      // rest of the tick's appends are made.
      if (this.committer.hasFullSegment()) this.committer.flushNow();
      return written.then((error) => (error === undefined ? result : { ok: false, error: error.message }));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  appendMany(inputs: readonly EventInput[], options?: AppendOptions): Promise<AppendResult[]> {
    try {
      const unusable = this.unusable();
      if (unusable) return Promise.resolve(inputs.map(() => ({ ok: false, error: unusable })));
      this.committer.expect(inputs.length);
      if (inputs.length > 1 && !this.core.hasHeld(this.init.origin)) {
        return this.appendBatch(inputs, options?.shareTick === true);
      }
      const results: AppendResult[] = [];
      let appended = false;
      for (const input of inputs) {
        const result = this.appendOne(input);
        if (result.ok) appended = true;
        results.push(result);
      }
      if (!appended) return Promise.resolve(results);
      return this.write().then((error) =>
        error === undefined ? results : results.map((r) => (r.ok ? { ok: false, error: error.message } : r)),
      );
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Several events of our own, with none of our origin held behind a gap: each is checked and encoded into its
   * segment first, then the whole batch goes to LevelDB at once (unless another write is on its way) and is
   * folded while LevelDB writes it. With nothing of our origin held, the k-th valid event is exactly what
   * appending one at a time gives it: seq s + k, Lamport clock c + k. It is acknowledged once written, as ever.
   */
  private appendBatch(inputs: readonly EventInput[], shareTick: boolean): Promise<AppendResult[]> {
    const core = this.core;
    const committer = this.committer;
    const origin = this.init.origin;
    const results: Array<AppendResult | undefined> = [];
    const events: LedgerEvent[] = [];
    const sizes: number[] = [];
    const slots: number[] = [];
    let seq = core.seqOf(origin);
    let lamport = core.clock;
    let position = core.position;
    for (const input of inputs) {
      const event = normalizeEvent(input, origin, seq + 1, lamport + 1, this.now());
      const envelope = checkEnvelope(event);
      if (!envelope.ok) {
        results.push({ ok: false, error: envelope.reason });
        continue;
      }
      const invalid = checkSemantics(event);
      if (invalid !== undefined) {
        results.push({ ok: false, error: invalid });
        continue;
      }
      sizes.push(committer.stage(++position, event));
      committer.queueStaged();
      seq++;
      lamport++;
      events.push(event);
      slots.push(results.length);
      results.push(undefined);
    }
    if (events.length === 0) return Promise.resolve(results as AppendResult[]);
    // This call's events are all queued: its batch may start (a batch never holds part of a call).
    const written = committer.write();
    if (!shareTick) committer.flushNow();
    for (let k = 0; k < events.length; k++) {
      const event = events[k]!;
      const entry = core.acceptNext(event, sizes[k]!, true);
      const rejected = core.rejectionOf(entry);
      results[slots[k]!] =
        rejected === undefined
          ? { ok: true, event, position: entry.position }
          : { ok: true, event, position: entry.position, rejected };
    }
    // A snapshot due now covers this batch: it goes behind it, in the next one.
    const snapshot = this.maybeSnapshot();
    if (snapshot) void committer.write(snapshot);
    return written.then((error) =>
      error === undefined
        ? (results as AppendResult[])
        : (results as AppendResult[]).map((r) => (r.ok ? { ok: false, error: error.message } : r)),
    );
  }

  private appendOne(input: EventInput): AppendResult {
    const core = this.core;
    const origin = this.init.origin;
    const event = normalizeEvent(input, origin, core.seqOf(origin) + 1, core.clock + 1, this.now());
    const envelope = checkEnvelope(event);
    if (!envelope.ok) return { ok: false, error: envelope.reason };
    const invalid = checkSemantics(event);
    if (invalid !== undefined) return { ok: false, error: invalid };
    let entry: LogEntry;
    if (core.hasHeld(origin)) {
      // Events of our own origin parked behind a gap (a replica handed back our older events): the general path.
      const bytes = encodeEvent(event);
      const outcome = core.accept(event, bytes);
      if (outcome.kind !== 'applied') return { ok: false, error: `seq ${event.seq} already used (${outcome.kind})` };
      for (const applied of outcome.entries) this.committer.queueEncoded(applied.entry.position, applied.bytes);
      entry = outcome.entries[0]!.entry;
    } else {
      // The event is encoded once, straight into the segment it is stored in; the fold trusts the check above.
      const size = this.committer.stage(core.position + 1, event);
      entry = core.acceptNext(event, size, true);
      this.committer.queueStaged();
    }
    const rejected = core.rejectionOf(entry);
    return rejected === undefined
      ? { ok: true, event, position: entry.position }
      : { ok: true, event, position: entry.position, rejected };
  }

  async ingest(events: readonly unknown[]): Promise<IngestReport> {
    const report: IngestReport = { accepted: 0, duplicates: 0, held: 0, invalid: [], conflicts: [] };
    const unusable = this.unusable();
    if (unusable) {
      report.invalid = events.map(() => ({ reason: unusable }));
      return report;
    }
    this.committer.expect(events.length);
    for (const raw of events) this.ingestOne(raw, report);
    if (report.accepted > 0) await this.write();
    return report;
  }

  private ingestOne(raw: unknown, report: IngestReport): void {
    const checked = checkEnvelope(raw);
    if (!checked.ok) {
      report.invalid.push({ reason: checked.reason });
      return;
    }
    const { origin, seq, lamport, ts } = checked.value;
    const event = normalizeEvent(checked.value, origin, seq, lamport, ts);
    const core = this.core;
    if (seq === core.seqOf(origin) + 1 && !core.hasHeld(origin)) {
      const size = this.committer.stage(core.position + 1, event);
      core.acceptNext(event, size, false);
      this.committer.queueStaged();
      report.accepted++;
      return;
    }
    const bytes = encodeEvent(event);
    const outcome = core.accept(event, bytes);
    switch (outcome.kind) {
      case 'applied':
        report.accepted += outcome.entries.length;
        for (const applied of outcome.entries) this.committer.queueEncoded(applied.entry.position, applied.bytes);
        return;
      case 'duplicate':
        report.duplicates++;
        return;
      case 'held':
        report.held++;
        return;
      case 'conflict':
        report.conflicts.push(outcome.conflict);
    }
  }

  /**
   * Queues a snapshot when one is due behind the queued events. The promise is the batch's, shared by every
   * caller: it resolves once all is written, to undefined, or to the error that stopped the write.
   */
  private write(): Promise<Error | undefined> {
    return this.committer.write(this.maybeSnapshot());
  }

  private unusable(): string | undefined {
    if (this.closed) return 'ledger is closed';
    return this.committer.failed?.message;
  }

  /** The operations of a snapshot when one is due, queued behind the events it covers (never ahead on disk). */
  private maybeSnapshot(): BatchOp[] | undefined {
    if (this.snapshotEvery <= 0) return undefined;
    const position = this.core.position;
    if (position - (this.lastSnapshot?.position ?? this.openStats.snapshotPosition) < this.snapshotEvery) {
      return undefined;
    }
    const snapshot = snapshotOps(snapshotImage(this.core), position, this.lastSnapshot);
    const parts = snapshot.filter((op) => op.type === 'put').length - 1;
    this.lastSnapshot = { position, parts };
    return snapshot;
  }

  private onWritten(mark: number): void {
    // Batches are written in order, so every position up to the batch's mark is now durable.
    if (mark <= this.durable) return;
    this.durable = mark;
    for (const sub of this.subscriptions) this.pump(sub);
  }

  goal(id: string) {
    return this.core.goal(id);
  }
  goals(query?: GoalQuery) {
    return this.core.goalsMatching(query);
  }
  action(id: string) {
    return this.core.action(id);
  }
  actions(query?: ActionQuery) {
    return this.core.actionsMatching(query);
  }
  node(id: string) {
    return this.core.node(id);
  }
  nodes() {
    return this.core.nodeList();
  }
  history(actionId: string) {
    return this.core.history(actionId);
  }

  rejections(filter?: { goalId?: string; actionId?: string }) {
    return this.core.rejections(filter);
  }
  conflicts() {
    return this.core.conflicts();
  }
  gaps() {
    return this.core.gaps();
  }
  versionVector() {
    return this.core.versionVector();
  }
  position() {
    return this.durable;
  }
  search(query: string, limit?: number) {
    return this.core.search(query, limit);
  }
  stateHash() {
    return this.core.stateHash();
  }
  counts() {
    return this.core.counts();
  }

  eventsSince(have: VersionVector, limit: number, maxBytes?: number): EventPage {
    const limits: PageLimits = { limit, maxPosition: this.durable };
    if (maxBytes !== undefined) limits.maxBytes = maxBytes;
    return eventsMissingFrom(this.core.logs, have, limits);
  }

  subscribe(fromPosition: number, listener: Listener): () => void {
    const sub: Subscription = { cursor: Math.max(0, fromPosition), listener, active: true, pumping: false };
    this.subscriptions.add(sub);
    setImmediate(() => this.pump(sub));
    return () => {
      sub.active = false;
      this.subscriptions.delete(sub);
    };
  }

  /** Delivers a subscriber's backlog in chunks, yielding between them so a long backlog never stalls the node. */
  private pump(sub: Subscription): void {
    if (!sub.active || sub.pumping || sub.cursor >= this.durable) return;
    sub.pumping = true;
    const end = Math.min(this.durable, sub.cursor + DELIVERY_CHUNK);
    const entries = this.core.byPosition.slice(sub.cursor, end).map(toLedgerEntry);
    sub.cursor = end;
    try {
      sub.listener(entries);
    } catch {
      // A failing subscriber must not break the ledger or other subscribers; it still gets later entries.
    }
    sub.pumping = false;
    if (sub.cursor < this.durable) setImmediate(() => this.pump(sub));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const sub of this.subscriptions) sub.active = false;
    this.subscriptions.clear();
    await this.committer.drain();
    await this.db.close();
  }
}

function toLedgerEntry(entry: LogEntry): LedgerEntry {
  return { position: entry.position, event: entry.event };
}
