// Ledger benchmarks: append throughput and latency, open/replay with and without snapshot, replica catch-up
// over the in-memory transport and loopback libp2p, search latency. One JSON line per figure.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import {
  createMemoryNetwork,
  createReplicator,
  type EventInput,
  goalText,
  type Ledger,
  lifecycleInputs,
  openLedger,
} from '@hermes-mesh/ledger';
import { createMeshNode, loadOrCreateIdentity, loadOrCreateMeshKey, type MeshNode } from '@hermes-mesh/mesh';
import { percentile, report } from './report.js';

const BENCH = 'ledger';
const root = mkdtempSync(join(tmpdir(), 'ledger-bench-'));
let dirs = 0;
const freshPath = () => join(root, `db${dirs++}`);

function inputs(prefix: string, events: number): EventInput[] {
  // 20 events per goal: submitted, 3 actions x 6 lifecycle events, finished.
  return lifecycleInputs({
    prefix,
    goals: Math.ceil(events / 20),
    actionsPerGoal: 3,
    coordinator: 'bench',
    worker: 'bench',
  }).slice(0, events);
}

async function fill(ledger: Ledger, all: EventInput[], chunk = 10_000) {
  for (let i = 0; i < all.length; i += chunk) {
    const results = await ledger.appendMany(all.slice(i, i + chunk));
    if (!results.every((r) => r.ok)) throw new Error('append failed');
  }
}

async function appendThroughput() {
  const events = 300_000;
  const all = inputs('t', events);
  const ledger = await openLedger({ path: freshPath(), origin: 'bench', snapshotEvery: 0 });
  let start = performance.now();
  await fill(ledger, all.slice(0, events / 2));
  let seconds = (performance.now() - start) / 1000;
  report(BENCH, 'append_batched_appendMany', events / 2 / seconds, 'events/s', { events: events / 2, batch: 10_000 });
  // The same through single append() calls made in one tick: the group commit puts each tick into one batch.
  const rest = all.slice(events / 2);
  start = performance.now();
  for (let i = 0; i < rest.length; i += 10_000)
    await Promise.all(rest.slice(i, i + 10_000).map((e) => ledger.append(e)));
  seconds = (performance.now() - start) / 1000;
  report(BENCH, 'append_group_commit', rest.length / seconds, 'events/s', { events: rest.length, perTick: 10_000 });
  await ledger.close();
}

async function appendLatency(sync: boolean) {
  const ledger = await openLedger({ path: freshPath(), origin: 'bench', sync, snapshotEvery: 0 });
  const all = inputs('l', sync ? 1000 : 5000);
  const samples: number[] = [];
  for (const input of all) {
    const start = performance.now();
    const result = await ledger.append(input);
    samples.push(performance.now() - start);
    if (!result.ok) throw new Error(result.error);
  }
  samples.sort((a, b) => a - b);
  const mode = sync ? 'sync' : 'nosync';
  report(BENCH, `append_latency_p50_${mode}`, percentile(samples, 50) * 1000, 'us', { samples: samples.length });
  report(BENCH, `append_latency_p99_${mode}`, percentile(samples, 99) * 1000, 'us', { samples: samples.length });
  await ledger.close();
}

