import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deadUrl, type FakeModelServer, startFakeModelServer } from '../test/fake-model-server.js';
import { createCpuLoadSampler, createProber, type ProbeLogger, pciHasComputeGpu, probeOtherGpus } from './prober.js';

const GiB = 2 ** 30;
const MiB = 2 ** 20;
const fixture = (name: string) => resolve(import.meta.dirname, '../fixtures', name);

let server: FakeModelServer;
beforeAll(async () => {
  server = await startFakeModelServer();
});
afterAll(() => server.close());

/** An executable standing in for nvidia-smi. */
function fakeNvidiaSmi(script: string): string {
  const path = join(mkdtempSync(join(tmpdir(), 'fake-smi-')), 'nvidia-smi');
  writeFileSync(path, `#!/bin/sh\n${script}\n`);
  chmodSync(path, 0o755);
  return path;
}

/** os.cpus()-shaped list for a machine with `n` cores. */
function cpuList(n: number, model = 'AMD EPYC 9654 96-Core Processor') {
  return () =>
    Array.from({ length: n }, () => ({ model, speed: 2400, times: { user: 0, nice: 0, sys: 0, idle: 0, irq: 0 } }));
}

function recordingLogger() {
  const lines: Array<[level: string, obj: object, msg?: string]> = [];
  const logger: ProbeLogger = {
    debug: (obj, msg) => lines.push(['debug', obj, msg]),
    info: (obj, msg) => lines.push(['info', obj, msg]),
    warn: (obj, msg) => lines.push(['warn', obj, msg]),
  };
  return { logger, lines };
}

const noOtherGpus = { graphics: async () => ({ controllers: [] }) } as never;

describe('createProber on this machine', () => {
  it('a box without GPUs or Ollama still probes correctly', async () => {
    const { logger, lines } = recordingLogger();
    const ollama = await deadUrl();
    const prober = createProber({
      nvidiaSmiPath: '/nonexistent/nvidia-smi',
      modelEndpoints: [{ provider: 'ollama', url: ollama }],
      logger,
    });
    const r = await prober.probe();
    await prober.close();
    expect(r.cpu.cores).toBeGreaterThan(0);
    expect(r.cpu.load).toBeGreaterThanOrEqual(0);
    expect(r.cpu.load).toBeLessThanOrEqual(1);
    expect(r.mem.total).toBeGreaterThan(r.mem.free);
    expect(r.mem.free).toBeGreaterThan(0);
    expect(r.gpus.filter((g) => g.vendor === 'NVIDIA')).toEqual([]);
    expect(r.models).toEqual([]);
    expect(r.warnings).toEqual([expect.stringContaining(`no models from ${ollama} (ECONNREFUSED)`)]);
    expect(['COMPUTE_HOST', 'FULL', 'STANDARD', 'LITE', 'OBSERVER']).toContain(r.tier);
    expect(r.durationMs).toBeGreaterThan(0);
    expect(lines).toContainEqual(['debug', { reason: '/nonexistent/nvidia-smi not found' }, 'no NVIDIA GPU']);
  });
});

