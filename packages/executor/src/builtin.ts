import { Worker } from 'node:worker_threads';
import type { BuiltinParams } from '@hermes-mesh/protocol';
import { type DependencyInputs, InputError, readInput } from './inputs.js';
import { outputOf, permanent, type RunOptions, type RunResult } from './types.js';

/**
 * The work a pool thread does. Plain JavaScript evaluated in the worker, so it runs the same from sources
 * (tests) and from the build; it needs nothing but node:crypto and node:zlib.
 */
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const zlib = require('node:zlib');
function wordcount(text) {
  const words = text.toLowerCase().match(/[\\p{L}\\p{N}']+/gu) || [];
  const counts = new Map();
  for (const w of words) counts.set(w, (counts.get(w) || 0) + 1);
  const top = [...counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, 10);
  const lines = text.length === 0 ? 0 : text.split('\\n').length - (text.endsWith('\\n') ? 1 : 0);
  return { lines, words: words.length, chars: [...text].length, top };
}
parentPort.on('message', ({ id, name, data }) => {
  try {
    const bytes = Buffer.from(data);
    let value;
    if (name === 'sha256') value = { sha256: createHash('sha256').update(bytes).digest('hex'), bytes: bytes.length };
    else if (name === 'gzip') { const z = zlib.gzipSync(bytes); value = { base64: z.toString('base64'), bytes: bytes.length, gzipBytes: z.length }; }
    else if (name === 'gunzip') { const t = zlib.gunzipSync(bytes); value = { text: t.toString('utf8'), bytes: t.length }; }
    else if (name === 'wordcount') value = wordcount(bytes.toString('utf8'));
    else throw new Error('not a pool builtin: ' + name);
    parentPort.postMessage({ id, value });
  } catch (err) {
    parentPort.postMessage({ id, error: String(err && err.message || err) });
  }
});
`;

const POOL_BUILTINS = new Set(['sha256', 'gzip', 'gunzip', 'wordcount']);

interface Job {
  resolve: (v: { value?: unknown; error?: string }) => void;
}

/** A fixed set of worker threads for CPU-heavy builtins, so they never stall the node's event loop. */
export class WorkerPool {
  private readonly workers: Worker[] = [];
  private readonly jobs = new Map<number, Job>();
  private next = 0;
  private turn = 0;

  constructor(readonly size: number) {}

  private worker(): Worker {
    if (this.workers.length < this.size) {
      const w = new Worker(WORKER_SOURCE, { eval: true });
      w.unref();
      w.on('message', (m: { id: number; value?: unknown; error?: string }) => {
        this.jobs.get(m.id)?.resolve(m);
        this.jobs.delete(m.id);
      });
      w.on('error', (err) => {
        for (const job of this.jobs.values()) job.resolve({ error: `worker failed: ${err.message}` });
        this.jobs.clear();
      });
      this.workers.push(w);
      return w;
    }
    return this.workers[this.turn++ % this.workers.length]!;
  }

  run(name: string, data: Buffer): Promise<{ value?: unknown; error?: string }> {
    const id = this.next++;
    const worker = this.worker();
    return new Promise((resolve) => {
      this.jobs.set(id, { resolve });
      worker.postMessage({ id, name, data });
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.splice(0).map((w) => w.terminate()));
  }
}

function summaryOf(name: string, value: Record<string, unknown>): string {
  switch (name) {
    case 'sha256':
      return `sha256 ${value.sha256} (${value.bytes} bytes)`;
    case 'gzip':
      return `gzip ${value.bytes} -> ${value.gzipBytes} bytes`;
    case 'gunzip':
      return `gunzip -> ${value.bytes} bytes`;
    case 'wordcount':
      return `${value.lines} lines, ${value.words} words, ${value.chars} chars`;
    default:
      return name;
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve(false);
    const timer = setTimeout(() => resolve(true), ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        resolve(false);
      },
      { once: true },
    );
  });
}

/** Runs a builtin: trivial ones inline (a thread round trip would cost more than the work), heavy ones on the pool. */
export async function runBuiltin(
  params: BuiltinParams,
  deps: DependencyInputs,
  roots: string[],
  pool: WorkerPool,
  options: RunOptions,
): Promise<RunResult> {
  if (params.name === 'noop') return outputOf(null, 'noop');
  if (params.name === 'sleep') {
    const ms = params.ms ?? 0;
    const heartbeat = setInterval(() => options.onProgress?.({ kind: 'heartbeat', message: 'sleeping' }), 2_000);
    try {
      const done = await sleep(ms, options.signal);
      return done ? outputOf({ sleptMs: ms }, `slept ${ms} ms`) : permanent('aborted', 'aborted');
    } finally {
      clearInterval(heartbeat);
    }
  }
  let data: Buffer;
  try {
    data = await readInput(params.input, deps, roots);
  } catch (err) {
    if (err instanceof InputError) return permanent('bad-input', err.message);
    return permanent('bad-input', `cannot read input: ${(err as Error).message}`);
  }
  if (params.name === 'concat') return outputOf({ text: data.toString('utf8') }, `concat ${data.length} bytes`);
  if (!POOL_BUILTINS.has(params.name)) return permanent('unknown-builtin', `no builtin ${params.name}`);
  const result = await pool.run(params.name, data);
  if (options.signal.aborted) return permanent('aborted', 'aborted');
  if (result.error !== undefined) return permanent('builtin-failed', `${params.name}: ${result.error}`);
  return outputOf(result.value, summaryOf(params.name, result.value as Record<string, unknown>));
}
