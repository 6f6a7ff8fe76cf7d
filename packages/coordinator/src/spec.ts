import { ActionKind, Complexity, Policy, ReasoningEffort, Tier } from '@hermes-mesh/protocol';
import { type Static, Type } from '@sinclair/typebox';

export { Policy };

/** Where an action may run: what placement must satisfy. */
export const Requirements = Type.Object(
  {
    model: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
    provider: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
    reasoningEffort: Type.Optional(ReasoningEffort),
    complexity: Type.Optional(Complexity),
    minTier: Type.Optional(Tier),
    labels: Type.Optional(Type.Record(Type.String({ maxLength: 64 }), Type.String({ maxLength: 256 }))),
  },
  { additionalProperties: false },
);
export type Requirements = Static<typeof Requirements>;

/** A goal submitted by an agent carries where it sits in the delegation chain. */
export const Delegation = Type.Object(
  {
    /** 0 for a person's goal; a delegated goal is its parent's depth + 1. */
    depth: Type.Integer({ minimum: 0, maximum: 64 }),
    maxDepth: Type.Integer({ minimum: 0, maximum: 64 }),
    allowSubagents: Type.Boolean(),
    parentGoalId: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
  },
  { additionalProperties: false },
);
export type Delegation = Static<typeof Delegation>;

export const DEFAULT_MAX_DEPTH = 2;

/** How long a failed action waits for a person's decision before it aborts (and fails its goal). */
export const DEFAULT_APPROVAL_TIMEOUT_MS = 10 * 60_000;

/** What the coordinator stores with each action (ledger action.created `spec`): enough to place it again after a restart. */
export const ActionSpec = Type.Object({
  /** The id the plan gave it, unique within the goal. */
  planId: Type.String({ minLength: 1, maxLength: 64 }),
  kind: ActionKind,
  params: Type.Unknown(),
  timeoutMs: Type.Integer({ minimum: 1 }),
  retries: Type.Integer({ minimum: 0, maximum: 10 }),
  requires: Requirements,
  policy: Policy,
  delegation: Type.Optional(Delegation),
  /** After its last attempt fails, how long the action waits for a person to retry or abort it; 0 fails at once. */
  approvalTimeoutMs: Type.Optional(Type.Integer({ minimum: 0 })),
  /** After its last attempt fails, a verifier model proposes a fallback before any person is asked. */
  autonomous: Type.Optional(Type.Boolean()),
  /** Fallbacks this action has had (each replaces the spec), and its attempts before the latest one. */
  fallbacks: Type.Optional(Type.Integer({ minimum: 0 })),
  attemptsBefore: Type.Optional(Type.Integer({ minimum: 0 })),
});
export type ActionSpec = Static<typeof ActionSpec>;

/** A goal as the API takes it: the planner's flattened plan plus per-call options. */
export const GoalRequest = Type.Object(
  {
    goal: Type.String({ minLength: 1, maxLength: 65_536 }),
    policy: Type.Optional(Policy),
    /**
     * Speculative: each llm action without a fixed model also runs at once on the cheapest capable model
     * (as `<id>~fast`), while the action itself runs on the best one; the fast answer shows up first.
     */
    speculative: Type.Optional(Type.Boolean()),
    /**
     * Autonomous: an action that fails for good goes to the coordinator's verifier model, which proposes a
     * replacement (or gives up) instead of stopping for a person; only when it cannot does a person decide.
     */
    autonomous: Type.Optional(Type.Boolean()),
    /** After an action's last attempt fails, how long to wait for a person's retry/abort (default 10 min; 0: fail). */
    approvalTimeoutMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 7 * 24 * 3600 * 1000 })),
    /** Set when an agent delegates this goal: its depth, the limit, and whether the goal may delegate further. */
    delegation: Type.Optional(
      Type.Object(
        {
          parentGoalId: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
          depth: Type.Optional(Type.Integer({ minimum: 0, maximum: 64 })),
          maxDepth: Type.Optional(Type.Integer({ minimum: 0, maximum: 64 })),
          allowSubagents: Type.Optional(Type.Boolean()),
        },
        { additionalProperties: false },
      ),
    ),
    flows: Type.Array(
      Type.Object({
        id: Type.String({ minLength: 1, maxLength: 64 }),
        persona: Type.String({ maxLength: 256 }),
        description: Type.Optional(Type.String({ maxLength: 4096 })),
      }),
      { minItems: 1, maxItems: 1000 },
    ),
    actions: Type.Array(
      Type.Object({
        id: Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_.-]+$' }),
        flowId: Type.String({ minLength: 1, maxLength: 64 }),
        kind: ActionKind,
        description: Type.Optional(Type.String({ maxLength: 16_384 })),
        params: Type.Unknown(),
        dependsOn: Type.Array(Type.String({ maxLength: 64 }), { maxItems: 1024 }),
        timeoutMs: Type.Optional(Type.Integer({ minimum: 1, maximum: 7 * 24 * 3600 * 1000 })),
        retries: Type.Optional(Type.Integer({ minimum: 0, maximum: 10 })),
        requires: Type.Optional(Requirements),
      }),
      { minItems: 1, maxItems: 100_000 },
    ),
  },
  { additionalProperties: false },
);
export type GoalRequest = Static<typeof GoalRequest>;

/** Fallbacks a verifier may propose for one action before a person has to decide. */
export const MAX_FALLBACKS = 2;

/** Ledger action ids are mesh-wide: the goal id namespaces the plan's own ids. */
export function ledgerActionId(goalId: string, planId: string): string {
  return `${goalId}.${planId}`;
}
