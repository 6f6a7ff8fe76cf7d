import {
  ACTION_STATES,
  type ActionState,
  ActionState as ActionStateSchema,
  Int,
  LedgerEvent,
  List,
  Str,
} from '@hermes-mesh/protocol';
import { type Static, type TSchema, Type } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';

/** Where an event's fold happens: the entity it belongs to. */
export type EventScope = 'goal' | 'action' | 'actions' | 'node';

const GoalState = Type.Union([Type.Literal('COMPLETED'), Type.Literal('FAILED')]);

/** An action's result: where it lies, a text summary that search indexes, and the value itself when small. */
const OUTPUT_DATA = Type.Object({
  ref: Str(1024, 1),
  summary: Type.Optional(Str(65_536)),
  bytes: Type.Optional(Int()),
  /** The result itself when small (dependents read it from the ledger); large results stay behind `ref`. */
  value: Type.Optional(Type.Unknown()),
});

/** What an action.state event carries besides the envelope fields. */
export const TRANSITION_DATA = Type.Object({
  node: Type.Optional(Str(128, 1)),
  reason: Type.Optional(Str(4096)),
  error: Type.Optional(Str(16_384)),
  /** FALLBACK_RECEIVED only: a replacement for the failed action (its kind and the coordinator's spec). */
  kind: Type.Optional(Str(32, 1)),
  spec: Type.Optional(Type.Unknown()),
  /** STATUS_VERIFICATION_REQUESTED only: the output it claims, as an action.output event would carry it. */
  output: Type.Optional(OUTPUT_DATA),
});

/** Most items one action.states or actions.created event carries. */
export const MAX_BATCH_ITEMS = 1000;

/** What an action.created event carries besides the envelope fields. */
export const CREATED_DATA = Type.Object({
  flowId: Str(128),
  kind: Str(32, 1),
  description: Str(16_384),
  dependsOn: List(Str(128, 1), 1024),
  /** Starts in PREVIEW_PENDING: a human approves before it is placed. */
  preview: Type.Optional(Type.Boolean()),
  /** What to run and where it may run (params, requirements, timeout): the coordinator's to define, opaque here. */
  spec: Type.Optional(Type.Unknown()),
});

/** One action inside an actions.created event. */
const CREATED_ITEM = Type.Object({ goalId: Str(128, 1), actionId: Str(128, 1), data: CREATED_DATA });
export type CreatedItem = Static<typeof CREATED_ITEM>;

/** The event types appendMany packs, and the batch type each is packed into (its items stand for them). */
export const BATCHED_AS = { 'action.state': 'action.states', 'action.created': 'actions.created' } as const;
/** Each batch type, and the event type its items stand for (see expandEvent). */
const ITEMS_ARE: Readonly<Record<string, keyof typeof BATCHED_AS>> = Object.fromEntries(
  Object.entries(BATCHED_AS).map(([single, batch]) => [batch, single as keyof typeof BATCHED_AS]),
);

export function isBatchType(type: string): boolean {
  return Object.hasOwn(ITEMS_ARE, type);
}

/** The items of a batch event; none when its data holds no list (an unchecked event the fold refused). */
export function batchItems(event: LedgerEvent): Array<TransitionItem | CreatedItem> {
  const items = (event.data as { items?: unknown } | undefined)?.items;
  return Array.isArray(items) ? items : [];
}

/** One transition inside an action.states event: the fields an action.state event has, its data nested. */
const TRANSITION_ITEM = Type.Object({
  goalId: Str(128, 1),
  actionId: Str(128, 1),
  epoch: Int(),
  state: ActionStateSchema,
  data: TRANSITION_DATA,
});
export type TransitionItem = Static<typeof TRANSITION_ITEM>;

