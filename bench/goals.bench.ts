import { Agent, get, request } from 'node:http';
import { type DaemonProcess, startMesh } from '../test/support/daemons.js';
import { cpuSince, rssMiB } from './proc.js';
import { percentile, report } from './report.js';

const THROUGHPUT_ACTIONS = Number(process.env.HERMES_BENCH_ACTIONS ?? 20_000);
const LATENCY_ROUNDS = Number(process.env.HERMES_BENCH_ROUNDS ?? 200);

function noopGoal(n: number) {
  return {
    goal: `${n} noops`,
    flows: [{ id: 'f', persona: 'Bench' }],
    actions: Array.from({ length: n }, (_, i) => ({
      id: `a${i}`,
      flowId: 'f',
      kind: 'builtin',
      params: { name: 'noop' },
      dependsOn: [],
    })),
  };
}

/**
 * A keep-alive node:http client for the coordinator's API. Not fetch: undici's fetch and its web-stream body cost
 * this client ~0.4 ms per request and ~0.5 ms per event read here, which the latency figure then counted as the
 * mesh's own (a production client keeps its connection open the same way).
 */
function apiClient(coord: DaemonProcess) {
  const { hostname, port } = new URL(coord.api);
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  return {
    post(path: string, body: unknown): Promise<void> {
      const payload = JSON.stringify(body);
      return new Promise((resolve, reject) => {
        const req = request(
          { hostname, port, path, method: 'POST', agent, headers: { 'content-type': 'application/json' } },
          (res) => {
            let text = '';
            res.setEncoding('utf8');
            res.on('data', (c: string) => {
              text += c;
            });
            res.on('end', () => {
              if (res.statusCode === 201) resolve();
              else reject(new Error(`${path}: HTTP ${res.statusCode} ${text}`));
            });
          },
        );
        req.on('error', reject);
        req.end(payload);
      });
    },
    /** The live event stream, read for markers: `next` resolves when the next one arrives. */
    events(): Promise<{ next(marker: string): Promise<void>; close(): void }> {
      return new Promise((resolve, reject) => {
        const req = get({ hostname, port, path: '/v1/events' }, (res) => {
          res.setEncoding('utf8');
          let buffer = '';
          let waiter: { marker: string; done: () => void } | undefined;
          let live = false;
          const stream = {
            next(marker: string) {
              return new Promise<void>((done) => {
                waiter = { marker, done };
                check();
              });
            },
            close: () => req.destroy(),
          };
          const check = () => {
            // The stream's first line says it is live: whatever is written from now on will be on it.
            if (!live) {
              if (!buffer.includes('hermes-mesh event stream')) return;
              live = true;
              buffer = '';
              resolve(stream);
            }
            if (!waiter) return;
            const at = buffer.indexOf(waiter.marker);
            if (at < 0) {
              // Keep only a tail that could hold the start of the marker: a 20k-action goal streams ~100k events,
              // and searching all of them again on every chunk made this client, not the mesh, the bottleneck.
              buffer = buffer.slice(-waiter.marker.length);
              return;
            }
            buffer = buffer.slice(at + waiter.marker.length);
            const { done } = waiter;
            waiter = undefined;
            done();
          };
          res.on('data', (c: string) => {
            buffer += c;
            check();
          });
          res.on('error', reject);
        });
        req.on('error', reject);
      });
    },
  };
}

{
  const { coord, workers, stop } = await startMesh(1, ['--slots', '256']);
  try {
    // One event stream for all rounds, as a watching client holds it; rounds run one at a time, so the next
    // goal.finished on it is the round's own.
    const api = apiClient(coord);
    const events = await api.events();
    const latencies: number[] = [];
    const answered: number[] = [];
    let cpuPerGoal: ReturnType<typeof cpuSince> = () => undefined;
    for (let i = 0; i < LATENCY_ROUNDS + 20; i++) {
      if (i === 20) cpuPerGoal = cpuSince([coord.proc.pid, workers[0]!.proc.pid]); // first rounds warm the JIT
      const t0 = performance.now();
      await api.post('/v1/goals', noopGoal(1));
      const t1 = performance.now();
      await events.next('event: goal.finished');
      if (i < 20) continue;
      latencies.push(performance.now() - t0);
      answered.push(t1 - t0);
    }
    const perGoal = cpuPerGoal(LATENCY_ROUNDS);
    events.close();
    latencies.sort((a, b) => a - b);
    report('goals', 'noop_e2e_latency_p50', percentile(latencies, 50), 'ms', {
      rounds: LATENCY_ROUNDS,
      workers: 1,
      goal: 'p50 < 1 ms',
      includes: 'HTTP submit + ledger + assign + run + events + verify + SSE',
    });
    report('goals', 'noop_e2e_latency_p99', percentile(latencies, 99), 'ms', { rounds: LATENCY_ROUNDS, workers: 1 });
    // Where the time goes: the submit is answered once the goal is durable (its placement already sent), and each
    // one-action goal costs its processes this much CPU, which on 2 vCPUs is most of the latency.
    answered.sort((a, b) => a - b);
    report('goals', 'noop_submit_answered_p50', percentile(answered, 50), 'ms', { rounds: LATENCY_ROUNDS });
    if (perGoal) {
      report('goals', 'noop_single_goal_cpu', perGoal[0]! + perGoal[1]!, 'ms', {
        coordinator: Number(perGoal[0]!.toFixed(2)),
        worker: Number(perGoal[1]!.toFixed(2)),
      });
    }
  } finally {
    await stop();
  }
}
{
  const { coord, workers, stop } = await startMesh(3, ['--slots', '256']);
  try {
    const api = apiClient(coord);
    const events = await api.events();
    const processes = [coord, ...workers];
    const cpuPerAction = cpuSince(processes.map((p) => p.proc.pid));
    const t0 = performance.now();
    await api.post('/v1/goals', noopGoal(THROUGHPUT_ACTIONS));
    await events.next('event: goal.finished');
    events.close();
    const seconds = (performance.now() - t0) / 1000;
    const perAction = cpuPerAction(THROUGHPUT_ACTIONS);
    if (perAction) {
      // The machine's whole CPU budget is shared by all four processes: this is what limits throughput.
      report(
        'goals',
        'noop_cpu_per_action',
        perAction.reduce((a, b) => a + b, 0),
        'ms',
        {
          coordinator: Number(perAction[0]!.toFixed(3)),
          workers: perAction.slice(1).map((x) => Number(x.toFixed(3))),
        },
      );
    }
    // Every node holds the whole ledger's fold in memory: what 20k actions cost each process to keep.
    const rss = processes.map((p) => rssMiB(p.proc.pid)).filter((r) => r !== undefined);
    if (rss.length === processes.length) {
      report('goals', 'rss_after_throughput_max', Math.max(...rss), 'MiB', {
        actions: THROUGHPUT_ACTIONS,
        coordinator: Number(rss[0]!.toFixed(1)),
        workers: rss.slice(1).map((r) => Number(r.toFixed(1))),
      });
    }
    report('goals', 'noop_throughput_3_workers', THROUGHPUT_ACTIONS / seconds, 'actions/s', {
      actions: THROUGHPUT_ACTIONS,
      seconds,
      goal: '> 15000/s',
      anchor: 'BullMQ+Redis ~11000 jobs/s here',
    });
  } finally {
    await stop();
  }
}
