// One request and its reply between two processes over the mesh's kept-open direct stream (pnet + noise + yamux
// on TCP), against the same round trip over a plain loopback TCP socket in the same run: the floor under every
// goal's latency. Measured back to back, and after 5 ms idle, which is what each hop of one goal meets: an idle
// process (and vCPU) must wake, and its code and data are no longer in the caches.
import '@hermes-mesh/mesh/polyfill';
import { spawn } from 'node:child_process';
import { connect, createServer, type Socket } from 'node:net';
import { createMeshNode, parseMeshKey } from '@hermes-mesh/mesh';
import { type Assignment, PROTOCOLS } from '@hermes-mesh/protocol';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { generateKey } from '@libp2p/pnet';
import { percentile, report } from './report.js';

const ROUNDS = Number(process.env.HERMES_BENCH_ROUNDS ?? 2_000);
const IDLE_ROUNDS = Math.ceil(ROUNDS / 4);
const WARMUP = 200;
const IDLE_MS = 5;

if (process.env.HERMES_HOP_ECHO) {
  // The far side: a mesh node answering every assign with an ack, and a TCP echo server.
  const psk = parseMeshKey(Buffer.from(process.env.HERMES_HOP_ECHO, 'hex'));
  const node = await createMeshNode({ privateKey: await generateKeyPair('Ed25519'), psk });
  await node.handle(PROTOCOLS.assign, async (request) => ({
    kind: 'ack',
    body: { acks: [{ actionId: 'a', epoch: 1, accepted: request.kind === 'assign' }] },
  }));
  const tcp = createServer((s) => s.on('data', (d) => s.write(d)).on('error', () => {}));
  tcp.listen(0, '127.0.0.1', () => {
    const port = (tcp.address() as { port: number }).port;
    process.stdout.write(`${JSON.stringify({ peer: node.peerId, addr: node.addrs()[0], port })}\n`);
  });
} else {
  const rawKey = new Uint8Array(95);
  generateKey(rawKey);
  const child = spawn(process.execPath, ['--import', 'tsx', import.meta.filename], {
    env: { ...process.env, HERMES_HOP_ECHO: Buffer.from(rawKey).toString('hex') },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const far = await new Promise<{ peer: string; addr: string; port: number }>((resolve) =>
    child.stdout!.once('data', (d) => resolve(JSON.parse(String(d)))),
  );
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  /** Sorted round-trip times of `rounds` calls after a warm-up, each after `idleMs` of idleness. */
  async function times(call: () => Promise<unknown>, rounds: number, idleMs: number): Promise<number[]> {
    const out: number[] = [];
    for (let i = 0; i < rounds + WARMUP; i++) {
      if (idleMs > 0) await sleep(idleMs);
      const t0 = performance.now();
      await call();
      if (i >= WARMUP) out.push(performance.now() - t0);
    }
    return out.sort((a, b) => a - b);
  }
  try {
    const node = await createMeshNode({ privateKey: await generateKeyPair('Ed25519'), psk: parseMeshKey(rawKey) });
    await node.dial(far.addr);
    const assignment: Assignment = {
      goalId: 'g',
      actionId: 'a',
      epoch: 1,
      kind: 'builtin',
      params: { name: 'noop' },
      timeoutMs: 1_000,
    };
    const request = () => node.request(far.peer, PROTOCOLS.assign, 'assign', { assignments: [assignment] });
    const socket: Socket = connect(far.port, '127.0.0.1');
    socket.setNoDelay(true);
    await new Promise((r) => socket.once('connect', r));
    const echo = () =>
      new Promise((r) => {
        socket.once('data', r);
        socket.write('x'.repeat(200));
      });
    const hot = { mesh: await times(request, ROUNDS, 0), tcp: await times(echo, ROUNDS, 0) };
    const idle = { mesh: await times(request, IDLE_ROUNDS, IDLE_MS), tcp: await times(echo, IDLE_ROUNDS, IDLE_MS) };
    socket.destroy();
    await node.stop();
    const tcpAnchor = (sorted: number[], p: number) => Number(percentile(sorted, p).toFixed(4));
    for (const p of [50, 99]) {
      report('mesh-hop', `request_rtt_p${p}`, percentile(hot.mesh, p), 'ms', {
        rounds: ROUNDS,
        anchor_tcp_rtt_ms: tcpAnchor(hot.tcp, p),
      });
    }
    for (const p of [50, 99]) {
      report('mesh-hop', `request_rtt_after_idle_p${p}`, percentile(idle.mesh, p), 'ms', {
        rounds: IDLE_ROUNDS,
        idle_ms: IDLE_MS,
        anchor_tcp_rtt_ms: tcpAnchor(idle.tcp, p),
      });
    }
  } finally {
    child.kill();
  }
}
