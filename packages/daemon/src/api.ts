import { timingSafeEqual } from 'node:crypto';
import type { Member } from '@hermes-mesh/mesh';
import type { Advert } from '@hermes-mesh/protocol';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { DaemonMetrics } from './metrics.js';

export interface ApiDeps {
  self: () => Advert;
  members: () => Member[];
  ledger: () => unknown;
  search: (query: string, limit: number) => unknown[];
  /** An action's events in this replica, in replay order. */
  history: (actionId: string) => unknown[];
  metrics: DaemonMetrics;
  token: string | undefined;
  logger: Logger;
}

/** What `GET /v1/peers` returns for each node: its advert and how sure this node is that it is alive. */
export function memberView(m: Member, now = Date.now()) {
  return {
    nodeId: m.nodeId,
    name: m.advert.name,
    state: m.state,
    self: m.self,
    lastSeenMsAgo: Math.max(0, now - m.lastSeen),
    advert: m.advert,
  };
}

function tokenMatches(header: string | undefined, token: string): boolean {
  const given = Buffer.from(header?.startsWith('Bearer ') ? header.slice(7) : '');
  const want = Buffer.from(token);
  return given.length === want.length && timingSafeEqual(given, want);
}

/** The daemon's local HTTP API: its own advert, its membership view, and Prometheus metrics. */
export function createApi(deps: ApiDeps): FastifyInstance {
  // Request lines are noise for a local API; its warnings and errors still get through.
  const app = Fastify({
    loggerInstance: deps.logger.child({ component: 'api' }, { level: 'warn' }) as FastifyBaseLogger,
    // A goal of 100k actions is a few MB of JSON; the goal schema bounds it further.
    bodyLimit: 64 * 1024 * 1024,
  });
  if (deps.token) {
    const token = deps.token;
    app.addHook('onRequest', async (req, reply) => {
      // Static files marked public (the dashboard page and its scripts: no mesh data in them) load without the
      // token, since a browser cannot send a header when it opens a URL; every /v1 route still asks for it.
      if (req.method === 'GET' && (req.routeOptions.config as { public?: boolean } | undefined)?.public) return;
      if (!tokenMatches(req.headers.authorization, token)) {
        await reply.code(401).send({ error: 'unauthorized', hint: 'send Authorization: Bearer <token>' });
      }
    });
  }
  app.get('/v1/node', async () => deps.self());
  app.get('/v1/peers', async () => {
    const now = Date.now();
    return { peers: deps.members().map((m) => memberView(m, now)) };
  });
  app.get('/v1/ledger', async () => deps.ledger());
  app.get<{ Querystring: { q?: string; limit?: string } }>('/v1/search', async (req, reply) => {
    const q = (req.query.q ?? '').trim();
    const limit = Number(req.query.limit ?? 20);
    if (q === '' || q.length > 500)
      return reply.code(400).send({ error: 'give a query: /v1/search?q=words (1-500 chars)' });
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
      return reply.code(400).send({ error: 'limit must be an integer from 1 to 1000' });
    }
    return { hits: deps.search(q, limit) };
  });
  app.get<{ Params: { id: string } }>('/v1/actions/:id/history', async (req, reply) => {
    const history = deps.history(req.params.id);
    if (history.length === 0) return reply.code(404).send({ error: `no action ${req.params.id} in this replica` });
    return { history };
  });
  app.get('/metrics', async (_req, reply) => {
    reply.header('content-type', deps.metrics.registry.contentType);
    return deps.metrics.registry.metrics();
  });
  app.setNotFoundHandler(async (req, reply) =>
    reply.code(404).send({
      error: 'not found',
      path: req.url,
      hint: 'try /v1/node, /v1/peers, /v1/ledger, /v1/search?q= or /metrics',
    }),
  );
  return app;
}
