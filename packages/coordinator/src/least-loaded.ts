import type { Placer } from './service.js';

/**
 * Interim placement until the scheduler package lands: the live node with the most free slots that serves the
 * model an llm action names. Replaced by the scheduler's pipeline (feasibility, scoring, explanations).
 */
export const leastLoadedPlacer: Placer = (nodes, requests) => {
  const free = new Map(nodes.map((n) => [n.advert.nodeId, n.advert.slots.total - n.inFlight]));
  const placements: Array<{ actionId: string; nodeId: string }> = [];
  const waiting: Array<{ actionId: string; explanation: string }> = [];
  for (const r of requests) {
    let best: string | undefined;
    let bestFree = 0;
    for (const n of nodes) {
      const f = free.get(n.advert.nodeId)!;
      if (r.requires.model && !n.advert.models.some((m) => m.name === r.requires.model)) continue;
      if (f > bestFree) {
        best = n.advert.nodeId;
        bestFree = f;
      }
    }
    if (!best) {
      waiting.push({
        actionId: r.actionId,
        explanation: `0 of ${nodes.length} nodes have a free slot${r.requires.model ? ` and model ${r.requires.model}` : ''}`,
      });
      continue;
    }
    free.set(best, bestFree - 1);
    placements.push({ actionId: r.actionId, nodeId: best });
  }
  return { placements, waiting };
};
