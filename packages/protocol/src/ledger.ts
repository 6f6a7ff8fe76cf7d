import { type Static, Type } from '@sinclair/typebox';
import { Int, List, Str } from './schema.js';

/** Every state an action can be in (HART OS ActionState plus approval and cancellation). */
export const ACTION_STATES = [
  'PENDING',
  'ASSIGNED',
  'IN_PROGRESS',
  'STATUS_VERIFICATION_REQUESTED',
  'COMPLETED',
  'ERROR',
  'FALLBACK_REQUESTED',
  'FALLBACK_RECEIVED',
  'RECIPE_REQUESTED',
  'RECIPE_RECEIVED',
  'TERMINATED',
  'PREVIEW_PENDING',
  'PREVIEW_APPROVED',
  'CANCELLED',
] as const;
export const ActionState = Type.Union(ACTION_STATES.map((s) => Type.Literal(s)));
export type ActionState = Static<typeof ActionState>;

/**
 * One entry of the replicated ledger. `origin` + `seq` identify it (one append-only log per origin);
 * `lamport` orders it against other origins' events. `type` and `data` are interpreted by the ledger's fold.
 */
export const LedgerEvent = Type.Object({
  origin: Str(128, 1),
  seq: Int(1),
  lamport: Int(0),
  ts: Int(),
  type: Str(64, 1),
  goalId: Type.Optional(Str(128)),
  actionId: Type.Optional(Str(128)),
  epoch: Type.Optional(Int()),
  state: Type.Optional(ActionState),
  data: Type.Optional(Type.Unknown()),
});
export type LedgerEvent = Static<typeof LedgerEvent>;

/** Events pushed on the gossip events topic, batched per tick. */
export const EventBatch = Type.Object({ events: List(LedgerEvent, 10_000) });
export type EventBatch = Static<typeof EventBatch>;

/** Highest contiguous seq held per origin. */
export const VersionVector = Type.Record(Str(128, 1), Int(), { maxProperties: 100_000 });
export type VersionVector = Static<typeof VersionVector>;

export const SyncRequest = Type.Object({
  have: VersionVector,
  limit: Int(1, 100_000),
  /** Only these origins, each up to and including this seq: a gap fill asks for the missing range, no more. */
  upTo: Type.Optional(VersionVector),
  /**
   * Only events the responder has held for at least this many ms. A periodic pull repairs what gossip lost;
   * what was written just now is most likely still on its way by gossip, and pulling it too would send it twice.
   */
  settledMs: Type.Optional(Int(0, 600_000)),
});
export type SyncRequest = Static<typeof SyncRequest>;

export const SyncResponse = Type.Object({ events: List(LedgerEvent, 100_000), more: Type.Boolean() });
export type SyncResponse = Static<typeof SyncResponse>;
