import { createHash, randomBytes } from 'node:crypto';
import { type ActionRecipe, loadActionRecipe, saveRecipe } from '@hermes-mesh/executor';
import {
  type Action,
  type ActionEventFields,
  type EventInput,
  type Ledger,
  type LedgerEntry,
  type Replicator,
  visitActionEvents,
} from '@hermes-mesh/ledger';
import type { Membership, MeshNode } from '@hermes-mesh/mesh';
import type { FailedAction, FallbackProposal } from '@hermes-mesh/planner';
import type { Advert, Assignment, LedgerEvent } from '@hermes-mesh/protocol';
import { PROTOCOLS } from '@hermes-mesh/protocol';
import { chooseModel, freeSlots, rankMeshModels } from '@hermes-mesh/scheduler';
import type { Logger } from 'pino';
import {
  type ActionSpec,
  DEFAULT_APPROVAL_TIMEOUT_MS,
  DEFAULT_MAX_DEPTH,
  type Delegation,
  type GoalRequest,
  ledgerActionId,
  MAX_FALLBACKS,
  type Requirements,
} from './spec.js';

/** A live node as placement sees it: its advert and how many actions this coordinator has running there. */
export interface NodeView {
  advert: Advert;
  /** Actions this coordinator has assigned there and not yet seen finish. */
  inFlight: number;
  /** Slots there busy with work this coordinator did not assign (see othersBusyOn). */
  othersBusy: number;
  /** Models those in-flight llm actions use (their VRAM is reserved until the node shows them loaded). */
  inFlightModels: string[];
}

export interface PlacementRequest {
  actionId: string;
  kind: ActionSpec['kind'];
  requires: Requirements;
  policy: ActionSpec['policy'];
}

/** Placement: the scheduler package behind a seam, so the loop is tested with any strategy. */
export type Placer = (
  nodes: NodeView[],
  requests: PlacementRequest[],
) => {
  placements: Array<{ actionId: string; nodeId: string; model?: string }>;
  waiting: Array<{ actionId: string; explanation: string }>;
};

export interface CoordinatorInit {
  ledger: Ledger;
  mesh: MeshNode;
  /** The node's replicator: workers' results arrive through it (onPush). */
  replicator: Pick<Replicator, 'onPush'>;
  membership: Membership;
  place: Placer;
  logger: Logger;
  /** Attempts per action before it fails for good (default 3). */
  maxAttempts?: number;
  /** First retry delay; doubles per attempt (default 200 ms). */
  backoffMs?: number;
  /** After a restart, how long to wait for nodes to reappear before re-placing their actions (default 3 s). */
  startupGraceMs?: number;
  /** How long a suspect node with no connection keeps its actions before they are re-placed (default 1 s). */
  suspectGraceMs?: number;
  assignTimeoutMs?: number;
  /** Where recipes are saved (prompts/ under it); without it goals neither create nor reuse recipes. */
  recipesDir?: string;
  /** The verifier model of autonomous goals: what to do about an action that failed for good. */
  verifier?: { model: string; propose: (failed: FailedAction) => Promise<FallbackProposal> };
}

export interface Coordinator {
  submit(request: GoalRequest): Promise<{ goalId: string; mode: 'create' | 'reuse' }>;
  cancel(goalId: string, reason: string): Promise<'cancelled' | 'not-found' | 'already-finished'>;
  /** Why an action waits, when placement could not put it anywhere. */
  waitingReason(actionId: string): string | undefined;
  /** A person's answer for an action waiting for approval after it failed. */
  decide(actionId: string, decision: 'retry' | 'abort'): Promise<'ok' | 'not-found' | 'not-waiting'>;
  stop(): void;
}

/** How a FALLBACK_REQUESTED reason starts while the verifier model is asked (a restart asks again). */
const VERIFIER_REASON = 'autonomous: asking the verifier model';

const ACTIVE_ON_NODE = new Set(['ASSIGNED', 'IN_PROGRESS']);
const DONE = new Set(['COMPLETED', 'TERMINATED', 'CANCELLED', 'RECIPE_REQUESTED', 'RECIPE_RECEIVED']);

/** A goal the coordinator will not take, with why: the API turns `code` into its status. */
export class SubmitError extends Error {
  constructor(
    message: string,
    readonly code: 'refused' | 'not-found' | 'invalid',
  ) {
    super(message);
    this.name = 'SubmitError';
  }
}

export function newGoalId(): string {
  return `g${randomBytes(8).toString('hex')}`;
}

/**
 * Action ids in the order they started waiting, each once. (A Set iterated from the front after deletes skips
 * every deleted entry still in its table on each look: releasing 20k waiters one slot at a time was quadratic.)
 */
class WaitQueue {
  private order: string[] = [];
  private head = 0;
  private readonly members = new Set<string>();

  get size(): number {
    return this.members.size;
  }

  add(id: string): void {
    if (this.members.has(id)) return;
    this.members.add(id);
    this.order.push(id);
  }

  /** The oldest waiter, removed; undefined when none waits. */
  shift(): string | undefined {
    while (this.head < this.order.length) {
      const id = this.order[this.head++]!;
      if (!this.members.delete(id)) continue;
      if (this.head >= 1024 && this.head * 2 >= this.order.length) {
        this.order = this.order.slice(this.head);
        this.head = 0;
      }
      return id;
    }
    return undefined;
  }
}

export function specOf(action: Action): ActionSpec | undefined {
  return action.spec as ActionSpec | undefined;
}

/**
 * The coordinator's decision loop. Its state is a fold of the ledger: it writes goals, assignments and verdicts
 * as events, reacts to the events nodes write, and after a restart picks every unfinished goal up from the ledger.
 */
