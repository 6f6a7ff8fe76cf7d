import type { Advert } from '@hermes-mesh/protocol';
import {
  COMPLEXITY_MIN_SCORE,
  type Complexity,
  DEFAULT_WEIGHTS,
  type ModelScore,
  normaliseModelName,
  scoreModel,
  type Weights,
} from './registry.js';

export interface RankedModel extends ModelScore {
  /** Nodes that have it loaded (in VRAM, or served by an endpoint that is up). */
  loadedOn: string[];
  /** Nodes that have it installed but not loaded. */
  availableOn: string[];
  provider: string;
}

/** Every model the mesh's live nodes serve, best first, with where it is and why it scores as it does. */
export function rankMeshModels(adverts: Advert[], weights: Weights = DEFAULT_WEIGHTS): RankedModel[] {
  const byKey = new Map<string, RankedModel>();
  for (const advert of adverts) {
    for (const m of advert.models) {
      const key = `${normaliseModelName(m.name)}|${m.providerName ?? m.provider}`;
      let entry = byKey.get(key);
      if (!entry) {
        entry = {
          ...scoreModel(m.name, { family: m.family, parameterSize: m.parameterSize }, weights),
          provider: m.providerName ?? m.provider,
          loadedOn: [],
          availableOn: [],
        };
        byKey.set(key, entry);
      }
      (m.loaded ? entry.loadedOn : entry.availableOn).push(advert.name);
    }
  }
  return [...byKey.values()].sort((a, b) => b.score - a.score || a.name.localeCompare(b.name));
}

export type ModelChoice =
  | { ok: true; model: string; provider: string; score: number; loaded: boolean; reason: string }
  | { ok: false; error: string };

export interface ChooseInput {
  adverts?: Advert[];
  /** rankMeshModels(adverts), when the caller keeps it between advert changes (it is the costly part). */
  ranked?: RankedModel[];
  /** Given, or estimated from the task (estimateComplexity). */
  complexity: Complexity | number;
  /** Per-call overrides win over the choice. */
  model?: string;
  provider?: string;
  weights?: Weights;
}

/**
 * The best model actually available on a live node for a task: the minimum score for its complexity, then
 * loaded before not loaded, then the higher score. Overrides win; one naming a model no node serves is an error.
 */
export function chooseModel(input: ChooseInput): ModelChoice {
  const ranked = input.ranked ?? rankMeshModels(input.adverts ?? [], input.weights);
  if (input.model) {
    const key = normaliseModelName(input.model);
    const hit = ranked.find(
      (r) => normaliseModelName(r.name) === key && (!input.provider || r.provider === input.provider),
    );
    if (!hit) {
      const known =
        ranked
          .map((r) => r.name)
          .slice(0, 10)
          .join(', ') || 'none';
      return {
        ok: false,
        error: `no live node serves model ${input.model}${input.provider ? ` from ${input.provider}` : ''} (the mesh has: ${known})`,
      };
    }
    return {
      ok: true,
      model: hit.name,
      provider: hit.provider,
      score: hit.score,
      loaded: hit.loadedOn.length > 0,
      reason: 'requested',
    };
  }
  const min = typeof input.complexity === 'number' ? input.complexity : COMPLEXITY_MIN_SCORE[input.complexity];
  const pool = ranked.filter((r) => !input.provider || r.provider === input.provider);
  const capable = pool.filter((r) => r.score >= min);
  if (capable.length === 0) {
    const best = pool[0];
    return {
      ok: false,
      error: `no model scores ${min.toFixed(2)} or more for this task${best ? ` (best available: ${best.name} at ${best.score.toFixed(2)})` : ' (the mesh serves no models)'}`,
    };
  }
  const loaded = capable.filter((r) => r.loadedOn.length > 0);
  const pick = (loaded.length > 0 ? loaded : capable)[0]!;
  return {
    ok: true,
    model: pick.name,
    provider: pick.provider,
    score: pick.score,
    loaded: pick.loadedOn.length > 0,
    reason: `${pick.source}: ${pick.reason}; needs >= ${min.toFixed(2)}${loaded.length > 0 ? ', loaded' : ''}`,
  };
}
