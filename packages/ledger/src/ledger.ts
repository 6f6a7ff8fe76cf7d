import type { LedgerEvent, VersionVector } from '@hermes-mesh/protocol';
import { packActionEvents } from './batching.js';
import {
  type ActionQuery,
  type GoalQuery,
  type GoalRefsImage,
  LedgerCore,
  type RejectedEvent,
  type RestoredEntities,
  type SeqConflict,
} from './core.js';
import { batchItems, checkEnvelope, checkSemantics, type EventInput, isBatchType } from './events.js';
import type { Action, Goal, LogEntry, NodeRecord } from './fold.js';
import { RestoredKind, RestoredLog, u32Array, u32Bytes, viewPackr } from './restored.js';
import type { SearchHit } from './search.js';
import {
  type BatchOp,
  checkFormatMarker,
  type Db,
  decodeSegment,
  encodeEvent,
  eventKey,
  eventPackr,
  GroupCommit,
  LedgerOpenError,
  ledgerIdOf,
  legacySnapshotOps,
  openDatabase,
  positionOfKey,
  readAllSegments,
  readSnapshotFile,
  readStoredSegments,
  snapshotFileBytes,
  writeSnapshotFile,
} from './storage.js';
import { StringCopies } from './strings.js';
import { type EventPage, eventsMissingFrom, type PageLimits } from './sync.js';

/** Stands for the bytes of an event `accept` will not store (its seq is logged already). */
const NOT_ENCODED = new Uint8Array(0);

export interface LedgerInit {
  /** Directory of the LevelDB database; created when missing. */
  path: string;
  /** This node's id: the origin of every event it appends. */
  origin: string;
  /** fsync every batch: an acknowledged append then survives power loss, not only a killed process. */
  sync?: boolean;
  /**
   * Write a snapshot of the fold after this many new events are folded, each item of a batch event counting as
   * one (default 100 000; 0 turns snapshots off), or after as many as the fold holds goals, actions and nodes
   * when that is more (a snapshot writes every one of them: so its cost stays in proportion to the work since the
   * last, however large the ledger grows); also soon after an open that had to fold at least snapshotEvery, and
   * at a clean close when 1% of it came since.
   */
  snapshotEvery?: number;
  /**
   * A due snapshot waits until no write came for this long (default 1000 ms; 0 = take it at once): building one
   * holds the event loop for about a second per million events, which a busy node should not pay mid-burst.
   * Three times as far behind as makes it due, it is taken anyway.
   */
  snapshotQuietMs?: number;
  /** Clock for event timestamps (ms). The fold never reads a clock; only appends do, through this. */
  now?: () => number;
  /** Told about problems the ledger works around (an unusable snapshot, ...); default: process.emitWarning. */
  warn?: (message: string) => void;
}

export type AppendResult =
  | {
      ok: true;
      /** The event as appended (one packed into a batch event: the event its item stands for). */
      event: LedgerEvent;
      /** Set when appendMany packed the input into a batch event: that event, as stored and replicated. */
      stored?: LedgerEvent;
      position: number;
      /** Set when the fold recorded the event as rejected (illegal transition, stale epoch, not allowed, ...). */
      rejected?: string;
    }
  | { ok: false; error: string };

/** What else bounds a page of eventsSince: its encoded bytes, a gap's range (upTo), a local position. */
export type PageBounds = Pick<PageLimits, 'maxBytes' | 'upTo' | 'maxPosition'>;

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
  /** Its encoded size as stored: about what it adds to a message that carries it. */
  size: number;
}

/** Most events one events message (gossip, report) carries, and about the most event bytes (its cap is 1 MiB). */
export const EVENTS_PER_MESSAGE = 500;
export const EVENT_BYTES_PER_MESSAGE = 768 * 1024;

/**
 * Cuts entries into runs of at most `maxCount` entries and about `maxBytes` encoded bytes (one larger entry goes
 * alone): what fits one message. Batch events are large, so a count alone made messages past their cap.
 */
