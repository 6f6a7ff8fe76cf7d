import type { ActionOutput } from '@hermes-mesh/protocol';

export type RunResult =
  | { ok: true; output: ActionOutput }
  | { ok: false; error: string; retryable: boolean; code: string };

export interface Progress {
  kind: 'heartbeat' | 'progress' | 'log';
  message?: string;
  fraction?: number;
}

export interface RunOptions {
  signal: AbortSignal;
  onProgress?: (p: Progress) => void;
}

export interface ExecutorLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

export const silentLogger: ExecutorLogger = { debug() {}, info() {}, warn() {} };

/** A failure that is the input's fault: retrying the same action cannot help. */
export function permanent(code: string, error: string): RunResult {
  return { ok: false, error, retryable: false, code };
}

export function transient(code: string, error: string): RunResult {
  return { ok: false, error, retryable: true, code };
}

/** Largest JSON result carried back in the ledger; beyond it an action should write a file. */
export const MAX_OUTPUT_BYTES = 1024 * 1024;

export function outputOf(value: unknown, summary: string): RunResult {
  const bytes = Buffer.byteLength(JSON.stringify(value ?? null));
  if (bytes > MAX_OUTPUT_BYTES) {
    return permanent(
      'output-too-large',
      `result is ${bytes} bytes, over the ${MAX_OUTPUT_BYTES}-byte cap: have the action write a file instead`,
    );
  }
  return { ok: true, output: { value, summary: summary.slice(0, 2000), bytes } };
}
