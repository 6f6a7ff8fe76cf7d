import { createHash } from 'node:crypto';
import type { ActionState, LedgerEvent, VersionVector } from '@hermes-mesh/protocol';
import { canonicalJson, sameValue } from './canonical.js';
import { type FoldEntry, LogEntry } from './codec.js';
import { batchItems, checkSemantics, type EventType, isBatchType, scopeOf } from './events.js';
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
import { EntityMap, FoldEntity, type RestoredKind, type RestoredLog } from './restored.js';
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

/** One kind of entity restored from a snapshot: its keys, the stored views and positions, its rejections. */
export interface RestoredEntities {
  keys: readonly string[];
  store: RestoredKind;
  /** [entity index, position, reason] */
  rejected: ReadonlyArray<readonly [number, number, string]>;
}

/** The fold as a snapshot restores it (see ledger.ts for how it is stored). */
export interface RestoredFold {
  goals: RestoredEntities;
  actions: RestoredEntities;
  nodes: RestoredEntities;
  unroutable: ReadonlyArray<readonly [number, string]>;
  /** The goal references: goal ids, and for each the actions named under it (indices into `actions.keys`). */
  goalRefs: GoalRefsImage;
}

/** Goal references as a snapshot stores them: goal i names actions[start[i] .. start[i + 1]) (action indices). */
export interface GoalRefsImage {
  goals: readonly string[];
  start: Uint32Array;
  actions: Uint32Array;
}

/**
 * Every action id an event has named under each goal, created or not. Those restored from a snapshot stay
 * packed (action indices) until a goal's are needed: a write after the open decodes only the goals it touches.
 */
class GoalRefs {
  private readonly live = new Map<string, Set<string>>();
  private restored:
    | { image: GoalRefsImage; actionKeys: readonly string[]; index?: Map<string, number>; taken: Uint8Array }
    | undefined;

  restore(image: GoalRefsImage, actionKeys: readonly string[]): void {
    const { goals, start, actions } = image;
    if (start.length !== goals.length + 1 || start[0] !== 0 || start[goals.length] !== actions.length) {
      throw new Error('snapshot image malformed');
    }
    for (let i = 0; i < goals.length; i++) if (start[i + 1]! < start[i]!) throw new Error('snapshot image malformed');
    for (let k = 0; k < actions.length; k++) {
      if (actions[k]! >= actionKeys.length) throw new Error('snapshot names an unknown action');
    }
    this.restored = { image, actionKeys, taken: new Uint8Array(goals.length) };
  }

  get(goalId: string): Set<string> | undefined {
    const set = this.live.get(goalId);
    if (set !== undefined || this.restored === undefined) return set;
    const restored = this.restored;
    restored.index ??= new Map(restored.image.goals.map((goal, i) => [goal, i]));
    const i = restored.index.get(goalId);
    if (i === undefined || restored.taken[i] === 1) return undefined;
    const { start, actions } = restored.image;
    const made = new Set<string>();
    for (let k = start[i]!; k < start[i + 1]!; k++) made.add(restored.actionKeys[actions[k]!]!);
    restored.taken[i] = 1;
    this.live.set(goalId, made);
    return made;
  }

  add(goalId: string, actionId: string): void {
    let set = this.get(goalId);
    if (!set) {
      set = new Set();
      this.live.set(goalId, set);
    }
    set.add(actionId);
  }

  /** The image, actions as indices into `actionKeys` (the new image's; restored actions keep their index). */
  image(actionKeys: readonly string[]): GoalRefsImage {
    const goals: string[] = [];
    const start: number[] = [0];
    const actions: number[] = [];
    const restored = this.restored;
    if (restored) {
      const { image, taken } = restored;
      for (let i = 0; i < image.goals.length; i++) {
        if (taken[i] === 1) continue;
        goals.push(image.goals[i]!);
        for (let k = image.start[i]!; k < image.start[i + 1]!; k++) actions.push(image.actions[k]!);
        start.push(actions.length);
      }
    }
    let index: Map<string, number> | undefined;
    for (const [goalId, ids] of this.live) {
      index ??= new Map(actionKeys.map((key, i) => [key, i]));
      goals.push(goalId);
      for (const id of ids) actions.push(index.get(id)!);
      start.push(actions.length);
    }
    return { goals, start: Uint32Array.from(start), actions: Uint32Array.from(actions) };
  }
}

