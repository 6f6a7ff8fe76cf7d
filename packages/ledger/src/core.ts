import { createHash } from 'node:crypto';
import type { ActionState, LedgerEvent, VersionVector } from '@hermes-mesh/protocol';
import { canonicalJson, sameValue } from './canonical.js';
import { LogEntry } from './codec.js';
import { checkSemantics, type EventType, scopeOf } from './events.js';
import {
  type Action,
  type Apply,
  addToEntity,
  applyActionEvent,
  applyGoalEvent,
  applyNodeEvent,
  type Entity,
  type FoldContext,
  type Goal,
  type NodeRecord,
  refold,
} from './fold.js';
import { type SearchHit, SearchIndex } from './search.js';

/** An event the fold kept but did not apply, and why. Part of the replicated state: every replica agrees. */
export interface RejectedEvent {
  origin: string;
  seq: number;
  type: string;
  goalId?: string;
  actionId?: string;
  reason: string;
}

/** An origin that sent two different events under one seq. The first one held stays; the other is refused. */
export interface SeqConflict {
  origin: string;
  seq: number;
  kept: LedgerEvent;
  refused: LedgerEvent;
}

export type AcceptOutcome =
  | { kind: 'applied'; entries: Array<{ entry: LogEntry; bytes: Uint8Array }> }
  | { kind: 'duplicate' }
  | { kind: 'held' }
  | { kind: 'conflict'; conflict: SeqConflict };

export interface GoalQuery {
  state?: Goal['state'];
  /** submittedAt >= since */
  since?: number;
  /** submittedAt < until */
  until?: number;
  limit?: number;
}

export interface ActionQuery {
  goalId?: string;
  node?: string;
  state?: ActionState;
  /** updatedAt >= since */
  since?: number;
  /** updatedAt < until */
  until?: number;
  limit?: number;
}

/** The compact image of the fold stored in a snapshot: views plus the positions of each entity's events. */
export interface FoldImage {
  position: number;
  goals: EntityImage<Goal>[];
  actions: EntityImage<Action>[];
  nodes: EntityImage<NodeRecord>[];
  unroutable: Array<[number, string]>;
  /** Every goal id an action's events named, with those actions (created or not). */
  goalRefs: Array<[goalId: string, actionIds: string[]]>;
}

type EntityImage<V> = [key: string, view: V | undefined, positions: number[], rejected: Array<[number, string]>];

interface HeldEvent {
  event: LedgerEvent;
  bytes: Uint8Array;
}

/** Events parked per origin ahead of a gap, at most this many in all; beyond it they are dropped and pulled later. */
const MAX_HELD = 200_000;

/**
 * The in-memory ledger: per-origin logs, the version vector, and the fold (goals, actions, nodes) with its
 * indexes. Pure: no I/O, no clock. Storage and replication wrap it.
 */
export class LedgerCore {
  readonly logs = new Map<string, LogEntry[]>();
  readonly byPosition: LogEntry[] = [];
  private readonly held = new Map<string, Map<number, HeldEvent>>();
  private heldCount = 0;
  /** Highest Lamport clock seen: the next local event ticks past it. */
  clock = 0;
  private readonly goals = new Map<string, Entity<Goal>>();
  private readonly actions = new Map<string, Entity<Action>>();
  private readonly nodes = new Map<string, Entity<NodeRecord>>();
  private readonly unroutable = new Map<LogEntry, string>();
  /** Every action id an event has named under a goal, created or not: re-folded when the goal changes. */
  private readonly actionIdsByGoalRef = new Map<string, Set<string>>();
  /**
   * Query indexes derived from the views alone (actions by goal, node, state; full-text search). After an open
   * they are built on the first query that needs them, then kept up to date by the fold; undefined until then.
   */
  private indexes: Indexes | undefined = emptyIndexes();
  private readonly conflictLog: SeqConflict[] = [];
  private readonly context: FoldContext = {
    coordinatorOf: (goalId) => this.goals.get(goalId)?.view?.coordinator,
  };

  get position(): number {
    return this.byPosition.length;
  }

  seqOf(origin: string): number {
    return this.logs.get(origin)?.length ?? 0;
  }

