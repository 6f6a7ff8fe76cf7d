import { type Advert, type ModelInfo, sampleAdvert } from '@hermes-mesh/protocol';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { freeSlots, type NodeSnapshot, type PlacementRequest, placeActions } from './pipeline.js';

const GiB = 2 ** 30;

function model(name: string, sizeBytes: number, loaded = false): ModelInfo {
  return {
    name,
    provider: 'ollama',
    endpoint: 'http://127.0.0.1:11434',
    loaded,
    sizeBytes,
    vramBytes: 0,
    quant: '',
    family: '',
    parameterSize: '',
    ctx: 0,
  };
}

function node(id: string, over: Partial<Advert> = {}, snapshot: Partial<NodeSnapshot> = {}): NodeSnapshot {
  return {
    advert: sampleAdvert({
      nodeId: id,
      name: id,
      models: [],
      gpus: [],
      slots: { total: 4, busy: 0 },
      location: 'local',
      ...over,
    }),
    alive: true,
    ...snapshot,
  };
}

const gpu = (vramFree: number, vramTotal = 24 * GiB) => ({
  index: 0,
  name: 'GPU',
  vendor: 'NVIDIA',
  vramTotal,
  vramFree,
  util: 0,
});

function request(id: string, over: Partial<PlacementRequest> = {}): PlacementRequest {
  return { actionId: id, kind: 'builtin', policy: 'local_preferred', requires: {}, ...over };
}

describe('feasibility checks and explanations', () => {
  it.each([
    ['down nodes', [node('a', {}, { alive: false })], request('x'), '0 of 1 node fit: 1 are down or suspect'],
    ['suspect nodes', [node('a', {}, { suspect: true })], request('x'), '0 of 1 node fit: 1 are down or suspect'],
    ['draining', [node('a', { draining: true })], request('x'), '0 of 1 node fit: 1 are draining'],
    ['no slot', [node('a', { slots: { total: 2, busy: 2 } })], request('x'), '0 of 1 node fit: 1 have no free slot'],
    [
      'in-flight fills the slots',
      [node('a', { slots: { total: 2, busy: 0 } }, { inFlight: 2 })],
      request('x'),
      '0 of 1 node fit: 1 have no free slot',
    ],
    [
      'tier',
      [node('a', { tier: 'LITE' })],
      request('x', { requires: { minTier: 'FULL' } }),
      '0 of 1 node fit: 1 are below tier FULL',
    ],
    [
      'labels',
      [node('a', { labels: { zone: 'b' } })],
      request('x', { requires: { labels: { zone: 'a' } } }),
      '0 of 1 node fit: 1 lack label zone=a',
    ],
  ])('%s', (_name, nodes, req, explanation) => {
    const { placements, waiting } = placeActions(nodes, [req]);
    expect(placements).toEqual([]);
    expect(waiting[0]!.explanation).toBe(explanation);
  });

  it('explains a mixed mesh the way a person reads it', () => {
    const nodes = [
      node('a'),
      node('b'),
      node('c'),
      node('d', { models: [model('qwen3:32b', 20e9)], gpus: [gpu(6e9)] }),
      node('e', { models: [model('qwen3:32b', 20e9)], gpus: [gpu(6e9)] }),
    ];
    const { waiting } = placeActions(nodes, [request('x', { kind: 'llm', requires: { model: 'qwen3:32b' } })], {
      vramOverhead: 1,
    });
    expect(waiting[0]!.explanation).toBe(
      '0 of 5 nodes fit: 3 lack model qwen3:32b, 2 have 6.0 GB VRAM free, need 20 GB',
    );
    expect(waiting[0]!.filtered).toEqual({ model: 3, vram: 2 });
  });

  it('a loaded model needs no more VRAM; CPU offload lets a model spill into RAM when asked', () => {
    const loaded = node('a', { models: [model('m:7b', 20e9, true)], gpus: [gpu(1e9)] });
    expect(
      placeActions([loaded], [request('x', { kind: 'llm', requires: { model: 'm:7b' } })]).placements,
    ).toHaveLength(1);
    const spill = node('b', { models: [model('m:7b', 20e9)], gpus: [gpu(1e9)], mem: { total: 64e9, free: 40e9 } });
    const ask = (cpuOffload: boolean) =>
      placeActions([spill], [request('x', { kind: 'llm', requires: { model: 'm:7b', cpuOffload } })]);
    expect(ask(false).placements).toHaveLength(0);
    expect(ask(true).placements).toHaveLength(1);
  });

  it("matches a per-call provider on the node's provider name (hosted APIs) or its API type", () => {
    const hosted = { ...model('demo-model', 0, true), provider: 'openai' as const, providerName: 'demo' };
    const nodes = [node('a', { models: [hosted] })];
    const ask = (provider: string) =>
      placeActions(nodes, [request('x', { kind: 'llm', requires: { model: 'demo-model', provider } })]);
    expect(ask('demo').placements).toHaveLength(1);
    expect(ask('openai').placements).toHaveLength(1);
    expect(ask('ollama').waiting[0]!.explanation).toBe('0 of 1 node fit: 1 lack model demo-model from ollama');
  });

  it('prefers the node with the model already loaded', () => {
    const nodes = [
      node('a', { models: [model('m:7b', 5e9)], gpus: [gpu(20e9)] }),
      node('b', { models: [model('m:7b', 5e9, true)], gpus: [gpu(20e9)] }),
    ];
    expect(
      placeActions(nodes, [
        request('x', { kind: 'llm', requires: { model: 'llama3:70b'.replace('llama3:70b', 'm:7b') } }),
      ]).placements[0]!.nodeId,
    ).toBe('b');
  });
});

