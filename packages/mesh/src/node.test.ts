import { type AddressInfo, createServer } from 'node:net';
import {
  encodeMessage,
  PROTOCOLS,
  ProtocolNotServedError,
  type Rejection,
  sampleAdvert,
  topics,
} from '@hermes-mesh/protocol';
import { generateKeyPair } from '@libp2p/crypto/keys';
import type { PrivateKey } from '@libp2p/interface';
import { generateKey } from '@libp2p/pnet';
import { Packr } from 'msgpackr';
import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '../../../test/support/wait.js';
import { parseMeshKey } from './keys.js';
import { createMeshNode, type MeshNodeInit } from './node.js';
import type { GossipMessage, MeshNode } from './types.js';

type TestNode = Awaited<ReturnType<typeof createMeshNode>>;
const running: MeshNode[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((n) => n.stop().catch(() => {})));
});

function newPsk(): Uint8Array {
  const psk = new Uint8Array(95);
  generateKey(psk);
  return parseMeshKey(psk);
}

async function start(psk: Uint8Array, extra: Partial<MeshNodeInit> = {}): Promise<TestNode> {
  const node = await createMeshNode({ privateKey: await generateKeyPair('Ed25519'), psk, ...extra });
  running.push(node);
  return node;
}

function record(node: MeshNode) {
  const messages: GossipMessage[] = [];
  const rejected: Rejection[] = [];
  node.on('message', (m) => messages.push(m));
  node.on('rejected', (r) => rejected.push(r));
  return { messages, rejected };
}

/** Publishes raw bytes on the adverts topic, signed by the node: how a buggy or hostile member would. */
async function publishRaw(node: TestNode, bytes: Uint8Array) {
  await node.libp2p.services.pubsub.publish(topics(node.meshId).adverts, bytes);
}

async function meshOf(count: number, psk = newPsk()) {
  const first = await start(psk);
  const rest = await Promise.all(Array.from({ length: count - 1 }, () => start(psk, { bootstrap: first.addrs() })));
  const nodes = [first, ...rest];
  // Gossip flows once every node has the others as subscribers of the topic.
  await waitFor(
    () => nodes.every((n) => n.libp2p.services.pubsub.getSubscribers(topics(n.meshId).adverts).length >= 1),
    'gossip subscriptions',
  );
  return nodes;
}

