import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LedgerEvent } from '@hermes-mesh/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '../../../test/support/wait.js';
import { checkSemantics, type EventInput, expandEvent, visitActionEvents } from './events.js';
import { type Ledger, type LedgerEntry, openLedger } from './ledger.js';
import { SNAPSHOT_FILE } from './storage.js';
import { tempLedgers } from './testing/temp-ledgers.js';
import { lifecycleInputs } from './testing/workload.js';

const { open, tempDir, cleanup } = tempLedgers('ledger-batch-');
afterEach(cleanup);

let clock = 1_000;
const now = () => clock++;

async function start(path = tempDir(), origin = 'node-a', snapshotEvery = 0): Promise<Ledger> {
  const ledger = await openLedger({ path, origin, now, snapshotEvery, snapshotQuietMs: 0 });
  open.push(ledger);
  return ledger;
}

async function reopen(ledger: Ledger, path: string, snapshotEvery = 0): Promise<Ledger> {
  await ledger.close();
  open.splice(open.indexOf(ledger), 1);
  return start(path, ledger.origin, snapshotEvery);
}

/** A goal with `n` created actions, written on `ledger`. */
async function goalWithActions(ledger: Ledger, goalId: string, n: number): Promise<string[]> {
  const ids = Array.from({ length: n }, (_, i) => `${goalId}-a${i}`);
  const results = await ledger.appendMany([
    { type: 'goal.submitted', goalId, data: { text: 'batch', coordinator: ledger.origin } },
    ...ids.map(
      (actionId): EventInput => ({
        type: 'action.created',
        goalId,
        actionId,
        data: { flowId: 'f', kind: 'builtin', description: actionId, dependsOn: [] },
      }),
    ),
  ]);
  expect(results.every((r) => r.ok && !r.rejected)).toBe(true);
  return ids;
}

const assigned = (goalId: string, actionId: string, node = 'w1', epoch = 1): EventInput => ({
  type: 'action.state',
  goalId,
  actionId,
  epoch,
  state: 'ASSIGNED',
  data: { node },
});

function storedEvents(ledger: Ledger, from: number): LedgerEvent[] {
  return ledger.eventsSince({}, 100_000).events.slice(from);
}

