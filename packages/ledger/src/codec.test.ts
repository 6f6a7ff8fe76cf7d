import { describe, expect, it } from 'vitest';
import { ByteBuffer, encodeBuiltEventAt, encodeEventAt, eventPackr } from './codec.js';
import { seededRandom } from './testing/simulate.js';

const random = seededRandom(7);
const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;

const STRINGS = [
  '',
  'a',
  'bench',
  'x'.repeat(31),
  'x'.repeat(32),
  'é'.repeat(15),
  'é'.repeat(16),
  '€'.repeat(21),
  'ü'.repeat(63),
  '€'.repeat(63),
  'y'.repeat(64),
  '€'.repeat(100),
  'z'.repeat(255),
  'z'.repeat(256),
  'q'.repeat(70_000),
  '😀 emoji',
  'lone \ud800 high',
  'lone \udc00 low',
  'end \ud83d',
  'key with spaces',
  '42',
];
const NUMBERS = [
  0,
  -0,
  1,
  31,
  32,
  127,
  128,
  255,
  256,
  65_535,
  65_536,
  2 ** 31,
  2 ** 32 - 1,
  2 ** 32,
  -1,
  -32,
  -33,
  -128,
  -129,
  -32_768,
  -32_769,
  -(2 ** 31),
  -(2 ** 31) - 1,
  1.5,
  -0.25,
  1e300,
  Number.MAX_SAFE_INTEGER,
  NaN,
  Infinity,
  -Infinity,
  1_733_000_000_000,
];

function value(depth: number): unknown {
  const kind = Math.floor(random() * (depth > 3 ? 5 : 8));
  switch (kind) {
    case 0:
      return pick(STRINGS);
    case 1:
      return pick(NUMBERS);
    case 2:
      return pick([true, false, null, undefined]);
    case 3:
      return pick(STRINGS).slice(0, 20);
    case 4:
      return Math.floor(random() * 2 ** 40) * (random() < 0.5 ? -1 : 1);
    case 5:
      return Array.from({ length: pick([0, 1, 3, 15, 16, 20]) }, () => value(depth + 1));
    default: {
      const object: Record<string, unknown> = {};
      const size = pick([0, 1, 2, 5, 17]);
      for (let i = 0; i < size; i++) object[pick(STRINGS).slice(0, 12) + i] = value(depth + 1);
      return object;
    }
  }
}

function event(): Record<string, unknown> {
  const out: Record<string, unknown> = {
    origin: pick(['bench', 'node-a', 'é-node']),
    seq: Math.floor(random() * 2 ** 33) + 1,
    lamport: Math.floor(random() * 1000),
    ts: pick([0, 1000, 1_733_000_000_000, 2 ** 32 + 5]),
    type: pick(['action.state', 'goal.submitted', 'x']),
  };
  if (random() < 0.7) out.goalId = pick(STRINGS).slice(0, 40);
  if (random() < 0.5) out.actionId = pick(STRINGS).slice(0, 40);
  if (random() < 0.5) out.epoch = pick(NUMBERS);
  if (random() < 0.5) out.state = 'ASSIGNED';
  if (random() < 0.9) out.data = value(0);
  return out;
}

function encoded(value: unknown, out = new ByteBuffer(16)): Buffer {
  out.length = 0;
  const size = encodeEventAt(out, value as never);
  return Buffer.from(out.bytes.subarray(0, size));
}

describe('encodeBuiltEventAt', () => {
  it('writes exactly the bytes msgpackr writes for events built in LedgerEvent field order', () => {
    const out = new ByteBuffer(8);
    for (let i = 0; i < 3000; i++) {
      const e = event();
      // As the ledger builds events: a field is there only when defined.
      if (e.data === undefined) delete e.data;
      out.length = 0;
      const size = encodeBuiltEventAt(out, e as never);
      const bytes = Buffer.from(out.bytes.subarray(0, size));
      expect(bytes.equals(eventPackr.pack(e)), JSON.stringify(e)?.slice(0, 300)).toBe(true);
    }
    const odd = {
      origin: 'o',
      seq: 1,
      lamport: 1,
      ts: 1,
      type: 't',
      data: { when: new Date(5), b: new Uint8Array(2) },
    };
    out.length = 0;
    const size = encodeBuiltEventAt(out, odd as never);
    expect(Buffer.from(out.bytes.subarray(0, size)).equals(eventPackr.pack(odd))).toBe(true);
  });
});

describe('encodeEventAt', () => {
  it('writes exactly the bytes msgpackr writes, for every kind of value it knows', () => {
    const out = new ByteBuffer(8);
    for (let i = 0; i < 3000; i++) {
      const e = event();
      expect(encoded(e, out).equals(eventPackr.pack(e)), JSON.stringify(e)?.slice(0, 300)).toBe(true);
    }
  });

  it('leaves values it does not know to msgpackr, with the same result', () => {
    const odd = [
      { data: new Uint8Array([1, 2, 3]) },
      { data: { when: new Date(1_733_000_000_000) } },
      { data: [1, new Map([['a', 1]])] },
      { data: Object.assign(Object.create(null), { a: 1 }) },
      { data: { big: 12n } },
      { data: { own: 1, hasOwnProperty: () => true } },
      { data: { fn: () => 1 } },
    ];
    for (const e of odd) expect(encoded(e).equals(eventPackr.pack(e))).toBe(true);
  });

  it('appends after what the buffer holds and grows it as needed', () => {
    const out = new ByteBuffer(4);
    const events = Array.from({ length: 50 }, event);
    for (const e of events) out.length += encodeEventAt(out, e as never);
    expect(out.written().equals(Buffer.concat(events.map((e) => eventPackr.pack(e))))).toBe(true);
    expect(eventPackr.unpackMultiple(out.written())).toEqual(events.map((e) => eventPackr.unpack(eventPackr.pack(e))));
  });
});
