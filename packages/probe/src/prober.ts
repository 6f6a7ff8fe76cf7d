import { cpus, freemem, totalmem } from 'node:os';
import type { Gpu, ModelInfo, Tier } from '@hermes-mesh/protocol';
import * as systeminformation from 'systeminformation';
import { discoverModels, type ModelEndpoint } from './models.js';
import { probeNvidia } from './nvidia.js';
import { classifyTier } from './tier.js';

export interface ProbeLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

export interface ProbeResult {
  cpu: { cores: number; model: string; load: number };
  mem: { total: number; free: number };
  gpus: Gpu[];
  models: ModelInfo[];
  tier: Tier;
  probedAt: number;
  durationMs: number;
  /** Things a person may want to fix (an endpoint down, nvidia-smi hung); the probe itself still succeeded. */
  warnings: string[];
}

type SystemInformation = Pick<typeof systeminformation, 'currentLoad' | 'mem' | 'graphics'>;

export interface ProberInit {
  nvidiaSmiPath?: string;
  nvidiaSmiTimeoutMs?: number;
  modelEndpoints?: ModelEndpoint[];
  fetchTimeoutMs?: number;
  logger?: ProbeLogger;
  /** Injected in tests. */
  si?: SystemInformation;
  /** Look for AMD/Intel/Apple GPUs through systeminformation (needs lspci on Linux). Default true. */
  otherGpus?: boolean;
}

export interface Prober {
  probe(): Promise<ProbeResult>;
  close(): Promise<void>;
}

const silent: ProbeLogger = { debug() {}, info() {}, warn() {} };

/** Non-NVIDIA GPUs from systeminformation; NVIDIA ones come from nvidia-smi, which knows free VRAM. */
async function probeOtherGpus(si: SystemInformation, firstIndex: number): Promise<Gpu[]> {
  const { controllers } = await si.graphics();
  return controllers
    .filter((c) => !/nvidia/i.test(`${c.vendor} ${c.model}`))
    .map((c, i) => {
      const vram = (c.vram ?? 0) * 2 ** 20;
      const used = c.memoryUsed === undefined || c.memoryUsed === null ? undefined : c.memoryUsed * 2 ** 20;
      return {
        index: firstIndex + i,
        name: (c.model || 'GPU').slice(0, 128),
        vendor: (c.vendor || 'unknown').slice(0, 64),
        vramTotal: vram,
        vramFree: c.memoryFree ? c.memoryFree * 2 ** 20 : used === undefined ? vram : Math.max(0, vram - used),
        util: typeof c.utilizationGpu === 'number' ? Math.min(1, c.utilizationGpu / 100) : -1,
      };
    });
}

/** The largest VRAM one model can use on this GPU: its own, or its largest MIG instance. */
function usableVram(gpu: Gpu): number {
  return gpu.mig && gpu.mig.length > 0 ? Math.max(...gpu.mig.map((m) => m.vramTotal)) : gpu.vramTotal;
}

export function createProber(init: ProberInit = {}): Prober {
  const si = init.si ?? systeminformation;
  const log = init.logger ?? silent;
  const nvidiaSmi = init.nvidiaSmiPath ?? 'nvidia-smi';
  let nvidiaAbsentLogged = false;
  // The first currentLoad() call takes ~0.5 s while it samples; start it now so the first probe is quick.
  const primed = si.currentLoad().catch(() => undefined);

  return {
    async probe() {
      const started = performance.now();
      const warnings: string[] = [];
      await primed;
      const [load, mem, nvidia, discoveries] = await Promise.all([
        si.currentLoad().catch(() => undefined),
        si.mem().catch(() => undefined),
        probeNvidia(nvidiaSmi, init.nvidiaSmiTimeoutMs ?? 5_000),
        Promise.all((init.modelEndpoints ?? []).map((e) => discoverModels(e, init.fetchTimeoutMs ?? 2_000))),
      ]);
      if (nvidia.warning) warnings.push(nvidia.warning);
      if (nvidia.absent && !nvidiaAbsentLogged) {
        nvidiaAbsentLogged = true;
        log.debug({ reason: nvidia.absent }, 'no NVIDIA GPU');
      }
      const others =
        init.otherGpus === false ? [] : await probeOtherGpus(si, nvidia.gpus.length).catch(() => [] as Gpu[]);
      const gpus = [...nvidia.gpus, ...others];
      const models = discoveries.flatMap((d) => d.models);
      for (const d of discoveries) if (d.warning) warnings.push(d.warning);
      for (const w of warnings) log.warn({}, w);
      const cpuList = cpus();
      const cores = cpuList.length;
      const memTotal = mem?.total ?? totalmem();
      const memFree = mem?.available ?? freemem();
      return {
        cpu: {
          cores,
          model: (cpuList[0]?.model ?? 'unknown').trim().slice(0, 256),
          load: load ? Math.min(1, Math.max(0, load.currentLoad / 100)) : 0,
        },
        mem: { total: memTotal, free: memFree },
        gpus,
        models,
        tier: classifyTier({
          cores,
          memBytes: memTotal,
          largestGpuVram: Math.max(0, ...gpus.map(usableVram)),
          totalVram: gpus.reduce((s, g) => s + g.vramTotal, 0),
        }),
        probedAt: Date.now(),
        durationMs: performance.now() - started,
        warnings,
      };
    },
    async close() {
      await primed;
    },
  };
}
