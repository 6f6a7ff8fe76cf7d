import { type ChildProcess, execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import type { Gpu } from '@hermes-mesh/protocol';
import type * as FastXmlParser from 'fast-xml-parser';
import { parseBytes, parseCelsius, parseFraction } from './units.js';

type XmlNode = Record<string, unknown>;

/**
 * The largest subtrees of a GPU's entry, which the probe never reads: kept as raw text instead of parsed, which
 * halves the parse time of an 8-GPU output (~140 KB, most of it supported_clocks).
 */
const UNREAD_SUBTREES = [
  'supported_clocks',
  'processes',
  'accounted_processes',
  'ecc_errors',
  'retired_pages',
  'remapped_rows',
  'clocks_event_reasons',
  'pci',
];

let parser: FastXmlParser.XMLParser | undefined;

/**
 * The XML parser, loaded when nvidia-smi first prints something: a box without NVIDIA GPUs (most of them) never
 * loads the module (~200 KB of source kept in the daemon's heap for nothing).
 */
function xmlParser(): FastXmlParser.XMLParser {
  if (parser) return parser;
  const { XMLParser } = createRequire(import.meta.url)('fast-xml-parser') as typeof FastXmlParser;
  parser = new XMLParser({
    stopNodes: UNREAD_SUBTREES.map((name) => `nvidia_smi_log.gpu.${name}`),
    ignoreAttributes: false,
    attributeNamePrefix: '@',
    parseTagValue: false, // keep "24564 MiB" as text; units are parsed explicitly
    trimValues: true,
    // One GPU or one MIG device must still come back as a list.
    isArray: (name) => name === 'gpu' || name === 'mig_device',
  });
  return parser;
}

function node(value: unknown): XmlNode | undefined {
  return typeof value === 'object' && value !== null ? (value as XmlNode) : undefined;
}

function text(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function instanceId(value: unknown): number {
  const id = Number(text(value));
  return Number.isInteger(id) && id >= 0 ? id : 0;
}

/** total/free of an <fb_memory_usage>; free derived from total - used - reserved where the driver omits it. */
function framebuffer(fb: XmlNode | undefined): { vramTotal: number; vramFree: number } {
  const vramTotal = parseBytes(fb?.total) ?? 0;
  const used = parseBytes(fb?.used);
  const reserved = parseBytes(fb?.reserved) ?? 0;
  const vramFree = parseBytes(fb?.free) ?? (used === undefined ? 0 : Math.max(0, vramTotal - used - reserved));
  return { vramTotal, vramFree };
}

function parseMig(gpu: XmlNode): Gpu['mig'] {
  const enabled = text(node(gpu.mig_mode)?.current_mig) === 'Enabled';
  const devices = node(gpu.mig_devices)?.mig_device;
  if (!enabled || !Array.isArray(devices)) return undefined;
  return devices.map((d: XmlNode) => {
    const memory = framebuffer(node(d.fb_memory_usage));
    return {
      gi: instanceId(d.gpu_instance_id),
      ci: instanceId(d.compute_instance_id),
      // The XML names no profile; the memory size is what placement needs and what a person recognises.
      profile: `${Math.round(memory.vramTotal / 2 ** 30)}gb`,
      ...memory,
    };
  });
}

/**
 * Parses `nvidia-smi -q -x` output into adverts' GPU entries. Throws only on XML that is not nvidia-smi's.
 * `index` is the position in the output, which is nvidia-smi's own GPU index (PCI bus order, what `-i` and
 * CUDA_VISIBLE_DEVICES with PCI_BUS_ID order mean); <minor_number> is /dev/nvidiaN and can differ.
 */
export function parseNvidiaSmiXml(xml: string): Gpu[] {
  const doc = node(xmlParser().parse(xml));
  const log = node(doc?.nvidia_smi_log);
  if (!log) throw new Error('not nvidia-smi XML: no <nvidia_smi_log> element');
  const gpus = Array.isArray(log.gpu) ? (log.gpu as XmlNode[]) : [];
  return gpus.map((g, index) => {
    const gpu: Gpu = {
      index,
      name: (text(g.product_name) ?? 'NVIDIA GPU').slice(0, 128),
      vendor: 'NVIDIA',
      ...framebuffer(node(g.fb_memory_usage)),
      // Under MIG the whole-GPU figure is N/A: unknown (-1), not idle.
      util: parseFraction(node(g.utilization)?.gpu_util) ?? -1,
    };
    const uuid = text(g.uuid);
    if (uuid?.startsWith('GPU-')) gpu.uuid = uuid.slice(0, 128);
    const temp = parseCelsius(node(g.temperature)?.gpu_temp);
    if (temp !== undefined) gpu.temperatureC = temp;
    const mig = parseMig(g);
    if (mig) gpu.mig = mig;
    return gpu;
  });
}

/**
 * One nvidia-smi run. `absent`: no NVIDIA GPU here (no nvidia-smi, or no driver answering), with the reason;
 * `warning`: something a person should look at (a hung driver, unreadable output). Never thrown.
 */
export type NvidiaProbe = { gpus: Gpu[]; absent?: string; warning?: string };

/** How long after the kill a run still waits for the streams to close before giving up on them. */
const STREAM_GRACE_MS = 250;

const DRIVER_ABSENT = /couldn't communicate with the NVIDIA driver|No devices were found|NVIDIA driver is not loaded/i;

/** nvidia-smi's exit codes for "nothing to talk to": 6 no GPU found, 9 driver not loaded, 12 no NVML library. */
const ABSENT_EXIT_CODES = new Set([6, 9, 12]);

type ExecError = Omit<NodeJS.ErrnoException, 'code'> & { code?: string | number | null; signal?: string | null };

function explainFailure(path: string, err: ExecError, output: string): NvidiaProbe {
  if (err.code === 'ENOENT' || err.code === 127) return { gpus: [], absent: `${path} not found` };
  if (err.code === 'EACCES') return { gpus: [], warning: `${path} is not executable (EACCES): check its permissions` };
  const why = output.trim().split('\n')[0] ?? '';
  if (DRIVER_ABSENT.test(why) || ABSENT_EXIT_CODES.has(err.code as number)) {
    return { gpus: [], absent: `${path}: ${why || `exit ${err.code}`}` };
  }
  // Any other failure also means no usable NVIDIA GPU now, but it is odd enough to show a person.
  return { gpus: [], warning: `${path} failed (${err.signal ?? `exit ${err.code}`}): ${why || err.message}` };
}

/**
 * Runs `nvidia-smi -q -x` with a timeout. The result is settled at the deadline even when the process cannot
 * be reaped (a driver hang leaves nvidia-smi in uninterruptible sleep) or a grandchild holds its stdout open,
 * so a probe never waits longer than timeoutMs plus a short grace.
 */
export function runNvidiaSmi(path: string, timeoutMs: number): { child: ChildProcess; result: Promise<NvidiaProbe> } {
  let settle!: (r: NvidiaProbe) => void;
  const result = new Promise<NvidiaProbe>((resolve) => {
    settle = resolve;
  });
  const hung: NvidiaProbe = {
    gpus: [],
    warning: `${path} did not answer within ${timeoutMs} ms; is the NVIDIA driver hung? (try running it by hand)`,
  };
  const child = execFile(
    path,
    ['-q', '-x'],
    { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 32 * 2 ** 20 },
    (err, stdout, stderr) => {
      clearTimeout(backstop);
      if (err) {
        const e = err as ExecError & { killed?: boolean };
        return settle(e.killed ? hung : explainFailure(path, e, `${stderr}\n${stdout}`));
      }
      try {
        settle({ gpus: parseNvidiaSmiXml(stdout) });
      } catch (parseErr) {
        settle({ gpus: [], warning: `${path} printed unreadable XML: ${(parseErr as Error).message}` });
      }
    },
  );
  const backstop = setTimeout(() => {
    child.stdout?.destroy();
    child.stderr?.destroy();
    settle(hung);
  }, timeoutMs + STREAM_GRACE_MS);
  backstop.unref();
  return { child, result };
}

export function probeNvidia(path: string, timeoutMs: number): Promise<NvidiaProbe> {
  return runNvidiaSmi(path, timeoutMs).result;
}

/** nvidia-smi as a prober runs it: `read` once per probe, `stop` when the prober closes. */
export interface NvidiaSmiReader {
  read(): Promise<NvidiaProbe>;
  /** Kills a run still in progress, so a closing daemon does not wait for it. */
  stop(): void;
}

/**
 * A run that could not be reaped is not joined by another one on every probe (each would hang in the driver
 * too); the probe reports the stuck one until it exits.
 */
export function createNvidiaSmiReader(path: string, timeoutMs: number): NvidiaSmiReader {
  let previous: ChildProcess | undefined;
  // A run that failed to spawn has no pid and never gets an exit code.
  const running = () => previous?.pid !== undefined && previous.exitCode === null && previous.signalCode === null;
  return {
    read() {
      if (running()) {
        return Promise.resolve({
          gpus: [],
          warning: `${path} (pid ${previous?.pid}) from an earlier probe is still running; is the NVIDIA driver hung?`,
        });
      }
      const run = runNvidiaSmi(path, timeoutMs);
      previous = run.child;
      return run.result;
    },
    stop() {
      if (running()) previous?.kill('SIGKILL');
    },
  };
}
