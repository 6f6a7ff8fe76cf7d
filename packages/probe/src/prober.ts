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

type SystemInformation = Pick<typeof systeminformation, 'graphics'>;

/** CPU busy fraction since the previous call, from os.cpus() tick counters: no process spawned, no file read. */
export function createCpuLoadSampler(read: () => ReturnType<typeof cpus> = cpus): () => number {
  const totals = () => {
    let busy = 0;
    let all = 0;
    for (const { times } of read()) {
      const sum = times.user + times.nice + times.sys + times.idle + times.irq;
      all += sum;
      busy += sum - times.idle;
    }
    return { busy, all };
  };
  let last = totals();
  return () => {
    const now = totals();
    const all = now.all - last.all;
    const load = all > 0 ? (now.busy - last.busy) / all : 0;
    last = now;
    return Math.min(1, Math.max(0, load));
  };
}

export interface ProberInit {
  nvidiaSmiPath?: string;
  nvidiaSmiTimeoutMs?: number;
  modelEndpoints?: ModelEndpoint[];
  fetchTimeoutMs?: number;
  logger?: ProbeLogger;
  /** Injected in tests. */
  si?: SystemInformation;
  cpuLoad?: () => number;
  memory?: () => { total: number; free: number };
  /** Look for AMD/Intel/Apple GPUs through systeminformation (needs lspci on Linux). Default true. */
  otherGpus?: boolean;
  /**
   * How often the slow hardware lookups are repeated: systeminformation's GPU scan spawns ~10 processes, and a
   * box without nvidia-smi will not grow one between two probes. Default 5 min.
   */
  hardwareRescanMs?: number;
  now?: () => number;
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
  const now = init.now ?? Date.now;
  const rescanMs = init.hardwareRescanMs ?? 5 * 60_000;
  let nvidiaAbsentLogged = false;
  let nvidiaAbsentUntil = 0;
  let otherGpus: { gpus: Gpu[]; until: number } | undefined;
  const cpuLoad = init.cpuLoad ?? createCpuLoadSampler();
  // os.freemem() is MemAvailable on Linux (libuv reads /proc/meminfo): what a new workload can really use.
  const memory = init.memory ?? (() => ({ total: totalmem(), free: freemem() }));

  return {
    async probe() {
      const started = performance.now();
      const warnings: string[] = [];
      const [nvidia, discoveries] = await Promise.all([
        now() < nvidiaAbsentUntil ? { gpus: [] } : probeNvidia(nvidiaSmi, init.nvidiaSmiTimeoutMs ?? 5_000),
        Promise.all((init.modelEndpoints ?? []).map((e) => discoverModels(e, init.fetchTimeoutMs ?? 2_000))),
      ]);
      if ('warning' in nvidia && nvidia.warning) warnings.push(nvidia.warning);
      if ('absent' in nvidia && nvidia.absent) {
        nvidiaAbsentUntil = now() + rescanMs;
        if (!nvidiaAbsentLogged) log.debug({ reason: nvidia.absent }, 'no NVIDIA GPU');
        nvidiaAbsentLogged = true;
      }
      if (init.otherGpus !== false && (!otherGpus || now() >= otherGpus.until)) {
        const gpus = await probeOtherGpus(si, 0).catch(() => [] as Gpu[]);
        otherGpus = { gpus, until: now() + rescanMs };
      }
      const others = (otherGpus?.gpus ?? []).map((g, i) => ({ ...g, index: nvidia.gpus.length + i }));
      const gpus = [...nvidia.gpus, ...others];
      const models = discoveries.flatMap((d) => d.models);
      for (const d of discoveries) if (d.warning) warnings.push(d.warning);
      for (const w of warnings) log.warn({}, w);
      const cpuList = cpus();
      const cores = cpuList.length;
      const mem = memory();
      return {
        cpu: {
          cores,
          model: (cpuList[0]?.model ?? 'unknown').trim().slice(0, 256),
          load: cpuLoad(),
        },
        mem,
        gpus,
        models,
        tier: classifyTier({
          cores,
          memBytes: mem.total,
          largestGpuVram: Math.max(0, ...gpus.map(usableVram)),
          totalVram: gpus.reduce((s, g) => s + g.vramTotal, 0),
        }),
        probedAt: Date.now(),
        durationMs: performance.now() - started,
        warnings,
      };
    },
    async close() {},
  };
}
