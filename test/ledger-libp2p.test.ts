import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMeshNode, loadOrCreateIdentity, loadOrCreateMeshKey, type MeshNode } from '@hermes-mesh/mesh';
import { afterAll, describe, expect, it } from 'vitest';
import {
  createReplicator,
  type Ledger,
  lifecycleInputs,
  openLedger,
  type Replicator,
} from '../packages/ledger/src/index.js';
import { waitFor } from './support/wait.js';

interface Replica {
  name: string;
  mesh: MeshNode;
  ledger: Ledger;
  replicator: Replicator;
}

const dir = mkdtempSync(join(tmpdir(), 'ledger-libp2p-'));
const running: Replica[] = [];
afterAll(async () => {
  for (const r of running.splice(0)) {
    r.replicator.stop();
    await r.mesh.stop();
    await r.ledger.close();
  }
  rmSync(dir, { recursive: true, force: true });
});

async function startReplica(name: string, psk: Uint8Array, bootstrap: string[] = []): Promise<Replica> {
  const { key } = await loadOrCreateIdentity(join(dir, `${name}.key`));
  const mesh = await createMeshNode({ privateKey: key, psk, bootstrap });
  const ledger = await openLedger({ path: join(dir, name), origin: mesh.peerId });
  const replicator = await createReplicator({ ledger, mesh, intervalMs: 500 });
  const replica = { name, mesh, ledger, replicator };
  running.push(replica);
  return replica;
}

async function write(replica: Replica, goals: number) {
  const id = replica.mesh.peerId;
  const inputs = lifecycleInputs({ prefix: replica.name, goals, actionsPerGoal: 3, coordinator: id, worker: id });
  for (let i = 0; i < inputs.length; i += 200) await replica.ledger.appendMany(inputs.slice(i, i + 200));
  return inputs.length;
}

function converged(all: Replica[], events: number): boolean {
  return all.every((r) => r.ledger.position() === events) && new Set(all.map((r) => r.ledger.stateHash())).size === 1;
}

describe('replication over real libp2p nodes', () => {
  it('replicates between three nodes, and a node that joins late catches up', { timeout: 60_000 }, async () => {
    const { psk } = await loadOrCreateMeshKey(join(dir, 'mesh.key'));
    const a = await startReplica('a', psk);
    const b = await startReplica('b', psk, a.mesh.addrs());
    await waitFor(() => a.mesh.connectedPeers().includes(b.mesh.peerId), 'b to connect to a');
    const first = (await Promise.all([write(a, 50), write(b, 50)])).reduce((x, y) => x + y);
    await waitFor(() => converged([a, b], first), 'a and b to converge', 20_000);

    const c = await startReplica('c', psk, a.mesh.addrs());
    const second = await write(b, 25);
    const all = [a, b, c];
    const states = () => all.map((r) => `${r.name}=${r.ledger.position()}`).join(' ');
    await waitFor(() => converged(all, first + second), `all three to converge (${states()})`, 30_000);
    expect(c.replicator.stats().pulledEvents).toBeGreaterThanOrEqual(first);
    expect(c.ledger.goal('a-g7')).toMatchObject({ state: 'COMPLETED', coordinator: a.mesh.peerId });
  });
});