  versionVector(): VersionVector {
    const vector: VersionVector = {};
    for (const [origin, log] of this.logs) vector[origin] = log.length;
    return vector;
  }

  /**
   * Takes one envelope-valid event. The next seq of its origin is logged and folded (with any held events it
   * unblocks); an older seq is a duplicate or a conflict; a later one waits for the gap to fill.
   */
  accept(event: LedgerEvent, bytes: Uint8Array): AcceptOutcome {
    const have = this.seqOf(event.origin);
    if (event.seq <= have) return this.againstLogged(event);
    if (event.seq > have + 1) return this.hold(event, bytes);
    const entries = [{ entry: this.appendEntry(event, bytes.length), bytes }];
    this.foldEntry(entries[0]!.entry);
    this.drainHeld(event.origin, entries);
    return { kind: 'applied', entries };
  }

  /** True when events of `origin` are parked behind a gap (then the next one must go through `accept`). */
  hasHeld(origin: string): boolean {
    return this.held.has(origin);
  }

  /**
   * Logs and folds the next event of an origin with nothing held: what `accept` does for it, without the
   * outcome objects. `semanticsChecked` says the caller has already run checkSemantics and it passed.
   */
  acceptNext(event: LedgerEvent, size: number, semanticsChecked: boolean): LogEntry {
    if (event.seq !== this.seqOf(event.origin) + 1 || this.held.has(event.origin)) {
      throw new Error(`${event.origin}/${event.seq} is not the next event of its origin`);
    }
    const entry = this.appendEntry(event, size);
    this.foldEntry(entry, semanticsChecked);
    return entry;
  }

  private againstLogged(event: LedgerEvent): AcceptOutcome {
    const kept = this.logs.get(event.origin)![event.seq - 1]!.event;
    if (sameValue(kept, event)) return { kind: 'duplicate' };
    return { kind: 'conflict', conflict: this.recordConflict(kept, event) };
  }

  private recordConflict(kept: LedgerEvent, refused: LedgerEvent): SeqConflict {
    const conflict = { origin: kept.origin, seq: kept.seq, kept, refused };
    this.conflictLog.push(conflict);
    return conflict;
  }

  private hold(event: LedgerEvent, bytes: Uint8Array): AcceptOutcome {
    // Seeing an event, even one parked behind a gap, advances the Lamport clock: what this node writes next
    // must sort after it (a worker's progress after the assignment it was handed directly).
    if (event.lamport > this.clock) this.clock = event.lamport;
    let parked = this.held.get(event.origin);
    const already = parked?.get(event.seq);
    if (already) {
      if (sameValue(already.event, event)) return { kind: 'duplicate' };
      return { kind: 'conflict', conflict: this.recordConflict(already.event, event) };
    }
    if (this.heldCount >= MAX_HELD) return { kind: 'held' };
    if (!parked) {
      parked = new Map();
      this.held.set(event.origin, parked);
    }
    parked.set(event.seq, { event, bytes });
    this.heldCount++;
    return { kind: 'held' };
  }

  private drainHeld(origin: string, out: Array<{ entry: LogEntry; bytes: Uint8Array }>): void {
    const parked = this.held.get(origin);
    if (!parked) return;
    for (let next = this.seqOf(origin) + 1; parked.has(next); next++) {
      const { event, bytes } = parked.get(next)!;
      parked.delete(next);
      this.heldCount--;
      const entry = this.appendEntry(event, bytes.length);
      this.foldEntry(entry);
      out.push({ entry, bytes });
    }
    if (parked.size === 0) this.held.delete(origin);
  }

  /** Origins with events parked behind a gap: [origin, seq held locally, lowest parked seq]. */
  gaps(): Array<{ origin: string; have: number; heldFrom: number; held: number }> {
    const out = [];
    for (const [origin, parked] of this.held) {
      out.push({ origin, have: this.seqOf(origin), heldFrom: Math.min(...parked.keys()), held: parked.size });
    }
    return out;
  }

  /** Places an event in its origin's log at the next position, without folding (restore from storage). */
  appendEntry(event: LedgerEvent, size: number): LogEntry {
    const entry = new LogEntry(this.byPosition.length + 1, size, event.origin, event.seq, event);
    this.logOf(event.origin).push(entry);
    this.byPosition.push(entry);
    if (event.lamport > this.clock) this.clock = event.lamport;
    return entry;
  }

