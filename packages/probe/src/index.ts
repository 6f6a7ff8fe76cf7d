export {
  type Discovery,
  discoverModels,
  discoverOllama,
  discoverOpenAICompatible,
  type ModelEndpoint,
} from './models.js';
export { type NvidiaProbe, parseNvidiaSmiXml, probeNvidia } from './nvidia.js';
export {
  createCpuLoadSampler,
  createProber,
  type ProbeLogger,
  type ProbeResult,
  type Prober,
  type ProberInit,
} from './prober.js';
export { classifyTier, TIER_TABLE, type TierInput } from './tier.js';
export { parseBytes, parseCelsius, parseFraction } from './units.js';
