import type { Advert, ModelInfo, Tier } from '@hermes-mesh/protocol';
import { normaliseModelName } from './registry.js';

export type Policy = 'local_preferred' | 'cloud_preferred';

export interface NodeSnapshot {
  advert: Advert;
  alive: boolean;
  suspect?: boolean;
  /** Slots this scheduler's owner already holds there (assigned, not yet visible as busy in the advert). */
  inFlight?: number;
  /**
   * Slots taken there by work the owner did not assign, when it can tell (the advert's busy count less the owner's
   * own actions it counted). With it, free slots are total - inFlight - othersBusy: the advert is up to a heartbeat
   * old, and trusting its busy count would keep slots the owner's finished actions freed idle until the next one.
   */
  othersBusy?: number;
  /** Models of the llm actions in flight there: their VRAM stays reserved until the advert shows them loaded. */
  inFlightModels?: string[];
}

export interface PlacementRequest {
  actionId: string;
  kind: 'llm' | 'exec' | 'builtin' | 'recipe';
  policy: Policy;
  requires: {
    model?: string;
    provider?: string;
    minTier?: Tier;
    minVramBytes?: number;
    labels?: Record<string, string>;
    /** Allow a model that does not fit in VRAM to run partly on CPU, when RAM holds it. */
    cpuOffload?: boolean;
  };
  /** Slots it takes; default 1. */
  slots?: number;
}

export interface SchedulerOptions {
  weights?: Partial<ScoreWeights>;
  /** A model needs its size times this in free VRAM (KV cache, activations). Default 1.2. */
  vramOverhead?: number;
  /** Nomad's limit iterator: stop after this many feasible candidates (default max(2, ceil(log2 nodes))). */
  candidateLimit?: number;
}

export interface Placement {
  actionId: string;
  nodeId: string;
  /** The model it will run, for llm actions. */
  model?: string;
  score: number;
}

export interface Waiting {
  actionId: string;
  explanation: string;
  /** Nodes filtered per check name. */
  filtered: Record<string, number>;
}

export const TIER_RANK: Record<Tier, number> = { OBSERVER: 0, LITE: 1, STANDARD: 2, FULL: 3, COMPUTE_HOST: 4 };

const GB = 1e9;
const gb = (bytes: number) => `${(bytes / GB).toFixed(bytes < 10 * GB ? 1 : 0)} GB`;

/** What the checks of one request need, computed once per request. */
interface Need {
  request: PlacementRequest;
  model?: string;
  vramOverhead: number;
}

/** A node's state during one batch: what it reported, less what this batch and earlier ones reserved. */
interface NodeState {
  snapshot: NodeSnapshot;
  freeSlots: number;
  /** Free VRAM per GPU, less reservations. */
  freeVram: number[];
  placedInBatch: number;
}

type Check = (node: NodeState, need: Need) => string | undefined;

function findModel(advert: Advert, wanted: string, provider?: string): ModelInfo | undefined {
  const key = normaliseModelName(wanted);
  return advert.models.find(
    (m) =>
      (m.name === wanted || normaliseModelName(m.name) === key) &&
      (provider === undefined || m.provider === provider || m.providerName === provider),
  );
}

/** Bytes of VRAM a model needs on one GPU, 0 when it is served remotely or its size is unknown. */
function vramNeed(model: ModelInfo, overhead: number): number {
  if (model.loaded || model.sizeBytes === 0) return 0;
  return Math.ceil(model.sizeBytes * overhead);
}

/**
 * The feasibility checks, in order; each names what it filters (Nomad's feasible.go). A node passes when
 * every check returns undefined; the first failing check's message is why it does not fit.
 */
export const CHECKS: ReadonlyArray<[name: string, check: Check]> = [
  ['alive', (n) => (n.snapshot.alive && !n.snapshot.suspect ? undefined : 'are down or suspect')],
  ['not-draining', (n) => (n.snapshot.advert.draining ? 'are draining' : undefined)],
  ['slots', (n, need) => (n.freeSlots >= (need.request.slots ?? 1) ? undefined : 'have no free slot')],
  [
    'tier',
    (n, need) =>
      need.request.requires.minTier && TIER_RANK[n.snapshot.advert.tier] < TIER_RANK[need.request.requires.minTier]
        ? `are below tier ${need.request.requires.minTier}`
        : undefined,
  ],
  [
    'labels',
    (n, need) => {
      const labels = need.request.requires.labels ?? {};
      const miss = Object.entries(labels).find(([k, v]) => n.snapshot.advert.labels[k] !== v);
      return miss ? `lack label ${miss[0]}=${miss[1]}` : undefined;
    },
  ],
  [
    'model',
    (n, need) => {
      if (!need.model) return undefined;
      const model = findModel(n.snapshot.advert, need.model, need.request.requires.provider);
      return model
        ? undefined
        : `lack model ${need.model}${need.request.requires.provider ? ` from ${need.request.requires.provider}` : ''}`;
    },
  ],
  [
    'vram',
    (n, need) => {
      const wanted = need.request.requires.minVramBytes ?? 0;
      const model = need.model ? findModel(n.snapshot.advert, need.model, need.request.requires.provider) : undefined;
      const required = Math.max(wanted, model ? vramNeed(model, need.vramOverhead) : 0);
      if (required === 0) return undefined;
      const best = Math.max(0, ...n.freeVram);
      if (best >= required) return undefined;
      if (need.request.requires.cpuOffload && model && n.snapshot.advert.mem.free >= model.sizeBytes) return undefined;
      return `have ${gb(best)} VRAM free, need ${gb(required)}`;
    },
  ],
];

