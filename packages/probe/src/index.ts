export {
  type ContextLengthCache,
  type Discovery,
  type DiscoveryOptions,
  discoverModels,
  discoverOllama,
  discoverOpenAICompatible,
  type ModelEndpoint,
} from './models.js';
export {
  createNvidiaSmiReader,
  type NvidiaProbe,
  type NvidiaSmiReader,
  parseNvidiaSmiXml,
  probeNvidia,
  runNvidiaSmi,
} from './nvidia.js';
export {
  createCpuLoadSampler,
  createProber,
  type ProbeLogger,
  type ProbeResult,
  type Prober,
  type ProberInit,
  probeOtherGpus,
} from './prober.js';
export { classifyTier, TIER_TABLE, type TierInput, type TierRow, tierInput, tierRowFor, usableVram } from './tier.js';
export { parseBytes, parseCelsius, parseFraction } from './units.js';