export function chunkEntries<E extends { size: number }>(
  entries: readonly E[],
  maxCount: number,
  maxBytes: number,
): E[][] {
  const chunks: E[][] = [];
  let chunk: E[] = [];
  let bytes = 0;
  for (const entry of entries) {
    if (chunk.length > 0 && (chunk.length >= maxCount || bytes + entry.size > maxBytes)) {
      chunks.push(chunk);
      chunk = [];
      bytes = 0;
    }
    chunk.push(entry);
    bytes += entry.size;
  }
  if (chunk.length > 0) chunks.push(chunk);
  return chunks;
}

export type Listener = (entries: LedgerEntry[]) => void;

export interface OpenStats {
  events: number;
  /** Position of the snapshot used; 0 when the fold was rebuilt from the whole log. */
  snapshotPosition: number;
  /** Why a stored snapshot was not used, when it was not. */
  snapshotIgnored?: string;
  /** Time until the ledger answered (reads); the events under a snapshot may still be read after it. */
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
   * Appends several events in one batch; results in input order. They are folded before this returns (once the
   * ledger has loaded: during loaded() the call waits in line, and nothing is folded yet when it returns). The
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
  /** Whether any origin has events waiting behind a gap (cheaper than gaps()). */
  hasGaps(): boolean;
  versionVector(): VersionVector;
  /** Durable events the holder of `have` lacks, one page of at most `limit` (and `bounds`, see PageBounds). */
  eventsSince(have: VersionVector, limit: number, bounds?: PageBounds): EventPage;
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
  /**
   * Resolves once every stored event can be read. After an open from a snapshot the events it covers are read
   * in the background: until then writes wait for them, sync pages and subscriptions stop short of them, and
   * history() or rejections() that need one throw (saying so).
   */
  loaded(): Promise<void>;
  close(): Promise<void>;
}

const DELIVERY_CHUNK = 1000;
const DEFAULT_SNAPSHOT_EVERY = 100_000;
const DEFAULT_SNAPSHOT_QUIET_MS = 1_000;

/** Opens (or creates) a ledger: checks the format marker, loads the log and snapshot, rebuilds the fold. */
export async function openLedger(init: LedgerInit): Promise<Ledger> {
  const started = performance.now();
  const db = await openDatabase(init.path);
  try {
    await checkFormatMarker(db, init.path);
    const warn = init.warn ?? ((message: string) => process.emitWarning(message, 'LedgerWarning'));
    const ledgerId = await ledgerIdOf(db);
    const legacy = await legacySnapshotOps(db);
    const { core, loading, structures, ...snapshot } = await load(db, init.path, ledgerId, warn);
    const openStats = { events: core.position, ...snapshot, ms: performance.now() - started };
    if (snapshot.snapshotIgnored !== undefined) {
      warn(`${init.path}: snapshot not used (${snapshot.snapshotIgnored}); the fold was rebuilt from the whole log`);
    }
    const stored = { ledgerId, structures, legacy };
    return new LevelLedger(db, core, init, openStats, stored, loading);
  } catch (err) {
    await db.close().catch(() => {});
    throw err;
  }
}

interface Loaded {
  core: LedgerCore;
  snapshotPosition: number;
  snapshotIgnored?: string;
  /** The record definitions of the restored views (a later snapshot copies undecoded views as they are). */
  structures: unknown[];
  /** Reading the segments under the snapshot, when the open left that for after it. */
  loading?: Loader;
}

/**
 * Loads the log and the fold. With a usable snapshot, the fold is restored from it without decoding its views,
 * and the events it covers are not even read: only the segment holding its last event and the ones after it
 * are, and the events after the snapshot are decoded and folded. The covered segments are then read in the
 * background (their events are needed only by sync, histories and re-folds); when the events after the
 * snapshot touch an entity the snapshot holds, they are read before those are folded. Otherwise, or when the
 * snapshot does not fit the log, the whole log is replayed.
 */
