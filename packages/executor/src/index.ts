export { runBuiltin, WorkerPool } from './builtin.js';
export { type AllowedCommand, checkExec, type ExecAllowlist, runExec, workDirFor } from './exec.js';
export { createExecutor, type Executor, type ExecutorInit } from './executor.js';
export { bytesOfOutput, type DependencyInputs, InputError, readInput, resolveInputFile } from './inputs.js';
export {
  type DelegationDefaults,
  delegationHeader,
  type ModelResolution,
  type ProviderConfig,
  resolveModel,
  runLlm,
} from './llm.js';
export {
  ActionRecipe,
  FlowRecipe,
  loadActionRecipe,
  PromptRecipe,
  recipePaths,
  runRecipe,
  saveRecipe,
} from './recipe.js';
export { createFakeOpenAIServer, type FakeOpenAIServer, type FakeReply } from './testing/openai-server.js';
export { type ExecutorLogger, MAX_OUTPUT_BYTES, type Progress, type RunOptions, type RunResult } from './types.js';
