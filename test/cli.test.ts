import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DaemonProcess, startDaemonProcess, stopDaemon, tempDir } from './support/daemons.js';

const root = resolve(import.meta.dirname, '..');
const bin = (name: string) => join(root, 'node_modules/.bin', name);

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(cmd, args, { cwd: root, encoding: 'utf8', env: { ...process.env, ...env }, timeout: 20_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('command-line tools', () => {
  let daemon: DaemonProcess;
  beforeAll(async () => {
    daemon = await startDaemonProcess({
      name: 'cli-node',
      meshKey: join(tempDir(), 'mesh.key'),
      args: ['--labels', 'zone=test'],
    });
  });
  afterAll(async () => {
    await stopDaemon(daemon);
  });

  it('hermesd --help and hermes-coord --help work from the root', () => {
    const d = run(bin('hermesd'), ['--help']);
    expect(d.code).toBe(0);
    for (const flag of [
      '--config',
      '--data-dir',
      '--name',
      '--listen',
      '--bootstrap',
      '--mesh-key',
      '--labels',
      '--api',
    ]) {
      expect(d.stdout).toContain(flag);
    }
    const c = run(bin('hermes-coord'), ['--help']);
    expect(c.code).toBe(0);
    expect(c.stdout).toContain('nodes');
  });

  it('hermes-coord nodes lists the mesh as a table and as JSON', () => {
    const table = run(bin('hermes-coord'), ['--api', daemon.api, 'nodes']);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^NAME\s+NODE\s+STATE\s+TIER/);
    expect(table.stdout).toMatch(/cli-node \*\s+12D3KooW/);
    const json = run(bin('hermes-coord'), ['nodes', '--json'], { HERMES_API: daemon.api });
    const peers = JSON.parse(json.stdout);
    expect(peers).toEqual([
      expect.objectContaining({
        nodeId: daemon.peerId,
        state: 'alive',
        self: true,
        advert: expect.objectContaining({ labels: { zone: 'test' } }),
      }),
    ]);
  });

  it('hermes-coord says what to do when the API is unreachable, with its own exit code', () => {
    const r = run(bin('hermes-coord'), ['--api', 'http://127.0.0.1:9', 'nodes']);
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/cannot reach .*is it running\? check --api/);
  });

  it('hermesd refuses bad input with exit code 2 and a reason', () => {
    const badConfig = join(tempDir(), 'bad.yaml');
    writeFileSync(badConfig, 'slots: many\n');
    const r = run(bin('hermesd'), ['--config', badConfig, '--data-dir', tempDir()]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${badConfig}:1:8: /slots`);
    const open = run(bin('hermesd'), ['--api', '0.0.0.0:0', '--data-dir', tempDir()], { HERMES_API_TOKEN: '' });
    expect(open.code).toBe(2);
    expect(open.stderr).toMatch(/no token is set/);
  });

  it('the API requires the token when one is set', async () => {
    const d = await startDaemonProcess({
      name: 'tok',
      meshKey: join(tempDir(), 'mesh.key'),
      env: { HERMES_API_TOKEN: 'sekrit' },
    });
    try {
      expect((await fetch(`${d.api}/v1/node`)).status).toBe(401);
      const ok = await fetch(`${d.api}/v1/node`, { headers: { authorization: 'Bearer sekrit' } });
      expect(ok.status).toBe(200);
      expect(((await ok.json()) as { name: string }).name).toBe('tok');
      expect(run(bin('hermes-coord'), ['--api', d.api, 'nodes'], { HERMES_API_TOKEN: 'sekrit' }).code).toBe(0);
    } finally {
      await stopDaemon(d);
    }
  });
});