const arbNode = fc
  .record({
    id: fc.integer({ min: 0, max: 999 }),
    total: fc.integer({ min: 0, max: 4 }),
    busy: fc.integer({ min: 0, max: 4 }),
    inFlight: fc.integer({ min: 0, max: 4 }),
    vram: fc.integer({ min: 0, max: 40 }),
    hasModel: fc.boolean(),
    cloud: fc.boolean(),
    alive: fc.boolean(),
  })
  .map((n) =>
    node(
      `n${n.id}`,
      {
        slots: { total: n.total, busy: Math.min(n.busy, n.total) },
        gpus: [gpu(n.vram * 1e9, 48e9)],
        models: n.hasModel ? [model('m:7b', 8e9)] : [],
        location: n.cloud ? 'cloud' : 'local',
      },
      { inFlight: n.inFlight, alive: n.alive },
    ),
  );
const arbNodes = fc.uniqueArray(arbNode, { selector: (n) => n.advert.nodeId, minLength: 1, maxLength: 12 });
const arbRequests = fc
  .array(
    fc.record({ llm: fc.boolean(), cloud: fc.boolean() }).map((r) =>
      request('r', {
        kind: r.llm ? 'llm' : 'builtin',
        policy: r.cloud ? 'cloud_preferred' : 'local_preferred',
        requires: r.llm ? { model: 'm:7b' } : {},
      }),
    ),
    { maxLength: 30 },
  )
  .map((requests) => requests.map((r, i) => ({ ...r, actionId: `r${i}` })));

describe('free slots', () => {
  it('without others’ work known, trust the larger of the advert’s busy count and our in-flight', () => {
    expect(freeSlots(node('n', { slots: { total: 8, busy: 6 } }, { inFlight: 2 }))).toBe(2);
    expect(freeSlots(node('n', { slots: { total: 8, busy: 1 } }, { inFlight: 5 }))).toBe(3);
  });

  it('with others’ work known, a stale advert does not hide the slots our finished actions freed', () => {
    // The advert said 8 busy, all ours; 6 of ours have finished since: 6 slots are free now.
    expect(freeSlots(node('n', { slots: { total: 8, busy: 8 } }, { inFlight: 2, othersBusy: 0 }))).toBe(6);
    expect(freeSlots(node('n', { slots: { total: 8, busy: 8 } }, { inFlight: 2, othersBusy: 5 }))).toBe(1);
    expect(freeSlots(node('n', { slots: { total: 8, busy: 8 } }, { inFlight: 6, othersBusy: 5 }))).toBe(0);
  });
});

describe('placement properties', () => {
  it('never exceeds a node’s free slots or free VRAM, counting reservations across the batch', () => {
    fc.assert(
      fc.property(arbNodes, arbRequests, (nodes, requests) => {
        const { placements } = placeActions(nodes, requests, { vramOverhead: 1 });
        for (const n of nodes) {
          const mine = placements.filter((p) => p.nodeId === n.advert.nodeId);
          const free = n.advert.slots.total - Math.max(n.advert.slots.busy, n.inFlight ?? 0);
          expect(mine.length).toBeLessThanOrEqual(Math.max(0, free));
          const vramUsed = mine.filter((p) => p.model).length * 8e9;
          expect(vramUsed).toBeLessThanOrEqual(n.advert.gpus[0]!.vramFree);
          if (mine.length > 0) expect(n.alive).toBe(true);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('a policy-preferred feasible node always wins over a non-preferred one with equal other scores', () => {
    fc.assert(
      fc.property(fc.boolean(), fc.integer({ min: 1, max: 8 }), (cloudPolicy, others) => {
        const same = { slots: { total: 4, busy: 0 }, cpu: { cores: 8, model: 'x', load: 0.1 } };
        const preferredLocation = cloudPolicy ? 'cloud' : 'local';
        const other = cloudPolicy ? 'local' : 'cloud';
        const nodes = [
          ...Array.from({ length: others }, (_, i) => node(`a${i}`, { ...same, location: other })),
          node('z-preferred', { ...same, location: preferredLocation }),
        ];
        const { placements } = placeActions(nodes, [
          request('x', { policy: cloudPolicy ? 'cloud_preferred' : 'local_preferred' }),
        ]);
        expect(placements[0]!.nodeId).toBe('z-preferred');
      }),
      { numRuns: 100 },
    );
  });

  it('same snapshot -> same decisions', () => {
    fc.assert(
      fc.property(arbNodes, arbRequests, (nodes, requests) => {
        const a = placeActions(structuredClone(nodes), requests);
        const b = placeActions(structuredClone(nodes), requests);
        expect(b).toEqual(a);
      }),
      { numRuns: 200 },
    );
  });

  it('reserves the VRAM of in-flight models across batches until the advert shows them loaded', () => {
    const req = request('x', { kind: 'llm', requires: { model: 'm:7b' } });
    const base = { models: [model('m:7b', 10e9)], gpus: [gpu(15e9)] };
    const busy = node('a', base, { inFlight: 1, inFlightModels: ['m:7b'] });
    expect(placeActions([busy], [req], { vramOverhead: 1 }).waiting[0]!.explanation).toBe(
      '0 of 1 node fit: 1 have 5.0 GB VRAM free, need 10 GB',
    );
    // The advert now shows the model loaded (its VRAM already counted as used): no second reservation.
    const loaded = node(
      'a',
      { models: [model('m:7b', 10e9, true)], gpus: [gpu(5e9)] },
      { inFlight: 1, inFlightModels: ['m:7b'] },
    );
    expect(placeActions([loaded], [req], { vramOverhead: 1 }).placements).toHaveLength(1);
  });
});