describe('mesh node', () => {
  it('delivers a signed advert to every node through the bootstrap peer', async () => {
    const nodes = await meshOf(3);
    const seen = nodes.map(record);
    const advert = sampleAdvert({ nodeId: nodes[1]!.peerId });
    await waitFor(async () => {
      await nodes[1]!.publish('advert', { ...advert, seq: advert.seq + 1 });
      return seen[0]!.messages.length > 0 && seen[2]!.messages.length > 0;
    }, 'advert at nodes 0 and 2');
    expect(seen[2]!.messages[0]).toMatchObject({ kind: 'advert', from: nodes[1]!.peerId, body: { name: advert.name } });
  });

  it('redials a bootstrap peer that was not up yet, and one whose connection dropped, and then stops dialling', async () => {
    const psk = newPsk();
    const key = await generateKeyPair('Ed25519');
    // A free port, for a bootstrap node that starts after the node that dials it.
    const port = await new Promise<number>((resolve) => {
      const server = createServer().listen(0, '127.0.0.1', () => {
        const { port } = server.address() as AddressInfo;
        server.close(() => resolve(port));
      });
    });
    const addr = `/ip4/127.0.0.1/tcp/${port}`;
    const joiner = await start(psk, { bootstrap: [addr], reconnectMs: 100 });
    expect(joiner.connectedPeers()).toEqual([]);
    const boot = await createMeshNode({ privateKey: key, psk, listen: [addr] });
    running.push(boot);
    await waitFor(() => joiner.connectedPeers().includes(boot.peerId), 'the joiner to reach the late bootstrap node');
    // The joiner counts the connection once its side of the handshake is done; the hang-up below must wait for
    // boot's side too, or (on a loaded machine) it finds nothing to close and the joiner never sees one.
    await waitFor(() => boot.connectedPeers().includes(joiner.peerId), 'the bootstrap node to hold the connection');
    let dropped = false;
    joiner.on('peer:disconnect', (peer) => {
      if (peer === boot.peerId) dropped = true;
    });
    await boot.libp2p.hangUp(joiner.libp2p.peerId);
    await waitFor(() => dropped, 'the joiner to see the hang-up');
    await waitFor(() => joiner.connectedPeers().includes(boot.peerId), 'the joiner to redial after the hang-up');
    // Connected again, dialling stops: a timer left running would wake an idle node every reconnectMs.
    await new Promise((r) => setTimeout(r, 300));
    expect(joiner.libp2p.getConnections(boot.libp2p.peerId)).toHaveLength(1);
    expect((joiner as unknown as { reconnectTimer?: unknown }).reconnectTimer).toBeUndefined();
  });

  it('answers direct requests with validated replies', async () => {
    const [a, b] = await meshOf(2);
    // Before b serves the protocol (a starting node joins first, registers handlers after): a typed refusal.
    const early = a!.request(b!.peerId, PROTOCOLS.ledgerSync, 'sync-req', { have: {}, limit: 1 });
    await expect(early).rejects.toBeInstanceOf(ProtocolNotServedError);
    await expect(a!.notify(b!.peerId, PROTOCOLS.ledgerPush, 'events', { events: [] })).rejects.toBeInstanceOf(
      ProtocolNotServedError,
    );
    await b!.handle(PROTOCOLS.ledgerSync, async (request, peer) => {
      expect(peer).toBe(a!.peerId);
      if (request.kind !== 'sync-req') return undefined;
      return { kind: 'sync-res', body: { events: [], more: Object.keys(request.body.have).length > 0 } };
    });
    const reply = await a!.request(b!.peerId, PROTOCOLS.ledgerSync, 'sync-req', { have: { x: 1 }, limit: 10 });
    expect(reply).toMatchObject({ kind: 'sync-res', from: b!.peerId, body: { events: [], more: true } });
    await expect(
      a!.request(b!.peerId, PROTOCOLS.ledgerSync, 'ack', { acks: [] }, { timeoutMs: 2_000 }),
    ).rejects.toThrow();
  });

  it('keeps one stream per peer and protocol: pipelined requests are answered in order', async () => {
    const [a, b] = await meshOf(2);
    await b!.handle(PROTOCOLS.ledgerSync, async (request) => {
      if (request.kind !== 'sync-req') return undefined;
      const n = request.body.limit - 1;
      // Later requests answer sooner: replies still come back in request order, each to its own request.
      await new Promise((r) => setTimeout(r, 20 - n));
      return { kind: 'sync-res', body: { events: [], more: n % 2 === 0 } };
    });
    const replies = await Promise.all(
      Array.from({ length: 20 }, (_, n) =>
        a!.request(b!.peerId, PROTOCOLS.ledgerSync, 'sync-req', { have: {}, limit: n + 1 }),
      ),
    );
    expect(replies.map((r) => (r.body as { more: boolean }).more)).toEqual(
      Array.from({ length: 20 }, (_, n) => n % 2 === 0),
    );
    const streams = a!.libp2p
      .getConnections(b!.libp2p.peerId)
      .flatMap((c) => c.streams)
      .filter((s) => s.protocol === PROTOCOLS.ledgerSync);
    expect(streams).toHaveLength(1);
  });

  it('many more pipelined requests than a stream queues are all answered, in order (reading pauses, then resumes)', async () => {
    const [a, b] = await meshOf(2);
    await b!.handle(PROTOCOLS.ledgerSync, async (request) => {
      if (request.kind !== 'sync-req') return undefined;
      await new Promise((r) => setImmediate(r));
      return { kind: 'sync-res', body: { events: [], more: request.body.limit % 3 === 0 } };
    });
    const replies = await Promise.all(
      Array.from({ length: 300 }, (_, n) =>
        a!.request(b!.peerId, PROTOCOLS.ledgerSync, 'sync-req', { have: {}, limit: n + 1 }),
      ),
    );
    expect(replies.map((r) => (r.body as { more: boolean }).more)).toEqual(
      Array.from({ length: 300 }, (_, n) => (n + 1) % 3 === 0),
    );
  });

  it('a request that times out resets its stream, and the next request opens a new one', async () => {
    const [a, b] = await meshOf(2);
    let first = true;
    await b!.handle(PROTOCOLS.ledgerSync, async () => {
      if (first) {
        first = false;
        await new Promise((r) => setTimeout(r, 1_000));
      }
      return { kind: 'sync-res', body: { events: [], more: false } };
    });
    const slow = a!.request(b!.peerId, PROTOCOLS.ledgerSync, 'sync-req', { have: {}, limit: 1 }, { timeoutMs: 200 });
    await expect(slow).rejects.toThrow(/no reply within 200 ms/);
    const next = await a!.request(b!.peerId, PROTOCOLS.ledgerSync, 'sync-req', { have: {}, limit: 1 });
    expect(next).toMatchObject({ kind: 'sync-res', from: b!.peerId });
  });

  it('delivers one-way messages in order, and rejects a malformed frame without stopping', async () => {
    const [a, b] = await meshOf(2);
    const got: number[] = [];
    const seen = record(b!);
    await b!.listen('/hermes/test-report/1.0.0', (message, peer) => {
      expect(peer).toBe(a!.peerId);
      if (message.kind === 'sync-req') got.push(message.body.limit - 1);
    });
    for (let n = 0; n < 50; n++)
      await a!.notify(b!.peerId, '/hermes/test-report/1.0.0', 'sync-req', { have: {}, limit: n + 1 });
    await waitFor(() => got.length === 50, '50 one-way messages');
    expect(got).toEqual(Array.from({ length: 50 }, (_, n) => n));
    // A raw frame that is not a message: counted as rejected, the stream reset, the node fine.
    const stream = await a!.libp2p.dialProtocol(b!.libp2p.peerId, '/hermes/test-report/1.0.0');
    const junk = Buffer.from('not msgpack at all');
    const header = Buffer.alloc(4);
    header.writeUInt32BE(junk.length);
    stream.send(Buffer.concat([header, junk]));
    await waitFor(() => seen.rejected.length === 1, 'the junk frame rejected');
    await a!.notify(b!.peerId, '/hermes/test-report/1.0.0', 'sync-req', { have: {}, limit: 100 });
    await waitFor(() => got.at(-1) === 99, 'delivery after the junk');
  });

  it('notifyEach sends one message to several peers; a peer it cannot reach fails alone', async () => {
    const [a, b, c] = await meshOf(3);
    const got: Array<[string, number, number]> = [];
    for (const node of [b!, c!]) {
      await node.listen('/hermes/test-report/1.0.0', (message) => {
        if (message.kind === 'sync-req') got.push([node.peerId, message.seq, message.body.limit]);
      });
    }
    const sends = a!.notifyEach([b!.peerId, c!.peerId, 'not-a-peer'], '/hermes/test-report/1.0.0', 'sync-req', {
      have: {},
      limit: 7,
    });
    expect(sends).toHaveLength(3);
    const refused = expect(sends[2]).rejects.toThrow(); // handled at once, not after the others resolve
    await Promise.all(sends.slice(0, 2));
    await refused;
    await waitFor(() => got.length === 2, 'the message at b and c');
    // One message, encoded once: the same envelope (same seq) at both.
    expect(got.map(([, seq, limit]) => [seq, limit])).toEqual([
      [got[0]![1], 7],
      [got[0]![1], 7],
    ]);
    expect(new Set(got.map(([peer]) => peer))).toEqual(new Set([b!.peerId, c!.peerId]));
  });

  it('a node with another mesh key cannot connect, and hears nothing', async () => {
    const [a, b] = await meshOf(2);
    const outsider = await start(newPsk());
    const heard = record(outsider);
    await expect(outsider.dial(a!.addrs()[0]!, AbortSignal.timeout(1_500))).rejects.toThrow();
    await a!.publish('advert', sampleAdvert({ nodeId: a!.peerId }));
    expect(outsider.connectedPeers()).toEqual([]);
    expect(a!.connectedPeers()).toEqual([b!.peerId]);
    expect(heard.messages).toEqual([]);
  });

  it('rejects and counts unknown versions, wrong types, oversize bodies and forged senders, and keeps running', async () => {
    const [a, b] = await meshOf(2);
    const seen = record(b!);
    const raw = new Packr({ useRecords: false });
    const good = sampleAdvert({ nodeId: a!.peerId });
    await publishRaw(a!, raw.pack({ v: 9, kind: 'advert', from: a!.peerId, seq: 1, ts: 1, body: good }));
    await publishRaw(
      a!,
      raw.pack({ v: 1, kind: 'advert', from: a!.peerId, seq: 2, ts: 1, body: { ...good, tier: 7 } }),
    );
    await publishRaw(
      a!,
      raw.pack({ v: 1, kind: 'advert', from: a!.peerId, seq: 3, ts: 1, body: { ...good, name: 'x'.repeat(70_000) } }),
    );
    // Signed by a, but claims to be b's advert.
    await publishRaw(a!, encodeMessage('advert', a!.peerId, 4, sampleAdvert({ nodeId: b!.peerId })));
    await waitFor(() => seen.rejected.length >= 4, 'four rejections');
    expect(seen.rejected.map((r) => r.reason)).toEqual([
      'unknown-version',
      'invalid-body',
      'too-large',
      'sender-mismatch',
    ]);
    // Still serving: a valid advert after the garbage gets through.
    await a!.publish('advert', good);
    await waitFor(() => seen.messages.length === 1, 'the valid advert');
  });

  it('counts a message with a bad signature, which gossipsub drops before validation', async () => {
    const psk = newPsk();
    const honest = await start(psk);
    const seen = record(honest);
    // A member whose gossipsub signs with garbage: it holds the mesh key, but its signatures do not verify.
    const forger = await start(psk, {
      bootstrap: honest.addrs(),
      wrapGossipComponents: (components) => {
        const real = (components as unknown as { privateKey: PrivateKey }).privateKey;
        const fake = new Proxy(real, {
          get: (target, prop) =>
            prop === 'sign' ? async () => new Uint8Array(64).fill(7) : Reflect.get(target, prop, target),
        });
        return new Proxy(components, {
          get: (target, prop) => (prop === 'privateKey' ? fake : Reflect.get(target, prop, target)),
        });
      },
    });
    await waitFor(() => honest.libp2p.services.pubsub.getSubscribers(topics(honest.meshId).adverts).length > 0, 'sub');
    await waitFor(async () => {
      await forger.publish('advert', sampleAdvert({ nodeId: forger.peerId }));
      return seen.rejected.some((r) => r.reason === 'bad-signature');
    }, 'a bad-signature rejection');
    expect(seen.messages).toEqual([]);
  });
});
