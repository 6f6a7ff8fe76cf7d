import { execFile } from 'node:child_process';
import type { Gpu } from '@hermes-mesh/protocol';
import { XMLParser } from 'fast-xml-parser';
import { parseBytes, parseCelsius, parseFraction } from './units.js';

type XmlNode = Record<string, unknown>;

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@',
  parseTagValue: false, // keep "24564 MiB" as text; units are parsed explicitly
  trimValues: true,
  isArray: (name) => name === 'gpu' || name === 'mig_device',
});

function node(value: unknown): XmlNode | undefined {
  return typeof value === 'object' && value !== null ? (value as XmlNode) : undefined;
}

function text(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function parseMig(gpu: XmlNode): Gpu['mig'] {
  const enabled = text(node(gpu.mig_mode)?.current_mig) === 'Enabled';
  const devices = node(gpu.mig_devices)?.mig_device;
  if (!enabled || !Array.isArray(devices)) return undefined;
  return devices.map((d: XmlNode) => {
    const fb = node(d.fb_memory_usage);
    const vramTotal = parseBytes(fb?.total) ?? 0;
    return {
      gi: Number(d.gpu_instance_id) || 0,
      ci: Number(d.compute_instance_id) || 0,
      // The XML names no profile; the memory size is what placement needs and what a person recognises.
      profile: `${Math.round(vramTotal / 2 ** 30)}gb`,
      vramTotal,
      vramFree: parseBytes(fb?.free) ?? 0,
    };
  });
}

/** Parses `nvidia-smi -q -x` output into adverts' GPU entries. Throws only on XML that is not nvidia-smi's. */
export function parseNvidiaSmiXml(xml: string): Gpu[] {
  const doc = node(parser.parse(xml));
  const log = node(doc?.nvidia_smi_log);
  if (!log) throw new Error('not nvidia-smi XML: no <nvidia_smi_log> element');
  const gpus = Array.isArray(log.gpu) ? (log.gpu as XmlNode[]) : [];
  return gpus.map((g, i) => {
    const fb = node(g.fb_memory_usage);
    const total = parseBytes(fb?.total) ?? 0;
    const used = parseBytes(fb?.used);
    const reserved = parseBytes(fb?.reserved) ?? 0;
    const free = parseBytes(fb?.free) ?? (used === undefined ? 0 : Math.max(0, total - used - reserved));
    const minor = Number(text(g.minor_number));
    const gpu: Gpu = {
      index: Number.isInteger(minor) && minor >= 0 ? minor : i,
      name: text(g.product_name) ?? 'NVIDIA GPU',
      vendor: 'NVIDIA',
      vramTotal: total,
      vramFree: free,
      util: parseFraction(node(g.utilization)?.gpu_util) ?? -1,
    };
    const uuid = text(g.uuid);
    if (uuid && uuid !== 'N/A') gpu.uuid = uuid;
    const temp = parseCelsius(node(g.temperature)?.gpu_temp);
    if (temp !== undefined) gpu.temperatureC = temp;
    const mig = parseMig(g);
    if (mig) gpu.mig = mig;
    return gpu;
  });
}

export type NvidiaProbe = { gpus: Gpu[]; absent?: string; warning?: string };

/**
 * Runs nvidia-smi with a timeout. No nvidia-smi, or a driver that does not answer, means "no NVIDIA GPU":
 * reported as `absent` with the reason, never thrown.
 */
export function probeNvidia(path: string, timeoutMs: number): Promise<NvidiaProbe> {
  return new Promise((resolve) => {
    execFile(path, ['-q', '-x'], { timeout: timeoutMs, maxBuffer: 32 * 2 ** 20 }, (err, stdout, stderr) => {
      if (err) {
        const e = err as Error & { killed?: boolean; code?: unknown };
        if (e.code === 'ENOENT' || e.code === 127) return resolve({ gpus: [], absent: `${path} not found` });
        if (e.killed) {
          return resolve({
            gpus: [],
            warning: `${path} did not answer within ${timeoutMs} ms; is the NVIDIA driver hung?`,
          });
        }
        const why = (stderr || stdout || e.message).trim().split('\n')[0];
        return resolve({ gpus: [], absent: `${path} failed: ${why}` });
      }
      try {
        resolve({ gpus: parseNvidiaSmiXml(stdout) });
      } catch (parseErr) {
        resolve({ gpus: [], warning: `${path} printed unreadable XML: ${(parseErr as Error).message}` });
      }
    });
  });
}
