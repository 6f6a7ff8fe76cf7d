import type { Tier } from '@hermes-mesh/protocol';

const GiB = 2 ** 30;

export interface TierInput {
  cores: number;
  memBytes: number;
  /** VRAM of the largest single GPU: a model must fit on one card. */
  largestGpuVram: number;
  totalVram: number;
}

/**
 * The capability tiers, best first; a node gets the first tier whose every minimum it meets.
 * COMPUTE_HOST serves 30B-70B-class models on GPU; FULL runs 7-14B models on GPU or a CPU box with room;
 * STANDARD runs small models on CPU and any tool work; LITE runs tools only; OBSERVER watches.
 */
export const TIER_TABLE: ReadonlyArray<{ tier: Tier; minCores: number; minMem: number; minGpuVram: number }> = [
  { tier: 'COMPUTE_HOST', minCores: 4, minMem: 16 * GiB, minGpuVram: 20 * GiB },
  { tier: 'FULL', minCores: 4, minMem: 16 * GiB, minGpuVram: 8 * GiB },
  { tier: 'FULL', minCores: 8, minMem: 32 * GiB, minGpuVram: 0 },
  { tier: 'STANDARD', minCores: 4, minMem: 8 * GiB, minGpuVram: 0 },
  { tier: 'LITE', minCores: 2, minMem: 2 * GiB, minGpuVram: 0 },
  { tier: 'OBSERVER', minCores: 0, minMem: 0, minGpuVram: 0 },
];

export function classifyTier(input: TierInput): Tier {
  for (const row of TIER_TABLE) {
    if (input.cores >= row.minCores && input.memBytes >= row.minMem && input.largestGpuVram >= row.minGpuVram) {
      return row.tier;
    }
  }
  return 'OBSERVER';
}