  /**
   * Places a stored event of `origin` at the next position and next seq without decoding it: its bytes are
   * `segment[offset, offset + size)`, decoded when first read. The caller restores the fold (and the Lamport
   * clock) from a snapshot covering it.
   */
  appendStored(origin: string, size: number, segment: Buffer, offset: number): LogEntry {
    const log = this.logOf(origin);
    const entry = new LogEntry(this.byPosition.length + 1, size, origin, log.length + 1, undefined, segment, offset);
    log.push(entry);
    this.byPosition.push(entry);
    return entry;
  }

  private logOf(origin: string): LogEntry[] {
    let log = this.logs.get(origin);
    if (!log) {
      log = [];
      this.logs.set(origin, log);
    }
    return log;
  }

  /** Folds a logged entry; `semanticsChecked` says checkSemantics already passed on its event. */
  foldEntry(entry: LogEntry, semanticsChecked = false): void {
    const event = entry.event;
    if (!semanticsChecked) {
      const invalid = checkSemantics(event);
      if (invalid !== undefined) {
        this.unroutable.set(entry, invalid);
        return;
      }
    }
    switch (scopeOf(event.type as EventType)) {
      case 'goal':
        this.foldGoal(entry);
        break;
      case 'action':
        this.foldAction(entry);
        break;
      case 'node':
        this.addTo(this.nodes, event.origin, entry, applyNodeEvent);
        break;
    }
  }

  private addTo<V>(map: Map<string, Entity<V>>, key: string, entry: LogEntry, apply: Apply<V>): Entity<V> {
    let entity = map.get(key);
    if (!entity) {
      entity = { key, entries: [], view: undefined, rejected: undefined };
      map.set(key, entity);
    }
    addToEntity(entity, entry, apply, this.context);
    return entity;
  }

  private foldGoal(entry: LogEntry): void {
    const goalId = entry.event.goalId!;
    const before = this.goals.get(goalId)?.view;
    const coordinatorBefore = before?.coordinator;
    const textBefore = before && this.indexes && goalText(before);
    const entity = this.addTo(this.goals, goalId, entry, applyGoalEvent);
    const after = entity.view;
    if (after && this.indexes && goalText(after) !== textBefore) {
      this.indexes.search.setDocument('goal', goalId, goalText(after));
    }
    // The coordinator decides which action events count: when it changes, so may every action of the goal.
    if (after?.coordinator !== coordinatorBefore) this.refoldActionsOf(goalId);
  }

  private refoldActionsOf(goalId: string): void {
    for (const actionId of this.actionIdsByGoalRef.get(goalId) ?? []) {
      const entity = this.actions.get(actionId)!;
      const before = this.indexes && entity.view && indexedFields(entity.view);
      refold(entity, applyActionEvent, this.context);
      this.reindexAction(actionId, before, entity.view);
    }
  }

  private foldAction(entry: LogEntry): void {
    const { actionId, goalId } = entry.event as Required<Pick<LedgerEvent, 'actionId' | 'goalId'>>;
    const known = this.actions.get(actionId);
    // Nearly every event of an action names the goal its first one did; only a new pairing needs the index.
    if (known?.view?.goalId !== goalId && known?.entries[0]?.event.goalId !== goalId) {
      addToSet(this.actionIdsByGoalRef, goalId, actionId);
    }
    const existing = known?.view;
    const before = this.indexes && existing && indexedFields(existing);
    const entity = this.addTo(this.actions, actionId, entry, applyActionEvent);
    this.reindexAction(actionId, before, entity.view);
  }

  private reindexAction(id: string, before: IndexedFields | undefined, view: Action | undefined): void {
    const indexes = this.indexes;
    if (!indexes) return;
    const after = view && indexedFields(view);
    if (before?.goalId !== after?.goalId) moveInIndex(indexes.byGoal, id, before?.goalId, after?.goalId);
    if (before?.node !== after?.node) moveInIndex(indexes.byNode, id, before?.node, after?.node);
    if (before?.state !== after?.state) moveInIndex(indexes.byState, id, before?.state, after?.state);
    if (after && before?.text !== after.text) indexes.search.setDocument('action', id, after.text);
    if (!after && before) indexes.search.setDocument('action', id, '');
  }

