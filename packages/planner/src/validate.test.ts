import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type Plan, PlanValidationError, parsePlan, validatePlan } from './index.js';

const FILE = 'plans/test.yaml';

/** Problems as a person reads them: file:line field message-fragment. */
function problemsOf(text: string): { where: string; field: string; message: string }[] {
  try {
    parsePlan(text, FILE);
  } catch (error) {
    if (!(error instanceof PlanValidationError)) throw error;
    return error.problems.map((p) => ({ where: `${p.file}:${p.line}`, field: p.field, message: p.message }));
  }
  return [];
}

// Line numbers below count from the `goal:` line as 1.
const valid = `goal: digest a corpus
flows:
  - id: archive
    persona: Archivist
    actions:
      - id: hash
        kind: builtin
        params: { name: sha256, input: { file: corpus/a.txt } }
      - id: zip
        kind: builtin
        params: { name: gzip, input: { file: corpus/a.txt } }
  - id: analysis
    persona: Linguist
    actions:
      - id: count
        kind: builtin
        after: [hash]
        params: { name: wordcount, input: { fromActions: [hash] } }
`;

interface Row {
  name: string;
  text: string;
  expected: { where: string; field: string; message: string }[];
}

const rows: Row[] = [
  {
    name: 'a misspelt field, with a suggestion',
    text: valid.replace('        after: [hash]', '        afer: [hash]'),
    expected: [
      {
        where: `${FILE}:17`,
        field: '/flows/1/actions/0/afer',
        message: "unknown field 'afer' (did you mean 'after'?)",
      },
    ],
  },
  {
    name: 'a bad policy, listing the allowed values',
    text: `policy: local_prefered\n${valid}`,
    expected: [
      {
        where: `${FILE}:1`,
        field: '/policy',
        message: `"local_prefered" is not one of local_preferred, cloud_preferred (did you mean 'local_preferred'?)`,
      },
    ],
  },
  {
    name: 'a missing persona (schema error at the flow)',
    text: valid.replace('    persona: Linguist\n', ''),
    expected: [{ where: `${FILE}:12`, field: '/flows/1/persona', message: "missing required field 'persona'" }],
  },
  {
    name: 'duplicate flow ids',
    text: valid.replace('id: analysis', 'id: archive'),
    expected: [
      { where: `${FILE}:12`, field: '/flows/1/id', message: "duplicate flow id 'archive' (first at /flows/0)" },
    ],
  },
  {
    name: 'duplicate action ids across flows',
    text: valid.replace('id: count', 'id: zip'),
    expected: [
      {
        where: `${FILE}:15`,
        field: '/flows/1/actions/0/id',
        message: "duplicate action id 'zip' (first at /flows/0/actions/1)",
      },
    ],
  },
  {
    name: 'an unknown dependency, with a suggestion',
    text: valid.replace('after: [hash]', 'after: [hsh]'),
    expected: [
      {
        where: `${FILE}:17`,
        field: '/flows/1/actions/0/after/0',
        message: "unknown dependency 'hsh' (did you mean 'hash'?)",
      },
      {
        where: `${FILE}:18`,
        field: '/flows/1/actions/0/params/input/fromActions/0',
        message: "input from 'hash', which is not in this action's after list: add it there",
      },
    ],
  },
  {
    name: 'an unknown dependency with nothing close',
    text: valid.replace('after: [hash]', 'after: [hash, upload-to-s3]'),
    expected: [
      { where: `${FILE}:17`, field: '/flows/1/actions/0/after/1', message: "unknown dependency 'upload-to-s3'" },
    ],
  },
  {
    name: 'a dependency cycle across flows, with its path',
    text: valid
      .replace(
        '        params: { name: gzip, input: { file: corpus/a.txt } }\n',
        '        after: [count]\n        params: { name: gzip, input: { file: corpus/a.txt } }\n',
      )
      .replace(
        '      - id: hash\n        kind: builtin\n',
        '      - id: hash\n        kind: builtin\n        after: [zip]\n',
      ),
    expected: [
      {
        where: `${FILE}:19`,
        field: '/flows/1/actions/0/after/0',
        message: 'dependency cycle: hash -> zip -> count -> hash',
      },
    ],
  },
  {
    name: 'an action that waits for itself',
    text: valid.replace('after: [hash]', 'after: [hash, count]'),
    expected: [
      { where: `${FILE}:17`, field: '/flows/1/actions/0/after/1', message: 'dependency cycle: count -> count' },
    ],
  },
  {
    name: 'an unknown action kind, with a suggestion',
    text: valid.replace('kind: builtin\n        params: { name: gzip', 'kind: bultin\n        params: { name: gzip'),
    expected: [
      {
        where: `${FILE}:10`,
        field: '/flows/0/actions/1/kind',
        message: "unknown action kind 'bultin': expected one of llm, exec, builtin, recipe (did you mean 'builtin'?)",
      },
    ],
  },
  {
    name: 'params invalid for the kind: a field path inside params',
    text: valid.replace(
      '{ name: gzip, input: { file: corpus/a.txt } }',
      '{ name: gzip, input: { flie: corpus/a.txt } }',
    ),
    expected: [
      {
        where: `${FILE}:11`,
        field: '/flows/0/actions/1/params/input/flie',
        message: "builtin params: unknown field 'flie' (did you mean 'file'?)",
      },
    ],
  },
  {
    name: 'an unknown builtin name',
    text: valid.replace('name: sha256', 'name: sha265'),
    expected: [
      {
        where: `${FILE}:8`,
        field: '/flows/0/actions/0/params/name',
        message: `builtin params: "sha265" is not one of noop, sleep, sha256, gzip, gunzip, wordcount, concat (did you mean 'sha256'?)`,
      },
    ],
  },
  {
    name: 'exec params missing the command',
    text: valid.replace(
      'kind: builtin\n        params: { name: gzip, input: { file: corpus/a.txt } }',
      'kind: exec\n        params: { args: [-l] }',
    ),
    expected: [
      {
        where: `${FILE}:11`,
        field: '/flows/0/actions/1/params/command',
        message: "exec params: missing required field 'command'",
      },
    ],
  },
  {
    name: 'a bad model name on an action and in defaults',
    text: `defaults:\n  model: llama3.2:3b\n${valid.replace('        kind: builtin\n        params: { name: gzip', '        kind: builtin\n        model: gpt 4o\n        params: { name: gzip')}`.replace(
      'model: llama3.2:3b',
      'model: "llama3:"',
    ),
    expected: [
      { where: `${FILE}:2`, field: '/defaults/model', message: "bad model name 'llama3:'" },
      { where: `${FILE}:13`, field: '/flows/0/actions/1/model', message: "bad model name 'gpt 4o'" },
    ],
  },
  {
    name: 'a fromActions input naming an action not in after',
    text: valid.replace('fromActions: [hash]', 'fromActions: [hash, zip]'),
    expected: [
      {
        where: `${FILE}:18`,
        field: '/flows/1/actions/0/params/input/fromActions/1',
        message: "input from 'zip', which is not in this action's after list: add it there",
      },
    ],
  },
  {
    name: 'a fromActions input naming no action at all',
    text: valid.replace('fromActions: [hash]', 'fromActions: [hash, zap]'),
    expected: [
      {
        where: `${FILE}:18`,
        field: '/flows/1/actions/0/params/input/fromActions/1',
        message: "input from unknown action 'zap' (did you mean 'zip'?)",
      },
    ],
  },
  {
    name: 'a timeout that is not a duration',
    text: valid.replace('        after: [hash]\n', '        after: [hash]\n        timeout: 5 minutes\n'),
    expected: [
      {
        where: `${FILE}:18`,
        field: '/flows/1/actions/0/timeout',
        message: "bad timeout: '5 minutes' is not a duration: use milliseconds or a number with ms, s, m or h",
      },
    ],
  },
  {
    name: 'a timeout of the wrong type',
    text: valid.replace('        after: [hash]\n', '        after: [hash]\n        timeout: true\n'),
    expected: [
      {
        where: `${FILE}:18`,
        field: '/flows/1/actions/0/timeout',
        message: "expected a duration such as '30s', '5m', '250ms', '2h', or a number of milliseconds, got true",
      },
    ],
  },
  {
    name: 'broken YAML',
    text: valid.replace('    persona: Linguist', '    persona: [Linguist'),
    expected: [
      { where: `${FILE}:14`, field: '', message: 'Flow sequence in block collection must be sufficiently indented' },
    ],
  },
];

