import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';

/** What the fake server answers one request with. */
export interface FakeReply {
  status?: number;
  /** The assistant message content (status 200). */
  content?: string;
  /** An error message (status >= 400), in OpenAI's error shape. */
  error?: string;
  delayMs?: number;
}

export interface RecordedRequest {
  path: string;
  authorization?: string;
  body: Record<string, unknown>;
}

export interface FakeOpenAIServer {
  url: string;
  requests: RecordedRequest[];
  /** Replies used in order; when they run out, `fallback` decides. */
  script(replies: FakeReply[]): void;
  close(): Promise<void>;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => resolve(body));
  });
}

/**
 * An OpenAI-compatible server for tests and the demo: scripted, deterministic replies, configurable latency,
 * and a record of every request (path, key, body). Speaks /v1/chat/completions and /v1/models.
 */
export async function createFakeOpenAIServer(
  options: { models?: string[]; fallback?: (body: Record<string, unknown>) => FakeReply } = {},
): Promise<FakeOpenAIServer> {
  const requests: RecordedRequest[] = [];
  let queue: FakeReply[] = [];
  const fallback =
    options.fallback ??
    ((body) => ({ content: `echo: ${JSON.stringify((body.messages as unknown[])?.at(-1) ?? '')}` }));
  const server = createServer(async (req, res) => {
    const raw = await readBody(req);
    let body: Record<string, unknown> = {};
    try {
      body = raw ? JSON.parse(raw) : {};
    } catch {
      res
        .writeHead(400, { 'content-type': 'application/json' })
        .end(JSON.stringify({ error: { message: 'body is not JSON' } }));
      return;
    }
    const path = req.url ?? '/';
    requests.push({ path, ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}), body });
    if (req.method === 'GET' && path.endsWith('/models')) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ object: 'list', data: (options.models ?? []).map((id) => ({ id, object: 'model' })) }));
      return;
    }
    if (!path.endsWith('/chat/completions')) {
      res.writeHead(404).end();
      return;
    }
    const reply: FakeReply = queue.shift() ?? fallback(body);
    if (reply.delayMs) await new Promise((r) => setTimeout(r, reply.delayMs));
    if (reply.error !== undefined || (reply.status ?? 200) >= 400) {
      res.writeHead(reply.status ?? 500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: reply.error ?? 'error', type: 'test' } }));
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        id: `chatcmpl-${requests.length}`,
        object: 'chat.completion',
        created: 1_700_000_000,
        model: body.model,
        choices: [{ index: 0, message: { role: 'assistant', content: reply.content ?? '' }, finish_reason: 'stop' }],
        usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 },
      }),
    );
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`,
    requests,
    script(replies) {
      queue = [...replies];
    },
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        // Keep-alive clients and delayed replies must not hold a test's clean-up for seconds.
        server.closeAllConnections();
      }),
  };
}
