/**
 * One timer for all of a daemon's periodic work, one wake-up per heartbeat (a bare node process on these VMs
 * spends ~130-190 us per timer wake-up; on an idle hermesd, cutting 12 of them a second saved ~0.05-0.1% of a
 * core, less than the per-message cost of libp2p). Tasks are due on ticks rather than on timers of their own:
 * each runs on the first tick at least its interval after its last start (half a period of slack, so timer
 * jitter never skips a tick), and never overlaps itself; a slow one is skipped, not queued. Each tick also measures how late it fired: the event loop's lag, for free.
 */
export interface Ticker {
  /** Runs `fn` on ticks at least `ms` apart, starting with the next tick. */
  every(ms: number, fn: () => void | Promise<void>): void;
  stop(): void;
}

export interface TickerInit {
  periodMs: number;
  /** How many ms late each tick fired (from the second tick on). */
  onLag?: (ms: number) => void;
  onError?: (err: unknown) => void;
}

export function createTicker(init: TickerInit): Ticker {
  const { periodMs } = init;
  const tasks: Array<{ ms: number; fn: () => void | Promise<void>; next: number; running: boolean }> = [];
  let last: number | undefined;
  const tick = () => {
    const now = performance.now();
    if (last !== undefined) init.onLag?.(Math.max(0, now - last - periodMs));
    last = now;
    for (const task of tasks) {
      if (task.running || now < task.next - periodMs / 2) continue;
      task.next = now + task.ms;
      task.running = true;
      // Synchronous tasks finish before the next starts; an async one runs on while the tick goes on.
      let result: unknown;
      try {
        result = task.fn();
      } catch (err) {
        init.onError?.(err);
      }
      if (result instanceof Promise) {
        result
          .catch((err) => init.onError?.(err))
          .finally(() => {
            task.running = false;
          });
      } else {
        task.running = false;
      }
    }
  };
  const timer = setInterval(tick, periodMs);
  return {
    every(ms, fn) {
      tasks.push({ ms, fn, next: 0, running: false });
    },
    stop: () => clearInterval(timer),
  };
}
