import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createMeshNode, parseMeshKey } from '@hermes-mesh/mesh';
import { encodeMessage, PROTOCOLS, sampleAdvert, topics } from '@hermes-mesh/protocol';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { Packr } from 'msgpackr';
import { afterAll, describe, expect, it } from 'vitest';
import {
  counterValue,
  type DaemonProcess,
  peersOf,
  startDaemonProcess,
  stopDaemon,
  tempDir,
} from './support/daemons.js';
import { waitFor } from './support/wait.js';

const DEAD_AFTER_MS = 3_000;
const started: DaemonProcess[] = [];
afterAll(async () => {
  await Promise.all(started.map(stopDaemon));
});

async function launch(opts: Parameters<typeof startDaemonProcess>[0]) {
  const d = await startDaemonProcess({
    ...opts,
    // Probes every minute: an advert that changes only with it leaves the beats alone between full adverts.
    args: ['--dead-after-ms', String(DEAD_AFTER_MS), '--probe-interval-ms', '60000', ...(opts.args ?? [])],
  });
  started.push(d);
  return d;
}

async function stateOf(observer: DaemonProcess, nodeId: string) {
  return (await peersOf(observer)).find((p) => p.nodeId === nodeId)?.state;
}

describe('five hermesd processes on loopback', () => {
  const meshKey = join(tempDir(), 'mesh.key');
  let nodes: DaemonProcess[] = [];

  it('each lists all five within 5 s of the last start', async () => {
    // The first node creates the mesh key; the others read it.
    const first = await launch({ name: 'n0', meshKey });
    const rest = await Promise.all(
      [1, 2, 3, 4].map((i) => launch({ name: `n${i}`, meshKey, bootstrap: [first.addrs[0]!] })),
    );
    nodes = [first, ...rest];
    const t0 = Date.now();
    await waitFor(
      async () =>
        (await Promise.all(nodes.map(peersOf))).every((ps) => ps.filter((p) => p.state === 'alive').length === 5),
      'every node to list five alive nodes',
      5_000,
    );
    const names = (await peersOf(nodes[3]!)).map((p) => p.name).sort();
    expect(names).toEqual(['n0', 'n1', 'n2', 'n3', 'n4']);
    expect(Date.now() - t0).toBeLessThan(5_000);
  });

  it('stays alive between full adverts on beats sent straight to each peer', { timeout: 30_000 }, async () => {
    // Once the mesh has been still for 10 s, gossip carries an advert every 5th heartbeat only, and a direct
    // advert goes only when it changed: past the dead timeout after that, the beats are what keep peers alive.
    await new Promise((r) => setTimeout(r, 10_000 + DEAD_AFTER_MS + 1_000));
    for (const node of nodes) {
      expect((await peersOf(node)).filter((p) => p.state === 'alive')).toHaveLength(5);
    }
    const metrics = await nodes[2]!.metrics();
    expect(counterValue(metrics, 'hermes_messages_received_total', { kind: 'beat' })).toBeGreaterThan(0);
    // Event-loop lag is sampled on the heartbeat (one a second), not by a timer of its own.
    expect(counterValue(metrics, 'hermesd_event_loop_lag_seconds_count')).toBeGreaterThan(10);
    expect(metrics).not.toContain('nodejs_eventloop_lag');
  });

  it('kill -9 of one: the others mark it dead within the timeout + 1 s', async () => {
    const victim = nodes[2]!;
    const others = nodes.filter((n) => n !== victim);
    victim.proc.kill('SIGKILL');
    const killedAt = Date.now();
    await victim.exited;
    await waitFor(
      async () => (await Promise.all(others.map((o) => stateOf(o, victim.peerId)))).every((s) => s === 'dead'),
      'the others to mark the killed node dead',
      DEAD_AFTER_MS + 1_000,
    );
    expect(Date.now() - killedAt).toBeLessThanOrEqual(DEAD_AFTER_MS + 1_000);
  });

  it('restarted with the same data dir, it rejoins with the same peer id', async () => {
    const old = nodes[2]!;
    const back = await launch({ name: 'n2', meshKey, dataDir: old.dataDir, bootstrap: [nodes[0]!.addrs[0]!] });
    expect(back.peerId).toBe(old.peerId);
    nodes[2] = back;
    await waitFor(
      async () => (await Promise.all(nodes.map((o) => stateOf(o, back.peerId)))).every((s) => s === 'alive'),
      'everyone to see the restarted node alive',
      5_000,
    );
  });

  it('a clean stop announces leaving, and peers drop it at once', async () => {
    const leaver = nodes[4]!;
    await stopDaemon(leaver);
    await waitFor(
      async () => (await stateOf(nodes[0]!, leaver.peerId)) === 'left',
      'node 0 to mark the stopped node as left',
      DEAD_AFTER_MS - 500,
    );
    nodes.pop();
  });

  it('a process with another mesh key cannot join, and nothing it sends reaches the others', async () => {
    const outsider = await launch({
      name: 'outsider',
      meshKey: join(tempDir(), 'other.key'),
      bootstrap: [nodes[0]!.addrs[0]!],
    });
    // It has published several adverts (to nobody) and tried the bootstrap peer meanwhile.
    await waitFor(
      async () => counterValue(await outsider.metrics(), 'hermes_messages_published_total', { kind: 'advert' }) >= 3,
      'the outsider to publish three adverts',
    );
    expect((await peersOf(outsider)).map((p) => p.name)).toEqual(['outsider']);
    for (const n of nodes) expect((await peersOf(n)).some((p) => p.name === 'outsider')).toBe(false);
    expect(counterValue(await outsider.metrics(), 'hermes_connected_peers')).toBe(0);
  });

  it('rejects and counts bad messages from a member, and keeps running', async () => {
    const target = nodes[0]!;
    const psk = parseMeshKey(readFileSync(meshKey));
    const rogue = await createMeshNode({
      privateKey: await generateKeyPair('Ed25519'),
      psk,
      bootstrap: [target.addrs[0]!],
    });
    try {
      const topic = topics(rogue.meshId).adverts;
      await waitFor(() => rogue.libp2p.services.pubsub.getSubscribers(topic).length > 0, 'rogue to see subscribers');
      const raw = new Packr({ useRecords: false });
      const good = sampleAdvert({ nodeId: rogue.peerId, name: 'rogue' });
      const send = (body: unknown, v = 1) =>
        rogue.libp2p.services.pubsub.publish(
          topic,
          raw.pack({ v, kind: 'advert', from: rogue.peerId, seq: Date.now(), ts: 1, body }),
        );
      await send(good, 99);
      await send({ ...good, cpu: { cores: 'lots' } });
      await send({ ...good, name: 'x'.repeat(70_000) });
      await rogue.libp2p.services.pubsub.publish(topic, new Uint8Array([0x92, 0x01]));
      await rogue.libp2p.services.pubsub.publish(
        topic,
        encodeMessage('advert', rogue.peerId, 1, sampleAdvert({ nodeId: target.peerId })),
      );
      const count = async (reason: string) =>
        counterValue(await target.metrics(), 'hermes_messages_rejected_total', { reason });
      await waitFor(
        async () =>
          (await count('unknown-version')) >= 1 &&
          (await count('invalid-body')) >= 1 &&
          (await count('too-large')) >= 1 &&
          (await count('not-msgpack')) >= 1 &&
          (await count('sender-mismatch')) >= 1,
        'every rejection counted on the target',
      );
      // The direct advert stream: an advert about another node is refused and counted; one's own is taken.
      const mismatches = await count('sender-mismatch');
      const impostor = sampleAdvert({ nodeId: target.peerId, name: 'impostor', seq: Date.now() });
      await rogue.notify(target.peerId, PROTOCOLS.advert, 'advert', impostor);
      await waitFor(async () => (await count('sender-mismatch')) > mismatches, 'the forged direct advert counted');
      const own = sampleAdvert({ nodeId: rogue.peerId, name: 'rogue-direct', addrs: rogue.addrs() });
      await rogue.notify(target.peerId, PROTOCOLS.advert, 'advert', own);
      await waitFor(async () => (await peersOf(target)).some((p) => p.name === 'rogue-direct'), 'the direct advert');
      expect((await peersOf(target)).find((p) => p.self)?.name).not.toBe('impostor');
      const beforeBeat = await count('sender-mismatch');
      await rogue.notify(target.peerId, PROTOCOLS.advert, 'beat', { nodeId: nodes[1]!.peerId, seq: 1 });
      await waitFor(async () => (await count('sender-mismatch')) > beforeBeat, 'the forged beat counted');
      expect((await target.get<{ nodeId: string }>('/v1/node')).nodeId).toBe(target.peerId);
      expect(target.proc.exitCode).toBeNull();
      expect(target.output()).toContain('rejected a message from a peer');
    } finally {
      await rogue.stop();
    }
  });
});
