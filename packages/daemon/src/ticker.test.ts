import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createTicker } from './ticker.js';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('ticker', () => {
  it('runs every task on the ticks it is due, all on one timer', () => {
    const runs: string[] = [];
    const ticker = createTicker({ periodMs: 1_000 });
    ticker.every(1_000, () => {
      runs.push('beat');
    });
    ticker.every(5_000, () => {
      runs.push('probe');
    });
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(10_000);
    expect(runs.filter((r) => r === 'beat')).toHaveLength(10);
    expect(runs.filter((r) => r === 'probe')).toHaveLength(2); // first tick, then five ticks later
    expect(runs.slice(0, 3)).toEqual(['beat', 'probe', 'beat']);
    ticker.stop();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('skips a task that is still running instead of queueing it, and reports failures without stopping', async () => {
    const errors: unknown[] = [];
    const ticker = createTicker({ periodMs: 100, onError: (e) => errors.push(e) });
    let started = 0;
    let finish = () => {};
    ticker.every(100, () => {
      started++;
      return new Promise<void>((r) => {
        finish = r;
      });
    });
    let failures = 0;
    ticker.every(100, () => {
      failures++;
      throw new Error('probe failed');
    });
    await vi.advanceTimersByTimeAsync(500);
    expect(started).toBe(1);
    expect(failures).toBe(5);
    expect(errors).toHaveLength(5);
    finish();
    await vi.advanceTimersByTimeAsync(100);
    expect(started).toBe(2);
    ticker.stop();
  });

  it('reports how late each tick fired: the event loop lag', async () => {
    vi.useRealTimers();
    const lags: number[] = [];
    const ticker = createTicker({ periodMs: 20, onLag: (ms) => lags.push(ms) });
    await new Promise((r) => setTimeout(r, 70));
    const blockedUntil = performance.now() + 200; // a blocked loop: 200 ms of synchronous work
    while (performance.now() < blockedUntil) {}
    await new Promise((r) => setTimeout(r, 50));
    ticker.stop();
    expect(Math.max(...lags)).toBeGreaterThanOrEqual(150);
  });
});
