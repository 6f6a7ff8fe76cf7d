import { StreamState, YamuxStream } from '@chainsafe/libp2p-yamux/stream';
import { byteStream } from '@libp2p/utils';
import { afterEach, describe, expect, it } from 'vitest';
import { testMeshNodes } from './testing/pair.js';
import { windowUpdateCanWait } from './yamux-window.js';

const WINDOW = 256 * 1024;

/** A yamux stream's flow-control fields on a bare object, with sendFrame recorded. */
function fakeStream(state: StreamState, recvWindowCapacity: number) {
  const frames: Array<{ type: number; flag: number; length: number }> = [];
  const fields = {
    state,
    streamId: 1,
    recvWindow: WINDOW,
    recvWindowCapacity,
    maxStreamWindowSize: 16 * 1024 * 1024,
    epochStart: 0,
    getRTT: () => -1,
    sendFrame: (header: { type: number; flag: number; length: number }) => {
      frames.push(header);
      return true;
    },
  };
  const stream = Object.assign(Object.create(YamuxStream.prototype) as object, fields) as unknown as YamuxStream;
  return { stream, frames };
}

describe('yamux window updates', () => {
  it('waits while at least half of the receive window is free', () => {
    expect(
      windowUpdateCanWait({ state: StreamState.Established, recvWindow: WINDOW, recvWindowCapacity: WINDOW }),
    ).toBe(true);
    const { stream, frames } = fakeStream(StreamState.Established, WINDOW - 1_200);
    stream.sendWindowUpdate();
    expect(frames).toEqual([]);
  });

  it('sends one update restoring the whole window once more than half is used', () => {
    const { stream, frames } = fakeStream(StreamState.Established, WINDOW / 2 - 1);
    stream.sendWindowUpdate();
    expect(frames).toHaveLength(1);
    expect(frames[0]!.length).toBe(WINDOW / 2 + 1);
  });

  it('still sends the opening flags at once', () => {
    const { stream, frames } = fakeStream(StreamState.SYNReceived, WINDOW);
    stream.sendWindowUpdate();
    expect(frames).toHaveLength(1);
    expect(frames[0]!.flag).not.toBe(0);
  });
});

describe('yamux window updates between two mesh nodes', () => {
  const nodes = testMeshNodes();
  afterEach(nodes.stopAll);

  it('a transfer many windows long still arrives whole (updates flow when they are needed)', async () => {
    const [a, b] = await nodes.pair();
    const CHUNK = 64 * 1024;
    const CHUNKS = 64; // 4 MiB: 16 initial receive windows
    const received = new Promise<number>((resolve, reject) => {
      void b.libp2p.handle('/hermes-test/bulk/1', async (stream) => {
        try {
          let total = 0;
          for await (const chunk of stream) total += chunk.byteLength;
          resolve(total);
        } catch (err) {
          reject(err);
        }
      });
    });
    await a.dial(b.addrs()[0]!);
    const stream = await a.libp2p.dialProtocol(b.libp2p.peerId, '/hermes-test/bulk/1');
    const bytes = byteStream(stream);
    for (let i = 0; i < CHUNKS; i++) await bytes.write(new Uint8Array(CHUNK).fill(i));
    await stream.close();
    expect(await received).toBe(CHUNK * CHUNKS);
  }, 20_000);
});