/** The `data` schema of every event type the fold understands, and which envelope fields it needs. */
const EVENT_SPECS = {
  /** A goal enters the ledger; `coordinator` is the origin that owns it (creates epochs, decides outcomes). */
  'goal.submitted': {
    scope: 'goal',
    needs: ['goalId'],
    data: Type.Object({ text: Str(65_536), coordinator: Str(128, 1), title: Type.Optional(Str(512)) }),
  },
  'goal.cancelled': { scope: 'goal', needs: ['goalId'], data: Type.Object({ reason: Str(4096) }) },
  'goal.finished': {
    scope: 'goal',
    needs: ['goalId'],
    data: Type.Object({ outcome: GoalState, summary: Type.Optional(Str(65_536)) }),
  },
  'flow.created': {
    scope: 'goal',
    needs: ['goalId'],
    data: Type.Object({ flowId: Str(128, 1), persona: Str(256), description: Type.Optional(Str(4096)) }),
  },
  /** A recipe saved for replay without an LLM (DESIGN 6: prompts/{prompt_id}_{flow_id}_recipe.json). */
  'recipe.saved': {
    scope: 'goal',
    needs: ['goalId'],
    data: Type.Object({
      promptId: Str(128, 1),
      flowId: Str(128, 1),
      actionId: Type.Optional(Str(128)),
      ref: Str(1024, 1),
    }),
  },
  'action.created': { scope: 'action', needs: ['goalId', 'actionId'], data: CREATED_DATA },
  /** Many actions created together (a goal's plan): one event, folded as the action.created events it stands for. */
  'actions.created': {
    scope: 'actions',
    needs: [],
    data: Type.Object({ items: List(CREATED_ITEM, MAX_BATCH_ITEMS) }),
  },
  /** A transition of the action's ActionState; ASSIGNED carries the new epoch and the node. */
  'action.state': {
    scope: 'action',
    needs: ['goalId', 'actionId', 'epoch', 'state'],
    data: TRANSITION_DATA,
  },
  /**
   * Transitions of many actions written together (a placement pass, a worker's tick, a batch of verdicts): one
   * envelope, one stored entry and one gossip item instead of one each. The fold applies each item exactly as
   * the action.state event it stands for (see expandEvent); an action appears at most once per event.
   */
  'action.states': {
    scope: 'actions',
    needs: [],
    data: Type.Object({ items: List(TRANSITION_ITEM, MAX_BATCH_ITEMS) }),
  },
  /** Where the result of the current epoch lies, with a text summary that search indexes. */
  'action.output': { scope: 'action', needs: ['goalId', 'actionId', 'epoch'], data: OUTPUT_DATA },
  /** The origin node announces itself (name, tier, labels); node id = event origin. */
  'node.registered': {
    scope: 'node',
    needs: [],
    data: Type.Object({
      name: Str(128, 1),
      tier: Type.Optional(Str(32)),
      location: Type.Optional(Str(16)),
      labels: Type.Optional(Type.Record(Str(64), Str(256), { maxProperties: 64 })),
    }),
  },
  'node.left': { scope: 'node', needs: [], data: Type.Object({ reason: Str(4096) }) },
} as const satisfies Record<string, { scope: EventScope; needs: readonly EnvelopeField[]; data: TSchema }>;

type EnvelopeField = 'goalId' | 'actionId' | 'epoch' | 'state';

export type EventType = keyof typeof EVENT_SPECS;
export const EVENT_TYPES = Object.keys(EVENT_SPECS) as EventType[];
export type EventData<T extends EventType> = Static<(typeof EVENT_SPECS)[T]['data']>;

/** What a caller hands to `append`: the ledger fills origin, seq, lamport and ts. */
export type EventInput = {
  [T in EventType]: {
    type: T;
    goalId?: string;
    actionId?: string;
    epoch?: number;
    state?: ActionState;
    data: EventData<T>;
  };
}[EventType];

const envelopeChecker = TypeCompiler.Compile(LedgerEvent);
const dataCheckers = new Map<string, { Check(value: unknown): boolean; Errors: (value: unknown) => ErrorIterator }>(
  Object.entries(EVENT_SPECS).map(([type, spec]) => [type, TypeCompiler.Compile<TSchema>(spec.data)]),
);

interface ErrorIterator {
  First(): { path: string; message: string } | undefined;
}

export function isEventType(type: string): type is EventType {
  return Object.hasOwn(EVENT_SPECS, type);
}

export function scopeOf(type: EventType): EventScope {
  return EVENT_SPECS[type].scope;
}

export type Checked<T> = { ok: true; value: T } | { ok: false; reason: string };

/** Checks the wire shape only (origin, seq, ...): an event that fails it cannot even be placed in a log. */
export function checkEnvelope(value: unknown): Checked<LedgerEvent> {
  if (envelopeChecker.Check(value)) return { ok: true, value };
  const first = envelopeChecker.Errors(value).First();
  return { ok: false, reason: `invalid event${first ? ` ${first.path || '/'}: ${first.message}` : ''}` };
}

