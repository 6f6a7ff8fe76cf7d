import { execFile, execFileSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSse } from '../packages/coordinator/src/sse.js';
import { type DaemonProcess, peersOf, startDaemonProcess, stopDaemon, tempDir } from './support/daemons.js';
import { waitFor } from './support/wait.js';

interface ActionRow {
  id: string;
  planId: string;
  state: string;
  node?: string;
  epoch: number;
  dependsOn: string[];
}
interface GoalView {
  id: string;
  state: string;
  actions: ActionRow[];
}
interface HistoryEntry {
  event: { type: string; state?: string; ts: number; epoch?: number; data?: { node?: string } };
  rejected?: string;
}

const started: DaemonProcess[] = [];
afterAll(async () => {
  await Promise.all(started.map(stopDaemon));
});

async function launch(opts: Parameters<typeof startDaemonProcess>[0]) {
  const d = await startDaemonProcess({ ...opts, args: ['--log-level', 'warn', ...(opts.args ?? [])] });
  started.push(d);
  return d;
}

const goalOf = (coord: DaemonProcess, id: string) => coord.get<GoalView>(`/v1/goals/${id}`);

async function finished(coord: DaemonProcess, id: string, timeoutMs = 20_000) {
  return waitFor(
    async () => {
      const g = await goalOf(coord, id);
      return g.state === 'ACTIVE' ? undefined : g;
    },
    `goal ${id} to finish`,
    timeoutMs,
  );
}

const stateChanges = (history: HistoryEntry[]) =>
  history.filter((h) => !h.rejected && h.event.type === 'action.state').map((h) => h.event.state);

