export { createApi, memberView } from './api.js';
export { buildProgram, type MainOptions, main } from './cli.js';
export {
  ConfigError,
  type DaemonConfig,
  DaemonConfigFile,
  isLoopback,
  parseHostPort,
  parseLabels,
  readConfigFile,
  resolveConfig,
} from './config.js';
export {
  type Daemon,
  type DaemonContext,
  type DaemonPlugin,
  type DaemonStateFile,
  ledgerSummary,
  STATE_FILE,
  type StartOptions,
  startDaemon,
} from './daemon.js';
export { VERSION } from './version.js';
export { type ActionRunner, createWorker, type RunResult, type Worker } from './worker.js';
