import type { EventInput } from '../events.js';

export interface LifecycleOptions {
  /** Prefix of goal and action ids; make it unique per writer. */
  prefix: string;
  goals: number;
  actionsPerGoal: number;
  /** The coordinator origin named in goal.submitted, and the node actions are assigned to. */
  coordinator: string;
  worker: string;
  /** Words the goal texts are made of (search benchmarks). */
  words?: readonly string[];
  /**
   * Each goal's actions move a stage at a time (all assigned, then all started, ...), as a coordinator's pass
   * and a worker's tick write them: appendMany then packs each stage into one action.states event.
   */
  staged?: boolean;
}

const WORDS = ['summarise', 'report', 'invoice', 'translate', 'french', 'audit', 'logs', 'compress', 'dataset', 'plan'];

/** Goal text: a few words chosen by index, so texts differ but repeat words like real requests do. */
export function goalText(i: number, words: readonly string[] = WORDS): string {
  const pick = (k: number) => words[(i * 7 + k * 13 + ((i >> k) % 5)) % words.length]!;
  return `${pick(0)} the ${pick(1)} ${pick(2)} number ${i}`;
}

/**
 * The events of whole goals run to completion by one coordinator and one worker: the events a busy mesh writes.
 * A coordinator and worker that are the same origin give one replica a self-contained, fully legal history.
 */
export function lifecycleInputs(options: LifecycleOptions): EventInput[] {
  const { prefix, coordinator, worker } = options;
  const out: EventInput[] = [];
  for (let g = 0; g < options.goals; g++) {
    const goalId = `${prefix}-g${g}`;
    out.push({ type: 'goal.submitted', goalId, data: { text: goalText(g, options.words), coordinator } });
    const actions = Array.from({ length: options.actionsPerGoal }, (_, a) => ({ goalId, actionId: `${goalId}-a${a}` }));
    const stages = actions.map((ids, a) => [
      {
        type: 'action.created' as const,
        ...ids,
        data: { flowId: 'main', kind: 'builtin', description: `step ${a}`, dependsOn: [] },
      },
      { type: 'action.state' as const, ...ids, epoch: 1, state: 'ASSIGNED' as const, data: { node: worker } },
      { type: 'action.state' as const, ...ids, epoch: 1, state: 'IN_PROGRESS' as const, data: {} },
      { type: 'action.output' as const, ...ids, epoch: 1, data: { ref: `out/${ids.actionId}`, summary: `done ${a}` } },
      { type: 'action.state' as const, ...ids, epoch: 1, state: 'STATUS_VERIFICATION_REQUESTED' as const, data: {} },
      { type: 'action.state' as const, ...ids, epoch: 1, state: 'COMPLETED' as const, data: {} },
    ]);
    if (options.staged) {
      for (let stage = 0; stage < stages[0]!.length; stage++) for (const events of stages) out.push(events[stage]!);
    } else {
      for (const events of stages) out.push(...events);
    }
    out.push({ type: 'goal.finished', goalId, data: { outcome: 'COMPLETED' } });
  }
  return out;
}
