import { describe, expect, it } from 'vitest';
import { createRejectionLog } from './rejections.js';

describe('rejection log', () => {
  it('counts every rejection but logs once per peer per minute, reporting what it suppressed', () => {
    let t = 0;
    const logged: Array<[string, number]> = [];
    let counted = 0;
    const log = createRejectionLog({
      now: () => t,
      log: (peer, _r, suppressed) => logged.push([peer, suppressed]),
      count: () => counted++,
    });
    const r = { reason: 'invalid-body' as const, detail: 'x' };
    for (let i = 0; i < 5; i++) log.record('a', r);
    log.record('b', r);
    t = 60_000;
    log.record('a', r);
    expect(counted).toBe(7);
    expect(log.total).toBe(7);
    expect(logged).toEqual([
      ['a', 0],
      ['b', 0],
      ['a', 4],
    ]);
  });

  it('remembers a bounded number of peers', () => {
    const logged: string[] = [];
    const log = createRejectionLog({ now: () => 0, log: (p) => logged.push(p), maxPeers: 2 });
    const r = { reason: 'too-large' as const, detail: 'x' };
    for (const p of ['a', 'b', 'c', 'a']) log.record(p, r);
    expect(logged).toEqual(['a', 'b', 'c', 'a']);
  });
});
