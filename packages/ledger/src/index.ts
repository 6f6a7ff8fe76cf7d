export type { ActionQuery, EntryList, GoalQuery, RejectedEvent, SeqConflict } from './core.js';
export { LedgerCore } from './core.js';
export {
  type ActionEventFields,
  checkEnvelope,
  checkSemantics,
  EVENT_TYPES,
  type EventData,
  type EventInput,
  type EventType,
  expandEvent,
  MAX_BATCH_ITEMS,
  type TransitionItem,
  visitActionEvents,
} from './events.js';
export type { Action, ActionOutput, Flow, Goal, GoalState, LogEntry, NodeRecord, Recipe } from './fold.js';
export { compareEvents } from './fold.js';
export {
  type AppendOptions,
  type AppendResult,
  chunkEntries,
  EVENT_BYTES_PER_MESSAGE,
  EVENTS_PER_MESSAGE,
  type IngestReport,
  type Ledger,
  type LedgerEntry,
  type LedgerInit,
  type Listener,
  type OpenStats,
  openLedger,
  type PageBounds,
} from './ledger.js';
export { createReplicator, type Replicator, type ReplicatorInit, type ReplicatorStats } from './replicator.js';
export { type SearchHit, tokenize } from './search.js';
export { LedgerOpenError, type OpenErrorCode } from './storage.js';
export { type EventPage, eventsMissingFrom, missingCount, type PageLimits } from './sync.js';
export { createMemoryNetwork, type MemoryNetwork, type MemoryNetworkOptions } from './testing/memory-mesh.js';
export { goalText, type LifecycleOptions, lifecycleInputs } from './testing/workload.js';
export { FINAL_STATES, isLegalTransition, type Role, TRANSITIONS, WRITERS } from './transitions.js';
