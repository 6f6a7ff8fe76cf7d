import { type Static, type TSchema, Type } from '@sinclair/typebox';

/** Bounded string: every string on the wire has a maximum length, so one field cannot blow a message up. */
export const Str = (maxLength = 256, minLength = 0) => Type.String({ maxLength, minLength });
export const Int = (minimum = 0, maximum = Number.MAX_SAFE_INTEGER) => Type.Integer({ minimum, maximum });
export const Num = (minimum = 0, maximum = Number.MAX_SAFE_INTEGER) => Type.Number({ minimum, maximum });
export const List = <T extends TSchema>(item: T, maxItems: number) => Type.Array(item, { maxItems });

export const TIERS = ['COMPUTE_HOST', 'FULL', 'STANDARD', 'LITE', 'OBSERVER'] as const;
export const Tier = Type.Union(TIERS.map((t) => Type.Literal(t)));
export type Tier = Static<typeof Tier>;

export const Location = Type.Union([Type.Literal('local'), Type.Literal('cloud')]);
export type Location = Static<typeof Location>;

export const Gpu = Type.Object({
  index: Int(0, 1024),
  name: Str(128),
  vendor: Str(64),
  uuid: Type.Optional(Str(128)),
  /** Bytes; 0 where the device does not report it. */
  vramTotal: Int(),
  vramFree: Int(),
  /** Utilisation 0..1, or -1 where unknown. */
  util: Num(-1, 1),
  temperatureC: Type.Optional(Num(-1, 200)),
  /** MIG instances carved from this GPU, each schedulable on its own. */
  mig: Type.Optional(
    List(Type.Object({ gi: Int(0, 1024), ci: Int(0, 1024), profile: Str(64), vramTotal: Int(), vramFree: Int() }), 64),
  ),
});
export type Gpu = Static<typeof Gpu>;

export const ModelProvider = Type.Union([
  Type.Literal('ollama'),
  Type.Literal('openai'),
  Type.Literal('llamacpp'),
  Type.Literal('vllm'),
]);
export type ModelProvider = Static<typeof ModelProvider>;

export const ModelInfo = Type.Object({
  name: Str(256, 1),
  /** The API the endpoint speaks. */
  provider: ModelProvider,
  /** The node's configured provider name for hosted APIs (what per-call `provider` overrides name). */
  providerName: Type.Optional(Str(128)),
  /** Base URL of the serving endpoint on that node. */
  endpoint: Str(512),
  loaded: Type.Boolean(),
  sizeBytes: Int(),
  /** VRAM in use while loaded (Ollama /api/ps size_vram), 0 when unknown. */
  vramBytes: Int(),
  quant: Str(64),
  family: Str(64),
  parameterSize: Str(32),
  /** Context length in tokens, 0 when unknown. */
  ctx: Int(0, 100_000_000),
});
export type ModelInfo = Static<typeof ModelInfo>;

export const Labels = Type.Record(Type.String({ maxLength: 64, pattern: '^[A-Za-z0-9_.\\-/]+$' }), Str(256), {
  maxProperties: 64,
});
export type Labels = Static<typeof Labels>;

export const Advert = Type.Object({
  nodeId: Str(128, 1),
  name: Str(128, 1),
  labels: Labels,
  tier: Tier,
  cpu: Type.Object({ cores: Int(0, 65_536), model: Str(256), load: Num(0, 1) }),
  mem: Type.Object({ total: Int(), free: Int() }),
  gpus: List(Gpu, 64),
  models: List(ModelInfo, 512),
  slots: Type.Object({
    total: Int(0, 100_000),
    busy: Int(0, 100_000),
    /**
     * Busy slots by the coordinator that assigned the work, counted at the same moment as `busy`: a coordinator
     * tells its own work from others' exactly, however late the advert arrives.
     */
    byCoordinator: Type.Optional(Type.Record(Str(128, 1), Int(0, 100_000), { maxProperties: 256 })),
  }),
  location: Location,
  draining: Type.Boolean(),
  /** Software version of hermesd, semver. */
  version: Str(64),
  /** Listen addresses, so peers that learn of a node by gossip can dial it. */
  addrs: List(Str(256), 32),
  startedAt: Int(),
  /** Monotonic per node; a receiver ignores an advert older than the one it holds. */
  seq: Int(),
});
export type Advert = Static<typeof Advert>;

/** A node announcing that it leaves on purpose, so peers drop it at once instead of waiting for the timeout. */
export const Leave = Type.Object({ nodeId: Str(128, 1), reason: Str(256) });
export type Leave = Static<typeof Leave>;

/** "Still here, advert unchanged": what a node sends a directly connected peer instead of repeating its advert. */
export const Beat = Type.Object({ nodeId: Str(128, 1), seq: Int() });
export type Beat = Static<typeof Beat>;