export async function createCoordinator(init: CoordinatorInit): Promise<Coordinator> {
  const { ledger, mesh, membership, logger } = init;
  const self = mesh.peerId;
  const maxAttempts = init.maxAttempts ?? 3;
  const backoffMs = init.backoffMs ?? 200;
  const startedAt = Date.now();
  const graceMs = init.startupGraceMs ?? 3_000;
  const suspectGraceMs = init.suspectGraceMs ?? 1_000;

  const candidates = new Set<string>();
  const dependents = new Map<string, string[]>();
  const remaining = new Map<string, Set<string>>();
  const inFlight = new Map<string, Set<string>>();
  /** The model of each llm action in flight that names one. */
  const modelInFlight = new Map<string, string>();
  const waiting = new Map<string, string>();
  /** Ready actions held back because every slot was taken: placed as soon as a slot frees, not on a timer. */
  const slotWaiters = new WaitQueue();
  const retryTimers = new Set<NodeJS.Timeout>();
  let scheduled = false;
  let passRunning = false;
  let passAgain = false;
  let stopped = false;

  const owns = (goalId: string | undefined) => goalId !== undefined && ledger.goal(goalId)?.coordinator === self;

  function track(action: Action): void {
    for (const dep of action.dependsOn) {
      const list = dependents.get(dep) ?? [];
      if (!list.includes(action.id)) list.push(action.id);
      dependents.set(dep, list);
    }
    let open = remaining.get(action.goalId);
    if (!open) {
      open = new Set();
      remaining.set(action.goalId, open);
    }
    if (action.state === 'COMPLETED') open.delete(action.id);
    else open.add(action.id);
    if (action.node && ACTIVE_ON_NODE.has(action.state)) markInFlight(action.node, action.id);
  }

  /** A new action of ours: its dependencies and goal are tracked, and it is a candidate for placement. */
  function takeUp(action: Action): void {
    track(action);
    candidates.add(action.id);
  }

  function markInFlight(node: string, actionId: string) {
    let set = inFlight.get(node);
    if (!set) {
      set = new Set();
      inFlight.set(node, set);
    }
    set.add(actionId);
    const a = ledger.action(actionId);
    const spec = a ? specOf(a) : undefined;
    if (spec?.kind === 'llm' && spec.requires.model) modelInFlight.set(actionId, spec.requires.model);
  }

  /** Models of the llm actions in flight on a node (each pass asks, so it reads only the llm ones). */
  function modelsInFlight(node: string): string[] {
    const out: string[] = [];
    if (modelInFlight.size === 0) return out;
    for (const id of inFlight.get(node) ?? []) {
      const model = modelInFlight.get(id);
      if (model) out.push(model);
    }
    return out;
  }

  /** Per node, the advert last seen and how many of our actions were in flight there when it came. */
  const advertSeen = new Map<string, { startedAt: number; seq: number; ours: number }>();

  /**
   * Slots busy with other coordinators' work: the advert's busy count less ours at the time it came. Ours
   * finishing after the advert must not look like someone else's work, or freed slots would idle for up to a
   * heartbeat. When the estimate is low, the node refuses the extra assignment and it is placed again.
   */
  function othersBusyOn(nodeId: string, advert: Advert): number {
    // The node says how many of its busy slots are ours, as of the same moment: exact.
    const byCoordinator = advert.slots.byCoordinator;
    if (byCoordinator) return Math.max(0, advert.slots.busy - (byCoordinator[self] ?? 0));
    let seen = advertSeen.get(nodeId);
    if (!seen || seen.seq !== advert.seq || seen.startedAt !== advert.startedAt) {
      seen = { startedAt: advert.startedAt, seq: advert.seq, ours: inFlight.get(nodeId)?.size ?? 0 };
      advertSeen.set(nodeId, seen);
    }
    return Math.max(0, advert.slots.busy - seen.ours);
  }

  function clearInFlight(actionId: string) {
    modelInFlight.delete(actionId);
    for (const set of inFlight.values()) {
      if (set.delete(actionId)) releaseSlot();
    }
  }

  /** A slot freed somewhere: the actions that waited for one get their turn, oldest first. */
  function releaseSlot() {
    releaseWaiters(1);
  }

  function releaseWaiters(n: number) {
    let released = 0;
    while (released < n) {
      const id = slotWaiters.shift();
      if (id === undefined) break;
      candidates.add(id);
      released++;
    }
    if (released > 0) schedule();
  }

  function schedule(): void {
    if (scheduled || stopped) return;
    scheduled = true;
    // Coalesce: everything that became ready in this turn of the event loop is placed in one batch.
    setImmediate(() => {
      scheduled = false;
      void runPass();
    });
  }

  function later(actionId: string, ms: number) {
    const t = setTimeout(() => {
      retryTimers.delete(t);
      candidates.add(actionId);
      schedule();
    }, ms);
    retryTimers.add(t);
  }

  /** Depth limits: an agent's goal is one level below its parent's; past max_depth, or under a parent that
   * forbids subagents, it is refused before anything is written. */
  function delegationOf(request: GoalRequest): Delegation {
    const d = request.delegation ?? {};
    let depth = d.depth ?? 0;
    let maxDepth = d.maxDepth ?? DEFAULT_MAX_DEPTH;
    if (d.parentGoalId) {
      const parent = ledger.actions({ goalId: d.parentGoalId })[0];
      const parentDelegation = parent ? specOf(parent)?.delegation : undefined;
      if (!ledger.goal(d.parentGoalId)) throw new SubmitError(`parent goal ${d.parentGoalId} not found`, 'not-found');
      if (parentDelegation) {
        if (!parentDelegation.allowSubagents) {
          throw new SubmitError(`goal ${d.parentGoalId} does not allow subagents (allow_subagents=false)`, 'refused');
        }
        depth = Math.max(depth, parentDelegation.depth + 1);
        maxDepth = Math.min(maxDepth, parentDelegation.maxDepth);
      } else depth = Math.max(depth, 1);
    }
    if (depth > maxDepth) {
      throw new SubmitError(`delegation depth ${depth} exceeds max_depth ${maxDepth}: do the work yourself`, 'refused');
    }
    const out: Delegation = { depth, maxDepth, allowSubagents: d.allowSubagents ?? true };
    if (d.parentGoalId) out.parentGoalId = d.parentGoalId;
    return out;
  }

  /** An llm action naming a model that no node of the mesh has ever offered fails now, before anything runs. */
  function checkModelsKnown(request: GoalRequest): void {
    const ranked = rankMeshModels(membership.members().map((m) => m.advert));
    for (const a of request.actions) {
      const model = a.kind === 'llm' ? a.requires?.model : undefined;
      if (!model) continue;
      const provider = a.requires?.provider;
      const choice = chooseModel({ ranked, complexity: 'low', model, ...(provider ? { provider } : {}) });
      if (!choice.ok) throw new SubmitError(`action ${a.id}: ${choice.error}`, 'invalid');
    }
  }

  // ---- speculative goals: a fast answer from the cheapest capable model, the expert one later ----
  function speculate(request: GoalRequest): GoalRequest {
    const ranked = rankMeshModels(
      membership
        .members()
        .filter((m) => m.state === 'alive')
        .map((m) => m.advert),
    );
    const extra: GoalRequest['actions'] = [];
    const actions = request.actions.map((a) => {
      if (a.kind !== 'llm' || a.requires?.model) return a;
      const complexity = a.requires?.complexity ?? 'medium';
      const provider = a.requires?.provider;
      const expert = chooseModel({ ranked, complexity, ...(provider ? { provider } : {}) });
      // The cheapest capable model: the lowest-scoring one that still clears the 'low' bar, loaded first.
      const candidates = ranked.filter((r) => !provider || r.provider === provider);
      const fast = [...candidates].sort(
        (x, y) => Number(y.loadedOn.length > 0) - Number(x.loadedOn.length > 0) || x.score - y.score,
      )[0];
      if (!expert.ok || !fast || fast.name === expert.model) return a;
      extra.push({
        ...a,
        id: `${a.id}~fast`.slice(0, 64),
        requires: { ...a.requires, model: fast.name, provider: fast.provider },
        dependsOn: a.dependsOn,
      });
      return { ...a, requires: { ...a.requires, model: expert.model, provider: expert.provider } };
    });
    return { ...request, actions: [...actions, ...extra] };
  }

  // ---- recipes: CREATE on completion, REUSE on the same goal later ----
  const prompts = new Map<string, { promptId: string; request: GoalRequest }>();

  /** The same goal text and plan give the same prompt id, so a repeat finds the recipe of the first run. */
  function promptIdOf(request: GoalRequest): string {
    const shape = request.actions.map((a) => [a.id, a.flowId, a.kind, a.params, a.dependsOn]);
    return createHash('sha256')
      .update(JSON.stringify([request.goal, shape]))
      .digest('hex')
      .slice(0, 16);
  }

  /** Every llm action's recorded output, when a recipe exists for all of them; otherwise undefined (CREATE). */
  async function recordedOutputs(
    promptId: string,
    request: GoalRequest,
  ): Promise<Map<string, ActionRecipe> | undefined> {
    if (!init.recipesDir) return undefined;
    const llm = request.actions.filter((a) => a.kind === 'llm');
    if (llm.length === 0) return undefined;
    const found = new Map<string, ActionRecipe>();
    for (const a of llm) {
      const recipe = await loadActionRecipe(init.recipesDir, { promptId, flowId: a.flowId, actionId: a.id });
      if ('error' in recipe) {
        logger.info({ promptId, action: a.id, why: recipe.error }, 'no recipe to reuse: running in CREATE mode');
        return undefined;
      }
      found.set(a.id, recipe);
    }
    return found;
  }

  /** CREATE: a completed goal's flows become recipe files, announced in the ledger. */
  async function saveRecipes(goalId: string): Promise<void> {
    const entry = prompts.get(goalId);
    if (!init.recipesDir || !entry) return;
    prompts.delete(goalId);
    const { promptId, request } = entry;
    const now = Date.now();
    const actions: ActionRecipe[] = [];
    for (const a of request.actions) {
      const done = ledger.action(ledgerActionId(goalId, a.id));
      const spec = done ? specOf(done) : undefined;
      if (!done?.output || spec?.kind !== a.kind) continue; // a replayed action adds nothing new
      actions.push({
        promptId,
        flowId: a.flowId,
        actionId: a.id,
        kind: a.kind,
        params: a.params,
        output: { value: done.output.value, summary: done.output.summary ?? '', bytes: done.output.bytes ?? 0 },
        savedAt: now,
      });
    }
    if (actions.length === 0) return;
    const flows = request.flows.map((f) => ({
      promptId,
      flowId: f.id,
      persona: f.persona,
      actions: request.actions
        .filter((a) => a.flowId === f.id)
        .map((a) => ({ actionId: a.id, kind: a.kind, dependsOn: a.dependsOn })),
      savedAt: now,
    }));
    await saveRecipe(init.recipesDir, {
      prompt: { promptId, goal: request.goal, flows: request.flows.map((f) => f.id), savedAt: now },
      flows,
      actions,
    });
    await ledger.appendMany(
      flows.map((f) => ({
        type: 'recipe.saved' as const,
        goalId,
        data: { promptId, flowId: f.flowId, ref: `prompts/${promptId}_${f.flowId}_recipe.json` },
      })),
    );
  }

  // ---- resume from the ledger ----
  for (const goal of ledger.goals({ state: 'ACTIVE' })) {
    if (goal.coordinator !== self) continue;
    for (const action of ledger.actions({ goalId: goal.id })) {
      track(action);
      if (!DONE.has(action.state)) candidates.add(action.id);
    }
  }
  if (candidates.size > 0) logger.info({ actions: candidates.size }, 'resuming unfinished goals from the ledger');

  /** Is this action's node gone (dead, left, or never seen again after our own restart)? */
  function nodeGone(node: string | undefined): boolean {
    if (!node) return true;
    const member = membership.get(node);
    if (!member) return Date.now() - startedAt > graceMs;
    if (member.state === 'dead' || member.state === 'left') return true;
    // Suspect and unreachable for a second (a killed process drops its connections at once): re-place now
    // rather than at the dead timeout. Safe even if it comes back: its epoch is fenced.
    return (
      member.state === 'suspect' && Date.now() - member.since >= suspectGraceMs && !mesh.connectedPeers().includes(node)
    );
  }

  /** Attempts of the action as it now stands: a fallback starts a fresh count. */
  function attemptsSinceFallback(action: Action): number {
    return action.attempts - (specOf(action)?.attemptsBefore ?? 0);
  }

  function readyToPlace(action: Action): boolean {
    const goal = ledger.goal(action.goalId);
    if (goal?.state !== 'ACTIVE' || goal.coordinator !== self) return false;
    const state = action.state;
    const placeable =
      state === 'PENDING' ||
      state === 'PREVIEW_APPROVED' ||
      state === 'FALLBACK_RECEIVED' ||
      (state === 'ERROR' && action.reason === 'retryable' && attemptsSinceFallback(action) < maxAttempts) ||
      (ACTIVE_ON_NODE.has(state) && nodeGone(action.node));
    if (!placeable) return false;
    return action.dependsOn.every((dep) => ledger.action(dep)?.state === 'COMPLETED');
  }

  /**
   * Alive, or suspect but still connected: a busy node's adverts run late under load, and leaving it idle for
   * being busy stalled whole meshes for seconds. A node that is really gone fails the assignment, which is then
   * placed elsewhere.
   */
  function placeable(m: { nodeId: string; state: string }, connected: ReadonlySet<string>): boolean {
    return m.state === 'alive' || (m.state === 'suspect' && connected.has(m.nodeId));
  }

  /** The nodes work may go to now, with what we know of their load. */
  function nodeViews(): NodeView[] {
    const connected = new Set(mesh.connectedPeers());
    return membership
      .members()
      .filter((m) => placeable(m, connected) && m.advert.slots.total > 0)
      .map((m) => ({
        advert: m.advert,
        inFlight: inFlight.get(m.nodeId)?.size ?? 0,
        othersBusy: othersBusyOn(m.nodeId, m.advert),
        inFlightModels: modelsInFlight(m.nodeId),
      }));
  }

  const freeSlotsOn = (nodes: NodeView[]) => nodes.reduce((s, n) => s + freeSlots(n), 0);

  async function runPass(): Promise<void> {
    if (passRunning) {
      // One pass at a time: this one's work is picked up when the running one ends (no spinning meanwhile).
      passAgain = true;
      return;
    }
    passRunning = true;
    try {
      const ready: Action[] = [];
      for (const id of candidates) {
        const action = ledger.action(id);
        candidates.delete(id);
        if (action && readyToPlace(action)) ready.push(action);
      }
      if (ready.length === 0) return;
      const nodes = nodeViews();
      // Only as many as there are free slots go to placement; the rest wait for a slot to free, cheaply.
      const free = freeSlotsOn(nodes);
      const held = ready.splice(free);
      if (held.length > 0) {
        const reason = `all ${nodes.reduce((s, n) => s + n.advert.slots.total, 0)} slots on ${nodes.length} nodes are busy`;
        for (const a of held) {
          slotWaiters.add(a.id);
          waiting.set(a.id, reason);
        }
      }
      if (ready.length === 0) return;
      const byId = new Map(ready.map((a) => [a.id, a]));
      const { placements, waiting: unplaced } = init.place(
        nodes,
        ready.map((a) => {
          const spec = specOf(a)!;
          return { actionId: a.id, kind: spec.kind, requires: spec.requires, policy: spec.policy };
        }),
      );
      for (const w of unplaced) {
        waiting.set(w.actionId, w.explanation);
        // Re-evaluated when adverts change: a cheap retry keeps it simple and bounded.
        later(w.actionId, 500);
      }
      const perNode = new Map<string, Array<{ action: Action; model?: string }>>();
      for (const p of placements) {
        const action = byId.get(p.actionId)!;
        waiting.delete(p.actionId);
        const list = perNode.get(p.nodeId) ?? [];
        list.push(p.model === undefined ? { action } : { action, model: p.model });
        perNode.set(p.nodeId, list);
      }
      // Only the ASSIGNED writes hold the pass; each node's ack is awaited on its own, so one slow node (its ack
      // late, or lost until the timeout) does not stop placement on all the others.
      const sent = await Promise.all([...perNode].map(([node, list]) => assign(node, list)));
      for (const { delivery } of sent) {
        delivery.catch((err) => logger.error({ err: String(err) }, 'assignment delivery failed'));
      }
    } catch (err) {
      logger.error({ err: String(err) }, 'placement pass failed');
    } finally {
      passRunning = false;
      if (passAgain) {
        passAgain = false;
        schedule();
      }
    }
  }

  /**
   * One batch per node: ASSIGNED events in one ledger write, one direct message, one ack. Resolves once the
   * ASSIGNED events are written, with the delivery (message, ack, refusals) still going on.
   */
  async function assign(
    node: string,
    list: Array<{ action: Action; model?: string }>,
  ): Promise<{ delivery: Promise<void> }> {
    const results = await ledger.appendMany(
      list.map(({ action }) => ({
        type: 'action.state' as const,
        goalId: action.goalId,
        actionId: action.id,
        epoch: action.epoch + 1,
        state: 'ASSIGNED' as const,
        data: { node },
      })),
    );
    // What the node ingests is what was stored: the pass's ASSIGNED transitions are one action.states event.
    const events = new Set<LedgerEvent>();
    const assignments: Assignment[] = [];
    results.forEach((r, i) => {
      const { action, model } = list[i]!;
      if (!r.ok || r.rejected) {
        logger.warn({ action: action.id, error: r.ok ? r.rejected : r.error }, 'assignment not recorded');
        return;
      }
      clearInFlight(action.id);
      markInFlight(node, action.id);
      events.add(r.stored ?? r.event);
      assignments.push(assignmentOf(action, r.event.epoch!, model));
    });
    // Wrapped: an async function returning a promise would wait for it.
    return { delivery: assignments.length === 0 ? Promise.resolve() : deliver(node, assignments, [...events]) };
  }

  async function deliver(node: string, assignments: Assignment[], events: LedgerEvent[]): Promise<void> {
    let acks: Array<{ actionId: string; accepted: boolean; reason?: string }>;
    try {
      const reply = await mesh.request(
        node,
        PROTOCOLS.assign,
        'assign',
        { assignments, events },
        {
          timeoutMs: init.assignTimeoutMs ?? 5_000,
        },
      );
      if (reply.kind !== 'ack') throw new Error(`expected ack, got ${reply.kind}`);
      acks = reply.body.acks;
    } catch (err) {
      acks = assignments.map((a) => ({ actionId: a.actionId, accepted: false, reason: `unreachable: ${String(err)}` }));
    }
    const refused = acks.filter((a) => !a.accepted);
    if (refused.length === 0) return;
    logger.info({ node, refused: refused.length, reason: refused[0]!.reason }, 'node refused assignments');
    await ledger.appendMany(
      refused.map((ack) => {
        const a = assignments.find((x) => x.actionId === ack.actionId)!;
        return {
          type: 'action.state' as const,
          goalId: a.goalId,
          actionId: a.actionId,
          epoch: a.epoch,
          state: 'PENDING' as const,
          data: { reason: (ack.reason ?? 'refused').slice(0, 4000) },
        };
      }),
    );
    for (const ack of refused) {
      clearInFlight(ack.actionId);
      later(ack.actionId, backoffMs);
    }
  }

  function assignmentOf(action: Action, epoch: number, model?: string): Assignment {
    const spec = specOf(action)!;
    let params = spec.params;
    const inputs = inputsOf(action);
    // Object.assign, not a spread then `inputs`: that gives every such object a hidden class of its own (see itemOf).
    if (inputs) params = Object.assign({}, params, { inputs });
    const a: Assignment = {
      goalId: action.goalId,
      actionId: action.id,
      epoch,
      kind: spec.kind,
      params,
      timeoutMs: spec.timeoutMs,
    };
    const chosen = model ?? spec.requires.model;
    if (chosen) a.model = chosen;
    if (spec.requires.provider) a.provider = spec.requires.provider;
    if (spec.delegation) a.delegation = spec.delegation;
    return a;
  }

  /** Outputs of the actions this one depends on, keyed by their plan ids, for `fromActions` inputs. */
  function inputsOf(action: Action): Record<string, unknown> | undefined {
    if (action.dependsOn.length === 0) return undefined;
    const inputs: Record<string, unknown> = {};
    for (const dep of action.dependsOn) {
      const d = ledger.action(dep);
      const planId = d ? (specOf(d)?.planId ?? dep) : dep;
      if (d?.output)
        inputs[planId] = { value: d.output.value, summary: d.output.summary ?? '', bytes: d.output.bytes ?? 0 };
    }
    return inputs;
  }

  // ---- reacting to what nodes report ----
  const verdicts: Array<{ action: Action; state: 'COMPLETED' | 'ERROR' | 'TERMINATED'; error?: string }> = [];
  let verdictFlush = false;

  function verdict(v: (typeof verdicts)[number]) {
    verdicts.push(v);
    if (verdictFlush) return;
    verdictFlush = true;
    setImmediate(() => void flushVerdicts());
  }

  async function flushVerdicts() {
    verdictFlush = false;
    const batch = verdicts.splice(0);
    if (batch.length === 0) return;
    const inputs: EventInput[] = batch.map(({ action, state, error }) => ({
      type: 'action.state' as const,
      goalId: action.goalId,
      actionId: action.id,
      epoch: action.epoch,
      state,
      data: error === undefined ? {} : { error },
    }));
    // A goal whose last open actions complete in this batch is finished in the same write: one disk write and
    // one event hop less before the user sees the result.
    const finishing = goalsCompletedBy(batch);
    for (const goalId of finishing) inputs.push(goalFinished(goalId, 'COMPLETED', summaryOf(goalId)));
    const results = await ledger.appendMany(inputs);
    for (const [i, goalId] of finishing.entries()) {
      if (results[batch.length + i]?.ok) await afterGoalFinished(goalId, 'COMPLETED');
    }
  }

  function goalsCompletedBy(batch: typeof verdicts): string[] {
    const completing = new Map<string, Set<string>>();
    for (const v of batch) {
      if (v.state !== 'COMPLETED') continue;
      let ids = completing.get(v.action.goalId);
      if (!ids) {
        ids = new Set();
        completing.set(v.action.goalId, ids);
      }
      ids.add(v.action.id);
    }
    const done: string[] = [];
    for (const [goalId, ids] of completing) {
      const open = remaining.get(goalId);
      if (!open || open.size > ids.size || ledger.goal(goalId)?.state !== 'ACTIVE') continue;
      let all = true;
      for (const id of open) if (!ids.has(id)) all = false;
      if (all) done.push(goalId);
    }
    return done;
  }

  /** A worker's claim of success is checked, not trusted: the output must exist for this epoch, from this node. */
  function verify(action: Action): string | undefined {
    const out = action.output;
    if (!out) return 'no output recorded';
    if (out.epoch !== action.epoch || out.node !== action.node) return 'output from another epoch or node';
    const spec = specOf(action);
    const wantsJson = spec?.kind === 'llm' && (spec.params as { responseFormat?: string }).responseFormat === 'json';
    if (wantsJson && (typeof out.value !== 'object' || out.value === null)) return 'asked for JSON, got none';
    return undefined;
  }

  function goalFinished(goalId: string, outcome: 'COMPLETED' | 'FAILED', summary: string): EventInput {
    return { type: 'goal.finished', goalId, data: { outcome, summary: summary.slice(0, 65_000) } };
  }

  async function finishGoal(goalId: string, outcome: 'COMPLETED' | 'FAILED', summary: string) {
    const goal = ledger.goal(goalId);
    if (goal?.state !== 'ACTIVE') return;
    await ledger.append(goalFinished(goalId, outcome, summary));
    await afterGoalFinished(goalId, outcome);
  }

  async function afterGoalFinished(goalId: string, outcome: 'COMPLETED' | 'FAILED') {
    remaining.delete(goalId);
    if (outcome === 'COMPLETED')
      await saveRecipes(goalId).catch((err) =>
        logger.warn({ goal: goalId, err: String(err) }, 'could not save recipes'),
      );
    else prompts.delete(goalId);
    logger.info({ goal: goalId, outcome }, 'goal finished');
  }

  function onActionEvent(event: Readonly<ActionEventFields>) {
    const action = ledger.action(event.actionId);
    if (!action || !owns(action.goalId)) return;
    if (event.type === 'action.created') {
      takeUp(action);
      schedule();
      return;
    }
    if (event.type !== 'action.state' || event.epoch !== action.epoch || event.state !== action.state) return;
    switch (action.state) {
      case 'STATUS_VERIFICATION_REQUESTED': {
        clearInFlight(action.id);
        const problem = verify(action);
        verdict(
          problem
            ? { action, state: 'ERROR', error: `verification failed: ${problem}` }
            : { action, state: 'COMPLETED' },
        );
        break;
      }
      case 'COMPLETED': {
        clearInFlight(action.id);
        const open = remaining.get(action.goalId);
        open?.delete(action.id);
        for (const d of dependents.get(action.id) ?? []) candidates.add(d);
        if (open && open.size === 0) void finishGoal(action.goalId, 'COMPLETED', summaryOf(action.goalId));
        schedule();
        break;
      }
      case 'ERROR': {
        clearInFlight(action.id);
        const spec = specOf(action);
        const allowed = Math.min(maxAttempts, 1 + (spec?.retries ?? maxAttempts - 1));
        const attempts = attemptsSinceFallback(action);
        if (action.reason === 'retryable' && attempts < allowed) {
          later(action.id, backoffMs * 2 ** (attempts - 1));
        } else if (spec?.autonomous && init.verifier && (spec.fallbacks ?? 0) < MAX_FALLBACKS) {
          void askVerifier(action);
        } else if ((spec?.approvalTimeoutMs ?? 0) > 0) {
          void askForApproval(action, spec!.approvalTimeoutMs!);
        } else {
          verdict({ action, state: 'TERMINATED', error: action.error ?? 'failed' });
          void failGoal(action);
        }
        break;
      }
      case 'FALLBACK_RECEIVED':
        candidates.add(action.id);
        schedule();
        break;
      case 'PENDING':
        candidates.add(action.id);
        schedule();
        break;
      default:
    }
  }

  // ---- autonomous goals: a verifier model proposes a fallback for an action that failed for good ----
  async function askVerifier(action: Action) {
    const verifier = init.verifier!;
    const spec = specOf(action)!;
    // Recorded first, so watch shows what is happening and a restarted coordinator asks again.
    await ledger.append({
      type: 'action.state',
      goalId: action.goalId,
      actionId: action.id,
      epoch: action.epoch,
      state: 'FALLBACK_REQUESTED',
      data: {
        reason: `${VERIFIER_REASON} ${verifier.model} for a fallback`,
        ...(action.error ? { error: action.error.slice(0, 16_000) } : {}),
      },
    });
    await consultVerifier(action.id, spec.approvalTimeoutMs ?? 0);
  }

  async function consultVerifier(actionId: string, approvalTimeoutMs: number) {
    const verifier = init.verifier!;
    const asked = ledger.action(actionId)!;
    const spec = specOf(asked)!;
    // Meanwhile a person may still decide; after the approval timeout, no answer means abort.
    if (approvalTimeoutMs > 0) armApprovalTimer(actionId, approvalTimeoutMs - (Date.now() - asked.updatedAt));
    let proposal: FallbackProposal;
    try {
      proposal = await verifier.propose(failureOf(asked));
    } catch (err) {
      proposal = {
        ok: false,
        attempts: 0,
        problems: [{ file: 'verifier', line: 0, column: 0, field: '', message: String(err) }],
      };
    }
    const now = ledger.action(actionId);
    // A person decided, the goal was cancelled, or the coordinator stopped while the model thought.
    if (stopped || now?.state !== 'FALLBACK_REQUESTED' || now.epoch !== asked.epoch) return;
    if (!proposal.ok) {
      const why = proposal.problems.map((p) => `${p.field ? `${p.field}: ` : ''}${p.message}`).join('; ');
      logger.warn({ action: actionId, why }, 'the verifier model gave no usable fallback: waiting for a person');
      waiting.set(
        actionId,
        `the verifier model ${verifier.model} gave no usable fallback (${why.slice(0, 500)}): hermes-coord approve ${actionId} or --abort`,
      );
      if (approvalTimeoutMs === 0) await decide(actionId, 'abort', `the verifier gave no usable fallback: ${why}`);
      return;
    }
    const reason = `verifier ${verifier.model}: ${proposal.reason}`.slice(0, 4000);
    if (proposal.decision === 'abort') {
      await decide(actionId, 'abort', reason);
      return;
    }
    clearTimeout(approvalTimers.get(actionId));
    approvalTimers.delete(actionId);
    waiting.delete(actionId);
    const replacement = proposal.action;
    const next: ActionSpec = {
      ...spec,
      kind: replacement.kind,
      params: replacement.params,
      timeoutMs: replacement.timeoutMs,
      retries: replacement.retries,
      requires: replacement.requires,
      fallbacks: (spec.fallbacks ?? 0) + 1,
      attemptsBefore: now.attempts,
    };
    logger.info({ action: actionId, kind: next.kind, reason }, 'the verifier proposed a fallback');
    await ledger.append({
      type: 'action.state',
      goalId: now.goalId,
      actionId,
      epoch: now.epoch,
      state: 'FALLBACK_RECEIVED',
      data: { reason, kind: next.kind, spec: next },
    });
  }

  /** What the verifier is shown: the goal, the action as planned, its error and its dependencies' results. */
  function failureOf(action: Action): FailedAction {
    const spec = specOf(action)!;
    return {
      goal: ledger.goal(action.goalId)?.text ?? '',
      action: { id: spec.planId, kind: spec.kind, params: spec.params, description: action.description },
      error: action.error ?? 'failed',
      attempts: attemptsSinceFallback(action),
      dependencies: action.dependsOn.map((dep) => {
        const d = ledger.action(dep);
        return { id: (d && specOf(d)?.planId) ?? dep, summary: d?.output?.summary ?? '' };
      }),
    };
  }

  // ---- a failed action waits for a person: retry or abort, within a timeout ----
  const approvalTimers = new Map<string, NodeJS.Timeout>();

  async function askForApproval(action: Action, timeoutMs: number) {
    const minutes = Math.round(timeoutMs / 60_000);
    await ledger.append({
      type: 'action.state',
      goalId: action.goalId,
      actionId: action.id,
      epoch: action.epoch,
      state: 'FALLBACK_REQUESTED',
      data: {
        reason: `waiting for approval: hermes-coord approve ${action.id} (retry) or --abort; aborts by itself in ${minutes >= 1 ? `${minutes} min` : `${Math.round(timeoutMs / 1000)} s`}`,
        ...(action.error ? { error: action.error.slice(0, 16_000) } : {}),
      },
    });
    armApprovalTimer(action.id, timeoutMs);
  }

  function armApprovalTimer(actionId: string, ms: number) {
    clearTimeout(approvalTimers.get(actionId));
    const timer = setTimeout(
      () => {
        approvalTimers.delete(actionId);
        void decide(actionId, 'abort', 'no decision before the approval timeout');
      },
      Math.max(0, ms),
    );
    timer.unref();
    approvalTimers.set(actionId, timer);
  }

  /** Retry: the action is placed again (a new epoch). Abort: it ends, and its goal fails. */
  async function decide(
    actionId: string,
    decision: 'retry' | 'abort',
    why: string,
  ): Promise<'ok' | 'not-found' | 'not-waiting'> {
    const action = ledger.action(actionId);
    if (!action || !owns(action.goalId)) return 'not-found';
    if (action.state !== 'FALLBACK_REQUESTED') return 'not-waiting';
    clearTimeout(approvalTimers.get(actionId));
    approvalTimers.delete(actionId);
    if (decision === 'retry') {
      await ledger.append({
        type: 'action.state',
        goalId: action.goalId,
        actionId,
        epoch: action.epoch,
        state: 'FALLBACK_RECEIVED',
        data: { reason: why },
      });
    } else {
      await ledger.append({
        type: 'action.state',
        goalId: action.goalId,
        actionId,
        epoch: action.epoch,
        state: 'TERMINATED',
        data: { reason: why, ...(action.error ? { error: action.error.slice(0, 16_000) } : {}) },
      });
      await failGoal(ledger.action(actionId)!);
    }
    return 'ok';
  }

  async function failGoal(action: Action) {
    const goalId = action.goalId;
    await cancelOpenActions(goalId, `goal failed: action ${specOf(action)?.planId ?? action.id} failed`, action.id);
    await finishGoal(
      goalId,
      'FAILED',
      `action ${specOf(action)?.planId ?? action.id} failed after ${action.attempts} attempt(s): ${action.error ?? ''}`,
    );
  }

  function summaryOf(goalId: string): string {
    return ledger
      .actions({ goalId })
      .map((a) => `${specOf(a)?.planId ?? a.id}: ${a.output?.summary ?? a.state}`)
      .join('\n');
  }

  async function cancelOpenActions(goalId: string, reason: string, except?: string) {
    const open = ledger
      .actions({ goalId })
      .filter((a) => a.id !== except && !DONE.has(a.state) && a.state !== 'COMPLETED');
    if (open.length === 0) return;
    await ledger.appendMany(
      open.map((a) => ({
        type: 'action.state' as const,
        goalId,
        actionId: a.id,
        epoch: a.epoch,
        state: 'CANCELLED' as const,
        data: { reason },
      })),
    );
    for (const a of open) clearInFlight(a.id);
  }

  // Resumed actions that were waiting for a decision wait again (after every const above exists).
  for (const id of candidates) {
    const a = ledger.action(id);
    if (a?.state !== 'FALLBACK_REQUESTED') continue;
    const timeout = specOf(a)?.approvalTimeoutMs ?? 0;
    // The verifier's answer was lost with the previous process: ask again.
    if (init.verifier && a.reason?.startsWith(VERIFIER_REASON)) void consultVerifier(id, timeout);
    else if (timeout) armApprovalTimer(id, timeout - (Date.now() - a.updatedAt));
  }

  const unsubscribe = ledger.subscribe(ledger.position(), (entries: LedgerEntry[]) => {
    for (const { event } of entries) visitActionEvents(event, onActionEvent);
  });

  // Workers push their new events here as soon as they are durable (see pushPromptly), and the replicator has
  // folded them when this runs: claims of success are verified now, so the verdict shares their disk write (it is
  // written after them, so it is never durable without them).
  const offPush = init.replicator.onPush((events, peer) => {
    if (stopped) return;
    membership.observeLife(peer);
    let claims = false;
    for (const stored of events) {
      visitActionEvents(stored, (event) => {
        if (event.type === 'action.state' && event.state === 'STATUS_VERIFICATION_REQUESTED') {
          onActionEvent(event);
          claims = true;
        }
      });
    }
    if (claims) void flushVerdicts();
  });

  // Nodes die without writing anything: watch membership for actions stranded on them.
  const deadWatch = setInterval(() => {
    // Free slots also show up in adverts (another coordinator's work ended): give waiters a look regularly.
    // Only as many as could be placed: moving every waiter back to the candidates made each pass scan them all.
    if (slotWaiters.size > 0) releaseWaiters(freeSlotsOn(nodeViews()));
    for (const [node, actions] of inFlight) {
      if (actions.size === 0 || !nodeGone(node)) continue;
      logger.warn({ node, actions: actions.size }, 're-placing actions of a node that is gone');
      for (const id of actions) {
        candidates.add(id);
        modelInFlight.delete(id);
      }
      actions.clear();
      schedule();
    }
  }, 200);
  deadWatch.unref();
  schedule();

  return {
    async submit(request) {
      const goalId = newGoalId();
      const policy = request.policy ?? 'local_preferred';
      const delegation = delegationOf(request);
      if (request.autonomous && !init.verifier) {
        throw new SubmitError(
          'autonomous goals need a verifier model: start the coordinator with HERMES_LLM_URL and HERMES_LLM_MODEL (or HERMES_VERIFIER_MODEL) set',
          'refused',
        );
      }
      if (request.speculative) request = speculate(request);
      checkModelsKnown(request);
      const promptId = promptIdOf(request);
      const recorded = await recordedOutputs(promptId, request);
      const ids = new Set(request.actions.map((a) => a.id));
      for (const a of request.actions) {
        for (const dep of a.dependsOn) {
          if (!ids.has(dep)) throw new SubmitError(`action ${a.id}: unknown dependency ${dep}`, 'invalid');
        }
      }
      const inputs = [
        { type: 'goal.submitted' as const, goalId, data: { text: request.goal, coordinator: self } },
        ...request.flows.map((f) => ({
          type: 'flow.created' as const,
          goalId,
          data: { flowId: f.id, persona: f.persona, ...(f.description ? { description: f.description } : {}) },
        })),
        ...request.actions.map((a) => {
          // REUSE: an llm action with a saved recipe is replayed from it, with no model call.
          const replay = a.kind === 'llm' ? recorded?.get(a.id) : undefined;
          const spec: ActionSpec = {
            planId: a.id,
            kind: replay ? 'recipe' : a.kind,
            params: replay ? { promptId, flowId: a.flowId, actionId: a.id, recorded: replay.output } : a.params,
            timeoutMs: a.timeoutMs ?? 10 * 60_000,
            retries: a.retries ?? maxAttempts - 1,
            requires: a.requires ?? {},
            policy,
            delegation,
            approvalTimeoutMs: request.approvalTimeoutMs ?? DEFAULT_APPROVAL_TIMEOUT_MS,
            ...(request.autonomous ? { autonomous: true } : {}),
          };
          return {
            type: 'action.created' as const,
            goalId,
            actionId: ledgerActionId(goalId, a.id),
            data: {
              flowId: a.flowId,
              kind: a.kind,
              description: a.description ?? `${a.kind} ${a.id}`,
              dependsOn: a.dependsOn.map((d) => ledgerActionId(goalId, d)),
              spec,
            },
          };
        }),
      ];
      // Durable before the caller gets an id: a crash after this line loses nothing. The goal is folded at once,
      // so its ready actions are placed now and their ASSIGNED events share the goal's disk write. (A ledger still
      // loading after its open folds it later: then the durable action.created events get them placed.)
      const written = ledger.appendMany(inputs, { shareTick: true });
      for (const input of inputs) {
        const action = input.type === 'action.created' ? ledger.action(input.actionId) : undefined;
        if (action) takeUp(action);
      }
      void runPass();
      const results = await written;
      const failed = results.find((r) => !r.ok || r.rejected);
      if (failed) throw new Error(`goal not recorded: ${failed.ok ? failed.rejected : failed.error}`);
      // Only llm actions are ever replayed: a goal without one has no recipe worth writing (three files and a
      // replicated event per goal, for nothing).
      if (init.recipesDir && request.actions.some((a) => a.kind === 'llm')) prompts.set(goalId, { promptId, request });
      return { goalId, mode: recorded ? 'reuse' : 'create' };
    },
    async cancel(goalId, reason) {
      const goal = ledger.goal(goalId);
      if (!goal) return 'not-found';
      if (goal.state !== 'ACTIVE') return 'already-finished';
      await cancelOpenActions(goalId, reason);
      await ledger.append({ type: 'goal.cancelled', goalId, data: { reason } });
      remaining.delete(goalId);
      return 'cancelled';
    },
    waitingReason: (actionId) => waiting.get(actionId),
    decide: (actionId, decision) =>
      decide(actionId, decision, decision === 'retry' ? 'retry approved' : 'aborted by user'),
    stop() {
      stopped = true;
      unsubscribe();
      offPush();
      clearInterval(deadWatch);
      for (const t of retryTimers) clearTimeout(t);
      for (const t of approvalTimers.values()) clearTimeout(t);
    },
  };
}
