import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type DaemonProcess, startDaemonProcess, stopDaemon, tempDir } from './support/daemons.js';
import { waitFor } from './support/wait.js';

interface LedgerSummary {
  position: number;
  stateHash: string;
  counts: { events: number; nodes: number; conflicts: number };
}

const started: DaemonProcess[] = [];
afterAll(async () => {
  await Promise.all(started.map(stopDaemon));
});

async function launch(opts: Parameters<typeof startDaemonProcess>[0]) {
  const d = await startDaemonProcess(opts);
  started.push(d);
  return d;
}

const summary = (d: DaemonProcess) => d.get<LedgerSummary>('/v1/ledger');

async function converged(nodes: DaemonProcess[], events: number) {
  const all = await Promise.all(nodes.map(summary));
  return all.every((s) => s.counts.events === events && s.stateHash === all[0]!.stateHash) ? all : undefined;
}

describe('the ledger inside hermesd', () => {
  // Six daemon starts and stops: on a loaded 2-core box that alone can take most of the default 30 s.
  it('replicates across processes, and a node that was offline catches up on return', { timeout: 90_000 }, async () => {
    const meshKey = join(tempDir(), 'mesh.key');
    const a = await launch({ name: 'a', meshKey });
    const b = await launch({ name: 'b', meshKey, bootstrap: [a.addrs[0]!] });
    let c = await launch({ name: 'c', meshKey, bootstrap: [a.addrs[0]!] });
    // Each node records itself once per start: three events, on every replica.
    const first = await waitFor(() => converged([a, b, c], 3), 'three replicas with the same three events');
    expect(first[0]!.counts.nodes).toBe(3);

    // c goes away hard; meanwhile b restarts twice (two more events c has never seen).
    c.proc.kill('SIGKILL');
    await c.exited;
    let b2 = b;
    for (let i = 0; i < 2; i++) {
      await stopDaemon(b2);
      b2 = await launch({ name: 'b', meshKey, dataDir: b.dataDir, bootstrap: [a.addrs[0]!] });
    }
    await waitFor(() => converged([a, b2], 5), 'a and b to agree on five events');

    c = await launch({ name: 'c', meshKey, dataDir: c.dataDir, bootstrap: [a.addrs[0]!] });
    const last = await waitFor(() => converged([a, b2, c], 6), 'c to catch up and all three to agree');
    expect(last.every((s) => s.counts.conflicts === 0)).toBe(true);
  });
});
