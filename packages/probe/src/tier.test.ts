import { describe, expect, it } from 'vitest';
import { classifyTier } from './tier.js';

const GiB = 2 ** 30;

describe('classifyTier', () => {
  it.each([
    ['24 GB GPU workstation', { cores: 16, memBytes: 64 * GiB, largestGpuVram: 24 * GiB }, 'COMPUTE_HOST'],
    ['12 GB GPU desktop', { cores: 8, memBytes: 32 * GiB, largestGpuVram: 12 * GiB }, 'FULL'],
    ['big CPU server, no GPU', { cores: 32, memBytes: 128 * GiB, largestGpuVram: 0 }, 'FULL'],
    ['24 GB GPU but only 8 GB RAM', { cores: 8, memBytes: 8 * GiB, largestGpuVram: 24 * GiB }, 'STANDARD'],
    ['laptop', { cores: 4, memBytes: 16 * GiB, largestGpuVram: 0 }, 'STANDARD'],
    ['this CI box: 2 cores, 24 GB', { cores: 2, memBytes: 24 * GiB, largestGpuVram: 0 }, 'LITE'],
    ['raspberry pi zero', { cores: 1, memBytes: 0.5 * GiB, largestGpuVram: 0 }, 'OBSERVER'],
  ])('%s -> %s', (_name, input, tier) => {
    expect(classifyTier({ totalVram: input.largestGpuVram, ...input })).toBe(tier);
  });
});
