import type { LedgerEvent } from '@hermes-mesh/protocol';
import { Level } from 'level';
import { Packr } from 'msgpackr';
import { ByteBuffer, encodeBuiltEventAt, eventPackr } from './codec.js';

export { encodeEvent, eventPackr } from './codec.js';

export type Db = Level<Buffer, Buffer>;
export type BatchOp = { type: 'put'; key: Buffer; value: Buffer | Uint8Array } | { type: 'del'; key: Buffer };

/**
 * Snapshots are ours alone: records make them smaller and faster to read back. A fresh Packr per snapshot keeps
 * every record definition inside the snapshot's own bytes, so it never depends on state outside them.
 */
function snapshotPackr(): Packr {
  return new Packr({ useRecords: true, mapsAsObjects: true, moreTypes: false, int64AsType: 'number' });
}

export const FORMAT = 'hermes-ledger';
export const FORMAT_VERSION = 1;

/** Key layout: one byte of kind, then a big-endian number, so LevelDB's byte order is log order. */
export const MARKER_KEY = Buffer.from('\x00hermes-ledger/format', 'latin1');
const SNAPSHOT_META_KEY = Buffer.from('\x00hermes-ledger/snapshot', 'latin1');
const EVENT_PREFIX = 0x65; // 'e' + u64 position of the segment's first event
/** Most events in one stored segment (one LevelDB value): large enough to amortise LevelDB's per-op cost. */
const SEGMENT_EVENTS = 4096;
const SNAPSHOT_PREFIX = 0x73; // 's' + u64 position + u32 part
const SNAPSHOT_PART_BYTES = 4 * 1024 * 1024;

export function eventKey(position: number): Buffer {
  const key = Buffer.allocUnsafe(9);
  key[0] = EVENT_PREFIX;
  key.writeBigUInt64BE(BigInt(position), 1);
  return key;
}

export function positionOfKey(key: Buffer): number {
  return Number(key.readBigUInt64BE(1));
}

function snapshotPartKey(position: number, part: number): Buffer {
  const key = Buffer.allocUnsafe(13);
  key[0] = SNAPSHOT_PREFIX;
  key.writeBigUInt64BE(BigInt(position), 1);
  key.writeUInt32BE(part, 9);
  return key;
}

export type OpenErrorCode = 'foreign-database' | 'unsupported-version' | 'corrupt' | 'locked' | 'cannot-open';

/** Why a ledger could not be opened. Thrown by openLedger; its message says what to do. */
export class LedgerOpenError extends Error {
  constructor(
    readonly code: OpenErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'LedgerOpenError';
  }
}