export interface ScoreWeights {
  policy: number;
  modelLoaded: number;
  slotHeadroom: number;
  cpuIdle: number;
  vramHeadroom: number;
  spread: number;
}

/** One place for the weights. Policy dominates: a preferred feasible node beats any non-preferred one. */
export const DEFAULT_SCORE_WEIGHTS: ScoreWeights = {
  policy: 10,
  modelLoaded: 2,
  slotHeadroom: 1,
  cpuIdle: 0.5,
  vramHeadroom: 0.5,
  spread: 0.5,
};

/** The scoring terms (Nomad's rank.go), each in 0..1. */
export const SCORES: ReadonlyArray<[name: keyof ScoreWeights, score: (n: NodeState, need: Need) => number]> = [
  [
    'policy',
    (n, need) => {
      const preferred = need.request.policy === 'cloud_preferred' ? 'cloud' : 'local';
      return n.snapshot.advert.location === preferred ? 1 : 0;
    },
  ],
  [
    'modelLoaded',
    (n, need) =>
      need.model && findModel(n.snapshot.advert, need.model, need.request.requires.provider)?.loaded ? 1 : 0,
  ],
  ['slotHeadroom', (n) => (n.snapshot.advert.slots.total > 0 ? n.freeSlots / n.snapshot.advert.slots.total : 0)],
  ['cpuIdle', (n) => 1 - n.snapshot.advert.cpu.load],
  [
    'vramHeadroom',
    (n) => {
      const total = n.snapshot.advert.gpus.reduce((s, g) => s + g.vramTotal, 0);
      return total > 0 ? n.freeVram.reduce((s, v) => s + v, 0) / total : 0;
    },
  ],
  ['spread', (n) => 1 / (1 + n.placedInBatch)],
];

/**
 * Free slots on a node, by the reconciliation rule that never counts a reservation twice: with `othersBusy`
 * known, our in-flight plus others' work; without it, max(advert's busy, our in-flight), since the advert lags
 * behind our assignments but may also count other coordinators' work.
 */
export function freeSlots(s: Pick<NodeSnapshot, 'advert' | 'inFlight' | 'othersBusy'>): number {
  const { total, busy } = s.advert.slots;
  const reserved = s.othersBusy === undefined ? Math.max(busy, s.inFlight ?? 0) : (s.inFlight ?? 0) + s.othersBusy;
  return Math.max(0, total - reserved);
}

/**
 * A node's capacity for this batch: free slots as above; an in-flight model's VRAM is reserved only while the
 * advert still shows it not loaded (once loaded, the advert's free VRAM already reflects it).
 */
function initialState(s: NodeSnapshot, vramOverhead: number): NodeState {
  const a = s.advert;
  const state: NodeState = {
    snapshot: s,
    freeSlots: freeSlots(s),
    freeVram: a.gpus.map((g) => g.vramFree),
    placedInBatch: 0,
  };
  for (const name of s.inFlightModels ?? []) {
    const model = findModel(a, name);
    if (model) takeVram(state, vramNeed(model, vramOverhead));
  }
  return state;
}

function takeVram(node: NodeState, bytes: number): void {
  if (bytes === 0 || node.freeVram.length === 0) return;
  let best = 0;
  for (let i = 1; i < node.freeVram.length; i++) if (node.freeVram[i]! > node.freeVram[best]!) best = i;
  node.freeVram[best] = Math.max(0, node.freeVram[best]! - bytes);
}

function feasibility(node: NodeState, need: Need): string | undefined {
  for (const [, check] of CHECKS) {
    const why = check(node, need);
    if (why) return why;
  }
  return undefined;
}

function score(node: NodeState, need: Need, weights: ScoreWeights): number {
  let total = 0;
  for (const [name, term] of SCORES) total += weights[name] * term(node, need);
  return total;
}

/** Takes what a placement uses from the node, so the rest of the batch sees it. */
function reserve(node: NodeState, need: Need): void {
  node.freeSlots -= need.request.slots ?? 1;
  node.placedInBatch++;
  if (!need.model) return;
  const model = findModel(node.snapshot.advert, need.model, need.request.requires.provider);
  takeVram(node, model ? vramNeed(model, need.vramOverhead) : 0);
}

