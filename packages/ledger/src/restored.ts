import { Packr } from 'msgpackr';
import { eventPackr, type FoldEntry, type StoredBytes } from './codec.js';
import type { Entity } from './fold.js';

/**
 * What opening from a snapshot keeps of the events the snapshot covers (positions 1..end), instead of a
 * LogEntry each: typed arrays of their origin, seq and size. Their bytes are placed as the stored segments
 * holding them are read (in the background after the open); an entry is made only when something needs it.
 */
export class RestoredLog implements StoredBytes {
  /** Per position (index position - 1): the origin's index in `origins`, its seq, its encoded size. */
  readonly originOf: Uint32Array;
  readonly seqOf: Uint32Array;
  readonly sizeOf: Uint32Array;
  /** Per position: where its bytes start in its segment, and the segment (index + 1 in `segments`; 0: not read). */
  private readonly offsetOf: Uint32Array;
  private readonly segmentOf: Uint32Array;
  private readonly segments: Buffer[] = [];
  /** Positions whose bytes are not placed yet. */
  unplaced: number;
  /** Why some bytes will never be readable (a stored segment that does not fit the snapshot), once known. */
  failure: string | undefined;

  private constructor(
    readonly end: number,
    readonly origins: readonly string[],
    sizes: Uint32Array,
  ) {
    this.originOf = new Uint32Array(end);
    this.seqOf = new Uint32Array(end);
    this.sizeOf = sizes;
    this.offsetOf = new Uint32Array(end);
    this.segmentOf = new Uint32Array(end);
    this.unplaced = end;
  }

  /**
   * Builds the tables from the snapshot's layout: runs of consecutive positions of one origin
   * ([origin index, count, ...]) and every event's size. Returns why the layout is unusable, if it is.
   */
  static fromLayout(
    end: number,
    origins: readonly string[],
    runs: Uint32Array,
    sizes: Uint32Array,
  ): RestoredLog | string {
    if (sizes.length !== end || runs.length % 2 !== 0) return 'snapshot image malformed';
    if (!origins.every((o) => typeof o === 'string')) return 'snapshot image malformed';
    const log = new RestoredLog(end, origins, sizes);
    const seqs = new Uint32Array(origins.length);
    let position = 0;
    for (let r = 0; r < runs.length; r += 2) {
      const origin = runs[r]!;
      const count = runs[r + 1]!;
      if (origin >= origins.length || count === 0 || position + count > end) return 'snapshot image malformed';
      let seq = seqs[origin]!;
      for (let k = 0; k < count; k++) {
        log.originOf[position] = origin;
        log.seqOf[position++] = ++seq;
      }
      seqs[origin] = seq;
    }
    if (position !== end) return 'snapshot image malformed';
    for (let i = 0; i < end; i++) if (sizes[i] === 0) return 'snapshot image malformed';
    return log;
  }

  /** The positions of each origin's events, in seq order. */
  positionsByOrigin(): Uint32Array[] {
    const counts = new Uint32Array(this.origins.length);
    for (let i = 0; i < this.end; i++) counts[this.originOf[i]!]!++;
    const out = Array.from(counts, (n) => new Uint32Array(n));
    const filled = new Uint32Array(this.origins.length);
    for (let i = 0; i < this.end; i++) {
      const origin = this.originOf[i]!;
      out[origin]![filled[origin]!++] = i + 1;
    }
    return out;
  }

  originAt(position: number): string {
    return this.origins[this.originOf[position - 1]!]!;
  }

  placed(position: number): boolean {
    return this.segmentOf[position - 1] !== 0;
  }

  /**
   * Places the bytes of the stored segment whose first event is at `first`: every covered position from
   * `first` on, while the segment lasts. The first event is decoded and must be the origin and seq the
   * snapshot says. Returns the next position and the byte offset where the covered part ends (short of the
   * segment's end when later events follow in it), or why the segment does not fit (then nothing is placed).
   */
  place(first: number, segment: Buffer): { next: number; offset: number } | string {
    if (first < 1 || first > this.end) return `stored segment at position ${first} is not under the snapshot`;
    const index = this.segments.push(segment);
    let position = first;
    let offset = 0;
    while (position <= this.end && offset < segment.length) {
      const size = this.sizeOf[position - 1]!;
      if (offset + size > segment.length || this.segmentOf[position - 1] !== 0) break;
      this.offsetOf[position - 1] = offset;
      this.segmentOf[position - 1] = index;
      offset += size;
      position++;
    }
    const fits = offset === segment.length || (position > this.end && offset < segment.length);
    const why = fits ? this.check(first) : `stored segment at position ${first} does not fit the snapshot`;
    if (why !== undefined) {
      this.segmentOf.fill(0, first - 1, position - 1);
      this.segments[index - 1] = EMPTY;
      return why;
    }
    this.unplaced -= position - first;
    return { next: position, offset };
  }

