import type { Static, TSchema } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { Packr } from 'msgpackr';
import { AckBatch, AssignBatch } from './assign.js';
import { EventBatch, SyncRequest, SyncResponse } from './ledger.js';
import { Advert, Beat, Leave } from './schema.js';

/** Envelope versions this build reads. A peer on another major version is rejected, never half-understood. */
export const PROTOCOL_VERSION = 1;
export const SUPPORTED_VERSIONS: readonly number[] = [1];

const KiB = 1024;
const MiB = 1024 * KiB;

/** One entry per message kind: its body schema and the largest encoded envelope accepted for it. */
const KINDS = {
  advert: { schema: Advert, maxBytes: 64 * KiB },
  leave: { schema: Leave, maxBytes: 1 * KiB },
  beat: { schema: Beat, maxBytes: 1 * KiB },
  events: { schema: EventBatch, maxBytes: 1 * MiB },
  assign: { schema: AssignBatch, maxBytes: 1 * MiB },
  ack: { schema: AckBatch, maxBytes: 256 * KiB },
  'sync-req': { schema: SyncRequest, maxBytes: 4 * MiB },
  'sync-res': { schema: SyncResponse, maxBytes: 8 * MiB },
} as const satisfies Record<string, { schema: TSchema; maxBytes: number }>;

export type MessageKind = keyof typeof KINDS;
export type BodyOf<K extends MessageKind> = Static<(typeof KINDS)[K]['schema']>;
export const MESSAGE_KINDS = Object.keys(KINDS) as MessageKind[];
export const MAX_MESSAGE_BYTES = Math.max(...Object.values(KINDS).map((k) => k.maxBytes));

/** Past this size, msgpackr's shared pack buffer is swapped for a small one after a pack (see packValue). */
const LARGEST_KEPT_PACK_BUFFER = 1 * MiB;

/**
 * `packr.pack(value)`, leaving msgpackr's pack buffer small. Every Packr in the process packs into one buffer that
 * grows to the largest value packed so far and never shrinks, and hands out each result as a slice of it: after
 * one large value (a snapshot: 27 MB on a coordinator after 20k actions), every small result packed later pins a
 * buffer that large, and each time one fills another as large is made. Once it is past 1 MiB, packing starts
 * again in a small one; the large one lives on only while results sliced from it are kept.
 */
export function packValue(packr: Packr, value: unknown): Buffer {
  const bytes = packr.pack(value);
  if (bytes.buffer.byteLength > LARGEST_KEPT_PACK_BUFFER) packr.useBuffer(Buffer.allocUnsafeSlow(8 * KiB));
  return bytes;
}

/** V8 copies substrings shorter than this; longer ones are slices of their parent. */
const SHORTEST_SLICE = 13;

/**
 * A string with the same characters as `s` that keeps nothing else alive. Strings decoded from a message are
 * slices of one long string holding the message's strings (msgpackr's native decoder), and a slice keeps its
 * whole parent: copy what is kept for long. Concatenating makes a new string of two parts; reading a character
 * flattens it into one new buffer; the substring is then a slice of that buffer alone. A string too short to be
 * a slice is returned as it is.
 */
export function ownString(s: string): string {
  if (s.length < SHORTEST_SLICE) return s;
  const joined = ` ${s}`;
  joined.charCodeAt(1);
  return joined.substring(1);
}

export function maxBytesOf(kind: MessageKind): number {
  return KINDS[kind].maxBytes;
}

export interface Envelope<K extends MessageKind = MessageKind> {
  v: number;
  kind: K;
  /** Sender's node id (libp2p peer id string); gossip checks it against the signer. */
  from: string;
  /** Sender's per-kind counter, for dedup and ordering. */
  seq: number;
  /** Sender's wall clock, ms since epoch; informational only. */
  ts: number;
  body: BodyOf<K>;
}

/** The union of every well-formed message, discriminated by `kind`. */
export type Message = { [K in MessageKind]: Envelope<K> }[MessageKind];

export const REJECT_REASONS = [
  'too-large',
  'not-msgpack',
  'not-envelope',
  'unknown-version',
  'unknown-kind',
  'invalid-body',
  'bad-signature',
  'sender-mismatch',
] as const;
export type RejectReason = (typeof REJECT_REASONS)[number];

export interface Rejection {
  reason: RejectReason;
  kind?: string;
  /** What was wrong, for a log line: a path and a message, never the raw bytes. */
  detail: string;
}

export type Decoded = { ok: true; message: Message } | { ok: false; rejection: Rejection };

