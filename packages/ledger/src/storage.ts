import { createHash, randomBytes } from 'node:crypto';
import { open, rename } from 'node:fs/promises';
import { join } from 'node:path';
import zlib from 'node:zlib';
import { type LedgerEvent, packValue } from '@hermes-mesh/protocol';
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
const LEDGER_ID_KEY = Buffer.from('\x00hermes-ledger/id', 'latin1');
/** Where earlier builds kept the snapshot, inside LevelDB (now a file: see SNAPSHOT_FILE). */
const LEGACY_SNAPSHOT_META_KEY = Buffer.from('\x00hermes-ledger/snapshot', 'latin1');
const EVENT_PREFIX = 0x65; // 'e' + u64 position of the segment's first event
/** Most events in one stored segment (one LevelDB value): large enough to amortise LevelDB's per-op cost. */
const SEGMENT_EVENTS = 4096;
const LEGACY_SNAPSHOT_PREFIX = 0x73; // 's' + u64 position + u32 part

export function eventKey(position: number): Buffer {
  const key = Buffer.allocUnsafe(9);
  key[0] = EVENT_PREFIX;
  key.writeBigUInt64BE(BigInt(position), 1);
  return key;
}

export function positionOfKey(key: Buffer): number {
  return Number(key.readBigUInt64BE(1));
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
export async function* readStoredSegments(
  db: Db,
  batch = 64,
  /** Only segments whose first event is at or after `from`, and before `before` when given. */
  from = 0,
  before?: number,
): AsyncGenerator<Array<[number, Buffer]>> {
  const lt = before === undefined ? Buffer.from([EVENT_PREFIX + 1]) : eventKey(before);
  const iterator = db.iterator({ gte: eventKey(from), lt });
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

/**
 * The snapshot is a file in the ledger's directory (LevelDB leaves files it does not know alone): read whole
 * in one go at open, far faster than the same bytes out of LevelDB. It is written to a temporary file,
 * fsynced, then renamed over the old one, only once the events it covers are written: a crash leaves the old
 * snapshot or the new one, never part of one, and the header's digest catches one damaged on disk.
 * File: magic, u32 LE header length, header (msgpack), body (the image, msgpack).
 */
export const SNAPSHOT_FILE = 'hermes-ledger.snapshot';
const SNAPSHOT_MAGIC = Buffer.from('hermes-ledger snapshot\n', 'latin1');

export interface SnapshotMeta {
  position: number;
  /** The ledger it was taken of (a snapshot copied from another ledger is never used). */
  ledgerId: string;
  /** Length and check ('crc32:...' or 'sha1:...') of the body. */
  bytes: number;
  digest: string;
}

/** zlib.crc32 (Node 20.15+) checks 41 MB in ~7 ms here, SHA-1 in ~22 ms, SHA-256 in 24-89 ms. */
const crc32 = (zlib as { crc32?: (data: Uint8Array) => number }).crc32;

/** A check of the body against damage on disk (not an authenticator): CRC-32 where Node has it, else SHA-1. */
function digestOf(bytes: Uint8Array, algorithm = crc32 ? 'crc32' : 'sha1'): string | undefined {
  if (algorithm === 'crc32') return crc32 ? `crc32:${crc32(bytes)}` : undefined;
  if (algorithm === 'sha1') return `sha1:${createHash('sha1').update(bytes).digest('base64')}`;
  return undefined;
}

/** The snapshot file's bytes for `image`, the fold at `position`. */
export function snapshotFileBytes(image: unknown, position: number, ledgerId: string): Buffer[] {
  const body = packValue(snapshotPackr(), image);
  const meta: SnapshotMeta = { position, ledgerId, bytes: body.length, digest: digestOf(body)! };
  const header = packValue(eventPackr, { format: FORMAT, version: FORMAT_VERSION, ...meta });
  const length = Buffer.allocUnsafe(4);
  length.writeUInt32LE(header.length);
  return [SNAPSHOT_MAGIC, length, header, body];
}

/** Writes the snapshot file atomically (temporary file, fsync, rename, fsync of the directory). */
export async function writeSnapshotFile(dir: string, chunks: readonly Buffer[]): Promise<void> {
  const path = join(dir, SNAPSHOT_FILE);
  const temporary = `${path}.tmp`;
  const file = await open(temporary, 'w', 0o600);
  try {
    await file.writev(chunks as Buffer[]);
    await file.sync();
  } finally {
    await file.close();
  }
  await rename(temporary, path);
  const directory = await open(dir, 'r');
  try {
    await directory.sync();
  } catch {
    // Some platforms cannot fsync a directory; the rename is still atomic.
  } finally {
    await directory.close();
  }
}

export type StoredSnapshot = { meta: SnapshotMeta; image: unknown } | { meta?: SnapshotMeta; error: string };

/** Reads the snapshot file; a bad or foreign one comes back as an error value (then: full replay). */
export async function readSnapshotFile(dir: string, ledgerId: string): Promise<StoredSnapshot | undefined> {
  let bytes: Buffer;
  try {
    bytes = await readWhole(join(dir, SNAPSHOT_FILE));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    return { error: `snapshot unreadable: ${(err as Error).message}` };
  }
  const magic = SNAPSHOT_MAGIC.length;
  if (bytes.length < magic + 4 || !bytes.subarray(0, magic).equals(SNAPSHOT_MAGIC)) {
    return { error: 'snapshot file is not a ledger snapshot' };
  }
  const headerEnd = magic + 4 + bytes.readUInt32LE(magic);
  let meta: SnapshotMeta;
  try {
    const header = eventPackr.unpack(bytes.subarray(magic + 4, headerEnd)) as Record<string, unknown>;
    if (header.format !== FORMAT || header.version !== FORMAT_VERSION) throw new Error('other format');
    const { position, ledgerId: id, bytes: length, digest } = header;
    if (!Number.isSafeInteger(position) || typeof id !== 'string' || typeof digest !== 'string') throw new Error();
    meta = { position: position as number, ledgerId: id, bytes: length as number, digest };
  } catch {
    return { error: 'snapshot header unreadable' };
  }
  if (meta.ledgerId !== ledgerId) return { meta, error: 'snapshot of another ledger' };
  const body = bytes.subarray(headerEnd);
  if (body.length !== meta.bytes || digestOf(body, meta.digest.split(':')[0]) !== meta.digest) {
    return { meta, error: 'snapshot damaged (its digest does not match)' };
  }
  try {
    return { meta, image: snapshotPackr().unpack(body) };
  } catch (err) {
    return { meta, error: `snapshot undecodable: ${(err as Error).message}` };
  }
}

/** A file's bytes in one read (readFile reads 512 KiB at a time: ~80 trips to the thread pool for a snapshot). */
async function readWhole(path: string): Promise<Buffer> {
  const file = await open(path, 'r');
  try {
    const { size } = await file.stat();
    const bytes = Buffer.allocUnsafeSlow(size);
    let read = 0;
    while (read < size) {
      const { bytesRead } = await file.read(bytes, read, size - read, read);
      if (bytesRead === 0) break;
      read += bytesRead;
    }
    return read === size ? bytes : bytes.subarray(0, read);
  } finally {
    await file.close();
  }
}

/** This ledger's id (made the first time): a snapshot names the ledger it was taken of. */
export async function ledgerIdOf(db: Db): Promise<string> {
  const stored = await db.get(LEDGER_ID_KEY);
  if (stored !== undefined) return stored.toString('latin1');
  const id = randomBytes(16).toString('hex');
  await db.put(LEDGER_ID_KEY, Buffer.from(id, 'latin1'), { sync: true });
  return id;
}

/** Operations that drop a snapshot stored by earlier builds inside LevelDB (its meta and parts), if any. */
export async function legacySnapshotOps(db: Db): Promise<BatchOp[]> {
  const ops: BatchOp[] = [];
  if ((await db.get(LEGACY_SNAPSHOT_META_KEY)) !== undefined) ops.push({ type: 'del', key: LEGACY_SNAPSHOT_META_KEY });
  for await (const key of db.keys({
    gte: Buffer.from([LEGACY_SNAPSHOT_PREFIX]),
    lt: Buffer.from([LEGACY_SNAPSHOT_PREFIX + 1]),
  })) {
    ops.push({ type: 'del', key });
  }
  return ops;
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
