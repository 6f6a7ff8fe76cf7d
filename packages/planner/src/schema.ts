import { ActionKind, Complexity, Labels, Policy, Tier } from '@hermes-mesh/protocol';
import { type Static, Type } from '@sinclair/typebox';

/**
 * The plan file: goal -> flows (one persona each) -> actions with dependencies (HART OS's decomposition).
 * Every object forbids unknown properties, so a typo (`afer:`) is an error instead of a silently ignored field.
 * `kind` and `params` are loose here on purpose: they are checked by the semantic pass, which can say
 * "unknown kind 'shell'" or point inside params, where a schema union could only say "expected union value".
 */

/** Ids travel into ledger action ids (`<goal>.<action>`) and file names (recipes), hence the narrow alphabet. */
const ID_PATTERN = '^[A-Za-z0-9_.-]+$';
export const PlanId = Type.String({ minLength: 1, maxLength: 64, pattern: ID_PATTERN });

// Shared with the coordinator and the scheduler: one vocabulary for policies and complexity.
export { COMPLEXITIES, Complexity, Policy } from '@hermes-mesh/protocol';

/** '30s', '5m', '250ms', '2h', or a number of milliseconds. */
export const Timeout = Type.Union([Type.String({ minLength: 1, maxLength: 32 }), Type.Integer({ minimum: 1 })], {
  description: "a duration such as '30s', '5m', '250ms', '2h', or a number of milliseconds",
});
export type Timeout = Static<typeof Timeout>;

const ModelName = Type.String({ minLength: 1, maxLength: 256 });
const ProviderName = Type.String({ minLength: 1, maxLength: 128 });

/** What placement must satisfy; shared by actions and (model, provider) by plan defaults. */
const requirementFields = {
  model: Type.Optional(ModelName),
  provider: Type.Optional(ProviderName),
  complexity: Type.Optional(Complexity),
  minTier: Type.Optional(Tier),
  labels: Type.Optional(Labels),
};

export const PlanAction = Type.Object(
  {
    id: PlanId,
    kind: Type.String({ minLength: 1, maxLength: 32 }),
    description: Type.Optional(Type.String({ maxLength: 16_384 })),
    params: Type.Unknown(),
    /** Ids of actions (in any flow) that must complete first. */
    after: Type.Optional(Type.Array(PlanId, { maxItems: 1024 })),
    timeout: Type.Optional(Timeout),
    retries: Type.Optional(Type.Integer({ minimum: 0, maximum: 10 })),
    ...requirementFields,
  },
  { additionalProperties: false },
);
export type PlanAction = Static<typeof PlanAction>;

export const PlanFlow = Type.Object(
  {
    id: PlanId,
    persona: Type.String({ minLength: 1, maxLength: 256 }),
    description: Type.Optional(Type.String({ maxLength: 4096 })),
    actions: Type.Array(PlanAction, { minItems: 1, maxItems: 10_000 }),
  },
  { additionalProperties: false },
);
export type PlanFlow = Static<typeof PlanFlow>;

export const PlanDefaults = Type.Object(
  {
    timeout: Type.Optional(Timeout),
    retries: Type.Optional(Type.Integer({ minimum: 0, maximum: 10 })),
    model: Type.Optional(ModelName),
    provider: Type.Optional(ProviderName),
  },
  { additionalProperties: false },
);
export type PlanDefaults = Static<typeof PlanDefaults>;

export const Plan = Type.Object(
  {
    goal: Type.String({ minLength: 1, maxLength: 65_536 }),
    policy: Type.Optional(Policy),
    defaults: Type.Optional(PlanDefaults),
    flows: Type.Array(PlanFlow, { minItems: 1, maxItems: 1000 }),
  },
  { additionalProperties: false },
);
export type Plan = Static<typeof Plan>;

export const ACTION_KINDS = ActionKind.anyOf.map((member) => member.const);
