import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { DaemonPlugin } from '@hermes-mesh/daemon';
import {
  decomposeGoal,
  type FailedAction,
  flattenPlan,
  type ModelEndpoint,
  proposeFallback,
  savePlan,
} from '@hermes-mesh/planner';
import { formatProblem } from '@hermes-mesh/protocol';
import { goalRequestOf } from './plan.js';
import { type RoutesDeps, registerRoutes } from './routes.js';
import { createCoordinator, type Placer } from './service.js';

export interface CoordinatorPluginInit {
  place: Placer;
  models: (adverts: unknown[]) => unknown;
  /** The model that breaks free-text goals into plans (OpenAI-compatible); none: only plan files are taken. */
  planner?: ModelEndpoint;
  /** The model that proposes fallbacks for autonomous goals; none: autonomous goals are refused. */
  verifier?: ModelEndpoint;
}

/** Free text -> a validated plan, saved under the data dir where the user can edit and resubmit it. */
function plannerFor(
  init: NonNullable<CoordinatorPluginInit['planner']>,
  dataDir: string,
  execCommands: string[],
): NonNullable<RoutesDeps['decompose']> {
  return async (text) => {
    const result = await decomposeGoal(text, { ...init, execCommands });
    if (!result.ok) return { ok: false, problems: result.problems.map(formatProblem) };
    const dir = join(dataDir, 'plans');
    await mkdir(dir, { recursive: true });
    const planFile = join(dir, `${new Date().toISOString().replace(/[:.]/g, '-')}.yaml`);
    await savePlan(result.plan, planFile);
    return { ok: true, request: goalRequestOf(flattenPlan(result.plan)), planFile };
  };
}

/** The verifier sees the exec allowlist and the models the mesh serves right now. */
function verifierFor(endpoint: ModelEndpoint, ctx: Parameters<DaemonPlugin>[0]) {
  return {
    model: endpoint.model,
    propose: (failed: FailedAction) =>
      proposeFallback(failed, {
        ...endpoint,
        execCommands: Object.keys(ctx.config.exec),
        models: [
          ...new Set(
            ctx.membership
              .members()
              .filter((m) => m.state === 'alive')
              .flatMap((m) => m.advert.models.map((x) => x.name)),
          ),
        ],
      }),
  };
}

/** Mounts the coordinator on a node: the decision loop over the node's ledger and mesh, and its HTTP API. */
export function coordinatorPlugin(init: CoordinatorPluginInit): DaemonPlugin {
  return async (ctx) => {
    const coordinator = await createCoordinator({
      ledger: ctx.ledger,
      mesh: ctx.mesh,
      replicator: ctx.replicator,
      membership: ctx.membership,
      place: init.place,
      logger: ctx.logger.child({ component: 'coordinator' }),
      startupGraceMs: ctx.config.deadAfterMs,
      recipesDir: ctx.config.dataDir,
      ...(init.verifier ? { verifier: verifierFor(init.verifier, ctx) } : {}),
    });
    registerRoutes({
      app: ctx.api,
      ledger: ctx.ledger,
      coordinator,
      membership: ctx.membership,
      models: () =>
        init.models(
          ctx.membership
            .members()
            .filter((m) => m.state === 'alive')
            .map((m) => m.advert),
        ),
      ...(init.planner
        ? { decompose: plannerFor(init.planner, ctx.config.dataDir, Object.keys(ctx.config.exec)) }
        : {}),
    });
    ctx.onStop(() => coordinator.stop());
  };
}
