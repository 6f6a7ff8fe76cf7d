import { type LedgerEvent, packValue } from '@hermes-mesh/protocol';
import { Packr } from 'msgpackr';
import { batchItems, isBatchType, itemEvent } from './events.js';

/** Plain maps in and out, like the protocol codec: a stored event decodes to exactly what was received. */
export const eventPackr = new Packr({
  useRecords: false,
  mapsAsObjects: true,
  moreTypes: false,
  int64AsType: 'number',
});

export function encodeEvent(event: LedgerEvent): Buffer {
  return packValue(eventPackr, event);
}

/** Where the bytes of events restored from a snapshot lie: read when an entry's event is first needed. */
export interface StoredBytes {
  /** The stored bytes of the event at `position`; throws a clear error when they cannot be read (yet). */
  bytesOf(position: number): Buffer;
}

/**
 * One event as this replica holds it: `position` is the local ingest order, `size` its encoded bytes.
 * An entry restored from a snapshot holds only where its bytes lie and decodes the event the first time
 * something reads it: opening from a snapshot never decodes the events the snapshot covers.
 */
export class LogEntry {
  private decoded: LedgerEvent | undefined;
  private source: StoredBytes | undefined;

  constructor(
    readonly position: number,
    readonly size: number,
    readonly origin: string,
    readonly seq: number,
    event: LedgerEvent | undefined,
    source?: StoredBytes,
  ) {
    this.decoded = event;
    this.source = source;
  }

  get event(): LedgerEvent {
    if (this.decoded !== undefined) return this.decoded;
    const bytes = this.source!.bytesOf(this.position);
    let event: LedgerEvent;
    try {
      event = eventPackr.unpack(bytes) as LedgerEvent;
    } catch (err) {
      throw new Error(`stored event at position ${this.position} cannot be decoded: ${(err as Error).message}`);
    }
    if (event?.origin !== this.origin || event.seq !== this.seq) {
      throw new Error(`stored event at position ${this.position} is not ${this.origin}/${this.seq}`);
    }
    this.decoded = event;
    this.source = undefined;
    return event;
  }

  /** True while the event is still only bytes (restored from a snapshot and not read since). */
  get pending(): boolean {
    return this.decoded === undefined;
  }

  get epoch(): number {
    return this.event.epoch ?? 0;
  }

  get lamport(): number {
    return this.event.lamport;
  }

  /** The entries of a batch event's items, by item index: made when first needed, then kept. */
  private items: ItemEntry[] | undefined;
  /** Entries asked for without their index (entities restored from a snapshot), by action id. */
  private looseItems: Map<string, ItemEntry> | undefined;
  /** Item index by action id, for items looked up without their index (entities restored from a snapshot). */
  private itemIndex: Map<string, number> | undefined;

  /**
   * The entry of the item of `actionId` (`index` is where it is, when the caller knows), the same object every
   * time: the fold keys rejections by entry.
   */
  itemFor(actionId: string, index = -1): ItemEntry {
    if (index >= 0) {
      const loose = this.looseItems?.get(actionId);
      if (loose !== undefined) return loose;
      this.items ??= [];
      let item = this.items[index];
      if (item === undefined) {
        item = new ItemEntry(this, actionId, index);
        this.items[index] = item;
      }
      return item;
    }
    // Without its index (an entity restored from a snapshot): the one the fold made, or one that finds its index
    // when first read, so an open from a snapshot decodes nothing here.
    if (this.items !== undefined) {
      const made = this.items[this.indexOfItem(actionId)];
      if (made !== undefined) return made;
    }
    this.looseItems ??= new Map();
    let item = this.looseItems.get(actionId);
    if (item === undefined) {
      item = new ItemEntry(this, actionId, -1);
      this.looseItems.set(actionId, item);
    }
    return item;
  }

  /** Where the item of `actionId` is in this entry's batch event; -1 when it has none. */
  indexOfItem(actionId: string): number {
    if (this.itemIndex === undefined) {
      this.itemIndex = new Map(batchItems(this.event).map((item, i) => [item.actionId, i]));
    }
    return this.itemIndex.get(actionId) ?? -1;
  }
}

/**
 * One action's part of a stored batch event (action.states, actions.created): to that action's fold it is the
 * event its item stands for (same position, origin and seq as the stored entry). An entity restored from a
 * snapshot gets one for each of its positions, batch or not; for a plain event it reads as that event.
 */
export class ItemEntry {
  constructor(
    readonly parent: LogEntry,
    readonly actionId: string,
    private index: number,
  ) {}

  get position(): number {
    return this.parent.position;
  }

  get size(): number {
    return this.parent.size;
  }

  get origin(): string {
    return this.parent.origin;
  }

  get seq(): number {
    return this.parent.seq;
  }

