// hermesd's idle cost: RSS and CPU% of each daemon of a 3-node loopback mesh, sampled over 60 s after start-up.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { peersOf, startDaemonProcess, stopDaemon, tempDir } from '../test/support/daemons.js';
import { waitFor } from '../test/support/wait.js';
import { report } from './report.js';

const WINDOW_MS = Number(process.env.HERMES_BENCH_IDLE_MS ?? 60_000);
const TICKS = 100; // USER_HZ: clock ticks per second in /proc/<pid>/stat on Linux

/** utime+stime in seconds and RSS in bytes of a process, from /proc. */
function sample(pid: number) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const cpuSeconds = (Number(fields[11]) + Number(fields[12])) / TICKS;
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
  return { cpuSeconds, rss: rssKb * 1024 };
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
  const cpu = after.map((a, i) => ((a.cpuSeconds - before[i]!.cpuSeconds) / seconds) * 100);
  const rss = after.map((a) => a.rss / 2 ** 20);
  report('hermesd-idle', 'rss_max', Math.max(...rss), 'MiB', { nodes: 3, window_s: seconds, goal: '< 80 MB' });
  report('hermesd-idle', 'cpu_percent_max', Math.max(...cpu), '%', { nodes: 3, window_s: seconds, goal: '< 1 %' });
  report('hermesd-idle', 'cpu_percent_mean', cpu.reduce((s, c) => s + c, 0) / cpu.length, '%', { nodes: 3 });
} finally {
  await Promise.all(nodes.map(stopDaemon));
}
