import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ActionRunner, createWorker, type RunResult } from '@hermes-mesh/daemon';
import { createExecutor, createFakeOpenAIServer } from '@hermes-mesh/executor';
import { createMemoryNetwork, createReplicator, type Ledger, openLedger, type Replicator } from '@hermes-mesh/ledger';
import { createMembership, type Membership } from '@hermes-mesh/mesh';
import { proposeFallback } from '@hermes-mesh/planner';
import { type Assignment, sampleAdvert } from '@hermes-mesh/protocol';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '../../../test/support/wait.js';
import { schedulerPlacer } from './placer.js';
import { type Coordinator, type CoordinatorInit, createCoordinator, SubmitError } from './service.js';
import type { GoalRequest } from './spec.js';

const logger = pino({ level: 'silent' });
const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

/** Test actions say what to do in their params: how long to take, and whether to fail. */
interface Script {
  ms?: number;
  fail?: 'retryable' | 'permanent';
  failTimes?: number;
}

function scriptedRunner(log: string[], failures = new Map<string, number>()): ActionRunner {
  return {
    async run(a: Assignment, { signal }): Promise<RunResult> {
      const s = (a.params ?? {}) as Script;
      log.push(`start ${a.actionId}@${a.epoch}`);
      if (s.ms) {
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, s.ms);
          signal.addEventListener('abort', () => {
            clearTimeout(t);
            resolve();
          });
        });
      }
      if (signal.aborted) {
        log.push(`aborted ${a.actionId}@${a.epoch}`);
        return { ok: false, error: 'aborted', retryable: true };
      }
      const failed = failures.get(a.actionId) ?? 0;
      if (s.fail && failed < (s.failTimes ?? Number.POSITIVE_INFINITY)) {
        failures.set(a.actionId, failed + 1);
        return { ok: false, error: `scripted ${s.fail} failure`, retryable: s.fail === 'retryable' };
      }
      log.push(`done ${a.actionId}@${a.epoch}`);
      return { ok: true, output: { value: { id: a.actionId }, summary: `did ${a.actionId}`, bytes: 20 } };
    },
  };
}

interface Cluster {
  ledgers: Map<string, Ledger>;
  membership: Membership;
  coordinator: Coordinator;
  log: string[];
  /** Stops the coordinator and starts a new one on the same ledger, as after a crash and restart. */
  restartCoordinator(): Promise<void>;
  advance(ms: number): void;
}

async function cluster(
  workers: string[],
  runners = new Map<string, ActionRunner>(),
  recipesDir?: string,
  extra: Partial<CoordinatorInit> = {},
  net: { gossip?: boolean; syncIntervalMs?: number; slots?: number } = {},
): Promise<Cluster> {
  const network = createMemoryNetwork(net.gossip === false ? { deliver: (_from, _to, via) => via !== 'gossip' } : {});
  const ledgers = new Map<string, Ledger>();
  const meshes = new Map<string, ReturnType<typeof network.node>>();
  const replicators = new Map<string, Replicator>();
  const log: string[] = [];
  let t = 0;
  const membership = createMembership({ selfId: 'coord', now: () => t, deadAfterMs: 3_000 });
  for (const id of ['coord', ...workers]) {
    const path = mkdtempSync(join(tmpdir(), `coord-test-${id}-`));
    const ledger = await openLedger({ path, origin: id });
    const mesh = network.node(id);
    meshes.set(id, mesh);
    const replicator = await createReplicator({ ledger, mesh, intervalMs: net.syncIntervalMs ?? 50 });
    replicators.set(id, replicator);
    ledgers.set(id, ledger);
    cleanup.push(async () => {
      replicator.stop();
      await ledger.close();
      rmSync(path, { recursive: true, force: true });
    });
    if (id === 'coord') continue;
    const worker = await createWorker({
      mesh,
      ledger,
      replicator,
      runner: runners.get(id) ?? scriptedRunner(log),
      slots: net.slots ?? 2,
      logger,
    });
    cleanup.push(() => worker.stop());
    membership.observeAdvert(sampleAdvert({ nodeId: id, name: id, slots: { total: net.slots ?? 2, busy: 0 }, seq: 1 }));
  }
  network.connectAll(['coord', ...workers]);
  const start = () =>
    createCoordinator({
      ledger: ledgers.get('coord')!,
      mesh: meshes.get('coord')!,
      replicator: replicators.get('coord')!,
      membership,
      place: schedulerPlacer(),
      logger,
      backoffMs: 10,
      startupGraceMs: 0,
      ...(recipesDir ? { recipesDir } : {}),
      ...extra,
    });
  const c: Cluster = {
    ledgers,
    membership,
    log,
    coordinator: await start(),
    async restartCoordinator() {
      c.coordinator.stop();
      c.coordinator = await start();
    },
    advance(ms) {
      t += ms;
      membership.tick();
    },
  };
  cleanup.unshift(() => c.coordinator.stop());
  return c;
}

