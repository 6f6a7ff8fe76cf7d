// Time from kill -9 of a node to its action running elsewhere (a new epoch IN_PROGRESS on another node),
// with the default liveness settings (heartbeat 1 s, dead after 3 s).
import { startMesh } from '../test/support/daemons.js';
import { waitFor } from '../test/support/wait.js';
import { percentile, report } from './report.js';

const ROUNDS = Number(process.env.HERMES_BENCH_FAILOVER_ROUNDS ?? 3);
const mesh = await startMesh(ROUNDS + 1, ['--slots', '1']);
const { coord, workers } = mesh;

interface Action {
  id: string;
  state: string;
  node?: string;
  epoch: number;
}
const times: number[] = [];
try {
  for (let r = 0; r < ROUNDS; r++) {
    const { goalId } = await coord.post<{ goalId: string }>('/v1/goals', {
      goal: `long nap ${r}`,
      flows: [{ id: 'f', persona: 'Sleeper' }],
      actions: [{ id: 'nap', flowId: 'f', kind: 'builtin', params: { name: 'sleep', ms: 60_000 }, dependsOn: [] }],
    });
    const action = () => coord.get<{ actions: Action[] }>(`/v1/goals/${goalId}`).then((g) => g.actions[0]!);
    const first = await waitFor(async () => {
      const a = await action();
      return a.state === 'IN_PROGRESS' ? a : undefined;
    }, 'the nap to start');
    const victim = workers.find((w) => w.peerId === first.node)!;
    victim.proc.kill('SIGKILL');
    const killedAt = performance.now();
    await waitFor(
      async () => {
        const a = await action();
        return a.epoch > first.epoch && a.state === 'IN_PROGRESS';
      },
      'the nap to run elsewhere',
      30_000,
      10,
    );
    times.push(performance.now() - killedAt);
    workers.splice(workers.indexOf(victim), 1);
    await coord.post(`/v1/goals/${goalId}/cancel`, {});
  }
  times.sort((a, b) => a - b);
  report('failover', 'kill9_to_running_elsewhere_p50', percentile(times, 50), 'ms', {
    rounds: ROUNDS,
    deadAfterMs: 3000,
    goal: '< 3 s',
    anchor: 'Ray 15-60 s, Nomad >= 10 s, Kubernetes ~50 s+',
  });
  report('failover', 'kill9_to_running_elsewhere_max', times.at(-1)!, 'ms', { rounds: ROUNDS });
} finally {
  await mesh.stop();
}