  private check(position: number): string | undefined {
    try {
      const event = eventPackr.unpack(this.bytesOf(position)) as { origin?: unknown; seq?: unknown };
      if (event?.origin === this.originAt(position) && event.seq === this.seqOf[position - 1]) return undefined;
    } catch {
      // Not msgpack: does not fit.
    }
    return `stored event at position ${position} is not the one the snapshot names`;
  }

  bytesOf(position: number): Buffer {
    const segment = this.segmentOf[position - 1]!;
    if (segment === 0) {
      throw new Error(
        this.failure === undefined
          ? `stored event at position ${position} is still being read (the ledger opened from a snapshot)`
          : `stored event at position ${position} cannot be read: ${this.failure}`,
      );
    }
    const offset = this.offsetOf[position - 1]!;
    return this.segments[segment - 1]!.subarray(offset, offset + this.sizeOf[position - 1]!);
  }
}

const EMPTY = Buffer.alloc(0);

/** Views are packed one by one with records whose definitions are shared across the snapshot (kept in it). */
const VIEW_OPTIONS = { useRecords: true, mapsAsObjects: true, moreTypes: false, int64AsType: 'number' } as const;

export function viewPackr(structures: unknown[] = []): Packr {
  return new Packr({ ...VIEW_OPTIONS, structures: structures as never, maxSharedStructures: 1000 });
}

/** One kind of entity (goals, actions or nodes) as a snapshot holds it: decoded entity by entity, when read. */
export class RestoredKind {
  constructor(
    /** Each entity's packed view: bytes [viewStart[i], viewStart[i + 1]) of `views`; empty: no view. */
    private readonly views: Buffer,
    private readonly viewStart: Uint32Array,
    /** Each entity's entries' positions in replay order: [entryStart[i], entryStart[i + 1]) of `positions`. */
    private readonly positions: Uint32Array,
    private readonly entryStart: Uint32Array,
    private readonly packr: Packr,
  ) {}

  get count(): number {
    return this.viewStart.length - 1;
  }

  viewBytes(index: number): Buffer {
    return this.views.subarray(this.viewStart[index]!, this.viewStart[index + 1]!);
  }

  view(index: number): unknown {
    const bytes = this.viewBytes(index);
    return bytes.length === 0 ? undefined : this.packr.unpack(bytes);
  }

  positionsOf(index: number): Uint32Array {
    return this.positions.subarray(this.entryStart[index]!, this.entryStart[index + 1]!);
  }

  /** Checks the tables fit each other and the log's end. */
  check(end: number): string | undefined {
    const n = this.count;
    if (n < 0 || this.entryStart.length !== n + 1) return 'snapshot image malformed';
    if (this.viewStart[0] !== 0 || this.viewStart[n] !== this.views.length) return 'snapshot image malformed';
    if (this.entryStart[0] !== 0 || this.entryStart[n] !== this.positions.length) return 'snapshot image malformed';
    for (let i = 0; i < n; i++) {
      if (this.viewStart[i + 1]! < this.viewStart[i]! || this.entryStart[i + 1]! < this.entryStart[i]!) {
        return 'snapshot image malformed';
      }
    }
    for (let i = 0; i < this.positions.length; i++) {
      const p = this.positions[i]!;
      if (p === 0 || p > end) return 'snapshot image malformed';
    }
    return undefined;
  }
}

/**
 * A goal, action or node of the fold. One restored from a snapshot keeps its view's bytes and its entries'
 * positions until first read: opening decodes neither.
 */
export class FoldEntity<V> implements Entity<V> {
  rejected: Map<FoldEntry, string> | undefined = undefined;
  private list: FoldEntry[] | undefined;
  private current: V | undefined = undefined;
  /** Set while restored parts are not decoded yet: the kind they are in, and this entity's index there. */
  private store: RestoredKind | undefined;
  private viewPending = false;

  constructor(
    readonly key: string,
    private readonly entryAt?: (position: number) => FoldEntry,
    store?: RestoredKind,
    private readonly index = 0,
  ) {
    if (store) {
      this.store = store;
      this.viewPending = true;
    } else {
      this.list = [];
    }
  }

  get view(): V | undefined {
    if (this.viewPending) {
      this.current = this.store!.view(this.index) as V | undefined;
      this.viewPending = false;
      this.release();
    }
    return this.current;
  }

  set view(view: V | undefined) {
    if (this.viewPending) {
      this.viewPending = false;
      this.release();
    }
    this.current = view;
  }

  get entries(): FoldEntry[] {
    if (this.list === undefined) {
      const positions = this.store!.positionsOf(this.index);
      const list: FoldEntry[] = new Array(positions.length);
      for (let i = 0; i < positions.length; i++) list[i] = this.entryAt!(positions[i]!);
      this.list = list;
      this.release();
    }
    return this.list;
  }

  set entries(entries: FoldEntry[]) {
    this.list = entries;
    this.release();
  }

