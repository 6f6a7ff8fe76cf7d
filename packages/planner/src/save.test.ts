import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { savePlan, stringifyPlan } from './save.js';
import { parsePlan } from './validate.js';

const examples = join(import.meta.dirname, '../../../examples/plans');
const dir = mkdtempSync(join(tmpdir(), 'planner-save-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('savePlan', () => {
  it.each(readdirSync(examples))('%s round-trips through YAML', async (file) => {
    const plan = parsePlan(readFileSync(join(examples, file), 'utf8'), file);
    const path = join(dir, `${file}.yaml`);
    await savePlan(plan, path);
    expect(parsePlan(readFileSync(path, 'utf8'), path)).toEqual(plan);
  });

  it('keeps strings that look like other types as strings', () => {
    const plan = parsePlan(
      `goal: "yes"\nflows:\n  - id: "1"\n    persona: "null"\n    actions:\n      - { id: a, kind: exec, timeout: "1200", params: { command: echo, args: ["true", "0x1f", "a: b", "- c"] } }\n`,
      'p.yaml',
    );
    expect(parsePlan(stringifyPlan(plan), 'again.yaml')).toEqual(plan);
    expect(stringifyPlan(plan).startsWith('# hermes-mesh plan.')).toBe(true);
  });
});
