// Probe cost: a full probe (CPU, memory, nvidia-smi, GPUs via systeminformation, one model endpoint) after
// warm-up, on this machine; and parsing the 4-GPU nvidia-smi fixture.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { createProber, parseNvidiaSmiXml } from '@hermes-mesh/probe';
import { percentile, report } from './report.js';

const prober = createProber();
await prober.probe(); // warm-up: first currentLoad() samples for ~0.5 s
const times: number[] = [];
for (let i = 0; i < 20; i++) times.push((await prober.probe()).durationMs);
await prober.close();
times.sort((a, b) => a - b);
report('probe', 'full_probe_p50', percentile(times, 50), 'ms', { runs: times.length, gpus: 'none on this box' });
report('probe', 'full_probe_p99', percentile(times, 99), 'ms', { runs: times.length });

const xml = readFileSync(resolve(import.meta.dirname, '../packages/probe/fixtures/a100-x4.xml'), 'utf8');
for (let i = 0; i < 100; i++) parseNvidiaSmiXml(xml);
const n = 2_000;
const t0 = performance.now();
for (let i = 0; i < n; i++) parseNvidiaSmiXml(xml);
report('probe', 'nvidia_smi_xml_parse_4_gpus', ((performance.now() - t0) * 1000) / n, 'us', { bytes: xml.length });