async function load(db: Db, path: string, ledgerId: string, warn: (message: string) => void): Promise<Loaded> {
  const snapshot = await readSnapshotFile(path, ledgerId);
  let snapshotIgnored = snapshot && 'error' in snapshot ? snapshot.error : undefined;
  if (snapshot && 'image' in snapshot) {
    const core = new LedgerCore();
    core.deferIndexes();
    const restored = await restoreFromSnapshot(db, core, snapshot.image, snapshot.meta.position, path, warn);
    if (typeof restored !== 'string') {
      return { core, snapshotPosition: snapshot.meta.position, ...restored };
    }
    snapshotIgnored = restored;
  }
  const core = new LedgerCore();
  core.deferIndexes();
  for (const [first, segment] of await readAllSegments(db)) restoreSegment(core, first, segment, path);
  core.foldAfter(0);
  return snapshotIgnored === undefined
    ? { core, snapshotPosition: 0, structures: [] }
    : { core, snapshotPosition: 0, structures: [], snapshotIgnored };
}

/** The snapshot image: the fold, the version vector, the Lamport clock and the log layout, all at one position. */
interface SnapshotImage {
  layout: typeof SNAPSHOT_LAYOUT;
  position: number;
  vector: VersionVector;
  clock: number;
  /** Where the covered events lie: origins in order of first appearance, runs of consecutive positions of one
   * origin ([origin index, count, ...], u32 LE) and the encoded size of each event (u32 LE). */
  origins: string[];
  runs: Uint8Array;
  sizes: Uint8Array;
  /** Record definitions shared by the packed views. */
  structures: unknown[];
  goals: KindImage;
  actions: KindImage;
  nodes: KindImage;
  unroutable: Array<[number, string]>;
  /** The fold's goal references: goal i names the actions actions[start[i]..start[i + 1]) (indices into
   * actions.keys; u32 LE). */
  goalRefs: { goals: string[]; start: Uint8Array; actions: Uint8Array };
}

/** One kind of entity: keys, views packed one by one, the entries' positions; u32 LE tables. */
interface KindImage {
  keys: string[];
  views: Uint8Array;
  viewStart: Uint8Array;
  positions: Uint8Array;
  entryStart: Uint8Array;
  rejected: Array<[number, number, string]>;
}

const SNAPSHOT_LAYOUT = 3;

/** The image at the current position. Views restored and never read since are copied as they are stored, so
 * the record definitions they use (`restoredStructures`) come first, unchanged. */
function snapshotImage(core: LedgerCore, restoredStructures: readonly unknown[]): SnapshotImage {
  const n = core.position;
  const sizes = new Uint32Array(n);
  const runs: number[] = [];
  // The restored events' layout comes straight from their tables (same origin indices).
  const restored = core.restored;
  const origins: string[] = restored ? [...restored.origins] : [];
  const index = new Map<string, number>(origins.map((origin, i) => [origin, i]));
  let last = -1;
  let from = 1;
  if (restored) {
    sizes.set(restored.sizeOf);
    const originOf = restored.originOf;
    for (let i = 0; i < restored.end; i++) {
      const origin = originOf[i]!;
      if (origin === last) runs[runs.length - 1]!++;
      else runs.push(origin, 1);
      last = origin;
    }
    from = restored.end + 1;
  }
  for (let p = from; p <= n; p++) {
    const entry = core.entryAt(p);
    let i = index.get(entry.origin);
    if (i === undefined) {
      i = origins.length;
      origins.push(entry.origin);
      index.set(entry.origin, i);
    }
    if (i === last) runs[runs.length - 1]!++;
    else runs.push(i, 1);
    last = i;
    sizes[p - 1] = entry.size;
  }
  const structures: unknown[] = [...restoredStructures];
  const packr = viewPackr(structures);
  const pack = (view: unknown) => packr.pack(view);
  const kind = (k: 'goal' | 'action' | 'node'): KindImage => {
    const image = core.entitiesImage(k, pack);
    return {
      keys: image.keys,
      views: image.views,
      viewStart: u32Bytes(image.viewStart),
      positions: u32Bytes(image.positions),
      entryStart: u32Bytes(image.entryStart),
      rejected: image.rejected,
    };
  };
  const goals = kind('goal');
  const actions = kind('action');
  const nodes = kind('node');
  return {
    layout: SNAPSHOT_LAYOUT,
    position: n,
    vector: core.versionVector(),
    clock: core.clock,
    origins,
    runs: u32Bytes(runs),
    sizes: u32Bytes(sizes),
    structures: [...structures],
    goals,
    actions,
    nodes,
    unroutable: core.unroutableImage(),
    goalRefs: goalRefsBytes(core.goalRefsImage(actions.keys)),
  };
}

