import { createRequire } from 'node:module';
import type { Static, TSchema } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import type * as Yaml from 'yaml';

/** Loaded on the first file parsed: a daemon started without --config never needs it (~280 KB of source). */
let yaml: typeof Yaml | undefined;
const loadYaml = () => {
  yaml ??= createRequire(import.meta.url)('yaml') as typeof Yaml;
  return yaml;
};

/** One problem in a config or plan file, located so a person can go straight to it. */
export interface FileProblem {
  file: string;
  /** 1-based; 0 when the problem has no position (e.g. a missing top-level field). */
  line: number;
  column: number;
  /** JSON-pointer-like path of the field, e.g. /models/0/url. */
  field: string;
  message: string;
}

export function formatProblem(p: FileProblem): string {
  const where = p.line > 0 ? `${p.file}:${p.line}:${p.column}` : p.file;
  return `${where}: ${p.field || '/'}: ${p.message}`;
}

export class FileValidationError extends Error {
  constructor(readonly problems: FileProblem[]) {
    super(problems.map(formatProblem).join('\n'));
    this.name = 'FileValidationError';
  }
}

const compiled = new WeakMap<TSchema, ReturnType<typeof TypeCompiler.Compile>>();
function checkerFor(schema: TSchema) {
  let checker = compiled.get(schema);
  if (!checker) {
    checker = TypeCompiler.Compile(schema);
    compiled.set(schema, checker);
  }
  return checker;
}

/**
 * Parses YAML (or JSON, which is YAML) and validates it against a schema. Every problem names the file,
 * the line and the field. Returns the typed value or throws FileValidationError.
 */
export function parseYamlWithSchema<S extends TSchema>(text: string, schema: S, file: string): Static<S> {
  const { LineCounter, parseDocument } = loadYaml();
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new FileValidationError(
      doc.errors.map((e) => {
        const pos = e.linePos?.[0];
        return { file, line: pos?.line ?? 0, column: pos?.col ?? 0, field: '', message: e.message.split('\n')[0]! };
      }),
    );
  }
  const value: unknown = doc.toJS({ maxAliasCount: 100 }) ?? {};
  const checker = checkerFor(schema);
  if (checker.Check(value)) return value as Static<S>;
  const problems: FileProblem[] = [];
  for (const error of checker.Errors(value)) {
    const segments = error.path.split('/').slice(1).map(decodePointer);
    // Point at the deepest node that exists: for a missing field, its parent.
    let node: unknown;
    for (let n = segments.length; n >= 0 && !node; n--) node = doc.getIn(segments.slice(0, n), true);
    const offset = (node as { range?: [number, number] } | undefined)?.range?.[0];
    const pos = offset === undefined ? undefined : lineCounter.linePos(offset);
    problems.push({ file, line: pos?.line ?? 0, column: pos?.col ?? 0, field: error.path, message: error.message });
    if (problems.length >= 20) break;
  }
  throw new FileValidationError(dedupe(problems));
}

function decodePointer(segment: string): string | number {
  const s = segment.replace(/~1/g, '/').replace(/~0/g, '~');
  return /^\d+$/.test(s) ? Number(s) : s;
}

/** TypeBox reports a failing union once per member; one line per field is what a person wants. */
function dedupe(problems: FileProblem[]): FileProblem[] {
  const seen = new Set<string>();
  return problems.filter((p) => {
    if (seen.has(p.field)) return false;
    seen.add(p.field);
    return true;
  });
}
