import { byteStream } from '@libp2p/utils';
import { afterEach, describe, expect, it } from 'vitest';
import XSalsa20 from 'xsalsa20';
import { CIPHER_CHUNK_BYTES, updateInOneGo } from './pnet-cipher.js';
import { testMeshNodes } from './testing/pair.js';

const KEY = new Uint8Array(32).fill(7);
const NONCE = new Uint8Array(24).fill(9);

/** Pseudo-random bytes, so a cipher bug cannot hide behind zeros. */
function bytes(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed;
  for (let i = 0; i < length; i++) {
    x = (x * 1_103_515_245 + 12_345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

// Runs first: the demonstration at the end of this file exhausts the process's shared cipher memory on purpose.
describe('pnet connections under large writes', () => {
  const nodes = testMeshNodes();
  afterEach(nodes.stopAll);

  it('a connection carries 128 MiB over 8 streams at once and stays up (the cipher memory never grows)', async () => {
    const [a, b] = await nodes.pair();
    const MiB = 1024 * 1024;
    const STREAMS = 8;
    const WRITES = 16;
    let total = 0;
    const done: Promise<void>[] = [];
    await b.libp2p.handle(
      '/hermes-test/bulk/1',
      (stream) => {
        done.push(
          (async () => {
            for await (const chunk of stream) total += chunk.byteLength;
          })(),
        );
      },
      { maxInboundStreams: STREAMS },
    );
    await a.dial(b.addrs()[0]!);
    const payload = bytes(MiB, 1);
    // Many streams writing at once back the socket up: what waits is then encrypted as one large buffer.
    await Promise.all(
      Array.from({ length: STREAMS }, async () => {
        const stream = await a.libp2p.dialProtocol(b.libp2p.peerId, '/hermes-test/bulk/1');
        const writer = byteStream(stream);
        for (let i = 0; i < WRITES; i++) await writer.write(payload);
        await stream.close();
      }),
    );
    await expect.poll(() => done.length, { timeout: 10_000 }).toBe(STREAMS);
    await Promise.all(done);
    expect(total).toBe(STREAMS * WRITES * MiB);
    expect(a.connectedPeers()).toEqual([b.peerId]);
  }, 60_000);
});

describe('xsalsa20 in pieces', () => {
  it('encrypts a large buffer to the same bytes as small pieces do, and decrypts it back', () => {
    const plain = bytes(5 * CIPHER_CHUNK_BYTES + 123, 2);
    const whole = XSalsa20(NONCE, KEY).update(plain);
    const byPieces = XSalsa20(NONCE, KEY);
    const expected = new Uint8Array(plain.length);
    for (let at = 0; at < plain.length; at += 1000) {
      expected.set(byPieces.update(plain.subarray(at, at + 1000)), at);
    }
    expect(Buffer.from(whole).equals(Buffer.from(expected))).toBe(true);
    expect(Buffer.from(XSalsa20(NONCE, KEY).update(whole)).equals(Buffer.from(plain))).toBe(true);
  });

  it('writes into a caller-given output buffer', () => {
    const plain = bytes(3 * CIPHER_CHUNK_BYTES, 3);
    const out = new Uint8Array(plain.length);
    const returned = XSalsa20(NONCE, KEY).update(plain, out);
    expect(returned).toBe(out);
    expect(Buffer.from(XSalsa20(NONCE, KEY).update(out)).equals(Buffer.from(plain))).toBe(true);
  });

  it('survives the write pattern that exhausts the library’s own memory', () => {
    const ciphers = [XSalsa20(NONCE, KEY), XSalsa20(NONCE, KEY), XSalsa20(NONCE, KEY)];
    const big = new Uint8Array(700_000);
    const small = new Uint8Array(1000);
    for (let round = 0; round < 300; round++) {
      ciphers[0]!.update(big);
      ciphers[1]!.update(small);
      ciphers[2]!.update(small);
    }
  });

  // If this starts failing, the library has fixed its memory handling and pnet-cipher.ts can go.
  it('the library alone fails on that pattern (why pnet-cipher.ts exists)', () => {
    const ciphers = [XSalsa20(NONCE, KEY), XSalsa20(NONCE, KEY), XSalsa20(NONCE, KEY)];
    const update = (i: number, input: Uint8Array) => updateInOneGo.call(ciphers[i], input);
    const big = new Uint8Array(700_000);
    const small = new Uint8Array(1000);
    expect(() => {
      for (let round = 0; round < 300; round++) {
        update(0, big);
        update(1, small);
        update(2, small);
      }
    }).toThrow(/Maximum memory size exceeded/);
  });
});