describe('appendMany packs transitions', () => {
  it('writes a run of transitions as one action.states event, with a result per transition', async () => {
    const ledger = await start();
    const ids = await goalWithActions(ledger, 'g', 300);
    const before = ledger.position();
    const results = await ledger.appendMany(ids.map((id) => assigned('g', id)));
    expect(ledger.position()).toBe(before + 1);
    const [stored] = storedEvents(ledger, before);
    expect(stored).toMatchObject({ type: 'action.states', origin: 'node-a' });
    expect(results).toHaveLength(300);
    results.forEach((r, i) => {
      if (!r.ok) throw new Error(r.error);
      expect(r.rejected).toBeUndefined();
      expect(r.stored).toBe(stored);
      expect(r.position).toBe(before + 1);
      expect(r.event).toMatchObject({ type: 'action.state', actionId: ids[i], epoch: 1, state: 'ASSIGNED' });
      expect(r.event.seq).toBe(stored!.seq);
    });
    expect(ledger.action(ids[7]!)).toMatchObject({ state: 'ASSIGNED', epoch: 1, node: 'w1' });
    // To everything that reads an action, the item is an action.state event like any other.
    expect(ledger.history(ids[7]!).map((h) => h.event.type)).toEqual(['action.created', 'action.state']);
    expect(ledger.history(ids[7]!)[1]!.event).toEqual(results[7]!.ok && results[7]!.event);
  });

  it("writes a plan's created actions as one actions.created event, each folded as its action.created", async () => {
    const ledger = await start();
    const ids = await goalWithActions(ledger, 'g', 250);
    expect(storedEvents(ledger, 0).map((e) => e.type)).toEqual(['goal.submitted', 'actions.created']);
    expect(ledger.action(ids[9]!)).toMatchObject({ goalId: 'g', state: 'PENDING', description: ids[9] });
    expect(ledger.actions({ goalId: 'g' })).toHaveLength(250);
    const [created] = ledger.history(ids[9]!);
    expect(created!.event).toMatchObject({ type: 'action.created', actionId: ids[9], data: { flowId: 'f' } });
    // A created action with a huge spec stays on its own event.
    const big = await ledger.appendMany([
      {
        type: 'action.created',
        goalId: 'g',
        actionId: 'g-big',
        data: { flowId: 'f', kind: 'builtin', description: 'x', dependsOn: [], spec: { blob: 'x'.repeat(20_000) } },
      },
      {
        type: 'action.created',
        goalId: 'g',
        actionId: 'g-s1',
        data: { flowId: 'f', kind: 'builtin', description: 'x', dependsOn: [] },
      },
      {
        type: 'action.created',
        goalId: 'g',
        actionId: 'g-s2',
        data: { flowId: 'f', kind: 'builtin', description: 'x', dependsOn: [] },
      },
    ]);
    expect(big.every((r) => r.ok && !r.rejected)).toBe(true);
    expect(storedEvents(ledger, 2).map((e) => e.type)).toEqual(['action.created', 'actions.created']);
  });

  it('rejects a transition that is illegal for its action and applies the rest of its event', async () => {
    const ledger = await start();
    const ids = await goalWithActions(ledger, 'g', 3);
    const before = ledger.position();
    const inputs: EventInput[] = ids.map((id) => assigned('g', id));
    // COMPLETED straight from PENDING is illegal; so is an ASSIGNED that does not raise the epoch.
    inputs[1] = { type: 'action.state', goalId: 'g', actionId: ids[1]!, epoch: 0, state: 'COMPLETED', data: {} };
    const results = await ledger.appendMany(inputs);
    expect(results.map((r) => r.ok && r.rejected)).toEqual([undefined, expect.stringMatching(/illegal/), undefined]);
    expect(ledger.position()).toBe(before + 1);
    expect(ledger.action(ids[0]!)!.state).toBe('ASSIGNED');
    expect(ledger.action(ids[1]!)!.state).toBe('PENDING');
    expect(ledger.rejections({ actionId: ids[1]! })).toEqual([
      expect.objectContaining({ actionId: ids[1], type: 'action.state', reason: expect.stringMatching(/illegal/) }),
    ]);
    expect(ledger.history(ids[1]!)[1]).toMatchObject({ rejected: expect.stringMatching(/illegal/) });
  });

  it('keeps a malformed transition on its own, so it alone fails', async () => {
    const ledger = await start();
    const ids = await goalWithActions(ledger, 'g', 4);
    const before = ledger.position();
    const inputs = ids.map((id) => assigned('g', id));
    inputs[2] = { ...inputs[2]!, data: { node: 'w1', error: 42 } } as unknown as EventInput;
    const results = await ledger.appendMany(inputs);
    expect(results.map((r) => r.ok)).toEqual([true, true, false, true]);
    expect(storedEvents(ledger, before).map((e) => e.type)).toEqual(['action.states', 'action.state']);
    expect(ledger.action(ids[3]!)!.state).toBe('ASSIGNED');
  });

  it("splits at an action's second transition, keeping the order they were written in", async () => {
    const ledger = await start();
    const ids = await goalWithActions(ledger, 'g', 2);
    const before = ledger.position();
    const started = (id: string): EventInput => ({
      type: 'action.state',
      goalId: 'g',
      actionId: id,
      epoch: 1,
      state: 'IN_PROGRESS',
      data: {},
    });
    const mine = (id: string) => assigned('g', id, 'node-a');
    const results = await ledger.appendMany([mine(ids[0]!), mine(ids[1]!), started(ids[0]!)]);
    expect(results.every((r) => r.ok && !r.rejected)).toBe(true);
    expect(storedEvents(ledger, before).map((e) => e.type)).toEqual(['action.states', 'action.state']);
    expect(ledger.action(ids[0]!)!.state).toBe('IN_PROGRESS');
  });

  it('replays, replicates and restores from a snapshot to the same state', async () => {
    const path = tempDir();
    const ledger = await start(path, 'node-a', 100);
    const inputs = lifecycleInputs({
      prefix: 'p',
      goals: 30,
      actionsPerGoal: 8,
      coordinator: 'node-a',
      worker: 'node-a',
      staged: true,
    });
    for (let i = 0; i < inputs.length; i += 50) {
      const results = await ledger.appendMany(inputs.slice(i, i + 50));
      expect(results.every((r) => r.ok && !r.rejected)).toBe(true);
    }
    const bad = await goalWithActions(ledger, 'bad', 2);
    await ledger.appendMany([assigned('bad', bad[0]!, 'node-a'), assigned('bad', bad[1]!, 'w1', 0)]);
    expect(ledger.rejections({ goalId: 'bad' })).toHaveLength(1);
    const packed = storedEvents(ledger, 0).filter((e) => e.type === 'action.states').length;
    expect(packed).toBeGreaterThan(30);
    expect(ledger.position()).toBeLessThan(inputs.length);
    const hash = ledger.stateHash();
    const history = ledger.history('p-g3-a5');
    expect(history.map((h) => h.event.state ?? h.event.type)).toEqual([
      'action.created',
      'ASSIGNED',
      'IN_PROGRESS',
      'action.output',
      'STATUS_VERIFICATION_REQUESTED',
      'COMPLETED',
    ]);

    // A replica fed the stored events folds them alike.
    const replica = await start(tempDir(), 'node-b');
    const report = await replica.ingest(storedEvents(ledger, 0));
    expect(report.invalid).toEqual([]);
    expect(replica.stateHash()).toBe(hash);

    // Reopened from its snapshot (nothing replayed) and with a full replay: the same state, histories, rejections.
    const again = await reopen(ledger, path, 100);
    await again.loaded();
    expect(again.stateHash()).toBe(hash);
    expect(again.history('p-g3-a5')).toEqual(history);
    expect(again.rejections({ goalId: 'bad' })).toEqual(replica.rejections({ goalId: 'bad' }));
    // A write after the open extends a restored action whose entries are items of stored batches.
    const more = await again.appendMany([
      { type: 'action.state', goalId: 'bad', actionId: bad[0]!, epoch: 1, state: 'IN_PROGRESS', data: {} },
      { type: 'action.state', goalId: 'bad', actionId: bad[1]!, epoch: 1, state: 'ASSIGNED', data: { node: 'w2' } },
    ]);
    expect(more.every((r) => r.ok && !r.rejected)).toBe(true);
    expect(again.history(bad[0]!).map((h) => h.event.state ?? h.event.type)).toEqual([
      'action.created',
      'ASSIGNED',
      'IN_PROGRESS',
    ]);
  });

  it('counts each item of a batch toward snapshotEvery: a burst of few, large events is snapshotted too', async () => {
    const path = tempDir();
    const ledger = await start(path, 'node-a', 1000);
    const ids = await goalWithActions(ledger, 'g', 600);
    await ledger.appendMany(ids.map((id) => assigned('g', id)));
    // Three events, 1,201 folded items: due, though far fewer than 1,000 events came; written while running.
    expect(ledger.position()).toBe(3);
    await waitFor(() => existsSync(join(path, SNAPSHOT_FILE)), 'the snapshot file');
    const again = await reopen(ledger, path, 1000);
    expect(again.openStats.snapshotPosition).toBe(3);
    expect(again.action(ids[599]!)).toMatchObject({ state: 'ASSIGNED', epoch: 1, node: 'w1' });
  });

  it('a fold larger than snapshotEvery is snapshotted after as much new work as it holds entities, not sooner', async () => {
    const path = tempDir();
    const file = join(path, SNAPSHOT_FILE);
    const ledger = await start(path, 'node-a', 100);
    const ids = await goalWithActions(ledger, 'g', 600); // 601 entities, 601 folded: due
    await waitFor(() => existsSync(file), 'the first snapshot');
    const first = readFileSync(file);
    await ledger.appendMany(ids.slice(0, 300).map((id) => assigned('g', id)));
    await new Promise((r) => setTimeout(r, 200));
    // 300 folded since: thrice snapshotEvery, but a snapshot would write all 601 entities again.
    expect(readFileSync(file).equals(first)).toBe(true);
    await ledger.appendMany(ids.slice(300).map((id) => assigned('g', id)));
    await new Promise((r) => setTimeout(r, 200));
    expect(readFileSync(file).equals(first)).toBe(true); // 600 since
    await ledger.appendMany(ids.slice(0, 10).map((id) => assigned('g', id, 'w2', 2)));
    await waitFor(() => !readFileSync(file).equals(first), 'the next snapshot, 610 folded later');
  });

  it('hands subscribers the stored event, which expandEvent turns into its transitions', async () => {
    const ledger = await start();
    const ids = await goalWithActions(ledger, 'g', 3);
    const seen: LedgerEntry[] = [];
    const stop = ledger.subscribe(ledger.position(), (entries) => seen.push(...entries));
    await ledger.appendMany(ids.map((id) => assigned('g', id)));
    await new Promise((r) => setTimeout(r, 20));
    stop();
    expect(seen).toHaveLength(1);
    expect(expandEvent(seen[0]!.event).map((e) => [e.type, e.actionId, e.state])).toEqual(
      ids.map((id) => ['action.state', id, 'ASSIGNED']),
    );
    const plain = { origin: 'x', seq: 1, lamport: 1, ts: 0, type: 'node.left', data: { reason: '' } };
    expect(expandEvent(plain)).toEqual([plain]);
  });

  it('visitActionEvents reads the same fields as expandEvent, for batch and plain events, and skips the rest', async () => {
    const ledger = await start();
    const ids = await goalWithActions(ledger, 'g', 3);
    const seen: LedgerEntry[] = [];
    const stop = ledger.subscribe(ledger.position(), (entries) => seen.push(...entries));
    await ledger.appendMany(ids.map((id) => assigned('g', id)));
    await ledger.append({
      type: 'action.state',
      goalId: 'g',
      actionId: ids[0]!,
      epoch: 1,
      state: 'IN_PROGRESS',
      data: {},
    });
    await ledger.append({ type: 'goal.cancelled', goalId: 'g', data: { reason: 'x' } });
    await new Promise((r) => setTimeout(r, 20));
    stop();
    const all = await ledger.eventsSince({}, 1000);
    const fields = (e: { type: string; actionId?: string; epoch?: number; state?: string }) =>
      [e.type, e.actionId, e.epoch, e.state].join(' ');
    const expected = all.events
      .flatMap((e) => expandEvent(e))
      .filter((e) => e.type === 'action.state' || e.type === 'action.created')
      .map(fields);
    const visited: string[] = [];
    for (const e of all.events) visitActionEvents(e, (f) => visited.push(fields(f)));
    expect(visited).toEqual(expected);
    expect(visited).toContain(`action.state ${ids[0]} 1 IN_PROGRESS`);
    expect(visited.filter((v) => v.startsWith('action.created'))).toHaveLength(3);
  });
});

