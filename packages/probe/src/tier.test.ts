import type { Gpu } from '@hermes-mesh/protocol';
import { describe, expect, it } from 'vitest';
import { classifyTier, TIER_TABLE, tierInput, tierRowFor } from './tier.js';

const GiB = 2 ** 30;
const MiB = 2 ** 20;

/** A GPU as nvidia-smi reports it: cards show a little less than their nominal size. */
const card = (vramMiB: number, mig?: number[]): Gpu => ({
  index: 0,
  name: 'gpu',
  vendor: 'NVIDIA',
  vramTotal: vramMiB * MiB,
  vramFree: vramMiB * MiB,
  util: 0,
  ...(mig ? { mig: mig.map((m, i) => ({ gi: i, ci: 0, profile: '', vramTotal: m * MiB, vramFree: m * MiB })) } : {}),
});

// RAM as os.totalmem() reports it on machines sold with 2, 8, 16, 32 and 64 GB.
const RAM = { '2': 1.8 * GiB, '8': 7.6 * GiB, '16': 15.5 * GiB, '32': 31.2 * GiB, '64': 62.7 * GiB };

describe('classifyTier', () => {
  it.each([
    ['RTX 4090 workstation', 16, RAM['64'], [card(24_564)], 'COMPUTE_HOST'],
    ['8x H100 server', 192, 2015 * GiB, Array.from({ length: 8 }, () => card(81_559)), 'COMPUTE_HOST'],
    ['two 16 GB cards hold a 30B model split by layers', 12, RAM['32'], [card(16_380), card(16_380)], 'COMPUTE_HOST'],
    ['two 16 GB cards but 16 GB of RAM', 12, RAM['16'], [card(16_380), card(16_380)], 'FULL'],
    ['16 GB desktop with a 12 GB card', 8, RAM['16'], [card(12_288)], 'FULL'],
    ['8 GB card reporting 8188 MiB', 6, RAM['16'], [card(8_188)], 'FULL'],
    [
      'A100 split into 20 GB MIG slices: the largest slice counts',
      32,
      256 * GiB,
      [card(40_960, [19_968, 19_968])],
      'FULL',
    ],
    ['big CPU server, no GPU', 32, 128 * GiB, [], 'FULL'],
    ['24 GB card but 8 GB of RAM', 8, RAM['8'], [card(24_564)], 'STANDARD'],
    ['6 GB card: too small for the GPU rows', 6, RAM['16'], [card(6_144)], 'STANDARD'],
    ['16 GB laptop', 4, RAM['16'], [], 'STANDARD'],
    ['this CI box: 2 cores, 24 GB', 2, 23.5 * GiB, [], 'LITE'],
    ['2 GB Raspberry Pi 4', 4, RAM['2'], [], 'LITE'],
    ['Raspberry Pi Zero', 1, 0.5 * GiB, [], 'OBSERVER'],
    ['nothing known', 0, 0, [], 'OBSERVER'],
  ] as const)('%s -> %s', (_name, cores, memBytes, gpus, tier) => {
    expect(classifyTier(tierInput(cores, memBytes, gpus))).toBe(tier);
  });

  it('every row has a reason, and the table ends in a row everyone meets', () => {
    expect(TIER_TABLE.every((row) => row.why.length > 0)).toBe(true);
    expect(tierRowFor({ cores: 0, memBytes: 0, largestGpuVram: 0, totalVram: 0 })).toBe(TIER_TABLE.at(-1));
  });

  it('more of anything never lowers the tier', () => {
    const order = ['OBSERVER', 'LITE', 'STANDARD', 'FULL', 'COMPUTE_HOST'];
    const steps = [0, 1, 2, 4, 8, 16, 64];
    const gib = [0, 1, 2, 8, 16, 32, 128];
    for (const cores of steps) {
      for (const mem of gib) {
        for (const vram of gib) {
          const base = { cores, memBytes: mem * GiB, largestGpuVram: vram * GiB, totalVram: vram * GiB };
          const rank = order.indexOf(classifyTier(base));
          const more = [
            { ...base, cores: cores * 2 + 1 },
            { ...base, memBytes: base.memBytes * 2 + GiB },
            { ...base, largestGpuVram: base.largestGpuVram * 2 + GiB, totalVram: base.totalVram * 2 + GiB },
          ];
          for (const m of more) expect(order.indexOf(classifyTier(m))).toBeGreaterThanOrEqual(rank);
        }
      }
    }
  });
});