function plan(actions: Array<{ id: string; after?: string[]; script?: Script; flow?: string }>): GoalRequest {
  return {
    goal: 'test goal',
    flows: [
      { id: 'f1', persona: 'Research Analyst' },
      { id: 'f2', persona: 'Code Writer' },
    ],
    actions: actions.map((a) => ({
      id: a.id,
      flowId: a.flow ?? 'f1',
      kind: 'builtin',
      params: a.script ?? {},
      dependsOn: a.after ?? [],
    })),
  };
}

const goalState = (c: Cluster, goalId: string) => c.ledgers.get('coord')!.goal(goalId)?.state;
const states = (ledger: Ledger, actionId: string) =>
  ledger
    .history(actionId)
    .filter((h) => !h.rejected && h.event.type === 'action.state')
    .map((h) => h.event.state);

describe('coordinator loop', () => {
  it('runs two parallel flows in dependency order; every replica holds the full history of every action', async () => {
    const c = await cluster(['w1', 'w2']);
    const { goalId } = await c.coordinator.submit(
      plan([
        { id: 'a', script: { ms: 20 } },
        { id: 'b', flow: 'f2', script: { ms: 20 } },
        { id: 'c', after: ['a', 'b'] },
        { id: 'd', after: ['c'], flow: 'f2' },
      ]),
    );
    await waitFor(() => goalState(c, goalId) === 'COMPLETED', 'goal completed');
    const order = c.log.filter((l) => l.startsWith('start')).map((l) => l.split(' ')[1]!.split('.')[1]!.split('@')[0]);
    expect(order.indexOf('c')).toBeGreaterThan(Math.max(order.indexOf('a'), order.indexOf('b')));
    expect(order.indexOf('d')).toBeGreaterThan(order.indexOf('c'));
    const ids = ['a', 'b', 'c', 'd'].map((x) => `${goalId}.${x}`);
    // Replicas converge, but not in causal order across origins: the coordinator's goal.finished can reach a
    // replica before a worker's earlier events do (each origin's gossip trails by up to pushDelayMs). Wait for
    // every replica to hold every action's COMPLETED, then check each history in full.
    await waitFor(
      () =>
        [...c.ledgers.values()].every(
          (l) => l.goal(goalId)?.state === 'COMPLETED' && ids.every((id) => states(l, id).length === 4),
        ),
      'every replica to hold the goal completed and four states of every action',
    );
    for (const ledger of c.ledgers.values()) {
      for (const id of ids) {
        expect(states(ledger, id)).toEqual(['ASSIGNED', 'IN_PROGRESS', 'STATUS_VERIFICATION_REQUESTED', 'COMPLETED']);
      }
    }
    // The dependent got its inputs from the ledger.
    expect(c.ledgers.get('coord')!.action(ids[2]!)?.output?.value).toEqual({ id: ids[2] });
  });

  it('writes the transitions of a wide goal a batch at a time, and every replica still holds every history', async () => {
    const c = await cluster(['w1', 'w2'], new Map(), undefined, {}, { slots: 32 });
    const wide = Array.from({ length: 40 }, (_, i) => ({ id: `x${i}` }));
    const { goalId } = await c.coordinator.submit(plan(wide));
    const ids = wide.map((a) => `${goalId}.${a.id}`);
    await waitFor(
      () => [...c.ledgers.values()].every((l) => ids.every((id) => states(l, id).length === 4)),
      'every replica to hold four states of every action',
    );
    for (const ledger of c.ledgers.values()) {
      for (const id of ids) {
        expect(states(ledger, id)).toEqual(['ASSIGNED', 'IN_PROGRESS', 'STATUS_VERIFICATION_REQUESTED', 'COMPLETED']);
      }
    }
    // 160 transitions; written one event each they would be 160 events. Packed: a handful per origin.
    const stored = c.ledgers.get('coord')!.eventsSince({}, 10_000).events;
    const transitions = stored.filter((e) => e.type === 'action.state' || e.type === 'action.states');
    expect(transitions.length).toBeLessThan(40);
    const packedBy = new Set(stored.filter((e) => e.type === 'action.states').map((e) => e.origin));
    expect(packedBy).toEqual(new Set(['coord', 'w1', 'w2']));
  });

  it('results reach the coordinator straight from the worker: a goal completes with gossip and anti-entropy off', async () => {
    const c = await cluster(['w1'], new Map(), undefined, {}, { gossip: false, syncIntervalMs: 0 });
    const { goalId } = await c.coordinator.submit(plan([{ id: 'a' }, { id: 'b', after: ['a'] }]));
    await waitFor(() => goalState(c, goalId) === 'COMPLETED', 'goal completed without gossip');
    const coord = c.ledgers.get('coord')!;
    for (const id of ['a', 'b']) {
      expect(states(coord, `${goalId}.${id}`)).toEqual([
        'ASSIGNED',
        'IN_PROGRESS',
        'STATUS_VERIFICATION_REQUESTED',
        'COMPLETED',
      ]);
    }
  });

  it('a goal and its first assignments share one disk write; so do a reported claim and its verdict', async () => {
    const c = await cluster(['w1'], new Map(), undefined, {}, { gossip: false, syncIntervalMs: 0 });
    const coord = c.ledgers.get('coord')!;
    // Each listener call is one durable batch (nothing is durable between two calls' worth of writes).
    const batches: string[][] = [];
    const off = coord.subscribe(coord.position(), (entries) =>
      batches.push(entries.map(({ event }) => (event.type === 'action.state' ? event.state! : event.type))),
    );
    cleanup.push(off);
    const { goalId } = await c.coordinator.submit(plan([{ id: 'a' }]));
    await waitFor(() => goalState(c, goalId) === 'COMPLETED', 'goal completed');
    await waitFor(() => batches.flat().includes('goal.finished'), 'goal.finished durable');
    expect(batches).toContainEqual(['goal.submitted', 'flow.created', 'flow.created', 'action.created', 'ASSIGNED']);
    expect(batches).toContainEqual(['IN_PROGRESS', 'STATUS_VERIFICATION_REQUESTED', 'COMPLETED', 'goal.finished']);
  });

  it('retries a retryable failure with backoff under a new epoch, and completes', async () => {
    const c = await cluster(['w1']);
    const { goalId } = await c.coordinator.submit(plan([{ id: 'x', script: { fail: 'retryable', failTimes: 2 } }]));
    await waitFor(() => goalState(c, goalId) === 'COMPLETED', 'goal completed after retries');
    const action = c.ledgers.get('coord')!.action(`${goalId}.x`)!;
    expect(action.attempts).toBe(3);
    expect(action.epoch).toBe(3);
  });

  it('a permanent failure fails the goal and cancels what was still open', async () => {
    const c = await cluster(['w1']);
    const { goalId } = await c.coordinator.submit({
      ...plan([
        { id: 'bad', script: { fail: 'permanent' } },
        { id: 'next', after: ['bad'] },
      ]),
      approvalTimeoutMs: 0,
    });
    await waitFor(() => goalState(c, goalId) === 'FAILED', 'goal failed');
    const ledger = c.ledgers.get('coord')!;
    expect(ledger.action(`${goalId}.bad`)?.state).toBe('TERMINATED');
    expect(ledger.action(`${goalId}.next`)?.state).toBe('CANCELLED');
    expect(ledger.goal(goalId)?.summary).toMatch(/bad failed after 1 attempt/);
  });

  it('re-places the actions of a dead node under a new epoch; the result is accepted exactly once', async () => {
    const hang: ActionRunner = {
      run: (_a, { signal }) =>
        new Promise((r) => signal.addEventListener('abort', () => r({ ok: false, error: 'aborted', retryable: true }))),
    };
    const c = await cluster(['w1', 'w2'], new Map([['w1', hang]]));
    // Only w1 has room at first: the action lands there and hangs.
    c.membership.observeAdvert(sampleAdvert({ nodeId: 'w2', name: 'w2', slots: { total: 0, busy: 0 }, seq: 2 }));
    const { goalId } = await c.coordinator.submit(plan([{ id: 'long' }]));
    const id = `${goalId}.long`;
    const ledger = c.ledgers.get('coord')!;
    await waitFor(() => ledger.action(id)?.state === 'IN_PROGRESS', 'running on w1');
    expect(ledger.action(id)?.node).toBe('w1');
    // w2 gets room, w1 goes silent and dies.
    c.membership.observeAdvert(sampleAdvert({ nodeId: 'w2', name: 'w2', slots: { total: 2, busy: 0 }, seq: 3 }));
    c.advance(1_000);
    c.membership.observeAdvert(sampleAdvert({ nodeId: 'w2', name: 'w2', slots: { total: 2, busy: 0 }, seq: 4 }));
    c.advance(2_500);
    c.membership.observeAdvert(sampleAdvert({ nodeId: 'w2', name: 'w2', slots: { total: 2, busy: 0 }, seq: 5 }));
    expect(c.membership.get('w1')?.state).toBe('dead');
    await waitFor(() => goalState(c, goalId) === 'COMPLETED', 'goal completed on w2');
    const action = ledger.action(id)!;
    expect(action.node).toBe('w2');
    expect(action.epoch).toBe(2);
    expect(states(ledger, id).filter((s) => s === 'COMPLETED')).toHaveLength(1);
  });

  it('cancel stops the running action on its node', async () => {
    const c = await cluster(['w1']);
    const { goalId } = await c.coordinator.submit(plan([{ id: 'slow', script: { ms: 60_000 } }]));
    const id = `${goalId}.slow`;
    await waitFor(() => c.log.includes(`start ${id}@1`), 'the action to start');
    expect(await c.coordinator.cancel(goalId, 'user')).toBe('cancelled');
    await waitFor(() => c.log.includes(`aborted ${id}@1`), 'the worker to abort it');
    expect(c.ledgers.get('coord')!.action(id)?.state).toBe('CANCELLED');
    expect(await c.coordinator.cancel(goalId, 'again')).toBe('already-finished');
    expect(await c.coordinator.cancel('gnope', 'x')).toBe('not-found');
  });

  it('after a coordinator restart, the unfinished goal finishes', async () => {
    const c = await cluster(['w1']);
    const { goalId } = await c.coordinator.submit(
      plan([
        { id: 'one', script: { ms: 30 } },
        { id: 'two', after: ['one'] },
        { id: 'three', after: ['two'] },
      ]),
    );
    await waitFor(
      () => c.ledgers.get('coord')!.action(`${goalId}.one`)?.state === 'IN_PROGRESS',
      'first action running',
    );
    await c.restartCoordinator();
    await waitFor(() => goalState(c, goalId) === 'COMPLETED', 'goal completed after restart');
  });

  it("a node's busy slots count as ours or others' by its own split, however late its advert comes", async () => {
    const c = await cluster(['w1']);
    // An advert sent while our earlier work still ran, arriving after it finished: its 2 busy slots were ours.
    const busy = (byCoordinator: Record<string, number>, seq: number) =>
      c.membership.observeAdvert(
        sampleAdvert({
          nodeId: 'w1',
          name: 'w1',
          slots: { total: 2, busy: Object.values(byCoordinator).reduce((x, y) => x + y, 0), byCoordinator },
          seq,
        }),
      );
    busy({ coord: 2 }, 2);
    const first = await c.coordinator.submit(plan([{ id: 'a' }, { id: 'b' }]));
    await waitFor(() => goalState(c, first.goalId) === 'COMPLETED', 'goal placed at once on the freed slots');
    // Busy with another coordinator's work: nothing of ours fits until it ends.
    busy({ 'coord-2': 2 }, 3);
    const second = await c.coordinator.submit(plan([{ id: 'x' }]));
    await waitFor(() => c.coordinator.waitingReason(`${second.goalId}.x`), 'a waiting reason');
    expect(c.coordinator.waitingReason(`${second.goalId}.x`)).toMatch(/slots on 1 nodes are busy|no free slot/);
    busy({ 'coord-2': 1 }, 4);
    await waitFor(() => goalState(c, second.goalId) === 'COMPLETED', 'goal placed once a slot freed');
  });

  it('a node that is suspect (its adverts late) but still connected keeps getting work', async () => {
    const c = await cluster(['w1']);
    c.advance(2_000); // 2 s without an advert: suspect, and the memory mesh still connects it
    expect(c.membership.get('w1')?.state).toBe('suspect');
    const { goalId } = await c.coordinator.submit(plan([{ id: 'a' }, { id: 'b', after: ['a'] }]));
    await waitFor(() => goalState(c, goalId) === 'COMPLETED', 'goal completed on the suspect node');
  });

  it('an action no node can take waits, with a reason', async () => {
    const c = await cluster(['w1']);
    await expect(
      c.coordinator.submit({
        ...plan([{ id: 'x' }]),
        actions: [{ ...plan([{ id: 'x' }]).actions[0]!, kind: 'llm', requires: { model: 'gpt-9' } }],
      }),
    ).rejects.toThrow(/action x: no live node serves model gpt-9 \(the mesh has: /);
    const request = plan([{ id: 'gpu' }]);
    request.actions[0]!.requires = { labels: { gpu: 'h100' } };
    const { goalId } = await c.coordinator.submit(request);
    await waitFor(() => c.coordinator.waitingReason(`${goalId}.gpu`), 'a waiting reason');
    expect(c.coordinator.waitingReason(`${goalId}.gpu`)).toBe('0 of 1 node fit: 1 lack label gpu=h100');
    expect(c.ledgers.get('coord')!.action(`${goalId}.gpu`)?.state).toBe('PENDING');
  });

  it('refuses delegation past max_depth, and under a parent that forbids subagents', async () => {
    const c = await cluster(['w1']);
    await expect(c.coordinator.submit({ ...plan([{ id: 'x' }]), delegation: { depth: 3 } })).rejects.toThrow(
      /depth 3 exceeds max_depth 2/,
    );
    const root = await c.coordinator.submit({
      ...plan([{ id: 'x', script: { ms: 5_000 } }]),
      delegation: { allowSubagents: true },
    });
    const child = await c.coordinator.submit({
      ...plan([{ id: 'y', script: { ms: 5_000 } }]),
      delegation: { parentGoalId: root.goalId },
    });
    const ledger = c.ledgers.get('coord')!;
    const childSpec = ledger.action(`${child.goalId}.y`)?.spec as { delegation: { depth: number } };
    expect(childSpec.delegation.depth).toBe(1);
    const grandchild = await c.coordinator.submit({
      ...plan([{ id: 'z' }]),
      delegation: { parentGoalId: child.goalId },
    });
    const grandchildSpec = ledger.action(`${grandchild.goalId}.z`)?.spec as { delegation: { depth: number } };
    expect(grandchildSpec.delegation.depth).toBe(2);
    await expect(
      c.coordinator.submit({ ...plan([{ id: 'w' }]), delegation: { parentGoalId: grandchild.goalId } }),
    ).rejects.toThrow(/depth 3 exceeds max_depth 2/);
    const closed = await c.coordinator.submit({ ...plan([{ id: 'q' }]), delegation: { allowSubagents: false } });
    await expect(
      c.coordinator.submit({ ...plan([{ id: 'r' }]), delegation: { parentGoalId: closed.goalId } }),
    ).rejects.toThrow(/does not allow subagents/);
  });

  it('CREATE saves recipes when a goal completes; the same goal later runs in REUSE mode with no LLM call', async () => {
    const llm = await createFakeOpenAIServer();
    cleanup.push(() => llm.close());
    const workDir = mkdtempSync(join(tmpdir(), 'coord-recipes-worker-'));
    const recipesDir = mkdtempSync(join(tmpdir(), 'coord-recipes-'));
    const executor = createExecutor({
      dataDir: workDir,
      providers: [{ name: 'local', baseUrl: llm.url, defaultModel: 'qwen2.5:7b' }],
    });
    cleanup.push(() => executor.close());
    const c = await cluster(['w1'], new Map([['w1', executor]]), recipesDir);
    const request: GoalRequest = {
      goal: 'greet the team',
      flows: [{ id: 'f1', persona: 'Writer' }],
      actions: [
        { id: 'draft', flowId: 'f1', kind: 'llm', params: { prompt: 'write a greeting' }, dependsOn: [] },
        {
          id: 'hash',
          flowId: 'f1',
          kind: 'builtin',
          params: { name: 'sha256', input: { fromActions: ['draft'] } },
          dependsOn: ['draft'],
        },
      ],
    };
    llm.script([{ content: 'Hello, team!' }]);
    const first = await c.coordinator.submit(request);
    expect(first.mode).toBe('create');
    await waitFor(() => goalState(c, first.goalId) === 'COMPLETED', 'first run');
    await waitFor(() => c.ledgers.get('coord')!.goal(first.goalId)?.recipes.length === 1, 'recipe saved');
    const calls = llm.requests.length;
    expect(calls).toBe(1);
    const again = await c.coordinator.submit(request);
    expect(again.mode).toBe('reuse');
    await waitFor(() => goalState(c, again.goalId) === 'COMPLETED', 'replayed run');
    expect(llm.requests.length).toBe(calls);
    const ledger = c.ledgers.get('coord')!;
    expect(ledger.action(`${again.goalId}.draft`)?.output?.value).toMatchObject({ text: 'Hello, team!' });
    expect(ledger.action(`${again.goalId}.hash`)?.output?.value).toEqual(
      ledger.action(`${first.goalId}.hash`)?.output?.value,
    );
  });

  it('a failed action waits for approval: retry places it again, abort fails the goal, silence times out', async () => {
    const c = await cluster(['w1']);
    const ledger = c.ledgers.get('coord')!;
    const retried = await c.coordinator.submit(plan([{ id: 'flaky', script: { fail: 'permanent', failTimes: 1 } }]));
    const flaky = `${retried.goalId}.flaky`;
    await waitFor(() => ledger.action(flaky)?.state === 'FALLBACK_REQUESTED', 'flaky to wait for approval');
    expect(ledger.action(flaky)?.reason).toMatch(/waiting for approval: hermes-coord approve/);
    expect(await c.coordinator.decide(flaky, 'retry')).toBe('ok');
    await waitFor(() => goalState(c, retried.goalId) === 'COMPLETED', 'retried goal completed');
    expect(ledger.action(flaky)?.epoch).toBe(2);

    const aborted = await c.coordinator.submit(plan([{ id: 'bad', script: { fail: 'permanent' } }]));
    await waitFor(() => ledger.action(`${aborted.goalId}.bad`)?.state === 'FALLBACK_REQUESTED', 'bad to wait');
    expect(await c.coordinator.decide(`${aborted.goalId}.bad`, 'abort')).toBe('ok');
    await waitFor(() => goalState(c, aborted.goalId) === 'FAILED', 'aborted goal failed');
    expect(await c.coordinator.decide(`${aborted.goalId}.bad`, 'retry')).toBe('not-waiting');

    const silent = await c.coordinator.submit({
      ...plan([{ id: 'bad', script: { fail: 'permanent' } }]),
      approvalTimeoutMs: 150,
    });
    await waitFor(() => goalState(c, silent.goalId) === 'FAILED', 'unanswered goal failed at the timeout');
    expect(ledger.action(`${silent.goalId}.bad`)?.state).toBe('TERMINATED');
  });

  it('autonomous: the verifier model replaces a failed action (its invalid answer sent back first), or gives up', async () => {
    const llm = await createFakeOpenAIServer();
    cleanup.push(() => llm.close());
    const verifier = {
      model: 'judge',
      propose: (failed: Parameters<typeof proposeFallback>[0]) =>
        proposeFallback(failed, { baseUrl: llm.url, model: 'judge', models: [] }),
    };
    const c = await cluster(['w1'], new Map(), undefined, { verifier });
    const ledger = c.ledgers.get('coord')!;
    const reply = (value: unknown) => ({ content: JSON.stringify(value) });
    llm.script([
      reply({ decision: 'replace', reason: 'try another way', action: null }),
      reply({
        decision: 'replace',
        reason: 'hash the text in-process instead',
        action: { kind: 'builtin', params: { name: 'sha256', input: { text: 'x' } }, after: null },
      }),
    ]);
    const fixed = await c.coordinator.submit({
      ...plan([{ id: 'fetch', script: { fail: 'permanent' } }]),
      autonomous: true,
    });
    const fetch = `${fixed.goalId}.fetch`;
    await waitFor(() => goalState(c, fixed.goalId) === 'COMPLETED', 'the fallback to complete the goal');
    expect(states(ledger, fetch)).toEqual([
      'ASSIGNED',
      'IN_PROGRESS',
      'ERROR',
      'FALLBACK_REQUESTED',
      'FALLBACK_RECEIVED',
      'ASSIGNED',
      'IN_PROGRESS',
      'STATUS_VERIFICATION_REQUESTED',
      'COMPLETED',
    ]);
    expect(ledger.action(fetch)).toMatchObject({
      kind: 'builtin',
      epoch: 2,
      spec: { params: { name: 'sha256', input: { text: 'x' } }, fallbacks: 1, attemptsBefore: 1 },
    });
    expect(c.log).toContain(`start ${fetch}@2`);
    // The verifier saw the failure, and its first (invalid) answer came back to it with the problem.
    expect(llm.requests).toHaveLength(2);
    expect(JSON.stringify(llm.requests[0]!.body.messages)).toContain('scripted permanent failure');
    expect(JSON.stringify(llm.requests[1]!.body.messages)).toMatch(/needs the replacement action/);

    llm.script([reply({ decision: 'abort', reason: 'the source is gone for good', action: null })]);
    const hopeless = await c.coordinator.submit({
      ...plan([{ id: 'fetch', script: { fail: 'permanent' } }]),
      autonomous: true,
    });
    await waitFor(() => goalState(c, hopeless.goalId) === 'FAILED', 'the verifier to give up');
    expect(ledger.action(`${hopeless.goalId}.fetch`)).toMatchObject({
      state: 'TERMINATED',
      reason: expect.stringMatching(/verifier judge: the source is gone for good/),
    });

    // No usable answer at all: a person decides, as without --autonomous.
    llm.script([{ content: 'no idea' }, { content: 'none' }, { content: '{}' }]);
    const stuck = await c.coordinator.submit({
      ...plan([{ id: 'fetch', script: { fail: 'permanent' } }]),
      autonomous: true,
    });
    const stuckId = `${stuck.goalId}.fetch`;
    await waitFor(() => c.coordinator.waitingReason(stuckId), 'the verifier to fail');
    expect(ledger.action(stuckId)?.state).toBe('FALLBACK_REQUESTED');
    expect(c.coordinator.waitingReason(stuckId)).toMatch(/gave no usable fallback.*hermes-coord approve/);
    expect(await c.coordinator.decide(stuckId, 'abort')).toBe('ok');
    await waitFor(() => goalState(c, stuck.goalId) === 'FAILED', 'the person to abort');
  });

  it('autonomous goals are refused when the coordinator has no verifier model', async () => {
    const c = await cluster(['w1']);
    await expect(c.coordinator.submit({ ...plan([{ id: 'a' }]), autonomous: true })).rejects.toThrow(SubmitError);
  });

  it('a restarted coordinator asks the verifier again for an action it was asking about', async () => {
    const llm = await createFakeOpenAIServer();
    cleanup.push(() => llm.close());
    // The first answer comes only after the coordinator that asked for it is gone.
    llm.script([{ content: '{}', delayMs: 400 }]);
    const verifier = {
      model: 'judge',
      propose: (failed: Parameters<typeof proposeFallback>[0]) =>
        proposeFallback(failed, { baseUrl: llm.url, model: 'judge', models: [], maxAttempts: 1 }),
    };
    const c = await cluster(['w1'], new Map(), undefined, { verifier });
    const ledger = c.ledgers.get('coord')!;
    const { goalId } = await c.coordinator.submit({
      ...plan([{ id: 'fetch', script: { fail: 'permanent' } }]),
      autonomous: true,
    });
    await waitFor(() => llm.requests.length === 1, 'the verifier to be asked');
    const replacement = {
      decision: 'replace',
      reason: 'noop will do',
      action: { kind: 'builtin', params: { name: 'noop' } },
    };
    llm.script([{ content: JSON.stringify(replacement) }]);
    await c.restartCoordinator();
    await waitFor(() => goalState(c, goalId) === 'COMPLETED', 'the restarted coordinator to finish the goal');
    expect(llm.requests).toHaveLength(2);
    expect(ledger.action(`${goalId}.fetch`)).toMatchObject({ kind: 'builtin', spec: { params: { name: 'noop' } } });
  });

  it('speculative: a fast answer from the cheapest capable model, and the expert answer from the best one', async () => {
    const llm = await createFakeOpenAIServer({
      fallback: (body) => ({ content: `answer from ${String(body.model)}` }),
    });
    cleanup.push(() => llm.close());
    const executor = createExecutor({
      dataDir: mkdtempSync(join(tmpdir(), 'coord-spec-')),
      providers: [{ name: 'local', baseUrl: llm.url, models: ['llama3.1:8b', 'qwen2.5:72b'] }],
    });
    cleanup.push(() => executor.close());
    const c = await cluster(['w1'], new Map([['w1', executor]]));
    const served = (name: string) => ({
      name,
      provider: 'openai' as const,
      providerName: 'local',
      endpoint: llm.url,
      loaded: true,
      sizeBytes: 0,
      vramBytes: 0,
      quant: '',
      family: '',
      parameterSize: '',
      ctx: 0,
    });
    c.membership.observeAdvert(
      sampleAdvert({
        nodeId: 'w1',
        name: 'w1',
        slots: { total: 2, busy: 0 },
        seq: 9,
        models: [served('llama3.1:8b'), served('qwen2.5:72b')],
      }),
    );
    const { goalId } = await c.coordinator.submit({
      goal: 'explain the mesh',
      speculative: true,
      flows: [{ id: 'f1', persona: 'Explainer' }],
      actions: [{ id: 'explain', flowId: 'f1', kind: 'llm', params: { prompt: 'explain' }, dependsOn: [] }],
    });
    await waitFor(() => goalState(c, goalId) === 'COMPLETED', 'speculative goal completed');
    const ledger = c.ledgers.get('coord')!;
    expect(ledger.action(`${goalId}.explain~fast`)?.output?.value).toMatchObject({ text: 'answer from llama3.1:8b' });
    expect(ledger.action(`${goalId}.explain`)?.output?.value).toMatchObject({ text: 'answer from qwen2.5:72b' });
  });
});