describe('createProber end to end, nvidia-smi run as a process', () => {
  it('an 8x H100 server with Ollama: GPUs, models and tier', async () => {
    const prober = createProber({
      nvidiaSmiPath: fakeNvidiaSmi(`cat '${fixture('h100-x8.xml')}'`),
      modelEndpoints: [{ provider: 'ollama', url: server.url }],
      si: noOtherGpus,
      cpus: cpuList(192),
      memory: () => ({ total: 2015 * GiB, free: 1800 * GiB }),
    });
    const r = await prober.probe();
    expect(r.cpu).toEqual({ cores: 192, model: 'AMD EPYC 9654 96-Core Processor', load: 0 });
    expect(r.gpus).toHaveLength(8);
    expect(r.gpus[5]).toMatchObject({ index: 5, vramFree: 1_125 * MiB, util: 1, temperatureC: 67 });
    expect(r.models.map((m) => [m.name, m.loaded])).toEqual([
      ['qwen3:8b', true],
      ['llama3.1:70b', false],
    ]);
    expect(r.tier).toBe('COMPUTE_HOST');
    expect(r.warnings).toEqual([]);
  });

  it('MIG: the tier counts the largest instance, not the whole card', async () => {
    const prober = createProber({
      nvidiaSmiPath: fakeNvidiaSmi(`cat '${fixture('a100-mig.xml')}'`),
      si: noOtherGpus,
      cpus: cpuList(32),
      memory: () => ({ total: 256 * GiB, free: 200 * GiB }),
    });
    const r = await prober.probe();
    expect(r.gpus[0]!.mig).toHaveLength(3);
    expect(r.tier).toBe('FULL'); // a 20 GB slice is short of the 24 GB a COMPUTE_HOST card needs
  });

  it('nvidia-smi exits 127: no GPUs, no warning, one debug line, and not run again until the rescan', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'smi-count-'));
    const smi = fakeNvidiaSmi(`echo x >> '${dir}/calls'; exit 127`);
    const { logger, lines } = recordingLogger();
    let t = 0;
    let graphicsCalls = 0;
    const si = {
      graphics: async () => {
        graphicsCalls++;
        return { controllers: [] };
      },
    } as never;
    const prober = createProber({ si, logger, nvidiaSmiPath: smi, hardwareRescanMs: 60_000, now: () => t });
    const runs = () => readFileSync(join(dir, 'calls'), 'utf8').trim().split('\n').length;
    const first = await prober.probe();
    expect(first.gpus).toEqual([]);
    expect(first.warnings).toEqual([]);
    t = 30_000;
    await prober.probe();
    expect([runs(), graphicsCalls]).toEqual([1, 1]);
    t = 61_000;
    await prober.probe();
    expect([runs(), graphicsCalls]).toEqual([2, 2]);
    expect(lines.filter(([level]) => level !== 'debug')).toEqual([]);
    expect(lines.filter(([, , msg]) => msg === 'no NVIDIA GPU')).toHaveLength(1);
  });

  it('a hung nvidia-smi: no GPUs and a warning, logged once while it lasts and once when it clears', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'smi-hang-'));
    // Hangs until the test creates `healthy`, then answers.
    const smi = fakeNvidiaSmi(
      `if [ -e '${dir}/healthy' ]; then cat '${fixture('rtx-4090.xml')}'; else exec sleep 30; fi`,
    );
    const { logger, lines } = recordingLogger();
    const prober = createProber({ si: noOtherGpus, logger, nvidiaSmiPath: smi, nvidiaSmiTimeoutMs: 200 });
    const hung = await prober.probe();
    expect(hung.gpus).toEqual([]);
    expect(hung.warnings).toEqual([expect.stringMatching(/did not answer within 200 ms; is the NVIDIA driver hung/)]);
    await prober.probe();
    writeFileSync(join(dir, 'healthy'), '');
    const healthy = await prober.probe();
    expect(healthy.gpus.map((g) => g.name)).toEqual(['NVIDIA GeForce RTX 4090']);
    expect(healthy.warnings).toEqual([]);
    expect(lines.map(([level, obj, msg]) => [level, msg ?? obj])).toEqual([
      ['warn', hung.warnings[0]],
      ['info', 'probe warning cleared'],
    ]);
  });
});

/** Polls a condition until it holds, failing after a deadline. */
async function waitFor(condition: () => boolean, deadlineMs = 5_000) {
  const deadline = performance.now() + deadlineMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('close', () => {
  it('ends a probe in progress at once and refuses new ones', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'smi-close-'));
    const smi = fakeNvidiaSmi(`touch '${dir}/started'; exec sleep 30`);
    const prober = createProber({
      si: noOtherGpus,
      nvidiaSmiPath: smi,
      nvidiaSmiTimeoutMs: 30_000,
      fetchTimeoutMs: 30_000,
      modelEndpoints: [{ provider: 'ollama', url: `${server.url}/hang` }],
    });
    const started = performance.now();
    const inProgress = prober.probe();
    await waitFor(() => server.requests.includes('GET /hang/api/tags') && existsSync(join(dir, 'started')));
    await prober.close();
    const r = await inProgress;
    expect(performance.now() - started).toBeLessThan(5_000);
    expect(r.gpus).toEqual([]);
    expect(r.models).toEqual([]);
    await expect(prober.probe()).rejects.toThrow(/after close/);
  });
});

