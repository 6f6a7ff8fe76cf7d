import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import {
  decodeMessage,
  encodeMessage,
  MAX_MESSAGE_BYTES,
  MessageTooLargeError,
  maxBytesOf,
  packValue,
} from './codec.js';
import { sampleAdvert } from './testing/fixtures.js';

const raw = new Packr({ useRecords: false });
const FROM = '12D3KooWRBy97UB99e3J6hiPesre1MZeuNQvfan4gBziswrRJsNK';

function rejectionOf(bytes: Uint8Array) {
  const decoded = decodeMessage(bytes);
  if (decoded.ok) throw new Error('expected a rejection');
  return decoded.rejection;
}

describe('codec', () => {
  it('round-trips every field of an advert', () => {
    const advert = sampleAdvert();
    const decoded = decodeMessage(encodeMessage('advert', FROM, 7, advert, 1_000));
    expect(decoded).toEqual({
      ok: true,
      message: { v: 1, kind: 'advert', from: FROM, seq: 7, ts: 1_000, body: advert },
    });
  });

  it('round-trips ledger events with arbitrary data', () => {
    const body = {
      events: [
        {
          origin: FROM,
          seq: 1,
          lamport: 3,
          ts: 5,
          type: 'action.state',
          actionId: 'a1',
          epoch: 2,
          state: 'IN_PROGRESS',
        },
        {
          origin: FROM,
          seq: 2,
          lamport: 4,
          ts: 6,
          type: 'goal.submitted',
          goalId: 'g1',
          data: { text: 'hi', n: [1, 2] },
        },
      ],
    } as const;
    const decoded = decodeMessage(encodeMessage('events', FROM, 1, structuredClone(body) as never));
    expect(decoded.ok && decoded.message.body).toEqual(body);
  });

  it('rejects an unknown version and says which versions it reads', () => {
    const r = rejectionOf(raw.pack({ v: 2, kind: 'advert', from: FROM, seq: 1, ts: 1, body: sampleAdvert() }));
    expect(r).toMatchObject({ reason: 'unknown-version' });
    expect(r.detail).toContain('version 2');
  });

  it('rejects an unknown kind', () => {
    expect(rejectionOf(raw.pack({ v: 1, kind: 'gossip', from: FROM, seq: 1, ts: 1, body: {} })).reason).toBe(
      'unknown-kind',
    );
  });

  it('rejects wrong types with the path of the first bad field', () => {
    const body = { ...sampleAdvert(), cpu: { cores: 'many', model: 'x', load: 0 } };
    const r = rejectionOf(raw.pack({ v: 1, kind: 'advert', from: FROM, seq: 1, ts: 1, body }));
    expect(r).toMatchObject({ reason: 'invalid-body', kind: 'advert' });
    expect(r.detail).toContain('/cpu/cores');
  });

  it('rejects a missing envelope field', () => {
    expect(rejectionOf(raw.pack({ v: 1, kind: 'advert', seq: 1, ts: 1, body: sampleAdvert() })).reason).toBe(
      'not-envelope',
    );
    expect(rejectionOf(raw.pack([1, 2, 3])).reason).toBe('not-envelope');
  });

  it('rejects a message over its kind cap, and anything over the global cap before decoding', () => {
    const big = 'x'.repeat(maxBytesOf('leave'));
    const r = rejectionOf(
      raw.pack({ v: 1, kind: 'leave', from: FROM, seq: 1, ts: 1, body: { nodeId: 'n', reason: big } }),
    );
    expect(r).toMatchObject({ reason: 'too-large', kind: 'leave' });
    expect(rejectionOf(new Uint8Array(MAX_MESSAGE_BYTES + 1)).reason).toBe('too-large');
  });

  it('refuses to encode a message no peer would accept', () => {
    const advert = sampleAdvert({ name: 'n'.repeat(100) });
    advert.models = Array.from({ length: 512 }, (_, i) => ({ ...advert.models[0]!, name: `m${i}`.padEnd(250, 'x') }));
    expect(() => encodeMessage('advert', FROM, 1, advert)).toThrow(MessageTooLargeError);
  });

  it('rejects bytes that are not msgpack', () => {
    expect(rejectionOf(new Uint8Array([0x92])).reason).toBe('not-msgpack');
    expect(rejectionOf(new Uint8Array([0xc1])).reason).toBe('not-envelope');
    expect(rejectionOf(new Uint8Array([0xdd, 0xff, 0xff, 0xff, 0xff])).reason).toBe('not-msgpack');
  });

  it('a large value packed leaves no large buffer behind for the small results packed after it', () => {
    const packr = new Packr({ useRecords: false });
    // msgpackr alone: the next small result is a slice of the buffer the large value grew (what every kept
    // small message then pins).
    packr.pack({ blob: 'x'.repeat(3 * 1024 * 1024) });
    expect(packr.pack({ small: 1 }).buffer.byteLength).toBeGreaterThan(3 * 1024 * 1024);
    const large = packValue(packr, { blob: 'y'.repeat(3 * 1024 * 1024) });
    const small = packValue(packr, { small: 2 });
    expect(small.buffer.byteLength).toBeLessThan(64 * 1024);
    // Both results are whole and intact.
    expect(packr.unpack(small)).toEqual({ small: 2 });
    expect((packr.unpack(large) as { blob: string }).blob).toBe('y'.repeat(3 * 1024 * 1024));
  });
});
