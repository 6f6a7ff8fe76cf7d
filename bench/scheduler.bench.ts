// Placement throughput on one core, and model score / choice latency.
import { type Advert, type ModelInfo, sampleAdvert } from '@hermes-mesh/protocol';
import {
  chooseModel,
  type NodeSnapshot,
  type PlacementRequest,
  placeActions,
  rankMeshModels,
  scoreModel,
} from '@hermes-mesh/scheduler';
import { percentile, report } from './report.js';

const MODELS = ['llama3.1:8b', 'qwen2.5:7b', 'qwen2.5:32b', 'llama3.3:70b', 'phi4:14b', 'gemma2:9b'];

function model(name: string, loaded: boolean): ModelInfo {
  return {
    name,
    provider: 'ollama',
    endpoint: 'http://x',
    loaded,
    sizeBytes: 5e9,
    vramBytes: 0,
    quant: 'Q4_K_M',
    family: '',
    parameterSize: '',
    ctx: 8192,
  };
}

function mesh(n: number): NodeSnapshot[] {
  return Array.from({ length: n }, (_, i) => {
    const advert: Advert = sampleAdvert({
      nodeId: `node-${String(i).padStart(6, '0')}`,
      name: `n${i}`,
      slots: { total: 16, busy: i % 5 },
      location: i % 3 === 0 ? 'cloud' : 'local',
      models: MODELS.filter((_, m) => (i + m) % 3 === 0).map((name, m) => model(name, m % 2 === 0)),
    });
    return { advert, alive: i % 50 !== 0 };
  });
}

function requests(n: number): PlacementRequest[] {
  return Array.from({ length: n }, (_, i) =>
    i % 4 === 0
      ? { actionId: `a${i}`, kind: 'llm', policy: 'local_preferred', requires: { model: MODELS[i % MODELS.length]! } }
      : { actionId: `a${i}`, kind: 'builtin', policy: i % 2 ? 'local_preferred' : 'cloud_preferred', requires: {} },
  );
}

for (const [nodes, actions] of [
  [1_000, 10_000],
  [10_000, 10_000],
] as const) {
  const snapshot = mesh(nodes);
  const batch = requests(actions);
  placeActions(snapshot, batch); // warm-up
  const rounds = 5;
  let placed = 0;
  const t0 = performance.now();
  for (let r = 0; r < rounds; r++) placed += placeActions(snapshot, batch).placements.length;
  const seconds = (performance.now() - t0) / 1000;
  report('scheduler', `placements_per_s_${nodes}_nodes`, (actions * rounds) / seconds, 'placements/s', {
    nodes,
    pending: actions,
    placed_share: placed / (actions * rounds),
    goal: nodes === 1_000 ? '>= 50000/s' : '>= 10000/s',
    anchor: 'kube-scheduler ~810 pods/s at 5000 nodes; Nomad C1M ~3750/s',
  });
}

const adverts = mesh(200).map((s) => s.advert);
const lookups: number[] = [];
for (let i = 0; i < 20_000; i++) {
  const t = performance.now();
  scoreModel(MODELS[i % MODELS.length]!);
  lookups.push(performance.now() - t);
}
// The ranking changes only when adverts do: the coordinator keeps it; choice per action then reads it.
const ranks: number[] = [];
for (let i = 0; i < 500; i++) {
  const t = performance.now();
  rankMeshModels(adverts);
  ranks.push(performance.now() - t);
}
const ranked = rankMeshModels(adverts);
const choices: number[] = [];
for (let i = 0; i < 20_000; i++) {
  const t = performance.now();
  chooseModel({ ranked, complexity: i % 2 ? 'medium' : 'high' });
  choices.push(performance.now() - t);
}
ranks.sort((a, b) => a - b);
report('scheduler', 'rank_mesh_models_200_nodes_p50', percentile(ranks, 50) * 1000, 'us', {
  note: 'once per advert change',
});
lookups.sort((a, b) => a - b);
choices.sort((a, b) => a - b);
report('scheduler', 'model_score_lookup_p50', percentile(lookups, 50) * 1000, 'us', { goal: '< 50 us' });
report('scheduler', 'model_choice_p50', percentile(choices, 50) * 1000, 'us', {
  goal: '< 50 us (request asked < 5 ms)',
});
report('scheduler', 'model_choice_p99', percentile(choices, 99) * 1000, 'us');
