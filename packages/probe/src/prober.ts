import { readdir, readFile } from 'node:fs/promises';
import { freemem, cpus as osCpus, totalmem } from 'node:os';
import { join } from 'node:path';
import type { Gpu, ModelInfo, Tier } from '@hermes-mesh/protocol';
import type * as systeminformation from 'systeminformation';
import { type ContextLengthCache, discoverModels, type ModelEndpoint } from './models.js';
import { createNvidiaSmiReader, type NvidiaProbe } from './nvidia.js';
import { classifyTier, tierInput } from './tier.js';

/** The part of a logger the probe uses; a pino logger fits. */
export interface ProbeLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

/** One look at this node, in the Advert's shapes. */
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
type CpuList = () => ReturnType<typeof osCpus>;

export interface ProberInit {
  nvidiaSmiPath?: string;
  /** Default 5 s: nvidia-smi takes 0.1-1 s on a healthy box with 8 GPUs. */
  nvidiaSmiTimeoutMs?: number;
  modelEndpoints?: ModelEndpoint[];
  /** Per HTTP request to a model endpoint. Default 2 s: they are on this node or its LAN. */
  fetchTimeoutMs?: number;
  logger?: ProbeLogger;
  /** Injected in tests. */
  si?: SystemInformation;
  cpus?: CpuList;
  cpuLoad?: () => number;
  memory?: () => { total: number; free: number };
  /** Look for AMD/Intel/Apple GPUs through systeminformation (needs lspci on Linux). Default true. */
  otherGpus?: boolean;
  /**
   * Linux's PCI device list (`/sys/bus/pci/devices`): when it shows no AMD or Intel display controller,
   * systeminformation is not asked at all. false skips the check. Default: that directory, unless `si` is injected.
   */
  pciRoot?: string | false;
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

/** CPU busy fraction since the previous call, from os.cpus() tick counters: no process spawned, no file read. */
export function createCpuLoadSampler(read: CpuList = osCpus): () => number {
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
  // Sampled at creation, so the first probe already measures a real interval.
  let last = totals();
  return () => {
    const now = totals();
    const all = now.all - last.all;
    const load = all > 0 ? (now.busy - last.busy) / all : 0;
    last = now;
    return Math.min(1, Math.max(0, load));
  };
}

/**
 * Vendors whose GPUs can run models (ROCm, oneAPI/SYCL, Vulkan, Metal). Servers also show display-only adapters
 * (an ASPEED or Matrox BMC, a VM's virtual VGA) that must not be advertised as GPUs.
 */
const COMPUTE_GPU_VENDOR = /\b(amd|ati|advanced micro devices|intel|apple)\b/i;

const MiB = 2 ** 20;
const mebibytes = (v: unknown) =>
  typeof v === 'number' && Number.isFinite(v) && v >= 0 ? Math.round(v * MiB) : undefined;

/**
 * AMD/Intel/Apple GPUs from systeminformation. NVIDIA cards are left to nvidia-smi, which knows free VRAM and
 * utilisation; one it does not report has no working driver, so nothing could run on it.
 */
export async function probeOtherGpus(si: SystemInformation): Promise<Gpu[]> {
  const { controllers } = await si.graphics();
  return controllers
    .filter((c) => !/nvidia/i.test(`${c.vendor} ${c.model}`) && COMPUTE_GPU_VENDOR.test(`${c.vendor} ${c.model}`))
    .map((c, index) => {
      const vramTotal = mebibytes(c.vram) ?? 0;
      const used = mebibytes(c.memoryUsed);
      return {
        index,
        name: (c.model || 'GPU').slice(0, 128),
        vendor: (c.vendor || 'unknown').slice(0, 64),
        vramTotal,
        // Unreported free VRAM is 0 (the schema's unknown), not a guess.
        vramFree: mebibytes(c.memoryFree) ?? (used === undefined ? 0 : Math.max(0, vramTotal - used)),
        util: typeof c.utilizationGpu === 'number' && c.utilizationGpu >= 0 ? Math.min(1, c.utilizationGpu / 100) : -1,
      };
    });
}

/** PCI vendor ids of the compute GPUs probeOtherGpus looks for: AMD (ATI) and Intel. */
const COMPUTE_GPU_PCI_VENDORS = new Set(['0x1002', '0x1022', '0x8086']);

/**
 * Whether Linux's PCI list (what lspci, and so systeminformation, reads) has a display controller (class 0x03:
 * VGA, 3D, other) from AMD or Intel; undefined when the list cannot be read (not Linux, no sysfs), so the caller
 * asks systeminformation as before.
 */
export async function pciHasComputeGpu(root: string): Promise<boolean | undefined> {
  let devices: string[];
  try {
    devices = await readdir(root);
  } catch {
    return undefined;
  }
  for (const device of devices) {
    const [cls, vendor] = await Promise.all(
      ['class', 'vendor'].map((f) => readFile(join(root, device, f), 'utf8').then((t) => t.trim().toLowerCase())),
    ).catch(() => [undefined, undefined]);
    // A device that cannot be read might be anything: let systeminformation decide.
    if (cls === undefined || vendor === undefined) return undefined;
    if (cls.startsWith('0x03') && COMPUTE_GPU_PCI_VENDORS.has(vendor)) return true;
  }
  return false;
}

/** Logs a warning when it appears and once more when it clears, not on every probe while it lasts. */
function createWarningLog(log: ProbeLogger): (warnings: readonly string[]) => void {
  let active = new Set<string>();
  return (warnings) => {
    const now = new Set(warnings);
    for (const w of now) if (!active.has(w)) log.warn({}, w);
    for (const w of active) if (!now.has(w)) log.info({ cleared: w }, 'probe warning cleared');
    active = now;
  };
}

/** Runs `read` at most once per interval while it keeps answering "absent"; otherwise on every call. */
function skipWhileAbsent(read: () => Promise<NvidiaProbe>, intervalMs: number, now: () => number, log: ProbeLogger) {
  let absentUntil = 0;
  let loggedReason: string | undefined;
  return async (): Promise<NvidiaProbe> => {
    if (now() < absentUntil) return { gpus: [] };
    const result = await read();
    if (result.absent) {
      absentUntil = now() + intervalMs;
      if (loggedReason !== result.absent) log.debug({ reason: result.absent }, 'no NVIDIA GPU');
      loggedReason = result.absent;
    }
    return result;
  };
}

/** Runs `read` at most once per interval, keeping its last answer in between; a failure counts as none. */
function cachedFor<T>(read: () => Promise<T>, fallback: T, intervalMs: number, now: () => number) {
  let cached: { value: T; until: number } | undefined;
  return async (): Promise<T> => {
    if (!cached || now() >= cached.until) {
      const value = await read().catch(() => fallback);
      cached = { value, until: now() + intervalMs };
    }
    return cached.value;
  };
}

export function createProber(init: ProberInit = {}): Prober {
  const log = init.logger ?? silent;
  const now = init.now ?? Date.now;
  const rescanMs = init.hardwareRescanMs ?? 5 * 60_000;
  const cpus = init.cpus ?? osCpus;
  const cpuLoad = init.cpuLoad ?? createCpuLoadSampler(cpus);
  // os.freemem() is MemAvailable on Linux (libuv reads /proc/meminfo): what a new workload can really use.
  const memory = init.memory ?? (() => ({ total: totalmem(), free: freemem() }));
  const nvidiaSmi = createNvidiaSmiReader(init.nvidiaSmiPath ?? 'nvidia-smi', init.nvidiaSmiTimeoutMs ?? 5_000);
  const readNvidia = skipWhileAbsent(nvidiaSmi.read, rescanMs, now, log);
  // Imported on first use: its GPU scan runs once per rescan interval, and the module costs ~4 MB of idle RSS.
  const si: SystemInformation = init.si ?? { graphics: async () => (await import('systeminformation')).graphics() };
  // systeminformation's scan spawns ~10 processes and keeps its ~700 KB module in the heap: a Linux box whose PCI
  // list shows no AMD or Intel display controller (most servers; NVIDIA cards are nvidia-smi's) never loads it.
  const pciRoot = init.pciRoot ?? (init.si ? false : '/sys/bus/pci/devices');
  const scanOtherGpus = async (): Promise<Gpu[]> =>
    pciRoot !== false && (await pciHasComputeGpu(pciRoot)) === false ? [] : probeOtherGpus(si);
  const readOtherGpus =
    init.otherGpus === false ? async () => [] : cachedFor(scanOtherGpus, [] as Gpu[], rescanMs, now);
  const endpoints = init.modelEndpoints ?? [];
  const fetchTimeoutMs = init.fetchTimeoutMs ?? 2_000;
  const contextCache: ContextLengthCache = new Map();
  const logWarnings = createWarningLog(log);
  const closing = new AbortController();
  const discovery = { timeoutMs: fetchTimeoutMs, signal: closing.signal, contextCache };

  return {
    async probe() {
      if (closing.signal.aborted) throw new Error('probe() called after close()');
      const started = performance.now();
      const [nvidia, others, discoveries] = await Promise.all([
        readNvidia(),
        readOtherGpus(),
        Promise.all(endpoints.map((e) => discoverModels(e, discovery))),
      ]);
      const gpus = [...nvidia.gpus, ...others.map((g, i) => ({ ...g, index: nvidia.gpus.length + i }))];
      const warnings = [nvidia.warning, ...discoveries.map((d) => d.warning)].filter((w) => w !== undefined);
      logWarnings(warnings);
      const cpuList = cpus();
      const cores = cpuList.length;
      const mem = memory();
      return {
        cpu: { cores, model: (cpuList[0]?.model ?? 'unknown').trim().slice(0, 256), load: cpuLoad() },
        mem,
        gpus,
        models: discoveries.flatMap((d) => d.models),
        tier: classifyTier(tierInput(cores, mem.total, gpus)),
        probedAt: now(),
        durationMs: performance.now() - started,
        warnings,
      };
    },
    // Nothing is held between probes; close ends a probe in progress early (its results are then partial).
    async close() {
      closing.abort();
      nvidiaSmi.stop();
    },
  };
}
