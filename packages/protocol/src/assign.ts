import { type Static, Type } from '@sinclair/typebox';
import { LedgerEvent } from './ledger.js';
import { Int, List, Str } from './schema.js';

export const ActionKind = Type.Union([
  Type.Literal('llm'),
  Type.Literal('exec'),
  Type.Literal('builtin'),
  Type.Literal('recipe'),
]);
export type ActionKind = Static<typeof ActionKind>;

/** An action placed on a node under an epoch (fencing token); the node acks before it counts as assigned. */
export const Assignment = Type.Object({
  goalId: Str(128, 1),
  actionId: Str(128, 1),
  epoch: Int(1),
  kind: ActionKind,
  params: Type.Unknown(),
  timeoutMs: Int(1, 7 * 24 * 3600 * 1000),
  model: Type.Optional(Str(256)),
  provider: Type.Optional(Str(128)),
  /**
   * Who the work is for: an agent that delegated it (depth > 0) or a person (depth 0). An llm runner tells the
   * model so, and whether it may delegate further.
   */
  delegation: Type.Optional(
    Type.Object({
      depth: Int(0, 64),
      maxDepth: Int(0, 64),
      allowSubagents: Type.Boolean(),
      parentGoalId: Type.Optional(Str(128)),
    }),
  ),
});
export type Assignment = Static<typeof Assignment>;

export const AssignBatch = Type.Object({
  assignments: List(Assignment, 10_000),
  /**
   * Ledger events the receiver must hold before it acts (the goal, the actions and their ASSIGNED events):
   * ingesting them first advances its Lamport clock, so its progress events always sort after the assignment.
   */
  events: Type.Optional(List(LedgerEvent, 30_000)),
});
export type AssignBatch = Static<typeof AssignBatch>;

export const Ack = Type.Object({
  actionId: Str(128, 1),
  epoch: Int(1),
  accepted: Type.Boolean(),
  reason: Type.Optional(Str(1024)),
});
export type Ack = Static<typeof Ack>;

export const AckBatch = Type.Object({ acks: List(Ack, 10_000) });
export type AckBatch = Static<typeof AckBatch>;