function goalRefsBytes(refs: GoalRefsImage): SnapshotImage['goalRefs'] {
  return { goals: [...refs.goals], start: u32Bytes(refs.start), actions: u32Bytes(refs.actions) };
}

function restoredGoalRefs(image: SnapshotImage['goalRefs'] | undefined): GoalRefsImage | undefined {
  if (!image || !Array.isArray(image.goals) || !image.goals.every((g) => typeof g === 'string')) return undefined;
  const start = u32Array(image.start);
  const actions = u32Array(image.actions);
  return start && actions ? { goals: image.goals, start, actions } : undefined;
}

function restoredKind(image: KindImage | undefined, packr: ReturnType<typeof viewPackr>): RestoredEntities | undefined {
  if (!image || !Array.isArray(image.keys) || !Array.isArray(image.rejected)) return undefined;
  if (!(image.views instanceof Uint8Array)) return undefined;
  const viewStart = u32Array(image.viewStart);
  const positions = u32Array(image.positions);
  const entryStart = u32Array(image.entryStart);
  if (!viewStart || !positions || !entryStart || viewStart.length === 0) return undefined;
  const views = Buffer.from(image.views.buffer, image.views.byteOffset, image.views.byteLength);
  const store = new RestoredKind(views, viewStart, positions, entryStart, packr);
  return { keys: image.keys, store, rejected: image.rejected };
}

/** Reads the covered segments the open did not, placing their bytes; `done` settles once all are read. */
interface Loader {
  done: Promise<void>;
  stop(): void;
}

/**
 * Restores `core` from a snapshot at `position`, reading only the stored segment that holds the event at
 * `position` and those after it. Returns why the snapshot could not be used (then `core` is half-built and must
 * be dropped), or how the rest of the covered segments will be read.
 */
