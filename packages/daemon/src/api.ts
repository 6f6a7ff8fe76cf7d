import { timingSafeEqual } from 'node:crypto';
import type { Member } from '@hermes-mesh/mesh';
import type { Advert } from '@hermes-mesh/protocol';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { DaemonMetrics } from './metrics.js';

export interface ApiDeps {
  self: () => Advert;
  members: () => Member[];
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
  });
  if (deps.token) {
    const token = deps.token;
    app.addHook('onRequest', async (req, reply) => {
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
  app.get('/metrics', async (_req, reply) => {
    reply.header('content-type', deps.metrics.registry.contentType);
    return deps.metrics.registry.metrics();
  });
  app.setNotFoundHandler(async (req, reply) =>
    reply.code(404).send({ error: 'not found', path: req.url, hint: 'try /v1/node, /v1/peers or /metrics' }),
  );
  return app;
}