describe('goals end to end: a coordinator and three hermesd processes', () => {
  const meshKey = join(tempDir(), 'mesh.key');
  const config = join(tempDir(), 'worker.yaml');
  let coord: DaemonProcess;
  const workers: DaemonProcess[] = [];

  beforeAll(async () => {
    writeFileSync(config, 'exec:\n  sleep:\n    path: /bin/sleep\n    args: { maxCount: 1, pattern: "^[0-9]+$" }\n');
    coord = await launch({ name: 'coord', meshKey, coordinator: true });
    for (const i of [1, 2, 3]) {
      workers.push(
        await launch({
          name: `w${i}`,
          meshKey,
          bootstrap: [coord.addrs[0]!],
          args: ['--config', config, '--slots', '2', '--input-root', resolve(import.meta.dirname, '../examples')],
        }),
      );
    }
    await waitFor(
      async () => (await peersOf(coord)).filter((p) => p.state === 'alive').length === 4,
      'four live nodes',
    );
  });

  /** The coordinator again, on its own data dir, joining the mesh through `peer`. */
  const restartCoordinator = (peer: DaemonProcess) =>
    launch({ name: 'coord', meshKey, coordinator: true, dataDir: coord.dataDir, bootstrap: [peer.addrs[0]!] });

  it('runs a plan of two parallel flows in dependency order; every node holds every action history', async () => {
    const { goalId } = await coord.post<{ goalId: string }>('/v1/goals', {
      goal: 'hash, count and combine two texts',
      flows: [
        { id: 'hashing', persona: 'Integrity Checker' },
        { id: 'counting', persona: 'Research Analyst' },
      ],
      actions: [
        {
          id: 'hash',
          flowId: 'hashing',
          kind: 'builtin',
          params: { name: 'sha256', input: { text: 'to be or not to be' } },
          dependsOn: [],
        },
        {
          id: 'count',
          flowId: 'counting',
          kind: 'builtin',
          params: { name: 'wordcount', input: { text: 'to be or not to be' } },
          dependsOn: [],
        },
        {
          id: 'both',
          flowId: 'hashing',
          kind: 'builtin',
          params: { name: 'concat', input: { fromActions: ['hash', 'count'] } },
          dependsOn: ['hash', 'count'],
        },
        {
          id: 'zip',
          flowId: 'counting',
          kind: 'builtin',
          params: { name: 'gzip', input: { fromActions: ['both'] } },
          dependsOn: ['both'],
        },
      ],
    });
    const goal = await finished(coord, goalId);
    expect(goal.state).toBe('COMPLETED');
    const byPlan = new Map(goal.actions.map((a) => [a.planId, a]));
    const histories = new Map<string, HistoryEntry[]>();
    for (const a of goal.actions) {
      histories.set(a.planId, (await coord.get<{ history: HistoryEntry[] }>(`/v1/actions/${a.id}/history`)).history);
    }
    const at = (plan: string, state: string) => histories.get(plan)!.find((h) => h.event.state === state)!.event.ts;
    expect(at('both', 'ASSIGNED')).toBeGreaterThanOrEqual(Math.max(at('hash', 'COMPLETED'), at('count', 'COMPLETED')));
    expect(at('zip', 'ASSIGNED')).toBeGreaterThanOrEqual(at('both', 'COMPLETED'));
    for (const node of [coord, ...workers]) {
      for (const a of byPlan.values()) {
        await waitFor(async () => {
          const { history } = await node.get<{ history: HistoryEntry[] }>(`/v1/actions/${a.id}/history`);
          const seen = stateChanges(history);
          return seen.join() === 'ASSIGNED,IN_PROGRESS,STATUS_VERIFICATION_REQUESTED,COMPLETED';
        }, `${node.name} to hold the full history of ${a.planId}`);
      }
    }
  });

  it('hermes-coord submit --plan follows progress and ends with the result; --async, status and search work', async () => {
    const cli = (args: string[]) =>
      promisify(execFile)(
        process.execPath,
        [resolve(import.meta.dirname, '../packages/coordinator/bin/hermes-coord.js'), '--api', coord.api, ...args],
        {
          encoding: 'utf8',
          timeout: 60_000,
        },
      );
    const plan = resolve(import.meta.dirname, '../examples/plans/fan-out.json');
    const sync = await cli(['submit', '--plan', plan]);
    expect(sync.stdout).toMatch(/left-1\s+ASSIGNED on w\d/);
    expect(sync.stdout).toMatch(/checksum-gettysburg\s+COMPLETED/);
    expect(sync.stdout).toMatch(/goal g[0-9a-f]+ COMPLETED/);
    expect(sync.stdout).toMatch(/checksum-gettysburg.*sha256 [0-9a-f]{64}/);
    const { stdout } = await cli(['submit', '--plan', plan, '--async', '--json']);
    const { goalId } = JSON.parse(stdout) as { goalId: string };
    await finished(coord, goalId);
    const status = JSON.parse((await cli(['status', goalId.slice(0, 8), '--json'])).stdout) as GoalView;
    expect(status).toMatchObject({ id: goalId, state: 'COMPLETED' });
    const hits = JSON.parse((await cli(['search', goalId.slice(0, 8), '--json'])).stdout) as Array<{ id: string }>;
    expect(hits.map((h) => h.id)).toContain(goalId);
    await expect(cli(['status', 'gdoesnotexist'])).rejects.toMatchObject({ code: 3 });
  });

  it('kill -9 of the node running a long action: it is re-placed and completes exactly once', async () => {
    const { goalId } = await coord.post<{ goalId: string }>('/v1/goals', {
      goal: 'a long nap',
      flows: [{ id: 'f', persona: 'Sleeper' }],
      actions: [{ id: 'nap', flowId: 'f', kind: 'builtin', params: { name: 'sleep', ms: 3_000 }, dependsOn: [] }],
    });
    const running = await waitFor(async () => {
      const a = (await goalOf(coord, goalId)).actions[0]!;
      return a.state === 'IN_PROGRESS' ? a : undefined;
    }, 'the nap to start');
    const victim = workers.find((w) => w.peerId === running.node)!;
    victim.proc.kill('SIGKILL');
    await victim.exited;
    const goal = await finished(coord, goalId);
    expect(goal.state).toBe('COMPLETED');
    const action = goal.actions[0]!;
    expect(action.node).not.toBe(victim.peerId);
    expect(action.epoch).toBe(2);
    const { history } = await coord.get<{ history: HistoryEntry[] }>(`/v1/actions/${action.id}/history`);
    expect(stateChanges(history).filter((s) => s === 'COMPLETED')).toHaveLength(1);
    workers.splice(workers.indexOf(victim), 1);
  });

  it('cancel stops the running exec action: its process on the node is gone', async () => {
    const { goalId } = await coord.post<{ goalId: string }>('/v1/goals', {
      goal: 'sleep for a minute',
      flows: [{ id: 'f', persona: 'Sleeper' }],
      actions: [{ id: 'sleep', flowId: 'f', kind: 'exec', params: { command: 'sleep', args: ['60'] }, dependsOn: [] }],
    });
    const running = await waitFor(async () => {
      const a = (await goalOf(coord, goalId)).actions[0]!;
      return a.state === 'IN_PROGRESS' ? a : undefined;
    }, 'the exec action to start');
    const host = workers.find((w) => w.peerId === running.node)!;
    const sleepers = () => {
      try {
        return execFileSync('pgrep', ['-f', '^/bin/sleep 60$'], { encoding: 'utf8' })
          .trim()
          .split('\n')
          .filter(Boolean);
      } catch {
        return [];
      }
    };
    await waitFor(() => sleepers().length > 0, 'the sleep process to exist');
    await coord.post(`/v1/goals/${goalId}/cancel`, {});
    await waitFor(() => sleepers().length === 0, 'the sleep process to be gone', 5_000);
    expect((await goalOf(coord, goalId)).state).toBe('CANCELLED');
    expect(host.proc.exitCode).toBeNull();
  });

  it('kill -9 of the coordinator mid-goal: after restart the goal finishes', async () => {
    const chain = ['one', 'two', 'three'].map((id, i, all) => ({
      id,
      flowId: 'f',
      kind: 'builtin',
      params: { name: 'sleep', ms: 700 },
      dependsOn: i === 0 ? [] : [all[i - 1]!],
    }));
    const { goalId } = await coord.post<{ goalId: string }>('/v1/goals', {
      goal: 'three naps in a row',
      flows: [{ id: 'f', persona: 'Sleeper' }],
      actions: chain,
    });
    await waitFor(
      async () => (await goalOf(coord, goalId)).actions.some((a) => a.state === 'IN_PROGRESS'),
      'a nap to run',
    );
    coord.proc.kill('SIGKILL');
    await coord.exited;
    coord = await restartCoordinator(workers[0]!);
    const goal = await finished(coord, goalId, 30_000);
    expect(goal.state).toBe('COMPLETED');
  });

  it('SIGTERM stops the coordinator while a client follows /v1/events; after a restart the client resumes from Last-Event-ID', async () => {
    // A dashboard or `hermes-coord watch` holds the stream open; the coordinator must still stop when asked.
    const watcher = await fetch(`${coord.api}/v1/events`);
    const reader = watcher.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    while (!text.includes('hermes-mesh event stream')) text += decoder.decode((await reader.read()).value);
    const position = (await coord.get<{ position: number }>('/v1/ledger')).position;
    coord.proc.kill('SIGTERM');
    const code = await Promise.race([coord.exited, new Promise((r) => setTimeout(() => r('still running'), 15_000))]);
    expect(code).toBe(0);
    // The stream ended (not reset): the client sees the server go, and knows to reconnect.
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read());
    expect(existsSync(join(coord.dataDir, 'hermesd.json'))).toBe(false); // a clean stop removes its state file

    // An earlier test killed a worker for good.
    const running = workers.filter((w) => w.proc.exitCode === null && w.proc.signalCode === null);
    coord = await restartCoordinator(running[0]!);
    await waitFor(
      async () => (await peersOf(coord)).filter((p) => p.state === 'alive').length === running.length + 1,
      'the coordinator to see every running worker again',
    );
    const { goalId } = await coord.post<{ goalId: string }>('/v1/goals', {
      goal: 'one noop after a restart',
      flows: [{ id: 'f', persona: 'Bench' }],
      actions: [{ id: 'a', flowId: 'f', kind: 'builtin', params: { name: 'noop' }, dependsOn: [] }],
    });
    expect((await finished(coord, goalId)).state).toBe('COMPLETED');
    // Resumed from where it stood: everything since, this goal's events included, then live.
    const resumed = await fetch(`${coord.api}/v1/events`, { headers: { 'last-event-id': String(position) } });
    const ids: number[] = [];
    for await (const event of readSse(resumed.body!)) {
      ids.push(Number(event.id));
      if (event.event === 'goal.finished' && JSON.parse(event.data).goalId === goalId) break;
    }
    expect(ids.length).toBeGreaterThan(0);
    expect(Math.min(...ids)).toBeGreaterThan(position);
  });
});