/** A full garbage collection (the flag is set at run time: the bench runner starts node without it). */
function collectGarbage() {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

/** Writes `events` into a fresh ledger and closes it; returns its path and state hash. */
async function written(events: number, snapshotEvery: number) {
  const path = freshPath();
  const writer = await openLedger({ path, origin: 'bench', snapshotEvery });
  await fill(writer, inputs('o', events));
  const hash = writer.stateHash();
  await writer.close();
  return { path, hash };
}

async function openTime(events: number) {
  for (const snapshot of [false, true]) {
    // The writer lives in its own function: its million events are garbage, not live heap, while the reader opens.
    const { path, hash } = await written(events, snapshot ? events : 0);
    // Start the clock on a collected heap: the writer's garbage is not the reader's start-up cost.
    collectGarbage();
    const start = performance.now();
    // No snapshot of its own after a full replay: that would be written while the figures below are taken.
    const reader = await openLedger({ path, origin: 'bench', snapshotEvery: snapshot ? undefined : 0 });
    const ms = performance.now() - start;
    const metric = snapshot ? 'open_with_snapshot' : 'open_full_replay';
    const extra = { events, snapshotPosition: reader.openStats.snapshotPosition };
    report(BENCH, metric, ms, 'ms', extra);
    // After an open from a snapshot the events it covers are read in the background; writes wait for them.
    await reader.loaded();
    if (snapshot) report(BENCH, `${metric}_loaded`, performance.now() - start, 'ms', extra);
    if (snapshot && reader.openStats.snapshotPosition !== events) throw new Error('snapshot not used');
    // The query indexes (actions by goal/node/state, search) are built from the views by the first query (after
    // an open from a snapshot it decodes the views it needs, here all of them).
    const queryStart = performance.now();
    if (reader.search('number 7').length === 0 || reader.actions({ goalId: 'o-g7' }).length !== 3) {
      throw new Error('reopened ledger does not answer queries');
    }
    report(BENCH, `${metric}_first_query`, performance.now() - queryStart, 'ms', { events });
    if (reader.stateHash() !== hash) throw new Error('reopened state differs');
    // The first write: a new goal and a step of an action from before the open.
    const writeStart = performance.now();
    const results = await reader.appendMany([
      { type: 'goal.submitted', goalId: 'o-new', data: { text: 'after the open', coordinator: 'bench' } },
      { type: 'action.state', goalId: 'o-g9', actionId: 'o-g9-a1', epoch: 1, state: 'ERROR', data: {} },
    ]);
    if (!results.every((r) => r.ok)) throw new Error('first write failed');
    report(BENCH, `${metric}_first_write`, performance.now() - writeStart, 'ms', { events });
    await reader.close();
    rmSync(path, { recursive: true, force: true });
  }
}

async function catchUpInMemory(events: number) {
  const network = createMemoryNetwork();
  const source = await openLedger({ path: freshPath(), origin: 'source', snapshotEvery: 0 });
  await fill(source, inputs('c', events));
  const fresh = await openLedger({ path: freshPath(), origin: 'fresh', snapshotEvery: 0 });
  const a = await createReplicator({ ledger: source, mesh: network.node('source'), intervalMs: 0 });
  const b = await createReplicator({ ledger: fresh, mesh: network.node('fresh'), intervalMs: 0 });
  const start = performance.now();
  network.connect('source', 'fresh');
  await until(() => fresh.position() === events, 60_000);
  const ms = performance.now() - start;
  if (fresh.stateHash() !== source.stateHash()) throw new Error('catch-up state differs');
  report(BENCH, 'catch_up_memory', ms, 'ms', { events, rate: Math.round(events / (ms / 1000)) });
  a.stop();
  b.stop();
  await Promise.all([source.close(), fresh.close()]);
}

async function catchUpLibp2p(events: number) {
  const { psk } = await loadOrCreateMeshKey(join(root, 'mesh.key'));
  const node = async (name: string, bootstrap: string[] = []): Promise<MeshNode> => {
    const { key } = await loadOrCreateIdentity(join(root, `${name}.id`));
    return createMeshNode({ privateKey: key, psk, bootstrap });
  };
  const sourceMesh = await node('source');
  const source = await openLedger({ path: freshPath(), origin: sourceMesh.peerId, snapshotEvery: 0 });
  await fill(source, inputs('p', events));
  const a = await createReplicator({ ledger: source, mesh: sourceMesh, intervalMs: 0 });
  const start = performance.now();
  const freshMesh = await node('fresh', sourceMesh.addrs());
  const fresh = await openLedger({ path: freshPath(), origin: freshMesh.peerId, snapshotEvery: 0 });
  const b = await createReplicator({ ledger: fresh, mesh: freshMesh, intervalMs: 0 });
  // The connect event may have fired before the replicator listened: pull once explicitly too.
  await until(async () => {
    await b.syncAll();
    return fresh.position() === events;
  }, 60_000);
  const ms = performance.now() - start;
  if (fresh.stateHash() !== source.stateHash()) throw new Error('catch-up state differs');
  report(BENCH, 'catch_up_libp2p_loopback', ms, 'ms', {
    events,
    rate: Math.round(events / (ms / 1000)),
    includes: 'node start + dial + sync',
  });
  a.stop();
  b.stop();
  await Promise.all([sourceMesh.stop(), freshMesh.stop()]);
  await Promise.all([source.close(), fresh.close()]);
}

async function searchLatency(goals: number) {
  const ledger = await openLedger({ path: freshPath(), origin: 'bench', snapshotEvery: 0 });
  const words = Array.from({ length: 2000 }, (_, i) => `w${i.toString(36)}`);
  const all: EventInput[] = Array.from({ length: goals }, (_, i) => ({
    type: 'goal.submitted',
    goalId: `${(i * 2654435761) % 4294967296}`.padStart(10, '0') + i.toString(36),
    data: { text: `${goalText(i, words)} ${goalText(i + 1, words)}`, coordinator: 'bench' },
  }));
  await fill(ledger, all);
  const ids = all.map((e) => e.goalId!);
  const queries: Array<[string, (i: number) => string]> = [
    ['search_one_word', (i) => words[i % words.length]!],
    ['search_two_words', (i) => `${words[i % words.length]} ${words[(i * 7 + 13) % words.length]}`],
    ['search_id_prefix', (i) => ids[(i * 7919) % ids.length]!.slice(0, 6)],
    ['search_common_word', () => 'number'],
  ];
  for (const [metric, query] of queries) {
    const samples: number[] = [];
    let hits = 0;
    for (let i = 0; i < 2000; i++) {
      const start = performance.now();
      hits += ledger.search(query(i), 20).length;
      samples.push(performance.now() - start);
    }
    samples.sort((a, b) => a - b);
    const extra = { goals, meanHits: hits / samples.length };
    report(BENCH, `${metric}_p50`, percentile(samples, 50) * 1000, 'us', extra);
    report(BENCH, `${metric}_p99`, percentile(samples, 99) * 1000, 'us', extra);
  }
  await ledger.close();
}

async function until(check: () => boolean | Promise<boolean>, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

// LEDGER_BENCH_ONLY=open,search runs only the parts named.
const only = process.env.LEDGER_BENCH_ONLY?.split(',');
const parts: Array<[string, () => Promise<void>]> = [
  ['append', appendThroughput],
  [
    'latency',
    async () => {
      await appendLatency(false);
      await appendLatency(true);
    },
  ],
  ['open', () => openTime(Number(process.env.LEDGER_BENCH_OPEN_EVENTS ?? 1_000_000))],
  [
    'catchup',
    async () => {
      await catchUpInMemory(100_000);
      await catchUpLibp2p(100_000);
    },
  ],
  ['search', () => searchLatency(100_000)],
];
try {
  for (const [name, run] of parts) if (!only || only.includes(name)) await run();
} finally {
  rmSync(root, { recursive: true, force: true });
}