describe('action.states from the wire', () => {
  const batch = (items: unknown[]): LedgerEvent => ({
    origin: 'peer',
    seq: 1,
    lamport: 1,
    ts: 0,
    type: 'action.states',
    data: { items },
  });
  const item = (actionId: string, state = 'IN_PROGRESS', data: object = {}) => ({
    goalId: 'g',
    actionId,
    epoch: 1,
    state,
    data,
  });

  it('refuses an empty batch, an action named twice, ASSIGNED without a node and a bad item', () => {
    expect(checkSemantics(batch([]))).toMatch(/at least one item/);
    expect(checkSemantics(batch([item('a'), item('a')]))).toMatch(/names action a twice/);
    expect(checkSemantics(batch([item('a', 'ASSIGNED')]))).toMatch(/ASSIGNED needs data.node/);
    expect(checkSemantics(batch([item('a', 'NOT_A_STATE')]))).toMatch(/action.states data/);
    expect(checkSemantics(batch([item('a'), item('b', 'ASSIGNED', { node: 'w' })]))).toBeUndefined();
  });

  it('keeps a refused batch in its origin log, folds none of it, and the replica goes on', async () => {
    const ledger = await start();
    const report = await ledger.ingest([
      batch([item('a'), item('a')]),
      { origin: 'peer', seq: 2, lamport: 2, ts: 0, type: 'node.left', data: { reason: 'bye' } },
    ]);
    expect(report.accepted).toBe(2);
    expect(ledger.versionVector()).toEqual({ peer: 2 });
    expect(ledger.action('a')).toBeUndefined();
    expect(ledger.rejections().filter((r) => r.seq === 1)).toEqual([
      expect.objectContaining({ type: 'action.states', reason: expect.stringMatching(/twice/) }),
    ]);
  });
});