  /** The packed view as restored, while it has not been decoded (so it is unchanged). */
  restoredView(): Buffer | undefined {
    return this.viewPending ? this.store!.viewBytes(this.index) : undefined;
  }

  /** Positions of the entries, in replay order, without making an entry for each. */
  positions(): ArrayLike<number> {
    if (this.list === undefined) return this.store!.positionsOf(this.index);
    return this.list.map((entry) => entry.position);
  }

  private release(): void {
    if (!this.viewPending && this.list !== undefined) this.store = undefined;
  }
}

/** Little-endian u32 bytes in and out of snapshots (decoded ones are copied: a binary need not be aligned). */
export function u32Bytes(values: Uint32Array | readonly number[]): Buffer {
  const array = values instanceof Uint32Array ? values : Uint32Array.from(values);
  if (LITTLE_ENDIAN) return Buffer.from(array.buffer, array.byteOffset, array.byteLength);
  const out = Buffer.allocUnsafe(array.length * 4);
  for (let i = 0; i < array.length; i++) out.writeUInt32LE(array[i]!, i * 4);
  return out;
}

export function u32Array(bytes: unknown): Uint32Array | undefined {
  if (!(bytes instanceof Uint8Array) || bytes.length % 4 !== 0) return undefined;
  const out = new Uint32Array(bytes.length / 4);
  if (LITTLE_ENDIAN) {
    new Uint8Array(out.buffer).set(bytes);
  } else {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let i = 0; i < out.length; i++) out[i] = view.getUint32(i * 4, true);
  }
  return out;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * One kind's entities by key. Those a snapshot restored are made the first time they are asked for (their keys
 * indexed then too), so an open makes none; entities new since are kept in a Map. Iteration order is the order
 * entities first appeared: the restored ones (in the snapshot's order), then the new ones.
 */
export class EntityMap<V> {
  private readonly live = new Map<string, FoldEntity<V>>();
  private restoredKeys: readonly string[] = [];
  private made: Array<FoldEntity<V> | undefined> = [];
  private index: Map<string, number> | undefined;
  private make: ((index: number) => FoldEntity<V>) | undefined;

  /** Starts the map with restored entities; `make` makes the one at an index of `keys`. */
  restore(keys: readonly string[], make: (index: number) => FoldEntity<V>): void {
    if (this.live.size > 0 || this.restoredKeys.length > 0) throw new Error('the map is not empty');
    this.restoredKeys = keys;
    this.made = new Array(keys.length);
    this.make = make;
    this.index = undefined;
  }

  get size(): number {
    return this.restoredKeys.length + this.live.size;
  }

  get(key: string): FoldEntity<V> | undefined {
    const entity = this.live.get(key);
    if (entity !== undefined || this.restoredKeys.length === 0) return entity;
    const i = this.indexOf(key);
    return i === undefined ? undefined : this.restoredAt(i);
  }

  has(key: string): boolean {
    return this.live.has(key) || (this.restoredKeys.length > 0 && this.indexOf(key) !== undefined);
  }

  /** Adds an entity under a key the map does not hold. */
  set(key: string, entity: FoldEntity<V>): void {
    this.live.set(key, entity);
  }

  /** The restored entity at `index` of the snapshot's keys, made now if it is not yet. */
  restoredAt(index: number): FoldEntity<V> {
    let entity = this.made[index];
    if (entity === undefined) {
      entity = this.make!(index);
      this.made[index] = entity;
    }
    return entity;
  }

  /** Restored entities not made yet, by index, without making them (snapshot images copy them as stored). */
  isMade(index: number): boolean {
    return this.made[index] !== undefined;
  }

  get restoredCount(): number {
    return this.restoredKeys.length;
  }

  *keys(): IterableIterator<string> {
    yield* this.restoredKeys;
    yield* this.live.keys();
  }

  *values(): IterableIterator<FoldEntity<V>> {
    for (let i = 0; i < this.restoredKeys.length; i++) yield this.restoredAt(i);
    yield* this.live.values();
  }

  *entries(): IterableIterator<[string, FoldEntity<V>]> {
    for (let i = 0; i < this.restoredKeys.length; i++) yield [this.restoredKeys[i]!, this.restoredAt(i)];
    yield* this.live.entries();
  }

  [Symbol.iterator](): IterableIterator<[string, FoldEntity<V>]> {
    return this.entries();
  }

  /** The restored key at `index`. */
  restoredKey(index: number): string {
    return this.restoredKeys[index]!;
  }

  /** Live entities (new since the snapshot), in order. */
  liveValues(): IterableIterator<FoldEntity<V>> {
    return this.live.values();
  }

  private indexOf(key: string): number | undefined {
    if (this.index === undefined) {
      const index = new Map<string, number>();
      const keys = this.restoredKeys;
      // Keys come from a Map, checked by the snapshot's CRC: unique. (Were one repeated, the first would win.)
      for (let i = keys.length - 1; i >= 0; i--) index.set(keys[i]!, i);
      this.index = index;
    }
    return this.index.get(key);
  }
}