/**
 * Checks what the fold needs: a known type, the envelope fields that type requires, and its `data` schema.
 * An event that fails is still kept in its origin's log (so the log has no gap) but the fold records it as rejected.
 */
export function checkSemantics(event: LedgerEvent): string | undefined {
  if (!isEventType(event.type)) return `unknown event type ${JSON.stringify(event.type)}`;
  const spec = EVENT_SPECS[event.type];
  for (const field of spec.needs) {
    if (event[field] === undefined) return `${event.type} needs ${field}`;
  }
  const checker = dataCheckers.get(event.type)!;
  if (!checker.Check(event.data)) {
    const first = checker.Errors(event.data).First();
    return `${event.type} data${first ? `${first.path || '/'}: ${first.message}` : ' invalid'}`;
  }
  if (event.type === 'action.state' && event.state === 'ASSIGNED' && !(event.data as { node?: string }).node) {
    return 'action.state ASSIGNED needs data.node';
  }
  if (isBatchType(event.type)) {
    const items = batchItems(event);
    if (items.length === 0) return `${event.type} needs at least one item`;
    const seen = new Set<string>();
    for (let i = 0; i < items.length; i++) {
      const item = items[i]!;
      if (seen.has(item.actionId)) return `${event.type} names action ${item.actionId} twice`;
      seen.add(item.actionId);
      if ('state' in item && item.state === 'ASSIGNED' && !item.data.node) {
        return `${event.type} item ${i}: ASSIGNED needs data.node`;
      }
    }
  }
  return undefined;
}

/**
 * The event that item `index` of a batch event stands for (same origin, seq and clock): an action.state for an
 * item of action.states, an action.created for one of actions.created.
 */
export function itemEvent(batch: LedgerEvent, index: number): LedgerEvent {
  const item = batchItems(batch)[index]!;
  const { origin, seq, lamport, ts } = batch;
  const { goalId, actionId, data } = item;
  // Literals of one shape (see itemOf in batching.ts on spreads).
  if (ITEMS_ARE[batch.type] === 'action.created') {
    return { origin, seq, lamport, ts, type: 'action.created', goalId, actionId, data };
  }
  const { epoch, state } = item as TransitionItem;
  return { origin, seq, lamport, ts, type: 'action.state', goalId, actionId, epoch, state, data };
}

/**
 * The events a stored event stands for: itself, or for a batch event (action.states, actions.created) one event
 * per item. What readers of the log (event streams, watchers) use to see every event, batched or not.
 */
export function expandEvent(event: LedgerEvent): LedgerEvent[] {
  if (!isBatchType(event.type)) return [event];
  return batchItems(event).map((_, i) => itemEvent(event, i));
}

/** What one action event says, for readers that need no more (see visitActionEvents). */
export interface ActionEventFields {
  type: 'action.state' | 'action.created';
  actionId: string;
  /** action.state only. */
  epoch?: number;
  state?: string;
}

/**
 * Calls `visit` with the fields of each action event `event` stands for (each item of a batch event, or the
 * event itself), in order, without building an event per item as expandEvent does: a burst stores up to 1,000
 * transitions per event, and readers that look only at these fields (which action, which state) run on every
 * node for every event. The object passed is reused between calls: copy what must outlive the call.
 */
export function visitActionEvents(event: LedgerEvent, visit: (fields: Readonly<ActionEventFields>) => void): void {
  const fields: ActionEventFields = { type: 'action.state', actionId: '' };
  if (isBatchType(event.type)) {
    fields.type = ITEMS_ARE[event.type]!;
    for (const item of batchItems(event)) {
      fields.actionId = item.actionId;
      fields.epoch = (item as TransitionItem).epoch;
      fields.state = (item as TransitionItem).state;
      visit(fields);
    }
  } else if ((event.type === 'action.state' || event.type === 'action.created') && event.actionId !== undefined) {
    fields.type = event.type;
    fields.actionId = event.actionId;
    fields.epoch = event.epoch;
    fields.state = event.state;
    visit(fields);
  }
}

export const KNOWN_STATES: ReadonlySet<string> = new Set(ACTION_STATES);