export async function openDatabase(path: string): Promise<Db> {
  const db = new Level<Buffer, Buffer>(path, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  try {
    await db.open();
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    if (cause?.code === 'LEVEL_LOCKED') {
      throw new LedgerOpenError('locked', `${path} is in use by another process (LevelDB lock held)`, { cause: err });
    }
    if (cause?.code === 'LEVEL_CORRUPTION') {
      throw new LedgerOpenError('corrupt', `${path} is a corrupt LevelDB: ${cause.message}`, { cause: err });
    }
    const detail = cause?.message ?? (err as Error).message;
    throw new LedgerOpenError('cannot-open', `cannot open ledger at ${path}: ${detail}`, { cause: err });
  }
  return db;
}

/** Makes sure the database is ours (or empty, then claims it): never read or write someone else's data. */
export async function checkFormatMarker(db: Db, path: string): Promise<void> {
  const raw = await db.get(MARKER_KEY);
  if (raw === undefined) {
    const [anyKey] = await db.keys({ limit: 1 }).all();
    if (anyKey !== undefined) {
      throw new LedgerOpenError('foreign-database', `${path} holds a LevelDB that is not a hermes ledger (no marker)`);
    }
    await db.put(MARKER_KEY, eventPackr.pack({ format: FORMAT, version: FORMAT_VERSION }), { sync: true });
    return;
  }
  let marker: unknown;
  try {
    marker = eventPackr.unpack(raw);
  } catch {
    marker = undefined;
  }
  const { format, version } = (marker ?? {}) as { format?: unknown; version?: unknown };
  if (format !== FORMAT) {
    throw new LedgerOpenError('foreign-database', `${path} has a format marker that is not a hermes ledger's`);
  }
  if (version !== FORMAT_VERSION) {
    throw new LedgerOpenError(
      'unsupported-version',
      `${path} is ledger format ${String(version)}; this build reads ${FORMAT_VERSION}`,
    );
  }
}

/**
 * Reads the stored log in position order: segments of consecutive events, each [first position, the events'
 * msgpack encodings back to back], `batch` segments at a time.
 */
export async function* readStoredSegments(db: Db, batch = 64): AsyncGenerator<Array<[number, Buffer]>> {
  const iterator = db.iterator({ gte: eventKey(0), lt: Buffer.from([EVENT_PREFIX + 1]) });
  try {
    for (;;) {
      const entries = await iterator.nextv(batch);
      if (entries.length === 0) return;
      yield entries.map(([key, value]) => [positionOfKey(key), value]);
    }
  } finally {
    await iterator.close();
  }
}

/** Reads every stored segment, in position order, as [first position, the events' encodings back to back]. */
export async function readAllSegments(db: Db): Promise<Array<[number, Buffer]>> {
  const out: Array<[number, Buffer]> = [];
  for await (const batch of readStoredSegments(db, 256)) for (const segment of batch) out.push(segment);
  return out;
}

/** Decodes a segment, calling `each` with every value and its encoded size. Throws on bytes that are not msgpack. */
export function decodeSegment(segment: Buffer, each: (value: unknown, size: number) => void): void {
  eventPackr.unpackMultiple(segment, (value: unknown, start?: number, end?: number) => {
    each(value, end! - start!);
  });
}

// ---- snapshots ----

interface SnapshotMeta {
  position: number;
  parts: number;
}

/** Batch operations that store `image` as the snapshot at `position` and drop the previous one, atomically. */
export function snapshotOps(image: unknown, position: number, previous: SnapshotMeta | undefined): BatchOp[] {
  const bytes = snapshotPackr().pack(image);
  const ops: BatchOp[] = [];
  if (previous && previous.position !== position) {
    for (let part = 0; part < previous.parts; part++) {
      ops.push({ type: 'del', key: snapshotPartKey(previous.position, part) });
    }
  }
  const parts = Math.max(1, Math.ceil(bytes.length / SNAPSHOT_PART_BYTES));
  for (let part = 0; part < parts; part++) {
    const value = bytes.subarray(part * SNAPSHOT_PART_BYTES, (part + 1) * SNAPSHOT_PART_BYTES);
    ops.push({ type: 'put', key: snapshotPartKey(position, part), value });
  }
  ops.push({ type: 'put', key: SNAPSHOT_META_KEY, value: eventPackr.pack({ position, parts } satisfies SnapshotMeta) });
  return ops;
}

export type StoredSnapshot = { meta: SnapshotMeta; image: unknown } | { meta?: SnapshotMeta; error: string };

/** Reads the latest snapshot; a missing part or bad bytes come back as an error value (then: full replay). */
export async function readSnapshot(db: Db): Promise<StoredSnapshot | undefined> {
  const rawMeta = await db.get(SNAPSHOT_META_KEY);
  if (rawMeta === undefined) return undefined;
  let meta: SnapshotMeta;
  try {
    meta = eventPackr.unpack(rawMeta) as SnapshotMeta;
    if (!Number.isSafeInteger(meta.position) || !Number.isSafeInteger(meta.parts)) throw new Error('bad meta');
  } catch {
    return { error: 'snapshot meta unreadable' };
  }
  const keys = Array.from({ length: meta.parts }, (_, part) => snapshotPartKey(meta.position, part));
  const parts = await db.getMany(keys);
  if (parts.some((p) => p === undefined)) return { meta, error: 'snapshot part missing' };
  try {
    return { meta, image: snapshotPackr().unpack(Buffer.concat(parts as Buffer[])) };
  } catch (err) {
    return { meta, error: `snapshot undecodable: ${(err as Error).message}` };
  }
}

/** Consecutive events on their way to one stored segment: their encodings back to back. */
interface Segment {
  first: number;
  count: number;
  out: ByteBuffer;
}

/** Smallest and largest first buffer of a segment; it doubles as needed (a full segment is ~600 KiB). */
const SEGMENT_MIN_BYTES = 2 * 1024;
const SEGMENT_MAX_BYTES = 8 * 1024 * 1024;
/** Written segments' buffers kept for reuse. */
const SPARE_BUFFERS = 4;

/**
 * Group commit: every write asked for while one batch is on its way goes, together, into the next one.
 * A caller's promise resolves once its operations are on disk (fsynced too when `sync`).
 *
 * Events are encoded straight into the segment they will be stored in (`stage`, then `queueStaged`), so an
 * event is encoded once and never copied before LevelDB takes it. Batches go to LevelDB one at a time, in
 * order: a batch never reaches the disk ahead of an earlier one.
 */
export class GroupCommit {
  private pending: BatchOp[] = [];
  private segments: Segment[] = [];
  /** Size of the event staged at the end of the last segment, not yet queued. */
  private stagedSize = 0;
  /** Events the current caller said it is about to queue, and the average encoded size so far: a new segment
   * starts large enough for them, rather than growing (and copying) its buffer on the way. */
  private expected = 0;
  private bytesPerEvent = 256;
  private spare: ByteBuffer[] = [];
  /** The next batch: every caller waiting for it shares this one promise (undefined once written, or the error). */
  private next: { promise: Promise<Error | undefined>; settle: (outcome: Error | undefined) => void } | undefined;
  private scheduled = false;
  private writing = false;
  private failure: Error | undefined;
  /** The highest log position among the queued operations: durable once their batch is written. */
  private pendingMark = 0;

  constructor(
    private readonly db: Db,
    private readonly sync: boolean,
    private readonly onWritten: (mark: number) => void,
  ) {}

  get failed(): Error | undefined {
    return this.failure;
  }

  /** Says about how many events the caller is going to queue now (sizes the next segment's buffer). */
  expect(events: number): void {
    this.expected = events;
  }

  /**
   * Encodes `event`, the event that will be at log `position`, after the queued events without queueing it:
   * returns its encoded size. `queueStaged` then queues it; staging another event instead drops it. The event
   * must be built as the ledger builds events (encodeBuiltEventAt: LedgerEvent fields in order, nothing else).
   */
  stage(position: number, event: LedgerEvent): number {
    const segment = this.segmentFor(position);
    this.stagedSize = encodeBuiltEventAt(segment.out, event);
    return this.stagedSize;
  }

  /** A copy of the staged event's bytes. */
  stagedBytes(): Buffer {
    const out = this.segments[this.segments.length - 1]!.out;
    return Buffer.from(out.bytes.subarray(out.length, out.length + this.stagedSize));
  }

  /** Queues the staged event at the position it was staged for. */
  queueStaged(): void {
    const segment = this.segments[this.segments.length - 1]!;
    segment.out.length += this.stagedSize;
    this.stagedSize = 0;
    this.queued(segment);
  }

  /** Queues already encoded bytes as the event at `position`. */
  queueEncoded(position: number, bytes: Uint8Array): void {
    const segment = this.segmentFor(position);
    const out = segment.out;
    out.reserve(out.length, bytes.length);
    out.bytes.set(bytes, out.length);
    out.length += bytes.length;
    this.stagedSize = 0;
    this.queued(segment);
  }

  /** The segment the event at `position` goes into: the last one, unless it is full or does not end there. */
  private segmentFor(position: number): Segment {
    const last = this.segments[this.segments.length - 1];
    if (last && last.count === 0) {
      last.first = position;
      return last;
    }
    if (last && last.count < SEGMENT_EVENTS && last.first + last.count === position) return last;
    const events = Math.min(SEGMENT_EVENTS, Math.max(1, this.expected));
    const bytes = Math.min(
      SEGMENT_MAX_BYTES,
      Math.max(SEGMENT_MIN_BYTES, Math.ceil(events * this.bytesPerEvent * 1.1)),
    );
    const segment = { first: position, count: 0, out: this.buffer(bytes) };
    this.segments.push(segment);
    return segment;
  }

  /** A buffer of at least `bytes`: a written segment's again when one is spare (its memory already touched). */
  private buffer(bytes: number): ByteBuffer {
    for (let i = this.spare.length - 1; i >= 0; i--) {
      const out = this.spare[i]!;
      if (out.bytes.length < bytes) continue;
      this.spare.splice(i, 1);
      out.length = 0;
      return out;
    }
    return new ByteBuffer(bytes);
  }

  /** Keeps the buffers of a written batch for the next segments (LevelDB copied the bytes when it took them). */
  private keep(segments: readonly Segment[]): void {
    for (const { out } of segments) {
      if (this.spare.length >= SPARE_BUFFERS) return;
      if (out.bytes.length <= SEGMENT_MAX_BYTES) this.spare.push(out);
    }
  }

  private queued(segment: Segment): void {
    segment.count++;
    this.expected--;
    const position = segment.first + segment.count - 1;
    if (position > this.pendingMark) this.pendingMark = position;
  }

  /**
   * Queues other operations (snapshots) behind the events queued so far. The promise, shared by all callers of
   * one batch, never rejects: it resolves once all is written, to undefined, or to the error that stopped it.
   */
  write(ops?: readonly BatchOp[]): Promise<Error | undefined> {
    if (this.failure) return Promise.resolve(this.failure);
    if (ops) for (const op of ops) this.pending.push(op);
    if (!this.next) {
      let settle!: (outcome: Error | undefined) => void;
      const promise = new Promise<Error | undefined>((resolve) => {
        settle = resolve;
      });
      this.next = { promise, settle };
    }
    this.schedule();
    return this.next.promise;
  }

  /**
   * Starts the next batch now rather than on the next turn of the event loop, unless one is on its way (then
   * it follows that one, as usual). Called only between two callers' events, so a batch never splits a call.
   */
  flushNow(): void {
    if (!this.writing && !this.failure) void this.flush();
  }

  /** True when a queued segment is full. */
  hasFullSegment(): boolean {
    const first = this.segments[0];
    return first !== undefined && first.count >= SEGMENT_EVENTS;
  }

  /** Resolves when everything asked for so far is written. */
  async drain(): Promise<void> {
    if (!this.next && !this.writing && !this.hasQueued()) return;
    await this.write();
  }

  private hasQueued(): boolean {
    return this.pending.length > 0 || this.segments.some((s) => s.count > 0);
  }

  private schedule(): void {
    if (this.scheduled || this.writing) return;
    this.scheduled = true;
    // setImmediate, not a microtask: appends made across a tick's microtasks still share one batch.
    setImmediate(() => {
      this.scheduled = false;
      // A full segment may have started a write meanwhile: its end schedules the next one.
      if (!this.writing) void this.flush();
    });
  }

  private async flush(): Promise<void> {
    const ops: BatchOp[] = [];
    let events = 0;
    let bytes = 0;
    for (const segment of this.segments) {
      if (segment.count === 0) continue;
      ops.push({ type: 'put', key: eventKey(segment.first), value: segment.out.written() });
      events += segment.count;
      bytes += segment.out.length;
    }
    if (events > 0) this.bytesPerEvent = bytes / events;
    for (const op of this.pending) ops.push(op);
    const waiting = this.next;
    const mark = this.pendingMark;
    const flushed = this.segments;
    this.segments = [];
    // Staging and queueing happen in one synchronous step: whatever is still staged now was dropped.
    this.stagedSize = 0;
    this.pending = [];
    this.next = undefined;
    this.writing = true;
    try {
      if (ops.length > 0) await this.db.batch(ops, { sync: this.sync });
      this.onWritten(mark);
      waiting?.settle(undefined);
    } catch (err) {
      this.failure = new Error(`ledger write failed; the ledger is read-only now: ${(err as Error).message}`);
      waiting?.settle(this.failure);
      // Writes asked for while this batch was on its way fail with it.
      (this.next as typeof waiting)?.settle(this.failure);
      this.next = undefined;
    } finally {
      this.writing = false;
    }
    this.keep(flushed);
    if ((this.next || this.hasQueued()) && !this.failure) this.schedule();
  }
}