  /**
   * Built from the stored batch each time it is read, not kept: a fold reads it once, and keeping one per item
   * held ~130 bytes per action transition on every node for as long as it ran (and made each a GC survivor).
   */
  get event(): LedgerEvent {
    const stored = this.parent.event;
    if (!isBatchType(stored.type)) return stored;
    return itemEvent(stored, this.indexIn());
  }

  /** The replay-order fields (see compareEvents), read without building the event. */
  get epoch(): number {
    const stored = this.parent.event;
    if (!isBatchType(stored.type)) return stored.epoch ?? 0;
    return (batchItems(stored)[this.indexIn()] as { epoch?: number }).epoch ?? 0;
  }

  get lamport(): number {
    return this.parent.event.lamport;
  }

  get pending(): boolean {
    return this.parent.pending;
  }

  private indexIn(): number {
    if (this.index < 0) this.index = this.parent.indexOfItem(this.actionId);
    if (this.index < 0) {
      throw new Error(`stored event at position ${this.position} holds no item of action ${this.actionId}`);
    }
    return this.index;
  }
}

/** What an entity's fold holds for one of its events: a stored event, or one action's item of a stored batch. */
export type FoldEntry = LogEntry | ItemEntry;

/**
 * A growable byte buffer that events are encoded into back to back: the bytes of a stored segment, built in
 * place (no buffer per event, no concatenation).
 */
export class ByteBuffer {
  bytes: Buffer;
  length = 0;

  constructor(capacity = 64 * 1024) {
    // Small ones come from Node's buffer pool; large ones get their own memory.
    this.bytes = capacity < 4096 ? Buffer.allocUnsafe(capacity) : Buffer.allocUnsafeSlow(capacity);
  }

  /** Makes room for `extra` more bytes after `end`. */
  reserve(end: number, extra: number): void {
    if (end + extra <= this.bytes.length) return;
    let capacity = this.bytes.length * 2;
    while (capacity < end + extra) capacity *= 2;
    const bytes = Buffer.allocUnsafeSlow(capacity);
    this.bytes.copy(bytes, 0, 0, end);
    this.bytes = bytes;
  }

  /** The bytes written so far (a view, not a copy). */
  written(): Buffer {
    return this.bytes.subarray(0, this.length);
  }
}

/**
 * Encodes `event` at `out.length` exactly as `eventPackr.pack` would (same bytes), without advancing
 * `out.length`; returns the encoded size. Values the fast encoder does not know (anything but plain objects,
 * arrays, strings, numbers, booleans, null and undefined) go through msgpackr itself.
 */
export function encodeEventAt(out: ByteBuffer, event: LedgerEvent): number {
  const start = out.length;
  const end = writeValue(out, start, event);
  if (end >= 0) return end - start;
  const bytes = packValue(eventPackr, event);
  out.reserve(start, bytes.length);
  bytes.copy(out.bytes, start);
  return bytes.length;
}

/**
 * `encodeEventAt` for an event built field by field in the order of a LedgerEvent (origin, seq, lamport, ts,
 * type, then goalId, actionId, epoch, state, data where defined) and holding nothing else, as the ledger builds
 * every event it stores: the envelope is written from its fields, without walking the object.
 */
export function encodeBuiltEventAt(out: ByteBuffer, event: LedgerEvent): number {
  const start = out.length;
  const { goalId, actionId, epoch, state, data } = event;
  const fields =
    5 +
    (goalId === undefined ? 0 : 1) +
    (actionId === undefined ? 0 : 1) +
    (epoch === undefined ? 0 : 1) +
    (state === undefined ? 0 : 1) +
    (data === undefined ? 0 : 1);
  out.reserve(start, 3 + ENVELOPE_KEYS_BYTES);
  out.bytes[start] = 0xde;
  out.bytes[start + 1] = 0;
  out.bytes[start + 2] = fields;
  let pos = writeKey(out, start + 3, KEY_ORIGIN);
  pos = writeString(out, pos, event.origin);
  pos = writeNumber(out, writeKey(out, pos, KEY_SEQ), event.seq);
  pos = writeNumber(out, writeKey(out, pos, KEY_LAMPORT), event.lamport);
  pos = writeNumber(out, writeKey(out, pos, KEY_TS), event.ts);
  pos = writeString(out, writeKey(out, pos, KEY_TYPE), event.type);
  if (goalId !== undefined) pos = writeString(out, writeKey(out, pos, KEY_GOAL_ID), goalId);
  if (actionId !== undefined) pos = writeString(out, writeKey(out, pos, KEY_ACTION_ID), actionId);
  if (epoch !== undefined) pos = writeNumber(out, writeKey(out, pos, KEY_EPOCH), epoch);
  if (state !== undefined) pos = writeString(out, writeKey(out, pos, KEY_STATE), state);
  if (data !== undefined) pos = writeValue(out, writeKey(out, pos, KEY_DATA), data);
  if (pos >= 0) return pos - start;
  const bytes = packValue(eventPackr, event);
  out.reserve(start, bytes.length);
  bytes.copy(out.bytes, start);
  return bytes.length;
}

