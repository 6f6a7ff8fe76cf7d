// bin/hermesd.js runs the minified bundle only while it is newer than every file it was made from.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const BIN = resolve(import.meta.dirname, '../packages/daemon/bin/hermesd.js');

/** The bin in a package layout whose dist/cli.js and dist/hermesd.bundle.js say which of them ran. */
function layout() {
  const root = mkdtempSync(join(tmpdir(), 'hermesd-bin-'));
  mkdirSync(join(root, 'bin'));
  mkdirSync(join(root, 'dist'));
  copyFileSync(BIN, join(root, 'bin', 'hermesd.js'));
  writeFileSync(join(root, 'package.json'), '{"type":"module"}');
  const dist = (name: string) => join(root, 'dist', name);
  writeFileSync(dist('cli.js'), "export const main = () => console.log('modules');\n");
  writeFileSync(dist('hermesd.bundle.js'), "export const main = () => console.log('bundle');\n");
  writeFileSync(dist('hermesd.bundle.json'), JSON.stringify({ inputs: ['cli.js'] }));
  const at = (name: string, seconds: number) => utimesSync(dist(name), seconds, seconds);
  at('cli.js', 1_000);
  at('hermesd.bundle.js', 2_000);
  const run = (env: NodeJS.ProcessEnv = {}) =>
    execFileSync(process.execPath, [join(root, 'bin', 'hermesd.js')], { env: { ...process.env, ...env } })
      .toString()
      .trim();
  return { dist, at, run };
}

describe('bin/hermesd.js', () => {
  it('runs the bundle while it is newer than its inputs', () => {
    expect(layout().run()).toBe('bundle');
  });

  it('runs the modules when one of the bundle inputs changed after it was built (a bare tsc -b)', () => {
    const l = layout();
    l.at('cli.js', 3_000);
    expect(l.run()).toBe('modules');
  });

  it('runs the modules without a bundle, without its list of inputs, or with HERMESD_NO_BUNDLE=1', () => {
    const noList = layout();
    rmSync(noList.dist('hermesd.bundle.json'));
    expect(noList.run()).toBe('modules');
    const noBundle = layout();
    rmSync(noBundle.dist('hermesd.bundle.js'));
    expect(noBundle.run()).toBe('modules');
    expect(layout().run({ HERMESD_NO_BUNDLE: '1' })).toBe('modules');
  });

  it('runs the modules when an input is gone', () => {
    const l = layout();
    writeFileSync(l.dist('hermesd.bundle.json'), JSON.stringify({ inputs: ['cli.js', 'gone.js'] }));
    l.at('hermesd.bundle.json', 2_000);
    expect(l.run()).toBe('modules');
  });
});