  /** Leaves the query indexes unbuilt until a query needs them (open: the fold is restored or replayed first). */
  deferIndexes(): void {
    this.indexes = undefined;
  }

  /** The query indexes, built from the views when this is the first query since the ledger was opened. */
  private queryIndexes(): Indexes {
    if (this.indexes) return this.indexes;
    const indexes = emptyIndexes();
    // Search ranks newer documents first: number them in the order their entities first appeared in the log.
    const docs: Array<[first: number, kind: 'goal' | 'action', id: string, text: string]> = [];
    for (const [id, entity] of this.goals) {
      if (entity.view) docs.push([firstPosition(entity), 'goal', id, goalText(entity.view)]);
    }
    for (const [id, entity] of this.actions) {
      const view = entity.view;
      if (!view) continue;
      addToSet(indexes.byGoal, view.goalId, id);
      if (view.node !== undefined) addToSet(indexes.byNode, view.node, id);
      addToSet(indexes.byState, view.state, id);
      docs.push([firstPosition(entity), 'action', id, indexedFields(view).text]);
    }
    docs.sort((a, b) => a[0] - b[0]);
    for (const [, kind, id, text] of docs) indexes.search.setDocument(kind, id, text);
    this.indexes = indexes;
    return indexes;
  }

  // ---- queries ----

  goal(id: string): Goal | undefined {
    return this.goals.get(id)?.view;
  }

  goalsMatching(query: GoalQuery = {}): Goal[] {
    const out: Goal[] = [];
    const limit = query.limit ?? Number.POSITIVE_INFINITY;
    for (const { view } of this.goals.values()) {
      if (out.length >= limit) break;
      if (!view) continue;
      if (query.state !== undefined && view.state !== query.state) continue;
      if (query.since !== undefined && view.submittedAt < query.since) continue;
      if (query.until !== undefined && view.submittedAt >= query.until) continue;
      out.push(view);
    }
    return out;
  }

  action(id: string): Action | undefined {
    return this.actions.get(id)?.view;
  }

  actionsMatching(query: ActionQuery = {}): Action[] {
    const candidates = this.actionCandidates(query);
    const out: Action[] = [];
    const limit = query.limit ?? Number.POSITIVE_INFINITY;
    for (const id of candidates) {
      if (out.length >= limit) break;
      const view = this.actions.get(id)?.view;
      if (!view) continue;
      if (query.goalId !== undefined && view.goalId !== query.goalId) continue;
      if (query.node !== undefined && view.node !== query.node) continue;
      if (query.state !== undefined && view.state !== query.state) continue;
      if (query.since !== undefined && view.updatedAt < query.since) continue;
      if (query.until !== undefined && view.updatedAt >= query.until) continue;
      out.push(view);
    }
    return out;
  }

  /** The smallest index that covers the query, so a narrow query never walks every action. */
  private actionCandidates(query: ActionQuery): Iterable<string> {
    const sets: Set<string>[] = [];
    if (query.goalId === undefined && query.node === undefined && query.state === undefined) return this.actions.keys();
    const { byGoal, byNode, byState } = this.queryIndexes();
    if (query.goalId !== undefined) sets.push(byGoal.get(query.goalId) ?? new Set());
    if (query.node !== undefined) sets.push(byNode.get(query.node) ?? new Set());
    if (query.state !== undefined) sets.push(byState.get(query.state) ?? new Set());
    return sets.reduce((a, b) => (a.size <= b.size ? a : b));
  }

  node(id: string): NodeRecord | undefined {
    return this.nodes.get(id)?.view;
  }

  nodeList(): NodeRecord[] {
    return [...this.nodes.values()].flatMap((e) => (e.view ? [e.view] : []));
  }

  search(query: string, limit?: number): SearchHit[] {
    return this.queryIndexes().search.search(query, limit);
  }

