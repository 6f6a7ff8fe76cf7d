import { placeActions, type SchedulerOptions } from '@hermes-mesh/scheduler';
import type { Placer } from './service.js';

/** The scheduler's pipeline as the coordinator's placement seam: live nodes with this coordinator's in-flight work. */
export function schedulerPlacer(options: SchedulerOptions = {}): Placer {
  return (nodes, requests) =>
    placeActions(
      nodes.map((n) => ({
        advert: n.advert,
        alive: true,
        inFlight: n.inFlight,
        othersBusy: n.othersBusy,
        inFlightModels: n.inFlightModels,
      })),
      requests.map((r) => ({
        actionId: r.actionId,
        kind: r.kind,
        policy: r.policy,
        requires: {
          ...(r.kind === 'llm' && r.requires.model ? { model: r.requires.model } : {}),
          ...(r.kind === 'llm' && r.requires.provider ? { provider: r.requires.provider } : {}),
          ...(r.requires.minTier ? { minTier: r.requires.minTier } : {}),
          ...(r.requires.labels ? { labels: r.requires.labels } : {}),
        },
      })),
      options,
    );
}