/** A key's msgpack bytes (fixstr), written once. */
function keyBytes(key: string): Uint8Array {
  return Uint8Array.from([0xa0 | key.length, ...Buffer.from(key, 'latin1')]);
}
const KEY_ORIGIN = keyBytes('origin');
const KEY_SEQ = keyBytes('seq');
const KEY_LAMPORT = keyBytes('lamport');
const KEY_TS = keyBytes('ts');
const KEY_TYPE = keyBytes('type');
const KEY_GOAL_ID = keyBytes('goalId');
const KEY_ACTION_ID = keyBytes('actionId');
const KEY_EPOCH = keyBytes('epoch');
const KEY_STATE = keyBytes('state');
const KEY_DATA = keyBytes('data');
const ENVELOPE_KEYS_BYTES = 64;

/** Writes a key's bytes. */
function writeKey(out: ByteBuffer, pos: number, key: Uint8Array): number {
  out.reserve(pos, key.length);
  const bytes = out.bytes;
  for (let i = 0; i < key.length; i++) bytes[pos + i] = key[i]!;
  return pos + key.length;
}

/** Writes one value at `pos`; returns the end, or -1 for a value only msgpackr knows how to write. */
function writeValue(out: ByteBuffer, pos: number, value: unknown): number {
  switch (typeof value) {
    case 'string':
      return writeString(out, pos, value);
    case 'number':
      return writeNumber(out, pos, value);
    case 'boolean':
      out.reserve(pos, 1);
      out.bytes[pos] = value ? 0xc3 : 0xc2;
      return pos + 1;
    case 'undefined':
      out.reserve(pos, 3);
      out.bytes[pos] = 0xd4;
      out.bytes[pos + 1] = 0;
      out.bytes[pos + 2] = 0;
      return pos + 3;
    case 'object': {
      if (value === null) {
        out.reserve(pos, 1);
        out.bytes[pos] = 0xc0;
        return pos + 1;
      }
      const maker = (value as { constructor?: unknown }).constructor;
      if (maker === Object) return writeObject(out, pos, value as Record<string, unknown>);
      if (maker === Array) return writeArray(out, pos, value as unknown[]);
      return -1;
    }
    default:
      return -1;
  }
}

const objectHasOwnProperty = Object.prototype.hasOwnProperty;

/** msgpackr's plain-object layout: always map 16, keys in for-in order, own properties only. */
function writeObject(out: ByteBuffer, pos: number, object: Record<string, unknown>): number {
  out.reserve(pos, 3);
  const header = pos;
  out.bytes[pos] = 0xde;
  pos += 3;
  // msgpackr calls the object's own hasOwnProperty: leave any object that overrides it to msgpackr.
  if (object.hasOwnProperty !== objectHasOwnProperty) return -1;
  let size = 0;
  for (const key in object) {
    // biome-ignore lint/suspicious/noPrototypeBuiltins: the same test as msgpackr's, checked above to be the builtin
    if (object.hasOwnProperty(key)) {
      pos = writeString(out, pos, key);
      pos = writeValue(out, pos, object[key]);
      if (pos < 0) return -1;
      size++;
    }
  }
  if (size > 0xffff) return -1;
  out.bytes[header + 1] = size >> 8;
  out.bytes[header + 2] = size & 0xff;
  return pos;
}

function writeArray(out: ByteBuffer, pos: number, array: unknown[]): number {
  const length = array.length;
  out.reserve(pos, 5);
  const bytes = out.bytes;
  if (length < 0x10) {
    bytes[pos++] = 0x90 | length;
  } else if (length < 0x10000) {
    bytes[pos++] = 0xdc;
    bytes[pos++] = length >> 8;
    bytes[pos++] = length & 0xff;
  } else {
    bytes[pos++] = 0xdd;
    writeUint32(out.bytes, pos, length);
    pos += 4;
  }
  for (let i = 0; i < length; i++) {
    pos = writeValue(out, pos, array[i]);
    if (pos < 0) return -1;
  }
  return pos;
}

/** Big-endian writes without a DataView per buffer. */
const FLOAT = new Float64Array(1);
const FLOAT_BYTES = new Uint8Array(FLOAT.buffer);
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function writeUint32(bytes: Uint8Array, pos: number, value: number): void {
  bytes[pos] = value >>> 24;
  bytes[pos + 1] = (value >>> 16) & 0xff;
  bytes[pos + 2] = (value >>> 8) & 0xff;
  bytes[pos + 3] = value & 0xff;
}

