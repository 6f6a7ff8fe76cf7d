import { describe, expect, it } from 'vitest';
import { checkFallbackReply, type FailedAction } from './fallback.js';

const failed: FailedAction = {
  goal: 'summarise the report',
  action: { id: 'summary', kind: 'exec', params: { command: 'pandoc' } },
  error: 'command not on the allowlist',
  attempts: 3,
  dependencies: [{ id: 'fetch', summary: '2 KiB of text' }],
};
const check = (reply: unknown, models?: string[]) =>
  checkFallbackReply(JSON.stringify(reply), failed, 'verifier reply 1', models);

describe('a verifier reply', () => {
  it('replace: the action keeps its id and may read its dependencies’ outputs', () => {
    const result = check({
      decision: 'replace',
      reason: 'count words in-process',
      action: {
        id: 'renamed',
        kind: 'builtin',
        params: { name: 'wordcount', input: { fromActions: ['fetch'] } },
        after: ['fetch'],
        timeout: '30s',
      },
    });
    expect(result).toMatchObject({
      ok: true,
      value: {
        decision: 'replace',
        reason: 'count words in-process',
        action: { id: 'summary', kind: 'builtin', timeoutMs: 30_000, dependsOn: ['fetch'] },
      },
    });
  });

  it('abort needs only a reason', () => {
    expect(check({ decision: 'abort', reason: 'nothing else can read pdf', action: null })).toMatchObject({
      ok: true,
      value: { decision: 'abort', reason: 'nothing else can read pdf' },
    });
  });

  it('is held to the plan rules, with the problem named on the verifier’s own fields', () => {
    const cases: Array<[unknown, RegExp]> = [
      [{ decision: 'maybe', reason: 'x' }, /"replace" or "abort"/],
      [{ decision: 'replace', reason: '' }, /say why/],
      [{ decision: 'replace', reason: 'x', action: null }, /needs the replacement action/],
      [{ decision: 'replace', reason: 'x', action: { kind: 'shell', params: {} } }, /unknown action kind|shell/],
      [
        {
          decision: 'replace',
          reason: 'x',
          action: { kind: 'builtin', params: { name: 'sha256', input: { fromActions: ['other'] } } },
        },
        /other/,
      ],
    ];
    for (const [reply, message] of cases) {
      const result = check(reply);
      expect(result.ok, JSON.stringify(reply)).toBe(false);
      if (!result.ok) expect(result.problems.map((p) => `${p.field} ${p.message}`).join('\n')).toMatch(message);
    }
    const notJson = checkFallbackReply('sure, try again', failed, 'verifier reply 1');
    expect(notJson.ok).toBe(false);
  });

  it('may only name a model the mesh serves', () => {
    const reply = {
      decision: 'replace',
      reason: 'ask a model',
      action: { kind: 'llm', params: { prompt: 'summarise' }, model: 'gpt-9' },
    };
    const result = check(reply, ['llama3.1:8b']);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.problems[0]!.message).toMatch(/no node serves gpt-9; use one of: llama3.1:8b/);
    expect(check({ ...reply, action: { ...reply.action, model: 'llama3.1:8b' } }, ['llama3.1:8b']).ok).toBe(true);
  });
});
