// hermesd's idle cost: RSS and CPU% of each daemon of a 3-node loopback mesh, sampled over 60 s after start-up.
import { join } from 'node:path';
import { peersOf, startDaemonProcess, stopDaemon, tempDir } from '../test/support/daemons.js';
import { waitFor } from '../test/support/wait.js';
import { cpuMs, rssMiB } from './proc.js';
import { report } from './report.js';

const WINDOW_MS = Number(process.env.HERMES_BENCH_IDLE_MS ?? 60_000);

/** CPU time used (ms) and RSS (MiB) of a process; this benchmark reads them from /proc, so Linux only. */
function sample(pid: number) {
  const cpu = cpuMs(pid);
  const rss = rssMiB(pid);
  if (cpu === undefined || rss === undefined) throw new Error(`cannot read /proc/${pid}: hermesd-idle runs on Linux`);
  return { cpu, rss };
}

const meshKey = join(tempDir(), 'mesh.key');
const first = await startDaemonProcess({ name: 'idle0', meshKey, args: ['--log-level', 'warn'] });
const rest = await Promise.all(
  [1, 2].map((i) =>
    startDaemonProcess({ name: `idle${i}`, meshKey, bootstrap: [first.addrs[0]!], args: ['--log-level', 'warn'] }),
  ),
);
const nodes = [first, ...rest];
try {
  await waitFor(
    async () => (await Promise.all(nodes.map(peersOf))).every((p) => p.length === 3),
    'a 3-node mesh',
    20_000,
  );
  // Let start-up work (JIT, first probes) settle before measuring.
  await new Promise((r) => setTimeout(r, 5_000));
  const before = nodes.map((n) => sample(n.proc.pid!));
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, WINDOW_MS));
  const seconds = (performance.now() - t0) / 1000;
  const after = nodes.map((n) => sample(n.proc.pid!));
  const cpu = after.map((a, i) => ((a.cpu - before[i]!.cpu) / 1000 / seconds) * 100);
  const rss = after.map((a) => a.rss);
  report('hermesd-idle', 'rss_max', Math.max(...rss), 'MiB', { nodes: 3, window_s: seconds, goal: '< 80 MB' });
  report('hermesd-idle', 'cpu_percent_max', Math.max(...cpu), '%', { nodes: 3, window_s: seconds, goal: '< 1 %' });
  report('hermesd-idle', 'cpu_percent_mean', cpu.reduce((s, c) => s + c, 0) / cpu.length, '%', { nodes: 3 });
} finally {
  await Promise.all(nodes.map(stopDaemon));
}
