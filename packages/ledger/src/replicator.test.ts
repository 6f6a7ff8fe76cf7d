import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MeshNode } from '@hermes-mesh/mesh';
import { encodeMessage, type LedgerEvent, PROTOCOLS } from '@hermes-mesh/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '../../../test/support/wait.js';
import { type Ledger, openLedger } from './ledger.js';
import { createReplicator, type Replicator, type ReplicatorInit } from './replicator.js';
import { eventsMissingFrom } from './sync.js';
import { createMemoryNetwork, type MemoryNetwork, type MemoryNetworkOptions } from './testing/memory-mesh.js';
import { seededRandom } from './testing/simulate.js';
import { lifecycleInputs } from './testing/workload.js';

interface Replica {
  id: string;
  ledger: Ledger;
  replicator: Replicator;
  mesh: MeshNode;
}

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

/** A ledger of origin `id` in a temporary directory, closed and removed after the test. */
async function tempLedger(id: string): Promise<Ledger> {
  const path = mkdtempSync(join(tmpdir(), `ledger-${id}-`));
  const ledger = await openLedger({ path, origin: id, now: () => 1_700_000_000_000 });
  cleanup.push(async () => {
    await ledger.close();
    rmSync(path, { recursive: true, force: true });
  });
  return ledger;
}

/** Replicas over one in-memory mesh; `tuning` is passed to each replicator (pageLimit 2000 unless given). */
async function replicas(
  ids: string[],
  options: MemoryNetworkOptions = {},
  tuning: Omit<ReplicatorInit, 'ledger' | 'mesh'> = {},
) {
  const network = createMemoryNetwork(options);
  const out: Replica[] = [];
  for (const id of ids) {
    const ledger = await tempLedger(id);
    const mesh = network.node(id);
    const replicator = await createReplicator({ ledger, mesh, intervalMs: 100, pageLimit: 2000, ...tuning });
    cleanup.push(() => replicator.stop());
    out.push({ id, ledger, replicator, mesh });
  }
  return { network, replicas: out };
}

/** Writes `goals` whole goal lifecycles on a replica, in chunks so gossip interleaves with the writes. */
async function writeGoals(replica: Replica, goals: number, prefix = replica.id, chunk = 400) {
  const inputs = lifecycleInputs({ prefix, goals, actionsPerGoal: 3, coordinator: replica.id, worker: replica.id });
  for (let i = 0; i < inputs.length; i += chunk) {
    const results = await replica.ledger.appendMany(inputs.slice(i, i + chunk));
    expect(results.every((r) => r.ok)).toBe(true);
  }
  return inputs.length;
}

function converged(all: Replica[], events: number) {
  const hashes = new Set(all.map((r) => r.ledger.stateHash()));
  return all.every((r) => r.ledger.counts().events === events && r.ledger.position() === events) && hashes.size === 1;
}

const describeState = (all: Replica[]) => all.map((r) => `${r.id}: ${JSON.stringify(r.ledger.counts())}`).join('; ');

describe('eventsMissingFrom', () => {
  it('pages what the requester lacks, in seq order per origin, within the limits', async () => {
    const {
      replicas: [a],
    } = await replicas(['a'], {}, { intervalMs: 0 });
    await a!.ledger.ingest(
      ['x', 'y'].flatMap((origin) =>
        Array.from({ length: 5 }, (_, i) => ({
          origin,
          seq: i + 1,
          lamport: i + 1,
          ts: 0,
          type: 'node.left',
          data: { reason: '' },
        })),
      ),
    );
    const logs = (a!.ledger as unknown as { core: { logs: Parameters<typeof eventsMissingFrom>[0] } }).core.logs;
    const page1 = eventsMissingFrom(logs, { x: 2 }, { limit: 4 });
    expect(page1.events.map((e) => `${e.origin}${e.seq}`)).toEqual(['x3', 'x4', 'x5', 'y1']);
    expect(page1.more).toBe(true);
    const page2 = eventsMissingFrom(logs, { x: 5, y: 1 }, { limit: 10 });
    expect(page2).toMatchObject({ more: false });
    expect(page2.events).toHaveLength(4);
    const tiny = eventsMissingFrom(logs, {}, { limit: 10, maxBytes: 1 });
    expect(tiny.events).toHaveLength(1);
    expect(eventsMissingFrom(logs, {}, { limit: 10, maxPosition: 3 }).events).toHaveLength(3);
    // A gap fill: only the named origins, each up to the given seq; an origin this replica does not hold is skipped.
    const gap = eventsMissingFrom(logs, { x: 1 }, { limit: 10, upTo: { x: 3, z: 5 } });
    expect(gap.events.map((e) => `${e.origin}${e.seq}`)).toEqual(['x2', 'x3']);
    expect(gap.more).toBe(false);
  });
});

