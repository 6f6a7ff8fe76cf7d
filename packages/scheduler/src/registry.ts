import registryData from './models.json' with { type: 'json' };

export type Benchmark = 'mmlu' | 'humaneval' | 'math' | 'gpqa';
export type Weights = Record<Benchmark, number>;
export type CapabilityTier = 'frontier' | 'advanced' | 'mid' | 'light';
export type ReasoningLevel = 'low' | 'medium' | 'high';

/** The feature request's weights: coding counts most, then knowledge, maths, and graduate-level science. */
export const DEFAULT_WEIGHTS: Weights = { mmlu: 0.3, humaneval: 0.35, math: 0.2, gpqa: 0.15 };

export interface RegistryEntry {
  id: string;
  family: string;
  /** Billions of parameters, when public. */
  params: number | null;
  aliases: string[];
  scores: Partial<Record<Benchmark, number>>;
  source: string;
  confidence: 'high' | 'medium' | 'low';
  reasoning?: ReasoningLevel;
}

export const REGISTRY: readonly RegistryEntry[] = registryData.models as RegistryEntry[];

export type ScoreSource = 'registry' | 'family' | 'size' | 'reasoning' | 'default';

export interface ModelScore {
  /** The name asked about. */
  name: string;
  /** The registry entry it matched, if any. */
  id?: string;
  score: number;
  tier: CapabilityTier;
  source: ScoreSource;
  /** Which rule produced the score, in words. */
  reason: string;
}

export function tierOf(score: number): CapabilityTier {
  if (score >= 0.85) return 'frontier';
  if (score >= 0.75) return 'advanced';
  if (score >= 0.6) return 'mid';
  return 'light';
}

/**
 * A model name as providers spell it, reduced to registry form: lower case, no provider prefix, no quantisation
 * or instruct suffixes. `llama3.1:70b-instruct-q4_K_M` -> `llama3.1:70b`, `openai/gpt-4o` -> `gpt-4o`.
 */
export function normaliseModelName(name: string): string {
  let n = normalised.get(name);
  if (n === undefined) {
    if (normalised.size > 10_000) normalised.clear();
    n = normalise(name);
    normalised.set(name, n);
  }
  return n;
}

const normalised = new Map<string, string>();

function normalise(name: string): string {
  let n = name.trim().toLowerCase();
  const slash = n.lastIndexOf('/');
  if (slash >= 0) n = n.slice(slash + 1);
  n = n.replace(/[-_](instruct|chat|it)(?=$|[-_:])/g, '');
  n = n.replace(/[-_:](q\d[\w]*|fp16|bf16|f16|int4|int8|gguf|awq|gptq|latest)$/g, '');
  n = n.replace(/[-_](q\d[\w]*|fp16|bf16|f16)$/g, '');
  return n;
}

const byName = new Map<string, RegistryEntry>();
for (const entry of REGISTRY) {
  for (const key of [entry.id, ...entry.aliases]) byName.set(normaliseModelName(key), entry);
}

export function lookupModel(name: string): RegistryEntry | undefined {
  return byName.get(normaliseModelName(name));
}

/** Weighted mean of the published scores, renormalised over the benchmarks the entry has. */
export function capabilityScore(
  entry: RegistryEntry,
  weights: Weights = DEFAULT_WEIGHTS,
): { score: number; missing: Benchmark[] } {
  let sum = 0;
  let weight = 0;
  const missing: Benchmark[] = [];
  for (const b of Object.keys(weights) as Benchmark[]) {
    const s = entry.scores[b];
    if (s === undefined) {
      missing.push(b);
      continue;
    }
    sum += weights[b] * (s / 100);
    weight += weights[b];
  }
  return { score: weight > 0 ? sum / weight : 0, missing };
}

/** Parameter count in billions from a name or an Ollama parameter_size: `70b`, `8.2B`, `8x7b` (-> 56). */
export function parameterBillions(text: string): number | undefined {
  const moe = /(\d+)x(\d+(?:\.\d+)?)b\b/i.exec(text);
  if (moe) return Number(moe[1]) * Number(moe[2]);
  const m = /(\d+(?:\.\d+)?)\s*([bm])\b/i.exec(text);
  if (!m) return undefined;
  const value = Number(m[1]);
  return m[2]!.toLowerCase() === 'm' ? value / 1000 : value;
}

/** The size rule: 8B -> 0.70, 70B -> 0.80, 400B -> 0.85, linear in log(params) between, clamped outside. */
export function scoreFromSize(billions: number): number {
  const points: Array<[number, number]> = [
    [8, 0.7],
    [70, 0.8],
    [400, 0.85],
  ];
  if (billions <= points[0]![0]) return points[0]![1];
  if (billions >= points[2]![0]) return points[2]![1];
  const [lo, hi] = billions < 70 ? [points[0]!, points[1]!] : [points[1]!, points[2]!];
  const t = (Math.log(billions) - Math.log(lo[0])) / (Math.log(hi[0]) - Math.log(lo[0]));
  return lo[1] + t * (hi[1] - lo[1]);
}