function splitByLocation(
  pool: NodeState[],
  preferred: 'local' | 'cloud',
  cache: Map<NodeState[], [NodeState[], NodeState[]]>,
): [NodeState[], NodeState[]] {
  let split = cache.get(pool);
  if (!split) {
    split = [
      pool.filter((n) => n.snapshot.advert.location === 'local'),
      pool.filter((n) => n.snapshot.advert.location !== 'local'),
    ];
    cache.set(pool, split);
  }
  return preferred === 'local' ? split : [split[1], split[0]];
}

/** Nomad's limit iterator: scan a rotating window, score the first `limit` feasible nodes, keep the best. */
function bestOf(pool: NodeState[], need: Need, weights: ScoreWeights, limit: number, cursor: number) {
  let best: NodeState | undefined;
  let bestScore = Number.NEGATIVE_INFINITY;
  let feasibleSeen = 0;
  const start = pool.length > 0 ? cursor % pool.length : 0;
  for (let i = 0; i < pool.length && feasibleSeen < limit; i++) {
    const node = pool[(start + i) % pool.length]!;
    if (feasibility(node, need)) continue;
    feasibleSeen++;
    const s = score(node, need, weights);
    if (s > bestScore || (s === bestScore && best && node.snapshot.advert.nodeId < best.snapshot.advert.nodeId)) {
      best = node;
      bestScore = s;
    }
  }
  return best ? { node: best, score: bestScore } : undefined;
}

/** "0 of 5 nodes fit: 3 lack model qwen3:32b, 2 have 6.0 GB VRAM free, need 20 GB". */
export function explain(total: number, reasons: Map<string, number>): string {
  if (total === 0) return '0 nodes in the mesh can take work';
  const parts = [...reasons].sort((a, b) => b[1] - a[1]).map(([why, count]) => `${count} ${why}`);
  return `0 of ${total} node${total === 1 ? '' : 's'} fit: ${parts.join(', ')}`;
}

/**
 * Places a batch of actions: for each, the feasible nodes are scored and the best wins; what it takes is
 * reserved at once so the batch never oversubscribes a node. Deterministic for the same inputs (ties go to
 * the lower node id). Scans a rotating window and stops after `candidateLimit` feasible nodes, so a placement
 * costs O(limit) on a large mesh, not O(nodes), while the rotation spreads work.
 */
export function placeActions(nodes: NodeSnapshot[], requests: PlacementRequest[], options: SchedulerOptions = {}) {
  const weights = { ...DEFAULT_SCORE_WEIGHTS, ...options.weights };
  const vramOverhead = options.vramOverhead ?? 1.2;
  const states = nodes
    .map((n) => initialState(n, vramOverhead))
    .sort((a, b) => (a.snapshot.advert.nodeId < b.snapshot.advert.nodeId ? -1 : 1));
  const limit = options.candidateLimit ?? Math.max(2, Math.ceil(Math.log2(Math.max(2, states.length))));
  const byModel = new Map<string, NodeState[]>();
  const placements: Placement[] = [];
  const waiting: Waiting[] = [];
  const locationPools = new Map<NodeState[], [NodeState[], NodeState[]]>();
  let cursor = 0;
  for (const request of requests) {
    const need: Need = { request, vramOverhead };
    if (request.kind === 'llm' && request.requires.model) need.model = request.requires.model;
    // Only nodes that serve the model can take an llm action that names one: index them once per model.
    let pool = states;
    if (need.model) {
      const key = `${normaliseModelName(need.model)}|${request.requires.provider ?? ''}`;
      let list = byModel.get(key);
      if (!list) {
        list = states.filter((s) => findModel(s.snapshot.advert, need.model!, request.requires.provider));
        byModel.set(key, list);
      }
      pool = list;
    }
    // Preferred-location nodes first: a feasible one always beats any other (policy dominates the score).
    const preferred = request.policy === 'cloud_preferred' ? 'cloud' : 'local';
    const [primary, secondary] = splitByLocation(pool, preferred, locationPools);
    let chosen = bestOf(primary, need, weights, limit, cursor);
    if (!chosen) chosen = bestOf(secondary, need, weights, limit, cursor);
    const best = chosen?.node;
    const bestScore = chosen?.score ?? 0;
    cursor++;
    if (!best) {
      const reasons = new Map<string, number>();
      const filtered: Record<string, number> = {};
      if (need.model && pool.length < states.length) {
        const lacking = states.length - pool.length;
        reasons.set(
          `lack model ${need.model}${request.requires.provider ? ` from ${request.requires.provider}` : ''}`,
          lacking,
        );
        filtered.model = lacking;
      }
      for (const node of pool) {
        for (const [name, check] of CHECKS) {
          const why = check(node, need);
          if (!why) continue;
          reasons.set(why, (reasons.get(why) ?? 0) + 1);
          filtered[name] = (filtered[name] ?? 0) + 1;
          break;
        }
      }
      waiting.push({ actionId: request.actionId, explanation: explain(states.length, reasons), filtered });
      continue;
    }
    reserve(best, need);
    const placement: Placement = { actionId: request.actionId, nodeId: best.snapshot.advert.nodeId, score: bestScore };
    if (need.model) placement.model = need.model;
    placements.push(placement);
  }
  return { placements, waiting };
}
