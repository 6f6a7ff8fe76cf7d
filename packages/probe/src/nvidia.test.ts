import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createNvidiaSmiReader, parseNvidiaSmiXml, probeNvidia } from './nvidia.js';
import { parseBytes, parseCelsius, parseFraction } from './units.js';

const MiB = 2 ** 20;
const fixture = (name: string) => resolve(import.meta.dirname, '../fixtures', name);
const read = (name: string) => readFileSync(fixture(name), 'utf8');

/** An executable standing in for nvidia-smi, so the real execFile path runs. Returns its path and its dir. */
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
    expect(parseBytes('0 MiB')).toBe(0);
    expect(parseFraction('17 %')).toBeCloseTo(0.17);
    expect(parseFraction('100 %')).toBe(1);
    expect(parseCelsius('41 C')).toBe(41);
    expect(parseCelsius('-5 C')).toBe(-5);
    for (const missing of [
      'N/A',
      '[N/A]',
      '[Not Supported]',
      'Not Supported',
      '[Insufficient Permissions]',
      '[Unknown Error]',
      '',
      undefined,
    ]) {
      expect(parseBytes(missing)).toBeUndefined();
      expect(parseFraction(missing)).toBeUndefined();
      expect(parseCelsius(missing)).toBeUndefined();
    }
    expect(parseBytes('12 furlongs')).toBeUndefined();
    expect(parseCelsius('41 F')).toBeUndefined();
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

  it('four A100s, each with its own numbers', () => {
    const gpus = parseNvidiaSmiXml(read('a100-x4.xml'));
    expect(gpus.map((g) => g.index)).toEqual([0, 1, 2, 3]);
    expect(gpus.map((g) => g.vramFree / MiB)).toEqual([81_388, 40_432, 1_572, 81_388]);
    expect(gpus.map((g) => g.util)).toEqual([0, 0.87, 1, 0]);
    expect(gpus.map((g) => g.temperatureC)).toEqual([33, 58, 71, 34]);
    expect(gpus.every((g) => g.vramTotal === 81_920 * MiB && g.mig === undefined)).toBe(true);
  });

  it('eight H100s (driver 550): index is the position, not the /dev/nvidiaN minor number', () => {
    const gpus = parseNvidiaSmiXml(read('h100-x8.xml'));
    expect(gpus.map((g) => g.index)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(gpus.every((g) => g.name === 'NVIDIA H100 80GB HBM3' && g.vramTotal === 81_559 * MiB)).toBe(true);
    expect(gpus.map((g) => g.vramFree / MiB)).toEqual([80_979, 9_746, 9_746, 40_878, 80_979, 1_125, 68_692, 80_979]);
    expect(gpus.map((g) => g.util)).toEqual([0, 0.98, 0.97, 0.45, 0, 1, 0.12, 0]);
    expect(gpus.map((g) => g.temperatureC)).toEqual([29, 61, 63, 48, 30, 67, 38, 28]);
    expect(gpus[0]!.uuid).toBe('GPU-7c1de0a2-4b1f-9a31-3d5c-b0e2f4a6c810');
    expect(new Set(gpus.map((g) => g.uuid)).size).toBe(8);
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

  it('memory nvidia-smi may not show (a restricted container) is 0, the unknown value', () => {
    const xml = `<nvidia_smi_log><gpu id="00000000:01:00.0"><product_name>NVIDIA L4</product_name>
      <uuid>[Insufficient Permissions]</uuid><fb_memory_usage><total>[Insufficient Permissions]</total>
      <reserved>[Insufficient Permissions]</reserved><used>[Insufficient Permissions]</used>
      <free>[Insufficient Permissions]</free></fb_memory_usage><utilization><gpu_util>[Unknown Error]</gpu_util>
      </utilization></gpu></nvidia_smi_log>`;
    expect(parseNvidiaSmiXml(xml)).toEqual([
      { index: 0, name: 'NVIDIA L4', vendor: 'NVIDIA', vramTotal: 0, vramFree: 0, util: -1 },
    ]);
  });

  it('no number is ever NaN, in any fixture', () => {
    for (const name of ['rtx-4090.xml', 'a100-x4.xml', 'h100-x8.xml', 'a100-mig.xml', 'gtx-na-fields.xml']) {
      for (const gpu of parseNvidiaSmiXml(read(name))) {
        const numbers = [gpu.vramTotal, gpu.vramFree, gpu.util, gpu.temperatureC ?? 0];
        for (const m of gpu.mig ?? []) numbers.push(m.gi, m.ci, m.vramTotal, m.vramFree);
        expect(numbers.every(Number.isFinite), name).toBe(true);
      }
    }
  });

  it('an empty log (driver up, no GPU attached) is no GPUs; XML that is not from nvidia-smi is refused', () => {
    expect(parseNvidiaSmiXml('<nvidia_smi_log><attached_gpus>0</attached_gpus></nvidia_smi_log>')).toEqual([]);
    expect(() => parseNvidiaSmiXml('<html><body/></html>')).toThrow(/nvidia_smi_log/);
  });
});

describe('probeNvidia (runs the executable)', () => {
  it('reads a real process output', async () => {
    const result = await probeNvidia(fakeNvidiaSmi(`cat '${fixture('h100-x8.xml')}'`), 5_000);
    expect(result).toEqual({ gpus: parseNvidiaSmiXml(read('h100-x8.xml')) });
  });

  it('missing nvidia-smi or no driver: no GPUs, absent with the reason, no warning', async () => {
    expect(await probeNvidia('/nonexistent/nvidia-smi', 5_000)).toEqual({
      gpus: [],
      absent: '/nonexistent/nvidia-smi not found',
    });
    const noDriver = fakeNvidiaSmi(
      `echo "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running."; exit 9`,
    );
    expect(await probeNvidia(noDriver, 5_000)).toEqual({ gpus: [], absent: expect.stringMatching(/communicate/) });
    expect(await probeNvidia(fakeNvidiaSmi('exit 127'), 5_000)).toEqual({ gpus: [], absent: expect.any(String) });
    expect(await probeNvidia(fakeNvidiaSmi('echo "No devices were found"; exit 6'), 5_000)).toEqual({
      gpus: [],
      absent: expect.stringMatching(/No devices were found/),
    });
  });

  it('a broken GPU or unreadable output is a warning for a person', async () => {
    const offTheBus = fakeNvidiaSmi(
      'echo "Unable to determine the device handle for GPU0000:18:00.0: Unknown Error"; exit 15',
    );
    expect(await probeNvidia(offTheBus, 5_000)).toEqual({
      gpus: [],
      warning: expect.stringMatching(/failed \(exit 15\): Unable to determine the device handle/),
    });
    expect(await probeNvidia(fakeNvidiaSmi('echo "<html>"'), 5_000)).toEqual({
      gpus: [],
      warning: expect.stringMatching(/unreadable XML/),
    });
  });

  it('a hung nvidia-smi is killed at the timeout, with a warning', async () => {
    const started = performance.now();
    const result = await probeNvidia(fakeNvidiaSmi('exec sleep 30'), 300);
    expect(result).toEqual({ gpus: [], warning: expect.stringMatching(/did not answer within 300 ms/) });
    expect(performance.now() - started).toBeLessThan(3_000);
  });

  it('settles at the deadline even when a process it started holds the output pipe open', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'smi-orphan-'));
    const pidFile = join(dir, 'pid');
    // The shell is killed at the timeout; its background child still holds stdout, so the pipe never closes.
    const smi = fakeNvidiaSmi(`sleep 30 & echo $! > '${pidFile}'; wait`);
    const started = performance.now();
    try {
      const result = await probeNvidia(smi, 300);
      expect(result.warning).toMatch(/did not answer/);
      expect(performance.now() - started).toBeLessThan(3_000);
    } finally {
      process.kill(Number(readFileSync(pidFile, 'utf8')), 'SIGKILL');
    }
  });

  it('the reader starts no second nvidia-smi while the previous one is still running', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'smi-stuck-'));
    // Hangs the first time only, then answers.
    const smi = fakeNvidiaSmi(
      `if [ -e '${dir}/ran' ]; then cat '${fixture('rtx-4090.xml')}'; else touch '${dir}/ran'; exec sleep 30; fi`,
    );
    const nvidiaSmi = createNvidiaSmiReader(smi, 500);
    const first = nvidiaSmi.read();
    expect(await nvidiaSmi.read()).toEqual({ gpus: [], warning: expect.stringMatching(/still running/) });
    expect(await first).toEqual({ gpus: [], warning: expect.stringMatching(/did not answer/) });
    expect((await nvidiaSmi.read()).gpus.map((g) => g.name)).toEqual(['NVIDIA GeForce RTX 4090']);
  });
});
