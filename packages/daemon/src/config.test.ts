import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, parseHostPort, parseLabels, readConfigFile, resolveConfig } from './config.js';

const base = { env: {}, hostname: 'box' };

function writeConfig(text: string): string {
  const path = join(mkdtempSync(join(tmpdir(), 'hermes-cfg-')), 'hermesd.yaml');
  writeFileSync(path, text);
  return path;
}

describe('daemon config', () => {
  it('fills defaults: hostname, loopback API, one listen address, local location', () => {
    const c = resolveConfig({ ...base, flags: { dataDir: '/tmp/x' } });
    expect(c).toMatchObject({
      name: 'box',
      dataDir: '/tmp/x',
      api: { host: '127.0.0.1', port: 4880 },
      listen: ['/ip4/0.0.0.0/tcp/4801'],
      meshKeyPath: '/tmp/x/mesh.key',
      location: 'local',
      heartbeatMs: 1000,
      deadAfterMs: 3000,
    });
  });

  it('flags override the file field by field', async () => {
    const file = await readConfigFile(
      writeConfig(
        'name: from-file\nlabels: {zone: a}\nslots: 4\nmodels:\n  - provider: ollama\n    url: http://127.0.0.1:11434\n',
      ),
    );
    const c = resolveConfig({ ...base, file, flags: { name: 'from-flag', slots: undefined } });
    expect(c.name).toBe('from-flag');
    expect(c.slots).toBe(4);
    expect(c.labels).toEqual({ zone: 'a' });
    expect(c.models).toEqual([{ provider: 'ollama', url: 'http://127.0.0.1:11434' }]);
  });

  it('a bad config file names the file, line and field', async () => {
    const path = writeConfig('name: a\nheartbeatMs: fast\n');
    await expect(readConfigFile(path)).rejects.toThrow(`${path}:2:14: /heartbeatMs`);
    await expect(readConfigFile(writeConfig('nmae: a\n'))).rejects.toThrow(/Unexpected property/);
    await expect(readConfigFile('/nonexistent/hermesd.yaml')).rejects.toThrow(/cannot read config file/);
  });

  it('refuses an API reachable from other machines without a token', () => {
    expect(() => resolveConfig({ ...base, flags: { api: '0.0.0.0:4880' } })).toThrow(/no token is set/);
    const c = resolveConfig({ ...base, env: { HERMES_API_TOKEN: 's3cret' }, flags: { api: '0.0.0.0:4880' } });
    expect(c.apiToken).toBe('s3cret');
  });

  it('rejects a dead timeout shorter than two heartbeats, and bad multiaddrs', () => {
    expect(() => resolveConfig({ ...base, flags: { heartbeatMs: 1000, deadAfterMs: 1500 } })).toThrow(ConfigError);
    expect(() => resolveConfig({ ...base, flags: { bootstrap: ['10.0.0.1:4801'] } })).toThrow(/not a multiaddr/);
  });

  it('parses labels and host:port, with clear errors', () => {
    expect(parseLabels('zone=home, gpu=rtx4090')).toEqual({ zone: 'home', gpu: 'rtx4090' });
    expect(() => parseLabels('zone')).toThrow(/not key=value/);
    expect(parseHostPort('[::1]:80', 'api')).toEqual({ host: '::1', port: 80 });
    expect(() => parseHostPort('localhost', 'api')).toThrow(/HOST:PORT/);
  });
});
