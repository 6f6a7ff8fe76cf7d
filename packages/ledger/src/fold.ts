import type { ActionState, LedgerEvent } from '@hermes-mesh/protocol';
import type { FoldEntry } from './codec.js';
import type { EventData } from './events.js';
import { FINAL_STATES, isLegalTransition, type Role, WRITERS } from './transitions.js';

export type { FoldEntry, LogEntry } from './codec.js';

export type GoalState = 'ACTIVE' | 'CANCELLED' | 'COMPLETED' | 'FAILED';

export interface Flow {
  id: string;
  persona: string;
  description?: string;
  createdAt: number;
}

export interface Recipe {
  promptId: string;
  flowId: string;
  actionId?: string;
  ref: string;
  savedBy: string;
  savedAt: number;
}

export interface Goal {
  id: string;
  text: string;
  title?: string;
  /** The origin that owns the goal: it alone creates epochs and decides outcomes. */
  coordinator: string;
  submittedBy: string;
  state: GoalState;
  submittedAt: number;
  updatedAt: number;
  finishedAt?: number;
  reason?: string;
  summary?: string;
  flows: Flow[];
  recipes: Recipe[];
}

export interface ActionOutput {
  ref: string;
  value?: unknown;
  summary?: string;
  bytes?: number;
  node: string;
  epoch: number;
  at: number;
}

export interface Action {
  id: string;
  goalId: string;
  flowId: string;
  kind: string;
  description: string;
  dependsOn: string[];
  /** The coordinator's description of what to run (params, requirements, timeout), as created. */
  spec?: unknown;
  state: ActionState;
  /** The fencing token: bumped by every (re)assignment; 0 before the first. */
  epoch: number;
  node?: string;
  attempts: number;
  createdAt: number;
  updatedAt: number;
  assignedAt?: number;
  startedAt?: number;
  finishedAt?: number;
  output?: ActionOutput;
  error?: string;
  reason?: string;
}

export interface NodeRecord {
  id: string;
  name: string;
  tier?: string;
  location?: string;
  labels: Record<string, string>;
  state: 'UP' | 'LEFT';
  registeredAt: number;
  updatedAt: number;
  reason?: string;
}

/** A goal, action or node together with its own events in replay order. */
export interface Entity<V> {
  readonly key: string;
  entries: FoldEntry[];
  view: V | undefined;
  /** Why the fold rejected some of `entries`; created with the first rejection (most entities have none). */
  rejected: Map<FoldEntry, string> | undefined;
}

/**
 * What replay order reads: an event's fields, or an entry's (a FoldEntry reads them without building its event;
 * an item of a batch has its own epoch).
 */
export interface ReplayOrder {
  readonly epoch?: number;
  readonly lamport: number;
  readonly origin: string;
  readonly seq: number;
}

/** The replay order of DESIGN 4: (epoch, Lamport clock, origin, seq). Total, so every replica sorts alike. */
export function compareEvents(a: ReplayOrder, b: ReplayOrder): number {
  const ea = a.epoch ?? 0;
  const eb = b.epoch ?? 0;
  if (ea !== eb) return ea - eb;
  // Read once each: on an entry these are getters.
  const la = a.lamport;
  const lb = b.lamport;
  if (la !== lb) return la - lb;
  if (a.origin !== b.origin) return a.origin < b.origin ? -1 : 1;
  return a.seq - b.seq;
}

/** What an action's fold needs from outside itself: its goal's coordinator. */
export interface FoldContext {
  coordinatorOf(goalId: string): string | undefined;
}

export type Apply<V> = (entity: Entity<V>, event: LedgerEvent, context: FoldContext) => string | undefined;

/**
 * Adds an entry to an entity. When it sorts after every entry already there (the usual case) it is applied on
 * top of the current view; otherwise it is inserted in order and the entity alone is re-folded from scratch.
 * Returns true when the entity was re-folded.
 */
