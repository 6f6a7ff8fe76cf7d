import type { FileProblem } from '@hermes-mesh/protocol';
import type { TSchema } from '@sinclair/typebox';
import { didYouMean } from './similar.js';

/**
 * TypeBox says "Expected union value" for a bad enum and "Unexpected property" for a typo; a person wants
 * "'hard' is not one of low, medium, high, expert" and "unknown field 'afer' (did you mean 'after'?)". This
 * rewrites such messages by looking the field up in the schema the value was checked against.
 */
export function explainSchemaProblem(problem: FileProblem, root: TSchema, value: unknown, prefix = ''): FileProblem {
  const segments = pointerSegments(problem.field.slice(prefix.length));
  if (problem.message === 'Unexpected property') {
    const parent = schemaAt(root, segments.slice(0, -1));
    const known = Object.keys((parent?.properties as Record<string, unknown> | undefined) ?? {});
    const name = String(segments.at(-1));
    return { ...problem, message: `unknown field '${name}'${didYouMean(name, known)}` };
  }
  if (problem.message === 'Expected required property') {
    return { ...problem, message: `missing required field '${String(segments.at(-1))}'` };
  }
  if (problem.message === 'Expected union value') {
    const union = schemaAt(root, segments);
    if (!union) return problem;
    const got = valueAt(value, segments);
    return { ...problem, message: describeUnionMismatch(union, got) };
  }
  return problem;
}

function describeUnionMismatch(union: TSchema, got: unknown): string {
  if (typeof union.description === 'string') return `expected ${union.description}, got ${JSON.stringify(got)}`;
  const members = (union.anyOf as TSchema[] | undefined) ?? [];
  const constants = members.map((m) => m.const).filter((c): c is string => typeof c === 'string');
  if (constants.length === members.length && constants.length > 0) {
    const hint = typeof got === 'string' ? didYouMean(got, constants) : '';
    return `${JSON.stringify(got)} is not one of ${constants.join(', ')}${hint}`;
  }
  return `${JSON.stringify(got)} matches none of the allowed forms`;
}

export function pointerSegments(pointer: string): (string | number)[] {
  if (pointer === '') return [];
  return pointer
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
}

/** The sub-schema a path leads to, through object properties, array items and record values. */
function schemaAt(schema: TSchema | undefined, segments: readonly (string | number)[]): TSchema | undefined {
  let current = schema;
  for (const segment of segments) {
    if (!current) return undefined;
    if (typeof segment === 'number') current = current.items as TSchema | undefined;
    else current = (current.properties?.[segment] ?? firstPatternProperty(current)) as TSchema | undefined;
  }
  return current;
}

function firstPatternProperty(schema: TSchema): TSchema | undefined {
  const patterns = schema.patternProperties as Record<string, TSchema> | undefined;
  return patterns ? Object.values(patterns)[0] : undefined;
}

function valueAt(value: unknown, segments: readonly (string | number)[]): unknown {
  let current = value;
  for (const segment of segments) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<string | number, unknown>)[segment];
  }
  return current;
}