/** An ordered list of one origin's entries (a plain array or an OriginLog). */
export interface EntryList {
  readonly length: number;
  at(index: number): LogEntry | undefined;
}

/**
 * One origin's log: the positions of its events a snapshot restored (seq 1..n), then the entries of later ones.
 */
export class OriginLog implements EntryList {
  private readonly later: LogEntry[] = [];

  constructor(
    private readonly entryAt: (position: number) => LogEntry,
    private readonly restored: Uint32Array = NO_POSITIONS,
  ) {}

  get length(): number {
    return this.restored.length + this.later.length;
  }

  at(index: number): LogEntry | undefined {
    if (index < 0) return undefined;
    if (index < this.restored.length) return this.entryAt(this.restored[index]!);
    return this.later[index - this.restored.length];
  }

  /** Position of the entry at `index` (without making a restored one). */
  positionAt(index: number): number {
    return index < this.restored.length ? this.restored[index]! : this.later[index - this.restored.length]!.position;
  }

  push(entry: LogEntry): void {
    this.later.push(entry);
  }
}

const NO_POSITIONS = new Uint32Array(0);

type EntityKind = 'goal' | 'action' | 'node';

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
  readonly logs = new Map<string, OriginLog>();
  /** Every entry by local position (index position - 1); a hole where a restored event has no entry yet. */
  private readonly byPosition: LogEntry[] = [];
  /** Positions 1..restoredEnd are the restored events: made entries of those (index position - 1), from the
   * first one made; `byPosition` holds the entries after them (index position - restoredEnd - 1). */
  private restoredEntries: Array<LogEntry | undefined> | undefined;
  private restoredEnd = 0;
  /** The events a snapshot restored, when the ledger opened from one. */
  private restoredLog: RestoredLog | undefined;
  private readonly entryAtPosition = (position: number) => this.entryAt(position);
  private readonly held = new Map<string, Map<number, HeldEvent>>();
  private heldCount = 0;
  /** Highest Lamport clock seen: the next local event ticks past it. */
  clock = 0;
  private readonly goals = new EntityMap<Goal>();
  private readonly actions = new EntityMap<Action>();
  private readonly nodes = new EntityMap<NodeRecord>();
  private readonly unroutable = new Map<FoldEntry, string>();
  /** Every action id an event has named under a goal, created or not: re-folded when the goal changes. */
  private readonly goalRefs = new GoalRefs();
  /** Where each kind's restored entities are stored (snapshot images copy those never asked for). */
  private readonly restoredStores = new Map<EntityKind, RestoredKind>();
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
    return this.restoredEnd + this.byPosition.length;
  }

  /** The entry at a local position (1-based); a restored event gets its entry here, the first time. */
  entryAt(position: number): LogEntry {
    if (position > this.restoredEnd) {
      const entry = this.byPosition[position - this.restoredEnd - 1];
      if (entry === undefined) throw new RangeError(`no entry at position ${position}`);
      return entry;
    }
    if (!(position >= 1)) throw new RangeError(`no entry at position ${position}`);
    const restored = this.restoredLog!;
    this.restoredEntries ??= new Array(this.restoredEnd);
    const entry = this.restoredEntries[position - 1];
    if (entry !== undefined) return entry;
    const made = new LogEntry(
      position,
      restored.sizeOf[position - 1]!,
      restored.originAt(position),
      restored.seqOf[position - 1]!,
      undefined,
      restored,
    );
    this.restoredEntries[position - 1] = made;
    return made;
  }

  /** The origin of the event at `position`, without making an entry for it. */
  originAt(position: number): string {
    const restored = this.restoredLog;
    if (restored !== undefined && position <= restored.end) return restored.originAt(position);
    return this.entryAt(position).origin;
  }

  /** The encoded size of the event at `position`, without making an entry for it. */
  sizeAt(position: number): number {
    const restored = this.restoredLog;
    if (restored !== undefined && position <= restored.end) return restored.sizeOf[position - 1]!;
    return this.entryAt(position).size;
  }

  /** True when the event at `position` can be read now (a restored one once its segment is read). */
  readable(position: number): boolean {
    const restored = this.restoredLog;
    if (restored === undefined || position > restored.end) return true;
    const entry = this.restoredEntries?.[position - 1];
    return (entry !== undefined && !entry.pending) || restored.placed(position);
  }

  /** Folds every entry after `position` (restore: the fold up to it came from a snapshot, or is empty). */
  foldAfter(position: number): void {
    for (let p = position + 1; p <= this.position; p++) this.foldEntry(this.entryAt(p));
  }

  /** The entries at positions from + 1 .. to. */
  entriesBetween(from: number, to: number): LogEntry[] {
    const out: LogEntry[] = new Array(Math.max(0, to - from));
    for (let p = from + 1; p <= to; p++) out[p - from - 1] = this.entryAt(p);
    return out;
  }

  /**
   * True when an entry after `position` adds to an entity already in the fold (restored from the snapshot at
   * `position`): folding it reads that entity's events. Called before the entries after it are folded.
   */
  tailTouchesRestored(position: number): boolean {
    for (let p = position + 1; p <= this.position; p++) {
      const event = this.entryAt(p).event;
      if (checkSemantics(event) !== undefined) continue;
      switch (scopeOf(event.type as EventType)) {
        case 'goal':
          // A goal new to the fold can still re-fold actions the snapshot holds (their coordinator is set).
          if (this.goals.has(event.goalId!) || this.goalRefs.get(event.goalId!) !== undefined) return true;
          break;
        case 'action':
          if (this.actions.has(event.actionId!)) return true;
          break;
        case 'actions':
          if (batchItems(event).some((item) => this.actions.has(item.actionId))) return true;
          break;
        case 'node':
          if (this.nodes.has(event.origin)) return true;
          break;
      }
    }
    return false;
  }

  /**
   * Why `event` cannot be folded, when the log under the snapshot turned out damaged and folding it would read
   * events of that part that cannot be read (the entity it adds to, or for a goal also its actions).
   */
  unfoldable(event: LedgerEvent): string | undefined {
    const restored = this.restoredLog;
    if (restored?.failure === undefined || checkSemantics(event) !== undefined) return undefined;
    const touched: Array<FoldEntity<unknown> | undefined> = [];
    switch (scopeOf(event.type as EventType)) {
      case 'goal':
        touched.push(this.goals.get(event.goalId!) as FoldEntity<unknown> | undefined);
        for (const id of this.goalRefs.get(event.goalId!) ?? []) touched.push(this.actions.get(id));
        break;
      case 'action':
        touched.push(this.actions.get(event.actionId!));
        break;
      case 'actions':
        for (const item of batchItems(event)) touched.push(this.actions.get(item.actionId));
        break;
      case 'node':
        touched.push(this.nodes.get(event.origin));
        break;
    }
    for (const entity of touched) {
      const positions = entity?.positions() ?? [];
      for (let i = 0; i < positions.length; i++) {
        if (!this.readable(positions[i]!)) return `cannot fold ${event.type}: ${restored.failure}`;
      }
    }
    return undefined;
  }

  /** The events a snapshot restored, when there are some. */
  get restored(): RestoredLog | undefined {
    return this.restoredLog;
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
   * Logs and folds the next event of an origin: what `accept` does for it, without the outcome objects (the
   * caller has encoded it already). Events of that origin parked behind it stay parked: releaseHeld logs them.
   * `semanticsChecked` says the caller has already run checkSemantics and it passed.
   */
  acceptNext(event: LedgerEvent, size: number, semanticsChecked: boolean): LogEntry {
    if (event.seq !== this.seqOf(event.origin) + 1) {
      throw new Error(`${event.origin}/${event.seq} is not the next event of its origin`);
    }
    const entry = this.appendEntry(event, size);
    this.foldEntry(entry, semanticsChecked);
    return entry;
  }

  /** Logs and folds the events of `origin` parked behind a gap that has just closed, with their bytes. */
  releaseHeld(origin: string): Array<{ entry: LogEntry; bytes: Uint8Array }> {
    const out: Array<{ entry: LogEntry; bytes: Uint8Array }> = [];
    this.drainHeld(origin, out);
    return out;
  }

  private againstLogged(event: LedgerEvent): AcceptOutcome {
    const kept = this.logs.get(event.origin)!.at(event.seq - 1)!.event;
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

  hasGaps(): boolean {
    return this.held.size > 0;
  }

  /** Origins with events parked behind a gap: [origin, seq held locally, lowest parked seq]. */
  gaps(): Array<{ origin: string; have: number; heldFrom: number; held: number }> {
    const out = [];
    for (const [origin, parked] of this.held) {
      let heldFrom = Number.POSITIVE_INFINITY;
      for (const seq of parked.keys()) if (seq < heldFrom) heldFrom = seq;
      out.push({ origin, have: this.seqOf(origin), heldFrom, held: parked.size });
    }
    return out;
  }

  /** Places an event in its origin's log at the next position, without folding (restore from storage). */
  appendEntry(event: LedgerEvent, size: number): LogEntry {
    const entry = new LogEntry(this.position + 1, size, event.origin, event.seq, event);
    this.logOf(event.origin).push(entry);
    this.byPosition.push(entry);
    if (event.lamport > this.clock) this.clock = event.lamport;
    return entry;
  }

  /**
   * Starts the log with the events a snapshot covers, without an entry for any of them (made when needed).
   * The log must be empty; the caller restores the fold (and the Lamport clock) from the same snapshot.
   */
  restoreLog(restored: RestoredLog): void {
    if (this.position !== 0) throw new Error('the log is not empty');
    this.restoredLog = restored;
    this.restoredEnd = restored.end;
    const positions = restored.positionsByOrigin();
    restored.origins.forEach((origin, i) => {
      this.logs.set(origin, new OriginLog(this.entryAtPosition, positions[i]));
    });
  }

  private logOf(origin: string): OriginLog {
    let log = this.logs.get(origin);
    if (!log) {
      log = new OriginLog(this.entryAtPosition);
      this.logs.set(origin, log);
    }
    return log;
  }

  /**
   * Fold work done since this core was made: one unit per event folded, one per item of a batch event (a burst
   * packs up to 1,000 transitions into one event). What a snapshot saves the next open from redoing.
   */
  foldedUnits = 0;

  /** Folds a logged entry; `semanticsChecked` says checkSemantics already passed on its event. */
  foldEntry(entry: LogEntry, semanticsChecked = false): void {
    const event = entry.event;
    this.foldedUnits += isBatchType(event.type) ? Math.max(1, batchItems(event).length) : 1;
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
      case 'actions': {
        const items = batchItems(event);
        for (let i = 0; i < items.length; i++) this.foldAction(entry.itemFor(items[i]!.actionId, i));
        break;
      }
      case 'node':
        this.addTo(this.nodes, event.origin, entry, applyNodeEvent);
        break;
    }
  }

  /** Adds `entry` to the entity of `key` (`entity`, when the caller already looked it up), made if new. */
  private addTo<V>(
    map: EntityMap<V>,
    key: string,
    entry: FoldEntry,
    apply: Apply<V>,
    entity: FoldEntity<V> | undefined = map.get(key),
  ): Entity<V> {
    if (!entity) {
      entity = new FoldEntity<V>(key);
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
    for (const actionId of this.goalRefs.get(goalId) ?? []) {
      const entity = this.actions.get(actionId)!;
      const before = this.indexes && entity.view && indexedFields(entity.view);
      refold(entity, applyActionEvent, this.context);
      this.reindexAction(actionId, before, entity.view);
    }
  }

  private foldAction(entry: FoldEntry): void {
    const { actionId, goalId } = entry.event as Required<Pick<LedgerEvent, 'actionId' | 'goalId'>>;
    const known = this.actions.get(actionId);
    // Nearly every event of an action names the goal its first one did; only a new pairing needs the index.
    if (known?.view?.goalId !== goalId && known?.entries[0]?.event.goalId !== goalId) {
      this.goalRefs.add(goalId, actionId);
    }
    const existing = known?.view;
    const before = this.indexes && existing && indexedFields(existing);
    const entity = this.addTo(this.actions, actionId, entry, applyActionEvent, known);
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
    const collect = (rejected: Map<FoldEntry, string> | undefined) => {
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
      for (const id of this.goalRefs.get(filter.goalId) ?? []) collect(this.actions.get(id)!.rejected);
      return out;
    }
    for (const map of [this.goals, this.actions, this.nodes] as EntityMap<unknown>[]) {
      for (const entity of map.values()) collect(entity.rejected);
    }
    collect(this.unroutable);
    return out;
  }

  conflicts(): readonly SeqConflict[] {
    return this.conflictLog;
  }

  /** Goals, actions and nodes in the fold: what a snapshot writes. */
  entityCount(): number {
    return this.goals.size + this.actions.size + this.nodes.size;
  }

  counts() {
    return {
      events: this.position,
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
    const kinds: Array<[string, EntityMap<unknown>]> = [
      ['goal', this.goals as EntityMap<unknown>],
      ['action', this.actions as EntityMap<unknown>],
      ['node', this.nodes as EntityMap<unknown>],
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
  rejectionOf(entry: FoldEntry): string | undefined {
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

  /**
   * What a snapshot stores of each kind of entity, at the current position: keys, each view packed on its own
   * (one restored and never read since is copied as stored: it is unchanged), the entries' positions in replay
   * order, and the rejections. `pack` packs one view.
   */
  entitiesImage(kind: EntityKind, pack: (view: unknown) => Uint8Array): EntitiesImage {
    const map = this.mapOf(kind);
    const keys: string[] = [];
    const views: Uint8Array[] = [];
    const viewStart = new Uint32Array(map.size + 1);
    const entryStart = new Uint32Array(map.size + 1);
    const positions: Array<ArrayLike<number>> = [];
    const rejected: Array<[number, number, string]> = [];
    let bytes = 0;
    let entries = 0;
    let i = 0;
    const add = (key: string, view: Uint8Array, at: ArrayLike<number>) => {
      keys.push(key);
      views.push(view);
      bytes += view.length;
      viewStart[i + 1] = bytes;
      positions.push(at);
      entries += at.length;
      entryStart[i + 1] = entries;
      i++;
    };
    const addEntity = (entity: FoldEntity<unknown>) => {
      if (entity.rejected) for (const [entry, reason] of entity.rejected) rejected.push([i, entry.position, reason]);
      const stored = entity.restoredView();
      add(entity.key, stored ?? (entity.view === undefined ? EMPTY_BYTES : pack(entity.view)), entity.positions());
    };
    // Restored entities never asked for are copied as stored, without making them.
    const store = this.restoredStores.get(kind);
    for (let r = 0; r < map.restoredCount; r++) {
      if (map.isMade(r) || store === undefined) addEntity(map.restoredAt(r));
      else add(map.restoredKey(r), store.viewBytes(r), store.positionsOf(r));
    }
    for (const entity of map.liveValues()) addEntity(entity);
    const flat = new Uint32Array(entries);
    let k = 0;
    for (const at of positions) {
      if (at instanceof Uint32Array) {
        flat.set(at, k);
        k += at.length;
      } else {
        for (let j = 0; j < at.length; j++) flat[k++] = at[j]!;
      }
    }
    return { keys, views: Buffer.concat(views, bytes), viewStart, positions: flat, entryStart, rejected };
  }

  unroutableImage(): Array<[number, string]> {
    return [...this.unroutable].map(([entry, reason]) => [entry.position, reason]);
  }

  /** The goal references, actions as indices into the actions image's keys. */
  goalRefsImage(actionKeys: readonly string[]): GoalRefsImage {
    return this.goalRefs.image(actionKeys);
  }

  /**
   * Restores the fold from a snapshot at `restored.end`: the log must start with the restored events
   * (restoreLog); events after them are placed and folded by the caller. Views and entries stay undecoded
   * until read, and so do goal references. Throws on an image that does not fit.
   */
  restoreFold(fold: RestoredFold): void {
    const restored = this.restoredLog;
    if (!restored || this.position < restored.end) throw new Error('the log is not the restored one');
    const end = restored.end;
    this.restoreEntities(this.goals, fold.goals, end, () => this.entryAtPosition);
    // An action's entry at a position may be its item of a batch event there.
    this.restoreEntities(this.actions, fold.actions, end, (key) => (p) => this.entryAt(p).itemFor(key));
    this.restoreEntities(this.nodes, fold.nodes, end, () => this.entryAtPosition);
    this.restoredStores.set('goal', fold.goals.store);
    this.restoredStores.set('action', fold.actions.store);
    this.restoredStores.set('node', fold.nodes.store);
    for (const [position, reason] of fold.unroutable) {
      if (!(position >= 1 && position <= end)) throw new Error(`snapshot names position ${position}`);
      this.unroutable.set(this.entryAt(position), reason);
    }
    this.goalRefs.restore(fold.goalRefs, fold.actions.keys);
    this.indexes = undefined;
  }

  private restoreEntities<V>(
    map: EntityMap<V>,
    image: RestoredEntities,
    end: number,
    entriesOf: (key: string) => (position: number) => FoldEntry,
  ): void {
    const { keys, store, rejected } = image;
    const bad = store.check(end);
    if (bad !== undefined || keys.length !== store.count) throw new Error(bad ?? 'snapshot image malformed');
    if (!keys.every((key) => typeof key === 'string')) throw new Error('snapshot image malformed');
    // Entities are made when first asked for: an open makes only those with rejections.
    map.restore(keys, (i) => new FoldEntity<V>(keys[i]!, entriesOf(keys[i]!), store, i));
    for (const [index, position, reason] of rejected) {
      if (!(index >= 0 && index < keys.length) || !(position >= 1 && position <= end)) {
        throw new Error('snapshot image malformed');
      }
      const entity = map.restoredAt(index);
      if (!entity.rejected) entity.rejected = new Map();
      entity.rejected.set(entriesOf(entity.key)(position), reason);
    }
  }

  private mapOf(kind: EntityKind): EntityMap<unknown> {
    const map = kind === 'goal' ? this.goals : kind === 'action' ? this.actions : this.nodes;
    return map as EntityMap<unknown>;
  }
}

/** One kind of entity as a snapshot stores it (see entitiesImage). */
export interface EntitiesImage {
  keys: string[];
  views: Buffer;
  viewStart: Uint32Array;
  positions: Uint32Array;
  entryStart: Uint32Array;
  rejected: Array<[number, number, string]>;
}

const EMPTY_BYTES = new Uint8Array(0);

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
function firstPosition(entity: FoldEntity<unknown>): number {
  let first = Number.POSITIVE_INFINITY;
  const positions = entity.positions();
  for (let i = 0; i < positions.length; i++) if (positions[i]! < first) first = positions[i]!;
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

function rejectionsText(rejected: Map<FoldEntry, string> | undefined): string {
  if (!rejected) return '\u0001';
  const lines = [...rejected].map(([entry, reason]) => `${entry.origin}\u0000${entry.seq}\u0000${reason}`);
  return `${lines.sort().join('\n')}\u0001`;
}
