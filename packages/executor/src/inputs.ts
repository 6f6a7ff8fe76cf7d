import { lstat, readFile, realpath } from 'node:fs/promises';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import type { BuiltinInput } from '@hermes-mesh/protocol';

export class InputError extends Error {}

/** Outputs of dependencies, as the coordinator passes them in `params.inputs`, keyed by plan id. */
export type DependencyInputs = Record<string, { value?: unknown; summary?: string } | undefined>;

function within(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel));
}

/** A file an action may read: under the data dir or a configured input root, never through '..' or a symlink out. */
export async function resolveInputFile(file: string, roots: string[]): Promise<string> {
  if (file.split(/[\\/]/).includes('..')) throw new InputError(`input file ${file}: '..' is not allowed`);
  for (const root of roots) {
    const candidate = isAbsolute(file) ? file : resolve(root, file);
    if (!within(root, candidate)) continue;
    try {
      await lstat(candidate);
    } catch {
      continue;
    }
    const [real, realRoot] = await Promise.all([realpath(candidate), realpath(root)]);
    if (!within(realRoot, real)) throw new InputError(`input file ${file} leads outside ${root} (a symlink?)`);
    return real;
  }
  throw new InputError(
    `input file ${file} not found under ${roots.join(', ') || 'any input root'}; add the directory to inputRoots`,
  );
}

/** A dependency's output as bytes: text as text, base64 as its bytes, a hash as its hex, anything else as JSON. */
export function bytesOfOutput(value: unknown): Buffer {
  if (typeof value === 'string') return Buffer.from(value);
  if (value && typeof value === 'object') {
    const v = value as Record<string, unknown>;
    if (typeof v.text === 'string') return Buffer.from(v.text);
    if (typeof v.base64 === 'string') return Buffer.from(v.base64, 'base64');
    if (typeof v.sha256 === 'string') return Buffer.from(`${v.sha256}\n`);
  }
  return Buffer.from(`${JSON.stringify(value ?? null)}\n`);
}

export async function readInput(
  input: BuiltinInput | undefined,
  deps: DependencyInputs,
  roots: string[],
): Promise<Buffer> {
  if (!input) return Buffer.alloc(0);
  const parts: Buffer[] = [];
  if (input.text !== undefined) parts.push(Buffer.from(input.text));
  if (input.base64 !== undefined) parts.push(Buffer.from(input.base64, 'base64'));
  if (input.file !== undefined) parts.push(await readFile(await resolveInputFile(input.file, roots)));
  for (const id of input.fromActions ?? []) {
    const dep = deps[id];
    if (!dep) throw new InputError(`input from action ${id}: no output was passed (is it listed in after?)`);
    parts.push(bytesOfOutput(dep.value));
  }
  return Buffer.concat(parts);
}
