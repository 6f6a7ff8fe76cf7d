import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { FileValidationError, Labels, Location, parseYamlWithSchema } from '@hermes-mesh/protocol';
import { multiaddr } from '@multiformats/multiaddr';
import { type Static, Type } from '@sinclair/typebox';

const ModelEndpoint = Type.Object(
  {
    provider: Type.Union([
      Type.Literal('ollama'),
      Type.Literal('openai'),
      Type.Literal('vllm'),
      Type.Literal('llamacpp'),
    ]),
    url: Type.String({ pattern: '^https?://', maxLength: 512 }),
    /** Name of the environment variable holding the API key; the key itself never sits in a config file. */
    apiKeyEnv: Type.Optional(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$' })),
  },
  { additionalProperties: false },
);

const EnvName = Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$' });

/** An LLM provider this node can call (OpenAI-compatible chat completions). */
const Provider = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 128 }),
    baseUrl: Type.String({ pattern: '^https?://', maxLength: 512 }),
    apiKeyEnv: Type.Optional(EnvName),
    defaultModel: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
    models: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 256 }), { maxItems: 1000 })),
  },
  { additionalProperties: false },
);

/** A command `exec` actions may run on this node: nothing else can be executed. */
const AllowedCommand = Type.Object(
  {
    path: Type.String({ pattern: '^/', maxLength: 1024 }),
    args: Type.Optional(
      Type.Object(
        { maxCount: Type.Optional(Type.Integer({ minimum: 0, maximum: 256 })), pattern: Type.Optional(Type.String()) },
        { additionalProperties: false },
      ),
    ),
    timeoutMs: Type.Optional(Type.Integer({ minimum: 1 })),
    maxOutputBytes: Type.Optional(Type.Integer({ minimum: 1 })),
    env: Type.Optional(Type.Array(EnvName)),
  },
  { additionalProperties: false },
);

/** Everything hermesd can be told, from the YAML file; flags override it field by field. */
export const DaemonConfigFile = Type.Object(
  {
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
    dataDir: Type.Optional(Type.String({ minLength: 1 })),
    listen: Type.Optional(Type.Array(Type.String(), { minItems: 1 })),
    bootstrap: Type.Optional(Type.Array(Type.String())),
    meshKey: Type.Optional(Type.String({ minLength: 1 })),
    labels: Type.Optional(Labels),
    api: Type.Optional(Type.String({ minLength: 1 })),
    apiTokenEnv: Type.Optional(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$' })),
    location: Type.Optional(Location),
    slots: Type.Optional(Type.Integer({ minimum: 0, maximum: 100_000 })),
    heartbeatMs: Type.Optional(Type.Integer({ minimum: 50, maximum: 60_000 })),
    deadAfterMs: Type.Optional(Type.Integer({ minimum: 200, maximum: 600_000 })),
    probeIntervalMs: Type.Optional(Type.Integer({ minimum: 200, maximum: 3_600_000 })),
    mdns: Type.Optional(Type.Boolean()),
    /** fsync every ledger batch: survives power loss, not only a killed process (costs ~0.2 ms per batch). */
    ledgerFsync: Type.Optional(Type.Boolean()),
    models: Type.Optional(Type.Array(ModelEndpoint, { maxItems: 64 })),
    nvidiaSmi: Type.Optional(Type.String({ minLength: 1 })),
    providers: Type.Optional(Type.Array(Provider, { maxItems: 64 })),
    delegation: Type.Optional(
      Type.Object(
        {
          provider: Type.Optional(Type.String({ minLength: 1 })),
          model: Type.Optional(Type.String({ minLength: 1 })),
          reasoningEffort: Type.Optional(
            Type.Union([Type.Literal('low'), Type.Literal('medium'), Type.Literal('high')]),
          ),
          maxDepth: Type.Optional(Type.Integer({ minimum: 0, maximum: 16 })),
        },
        { additionalProperties: false },
      ),
    ),
    /** Commands `exec` actions may run, by name. Empty by default: no exec at all. */
    exec: Type.Optional(Type.Record(Type.String({ pattern: '^[A-Za-z0-9_.-]{1,64}$' }), AllowedCommand)),
    /** Directories builtin actions may read files from, besides the data dir. */
    inputRoots: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { maxItems: 64 })),
    logLevel: Type.Optional(
      Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l))),
    ),
  },
  { additionalProperties: false },
);
export type DaemonConfigFile = Static<typeof DaemonConfigFile>;

export interface DaemonConfig {
  name: string;
  dataDir: string;
  listen: string[];
  bootstrap: string[];
  meshKeyPath: string;
  labels: Record<string, string>;
  api: { host: string; port: number };
  apiToken: string | undefined;
  location: 'local' | 'cloud';
  /** undefined: one slot per CPU core, decided after the probe. */
  slots: number | undefined;
  heartbeatMs: number;
  deadAfterMs: number;
  probeIntervalMs: number;
  mdns: boolean;
  ledgerFsync: boolean;
  models: Array<Static<typeof ModelEndpoint>>;
  nvidiaSmi: string;
  providers: Array<Static<typeof Provider>>;
  delegation: NonNullable<DaemonConfigFile['delegation']>;
  exec: Record<string, Static<typeof AllowedCommand>>;
  inputRoots: string[];
  logLevel: string;
}