export const REASONING_SCORES: Record<ReasoningLevel, number> = { low: 0.55, medium: 0.75, high: 0.85 };

export interface ScoreHints {
  family?: string;
  parameterSize?: string;
  reasoning?: ReasoningLevel;
}

function familyOf(name: string, hint?: string): string | undefined {
  const n = normaliseModelName(name);
  const candidates = [hint?.toLowerCase(), n.split(':')[0], n.split('-')[0]].filter(Boolean) as string[];
  return candidates.find((c) => REGISTRY.some((e) => e.family === c || normaliseModelName(e.id).split(':')[0] === c));
}

/**
 * A capability score for any model name: the registry when it knows the model; otherwise the best-known sibling
 * of its family scaled by size, then the size rule, then the reasoning level, then a cautious default.
 */
export function scoreModel(name: string, hints: ScoreHints = {}, weights: Weights = DEFAULT_WEIGHTS): ModelScore {
  // Scores are pure in (name, hints) for the default weights: remember them, a mesh repeats the same few models.
  if (weights !== DEFAULT_WEIGHTS) return computeScore(name, hints, weights);
  const key = `${name}|${hints.family ?? ''}|${hints.parameterSize ?? ''}|${hints.reasoning ?? ''}`;
  let cached = scoreCache.get(key);
  if (!cached) {
    if (scoreCache.size > 10_000) scoreCache.clear();
    cached = computeScore(name, hints, weights);
    scoreCache.set(key, cached);
  }
  return { ...cached };
}

const scoreCache = new Map<string, ModelScore>();

function computeScore(name: string, hints: ScoreHints, weights: Weights): ModelScore {
  const entry = lookupModel(name);
  if (entry) {
    const { score, missing } = capabilityScore(entry, weights);
    const note = missing.length > 0 ? `; no ${missing.join(', ')} published, weights renormalised` : '';
    return { name, id: entry.id, score, tier: tierOf(score), source: 'registry', reason: `${entry.source}${note}` };
  }
  const billions = parameterBillions(hints.parameterSize ?? '') ?? parameterBillions(normaliseModelName(name));
  const family = familyOf(name, hints.family);
  if (family) {
    const siblings = REGISTRY.filter((e) => e.family === family || normaliseModelName(e.id).split(':')[0] === family);
    const ranked = siblings.map((e) => ({ e, s: capabilityScore(e, weights).score })).sort((a, b) => b.s - a.s);
    const best = ranked[0]!;
    // Scale the sibling by how the size rule rates the two sizes, when both are known.
    const scaled =
      billions !== undefined && best.e.params
        ? best.s * (scoreFromSize(billions) / scoreFromSize(best.e.params))
        : best.s;
    const score = Math.min(1, scaled);
    return {
      name,
      score,
      tier: tierOf(score),
      source: 'family',
      reason: `family ${family}: best known sibling ${best.e.id} (${best.s.toFixed(2)})${billions !== undefined && best.e.params ? ` scaled for ${billions}B vs ${best.e.params}B` : ''}`,
    };
  }
  if (billions !== undefined) {
    const score = scoreFromSize(billions);
    return { name, score, tier: tierOf(score), source: 'size', reason: `size rule: ${billions}B parameters` };
  }
  if (hints.reasoning) {
    const score = REASONING_SCORES[hints.reasoning];
    return { name, score, tier: tierOf(score), source: 'reasoning', reason: `reasoning level ${hints.reasoning}` };
  }
  return {
    name,
    score: 0.5,
    tier: 'light',
    source: 'default',
    reason: 'unknown model, no size or family: assumed light',
  };
}

/** Task complexity -> the minimum capability score a model needs for it. */
export const COMPLEXITY_MIN_SCORE = { low: 0.0, medium: 0.6, high: 0.75, expert: 0.85 } as const;
export type Complexity = keyof typeof COMPLEXITY_MIN_SCORE;

/**
 * Estimates complexity from the task text when the plan does not give it: long, multi-step or proof/design
 * language raises it. A documented heuristic, not a model call: zero cost, and always overridable.
 */
export function estimateComplexity(text: string): Complexity {
  const t = text.toLowerCase();
  if (/\b(prove|formal|theorem|novel|architecture|security audit|research-grade)\b/.test(t)) return 'expert';
  if (t.length > 2000 || /\b(design|refactor|analy[sz]e|debug|optimi[sz]e|multi-step|compare)\b/.test(t)) return 'high';
  if (t.length > 300 || /\b(summari[sz]e|explain|write|translate|classify)\b/.test(t)) return 'medium';
  return 'low';
}
