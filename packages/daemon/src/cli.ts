import '@hermes-mesh/mesh/polyfill';
import { hostname } from 'node:os';
import { createExecutor } from '@hermes-mesh/executor';
import { Command, InvalidArgumentError, Option } from 'commander';
import { type Logger, pino } from 'pino';
import {
  ConfigError,
  type DaemonConfig,
  type DaemonConfigFile,
  parseLabels,
  readConfigFile,
  resolveConfig,
} from './config.js';
import { type StartOptions, startDaemon } from './daemon.js';
import { VERSION } from './version.js';

const collect = (value: string, previous: string[] = []) => [...previous, value];
const integer = (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected a non-negative integer');
  return n;
};

export const EXIT = { ok: 0, failure: 1, badInput: 2 } as const;

export function buildProgram(
  name = 'hermesd',
  description = 'hermes-mesh node daemon: probes this box, joins the mesh, advertises what it can run',
): Command {
  return new Command(name)
    .description(description)
    .version(VERSION)
    .option('-c, --config <file>', 'YAML config file (flags override it)')
    .option('--data-dir <dir>', 'identity key, mesh key and state (default $HERMES_DATA_DIR or ~/.hermes)')
    .option('--name <name>', 'node name shown to people (default: hostname)')
    .option('--listen <multiaddr>', 'libp2p listen address, repeatable (default /ip4/0.0.0.0/tcp/4801)', collect)
    .option('--bootstrap <multiaddr>', 'a mesh peer to join through, repeatable', collect)
    .option('--mesh-key <file>', 'private mesh key; created if missing (default <data-dir>/mesh.key)')
    .option('--labels <k=v,...>', 'labels for placement constraints')
    .option('--api <host:port>', 'local HTTP API address (default 127.0.0.1:4880; a non-loopback host needs a token)')
    .option('--api-token-env <name>', 'environment variable holding the API token (default HERMES_API_TOKEN)')
    .addOption(
      new Option('--location <where>', 'whether this box is local or cloud compute').choices(['local', 'cloud']),
    )
    .option('--slots <n>', 'actions run at once (default: CPU cores)', integer)
    .option('--heartbeat-ms <ms>', 'advert interval (default 1000)', integer)
    .option('--dead-after-ms <ms>', 'silence after which a peer is dead (default 3000)', integer)
    .option('--probe-interval-ms <ms>', 'hardware/model probe interval (default 5000)', integer)
    .option('--mdns', 'find peers on the local network by mDNS')
    .option('--ledger-fsync', 'fsync every ledger write batch (survives power loss)')
    .option('--nvidia-smi <path>', 'nvidia-smi executable (default: nvidia-smi on PATH)')
    .option('--input-root <dir>', 'a directory builtin actions may read files from, repeatable', collect)
    .addOption(
      new Option('--log-level <level>', 'log level').choices([
        'fatal',
        'error',
        'warn',
        'info',
        'debug',
        'trace',
        'silent',
      ]),
    )
    .showHelpAfterError();
}

type Flags = {
  config?: string;
  dataDir?: string;
  name?: string;
  listen?: string[];
  bootstrap?: string[];
  meshKey?: string;
  labels?: string;
  api?: string;
  apiTokenEnv?: string;
  location?: 'local' | 'cloud';
  slots?: number;
  heartbeatMs?: number;
  deadAfterMs?: number;
  probeIntervalMs?: number;
  mdns?: boolean;
  ledgerFsync?: boolean;
  nvidiaSmi?: string;
  inputRoot?: string[];
  logLevel?: DaemonConfigFile['logLevel'];
};

export interface MainOptions {
  /** Program name and description for --help (hermes-coord serve reuses this CLI). */
  name?: string;
  description?: string;
  /** Builds what the node runs with, once the config is known (the executor; the coordinator plugin). */
  startOptions?: (config: DaemonConfig, logger: Logger) => Promise<StartOptions> | StartOptions;
}

/** A plain hermesd runs actions: the executor, configured from the node's config. */
export function workerOptions(config: DaemonConfig, logger: Logger): StartOptions {
  const executor = createExecutor({
    dataDir: config.dataDir,
    providers: config.providers,
    delegation: config.delegation,
    allowlist: config.exec,
    inputRoots: config.inputRoots,
    logger: logger.child({ component: 'executor' }),
  });
  return { runner: executor, onStop: () => executor.close() };
}

export async function main(argv = process.argv, options: MainOptions = {}): Promise<void> {
  const program = buildProgram(options.name, options.description);
  program.parse(argv);
  const flags = program.opts<Flags>();
  let config: DaemonConfig;
  try {
    const file = flags.config ? await readConfigFile(flags.config) : undefined;
    const { config: _, labels, inputRoot, ...rest } = flags;
    config = resolveConfig({
      file,
      flags: { ...rest, labels: labels === undefined ? undefined : parseLabels(labels), inputRoots: inputRoot },
      env: process.env,
      hostname: hostname(),
    });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`hermesd: ${err.message}\n`);
      process.exit(EXIT.badInput);
    }
    throw err;
  }
  const logger = pino({ level: config.logLevel, base: { node: config.name } });
  let daemon: Awaited<ReturnType<typeof startDaemon>>;
  try {
    daemon = await startDaemon(config, logger, await (options.startOptions ?? workerOptions)(config, logger));
  } catch (err) {
    logger.fatal({ err: String(err) }, 'hermesd could not start');
    process.exitCode = err instanceof ConfigError ? EXIT.badInput : EXIT.failure;
    // Let pino flush, then leave even if a half-started component holds the loop open.
    setTimeout(() => process.exit(), 100).unref();
    return;
  }
  let signals = 0;
  const shutdown = (signal: NodeJS.Signals) => {
    if (++signals > 1) process.exit(EXIT.failure); // a second Ctrl-C means now
    daemon.stop(signal).then(
      () => process.exit(EXIT.ok),
      (err) => {
        logger.error({ err: String(err) }, 'unclean shutdown');
        process.exit(EXIT.failure);
      },
    );
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
  // A peer's message must never crash the daemon; anything that escapes is a bug to log, not a reason to die.
  process.on('uncaughtException', (err) => logger.error({ err: err.stack ?? String(err) }, 'uncaught exception'));
  process.on('unhandledRejection', (err) => logger.error({ err: String(err) }, 'unhandled rejection'));
}