  /** Rejected events, all or those of one goal or action. */
  /** An action's own events in replay order, each with the reason when the fold rejected it. */
  history(actionId: string): Array<{ event: LedgerEvent; rejected?: string }> {
    const entity = this.actions.get(actionId);
    if (!entity) return [];
    return entity.entries.map((entry) => {
      const reason = entity.rejected?.get(entry);
      return reason === undefined ? { event: entry.event } : { event: entry.event, rejected: reason };
    });
  }

  rejections(filter: { goalId?: string; actionId?: string } = {}): RejectedEvent[] {
    const out: RejectedEvent[] = [];
    const collect = (rejected: Map<LogEntry, string> | undefined) => {
      if (rejected) for (const [entry, reason] of rejected) out.push(rejectedEvent(entry.event, reason));
    };
    if (filter.actionId !== undefined) {
      const entity = this.actions.get(filter.actionId);
      if (entity) collect(entity.rejected);
      return out;
    }
    if (filter.goalId !== undefined) {
      const goal = this.goals.get(filter.goalId);
      if (goal) collect(goal.rejected);
      for (const id of this.actionIdsByGoalRef.get(filter.goalId) ?? []) collect(this.actions.get(id)!.rejected);
      return out;
    }
    for (const map of [this.goals, this.actions, this.nodes] as Map<string, Entity<unknown>>[]) {
      for (const entity of map.values()) collect(entity.rejected);
    }
    collect(this.unroutable);
    return out;
  }

  conflicts(): readonly SeqConflict[] {
    return this.conflictLog;
  }

  counts() {
    return {
      events: this.byPosition.length,
      goals: this.goals.size,
      actions: this.actions.size,
      nodes: this.nodes.size,
      held: this.heldCount,
      conflicts: this.conflictLog.length,
    };
  }

  /**
   * A hash of the replicated state: every view and every rejection, in key order. Two replicas holding the
   * same events give the same hash whatever order the events came in; local facts (positions) are left out.
   */
  stateHash(): string {
    const hash = createHash('sha256');
    const kinds: Array<[string, Map<string, Entity<unknown>>]> = [
      ['goal', this.goals as Map<string, Entity<unknown>>],
      ['action', this.actions as Map<string, Entity<unknown>>],
      ['node', this.nodes as Map<string, Entity<unknown>>],
    ];
    for (const [kind, map] of kinds) {
      for (const key of [...map.keys()].sort()) {
        const entity = map.get(key)!;
        hash.update(`${kind}\u0000${key}\u0000${canonicalJson(entity.view)}\u0000`);
        hash.update(rejectionsText(entity.rejected));
      }
    }
    hash.update(rejectionsText(this.unroutable));
    return hash.digest('hex');
  }

  /** The rejection the fold holds for an entry right now (a late event can still change it). */
  rejectionOf(entry: LogEntry): string | undefined {
    const event = entry.event;
    const unroutable = this.unroutable.get(entry);
    if (unroutable !== undefined) return unroutable;
    if (event.actionId !== undefined && event.type.startsWith('action.')) {
      return this.actions.get(event.actionId)?.rejected?.get(entry);
    }
    if (event.type.startsWith('node.')) return this.nodes.get(event.origin)?.rejected?.get(entry);
    return event.goalId === undefined ? undefined : this.goals.get(event.goalId)?.rejected?.get(entry);
  }

  // ---- snapshots ----

  /** Forgets the fold (not the log): the caller folds the log again. */
  resetFold(): void {
    for (const map of [this.goals, this.actions, this.nodes, this.unroutable, this.actionIdsByGoalRef]) map.clear();
    this.indexes = undefined;
  }

  foldImage(): FoldImage {
    return {
      position: this.position,
      goals: imageOf(this.goals),
      actions: imageOf(this.actions),
      nodes: imageOf(this.nodes),
      unroutable: [...this.unroutable].map(([entry, reason]) => [entry.position, reason]),
      goalRefs: [...this.actionIdsByGoalRef].map(([goalId, ids]) => [goalId, [...ids]]),
    };
  }

