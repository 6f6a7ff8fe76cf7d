import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Assignment } from '@hermes-mesh/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createExecutor, type Executor } from './executor.js';
import { resolveModel } from './llm.js';
import { saveRecipe } from './recipe.js';
import { createFakeOpenAIServer, type FakeOpenAIServer } from './testing/openai-server.js';
import type { RunResult } from './types.js';

const dataDir = mkdtempSync(join(tmpdir(), 'executor-test-'));
const outside = mkdtempSync(join(tmpdir(), 'executor-outside-'));
let fast: FakeOpenAIServer;
let other: FakeOpenAIServer;
let executor: Executor;
const warnings: string[] = [];

beforeAll(async () => {
  fast = await createFakeOpenAIServer();
  other = await createFakeOpenAIServer();
  mkdirSync(join(dataDir, 'inputs'));
  writeFileSync(join(dataDir, 'inputs', 'poem.txt'), 'the quick brown fox\njumps over the lazy dog\nthe end\n');
  writeFileSync(join(outside, 'secret.txt'), 'secret');
  symlinkSync(join(outside, 'secret.txt'), join(dataDir, 'inputs', 'link.txt'));
  executor = createExecutor({
    dataDir,
    providers: [
      { name: 'local', baseUrl: fast.url, defaultModel: 'qwen2.5:7b', models: ['qwen2.5:7b', 'llama3.1:8b'] },
      { name: 'hosted', baseUrl: other.url.replace(/\/v1$/, ''), apiKeyEnv: 'HOSTED_KEY', defaultModel: 'big-model' },
    ],
    delegation: { provider: 'local' },
    env: { HOSTED_KEY: 'sk-hosted-123' },
    allowlist: {
      echo: { path: '/bin/echo', args: { maxCount: 4, pattern: '^[a-z ]+$' } },
      sleep: { path: '/bin/sleep' },
      sh: { path: '/bin/sh', maxOutputBytes: 1000 },
      pwd: { path: '/bin/pwd' },
    },
    logger: { debug() {}, info() {}, warn: (_o, m) => warnings.push(m ?? '') },
  });
});
afterAll(async () => {
  await executor.close();
  await fast.close();
  await other.close();
});

let seq = 0;
function assignment(kind: Assignment['kind'], params: unknown, over: Partial<Assignment> = {}): Assignment {
  return { goalId: 'g1', actionId: `g1.a${++seq}`, epoch: 1, kind, params, timeoutMs: 10_000, ...over };
}

const run = (a: Assignment, signal = new AbortController().signal) => executor.run(a, { signal });
const value = (r: RunResult) => {
  if (!r.ok) throw new Error(r.error);
  return r.output.value as Record<string, unknown>;
};

describe('builtin', () => {
  it('computes real results: sha256 equals node:crypto, gzip round-trips, wordcount counts', async () => {
    const text = 'to be or not to be';
    expect(value(await run(assignment('builtin', { name: 'sha256', input: { text } }))).sha256).toBe(
      createHash('sha256').update(text).digest('hex'),
    );
    const zipped = value(await run(assignment('builtin', { name: 'gzip', input: { text } })));
    const unzipped = value(
      await run(assignment('builtin', { name: 'gunzip', input: { base64: zipped.base64 as string } })),
    );
    expect(unzipped.text).toBe(text);
    const wc = value(await run(assignment('builtin', { name: 'wordcount', input: { file: 'inputs/poem.txt' } })));
    expect(wc).toMatchObject({ lines: 3, words: 11 });
    expect((wc.top as Array<[string, number]>)[0]).toEqual(['the', 3]);
  });

  it('reads dependency outputs passed by the coordinator', async () => {
    const r = await run(
      assignment('builtin', {
        name: 'concat',
        input: { fromActions: ['h', 'w'] },
        inputs: { h: { value: { sha256: 'abc' } }, w: { value: { text: 'words' } } },
      }),
    );
    expect(value(r).text).toBe('abc\nwords');
    const missing = await run(assignment('builtin', { name: 'concat', input: { fromActions: ['nope'] } }));
    expect(missing).toMatchObject({
      ok: false,
      retryable: false,
      error: expect.stringMatching(/no output was passed/),
    });
  });

  it('refuses file paths that escape the data dir, by .. or by symlink', async () => {
    expect(await run(assignment('builtin', { name: 'sha256', input: { file: '../etc/passwd' } }))).toMatchObject({
      ok: false,
      error: expect.stringMatching(/'\.\.' is not allowed/),
    });
    expect(await run(assignment('builtin', { name: 'sha256', input: { file: 'inputs/link.txt' } }))).toMatchObject({
      ok: false,
      error: expect.stringMatching(/leads outside/),
    });
  });

  it('sleep stops promptly on abort; a bad params object is a clear error', async () => {
    const abort = new AbortController();
    const started = Date.now();
    const pending = run(assignment('builtin', { name: 'sleep', ms: 30_000 }), abort.signal);
    setTimeout(() => abort.abort(), 50);
    expect(await pending).toMatchObject({ ok: false, code: 'aborted' });
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(await run(assignment('builtin', { name: 'sha512' }))).toMatchObject({ ok: false, code: 'bad-params' });
  });

  it('runs two heavy builtins at once on the pool', async () => {
    const big = 'x'.repeat(5_000_000);
    const results = await Promise.all(
      [1, 2].map(() => run(assignment('builtin', { name: 'sha256', input: { text: big } }))),
    );
    expect(results.every((r) => r.ok)).toBe(true);
  });
});

