import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { decomposeGoal } from './decompose.js';
import { savePlan } from './save.js';
import { parsePlan } from './validate.js';

interface ChatRequest {
  model: string;
  messages: { role: string; content: string }[];
  response_format: { type: string; json_schema: { name: string; strict: boolean; schema: Record<string, unknown> } };
}

/** An OpenAI-compatible endpoint that answers from a script and records what it was asked. */
class ScriptedModel {
  readonly requests: { body: ChatRequest; authorization?: string }[] = [];
  replies: { status?: number; content: string }[] = [];
  private readonly server: Server = createServer((req, res) => void this.answer(req, res));

  async start(): Promise<string> {
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/v1`;
  }

  stop(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private async answer(req: IncomingMessage, res: import('node:http').ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    if (req.url !== '/v1/chat/completions' || req.method !== 'POST') {
      res.writeHead(404).end('not found');
      return;
    }
    this.requests.push({
      body: JSON.parse(Buffer.concat(chunks).toString()),
      authorization: req.headers.authorization,
    });
    const reply = this.replies.shift() ?? { status: 500, content: 'script exhausted' };
    if (reply.status) {
      res.writeHead(reply.status).end(reply.content);
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ choices: [{ index: 0, message: { role: 'assistant', content: reply.content } }] }));
  }
}

/** A plan as a strict-mode model writes it: every optional field present, as null. */
function modelPlan(afterOfFetch: string[] | null) {
  const action = (id: string, after: string[] | null, params: unknown) => ({
    id,
    kind: 'builtin',
    description: null,
    after,
    params,
    timeout: '30s',
    retries: null,
    model: null,
    provider: null,
    complexity: null,
    minTier: null,
  });
  return {
    goal: 'Count the words of the notes and fingerprint them',
    policy: null,
    defaults: null,
    flows: [
      {
        id: 'collect',
        persona: 'Archivist',
        description: null,
        actions: [
          action('fetch', afterOfFetch, { name: 'concat', input: { file: 'corpus/mesh-notes.txt' }, ms: null }),
        ],
      },
      {
        id: 'analyse',
        persona: 'Linguist',
        description: 'counts and hashes',
        actions: [
          action('count', ['fetch'], { name: 'wordcount', input: { fromActions: ['fetch'] }, ms: null }),
          action('hash', ['count'], { name: 'sha256', input: { fromActions: ['count'] }, ms: null }),
        ],
      },
    ],
  };
}

const model = new ScriptedModel();
let baseUrl: string;
const dir = mkdtempSync(join(tmpdir(), 'planner-decompose-'));

beforeAll(async () => {
  baseUrl = await model.start();
});
afterAll(async () => {
  await model.stop();
  rmSync(dir, { recursive: true, force: true });
});
afterEach(() => {
  model.requests.length = 0;
  model.replies = [];
});

describe('decomposeGoal', () => {
  it('retries with the problems of an invalid plan, then saves a valid one that re-parses identically', async () => {
    model.replies = [
      { content: JSON.stringify(modelPlan(['hash'])) }, // fetch -> hash -> count -> fetch: a cycle
      { content: JSON.stringify(modelPlan(null)) },
    ];
    const result = await decomposeGoal('count and fingerprint the notes', {
      baseUrl,
      apiKey: 'sk-test',
      model: 'planner:7b',
      personas: ['Archivist', 'Linguist'],
    });

    expect(result).toMatchObject({ ok: true, attempts: 2 });
    if (!result.ok) return;
    expect(model.requests).toHaveLength(2);

    const [first, second] = model.requests.map((r) => r.body);
    expect(model.requests[0]!.authorization).toBe('Bearer sk-test');
    expect(first!.model).toBe('planner:7b');
    expect(first!.response_format.type).toBe('json_schema');
    expect(first!.response_format.json_schema).toMatchObject({ name: 'hermes_plan', strict: true });
    expect(first!.messages.map((m) => m.role)).toEqual(['system', 'user']);
    expect(first!.messages[0]!.content).toContain('wordcount');
    expect(first!.messages[0]!.content).toContain('Archivist, Linguist');

    // The retry carries the whole conversation: the bad plan and what was wrong with it.
    expect(second!.messages.map((m) => m.role)).toEqual(['system', 'user', 'assistant', 'user']);
    const feedback = second!.messages[3]!.content;
    expect(feedback).toContain(
      '- /flows/1/actions/0/after/0 (line 33): dependency cycle: fetch -> hash -> count -> fetch',
    );
    // The line is the one in the plan text fed back, so the model can find it.
    const echoed = second!.messages[2]!.content.split('\n');
    expect(echoed.slice(31, 33).map((l) => l.trim())).toEqual(['"after": [', '"fetch"']);
    expect(echoed.join('\n')).not.toContain('null');
    expect(feedback).toContain('dependency cycle: fetch -> hash -> count -> fetch');

    expect(result.plan.flows[0]!.actions[0]).toEqual({
      id: 'fetch',
      kind: 'builtin',
      timeout: '30s',
      params: { name: 'concat', input: { file: 'corpus/mesh-notes.txt' } },
    });
    const path = join(dir, 'plan.yaml');
    await savePlan(result.plan, path);
    expect(parsePlan(readFileSync(path, 'utf8'), path)).toEqual(result.plan);
  });

  it("gives up after maxAttempts with the last reply's problems", async () => {
    model.replies = [{ content: 'here is your plan!' }, { content: JSON.stringify({ goal: 'g', flows: [] }) }];
    const result = await decomposeGoal('anything', { baseUrl, model: 'm', maxAttempts: 2 });
    expect(result).toMatchObject({ ok: false, attempts: 2 });
    if (result.ok) return;
    expect(result.problems.map((p) => p.field)).toEqual(['/flows']);
    expect(model.requests[1]!.body.messages[3]!.content).toContain('the reply is not JSON');
  });

  it('stops at once when the endpoint refuses', async () => {
    model.replies = [{ status: 401, content: '{"error":"bad key"}' }];
    const result = await decomposeGoal('anything', { baseUrl, model: 'm' });
    expect(result).toMatchObject({ ok: false, attempts: 1 });
    if (result.ok) return;
    expect(result.problems[0]!.message).toContain('answered 401: {"error":"bad key"}');
    expect(model.requests).toHaveLength(1);
  });

  it('rejects when aborted', async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(decomposeGoal('anything', { baseUrl, model: 'm', signal: controller.signal })).rejects.toThrow();
  });
});