const checkers = Object.fromEntries(
  Object.entries(KINDS).map(([kind, { schema }]) => [kind, TypeCompiler.Compile(schema)]),
) as { [K in MessageKind]: ReturnType<typeof TypeCompiler.Compile<(typeof KINDS)[K]['schema']>> };

// Plain maps in, plain objects out: no msgpackr records or structured clones, whose
// shared structure state would let one malformed peer message affect how the next one decodes.
const packr = new Packr({ useRecords: false, mapsAsObjects: true, moreTypes: false, int64AsType: 'number' });

export class MessageTooLargeError extends Error {
  constructor(
    readonly kind: MessageKind,
    readonly bytes: number,
    readonly maxBytes: number,
  ) {
    super(`${kind} message is ${bytes} bytes, over its ${maxBytes}-byte cap: send it in smaller batches`);
    this.name = 'MessageTooLargeError';
  }
}

/** Encodes a message. Throws MessageTooLargeError when the result would be rejected by every receiver. */
export function encodeMessage<K extends MessageKind>(
  kind: K,
  from: string,
  seq: number,
  body: BodyOf<K>,
  ts = Date.now(),
): Uint8Array {
  const envelope: Envelope<K> = { v: PROTOCOL_VERSION, kind, from, seq, ts, body };
  const bytes = packValue(packr, envelope);
  const maxBytes = KINDS[kind].maxBytes;
  if (bytes.length > maxBytes) throw new MessageTooLargeError(kind, bytes.length, maxBytes);
  return bytes;
}

function reject(reason: RejectReason, detail: string, kind?: string): Decoded {
  return { ok: false, rejection: kind === undefined ? { reason, detail } : { reason, kind, detail } };
}

/** Decodes and validates bytes from a peer. Never throws: anything wrong becomes a Rejection. */
export function decodeMessage(bytes: Uint8Array): Decoded {
  if (bytes.length > MAX_MESSAGE_BYTES) return reject('too-large', `${bytes.length} bytes`);
  let value: unknown;
  try {
    value = packr.unpack(bytes);
  } catch (err) {
    return reject('not-msgpack', (err as Error).message.slice(0, 200));
  }
  return validateEnvelope(value, bytes.length);
}

export function validateEnvelope(value: unknown, encodedBytes: number): Decoded {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return reject('not-envelope', `expected a map, got ${describe(value)}`);
  }
  const env = value as Record<string, unknown>;
  if (typeof env.v !== 'number') return reject('not-envelope', 'field v: expected a number');
  if (!SUPPORTED_VERSIONS.includes(env.v)) {
    return reject('unknown-version', `version ${env.v}, this node reads ${SUPPORTED_VERSIONS.join(', ')}`);
  }
  if (typeof env.kind !== 'string') return reject('not-envelope', 'field kind: expected a string');
  const kind = env.kind;
  if (!Object.hasOwn(KINDS, kind)) return reject('unknown-kind', `kind ${JSON.stringify(kind.slice(0, 64))}`);
  const k = kind as MessageKind;
  if (encodedBytes > KINDS[k].maxBytes) {
    return reject('too-large', `${encodedBytes} bytes, cap ${KINDS[k].maxBytes}`, kind);
  }
  if (typeof env.from !== 'string' || env.from.length === 0 || env.from.length > 128) {
    return reject('not-envelope', 'field from: expected a node id string', kind);
  }
  if (!Number.isSafeInteger(env.seq) || (env.seq as number) < 0) {
    return reject('not-envelope', 'field seq: expected a non-negative integer', kind);
  }
  if (!Number.isSafeInteger(env.ts) || (env.ts as number) < 0) {
    return reject('not-envelope', 'field ts: expected a non-negative integer', kind);
  }
  const checker = checkers[k];
  if (!checker.Check(env.body)) {
    const first = checker.Errors(env.body).First();
    const detail = first ? `body${first.path || ''}: ${first.message}` : 'body: invalid';
    return reject('invalid-body', detail, kind);
  }
  return { ok: true, message: env as unknown as Message };
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value;
}

/** Validates a body against its kind's schema; used at other boundaries (HTTP, files) that carry the same shapes. */
export function validateBody<K extends MessageKind>(
  kind: K,
  body: unknown,
): { ok: true; body: BodyOf<K> } | { ok: false; detail: string } {
  const checker = checkers[kind];
  if (checker.Check(body)) return { ok: true, body: body as BodyOf<K> };
  const first = checker.Errors(body).First();
  return { ok: false, detail: first ? `${first.path || '/'}: ${first.message}` : 'invalid' };
}
