// Advert propagation on 20 in-process nodes: from publish to the last node's membership update.
// Topology as in production: every node joins through one bootstrap node, then dials the peers it learns of.
import '@hermes-mesh/mesh/polyfill';
import { createMembership, createMeshNode, parseMeshKey } from '@hermes-mesh/mesh';
import { sampleAdvert, topics } from '@hermes-mesh/protocol';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { generateKey } from '@libp2p/pnet';
import { percentile, report } from './report.js';

const NODES = 20;
const ROUNDS = 200;
const rawKey = new Uint8Array(95);
generateKey(rawKey);
const psk = parseMeshKey(rawKey);

async function waitUntil(check: () => boolean, what: string, ms = 30_000) {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const first = await createMeshNode({ privateKey: await generateKeyPair('Ed25519'), psk });
const nodes = [first];
for (let i = 1; i < NODES; i++) {
  nodes.push(await createMeshNode({ privateKey: await generateKeyPair('Ed25519'), psk, bootstrap: first.addrs() }));
}
// Full connectivity, as hermesd reaches by dialling the addresses in adverts.
for (const a of nodes)
  for (const b of nodes)
    if (a !== b && !a.connectedPeers().includes(b.peerId)) await a.dial(b.addrs()[0]!).catch(() => {});
const topic = topics(first.meshId).adverts;
await waitUntil(
  () => nodes.every((n) => n.libp2p.services.pubsub.getSubscribers(topic).length >= NODES - 1),
  'every node to see every subscriber',
);

// Each receiver feeds a membership table, as hermesd does; we time until the last one has the new seq.
let lastUpdate = new Map<number, number>();
const tables = nodes.map((n, i) =>
  createMembership({
    selfId: n.peerId,
    now: Date.now,
    onEvent: (e) => {
      if (e.type === 'updated' || e.type === 'joined') lastUpdate.set(i, performance.now());
    },
  }),
);
for (const [i, n] of nodes.entries()) {
  n.on('message', (m) => {
    if (m.kind === 'advert') tables[i]!.observeAdvert(m.body);
  });
}

const latencies: number[] = [];
for (let round = 0; round < ROUNDS; round++) {
  const sender = nodes[round % NODES]!;
  lastUpdate = new Map();
  const t0 = performance.now();
  await sender.publish('advert', sampleAdvert({ nodeId: sender.peerId, seq: round + 1 }));
  await waitUntil(() => lastUpdate.size === NODES - 1, `round ${round} delivery`, 10_000);
  latencies.push(Math.max(...lastUpdate.values()) - t0);
  await new Promise((r) => setTimeout(r, 5));
}
latencies.sort((a, b) => a - b);
report('advert-propagation', 'publish_to_last_membership_update_p50', percentile(latencies, 50), 'ms', {
  nodes: NODES,
  rounds: ROUNDS,
});
report('advert-propagation', 'publish_to_last_membership_update_p99', percentile(latencies, 99), 'ms', {
  nodes: NODES,
  goal: '< 100 ms',
});
await Promise.all(nodes.map((n) => n.stop()));
