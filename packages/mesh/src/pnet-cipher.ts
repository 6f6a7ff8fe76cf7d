import XSalsa20 from 'xsalsa20';

/**
 * The private-network layer (@libp2p/pnet) encrypts every connection with the `xsalsa20` package, whose WASM
 * build keeps one shared memory (640 KB, growing to at most 64 MB) and one view of it per cipher. A write larger
 * than the memory grows it, which leaves every other cipher's view detached (length 0); each of those then grows
 * the memory again by its whole working size on its next write, whatever that write's size. Under load (a sync
 * page, a burst of gossip backed up behind a busy peer) the memory reached its cap within seconds and every
 * connection of the process failed with "WebAssembly.Memory.grow(): Maximum memory size exceeded": messages in
 * flight were lost and the mesh had to reconnect and re-sync.
 *
 * XSalsa20 is a stream cipher, so encrypting a buffer piece by piece gives the same bytes as in one go. Feeding
 * it pieces that fit the initial memory means it never grows, so no view is ever left detached.
 */
export const CIPHER_CHUNK_BYTES = 64 * 1024;

type Update = (input: Uint8Array, output?: Uint8Array) => Uint8Array;
const proto = XSalsa20.prototype as { update: Update };

/** The library's own update, for tests that show what the chunking prevents. */
export const updateInOneGo: Update = proto.update;

proto.update = function update(this: unknown, input: Uint8Array, output?: Uint8Array): Uint8Array {
  if (!input || input.length <= CIPHER_CHUNK_BYTES) return updateInOneGo.call(this, input, output);
  const out = output ?? new Uint8Array(input.length);
  for (let at = 0; at < input.length; at += CIPHER_CHUNK_BYTES) {
    const end = Math.min(at + CIPHER_CHUNK_BYTES, input.length);
    updateInOneGo.call(this, input.subarray(at, end), out.subarray(at, end));
  }
  return out;
};
