import { describe, expect, it } from 'vitest';
import { MAX_TIMEOUT_MS, parseDuration } from './duration.js';

describe('parseDuration', () => {
  it.each([
    ['250ms', 250],
    ['30s', 30_000],
    ['1.5s', 1500],
    ['5m', 300_000],
    ['2h', 7_200_000],
    ['1200', 1200],
    [45, 45],
  ] as const)('%s is %i ms', (text, ms) => {
    expect(parseDuration(text)).toEqual({ ok: true, ms });
  });

  it.each(['5 minutes', '-1s', '1d', '', '0s', 0, 1.5, MAX_TIMEOUT_MS + 1, '169h'])('rejects %s', (value) => {
    expect(parseDuration(value).ok).toBe(false);
  });
});
