export { createApi, memberView } from './api.js';
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
export { type Daemon, type DaemonStateFile, STATE_FILE, startDaemon } from './daemon.js';
export { VERSION } from './version.js';