async function restoreFromSnapshot(
  db: Db,
  core: LedgerCore,
  raw: unknown,
  position: number,
  path: string,
  warn: (message: string) => void,
): Promise<{ loading?: Loader; structures: unknown[] } | string> {
  const image = raw as Partial<SnapshotImage> | undefined;
  if (image?.layout !== SNAPSHOT_LAYOUT) return 'snapshot of another layout';
  const { vector, clock, origins } = image;
  if (!vector || typeof clock !== 'number' || image.position !== position || !Array.isArray(origins)) {
    return 'snapshot image malformed';
  }
  const runs = u32Array(image.runs);
  const sizes = u32Array(image.sizes);
  const goalRefs = restoredGoalRefs(image.goalRefs);
  if (!runs || !sizes || !Array.isArray(image.structures) || !goalRefs) {
    return 'snapshot image malformed';
  }
  const restored = RestoredLog.fromLayout(position, origins, runs, sizes);
  if (typeof restored === 'string') return restored;
  const packr = viewPackr(image.structures);
  const goals = restoredKind(image.goals, packr);
  const actions = restoredKind(image.actions, packr);
  const nodes = restoredKind(image.nodes, packr);
  if (!goals || !actions || !nodes || !Array.isArray(image.unroutable)) return 'snapshot image malformed';
  core.restoreLog(restored);
  if (!sameVector(core.versionVector(), vector)) return 'snapshot image malformed';
  // The segment holding the last covered event: it must hold exactly the events the snapshot says, up to it.
  let straddle: number;
  if (position > 0) {
    const [found] = await db.iterator({ gte: eventKey(1), lte: eventKey(position), reverse: true, limit: 1 }).all();
    if (!found) return 'snapshot does not match the log (its events are not stored)';
    straddle = positionOfKey(found[0]);
    const placed = restored.place(straddle, found[1]);
    if (typeof placed === 'string' || placed.next !== position + 1) return 'snapshot does not match the log';
    try {
      const last = eventPackr.unpack(restored.bytesOf(position)) as Partial<LedgerEvent> | undefined;
      if (last?.origin !== restored.originAt(position) || last.seq !== restored.seqOf[position - 1]) {
        return 'snapshot does not match the log';
      }
      if (!(typeof last.lamport === 'number' && last.lamport <= clock)) return 'snapshot does not match the log';
    } catch (err) {
      return `snapshot does not match the log: ${(err as Error).message}`;
    }
    if (placed.offset < found[1].length) restoreSegment(core, position + 1, found[1].subarray(placed.offset), path);
  } else {
    straddle = 1;
  }
  for await (const batch of readStoredSegments(db, 64, position > 0 ? straddle + 1 : 1)) {
    for (const [first, segment] of batch) restoreSegment(core, first, segment, path);
  }
  if (clock > core.clock) core.clock = clock;
  try {
    core.restoreFold({
      goals,
      actions,
      nodes,
      unroutable: image.unroutable,
      goalRefs,
    });
  } catch (err) {
    return `snapshot unusable: ${(err as Error).message}`;
  }
  const loading = restored.unplaced > 0 ? readCovered(db, restored, straddle, path, warn) : undefined;
  // Events after the snapshot that add to an entity it holds need that entity's events (to order or re-fold
  // them): read the covered segments first. Otherwise they fold now and the open needs none of them.
  if (loading && core.tailTouchesRestored(position)) {
    await loading.done;
    // Then a damaged covered segment cannot be worked around: the full replay reports it.
    if (restored.failure !== undefined) return restored.failure;
  }
  core.foldAfter(position);
  const structures = image.structures;
  return loading ? { loading, structures } : { structures };
}

