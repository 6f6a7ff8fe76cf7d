import { type Static, Type } from '@sinclair/typebox';
import { Int, List, Num, Str } from './schema.js';

/**
 * What each action kind takes as `params`. Shared by plan files (planner), assignments (coordinator -> node)
 * and the runners (executor), so a plan that validates is a plan a node can run.
 */

/** Where work should preferably run: on the user's own boxes, or on cloud ones. */
export const POLICIES = ['local_preferred', 'cloud_preferred'] as const;
export const Policy = Type.Union(POLICIES.map((p) => Type.Literal(p)));
export type Policy = Static<typeof Policy>;

/** How hard a task is: it sets the minimum capability score of the model chosen for it. */
export const COMPLEXITIES = ['low', 'medium', 'high', 'expert'] as const;
export const Complexity = Type.Union(COMPLEXITIES.map((c) => Type.Literal(c)));
export type Complexity = Static<typeof Complexity>;

export const ChatRole = Type.Union([Type.Literal('system'), Type.Literal('user'), Type.Literal('assistant')]);
export const ChatMessage = Type.Object({ role: ChatRole, content: Str(200_000) }, { additionalProperties: false });
export type ChatMessage = Static<typeof ChatMessage>;

export const ReasoningEffort = Type.Union([Type.Literal('low'), Type.Literal('medium'), Type.Literal('high')]);
export type ReasoningEffort = Static<typeof ReasoningEffort>;

export const LlmParams = Type.Object(
  {
    prompt: Str(200_000, 1),
    system: Type.Optional(Str(50_000)),
    /** Earlier turns of the conversation this call continues. */
    history: Type.Optional(List(ChatMessage, 500)),
    reasoningEffort: Type.Optional(ReasoningEffort),
    temperature: Type.Optional(Num(0, 2)),
    maxTokens: Type.Optional(Int(1, 1_000_000)),
    /** 'json' asks the model for a JSON object and fails the action if it does not return one. */
    responseFormat: Type.Optional(Type.Union([Type.Literal('text'), Type.Literal('json')])),
    /** Outputs of these actions (each also listed in `after`) are given to the model before the prompt. */
    input: Type.Optional(Type.Object({ fromActions: List(Str(128, 1), 256) }, { additionalProperties: false })),
  },
  { additionalProperties: false },
);
export type LlmParams = Static<typeof LlmParams>;

export const ExecParams = Type.Object(
  {
    /** A command name from the node's allowlist, never a path or a shell line. */
    command: Type.String({ pattern: '^[A-Za-z0-9_.-]{1,64}$' }),
    args: Type.Optional(List(Str(10_000), 256)),
    stdin: Type.Optional(Str(10_000_000)),
  },
  { additionalProperties: false },
);
export type ExecParams = Static<typeof ExecParams>;

export const BUILTINS = ['noop', 'sleep', 'sha256', 'gzip', 'gunzip', 'wordcount', 'concat'] as const;
export const BuiltinName = Type.Union(BUILTINS.map((b) => Type.Literal(b)));
export type BuiltinName = Static<typeof BuiltinName>;

/** Where a builtin reads its data: inline text, a file under the node's data dir, or other actions' outputs. */
export const BuiltinInput = Type.Object(
  {
    text: Type.Optional(Str(10_000_000)),
    /** Base64 bytes (e.g. a gzip result flowing into gunzip). */
    base64: Type.Optional(Str(20_000_000)),
    /** A path relative to the node's data dir (no '..'), or under examples/ when the node is told so. */
    file: Type.Optional(Str(1024, 1)),
    /** Ids of actions (listed in `after`) whose outputs are the input, concatenated in this order. */
    fromActions: Type.Optional(List(Str(128, 1), 256)),
  },
  { additionalProperties: false },
);
export type BuiltinInput = Static<typeof BuiltinInput>;

export const BuiltinParams = Type.Object(
  {
    name: BuiltinName,
    input: Type.Optional(BuiltinInput),
    /** sleep: how long. */
    ms: Type.Optional(Int(0, 24 * 3600 * 1000)),
  },
  { additionalProperties: false },
);
export type BuiltinParams = Static<typeof BuiltinParams>;

export const RecipeParams = Type.Object(
  { promptId: Str(128, 1), flowId: Str(128, 1), actionId: Str(128, 1) },
  { additionalProperties: false },
);
export type RecipeParams = Static<typeof RecipeParams>;

export const PARAMS_BY_KIND = {
  llm: LlmParams,
  exec: ExecParams,
  builtin: BuiltinParams,
  recipe: RecipeParams,
} as const;

/** An action's result as it travels back and is stored: small JSON plus a human summary. */
export const ActionOutput = Type.Object({
  /** JSON value, capped; large results go to a file and this holds a reference. */
  value: Type.Unknown(),
  summary: Str(2_000),
  bytes: Int(),
});
export type ActionOutput = Static<typeof ActionOutput>;
