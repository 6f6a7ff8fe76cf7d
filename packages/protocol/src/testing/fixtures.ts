import type { Advert, ModelInfo } from '../schema.js';

/** A realistic advert for tests and benchmarks: a GPU box serving two Ollama models. */
export function sampleAdvert(overrides: Partial<Advert> = {}): Advert {
  const model = (name: string, loaded: boolean, sizeBytes: number): ModelInfo => ({
    name,
    provider: 'ollama',
    endpoint: 'http://127.0.0.1:11434',
    loaded,
    sizeBytes,
    vramBytes: loaded ? sizeBytes : 0,
    quant: 'Q4_K_M',
    family: 'qwen3',
    parameterSize: '8.2B',
    ctx: 40_960,
  });
  return {
    nodeId: '12D3KooWRBy97UB99e3J6hiPesre1MZeuNQvfan4gBziswrRJsNK',
    name: 'gpu-box-1',
    labels: { zone: 'home', owner: 'alice' },
    tier: 'COMPUTE_HOST',
    cpu: { cores: 16, model: 'AMD Ryzen 9 7950X', load: 0.12 },
    mem: { total: 64 * 2 ** 30, free: 40 * 2 ** 30 },
    gpus: [
      {
        index: 0,
        name: 'NVIDIA GeForce RTX 4090',
        vendor: 'NVIDIA',
        uuid: 'GPU-5a7a7c4e-1d5e-8f0b-2c44-9c3a0e6b1f2d',
        vramTotal: 24_564 * 2 ** 20,
        vramFree: 18_000 * 2 ** 20,
        util: 0.07,
        temperatureC: 41,
      },
    ],
    models: [model('qwen3:8b', true, 5_200_000_000), model('llama3.1:70b', false, 42_000_000_000)],
    slots: { total: 4, busy: 1 },
    location: 'local',
    draining: false,
    version: '0.1.0',
    addrs: ['/ip4/127.0.0.1/tcp/40123'],
    startedAt: 1_764_000_000_000,
    seq: 42,
    ...overrides,
  };
}
