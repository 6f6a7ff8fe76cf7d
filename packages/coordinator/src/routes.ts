import { DASHBOARD_HEADERS, dashboardAssets } from '@hermes-mesh/dashboard';
import { type Action, expandEvent, type Ledger, type LedgerEntry } from '@hermes-mesh/ledger';
import type { Membership } from '@hermes-mesh/mesh';
import { Type } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { withOverrides } from './plan.js';
import { type Coordinator, SubmitError, specOf } from './service.js';
import { GoalRequest, Policy } from './spec.js';

const checkGoal = TypeCompiler.Compile(GoalRequest);

export interface RoutesDeps {
  app: FastifyInstance;
  ledger: Ledger;
  coordinator: Coordinator;
  membership: Membership;
  /** Lists the mesh's models ranked by capability (the scheduler's view). */
  models: () => unknown;
  /** Turns a free-text goal into a plan (an LLM); absent when no planner model is configured. */
  decompose?: (
    text: string,
  ) => Promise<{ ok: true; request: GoalRequest; planFile: string } | { ok: false; problems: string[] }>;
}

const TextGoal = Type.Object(
  {
    text: Type.String({ minLength: 1, maxLength: 65_536 }),
    policy: Type.Optional(Policy),
    provider: Type.Optional(Type.String({ minLength: 1 })),
    model: Type.Optional(Type.String({ minLength: 1 })),
    reasoningEffort: Type.Optional(Type.Union([Type.Literal('low'), Type.Literal('medium'), Type.Literal('high')])),
    speculative: Type.Optional(Type.Boolean()),
    autonomous: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
const checkText = TypeCompiler.Compile(TextGoal);

/** What status and watch show for one action. */
export function actionView(action: Action, waitingReason?: string) {
  const spec = specOf(action);
  return {
    id: action.id,
    planId: spec?.planId ?? action.id,
    flowId: action.flowId,
    kind: action.kind,
    description: action.description,
    state: action.state,
    node: action.node,
    epoch: action.epoch,
    attempts: action.attempts,
    dependsOn: action.dependsOn,
    output: action.output
      ? { summary: action.output.summary, bytes: action.output.bytes, value: action.output.value }
      : undefined,
    error: action.error,
    reason: action.reason,
    waiting: waitingReason,
    createdAt: action.createdAt,
    updatedAt: action.updatedAt,
  };
}

function goalView(deps: RoutesDeps, goalId: string) {
  const goal = deps.ledger.goal(goalId);
  if (!goal) return undefined;
  const all = deps.ledger.actions({ goalId });
  const actions = all.map((a) => actionView(a, deps.coordinator.waitingReason(a.id)));
  return { ...goal, progress: progressOf(all), actions };
}

/** How far a goal has come: its actions by state, so a list shows progress without every action. */
function progressOf(actions: ReadonlyArray<{ state: string }>) {
  const byState: Record<string, number> = {};
  for (const a of actions) byState[a.state] = (byState[a.state] ?? 0) + 1;
  return { total: actions.length, completed: byState.COMPLETED ?? 0, byState };
}

/** The coordinator's REST API under /v1 and the SSE event stream. */
export function registerRoutes(deps: RoutesDeps): void {
  const { app, ledger, coordinator } = deps;
  // Event streams never end on their own, and closing the server waits for every open connection: without this,
  // `hermes-coord serve` would not stop (Ctrl-C, SIGTERM) while a dashboard or `watch` is connected. Ending them
  // is what a client expects of a server going away; it reconnects with Last-Event-ID once one is back.
  const eventStreams = new Set<() => void>();
  app.addHook('preClose', async () => {
    for (const end of eventStreams) end();
  });

  /** Submits, turning a refusal into its status code: 403 refused, 404 unknown parent, 400 invalid. */
  async function submitOrRefuse(request: GoalRequest, reply: FastifyReply, extra: Record<string, unknown> = {}) {
    try {
      const { goalId, mode } = await coordinator.submit(request);
      return reply.code(201).send({ goalId, mode, ...extra });
    } catch (err) {
      if (!(err instanceof SubmitError)) throw err;
      const status = err.code === 'not-found' ? 404 : err.code === 'refused' ? 403 : 400;
      return reply.code(status).send({ error: err.message });
    }
  }

  app.post('/v1/goals', async (req, reply) => {
    if (checkText.Check(req.body)) {
      const { text, speculative, autonomous, ...overrides } = req.body;
      if (!deps.decompose) {
        return reply.code(400).send({
          error: 'free-text goals need a planner model',
          hint: 'start the coordinator with HERMES_LLM_URL and HERMES_LLM_MODEL set, or submit --plan FILE',
        });
      }
      const planned = await deps.decompose(text);
      if (!planned.ok)
        return reply.code(422).send({ error: 'the planner model gave no valid plan', details: planned.problems });
      const request = {
        ...withOverrides(planned.request, overrides),
        ...(speculative ? { speculative } : {}),
        ...(autonomous ? { autonomous } : {}),
      };
      return submitOrRefuse(request, reply, { planFile: planned.planFile });
    }
    if (!checkGoal.Check(req.body)) {
      const errors = [...checkGoal.Errors(req.body)].slice(0, 10).map((e) => `${e.path || '/'}: ${e.message}`);
      return reply.code(400).send({ error: 'invalid goal', details: errors });
    }
    return submitOrRefuse(req.body, reply);
  });

  app.get<{ Querystring: { state?: string; limit?: string } }>('/v1/goals', async (req) => {
    const limit = Math.min(1000, Math.max(1, Number(req.query.limit ?? 50) || 50));
    const goals = ledger
      .goals(req.query.state ? { state: req.query.state as never } : {})
      .sort((a, b) => b.submittedAt - a.submittedAt)
      .slice(0, limit)
      .map(({ flows: _f, recipes: _r, ...g }) => ({ ...g, progress: progressOf(ledger.actions({ goalId: g.id })) }));
    return { goals };
  });

  app.get<{ Params: { id: string } }>('/v1/goals/:id', async (req, reply) => {
    const view = goalView(deps, req.params.id) ?? goalByPrefix(deps, req.params.id);
    return (
      view ??
      reply.code(404).send({ error: `no goal ${req.params.id}`, hint: 'hermes-coord search <words or id prefix>' })
    );
  });

  app.post<{ Params: { id: string }; Body: { reason?: string } | undefined }>(
    '/v1/goals/:id/cancel',
    async (req, reply) => {
      const outcome = await coordinator.cancel(req.params.id, req.body?.reason ?? 'cancelled by user');
      if (outcome === 'not-found') return reply.code(404).send({ error: `no goal ${req.params.id}` });
      if (outcome === 'already-finished')
        return reply.code(409).send({ error: `goal ${req.params.id} already finished` });
      return { goalId: req.params.id, state: 'CANCELLED' };
    },
  );

  app.get<{ Params: { id: string } }>('/v1/actions/:id', async (req, reply) => {
    const action = ledger.action(req.params.id);
    if (!action) return reply.code(404).send({ error: `no action ${req.params.id}` });
    return actionView(action, coordinator.waitingReason(action.id));
  });

  app.post<{ Params: { id: string }; Body: { decision?: string } | undefined }>(
    '/v1/actions/:id/decision',
    async (req, reply) => {
      const decision = req.body?.decision;
      if (decision !== 'retry' && decision !== 'abort') {
        return reply.code(400).send({ error: 'decision must be "retry" or "abort"' });
      }
      const outcome = await coordinator.decide(req.params.id, decision);
      if (outcome === 'not-found')
        return reply.code(404).send({ error: `no action ${req.params.id} on this coordinator` });
      if (outcome === 'not-waiting')
        return reply.code(409).send({ error: `action ${req.params.id} is not waiting for approval` });
      return { actionId: req.params.id, decision };
    },
  );

  app.get('/v1/models', async () => deps.models());

  app.get<{ Querystring: { goal?: string; from?: string } }>('/v1/events', (req, reply) => {
    // Resumable: Last-Event-ID (or ?from=) is a ledger position; everything after it is sent, then live events.
    const header = req.headers['last-event-id'];
    const from = Number((Array.isArray(header) ? header[0] : header) ?? req.query.from ?? ledger.position());
    if (!Number.isInteger(from) || from < 0) {
      reply.code(400).send({ error: 'Last-Event-ID must be a ledger position (a non-negative integer)' });
      return;
    }
    const goal = req.query.goal;
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.write(': hermes-mesh event stream\n\n');
    // A stored batch event (action.states, actions.created) goes out as one event per item, all with its position
    // (they were written together, so a stream resumed after that position has had every one of them).
    const send = (entries: LedgerEntry[]) => {
      let chunk = '';
      for (const { position, event: stored } of entries) {
        for (const event of expandEvent(stored)) {
          if (goal && event.goalId !== goal) continue;
          // The position, then the event's own fields: one stringify, no merged copy of every event.
          const json = JSON.stringify(event);
          const data = json.length > 2 ? `{"position":${position},${json.slice(1)}` : `{"position":${position}}`;
          chunk += `id: ${position}\nevent: ${event.type}\ndata: ${data}\n\n`;
        }
      }
      if (chunk) res.write(chunk);
    };
    const unsubscribe = ledger.subscribe(from, send);
    const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
    const stop = () => {
      eventStreams.delete(end);
      clearInterval(keepAlive);
      unsubscribe();
    };
    const end = () => {
      stop();
      res.end();
    };
    eventStreams.add(end);
    req.raw.on('close', stop);
  });

  // The web dashboard at / (static files read once, served with a strict CSP); it reads the routes above.
  for (const asset of dashboardAssets()) {
    app.get(asset.path, { config: { public: true } }, async (_req, reply) =>
      reply.headers(DASHBOARD_HEADERS).type(asset.contentType).send(asset.body),
    );
  }
}

function goalByPrefix(deps: RoutesDeps, prefix: string) {
  if (!/^[A-Za-z0-9]{4,}$/.test(prefix)) return undefined;
  const matches = deps.ledger.goals({}).filter((g) => g.id.startsWith(prefix));
  return matches.length === 1 ? goalView(deps, matches[0]!.id) : undefined;
}