  /**
   * Restores the fold from an image taken at `image.position`. Every entry up to that position must already be
   * in `byPosition` (appendEntry); events after it are folded by the caller. Throws on an image that does not
   * fit the log, so the caller can fall back to a full replay.
   */
  restoreFold(image: FoldImage): void {
    if (image.position > this.byPosition.length) throw new Error('snapshot is ahead of the log');
    const entryAt = (position: number) => {
      const entry = this.byPosition[position - 1];
      if (!entry || position > image.position) throw new Error(`snapshot names position ${position}`);
      return entry;
    };
    restoreEntities(this.goals, image.goals, entryAt);
    restoreEntities(this.actions, image.actions, entryAt);
    restoreEntities(this.nodes, image.nodes, entryAt);
    for (const [position, reason] of image.unroutable) this.unroutable.set(entryAt(position), reason);
    for (const [goalId, ids] of image.goalRefs) {
      for (const id of ids) if (!this.actions.has(id)) throw new Error(`snapshot names unknown action ${id}`);
      this.actionIdsByGoalRef.set(goalId, new Set(ids));
    }
    this.indexes = undefined;
  }
}

interface Indexes {
  byGoal: Map<string, Set<string>>;
  byNode: Map<string, Set<string>>;
  byState: Map<string, Set<string>>;
  search: SearchIndex;
}

function emptyIndexes(): Indexes {
  return { byGoal: new Map(), byNode: new Map(), byState: new Map(), search: new SearchIndex() };
}

/** Where an entity first appears in the local log (its entries are in replay order, not log order). */
function firstPosition(entity: Entity<unknown>): number {
  let first = Number.POSITIVE_INFINITY;
  for (const entry of entity.entries) if (entry.position < first) first = entry.position;
  return first;
}

interface IndexedFields {
  goalId: string;
  node: string | undefined;
  state: ActionState;
  text: string;
}

function indexedFields(action: Action): IndexedFields {
  const text = action.output?.summary ? `${action.description}\n${action.output.summary}` : action.description;
  return { goalId: action.goalId, node: action.node, state: action.state, text };
}

function goalText(goal: Goal): string {
  return goal.title ? `${goal.title}\n${goal.text}` : goal.text;
}

function addToSet(map: Map<string, Set<string>>, key: string, value: string): void {
  let set = map.get(key);
  if (!set) {
    set = new Set();
    map.set(key, set);
  }
  set.add(value);
}

function moveInIndex(map: Map<string, Set<string>>, id: string, from?: string, to?: string): void {
  if (from !== undefined) {
    const set = map.get(from);
    set?.delete(id);
    if (set?.size === 0) map.delete(from);
  }
  if (to !== undefined) addToSet(map, to, id);
}

function rejectedEvent(event: LedgerEvent, reason: string): RejectedEvent {
  const out: RejectedEvent = { origin: event.origin, seq: event.seq, type: event.type, reason };
  if (event.goalId !== undefined) out.goalId = event.goalId;
  if (event.actionId !== undefined) out.actionId = event.actionId;
  return out;
}

function rejectionsText(rejected: Map<LogEntry, string> | undefined): string {
  if (!rejected) return '\u0001';
  const lines = [...rejected].map(([entry, reason]) => `${entry.origin}\u0000${entry.seq}\u0000${reason}`);
  return `${lines.sort().join('\n')}\u0001`;
}

function imageOf<V>(map: Map<string, Entity<V>>): EntityImage<V>[] {
  const out: EntityImage<V>[] = [];
  for (const entity of map.values()) {
    const rejected: Array<[number, string]> = [];
    if (entity.rejected) for (const [entry, reason] of entity.rejected) rejected.push([entry.position, reason]);
    out.push([entity.key, entity.view, entity.entries.map((e) => e.position), rejected]);
  }
  return out;
}

function restoreEntities<V>(
  map: Map<string, Entity<V>>,
  images: EntityImage<V>[],
  entryAt: (position: number) => LogEntry,
): void {
  for (const [key, view, positions, rejected] of images) {
    // The decoded array of positions becomes the array of entries (no second array per entity).
    const entries = positions as unknown as LogEntry[];
    for (let i = 0; i < positions.length; i++) entries[i] = entryAt(positions[i]!);
    const entity: Entity<V> = { key, entries, view, rejected: undefined };
    if (rejected.length > 0) {
      entity.rejected = new Map();
      for (const [position, reason] of rejected) entity.rejected.set(entryAt(position), reason);
    }
    map.set(key, entity);
  }
}
