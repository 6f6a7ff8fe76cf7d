import { sampleAdvert } from '@hermes-mesh/protocol';
import { describe, expect, it } from 'vitest';
import { chooseModel, rankMeshModels } from './choose.js';
import {
  capabilityScore,
  estimateComplexity,
  lookupModel,
  normaliseModelName,
  parameterBillions,
  REGISTRY,
  scoreFromSize,
  scoreModel,
  tierOf,
} from './registry.js';

describe('model registry', () => {
  it('holds 20+ models, each with a source and at least two published scores', () => {
    expect(REGISTRY.length).toBeGreaterThanOrEqual(20);
    for (const m of REGISTRY) {
      expect(m.source.length).toBeGreaterThan(10);
      expect(Object.keys(m.scores).length).toBeGreaterThanOrEqual(2);
    }
  });

  it('normalises provider spellings to registry names', () => {
    expect(normaliseModelName('llama3.1:70b-instruct-q4_K_M')).toBe('llama3.1:70b');
    expect(normaliseModelName('openai/gpt-4o')).toBe('gpt-4o');
    expect(lookupModel('Qwen/Qwen2.5-72B-Instruct')?.id).toBe('qwen2.5:72b');
    expect(lookupModel('qwen2.5:72b-instruct-q4_K_M')?.id).toBe('qwen2.5:72b');
  });

  it('scores with the default weights 0.30/0.35/0.20/0.15 and renormalises missing benchmarks', () => {
    const gpt4o = lookupModel('gpt-4o')!;
    expect(capabilityScore(gpt4o).score).toBeCloseTo(0.3 * 0.887 + 0.35 * 0.902 + 0.2 * 0.766 + 0.15 * 0.536, 6);
    const r1 = lookupModel('deepseek-r1')!;
    const { score, missing } = capabilityScore(r1);
    expect(missing).toEqual(['humaneval']);
    expect(score).toBeCloseTo((0.3 * 0.908 + 0.2 * 0.973 + 0.15 * 0.715) / 0.65, 6);
    expect(scoreModel('deepseek-r1').reason).toMatch(/no humaneval published/);
  });

  it.each([
    [0.9, 'frontier'],
    [0.85, 'frontier'],
    [0.8, 'advanced'],
    [0.75, 'advanced'],
    [0.7, 'mid'],
    [0.6, 'mid'],
    [0.59, 'light'],
  ])('tier of %s is %s', (score, tier) => expect(tierOf(score)).toBe(tier));

  it('estimates unknown models by size (interpolated on log params), family, reasoning level, and says which rule', () => {
    expect(scoreFromSize(8)).toBe(0.7);
    expect(scoreFromSize(70)).toBeCloseTo(0.8, 6);
    expect(scoreFromSize(400)).toBeCloseTo(0.85, 6);
    expect(scoreFromSize(1)).toBe(0.7);
    expect(scoreFromSize(2000)).toBe(0.85);
    expect(scoreFromSize(Math.sqrt(8 * 70))).toBeCloseTo(0.75, 6);
    expect(scoreModel('mystery-model:13b')).toMatchObject({ source: 'size', reason: 'size rule: 13B parameters' });
    expect(scoreModel('qwen2.5:14b')).toMatchObject({ source: 'family' });
    expect(scoreModel('house-model', { reasoning: 'high' })).toMatchObject({ source: 'reasoning', score: 0.85 });
    expect(scoreModel('house-model', { reasoning: 'low' }).score).toBe(0.55);
    expect(scoreModel('house-model')).toMatchObject({ source: 'default', tier: 'light' });
    expect(parameterBillions('mixtral:8x7b')).toBe(56);
    expect(parameterBillions('8.2B')).toBe(8.2);
  });

  it.each([
    ['What is 2+2?', 'low'],
    ['Summarize this paragraph for me', 'medium'],
    ['Refactor the auth module and debug the session bug', 'high'],
    ['Prove the theorem formally', 'expert'],
  ])('complexity of "%s" is %s', (text, level) => expect(estimateComplexity(text)).toBe(level));
});

describe('model choice', () => {
  const model = (name: string, loaded: boolean) => ({
    name,
    provider: 'ollama' as const,
    endpoint: 'http://x',
    loaded,
    sizeBytes: 1,
    vramBytes: 0,
    quant: '',
    family: '',
    parameterSize: '',
    ctx: 0,
  });
  const adverts = [
    sampleAdvert({ nodeId: 'a', name: 'a', models: [model('llama3.1:8b', true), model('llama3.3:70b', false)] }),
    sampleAdvert({ nodeId: 'b', name: 'b', models: [model('qwen2.5:72b', false), model('llama3.1:8b', false)] }),
  ];

  it('ranks the mesh models with where each is loaded and the source of its score', () => {
    const ranked = rankMeshModels(adverts);
    expect(ranked.map((r) => r.name)).toEqual(['qwen2.5:72b', 'llama3.3:70b', 'llama3.1:8b']);
    expect(ranked[2]).toMatchObject({ loadedOn: ['a'], availableOn: ['b'], source: 'registry' });
  });

  it('picks the best capable model, preferring loaded ones; overrides win; an unknown model is an error', () => {
    expect(chooseModel({ adverts, complexity: 'low' })).toMatchObject({ ok: true, model: 'llama3.1:8b', loaded: true });
    expect(chooseModel({ adverts, complexity: 'high' })).toMatchObject({
      ok: true,
      model: 'qwen2.5:72b',
      loaded: false,
    });
    expect(chooseModel({ adverts, complexity: 'expert' })).toMatchObject({
      ok: false,
      error: expect.stringMatching(/no model scores 0.85/),
    });
    expect(chooseModel({ adverts, complexity: 'low', model: 'qwen2.5:72b' })).toMatchObject({
      ok: true,
      model: 'qwen2.5:72b',
      reason: 'requested',
    });
    expect(chooseModel({ adverts, complexity: 'low', model: 'gpt-9' })).toMatchObject({
      ok: false,
      error: expect.stringMatching(/no live node serves model gpt-9/),
    });
  });
});
