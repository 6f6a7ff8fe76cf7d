import type { ActionState, LedgerEvent } from '@hermes-mesh/protocol';
import { TRANSITIONS, WRITERS } from '../transitions.js';

/** A small seeded PRNG (mulberry32): a failing seed replays exactly. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface HistoryOptions {
  goals?: number;
  actionsPerGoal?: number;
  steps?: number;
  /** Share of steps that emit a random, usually wrong, event instead of a legal move. */
  noise?: number;
  /**
   * Transitions one origin writes back to back (distinct actions) become one action.states event, and created
   * actions one actions.created event.
   */
  batched?: boolean;
}

export const COORDINATORS = ['coord-a', 'coord-b'];
export const WORKERS = ['worker-1', 'worker-2', 'worker-3'];

interface SimAction {
  goalId: string;
  id: string;
  state: ActionState;
  epoch: number;
  node?: string;
  coordinator: string;
}

/**
 * Generates the events of a mesh at work: coordinators submit goals and place actions, workers report progress,
 * coordinators verify, reassign and finish; with `noise`, also events that break the rules (wrong writer, stale
 * or future epoch, illegal transition, invalid data, unknown type). Lamport clocks as if every node saw every
 * earlier event, so legal moves stay legal in replay order.
 */
export function simulateHistory(seed: number, options: HistoryOptions = {}): LedgerEvent[] {
  const { goals = 3, actionsPerGoal = 3, steps = 60, noise = 0, batched = false } = options;
  const random = seededRandom(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const seqs = new Map<string, number>();
  let lamport = 0;
  const events: LedgerEvent[] = [];
  const emit = (origin: string, fields: Omit<LedgerEvent, 'origin' | 'seq' | 'lamport' | 'ts'>) => {
    const seq = (seqs.get(origin) ?? 0) + 1;
    seqs.set(origin, seq);
    lamport++;
    events.push({ origin, seq, lamport, ts: 1_000 + lamport, ...fields });
  };
  const actions: SimAction[] = [];
  for (let g = 0; g < goals; g++) {
    const goalId = `goal-${seed}-${g}`;
    const coordinator = pick(COORDINATORS);
    emit(coordinator, { type: 'goal.submitted', goalId, data: { text: `goal ${g} of seed ${seed}`, coordinator } });
    emit(coordinator, { type: 'flow.created', goalId, data: { flowId: 'f1', persona: 'engineer' } });
    for (let a = 0; a < actionsPerGoal; a++) {
      const id = `${goalId}-act-${a}`;
      const preview = random() < 0.2;
      emit(coordinator, {
        type: 'action.created',
        goalId,
        actionId: id,
        data: { flowId: 'f1', kind: 'builtin', description: `step ${a}`, dependsOn: [], preview },
      });
      actions.push({ goalId, id, state: preview ? 'PREVIEW_PENDING' : 'PENDING', epoch: 0, coordinator });
    }
  }
  for (let step = 0; step < steps && actions.length > 0; step++) {
    const action = pick(actions);
    if (random() < noise) emitNoise(action, emit, pick, random);
    else emitLegalMove(action, emit, pick, random);
  }
  return batched ? batchTransitions(events) : events;
}

/**
 * Packs each run of action.state (or action.created) events one origin wrote back to back (distinct actions) into
 * one action.states (actions.created) event at the run's last Lamport clock, as a placement pass, a worker's tick
 * or a plan writes them; seqs are renumbered. Invalid items stay in (noise): the fold must then refuse the whole
 * event, alike on every replica.
 */
function batchTransitions(events: LedgerEvent[]): LedgerEvent[] {
  const out: LedgerEvent[] = [];
  const seqs = new Map<string, number>();
  const push = (event: LedgerEvent) => {
    const seq = (seqs.get(event.origin) ?? 0) + 1;
    seqs.set(event.origin, seq);
    out.push({ ...event, seq });
  };
  for (let i = 0; i < events.length; ) {
    const first = events[i]!;
    let end = i + 1;
    const ids = new Set([first.actionId]);
    if (first.type === 'action.state' || first.type === 'action.created') {
      while (end < events.length) {
        const next = events[end]!;
        if (next.type !== first.type || next.origin !== first.origin || ids.has(next.actionId)) break;
        ids.add(next.actionId);
        end++;
      }
    }
    if (end - i < 2) {
      push(first);
      i++;
      continue;
    }
    const run = events.slice(i, end);
    const created = first.type === 'action.created';
    const items = run.map((e) =>
      created
        ? { goalId: e.goalId, actionId: e.actionId, data: e.data }
        : { goalId: e.goalId, actionId: e.actionId, epoch: e.epoch, state: e.state, data: e.data },
    );
    push({
      origin: first.origin,
      seq: 0,
      lamport: run[run.length - 1]!.lamport,
      ts: first.ts,
      type: created ? 'actions.created' : 'action.states',
      data: { items },
    });
    i = end;
  }
  return out;
}

type Emit = (origin: string, fields: Omit<LedgerEvent, 'origin' | 'seq' | 'lamport' | 'ts'>) => void;

function emitLegalMove(action: SimAction, emit: Emit, pick: <T>(items: readonly T[]) => T, random: () => number) {
  const ids = { goalId: action.goalId, actionId: action.id };
  if (action.node && (action.state === 'IN_PROGRESS' || action.state === 'STATUS_VERIFICATION_REQUESTED')) {
    if (random() < 0.3) {
      emit(action.node, {
        type: 'action.output',
        ...ids,
        epoch: action.epoch,
        data: { ref: `out/${action.id}/${action.epoch}`, summary: `result of ${action.id} by ${action.node}` },
      });
      return;
    }
  }
  const moves = TRANSITIONS[action.state].filter((to) => {
    if (to === 'ASSIGNED' || WRITERS[to].includes('coordinator')) return true;
    return action.node !== undefined;
  });
  if (moves.length === 0) return;
  const to = pick(moves);
  const byWorker = !WRITERS[to].includes('coordinator') || (to === 'ERROR' && random() < 0.5);
  const origin = byWorker ? action.node! : action.coordinator;
  if (to === 'ASSIGNED') {
    action.epoch++;
    action.node = pick(WORKERS);
    emit(origin, { type: 'action.state', ...ids, epoch: action.epoch, state: to, data: { node: action.node } });
  } else {
    const data = to === 'ERROR' ? { error: `failed at ${action.epoch}` } : { reason: `to ${to}` };
    emit(origin, { type: 'action.state', ...ids, epoch: action.epoch, state: to, data });
  }
  action.state = to;
}

function emitNoise(action: SimAction, emit: Emit, pick: <T>(items: readonly T[]) => T, random: () => number) {
  const ids = { goalId: action.goalId, actionId: action.id };
  const origin = pick([...COORDINATORS, ...WORKERS]);
  const epoch = Math.max(0, action.epoch + pick([-2, -1, 0, 1]));
  switch (pick(['state', 'state', 'output', 'invalid', 'unknown'] as const)) {
    case 'state': {
      const state = pick(Object.keys(TRANSITIONS) as ActionState[]);
      const data = state === 'ASSIGNED' ? { node: pick(WORKERS) } : { reason: 'noise' };
      emit(origin, { type: 'action.state', ...ids, epoch: state === 'ASSIGNED' ? epoch + 1 : epoch, state, data });
      return;
    }
    case 'output':
      emit(origin, { type: 'action.output', ...ids, epoch, data: { ref: `noise/${random()}` } });
      return;
    case 'invalid':
      emit(origin, { type: 'action.state', ...ids, epoch, state: 'IN_PROGRESS', data: { node: 42 } });
      return;
    case 'unknown':
      emit(origin, { type: 'action.teleported', ...ids, data: {} });
  }
}
