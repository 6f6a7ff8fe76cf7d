import { cpus } from 'node:os';
import { type ActionOutput, type Assignment, PARAMS_BY_KIND } from '@hermes-mesh/protocol';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { runBuiltin, WorkerPool } from './builtin.js';
import { type ExecAllowlist, runExec, workDirFor } from './exec.js';
import type { DependencyInputs } from './inputs.js';
import { type DelegationDefaults, type ProviderConfig, runLlm } from './llm.js';
import { runRecipe } from './recipe.js';
import { type ExecutorLogger, permanent, type RunOptions, type RunResult, silentLogger, transient } from './types.js';

export interface ExecutorInit {
  dataDir: string;
  providers?: ProviderConfig[];
  delegation?: DelegationDefaults;
  allowlist?: ExecAllowlist;
  /** Directories builtin file inputs may come from, besides the data dir. */
  inputRoots?: string[];
  builtinThreads?: number;
  logger?: ExecutorLogger;
  env?: NodeJS.ProcessEnv;
  fetch?: typeof fetch;
}

export interface Executor {
  run(assignment: Assignment, options: RunOptions): Promise<RunResult>;
  close(): Promise<void>;
}

const checkers = Object.fromEntries(
  Object.entries(PARAMS_BY_KIND).map(([kind, schema]) => [kind, TypeCompiler.Compile(schema)]),
) as unknown as Record<keyof typeof PARAMS_BY_KIND, ReturnType<typeof TypeCompiler.Compile>>;

/**
 * What the coordinator adds to an action's params: its dependencies' outputs (`inputs`) and, for a recipe
 * replayed elsewhere than where it was saved, the recorded output (`recorded`). Split off before validation.
 */
function splitParams(params: unknown): { own: unknown; inputs: DependencyInputs; recorded?: ActionOutput } {
  if (!params || typeof params !== 'object' || Array.isArray(params)) return { own: params, inputs: {} };
  const { inputs, recorded, ...own } = params as { inputs?: DependencyInputs; recorded?: ActionOutput };
  return { own, inputs: inputs ?? {}, ...(recorded ? { recorded } : {}) };
}

/** Runs one assigned action of any kind, validated at the boundary, cancellable, with a hard timeout. */
export function createExecutor(init: ExecutorInit): Executor {
  const pool = new WorkerPool(init.builtinThreads ?? Math.max(1, Math.min(2, cpus().length)));
  const logger = init.logger ?? silentLogger;
  const roots = [init.dataDir, ...(init.inputRoots ?? [])];

  async function dispatch(a: Assignment, options: RunOptions): Promise<RunResult> {
    const { own, inputs, recorded } = splitParams(a.params);
    const checker = checkers[a.kind];
    if (!checker.Check(own)) {
      const first = checker.Errors(own).First();
      return permanent('bad-params', `${a.kind} params${first?.path ?? ''}: ${first?.message ?? 'invalid'}`);
    }
    switch (a.kind) {
      case 'builtin':
        return runBuiltin(own as never, inputs, roots, pool, options);
      case 'exec':
        return runExec(
          own as never,
          init.allowlist ?? {},
          workDirFor(init.dataDir, a.actionId, a.epoch),
          a.timeoutMs,
          options,
        );
      case 'llm':
        return runLlm(
          a,
          own as never,
          {
            inputs,
            providers: init.providers ?? [],
            ...(init.delegation ? { delegation: init.delegation } : {}),
            ...(init.env ? { env: init.env } : {}),
            ...(init.fetch ? { fetch: init.fetch } : {}),
            logger,
          },
          options,
        );
      case 'recipe':
        return runRecipe(init.dataDir, own as never, recorded);
      default:
        return permanent('unknown-kind', `unknown action kind ${String(a.kind)}`);
    }
  }

  return {
    async run(a, options) {
      // The hard timeout: a runner that ignores its signal is abandoned, and the action reported timed out.
      // One controller ends the run on the caller's abort or the timeout (AbortSignal.any costs a WeakRef and a
      // finalizer per run: a few % of a worker's CPU in a burst of small actions).
      const stop = new AbortController();
      const onAbort = () => stop.abort(options.signal.reason);
      if (options.signal.aborted) onAbort();
      else options.signal.addEventListener('abort', onAbort, { once: true });
      const signal = stop.signal;
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<RunResult>((resolve) => {
        timer = setTimeout(() => {
          stop.abort(new Error('timeout'));
          resolve(transient('timeout', `${a.kind} action ${a.actionId} ran past its ${a.timeoutMs} ms timeout`));
        }, a.timeoutMs);
      });
      try {
        // A literal, not `{ ...options, signal }`: V8 gives each spread-then-extended object a hidden class of its
        // own (one more map per action, and every read of it megamorphic).
        const runOptions: RunOptions = { signal, onProgress: options.onProgress };
        return await Promise.race([dispatch(a, runOptions), deadline]);
      } catch (err) {
        return transient('runner-failed', `${a.kind} runner failed: ${(err as Error).message}`);
      } finally {
        clearTimeout(timer);
        options.signal.removeEventListener('abort', onAbort);
      }
    },
    close: () => pool.close(),
  };
}