describe('replication over the in-memory mesh', () => {
  it('keeps three connected replicas equal', async () => {
    const { network, replicas: all } = await replicas(['a', 'b', 'c']);
    network.connectAll(['a', 'b', 'c']);
    const written = (await Promise.all([writeGoals(all[0]!, 40), writeGoals(all[1]!, 40)])).reduce((x, y) => x + y);
    await waitFor(() => converged(all, written), `convergence (${describeState(all)})`, 10_000);
    expect(all[2]!.ledger.goal('a-g3')).toMatchObject({ state: 'COMPLETED', coordinator: 'a' });
  });

  it('brings a replica that was offline while 10k events were written back to the same state', async () => {
    const { network, replicas: all } = await replicas(['a', 'b', 'c']);
    const [a, b, c] = all as [Replica, Replica, Replica];
    network.connectAll(['a', 'b', 'c']);
    const early = await writeGoals(a, 5, 'early');
    await waitFor(() => c.ledger.counts().events === early, 'c to see the early events');
    network.isolate('c');
    const written = (await Promise.all([writeGoals(a, 250), writeGoals(b, 250)])).reduce((x, y) => x + y);
    expect(written).toBeGreaterThanOrEqual(10_000);
    await waitFor(() => converged([a, b], written + early), 'a and b to converge');
    expect(c.ledger.counts().events).toBe(early);
    network.connect('c', 'a');
    await waitFor(() => converged(all, written + early), `catch-up (${describeState(all)})`, 20_000);
    expect(c.replicator.stats().pulledEvents).toBeGreaterThanOrEqual(written);
  });

  it('converges two halves written separately, then joined', async () => {
    const { network, replicas: all } = await replicas(['a', 'b', 'c']);
    const [a, b, c] = all as [Replica, Replica, Replica];
    network.connect('b', 'c');
    const sides = await Promise.all([writeGoals(a, 30), writeGoals(b, 20), writeGoals(c, 20)]);
    // Both halves also claim the same goal id with different coordinators: the fold must pick one everywhere.
    await a.ledger.append({ type: 'goal.submitted', goalId: 'contested', data: { text: 'from a', coordinator: 'a' } });
    await c.ledger.append({ type: 'goal.submitted', goalId: 'contested', data: { text: 'from c', coordinator: 'c' } });
    const total = sides.reduce((x, y) => x + y) + 2;
    await waitFor(() => b.ledger.counts().events === total - sides[0]! - 1, 'b and c to share their half');
    expect(a.ledger.stateHash()).not.toBe(b.ledger.stateHash());
    network.connect('a', 'b');
    await waitFor(() => converged(all, total), `join (${describeState(all)})`, 10_000);
    const winner = a.ledger.goal('contested')!;
    expect(b.ledger.goal('contested')).toEqual(winner);
    expect(a.ledger.rejections({ goalId: 'contested' })).toHaveLength(1);
  });

  it('a node whose peers connect before its replicator is up catches up both ways at once, with no error', async () => {
    // As hermesd starts: the mesh node joins (peers connect and try to pull) before the ledger-sync handler is
    // registered. Periodic pulls are off, so only the start-up sync and the retry of the refused pull can help.
    const network = createMemoryNetwork();
    const [aLedger, bLedger] = [await tempLedger('a'), await tempLedger('b')];
    const a = { id: 'a', ledger: aLedger, mesh: network.node('a') };
    const aReplicator = await createReplicator({ ledger: aLedger, mesh: a.mesh, intervalMs: 0 });
    cleanup.push(() => aReplicator.stop());
    const bMesh = network.node('b');
    const aWrote = await writeGoals({ ...a, replicator: aReplicator }, 3);
    // b wrote these in an earlier life: they are in its ledger, not in its outbox.
    const bWrote = await writeGoals({ id: 'b', ledger: bLedger, mesh: bMesh } as Replica, 2);
    network.connect('a', 'b');
    await new Promise((r) => setTimeout(r, 20)); // a has seen b connect, and its pull was refused
    const bReplicator = await createReplicator({ ledger: bLedger, mesh: bMesh, intervalMs: 0 });
    cleanup.push(() => bReplicator.stop());
    const both = [aLedger, bLedger];
    await waitFor(
      () => both.every((l) => l.counts().events === aWrote + bWrote),
      `both ledgers to hold every event (${both.map((l) => l.counts().events)})`,
      5_000,
    );
    expect(aLedger.stateHash()).toBe(bLedger.stateHash());
    expect([aReplicator.stats().errors, bReplicator.stats().errors]).toEqual([0, 0]);
  });

  it('pushes what is written within the push delay in one message', async () => {
    let messages = 0;
    const counting = { deliver: (from: string) => (from === 'a' ? ++messages > 0 : true) };
    const { network, replicas: all } = await replicas(['a', 'b'], counting, { intervalMs: 0, pushDelayMs: 50 });
    network.connectAll(['a', 'b']);
    const [a, b] = all as [Replica, Replica];
    // Three separate writes, each durable before the next starts, all inside the window.
    for (let i = 0; i < 3; i++) await writeGoals(a, 1, `a${i}`);
    await waitFor(() => b.ledger.position() === a.ledger.position(), 'b to hold all of a');
    expect(messages).toBe(1);
  });

  it('pushes each event once to each connected peer, and on gossip too only while a member needs relaying', async () => {
    const via: string[] = [];
    let relay = false;
    const counting = {
      deliver: (from: string, to: string, how: 'gossip' | 'direct') => {
        if (from === 'a') via.push(`${how}:${to}`);
        return true;
      },
    };
    const { network, replicas: all } = await replicas(['a', 'b', 'c'], counting, {
      intervalMs: 0,
      relay: () => relay,
    });
    network.connectAll(['a', 'b', 'c']);
    const [a, b, c] = all as [Replica, Replica, Replica];
    await waitFor(() => b.replicator.stats().syncRounds >= 1 && c.replicator.stats().syncRounds >= 1, 'connect syncs');
    const written = await writeGoals(a, 2);
    await waitFor(() => converged(all, written), 'b and c to hold all of a');
    expect(via.sort()).toEqual(['direct:b', 'direct:c']);
    // c loses its link to a: while a says a member needs relaying, its pushes also go on gossip (through b).
    network.disconnect('a', 'c');
    relay = true;
    via.length = 0;
    const more = await writeGoals(a, 1, 'relayed');
    await waitFor(() => c.ledger.position() === written + more, "c to get a's events through b");
    expect(c.replicator.stats().pulledEvents).toBe(0);
    expect(via.sort()).toEqual(['direct:b', 'gossip:b', 'gossip:c']);
  });

  it('splits a push over the message cap into pieces that fit, and nothing needs pulling', async () => {
    // Chunking by bytes is off here, so the ~2.4 MB batch first goes to the codec whole and is refused.
    const tuning = { intervalMs: 0, pushBatch: 100_000, pushBytes: 1 << 30 };
    const { network, replicas: all } = await replicas(['a', 'b'], {}, tuning);
    network.connectAll(['a', 'b']);
    const [a, b] = all as [Replica, Replica];
    await waitFor(() => b.replicator.stats().syncRounds >= 1, 'the connect sync');
    const text = 'x'.repeat(8_000);
    const results = await a.ledger.appendMany(
      Array.from({ length: 300 }, (_, i) => ({
        type: 'goal.submitted' as const,
        goalId: `big${i}`,
        data: { text, coordinator: 'a' },
      })),
    );
    expect(results.every((r) => r.ok)).toBe(true);
    await waitFor(() => b.ledger.position() === 300, 'b to get all 300');
    expect(b.replicator.stats()).toMatchObject({ pulledEvents: 0, receivedEvents: 300 });
    expect(a.replicator.stats().errors).toBe(0);
  });

  it('a prompt peer gets each durable batch at once and in order; the others after the push delay', async () => {
    const { network, replicas: all } = await replicas(['a', 'b', 'c'], {}, { intervalMs: 0, pushDelayMs: 1_000 });
    network.connectAll(['a', 'b', 'c']);
    const [a, b, c] = all as [Replica, Replica, Replica];
    await waitFor(() => b.replicator.stats().syncRounds >= 1 && c.replicator.stats().syncRounds >= 1, 'connect syncs');
    const pushed: number[][] = [];
    b.replicator.onPush((events, peer) => pushed.push(events.map((e) => (peer === 'a' ? e.seq : -1))));
    const submit = (i: number) => ({
      type: 'goal.submitted' as const,
      goalId: `p${i}`,
      data: { text: 'x', coordinator: 'a' },
    });
    await a.ledger.append(submit(0)); // before b was prompt: held back for the delay
    a.replicator.pushPromptly('b');
    const t0 = Date.now();
    await a.ledger.append(submit(1));
    await waitFor(() => b.ledger.position() === 2, 'b to get both at once');
    expect(Date.now() - t0).toBeLessThan(900);
    expect(pushed).toEqual([[1, 2]]); // the held-back one first, in one message with the new one
    expect(c.ledger.position()).toBe(0);
    await waitFor(() => c.ledger.position() === 2, 'c to get them after the delay');
    // The delayed push sends b nothing twice.
    await new Promise((r) => setTimeout(r, 100));
    expect(pushed).toEqual([[1, 2]]);
    expect(b.ledger.counts().events).toBe(2);
  });

  it('refuses pushed events of other origins: a peer pushes only its own', async () => {
    const { network, replicas: all } = await replicas(['a', 'b', 'c'], {}, { intervalMs: 0 });
    network.connectAll(['a', 'b', 'c']);
    const [a, b, c] = all as [Replica, Replica, Replica];
    const written = await a.ledger.append({
      type: 'goal.submitted',
      goalId: 'g',
      data: { text: 'x', coordinator: 'a' },
    });
    if (!written.ok) throw new Error(written.error);
    await waitFor(() => c.ledger.position() === 1 && b.ledger.position() === 1, 'the honest push');
    // c forwards a's event as if it were its own push, and a forged one in a's name.
    const forged = { ...written.event, seq: 2, lamport: 99, goalId: 'forged' };
    await c.mesh.notify('b', PROTOCOLS.ledgerPush, 'events', { events: [forged] });
    await waitFor(() => b.replicator.stats().errors === 1, 'the refusal');
    expect(b.replicator.stats().lastError).toMatch(/c pushed 1 events of other origins/);
    expect(b.ledger.goal('forged')).toBeUndefined();
    expect(b.ledger.position()).toBe(1);
  });

  it('does not pull gaps that pushes close in time, even while new ones keep opening', async () => {
    // As on a worker in a burst: each assignment arrives directly, ahead of the push that carries the events
    // of its origin before it, so some gap is open nearly all the time, but each one closes within ~50 ms.
    const { network, replicas: all } = await replicas(['a', 'b'], { delayMs: 30 }, { intervalMs: 0, pushDelayMs: 20 });
    network.connectAll(['a', 'b']);
    const [a, b] = all as [Replica, Replica];
    await waitFor(() => b.replicator.stats().syncRounds === 1, 'the sync round on connect');
    let sawGap = false;
    const until = Date.now() + 1_000;
    for (let i = 0; Date.now() < until; i++) {
      await a.ledger.append({ type: 'goal.submitted', goalId: `g${i}`, data: { text: 'x', coordinator: 'a' } });
      const direct = await a.ledger.append({ type: 'goal.cancelled', goalId: `g${i}`, data: { reason: 'x' } });
      if (!direct.ok) throw new Error(direct.error);
      await b.ledger.ingest([direct.event]);
      sawGap ||= b.ledger.hasGaps();
      await new Promise((r) => setTimeout(r, 10));
    }
    await waitFor(() => b.ledger.position() === a.ledger.position() && !b.ledger.hasGaps(), 'b to catch up by pushes');
    expect(sawGap).toBe(true);
    expect(b.replicator.stats()).toMatchObject({ syncRounds: 1, pulledEvents: 0 });
  });

  it('fills a gap that stays by pulling the missing range only', async () => {
    // a's first push never reaches b; its second does, and shows b what it lacks.
    let fromA = 0;
    const dropFirst = { deliver: (from: string) => from !== 'a' || ++fromA > 1 };
    const { network, replicas: all } = await replicas(['a', 'b'], dropFirst, { intervalMs: 0, pushDelayMs: 0 });
    network.connectAll(['a', 'b']);
    const [a, b] = all as [Replica, Replica];
    await waitFor(() => b.replicator.stats().syncRounds === 1, 'the sync round on connect');
    const served: number[] = [];
    const request = b.mesh.request.bind(b.mesh);
    b.mesh.request = async (...args: Parameters<typeof request>) => {
      const reply = await request(...args);
      served.push((reply.body as { events: unknown[] }).events.length);
      return reply;
    };
    const submit = (i: number) => ({
      type: 'goal.submitted' as const,
      goalId: `g${i}`,
      data: { text: 'x', coordinator: 'a' },
    });
    await a.ledger.appendMany([0, 1, 2, 3].map(submit));
    await waitFor(() => fromA === 1, "a's first message");
    await a.ledger.appendMany([4, 5, 6, 7, 8, 9].map(submit));
    await waitFor(() => b.ledger.position() === 10, 'b to fill the gap');
    // One page of the 4 missing events; the 6 held behind them were then released (and count as gained).
    expect(served).toEqual([4]);
    expect(b.replicator.stats()).toMatchObject({ syncRounds: 2, pulledEvents: 10 });
  });

  it('a periodic pull leaves what pushes are still bringing, and repairs what they lost once settled', async () => {
    // Pushes from a are slow (300 ms) but arrive; pulls run every 50 ms and ask only for what a has held 1 s.
    let dropping = false;
    const slow = { delayMs: 300, deliver: (from: string) => !(dropping && from === 'a') };
    const { network, replicas: all } = await replicas(['a', 'b'], slow, { intervalMs: 50, settledMs: 1_000 });
    const [a, b] = all as [Replica, Replica];
    network.connectAll(['a', 'b']);
    await waitFor(() => b.replicator.stats().syncRounds >= 1, 'the sync round on connect');
    const written = await writeGoals(a, 20);
    await waitFor(() => b.ledger.position() === written, 'b to get everything pushed');
    expect(b.replicator.stats().pulledEvents).toBe(0);
    // Now a's pushes are lost: a periodic pull brings them, once a has held them for the settled time.
    dropping = true;
    const t0 = Date.now();
    const more = await writeGoals(a, 5, 'late');
    await waitFor(() => b.ledger.position() === written + more, 'b to pull what pushes lost');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
    expect(b.replicator.stats().pulledEvents).toBe(more);
  });

  it('pulls less and less often while the ledger is quiet, and at the full rate again once anything is new', async () => {
    const tuning = { intervalMs: 20, maxIntervalMs: 1_000, settledMs: 0 };
    const { network, replicas: all } = await replicas(['a', 'b'], {}, tuning);
    const [a, b] = all as [Replica, Replica];
    network.connectAll(['a', 'b']);
    const roundsIn = async (ms: number) => {
      const before = b.replicator.stats().syncRounds;
      await new Promise((r) => setTimeout(r, ms));
      return b.replicator.stats().syncRounds - before;
    };
    await roundsIn(1_500); // settle into the longest period (20, 40, ... 640, then 1000 ms)
    // Quiet: one round a second (a fixed 20 ms period would be ~100 in two seconds).
    expect(await roundsIn(2_000)).toBeLessThanOrEqual(3);
    // Something new (a's push reaches b): back to 20 ms, then backing off again (rounds at ~20, 60, 140 ms...),
    // where the quiet period would allow at most one round in 400 ms.
    await writeGoals(a, 1);
    expect(await roundsIn(400)).toBeGreaterThanOrEqual(2);
  });

  it('does not pull a gap that pushes are still filling, however long that takes', async () => {
    // a's own pushes are dropped; its events reach b below by hand, as a busy sender's would: the last one
    // first (an assignment handed over directly), then the others one by one, each 100 ms after the one before.
    const { network, replicas: all } = await replicas(
      ['a', 'b'],
      { deliver: (from) => from !== 'a' },
      { intervalMs: 0, pushDelayMs: 0 },
    );
    network.connectAll(['a', 'b']);
    const [a, b] = all as [Replica, Replica];
    await waitFor(() => b.replicator.stats().syncRounds === 1, 'the sync round on connect');
    const results = await a.ledger.appendMany(
      Array.from({ length: 10 }, (_, i) => ({
        type: 'goal.submitted' as const,
        goalId: `g${i}`,
        data: { text: 'x', coordinator: 'a' },
      })),
    );
    const events = results.map((r) => (r.ok ? r.event : undefined)!);
    const push = (event: LedgerEvent) =>
      (b.mesh as unknown as { receive(protocol: string, bytes: Uint8Array, from: string): void }).receive(
        PROTOCOLS.ledgerPush,
        encodeMessage('events', 'a', event.seq, { events: [event] }),
        'a',
      );
    push(events[9]!);
    for (const event of events.slice(0, 9)) {
      await new Promise((r) => setTimeout(r, 100));
      push(event);
    }
    await waitFor(() => b.ledger.position() === 10, 'b to hold all ten');
    expect(b.replicator.stats().syncRounds).toBe(1);
  });

  it('converges over lossy links: gaps are held, then pulled', async () => {
    const random = seededRandom(7);
    // Pushed at once (no coalescing window), so small sequential batches are many messages: a lost one is
    // followed by a later one that reveals the gap, whatever the machine's timing (one big message could be lost
    // with nothing after it).
    const lossy = { deliver: () => random() > 0.3 };
    const { network, replicas: all } = await replicas(['a', 'b', 'c'], lossy, { intervalMs: 0, pushDelayMs: 0 });
    network.connectAll(['a', 'b', 'c']);
    let written = 0;
    for (const r of all) written += await writeGoals(r, 15, r.id, 20);
    // No periodic anti-entropy here: only gap-triggered pulls repair the loss, until the last round below.
    await waitFor(() => all.some((r) => r.replicator.stats().pulledEvents > 0), 'a gap-triggered pull');
    await waitFor(
      async () => {
        await Promise.all(all.map((r) => r.replicator.syncAll()));
        return converged(all, written);
      },
      `convergence (${describeState(all)})`,
      10_000,
    );
  });
});

export type { MemoryNetwork };