/** A config value that cannot work, with what to do about it. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

export const DEFAULT_LISTEN = '/ip4/0.0.0.0/tcp/4801';
export const DEFAULT_API = '127.0.0.1:4880';

export async function readConfigFile(path: string): Promise<DaemonConfigFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config file ${path}: ${(err as Error).message}`);
  }
  try {
    return parseYamlWithSchema(text, DaemonConfigFile, path);
  } catch (err) {
    if (err instanceof FileValidationError) throw new ConfigError(`invalid config file:\n${err.message}`);
    throw err;
  }
}

/** `k=v,k2=v2` -> labels, validated like the file's. */
export function parseLabels(text: string): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const pair of text.split(',').filter((p) => p.trim() !== '')) {
    const eq = pair.indexOf('=');
    const key = pair.slice(0, eq).trim();
    if (eq <= 0 || !/^[A-Za-z0-9_.\-/]{1,64}$/.test(key)) {
      throw new ConfigError(`--labels: "${pair}" is not key=value (keys: letters, digits, _ . - /)`);
    }
    labels[key] = pair.slice(eq + 1).trim();
  }
  return labels;
}

export function parseHostPort(text: string, what: string): { host: string; port: number } {
  const m = /^(\[[0-9a-fA-F:]+\]|[^:\s]+):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[2]) : Number.NaN;
  if (!m || port > 65_535) throw new ConfigError(`${what}: "${text}" is not HOST:PORT (e.g. 127.0.0.1:4880)`);
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

function checkMultiaddrs(list: string[], what: string): string[] {
  for (const addr of list) {
    try {
      multiaddr(addr);
    } catch (err) {
      throw new ConfigError(
        `${what}: "${addr}" is not a multiaddr (${(err as Error).message}); e.g. /ip4/10.0.0.2/tcp/4801`,
      );
    }
  }
  return list;
}

export interface ResolveInput {
  file?: DaemonConfigFile;
  /** Flags given on the command line; they win over the file. */
  flags: Partial<DaemonConfigFile>;
  env: NodeJS.ProcessEnv;
  hostname: string;
}

/** Merges file, flags and defaults into a complete config, checking what the schema cannot. */
export function resolveConfig({ file = {}, flags, env, hostname }: ResolveInput): DaemonConfig {
  const merged: DaemonConfigFile = { ...file };
  for (const [key, value] of Object.entries(flags)) {
    if (value !== undefined) (merged as Record<string, unknown>)[key] = value;
  }
  const dataDir = resolve(merged.dataDir ?? env.HERMES_DATA_DIR ?? join(homedir(), '.hermes'));
  const api = parseHostPort(merged.api ?? DEFAULT_API, 'api');
  const tokenEnv = merged.apiTokenEnv ?? 'HERMES_API_TOKEN';
  const apiToken = env[tokenEnv] || undefined;
  if (!isLoopback(api.host) && !apiToken) {
    throw new ConfigError(
      `api ${api.host}:${api.port} is reachable from other machines but no token is set: set ${tokenEnv}, or bind the API to 127.0.0.1`,
    );
  }
  const heartbeatMs = merged.heartbeatMs ?? 1_000;
  const deadAfterMs = merged.deadAfterMs ?? 3_000;
  if (deadAfterMs < heartbeatMs * 2) {
    throw new ConfigError(`deadAfterMs (${deadAfterMs}) must be at least two heartbeats (${heartbeatMs * 2} ms)`);
  }
  const meshKey = merged.meshKey ?? join(dataDir, 'mesh.key');
  return {
    name: merged.name ?? hostname,
    dataDir,
    listen: checkMultiaddrs(merged.listen ?? [DEFAULT_LISTEN], 'listen'),
    bootstrap: checkMultiaddrs(merged.bootstrap ?? [], 'bootstrap'),
    meshKeyPath: isAbsolute(meshKey) ? meshKey : resolve(meshKey),
    labels: merged.labels ?? {},
    api,
    apiToken,
    location: merged.location ?? 'local',
    slots: merged.slots,
    heartbeatMs,
    deadAfterMs,
    probeIntervalMs: merged.probeIntervalMs ?? 5_000,
    mdns: merged.mdns ?? false,
    ledgerFsync: merged.ledgerFsync ?? false,
    models: merged.models ?? [],
    nvidiaSmi: merged.nvidiaSmi ?? 'nvidia-smi',
    providers: merged.providers ?? [],
    delegation: merged.delegation ?? {},
    exec: merged.exec ?? {},
    inputRoots: (merged.inputRoots ?? []).map((r) => resolve(r)),
    logLevel: merged.logLevel ?? 'info',
  };
}
