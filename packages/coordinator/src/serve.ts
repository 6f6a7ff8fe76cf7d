import type { DaemonPlugin } from '@hermes-mesh/daemon';
import { registerRoutes } from './routes.js';
import { createCoordinator, type Placer } from './service.js';

export interface CoordinatorPluginInit {
  place: Placer;
  models: (adverts: unknown[]) => unknown;
}

/** Mounts the coordinator on a node: the decision loop over the node's ledger and mesh, and its HTTP API. */
export function coordinatorPlugin(init: CoordinatorPluginInit): DaemonPlugin {
  return async (ctx) => {
    const coordinator = await createCoordinator({
      ledger: ctx.ledger,
      mesh: ctx.mesh,
      membership: ctx.membership,
      place: init.place,
      logger: ctx.logger.child({ component: 'coordinator' }),
      startupGraceMs: ctx.config.deadAfterMs,
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
    });
    ctx.onStop(() => coordinator.stop());
  };
}