describe('exec', () => {
  it('runs an allowlisted command without a shell, in a work dir under the data dir', async () => {
    expect(value(await run(assignment('exec', { command: 'echo', args: ['hello mesh'] }))).stdout).toBe('hello mesh\n');
    const cwd = (value(await run(assignment('exec', { command: 'pwd' }))).stdout as string).trim();
    expect(cwd.startsWith(join(dataDir, 'work'))).toBe(true);
  });

  it('refuses commands and arguments the allowlist does not allow', async () => {
    expect(await run(assignment('exec', { command: 'rm', args: ['-rf', '/'] }))).toMatchObject({
      ok: false,
      retryable: false,
      error: expect.stringMatching(/not on this node's exec allowlist \(echo, sleep, sh, pwd\)/),
    });
    expect(await run(assignment('exec', { command: 'echo', args: ['$(id)'] }))).toMatchObject({
      ok: false,
      code: 'not-allowed',
    });
    expect(await run(assignment('exec', { command: '/bin/echo' }))).toMatchObject({ ok: false, code: 'bad-params' });
  });

  it('caps output, reports exit codes, and times out', async () => {
    expect(await run(assignment('exec', { command: 'sh', args: ['-c', 'yes | head -c 100000'] }))).toMatchObject({
      ok: false,
      code: 'output-cap',
    });
    expect(await run(assignment('exec', { command: 'sh', args: ['-c', 'echo oops >&2; exit 3'] }))).toMatchObject({
      ok: false,
      error: expect.stringMatching(/exited with 3: oops/),
    });
    expect(await run(assignment('exec', { command: 'sleep', args: ['5'] }, { timeoutMs: 200 }))).toMatchObject({
      ok: false,
      code: 'timeout',
      retryable: true,
    });
  });

  it('abort kills the whole process group: the child is gone', async () => {
    const abort = new AbortController();
    const pidFile = join(dataDir, `pid-${Date.now()}`);
    const pending = run(
      assignment('exec', { command: 'sh', args: ['-c', `sleep 30 & echo $! > ${pidFile}; wait`] }),
      abort.signal,
    );
    let pid = 0;
    const deadline = Date.now() + 5_000;
    while (!pid && Date.now() < deadline) {
      try {
        pid = Number((await import('node:fs')).readFileSync(pidFile, 'utf8'));
      } catch {
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    expect(pid).toBeGreaterThan(0);
    abort.abort();
    expect(await pending).toMatchObject({ ok: false, code: 'aborted' });
    const gone = Date.now() + 5_000;
    let alive = true;
    while (alive && Date.now() < gone) {
      try {
        process.kill(pid, 0);
        await new Promise((r) => setTimeout(r, 20));
      } catch {
        alive = false;
      }
    }
    expect(alive).toBe(false);
  });
});

describe('llm', () => {
  it('per-call provider/model/reasoning effort reach the right server with the right key', async () => {
    other.script([{ content: 'from hosted' }]);
    const r = await run(
      assignment('llm', { prompt: 'hi', reasoningEffort: 'high' }, { provider: 'hosted', model: 'big-model' }),
    );
    expect(value(r)).toMatchObject({ text: 'from hosted', provider: 'hosted', model: 'big-model' });
    const req = other.requests.at(-1)!;
    expect(req.path).toBe('/v1/chat/completions');
    expect(req.authorization).toBe('Bearer sk-hosted-123');
    expect(req.body).toMatchObject({ model: 'big-model', reasoning_effort: 'high' });
    fast.script([{ content: 'from local' }]);
    expect(value(await run(assignment('llm', { prompt: 'hi' }))).text).toBe('from local');
    expect(fast.requests.at(-1)!.authorization).toBeUndefined();
  });

  it("a provider-only override uses that provider's default model, with a warning", () => {
    const resolved = resolveModel({
      provider: 'hosted',
      providers: [
        { name: 'local', baseUrl: 'http://a', defaultModel: 'gemma4' },
        { name: 'hosted', baseUrl: 'http://b', defaultModel: 'big-model' },
      ],
      parentModel: 'gemma4',
    });
    expect(resolved).toMatchObject({ ok: true, model: 'big-model', via: 'provider default' });
    expect(resolved.ok && resolved.warnings[0]).toMatch(/using its default model big-model/);
  });

  it('an unknown model or provider fails before any request', async () => {
    const before = fast.requests.length + other.requests.length;
    expect(await run(assignment('llm', { prompt: 'hi' }, { model: 'gpt-9' }))).toMatchObject({
      ok: false,
      retryable: false,
      error: expect.stringMatching(/provider local has no model gpt-9; it serves qwen2.5:7b, llama3.1:8b/),
    });
    expect(await run(assignment('llm', { prompt: 'hi' }, { provider: 'nope' }))).toMatchObject({
      ok: false,
      error: expect.stringMatching(/unknown provider nope/),
    });
    expect(fast.requests.length + other.requests.length).toBe(before);
  });

  it('429 and 5xx are retryable, other 4xx are not; JSON replies are checked', async () => {
    fast.script([
      { status: 429, error: 'slow down' },
      { status: 400, error: 'bad request' },
      { content: 'not json' },
      { content: '{"ok":1}' },
    ]);
    expect(await run(assignment('llm', { prompt: 'a' }))).toMatchObject({
      ok: false,
      retryable: true,
      error: expect.stringMatching(/429: slow down/),
    });
    expect(await run(assignment('llm', { prompt: 'b' }))).toMatchObject({ ok: false, retryable: false });
    expect(await run(assignment('llm', { prompt: 'c', responseFormat: 'json' }))).toMatchObject({
      ok: false,
      code: 'not-json',
    });
    expect(value(await run(assignment('llm', { prompt: 'd', responseFormat: 'json' }))).json).toEqual({ ok: 1 });
    expect(fast.requests.at(-1)!.body.response_format).toEqual({ type: 'json_object' });
  });

  it('tells a delegated model it serves an agent, and passes the conversation history', async () => {
    fast.script([{ content: 'done' }]);
    await run(
      assignment(
        'llm',
        {
          prompt: 'and B?',
          history: [
            { role: 'user', content: 'A is ALPHA' },
            { role: 'assistant', content: 'noted' },
          ],
        },
        { delegation: { depth: 1, maxDepth: 2, allowSubagents: false } },
      ),
    );
    const messages = fast.requests.at(-1)!.body.messages as Array<{ role: string; content: string }>;
    expect(messages[0]!.content).toMatch(/<DELEGATED task g1 \| depth 1 \| subagents NOT ALLOWED>/);
    expect(messages[0]!.content).toMatch(/not talking to a person/);
    expect(messages.slice(1).map((m) => m.content)).toEqual(['A is ALPHA', 'noted', 'and B?']);
  });

  it('gives the model the outputs of the actions it reads, before the prompt', async () => {
    fast.script([{ content: 'critique' }]);
    await run(
      assignment('llm', {
        prompt: 'Critique the summary.',
        input: { fromActions: ['summarize'] },
        inputs: { summarize: { value: { text: 'The nation was conceived in liberty.' } } },
      }),
    );
    const messages = fast.requests.at(-1)!.body.messages as Array<{ role: string; content: string }>;
    expect(messages.at(-1)!.content).toBe(
      'Output of summarize:\nThe nation was conceived in liberty.\n\nCritique the summary.',
    );
  });

  it('abort cancels a slow request', async () => {
    fast.script([{ content: 'late', delayMs: 5_000 }]);
    const abort = new AbortController();
    const pending = run(assignment('llm', { prompt: 'slow' }), abort.signal);
    setTimeout(() => abort.abort(), 50);
    expect(await pending).toMatchObject({ ok: false, code: 'aborted' });
  });
});

describe('recipe', () => {
  it('replays a saved action output with no LLM call; a missing recipe is a clear error', async () => {
    await saveRecipe(dataDir, {
      prompt: { promptId: 'p1', goal: 'say hi', flows: ['f1'], savedAt: 1 },
      flows: [
        {
          promptId: 'p1',
          flowId: 'f1',
          persona: 'Greeter',
          actions: [{ actionId: 'a1', kind: 'llm', dependsOn: [] }],
          savedAt: 1,
        },
      ],
      actions: [
        {
          promptId: 'p1',
          flowId: 'f1',
          actionId: 'a1',
          kind: 'llm',
          params: { prompt: 'hi' },
          output: { value: { text: 'hello' }, summary: 'hello', bytes: 16 },
          savedAt: 1,
        },
      ],
    });
    const before = fast.requests.length + other.requests.length;
    expect(value(await run(assignment('recipe', { promptId: 'p1', flowId: 'f1', actionId: 'a1' })))).toEqual({
      text: 'hello',
    });
    expect(fast.requests.length + other.requests.length).toBe(before);
    expect(await run(assignment('recipe', { promptId: 'p1', flowId: 'f1', actionId: 'zz' }))).toMatchObject({
      ok: false,
      error: expect.stringMatching(/no recipe at .*p1_f1_zz.json/),
    });
  });
});

describe('hard timeout', () => {
  it('a runner past its timeout is reported timed out', async () => {
    const r = await run(assignment('builtin', { name: 'sleep', ms: 5_000 }, { timeoutMs: 100 }));
    expect(r).toMatchObject({ ok: false, retryable: true });
  });
});
