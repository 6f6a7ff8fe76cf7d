import { spawn } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { ExecParams } from '@hermes-mesh/protocol';
import { outputOf, permanent, type RunOptions, type RunResult, transient } from './types.js';

/** A command `exec` actions may run: nothing outside this list runs, and never through a shell. */
export interface AllowedCommand {
  /** Absolute path of the executable. */
  path: string;
  args?: { maxCount?: number; pattern?: string };
  timeoutMs?: number;
  maxOutputBytes?: number;
  /** Environment variables passed through from the node; everything else is left out. */
  env?: string[];
}

export type ExecAllowlist = Record<string, AllowedCommand>;

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

/** Checks an exec action against the allowlist before anything is spawned. */
export function checkExec(
  params: ExecParams,
  allowlist: ExecAllowlist,
): { command: AllowedCommand } | { error: string } {
  const command = allowlist[params.command];
  if (!command) {
    const allowed = Object.keys(allowlist);
    return {
      error: `command ${params.command} is not on this node's exec allowlist (${allowed.length ? allowed.join(', ') : 'empty: exec is off'})`,
    };
  }
  const args = params.args ?? [];
  if (command.args?.maxCount !== undefined && args.length > command.args.maxCount) {
    return { error: `${params.command} takes at most ${command.args.maxCount} arguments, got ${args.length}` };
  }
  if (command.args?.pattern) {
    const re = new RegExp(command.args.pattern);
    const bad = args.find((a) => !re.test(a));
    if (bad !== undefined)
      return { error: `${params.command}: argument ${JSON.stringify(bad)} does not match ${command.args.pattern}` };
  }
  return { command };
}

/**
 * Runs an allowlisted command in its own process group, in a fresh working directory under the data dir, with
 * a minimal environment, an output cap and a hard timeout. Abort or timeout kills the whole group.
 */
export async function runExec(
  params: ExecParams,
  allowlist: ExecAllowlist,
  workDir: string,
  timeoutMs: number,
  options: RunOptions,
): Promise<RunResult> {
  const checked = checkExec(params, allowlist);
  if ('error' in checked) return permanent('not-allowed', checked.error);
  const { command } = checked;
  await mkdir(workDir, { recursive: true });
  const cap = command.maxOutputBytes ?? 1024 * 1024;
  const env: NodeJS.ProcessEnv = { PATH: '/usr/local/bin:/usr/bin:/bin', HOME: workDir, LANG: 'C.UTF-8' };
  for (const name of command.env ?? []) if (process.env[name] !== undefined) env[name] = process.env[name];
  return new Promise<RunResult>((resolve) => {
    let child: ReturnType<typeof spawn>;
    try {
      child = spawn(command.path, params.args ?? [], {
        cwd: workDir,
        env,
        detached: true,
        stdio: ['pipe', 'pipe', 'pipe'],
      });
    } catch (err) {
      resolve(permanent('spawn-failed', `cannot start ${command.path}: ${(err as Error).message}`));
      return;
    }
    let stdout = Buffer.alloc(0);
    let stderr = Buffer.alloc(0);
    let truncated = false;
    let ended: string | undefined;
    const stop = (why: string) => {
      if (ended || child.pid === undefined) return;
      ended = why;
      killGroup(child.pid, 'SIGTERM');
      setTimeout(() => killGroup(child.pid!, 'SIGKILL'), 2_000).unref();
    };
    const append = (current: Buffer, chunk: Buffer) => {
      if (current.length + chunk.length > cap) {
        truncated = true;
        stop('output cap');
        return Buffer.concat([current, chunk.subarray(0, Math.max(0, cap - current.length))]);
      }
      return Buffer.concat([current, chunk]);
    };
    child.stdout!.on('data', (c: Buffer) => {
      stdout = append(stdout, c);
    });
    child.stderr!.on('data', (c: Buffer) => {
      stderr = append(stderr, c);
    });
    child.stdin!.on('error', () => {});
    child.stdin!.end(params.stdin ?? '');
    const limit = Math.min(timeoutMs, command.timeoutMs ?? timeoutMs);
    const timer = setTimeout(() => stop(`timeout after ${limit} ms`), limit);
    const heartbeat = setInterval(
      () => options.onProgress?.({ kind: 'heartbeat', message: `${params.command} running` }),
      2_000,
    );
    const onAbort = () => stop('aborted');
    options.signal.addEventListener('abort', onAbort, { once: true });
    child.on('error', (err) => {
      ended ??= 'spawn error';
      clearTimeout(timer);
      clearInterval(heartbeat);
      resolve(permanent('spawn-failed', `cannot start ${command.path}: ${err.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      clearInterval(heartbeat);
      options.signal.removeEventListener('abort', onAbort);
      if (child.pid !== undefined) killGroup(child.pid, 'SIGKILL'); // leave no grandchildren behind
      const out = stdout.toString('utf8') + (truncated ? '\n[output truncated]' : '');
      if (ended === 'aborted') return resolve(permanent('aborted', 'aborted'));
      if (ended?.startsWith('timeout')) return resolve(transient('timeout', `${params.command}: ${ended}`));
      if (ended === 'output cap')
        return resolve(permanent('output-cap', `${params.command}: output over ${cap} bytes`));
      if (code !== 0) {
        const tail = stderr.toString('utf8').trim().split('\n').slice(-5).join('\n');
        return resolve(
          permanent('exit-code', `${params.command} exited with ${code ?? signal}${tail ? `: ${tail}` : ''}`),
        );
      }
      resolve(
        outputOf(
          { stdout: out, stderr: stderr.toString('utf8'), exitCode: 0 },
          `${params.command}: ${out.trim().split('\n')[0]?.slice(0, 200) ?? ''}`,
        ),
      );
    });
  });
}

export function workDirFor(dataDir: string, actionId: string, epoch: number): string {
  return join(dataDir, 'work', `${actionId.replace(/[^A-Za-z0-9_.-]/g, '_')}-${epoch}`);
}
