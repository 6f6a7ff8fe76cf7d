import { describe, expect, it } from 'vitest';
import { dropNulls, planResponseSchema } from './response-schema.js';

type Node = Record<string, unknown>;

function everyNode(node: unknown, visit: (n: Node) => void): void {
  if (!node || typeof node !== 'object') return;
  if (!Array.isArray(node)) visit(node as Node);
  for (const child of Object.values(node)) everyNode(child, visit);
}

describe('planResponseSchema', () => {
  const schema = planResponseSchema();

  it('has a closed object at the root, as strict structured output requires', () => {
    expect(schema).toMatchObject({ type: 'object', additionalProperties: false });
  });

  it('requires every property of every object and allows no others', () => {
    const objects: Node[] = [];
    everyNode(schema, (n) => n.type === 'object' && objects.push(n));
    expect(objects.length).toBeGreaterThan(5);
    for (const o of objects) {
      expect(o.additionalProperties).toBe(false);
      expect(o.required).toEqual(Object.keys(o.properties as Node));
    }
  });

  it('keeps no keyword strict mode rejects, and gives every property a type', () => {
    everyNode(schema, (n) => {
      for (const k of ['minLength', 'maxLength', 'patternProperties', 'maxProperties']) expect(n).not.toHaveProperty(k);
      if (n.type !== 'object') return;
      for (const property of Object.values(n.properties as Record<string, Node>)) {
        expect('type' in property || 'anyOf' in property).toBe(true);
      }
    });
  });

  it('gives each action kind its own params schema, kind first', () => {
    const actions = ((schema.properties as Node).flows as Node).items as Node;
    const variants = (((actions.properties as Node).actions as Node).items as Node).anyOf as Node[];
    expect(variants.map((v) => ((v.properties as Node).kind as Node).const)).toEqual([
      'llm',
      'exec',
      'builtin',
      'recipe',
    ]);
    for (const v of variants) expect(Object.keys(v.properties as Node).slice(0, 2)).toEqual(['id', 'kind']);
    const builtinParams = (variants[2]!.properties as Node).params as Node;
    expect(JSON.stringify(builtinParams)).toContain('"const":"wordcount"');
  });
});

describe('dropNulls', () => {
  it('removes null fields at every depth and keeps everything else', () => {
    expect(dropNulls({ a: null, b: [{ c: null, d: 0 }, 'x'], e: { f: false, g: null } })).toEqual({
      b: [{ d: 0 }, 'x'],
      e: { f: false },
    });
  });
});
