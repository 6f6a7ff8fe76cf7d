// Probe cost on this machine (no GPU, no Ollama listening): the first probe, then a full probe after warm-up
// (CPU, memory, nvidia-smi lookup, GPUs via systeminformation, one Ollama endpoint that refuses connections,
// as on a box where the daemon's default config finds none); the same with a stand-in nvidia-smi that prints the
// 8x H100 fixture (process spawn + parse, without the real nvidia-smi's own time); and parsing that fixture.
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createProber, type Prober, parseNvidiaSmiXml } from '@hermes-mesh/probe';
import { percentile, report } from './report.js';

const RUNS = 20;
const fixture = resolve(import.meta.dirname, '../packages/probe/fixtures/h100-x8.xml');
const modelEndpoints = [{ provider: 'ollama' as const, url: 'http://127.0.0.1:11434' }];

async function measureProbes(name: string, prober: Prober) {
  const first = await prober.probe();
  report('probe', `${name}_first`, first.durationMs, 'ms', { warnings: first.warnings.length });
  for (let i = 0; i < 3; i++) await prober.probe();
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) times.push((await prober.probe()).durationMs);
  await prober.close();
  times.sort((a, b) => a - b);
  const context = { runs: RUNS, gpus: first.gpus.length, models: first.models.length, tier: first.tier };
  report('probe', `${name}_p50`, percentile(times, 50), 'ms', context);
  report('probe', `${name}_p99`, percentile(times, 99), 'ms', context);
}

await measureProbes('full_probe', createProber({ modelEndpoints }));

const dir = mkdtempSync(join(tmpdir(), 'bench-smi-'));
const fakeSmi = join(dir, 'nvidia-smi');
writeFileSync(fakeSmi, `#!/bin/sh\ncat '${fixture}'\n`);
chmodSync(fakeSmi, 0o755);
await measureProbes('full_probe_stand_in_8_gpus', createProber({ modelEndpoints, nvidiaSmiPath: fakeSmi }));
rmSync(dir, { recursive: true });

const xml = readFileSync(fixture, 'utf8');
const gpus = parseNvidiaSmiXml(xml).length;
for (let i = 0; i < 50; i++) parseNvidiaSmiXml(xml);
const parses: number[] = [];
for (let i = 0; i < 200; i++) {
  const t0 = performance.now();
  parseNvidiaSmiXml(xml);
  parses.push(performance.now() - t0);
}
parses.sort((a, b) => a - b);
report('probe', 'nvidia_smi_xml_parse_8_gpus_p50', percentile(parses, 50), 'ms', { bytes: xml.length, gpus });
report('probe', 'nvidia_smi_xml_parse_8_gpus_p99', percentile(parses, 99), 'ms', { bytes: xml.length, gpus });