describe('parsePlan problems', () => {
  it('accepts the base plan of the table', () => {
    expect(problemsOf(valid)).toEqual([]);
  });

  it.each(rows)('reports $name', ({ text, expected }) => {
    const problems = problemsOf(text);
    expect(problems.map(({ where, field }) => ({ where, field }))).toEqual(
      expected.map(({ where, field }) => ({ where, field })),
    );
    for (const [i, p] of problems.entries()) expect(p.message).toContain(expected[i]!.message);
  });

  it('collects every problem, not just the first', () => {
    const text = valid
      .replace('id: analysis', 'id: archive')
      .replace('after: [hash]', 'after: [hsh]')
      .replace('name: sha256', 'name: sha265');
    expect(problemsOf(text).map((p) => p.field)).toEqual([
      '/flows/0/actions/0/params/name',
      '/flows/1/id',
      '/flows/1/actions/0/after/0',
      '/flows/1/actions/0/params/input/fromActions/0',
    ]);
  });

  it('formats each problem as file:line:column: field: message', () => {
    const error = (() => {
      try {
        parsePlan(valid.replace('after: [hash]', 'after: [hsh]'), FILE);
      } catch (e) {
        return e as PlanValidationError;
      }
    })();
    expect(error?.message.split('\n')[0]).toBe(
      `${FILE}:17:17: /flows/1/actions/0/after/0: unknown dependency 'hsh' (did you mean 'hash'?)`,
    );
  });
});

