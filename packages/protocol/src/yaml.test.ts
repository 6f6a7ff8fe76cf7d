import { Type } from '@sinclair/typebox';
import { describe, expect, it } from 'vitest';
import { FileValidationError, parseYamlWithSchema } from './yaml.js';

const Schema = Type.Object(
  {
    name: Type.String({ minLength: 1 }),
    models: Type.Array(Type.Object({ url: Type.String({ pattern: '^https?://' }) }, { additionalProperties: false })),
  },
  { additionalProperties: false },
);

function problemsOf(text: string) {
  try {
    parseYamlWithSchema(text, Schema, 'node.yaml');
  } catch (err) {
    if (err instanceof FileValidationError) return err.problems;
    throw err;
  }
  throw new Error('expected a validation error');
}

describe('parseYamlWithSchema', () => {
  it('returns the typed value for a valid file', () => {
    expect(parseYamlWithSchema('name: a\nmodels:\n  - url: http://x\n', Schema, 'f')).toEqual({
      name: 'a',
      models: [{ url: 'http://x' }],
    });
  });

  it('names file, line and field of a bad value', () => {
    const [p] = problemsOf('name: a\nmodels:\n  - url: http://x\n  - url: ftp://y\n');
    expect(p).toMatchObject({ file: 'node.yaml', line: 4, field: '/models/1/url' });
    expect(p!.message).toMatch(/match/);
  });

  it('reports YAML syntax errors with their line', () => {
    const [p] = problemsOf('name: a\nmodels: [\n');
    expect(p!.file).toBe('node.yaml');
    expect(p!.line).toBeGreaterThan(0);
  });

  it('reports unknown fields and duplicate keys', () => {
    expect(
      problemsOf('name: a\nmodels: []\nnmae: b\n')
        .map((p) => p.message)
        .join(),
    ).toMatch(/Unexpected property/);
    expect(problemsOf('name: a\nname: b\nmodels: []\n')[0]!.line).toBe(2);
  });
});