function writeNumber(out: ByteBuffer, pos: number, value: number): number {
  out.reserve(pos, 9);
  const bytes = out.bytes;
  if (value >>> 0 === value) {
    if (value < 0x80) {
      bytes[pos++] = value;
    } else if (value < 0x100) {
      bytes[pos++] = 0xcc;
      bytes[pos++] = value;
    } else if (value < 0x10000) {
      bytes[pos++] = 0xcd;
      bytes[pos++] = value >> 8;
      bytes[pos++] = value & 0xff;
    } else {
      bytes[pos++] = 0xce;
      writeUint32(out.bytes, pos, value);
      pos += 4;
    }
  } else if (value >> 0 === value) {
    if (value >= -0x20) {
      bytes[pos++] = 0x100 + value;
    } else if (value >= -0x80) {
      bytes[pos++] = 0xd0;
      bytes[pos++] = value + 0x100;
    } else if (value >= -0x8000) {
      bytes[pos++] = 0xd1;
      bytes[pos] = (value >> 8) & 0xff;
      bytes[pos + 1] = value & 0xff;
      pos += 2;
    } else {
      bytes[pos++] = 0xd2;
      writeUint32(bytes, pos, value >>> 0);
      pos += 4;
    }
  } else {
    bytes[pos++] = 0xcb;
    FLOAT[0] = value;
    if (LITTLE_ENDIAN) for (let i = 0; i < 8; i++) bytes[pos + i] = FLOAT_BYTES[7 - i]!;
    else for (let i = 0; i < 8; i++) bytes[pos + i] = FLOAT_BYTES[i]!;
    pos += 8;
  }
  return pos;
}

/** UTF-8 (a lone surrogate as U+FFFD, like msgpackr and Buffer), with the smallest header for its byte length. */
function writeString(out: ByteBuffer, pos: number, value: string): number {
  const chars = value.length;
  if (chars >= 0x40) {
    const length = Buffer.byteLength(value, 'utf8');
    out.reserve(pos, length + 5);
    pos = writeStringHeader(out, pos, length);
    return pos + out.bytes.write(value, pos, length, 'utf8');
  }
  out.reserve(pos, chars * 3 + 2);
  const bytes = out.bytes;
  // Short strings: write the bytes after a one-byte header, then widen the header if needed.
  let p = pos + 1;
  for (let i = 0; i < chars; i++) {
    let c1 = value.charCodeAt(i);
    if (c1 < 0x80) {
      bytes[p++] = c1;
    } else if (c1 < 0x800) {
      bytes[p++] = (c1 >> 6) | 0xc0;
      bytes[p++] = (c1 & 0x3f) | 0x80;
    } else if ((c1 & 0xfc00) === 0xd800 && (value.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      c1 = 0x10000 + ((c1 & 0x03ff) << 10) + (value.charCodeAt(i + 1) & 0x03ff);
      i++;
      bytes[p++] = (c1 >> 18) | 0xf0;
      bytes[p++] = ((c1 >> 12) & 0x3f) | 0x80;
      bytes[p++] = ((c1 >> 6) & 0x3f) | 0x80;
      bytes[p++] = (c1 & 0x3f) | 0x80;
    } else if ((c1 & 0xf800) === 0xd800) {
      bytes[p++] = 0xef;
      bytes[p++] = 0xbf;
      bytes[p++] = 0xbd;
    } else {
      bytes[p++] = (c1 >> 12) | 0xe0;
      bytes[p++] = ((c1 >> 6) & 0x3f) | 0x80;
      bytes[p++] = (c1 & 0x3f) | 0x80;
    }
  }
  const length = p - pos - 1;
  if (length < 0x20) {
    bytes[pos] = 0xa0 | length;
    return p;
  }
  // 0x20..0xbf bytes (at most 63 chars x 3): str 8, one more header byte.
  bytes.copyWithin(pos + 2, pos + 1, p);
  bytes[pos] = 0xd9;
  bytes[pos + 1] = length;
  return p + 1;
}

function writeStringHeader(out: ByteBuffer, pos: number, length: number): number {
  const bytes = out.bytes;
  if (length < 0x20) {
    bytes[pos++] = 0xa0 | length;
  } else if (length < 0x100) {
    bytes[pos++] = 0xd9;
    bytes[pos++] = length;
  } else if (length < 0x10000) {
    bytes[pos++] = 0xda;
    bytes[pos++] = length >> 8;
    bytes[pos++] = length & 0xff;
  } else {
    bytes[pos++] = 0xdb;
    writeUint32(out.bytes, pos, length);
    pos += 4;
  }
  return pos;
}