describe('other GPUs through systeminformation', () => {
  const controllers = [
    { vendor: 'Advanced Micro Devices, Inc. [AMD/ATI]', model: 'Radeon RX 7900 XTX', vram: 24_560, memoryUsed: 560 },
    { vendor: 'Advanced Micro Devices, Inc. [AMD/ATI]', model: 'Instinct MI210', vram: 65_520 },
    { vendor: 'ASPEED Technology, Inc.', model: 'ASPEED Graphics Family', vram: 64 },
    { vendor: 'NVIDIA Corporation', model: 'GA102 [GeForce RTX 3090]', vram: 24_576 },
    { vendor: 'Apple', model: 'Apple M2 Max', vram: null, vramDynamic: true, utilizationGpu: 12 },
  ];

  it('keeps compute GPUs, leaves NVIDIA to nvidia-smi and display-only adapters out; unknowns stay unknown', async () => {
    expect(await probeOtherGpus({ graphics: async () => ({ controllers }) } as never)).toEqual([
      {
        index: 0,
        name: 'Radeon RX 7900 XTX',
        vendor: 'Advanced Micro Devices, Inc. [AMD/ATI]',
        vramTotal: 24_560 * MiB,
        vramFree: 24_000 * MiB,
        util: -1,
      },
      {
        index: 1,
        name: 'Instinct MI210',
        vendor: 'Advanced Micro Devices, Inc. [AMD/ATI]',
        vramTotal: 65_520 * MiB,
        vramFree: 0,
        util: -1,
      },
      { index: 2, name: 'Apple M2 Max', vendor: 'Apple', vramTotal: 0, vramFree: 0, util: 0.12 },
    ]);
  });

  it('are numbered after the NVIDIA GPUs and count for the tier', async () => {
    const prober = createProber({
      si: { graphics: async () => ({ controllers: controllers.slice(0, 1) }) } as never,
      nvidiaSmiPath: fakeNvidiaSmi(`cat '${fixture('gtx-na-fields.xml')}'`),
      cpus: cpuList(16, 'AMD Ryzen 9 7950X 16-Core Processor'),
      cpuLoad: () => 0.25,
      memory: () => ({ total: 62.7 * GiB, free: 40 * GiB }),
    });
    const r = await prober.probe();
    expect(r.cpu).toEqual({ cores: 16, model: 'AMD Ryzen 9 7950X 16-Core Processor', load: 0.25 });
    expect(r.gpus.map((g) => [g.index, g.name])).toEqual([
      [0, 'NVIDIA GeForce GTX 1050 Ti'],
      [1, 'Radeon RX 7900 XTX'],
    ]);
    expect(r.tier).toBe('COMPUTE_HOST');
  });

  it('a systeminformation failure (no lspci) is no other GPUs', async () => {
    const si = {
      graphics: async () => {
        throw new Error('spawn lspci ENOENT');
      },
    } as never;
    const prober = createProber({ si, nvidiaSmiPath: '/nonexistent' });
    expect((await prober.probe()).gpus).toEqual([]);
  });
});

/** A /sys/bus/pci/devices stand-in: one directory per device with its class and vendor files. */
function fakePci(devices: Array<[cls: string, vendor: string]>): string {
  const root = mkdtempSync(join(tmpdir(), 'fake-pci-'));
  devices.forEach(([cls, vendor], i) => {
    const dir = join(root, `0000:00:0${i}.0`);
    mkdirSync(dir);
    writeFileSync(join(dir, 'class'), `${cls}\n`);
    writeFileSync(join(dir, 'vendor'), `${vendor}\n`);
  });
  return root;
}

describe('the PCI pre-check before systeminformation', () => {
  const virtioBox: Array<[string, string]> = [
    ['0x060000', '0x8086'], // an Intel host bridge is no GPU
    ['0x020000', '0x1af4'],
    ['0x030000', '0x1234'], // a VM's virtual VGA
    ['0x030200', '0x10de'], // NVIDIA: nvidia-smi's
  ];

  it('tells AMD and Intel display controllers from everything else', async () => {
    expect(await pciHasComputeGpu(fakePci(virtioBox))).toBe(false);
    expect(await pciHasComputeGpu(fakePci([...virtioBox, ['0x038000', '0x1002']]))).toBe(true);
    expect(await pciHasComputeGpu(fakePci([['0x030000', '0x8086']]))).toBe(true);
    expect(await pciHasComputeGpu('/nonexistent/pci')).toBeUndefined();
  });

  it('a box without AMD or Intel GPUs never asks systeminformation', async () => {
    let asked = 0;
    const si = {
      graphics: async () => {
        asked++;
        return { controllers: [] };
      },
    } as never;
    const base = { si, nvidiaSmiPath: '/nonexistent', hardwareRescanMs: 0 };
    await createProber({ ...base, pciRoot: fakePci(virtioBox) }).probe();
    expect(asked).toBe(0);
    await createProber({ ...base, pciRoot: fakePci([...virtioBox, ['0x030000', '0x1002']]) }).probe();
    expect(asked).toBe(1);
    // No readable PCI list (not Linux): systeminformation decides, as before.
    await createProber({ ...base, pciRoot: '/nonexistent/pci' }).probe();
    expect(asked).toBe(2);
  });
});

describe('CPU load', () => {
  it('is measured from tick counters between probes', () => {
    let ticks = { user: 100, nice: 0, sys: 0, idle: 900, irq: 0 };
    const read = () => [{ model: 'x', speed: 1, times: ticks }];
    const sample = createCpuLoadSampler(read);
    ticks = { user: 400, nice: 0, sys: 100, idle: 1300, irq: 0 };
    expect(sample()).toBe(0.5);
    expect(sample()).toBe(0);
  });
});
