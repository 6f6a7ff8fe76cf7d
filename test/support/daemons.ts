import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { waitFor } from './wait.js';

const HERMESD = resolve(import.meta.dirname, '../../packages/daemon/bin/hermesd.js');
const HERMES_COORD = resolve(import.meta.dirname, '../../packages/coordinator/bin/hermes-coord.js');

export interface DaemonProcess {
  name: string;
  dataDir: string;
  proc: ChildProcess;
  peerId: string;
  api: string;
  addrs: string[];
  /** Everything the process wrote, for failure messages. */
  output(): string;
  get<T>(path: string): Promise<T>;
  post<T>(path: string, body: unknown): Promise<T>;
  metrics(): Promise<string>;
  exited: Promise<number | null>;
}

export interface DaemonOptions {
  name: string;
  dataDir?: string;
  meshKey: string;
  bootstrap?: string[];
  args?: string[];
  env?: NodeJS.ProcessEnv;
  /** Start `hermes-coord serve` (a coordinator node) instead of hermesd. */
  coordinator?: boolean;
  /** Extra flags for node itself (e.g. --cpu-prof in a profiling run). */
  nodeArgs?: string[];
}

/** The environment and node flags in a bin's `#!/usr/bin/env -S NAME=value node --flag ...` line. */
function shebang(bin: string): { env: Record<string, string>; flags: string[] } {
  const first = readFileSync(bin, 'utf8').split('\n', 1)[0]!;
  const match = /^#!\S*env -S((?:\s+\w+=\S*)*)\s+node((?:\s+--\S+)*)\s*$/.exec(first);
  if (!match) return { env: {}, flags: [] };
  const words = (s: string) => s.split(/\s+/).filter(Boolean);
  const env = Object.fromEntries(
    words(match[1]!).map((w) => [w.slice(0, w.indexOf('=')), w.slice(w.indexOf('=') + 1)]),
  );
  return { env, flags: words(match[2]!) };
}

const madeDirs: string[] = [];
// Data dirs outlive their daemons (a test restarts one on the same data), so they go when the run ends: under
// vitest with the run's folder (test/setup/temp-root.ts), elsewhere (benchmarks) when the process exits. A
// 20k-action benchmark leaves ~10 MB in each, and every run used to add its own to /tmp for good.
process.on('exit', () => {
  for (const dir of madeDirs) rmSync(dir, { recursive: true, force: true });
});

export function tempDir(prefix = 'hermes-test-'): string {
  const dir = mkdtempSync(join(process.env.HERMES_TEST_ROOT ?? tmpdir(), prefix));
  madeDirs.push(dir);
  return dir;
}

/** Starts a real hermesd process on loopback with random ports and waits until its API answers. */
export async function startDaemonProcess(opts: DaemonOptions): Promise<DaemonProcess> {
  const dataDir = opts.dataDir ?? tempDir();
  const args = [
    ...(opts.coordinator ? [HERMES_COORD, 'serve'] : [HERMESD]),
    '--name',
    opts.name,
    '--data-dir',
    dataDir,
    '--mesh-key',
    opts.meshKey,
    '--listen',
    '/ip4/127.0.0.1/tcp/0',
    '--api',
    '127.0.0.1:0',
    ...(opts.bootstrap ?? []).flatMap((b) => ['--bootstrap', b]),
    ...(opts.args ?? []),
  ];
  // The environment and node flags of the bin's own shebang, so tests measure what users run;
  // HERMES_TEST_NODE_FLAGS replaces the flags (benchmarks comparing V8 settings).
  const bin = opts.coordinator ? HERMES_COORD : HERMESD;
  const launch = shebang(bin);
  const v8Flags = process.env.HERMES_TEST_NODE_FLAGS?.split(' ').filter(Boolean) ?? launch.flags;
  const proc = spawn(process.execPath, [...v8Flags, ...(opts.nodeArgs ?? []), ...args], {
    env: { ...launch.env, ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (d) => {
    out += d;
  });
  proc.stderr!.on('data', (d) => {
    out += d;
  });
  const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
  const state = await waitFor(
    () => {
      if (proc.exitCode !== null) throw new Error(`hermesd ${opts.name} exited ${proc.exitCode}:\n${out}`);
      const s = JSON.parse(readFileSync(join(dataDir, 'hermesd.json'), 'utf8'));
      return s.pid === proc.pid ? s : undefined;
    },
    `hermesd ${opts.name} to start`,
    20_000,
  ).catch((err) => {
    proc.kill('SIGKILL');
    throw new Error(`${(err as Error).message}\n${out}`);
  });
  const get = async <T>(path: string) => {
    const res = await fetch(`${state.api}${path}`, { signal: AbortSignal.timeout(5_000) });
    if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
    return (await res.json()) as T;
  };
  const post = async <T>(path: string, body: unknown) => {
    const res = await fetch(`${state.api}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    if (!res.ok) throw new Error(`${path}: HTTP ${res.status} ${await res.text()}`);
    return (await res.json()) as T;
  };
  return {
    name: opts.name,
    dataDir,
    proc,
    post,
    peerId: state.peerId,
    api: state.api,
    addrs: state.addrs,
    output: () => out,
    get,
    metrics: async () => (await fetch(`${state.api}/metrics`, { signal: AbortSignal.timeout(5_000) })).text(),
    exited,
  };
}

export interface PeerEntry {
  nodeId: string;
  name: string;
  state: string;
  self: boolean;
}

export async function peersOf(d: DaemonProcess): Promise<PeerEntry[]> {
  return (await d.get<{ peers: PeerEntry[] }>('/v1/peers')).peers;
}

/** Stops a daemon for good: SIGTERM, then SIGKILL if it does not go. */
export async function stopDaemon(d: DaemonProcess): Promise<void> {
  if (d.proc.exitCode !== null || d.proc.signalCode !== null) return;
  d.proc.kill('SIGTERM');
  const timer = setTimeout(() => d.proc.kill('SIGKILL'), 5_000);
  await d.exited;
  clearTimeout(timer);
}

/** Sum of a Prometheus counter's samples whose labels include all of `labels`. */
export function counterValue(metricsText: string, name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  for (const line of metricsText.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{([^}]*)\})?\s+([-\d.eE+]+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const present = Object.fromEntries([...(m[3] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => present[k] === v)) total += Number(m[4]);
  }
  return total;
}

export interface TestMesh {
  coord: DaemonProcess;
  workers: DaemonProcess[];
  /** Stops every process still running. */
  stop(): Promise<void>;
}

/** A coordinator and `workers` hermesd on loopback, joined through the coordinator, every node seen alive. */
export async function startMesh(
  workers: number,
  workerArgs: string[] = [],
  coordEnv: NodeJS.ProcessEnv = {},
): Promise<TestMesh> {
  const meshKey = join(tempDir(), 'mesh.key');
  const coord = await startDaemonProcess({
    name: 'coord',
    meshKey,
    coordinator: true,
    args: ['--log-level', 'warn'],
    env: coordEnv,
  });
  const started: DaemonProcess[] = [];
  for (let i = 0; i < workers; i++) {
    started.push(
      await startDaemonProcess({
        name: `w${i}`,
        meshKey,
        bootstrap: [coord.addrs[0]!],
        args: ['--log-level', 'warn', ...workerArgs],
      }),
    );
  }
  await waitFor(
    async () => (await peersOf(coord)).filter((p) => p.state === 'alive').length === workers + 1,
    'every node of the mesh to be alive',
    20_000,
  );
  return {
    coord,
    workers: started,
    stop: async () => {
      await Promise.all([coord, ...started].map(stopDaemon));
    },
  };
}