describe('validatePlan', () => {
  it('checks a plan built in code, naming fields without lines', () => {
    const plan: Plan = {
      goal: 'g',
      flows: [
        { id: 'f', persona: 'P', actions: [{ id: 'a', kind: 'builtin', params: { name: 'noop' }, after: ['b'] }] },
      ],
    };
    expect(validatePlan(plan)).toEqual([
      { file: '', line: 0, column: 0, field: '/flows/0/actions/0/after/0', message: "unknown dependency 'b'" },
    ]);
  });

  it('reports schema problems for a value that is not a plan at all', () => {
    const problems = validatePlan({ goal: 'g', flows: [{ id: 'f' }] } as unknown as Plan);
    expect(problems.map((p) => p.field)).toEqual(['/flows/0/persona', '/flows/0/actions']);
  });
});

describe('example plans', () => {
  const dir = join(import.meta.dirname, '../../../examples/plans');
  const files = readdirSync(dir).filter((f) => /\.(ya?ml|json)$/.test(f));

  it('exist', () => {
    expect(files.length).toBeGreaterThanOrEqual(2);
  });

  it.each(files)('%s validates', (file) => {
    const plan = parsePlan(readFileSync(join(dir, file), 'utf8'), file);
    expect(plan.flows.length).toBeGreaterThan(0);
  });

  it('read only corpus files that exist', () => {
    for (const file of files) {
      const plan = parsePlan(readFileSync(join(dir, file), 'utf8'), file);
      for (const action of plan.flows.flatMap((f) => f.actions)) {
        const input = (action.params as { input?: { file?: string } }).input;
        if (input?.file) expect(() => readFileSync(join(dir, '..', input.file!))).not.toThrow();
      }
    }
  });
});
