import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeMessage, encodeMessage, REJECT_REASONS } from './codec.js';
import { sampleAdvert } from './testing/fixtures.js';

const FROM = '12D3KooWRBy97UB99e3J6hiPesre1MZeuNQvfan4gBziswrRJsNK';

/** Every input is either a valid message or a rejection with a known reason; decode never throws. */
function assertWellBehaved(bytes: Uint8Array) {
  const decoded = decodeMessage(bytes);
  if (decoded.ok) {
    expect(decoded.message.v).toBe(1);
    // An accepted message must re-encode: it is fully valid, not just "did not crash".
    expect(
      decodeMessage(
        encodeMessage(decoded.message.kind, decoded.message.from, decoded.message.seq, decoded.message.body as never),
      ).ok,
    ).toBe(true);
  } else {
    expect(REJECT_REASONS).toContain(decoded.rejection.reason);
    expect(decoded.rejection.detail.length).toBeGreaterThan(0);
  }
  return decoded.ok;
}

describe('codec fuzz', () => {
  const seeds = [
    encodeMessage('advert', FROM, 1, sampleAdvert()),
    encodeMessage('leave', FROM, 2, { nodeId: FROM, reason: 'shutdown' }),
    encodeMessage('events', FROM, 3, {
      events: [{ origin: FROM, seq: 1, lamport: 1, ts: 1, type: 'goal.submitted', goalId: 'g', data: { text: 'x' } }],
    }),
    encodeMessage('ack', FROM, 4, { acks: [{ actionId: 'a', epoch: 1, accepted: true }] }),
  ];

  it('survives 50k random byte strings', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), (bytes) => {
        assertWellBehaved(bytes);
      }),
      { numRuns: 50_000, seed: 20261124 },
    );
  });

  it('survives 50k mutations of valid messages (flips, truncations, splices)', () => {
    let accepted = 0;
    const mutation = fc.record({
      seed: fc.constantFrom(...seeds.keys()),
      flips: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }),
      cut: fc.option(fc.nat()),
      insert: fc.option(fc.tuple(fc.nat(), fc.uint8Array({ maxLength: 16 }))),
    });
    fc.assert(
      fc.property(mutation, ({ seed, flips, cut, insert }) => {
        let bytes = Uint8Array.from(seeds[seed]!);
        for (const [at, value] of flips) bytes[at % bytes.length] = value;
        if (insert) {
          const at = insert[0] % bytes.length;
          bytes = Uint8Array.from([...bytes.subarray(0, at), ...insert[1], ...bytes.subarray(at)]);
        }
        if (cut !== null) bytes = bytes.subarray(0, cut % (bytes.length + 1));
        if (assertWellBehaved(bytes)) accepted++;
      }),
      { numRuns: 50_000, seed: 11242026 },
    );
    // Mutations that keep a message valid exist (e.g. a changed digit), but most must be caught.
    expect(accepted).toBeLessThan(50_000);
  });
});