/** Reads the covered segments below `before` in the background and places their bytes. */
function readCovered(
  db: Db,
  restored: RestoredLog,
  before: number,
  path: string,
  warn: (message: string) => void,
): Loader {
  let stopped = false;
  const done = (async () => {
    let expected = 1;
    try {
      for await (const batch of readStoredSegments(db, 16, 1, before)) {
        if (stopped) return;
        for (const [first, segment] of batch) {
          const placed = first === expected ? restored.place(first, segment) : `no stored segment at ${expected}`;
          if (typeof placed === 'string') throw new Error(placed);
          expected = placed.next;
        }
        // Let the node work between batches: this runs while it serves.
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
      if (expected !== before) throw new Error(`no stored segment at ${expected}`);
    } catch (err) {
      if (stopped) return;
      restored.failure = `${path}: the log under the snapshot does not fit it (${(err as Error).message}); restore from a replica`;
      warn(restored.failure);
    }
  })();
  return {
    done,
    stop: () => {
      stopped = true;
    },
  };
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
  private readonly strings = new StringCopies();
  private readonly now: () => number;
  private readonly snapshotEvery: number;
  private durable: number;
  /** Position of the latest snapshot taken (or opened from); the one being written, in order, after the last. */
  private snapshotPosition: number;
  /** core.foldedUnits when the last snapshot was taken (0: what the open folded counts as behind). */
  private snapshotUnits = 0;
  private snapshotting: Promise<void> = Promise.resolve();
  /** A due snapshot waiting for a quiet moment. */
  private snapshotTimer: NodeJS.Timeout | undefined;
  private readonly warn: (message: string) => void;
  private readonly subscriptions = new Set<Subscription>();
  private closed = false;
  /** Set while the events under the snapshot are being read: writes wait for it. */
  private loading: Promise<void> | undefined;
  private readonly ready: Promise<void>;

  constructor(
    private readonly db: Db,
    private readonly core: LedgerCore,
    private readonly init: LedgerInit,
    readonly openStats: OpenStats,
    private readonly stored: { ledgerId: string; structures: readonly unknown[]; legacy: BatchOp[] },
    private readonly loader: Loader | undefined,
  ) {
    this.now = init.now ?? Date.now;
    this.snapshotEvery = init.snapshotEvery ?? DEFAULT_SNAPSHOT_EVERY;
    this.durable = core.position;
    this.snapshotPosition = openStats.snapshotPosition;
    this.warn = init.warn ?? ((message: string) => process.emitWarning(message, 'LedgerWarning'));
    this.committer = new GroupCommit(db, init.sync ?? false, (mark) => this.onWritten(mark));
    if (loader) {
      this.loading = loader.done.then(() => {
        this.loading = undefined;
        for (const sub of this.subscriptions) this.pump(sub);
      });
    }
    this.ready = this.loading ?? Promise.resolve();
    // A snapshot kept inside LevelDB by an earlier build is dropped.
    if (stored.legacy.length > 0) void this.committer.write(stored.legacy);
    // A log replayed (or read past its snapshot) this far is snapshotted now, not after the next N events.
    if (this.snapshotEvery > 0 && core.foldedUnits >= this.snapshotEvery) {
      setImmediate(() => {
        if (!this.unusable()) this.snapshotNow(this.committer.write());
      });
    }
  }

  loaded(): Promise<void> {
    return this.ready;
  }

  get origin(): string {
    return this.init.origin;
  }

  append(input: EventInput): Promise<AppendResult> {
    // Writes may need the events under the snapshot (to order or re-fold an entity): they wait for them, in order.
    if (this.loading) return this.loading.then(() => this.append(input));
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

  /**
   * Appends several events as one write. Runs of action transitions and of created actions are packed into batch
   * events (see batching.ts); each input still gets its own result, as if it had been appended as itself.
   */
  appendMany(inputs: readonly EventInput[], options?: AppendOptions): Promise<AppendResult[]> {
    if (this.loading) return this.loading.then(() => this.appendMany(inputs, options));
    if (inputs.length < 2) return this.appendStored(inputs, options);
    const packed = packActionEvents(inputs);
    if (packed.inputs.length === inputs.length) return this.appendStored(inputs, options);
    // Each item's result is taken as it is folded (a rejection then is what the caller must see), not when the
    // write ends: what is folded meanwhile can change an entity's rejections.
    const itemResults = new Map<number, AppendResult[]>();
    const written = this.appendStored(packed.inputs, options, (k, result) => {
      if (result.ok && isBatchType(result.event.type)) itemResults.set(k, this.itemResults(result));
    });
    return written.then((results) =>
      packed.placed.map(([k, item]) => {
        const result = results[k]!;
        if (item < 0 || !result.ok) return result;
        return itemResults.get(k)?.[item] ?? { ok: false, error: 'transition not recorded' };
      }),
    );
  }

  /** One result per item of an appended batch event, each as that event appended alone. */
  private itemResults(result: AppendResult & { ok: true }): AppendResult[] {
    const entry = this.core.entryAt(result.position);
    return batchItems(result.event).map((item, i) => {
      const itemEntry = entry.itemFor(item.actionId, i);
      const rejected = this.core.rejectionOf(itemEntry);
      const out: AppendResult = { ok: true, event: itemEntry.event, stored: result.event, position: result.position };
      if (rejected !== undefined) out.rejected = rejected;
      return out;
    });
  }

  /** Appends the inputs as given (no packing); `folded` sees each result as soon as its event is folded. */
  private appendStored(
    inputs: readonly EventInput[],
    options: AppendOptions | undefined,
    folded?: (index: number, result: AppendResult) => void,
  ): Promise<AppendResult[]> {
    try {
      const unusable = this.unusable();
      if (unusable) return Promise.resolve(inputs.map(() => ({ ok: false, error: unusable })));
      this.committer.expect(inputs.length);
      if (inputs.length > 1 && !this.core.hasHeld(this.init.origin)) {
        return this.appendBatch(inputs, options?.shareTick === true, folded);
      }
      const results: AppendResult[] = [];
      let appended = false;
      for (const input of inputs) {
        const result = this.appendOne(input);
        if (result.ok) appended = true;
        folded?.(results.length, result);
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
  private appendBatch(
    inputs: readonly EventInput[],
    shareTick: boolean,
    folded?: (index: number, result: AppendResult) => void,
  ): Promise<AppendResult[]> {
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
      const invalid = checkSemantics(event) ?? core.unfoldable(event);
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
      const result: AppendResult =
        rejected === undefined
          ? { ok: true, event, position: entry.position }
          : { ok: true, event, position: entry.position, rejected };
      results[slots[k]!] = result;
      folded?.(slots[k]!, result);
    }
    // A snapshot due now covers this batch: it is written once the batch is.
    this.maybeSnapshot(written);
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
    const invalid = checkSemantics(event) ?? core.unfoldable(event);
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
    if (this.loading) await this.loading;
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
    const unfoldable = core.unfoldable(event);
    if (unfoldable !== undefined) {
      report.invalid.push({ reason: unfoldable });
      return;
    }
    const logged = core.seqOf(origin);
    // Kept from now on (a duplicate is only compared): its strings must not keep the message they came in alive.
    if (seq > logged) this.strings.event(event);
    if (seq === logged + 1) {
      // The next event: encoded once, straight into its segment, even while later ones wait behind a gap (during
      // a burst a worker has one open nearly all the time: assignments run ahead of their coordinator's push).
      const size = this.committer.stage(core.position + 1, event);
      core.acceptNext(event, size, false);
      this.committer.queueStaged();
      report.accepted++;
      if (core.hasHeld(origin)) {
        for (const released of core.releaseHeld(origin)) {
          this.committer.queueEncoded(released.entry.position, released.bytes);
          report.accepted++;
        }
      }
      return;
    }
    // One already logged is only compared with what was logged (a duplicate, or a conflict): not encoded. Every
    // replica receives each ASSIGNED twice, in the assignment and in its coordinator's push.
    const bytes = seq <= core.seqOf(origin) ? NOT_ENCODED : encodeEvent(event);
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
    const written = this.committer.write();
    this.maybeSnapshot(written);
    return written;
  }

  private unusable(): string | undefined {
    if (this.closed) return 'ledger is closed';
    return this.committer.failed?.message;
  }

  /** The operations of a snapshot when one is due, queued behind the events it covers (never ahead on disk). */
  private maybeSnapshot(written: Promise<Error | undefined>): void {
    if (this.snapshotEvery <= 0) return;
    const behind = this.core.foldedUnits - this.snapshotUnits;
    const due = Math.max(this.snapshotEvery, this.core.entityCount());
    if (behind < due) return;
    const quietMs = this.init.snapshotQuietMs ?? DEFAULT_SNAPSHOT_QUIET_MS;
    clearTimeout(this.snapshotTimer);
    this.snapshotTimer = undefined;
    if (quietMs <= 0 || behind >= 3 * due) {
      this.snapshotNow(written);
      return;
    }
    // Every write while it is due moves it on: it is taken once writes pause.
    this.snapshotTimer = setTimeout(() => {
      this.snapshotTimer = undefined;
      if (!this.unusable()) this.snapshotNow(this.committer.write());
    }, quietMs);
    this.snapshotTimer.unref();
  }

  /**
   * Takes a snapshot at the current position: the image now, the file once `written` (the batch holding the
   * last event it covers) is on disk, so a snapshot never covers an event the log lacks. One file write at a
   * time, in order; a failed one is reported and leaves the previous snapshot in place.
   */
  private snapshotNow(written: Promise<Error | undefined>): void {
    const position = this.core.position;
    if (position === this.snapshotPosition) return;
    const chunks = snapshotFileBytes(snapshotImage(this.core, this.stored.structures), position, this.stored.ledgerId);
    this.snapshotPosition = position;
    this.snapshotUnits = this.core.foldedUnits;
    const previous = this.snapshotting;
    this.snapshotting = (async () => {
      await previous;
      if ((await written) !== undefined) return;
      try {
        await writeSnapshotFile(this.init.path, chunks);
      } catch (err) {
        this.warn(`${this.init.path}: snapshot at position ${position} not written: ${(err as Error).message}`);
      }
    })();
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
  hasGaps() {
    return this.core.hasGaps();
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
  /** The last hash and the log position it was taken at: every change to the state comes with a new event. */
  private hashed: { position: number; hash: string } | undefined;
  stateHash() {
    // Hashing walks the whole state (seconds at a million events); a status poll between writes pays nothing.
    const position = this.core.position;
    if (this.hashed?.position !== position) this.hashed = { position, hash: this.core.stateHash() };
    return this.hashed.hash;
  }
  counts() {
    return this.core.counts();
  }

  eventsSince(have: VersionVector, limit: number, bounds: PageBounds = {}): EventPage {
    const { maxBytes, upTo, maxPosition = this.durable } = bounds;
    const limits: PageLimits = { limit, maxPosition: Math.min(this.durable, maxPosition) };
    if (maxBytes !== undefined) limits.maxBytes = maxBytes;
    if (upTo !== undefined) limits.upTo = upTo;
    // Until the events under the snapshot are read, a page stops short of them (the requester asks again).
    if (this.loading) limits.readable = (position) => this.core.readable(position);
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
    // A backlog under the snapshot waits until its events are read (the loader pumps again then).
    if (this.loading && !this.core.readable(sub.cursor + 1)) return;
    sub.pumping = true;
    const end = Math.min(this.durable, sub.cursor + DELIVERY_CHUNK);
    const entries: LedgerEntry[] = [];
    let stuck: string | undefined;
    for (let p = sub.cursor + 1; p <= end; p++) {
      if (this.loading && !this.core.readable(p)) break;
      try {
        entries.push(toLedgerEntry(this.core.entryAt(p)));
      } catch (err) {
        // An event that cannot be read (a damaged log under the snapshot): delivery stops before it, said once.
        stuck = (err as Error).message;
        break;
      }
    }
    sub.cursor += entries.length;
    try {
      if (entries.length > 0) sub.listener(entries);
    } catch {
      // A failing subscriber must not break the ledger or other subscribers; it still gets later entries.
    }
    sub.pumping = false;
    if (stuck !== undefined) {
      this.warn(`a subscription stops at position ${sub.cursor + 1}: ${stuck}`);
      return;
    }
    if (sub.cursor < this.durable && (!this.loading || this.core.readable(sub.cursor + 1))) {
      setImmediate(() => this.pump(sub));
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    clearTimeout(this.snapshotTimer);
    // A clean close leaves a snapshot at the end of the log when enough came after the last one: the next open
    // then has (nearly) nothing to fold and reads none of the covered events before it answers.
    const since = this.core.foldedUnits - this.snapshotUnits;
    if (this.snapshotEvery > 0 && since > 0 && since >= Math.ceil(this.snapshotEvery / 100) && !this.unusable()) {
      this.snapshotNow(this.committer.write());
    }
    this.closed = true;
    for (const sub of this.subscriptions) sub.active = false;
    this.subscriptions.clear();
    this.loader?.stop();
    await this.loader?.done;
    await this.committer.drain();
    await this.snapshotting;
    await this.db.close();
  }
}

function toLedgerEntry(entry: LogEntry): LedgerEntry {
  return { position: entry.position, event: entry.event, size: entry.size };
}