export function addToEntity<V>(entity: Entity<V>, entry: FoldEntry, apply: Apply<V>, context: FoldContext): boolean {
  const entries = entity.entries;
  const last = entries[entries.length - 1];
  if (last === undefined || compareEvents(last, entry) < 0) {
    entries.push(entry);
    applyEntry(entity, entry, apply, context);
    return false;
  }
  entries.splice(insertionIndex(entries, entry), 0, entry);
  refold(entity, apply, context);
  return true;
}

function insertionIndex(entries: FoldEntry[], entry: FoldEntry): number {
  let lo = 0;
  let hi = entries.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareEvents(entries[mid]!, entry) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export function refold<V>(entity: Entity<V>, apply: Apply<V>, context: FoldContext): void {
  entity.view = undefined;
  entity.rejected = undefined;
  for (const entry of entity.entries) applyEntry(entity, entry, apply, context);
}

function applyEntry<V>(entity: Entity<V>, entry: FoldEntry, apply: Apply<V>, context: FoldContext): void {
  const reason = apply(entity, entry.event, context);
  if (reason === undefined) return;
  if (!entity.rejected) entity.rejected = new Map();
  entity.rejected.set(entry, reason);
}

// ---- goals ----

export const applyGoalEvent: Apply<Goal> = (entity, event) => {
  const goal = entity.view;
  if (event.type === 'goal.submitted') {
    if (goal) return `goal ${event.goalId} was already submitted by ${goal.submittedBy}`;
    const data = event.data as EventData<'goal.submitted'>;
    entity.view = {
      id: event.goalId!,
      text: data.text,
      ...(data.title === undefined ? {} : { title: data.title }),
      coordinator: data.coordinator,
      submittedBy: event.origin,
      state: 'ACTIVE',
      submittedAt: event.ts,
      updatedAt: event.ts,
      flows: [],
      recipes: [],
    };
    return undefined;
  }
  if (!goal) return `goal ${event.goalId} not submitted`;
  if (event.type === 'recipe.saved') {
    const data = event.data as EventData<'recipe.saved'>;
    const recipe = copyOwn(data) as unknown as Recipe;
    recipe.savedBy = event.origin;
    recipe.savedAt = event.ts;
    goal.recipes.push(recipe);
    goal.updatedAt = event.ts;
    return undefined;
  }
  if (event.origin !== goal.coordinator) return `${event.type} is the coordinator's (${goal.coordinator})`;
  switch (event.type) {
    case 'flow.created': {
      const data = event.data as EventData<'flow.created'>;
      if (goal.flows.some((f) => f.id === data.flowId)) return `flow ${data.flowId} already exists`;
      const flow: Flow = { id: data.flowId, persona: data.persona, createdAt: event.ts };
      if (data.description !== undefined) flow.description = data.description;
      goal.flows.push(flow);
      break;
    }
    case 'goal.cancelled': {
      if (goal.state !== 'ACTIVE') return `goal is ${goal.state}`;
      goal.state = 'CANCELLED';
      goal.reason = (event.data as EventData<'goal.cancelled'>).reason;
      goal.finishedAt = event.ts;
      break;
    }
    case 'goal.finished': {
      if (goal.state !== 'ACTIVE') return `goal is ${goal.state}`;
      const data = event.data as EventData<'goal.finished'>;
      goal.state = data.outcome;
      if (data.summary !== undefined) goal.summary = data.summary;
      goal.finishedAt = event.ts;
      break;
    }
    default:
      return `${event.type} does not apply to a goal`;
  }
  goal.updatedAt = event.ts;
  return undefined;
};

// ---- actions ----

export const applyActionEvent: Apply<Action> = (entity, event, context) => {
  const coordinator = context.coordinatorOf(event.goalId!);
  if (coordinator === undefined) return `goal ${event.goalId} not submitted`;
  const action = entity.view;
  if (event.type === 'action.created') {
    if (action) return `action ${event.actionId} already exists`;
    if (event.origin !== coordinator) return `action.created is the coordinator's (${coordinator})`;
    entity.view = createdAction(event);
    return undefined;
  }
  if (!action) return `action ${event.actionId} not created`;
  if (event.goalId !== action.goalId) return `action ${action.id} belongs to goal ${action.goalId}`;
  const roles = rolesOf(event.origin, action, coordinator);
  if (event.type === 'action.state') return applyTransition(action, event, roles);
  if (event.type === 'action.output') return applyOutput(action, event, roles);
  return `${event.type} does not apply to an action`;
};

function createdAction(event: LedgerEvent): Action {
  const data = event.data as EventData<'action.created'>;
  const id = event.actionId!;
  const goalId = event.goalId!;
  const { flowId, kind, description, spec } = data;
  const dependsOn = [...data.dependsOn];
  const state = data.preview ? 'PREVIEW_PENDING' : 'PENDING';
  const ts = event.ts;
  // Two literals rather than a spread of an optional field: the same keys in the same order, built directly.
  if (spec === undefined) {
    return {
      id,
      goalId,
      flowId,
      kind,
      description,
      dependsOn,
      state,
      epoch: 0,
      attempts: 0,
      createdAt: ts,
      updatedAt: ts,
    };
  }
  return {
    id,
    goalId,
    flowId,
    kind,
    description,
    dependsOn,
    spec,
    state,
    epoch: 0,
    attempts: 0,
    createdAt: ts,
    updatedAt: ts,
  };
}

/**
 * `{ ...source }` without the spread (several times slower in V8 for these small objects): the own enumerable
 * properties, string keys in order then symbols, each defined on the copy (so `__proto__` stays a plain key).
 */
export function copyOwn(source: object): Record<string | symbol, unknown> {
  const from = source as Record<string | symbol, unknown>;
  const out: Record<string | symbol, unknown> = {};
  for (const key in from) {
    if (!Object.hasOwn(from, key)) continue;
    if (key === '__proto__') define(out, key, from[key]);
    else out[key] = from[key];
  }
  for (const symbol of Object.getOwnPropertySymbols(from)) {
    if (Object.prototype.propertyIsEnumerable.call(from, symbol)) define(out, symbol, from[symbol]);
  }
  return out;
}

function define(target: object, key: string | symbol, value: unknown): void {
  Object.defineProperty(target, key, { value, writable: true, enumerable: true, configurable: true });
}

/** The roles of an event's origin as bits (one fold step per event: no Set to allocate). */
type Roles = number;
const COORDINATOR: Roles = 1;
const WORKER: Roles = 2;
const ROLE_BITS: Readonly<Record<Role, Roles>> = { coordinator: COORDINATOR, worker: WORKER };
/** WRITERS as bits: `to` may be written by an origin whose roles share a bit with WRITER_BITS[to]. */
const WRITER_BITS = Object.fromEntries(
  Object.entries(WRITERS).map(([state, roles]) => [state, roles.reduce((bits, role) => bits | ROLE_BITS[role], 0)]),
) as Readonly<Record<ActionState, Roles>>;

function rolesOf(origin: string, action: Action, coordinator: string): Roles {
  let roles = 0;
  if (origin === coordinator) roles |= COORDINATOR;
  if (action.node !== undefined && origin === action.node) roles |= WORKER;
  return roles;
}

/** Epoch fencing: an event speaks for the epoch it names; only the current one may change the action. */
function epochMismatch(action: Action, epoch: number): string | undefined {
  if (epoch < action.epoch) return `stale epoch ${epoch} (current ${action.epoch})`;
  if (epoch > action.epoch) return `epoch ${epoch} not assigned (current ${action.epoch})`;
  return undefined;
}

function applyTransition(action: Action, event: LedgerEvent, roles: Roles): string | undefined {
  const to = event.state!;
  const epoch = event.epoch!;
  const data = event.data as EventData<'action.state'>;
  if (to === 'ASSIGNED') {
    if (epoch <= action.epoch) return `stale epoch ${epoch}: ASSIGNED needs an epoch above ${action.epoch}`;
    if (!(roles & COORDINATOR)) return `ASSIGNED is the coordinator's, not ${event.origin}'s`;
  } else {
    const mismatch = epochMismatch(action, epoch);
    if (mismatch) return mismatch;
    if (!(roles & WRITER_BITS[to]))
      return `${event.origin} may not set ${to} (epoch ${epoch} belongs to ${action.node})`;
  }
  if (!isLegalTransition(action.state, to)) return `illegal transition ${action.state} -> ${to}`;
  const replaces = data.spec !== undefined || data.kind !== undefined;
  if (replaces && to !== 'FALLBACK_RECEIVED') return `only FALLBACK_RECEIVED may replace the action, not ${to}`;
  if (data.output !== undefined && to !== 'STATUS_VERIFICATION_REQUESTED') {
    return `only STATUS_VERIFICATION_REQUESTED may carry an output, not ${to}`;
  }
  action.state = to;
  action.updatedAt = event.ts;
  switch (to) {
    case 'ASSIGNED':
      // A new epoch starts clean: nothing a previous worker reported carries over.
      action.epoch = epoch;
      action.node = data.node!;
      action.attempts++;
      action.assignedAt = event.ts;
      delete action.startedAt;
      delete action.output;
      delete action.error;
      delete action.reason;
      break;
    case 'IN_PROGRESS':
      action.startedAt = event.ts;
      break;
    case 'STATUS_VERIFICATION_REQUESTED':
      // The claim of success may carry its output (one event, not two): the same as an action.output before it.
      if (data.output !== undefined) action.output = outputOf(data.output, event);
      break;
    case 'ERROR':
      action.error = data.error ?? data.reason ?? 'error';
      break;
    case 'FALLBACK_RECEIVED':
      // A fallback may run something else in the failed action's place (same id, same dependencies).
      if (data.kind !== undefined) action.kind = data.kind;
      if (data.spec !== undefined) action.spec = data.spec;
      break;
    default:
      if (FINAL_STATES.has(to) || to === 'COMPLETED') action.finishedAt = event.ts;
  }
  if (data.reason !== undefined) action.reason = data.reason;
  return undefined;
}

const OUTPUT_STATES: ReadonlySet<ActionState> = new Set(['IN_PROGRESS', 'STATUS_VERIFICATION_REQUESTED']);

function applyOutput(action: Action, event: LedgerEvent, roles: Roles): string | undefined {
  const mismatch = epochMismatch(action, event.epoch!);
  if (mismatch) return mismatch;
  if (!(roles & WORKER)) return `output is the assigned node's (${action.node}), not ${event.origin}'s`;
  if (!OUTPUT_STATES.has(action.state)) return `output not accepted in state ${action.state}`;
  action.output = outputOf(event.data as EventData<'action.output'>, event);
  action.updatedAt = event.ts;
  return undefined;
}

function outputOf(data: EventData<'action.output'>, event: LedgerEvent): ActionOutput {
  const output = copyOwn(data) as unknown as ActionOutput;
  output.node = event.origin;
  output.epoch = event.epoch!;
  output.at = event.ts;
  return output;
}

// ---- nodes ----

export const applyNodeEvent: Apply<NodeRecord> = (entity, event) => {
  const node = entity.view;
  if (event.type === 'node.registered') {
    const data = event.data as EventData<'node.registered'>;
    const record: NodeRecord = {
      id: event.origin,
      name: data.name,
      labels: { ...(data.labels ?? {}) },
      state: 'UP',
      registeredAt: node?.registeredAt ?? event.ts,
      updatedAt: event.ts,
    };
    if (data.tier !== undefined) record.tier = data.tier;
    if (data.location !== undefined) record.location = data.location;
    entity.view = record;
    return undefined;
  }
  if (event.type === 'node.left') {
    if (!node) return `node ${event.origin} never registered`;
    node.state = 'LEFT';
    node.reason = (event.data as EventData<'node.left'>).reason;
    node.updatedAt = event.ts;
    return undefined;
  }
  return `${event.type} does not apply to a node`;
};
