import type { Rejection } from './codec.js';

export interface RejectionLogInit {
  /** Called at most once per peer per interval, with the number suppressed since the last call. */
  log: (peer: string, rejection: Rejection, suppressed: number) => void;
  /** Called for every rejection (metrics). */
  count?: (rejection: Rejection) => void;
  now?: () => number;
  intervalMs?: number;
  /** Bound on peers remembered, so a flood of identities cannot grow memory without limit. */
  maxPeers?: number;
}

export interface RejectionLog {
  record(peer: string, rejection: Rejection): void;
  readonly total: number;
}

/** Counts every rejected message and logs one line per peer per interval (default one minute). */
export function createRejectionLog(init: RejectionLogInit): RejectionLog {
  const now = init.now ?? Date.now;
  const intervalMs = init.intervalMs ?? 60_000;
  const maxPeers = init.maxPeers ?? 10_000;
  const peers = new Map<string, { lastLog: number; suppressed: number }>();
  let total = 0;
  return {
    get total() {
      return total;
    },
    record(peer, rejection) {
      total++;
      init.count?.(rejection);
      const t = now();
      const entry = peers.get(peer);
      if (entry && t - entry.lastLog < intervalMs) {
        entry.suppressed++;
        return;
      }
      if (!entry && peers.size >= maxPeers) {
        const oldest = peers.keys().next().value;
        if (oldest !== undefined) peers.delete(oldest);
      }
      init.log(peer, rejection, entry?.suppressed ?? 0);
      peers.delete(peer);
      peers.set(peer, { lastLog: t, suppressed: 0 });
    },
  };
}
