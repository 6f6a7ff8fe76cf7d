import type { Gpu, Tier } from '@hermes-mesh/protocol';

const GiB = 2 ** 30;

/**
 * The least a machine sold with `gb` GB reports: the kernel and firmware keep some RAM (a 16 GB box shows
 * ~15.5 GiB) and a card reports a little under its size (an 8 GB card shows 8188 MiB), so a threshold at the
 * nominal size would drop every such machine a tier. 10% below nominal is still far above the next size down.
 */
const sold = (gb: number) => Math.floor(gb * GiB * 0.9);

export interface TierInput {
  cores: number;
  memBytes: number;
  /** VRAM of the largest single GPU or MIG instance: a model that is not split must fit on one. */
  largestGpuVram: number;
  /** VRAM a model split by layers across GPUs can use (llama.cpp, Ollama, vLLM tensor parallel). */
  totalVram: number;
}

export interface TierRow {
  tier: Tier;
  minCores: number;
  minMemBytes: number;
  minLargestGpuVram: number;
  minTotalVram: number;
  /** What a node of this row can do: why the thresholds are where they are. */
  why: string;
}

/**
 * The capability tiers, best first; a node gets the first row whose every minimum it meets. Change the
 * thresholds here and nowhere else.
 */
export const TIER_TABLE: readonly TierRow[] = [
  {
    tier: 'COMPUTE_HOST',
    minCores: 4,
    minMemBytes: sold(16),
    minLargestGpuVram: sold(24),
    minTotalVram: 0,
    why: 'a 24 GB card holds a 30-34B model at 4-bit (18-20 GB of weights) with room for its KV cache',
  },
  {
    tier: 'COMPUTE_HOST',
    minCores: 4,
    minMemBytes: sold(32),
    minLargestGpuVram: sold(12),
    minTotalVram: sold(32),
    why: 'several mid-size cards together hold a 30B+ model split by layers',
  },
  {
    tier: 'FULL',
    minCores: 4,
    minMemBytes: sold(16),
    minLargestGpuVram: sold(8),
    minTotalVram: 0,
    why: 'an 8 GB card runs 7-14B models at 4-bit at interactive speed',
  },
  {
    tier: 'FULL',
    minCores: 8,
    minMemBytes: sold(32),
    minLargestGpuVram: 0,
    minTotalVram: 0,
    why: 'a CPU server runs 7-8B models (slowly) and many tool actions at once',
  },
  {
    tier: 'STANDARD',
    minCores: 4,
    minMemBytes: sold(8),
    minLargestGpuVram: 0,
    minTotalVram: 0,
    why: 'small (1-4B) models on CPU, and any tool action',
  },
  {
    tier: 'LITE',
    minCores: 2,
    minMemBytes: sold(2),
    minLargestGpuVram: 0,
    minTotalVram: 0,
    why: 'tool actions (exec, builtin) only',
  },
  {
    tier: 'OBSERVER',
    minCores: 0,
    minMemBytes: 0,
    minLargestGpuVram: 0,
    minTotalVram: 0,
    why: 'watches the mesh, runs nothing',
  },
];

function meets(input: TierInput, row: TierRow): boolean {
  return (
    input.cores >= row.minCores &&
    input.memBytes >= row.minMemBytes &&
    input.largestGpuVram >= row.minLargestGpuVram &&
    input.totalVram >= row.minTotalVram
  );
}

/** The first row of TIER_TABLE that the node meets: its tier and the reason. */
export function tierRowFor(input: TierInput): TierRow {
  return TIER_TABLE.find((row) => meets(input, row)) ?? (TIER_TABLE.at(-1) as TierRow);
}

export function classifyTier(input: TierInput): Tier {
  return tierRowFor(input).tier;
}

/** The VRAM one model can use on this GPU: its own, or under MIG its largest instance (CUDA sees one at a time). */
export function usableVram(gpu: Gpu): number {
  return gpu.mig && gpu.mig.length > 0 ? Math.max(...gpu.mig.map((m) => m.vramTotal)) : gpu.vramTotal;
}

export function tierInput(cores: number, memBytes: number, gpus: readonly Gpu[]): TierInput {
  const usable = gpus.map(usableVram);
  return {
    cores,
    memBytes,
    largestGpuVram: Math.max(0, ...usable),
    totalVram: usable.reduce((sum, v) => sum + v, 0),
  };
}
