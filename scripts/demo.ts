// npm run demo: a coordinator and three hermesd on 127.0.0.1 with a fresh mesh key, the example plans submitted
// and followed live, then the mesh left running for the dashboard and the CLI until Ctrl-C.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const HERMESD = join(root, 'packages/daemon/bin/hermesd.js');
const COORD = join(root, 'packages/coordinator/bin/hermes-coord.js');
const work = mkdtempSync(join(tmpdir(), 'hermes-demo-'));
const meshKey = join(work, 'mesh.key');
const children: ChildProcess[] = [];

function start(name: string, bin: string[], extra: string[]): Promise<{ api: string; addrs: string[] }> {
  const dataDir = join(work, name);
  const [command, ...rest] = bin;
  const args = [
    ...rest,
    '--name',
    name,
    '--data-dir',
    dataDir,
    '--mesh-key',
    meshKey,
    '--listen',
    '/ip4/127.0.0.1/tcp/0',
    '--api',
    '127.0.0.1:0',
    '--log-level',
    'warn',
    ...extra,
  ];
  // Each bin runs through its shebang: the node flags and environment it is measured with.
  const child = spawn(command!, args, {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  children.push(child);
  return new Promise((resolveStart, reject) => {
    const deadline = Date.now() + 20_000;
    const poll = () => {
      try {
        const state = JSON.parse(readFileSync(join(dataDir, 'hermesd.json'), 'utf8'));
        if (state.pid === child.pid) return resolveStart(state);
      } catch {
        // not written yet
      }
      if (child.exitCode !== null || Date.now() > deadline) return reject(new Error(`${name} did not start`));
      setTimeout(poll, 50);
    };
    poll();
  });
}

function run(args: string[]): Promise<number> {
  return new Promise((r) =>
    spawn(process.execPath, [COORD, ...args], { stdio: 'inherit' }).on('exit', (code) => r(code ?? 1)),
  );
}

function stopAll() {
  for (const c of children) c.kill('SIGTERM');
}
process.on('SIGINT', () => {
  console.log('\nstopping the mesh');
  stopAll();
  setTimeout(() => process.exit(0), 1_000);
});

const config = join(work, 'worker.yaml');
writeFileSync(
  config,
  [
    'exec:',
    '  wc: { path: /usr/bin/wc, args: { maxCount: 4, pattern: "^[-a-zA-Z0-9_./]+$" } }',
    '  sha256sum: { path: /usr/bin/sha256sum, args: { maxCount: 8, pattern: "^[-a-zA-Z0-9_./]+$" } }',
    '  sort: { path: /usr/bin/sort, args: { maxCount: 4, pattern: "^[-a-zA-Z0-9_./]+$" } }',
    '  uname: { path: /usr/bin/uname, args: { maxCount: 2, pattern: "^-[a-z]+$" } }',
    ...(process.env.HERMES_LLM_URL
      ? [
          'providers:',
          `  - { name: demo, baseUrl: "${process.env.HERMES_LLM_URL}", defaultModel: "${process.env.HERMES_LLM_MODEL ?? 'default'}" }`,
        ]
      : []),
  ].join('\n'),
);

console.log(`demo mesh in ${work}`);
const coord = await start('coord', [COORD, 'serve'], []);
for (const name of ['box1', 'box2', 'box3']) {
  await start(
    name,
    [HERMESD],
    ['--bootstrap', coord.addrs[0]!, '--config', config, '--input-root', join(root, 'examples'), '--slots', '2'],
  );
}
process.env.HERMES_API = coord.api;
await new Promise((r) => setTimeout(r, 1_500)); // adverts: one heartbeat so every node is known
await run(['nodes']);
const plans = readdirSync(join(root, 'examples/plans'))
  .filter((f) => /\.(ya?ml|json)$/.test(f))
  .sort();
for (const plan of plans) {
  const path = join(root, 'examples/plans', plan);
  const usesLlm = /kind"?\s*:\s*"?llm/.test(readFileSync(path, 'utf8'));
  if (usesLlm && !process.env.HERMES_LLM_URL) {
    console.log(`\n=== ${plan}: skipped (llm actions; set HERMES_LLM_URL and HERMES_LLM_MODEL to run it)`);
    continue;
  }
  console.log(`\n=== ${plan}`);
  if (usesLlm) {
    // Every llm action goes to the demo's provider; submitted async, since a plan may ask for a tier
    // (minTier) this machine's nodes do not reach: `status` then shows why an action waits.
    const model = process.env.HERMES_LLM_MODEL ? ['--model', process.env.HERMES_LLM_MODEL] : [];
    await run(['submit', '--plan', path, '--provider', 'demo', ...model, '--async']);
    continue;
  }
  await run(['submit', '--plan', path]);
}
console.log(
  `\nthe mesh keeps running: HERMES_API=${coord.api} npx hermes-coord nodes | watch | status <id>; Ctrl-C stops it`,
);
console.log(`dashboard: ${coord.api}/ (nodes, goals and live events in the browser)`);
