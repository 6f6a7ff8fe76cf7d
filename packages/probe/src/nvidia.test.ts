import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseNvidiaSmiXml, probeNvidia } from './nvidia.js';
import { parseBytes, parseCelsius, parseFraction } from './units.js';

const MiB = 2 ** 20;
const fixture = (name: string) => resolve(import.meta.dirname, '../fixtures', name);
const read = (name: string) => readFileSync(fixture(name), 'utf8');

/** An executable standing in for nvidia-smi, so the real execFile path runs. */
function fakeNvidiaSmi(script: string): string {
  const path = join(mkdtempSync(join(tmpdir(), 'fake-smi-')), 'nvidia-smi');
  writeFileSync(path, `#!/bin/sh\n${script}\n`);
  chmodSync(path, 0o755);
  return path;
}

describe('nvidia-smi units', () => {
  it('parses values with units and refuses the ones nvidia-smi writes for missing data', () => {
    expect(parseBytes('24564 MiB')).toBe(24_564 * MiB);
    expect(parseBytes('1.5 GiB')).toBe(1.5 * 2 ** 30);
    expect(parseFraction('17 %')).toBeCloseTo(0.17);
    expect(parseCelsius('41 C')).toBe(41);
    for (const missing of [
      'N/A',
      '[N/A]',
      '[Not Supported]',
      'Not Supported',
      '[Insufficient Permissions]',
      '',
      undefined,
    ]) {
      expect(parseBytes(missing)).toBeUndefined();
      expect(parseFraction(missing)).toBeUndefined();
      expect(parseCelsius(missing)).toBeUndefined();
    }
    expect(parseBytes('12 furlongs')).toBeUndefined();
  });
});

describe('parseNvidiaSmiXml', () => {
  it('one consumer GPU: VRAM, utilisation, temperature, uuid', () => {
    expect(parseNvidiaSmiXml(read('rtx-4090.xml'))).toEqual([
      {
        index: 0,
        name: 'NVIDIA GeForce RTX 4090',
        vendor: 'NVIDIA',
        uuid: 'GPU-5a7a7c4e-1d5e-8f0b-2c44-9c3a0e6b1f2d',
        vramTotal: 24_564 * MiB,
        vramFree: 18_008 * MiB,
        util: 0.17,
        temperatureC: 41,
      },
    ]);
  });

  it('several GPUs, each with its own numbers', () => {
    const gpus = parseNvidiaSmiXml(read('a100-x4.xml'));
    expect(gpus.map((g) => g.index)).toEqual([0, 1, 2, 3]);
    expect(gpus.map((g) => g.vramFree / MiB)).toEqual([81_388, 40_432, 1_572, 81_388]);
    expect(gpus.map((g) => g.util)).toEqual([0, 0.87, 1, 0]);
    expect(gpus.map((g) => g.temperatureC)).toEqual([33, 58, 71, 34]);
    expect(gpus.every((g) => g.vramTotal === 81_920 * MiB && g.mig === undefined)).toBe(true);
  });

  it('MIG: each instance with its memory; GPU utilisation unknown', () => {
    const [gpu] = parseNvidiaSmiXml(read('a100-mig.xml'));
    expect(gpu).toMatchObject({
      name: 'NVIDIA A100-SXM4-40GB',
      vramTotal: 40_960 * MiB,
      vramFree: 27_881 * MiB,
      util: -1,
    });
    expect(gpu!.mig).toEqual([
      { gi: 1, ci: 0, profile: '20gb', vramTotal: 19_968 * MiB, vramFree: 19_956 * MiB },
      { gi: 2, ci: 0, profile: '20gb', vramTotal: 19_968 * MiB, vramFree: 7_488 * MiB },
      { gi: 7, ci: 0, profile: '10gb', vramTotal: 9_728 * MiB, vramFree: 9_722 * MiB },
    ]);
  });

  it('N/A fields become unknown values, and free VRAM is derived from total - used', () => {
    const [gpu] = parseNvidiaSmiXml(read('gtx-na-fields.xml'));
    expect(gpu).toEqual({
      index: 0,
      name: 'NVIDIA GeForce GTX 1050 Ti',
      vendor: 'NVIDIA',
      uuid: 'GPU-2f0e1d2c-3b4a-5968-7a6b-5c4d3e2f1a0b',
      vramTotal: 4_040 * MiB,
      vramFree: 3_016 * MiB,
      util: -1,
    });
  });

  it('refuses XML that is not from nvidia-smi', () => {
    expect(() => parseNvidiaSmiXml('<html><body/></html>')).toThrow(/nvidia_smi_log/);
  });
});

describe('probeNvidia (runs the executable)', () => {
  it('reads a real process output', async () => {
    const result = await probeNvidia(fakeNvidiaSmi(`cat '${fixture('a100-x4.xml')}'`), 5_000);
    expect(result.gpus).toHaveLength(4);
    expect(result.absent).toBeUndefined();
  });

  it('missing nvidia-smi or a failing driver: no GPUs, not an error', async () => {
    expect(await probeNvidia('/nonexistent/nvidia-smi', 5_000)).toMatchObject({
      gpus: [],
      absent: expect.stringMatching(/not found/),
    });
    const failing = fakeNvidiaSmi(
      `echo "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver." >&2; exit 9`,
    );
    expect(await probeNvidia(failing, 5_000)).toMatchObject({ gpus: [], absent: expect.stringMatching(/communicate/) });
    expect(await probeNvidia(fakeNvidiaSmi('exit 127'), 5_000)).toMatchObject({ gpus: [], absent: expect.any(String) });
  });

  it('a hung nvidia-smi times out with a warning', async () => {
    const started = Date.now();
    const result = await probeNvidia(fakeNvidiaSmi('exec sleep 30'), 300);
    expect(result.gpus).toEqual([]);
    expect(result.warning).toMatch(/did not answer within 300 ms/);
    expect(Date.now() - started).toBeLessThan(5_000);
  });
});
