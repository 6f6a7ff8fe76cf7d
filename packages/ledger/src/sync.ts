import type { LedgerEvent, VersionVector } from '@hermes-mesh/protocol';
import type { EntryList } from './core.js';

export interface EventPage {
  events: LedgerEvent[];
  /** True when the requester still lacks events after this page: ask again with the updated vector. */
  more: boolean;
}

export interface PageLimits {
  /** Most events in one page. */
  limit: number;
  /** Most encoded bytes of events in one page (keeps a page under the wire cap); at least one event always fits. */
  maxBytes?: number;
  /** Only entries at or below this local position (those already durable) are served. */
  maxPosition?: number;
  /** Says whether the entry at a position can be read now; the page ends before the first that cannot. */
  readable?: (position: number) => boolean;
  /** Only these origins, each up to and including this seq (a gap fill); default every origin, to its end. */
  upTo?: VersionVector;
}

/**
 * The events a requester lacks given its version vector, one bounded page. Each origin's events go out in seq
 * order from just after what the requester has, so a page never opens a gap in the requester's logs.
 */
export function eventsMissingFrom(
  logs: ReadonlyMap<string, EntryList>,
  have: VersionVector,
  { limit, maxBytes = Number.POSITIVE_INFINITY, maxPosition = Number.POSITIVE_INFINITY, readable, upTo }: PageLimits,
): EventPage {
  const events: LedgerEvent[] = [];
  let bytes = 0;
  const origins = upTo ? Object.keys(upTo).filter((o) => logs.has(o)) : [...logs.keys()];
  for (const origin of origins.sort()) {
    const log = logs.get(origin)!;
    const end = upTo ? Math.min(log.length, upTo[origin]!) : log.length;
    for (let i = Math.max(0, have[origin] ?? 0); i < end; i++) {
      const entry = log.at(i)!;
      if (entry.position > maxPosition) break;
      const full = events.length >= limit || (events.length > 0 && bytes + entry.size > maxBytes);
      if (full || (readable !== undefined && !readable(entry.position))) return { events, more: true };
      events.push(entry.event);
      bytes += entry.size;
    }
  }
  return { events, more: false };
}

/** How many events `have` lacks against `logs` (for progress and tests). */
export function missingCount(logs: ReadonlyMap<string, EntryList>, have: VersionVector): number {
  let n = 0;
  for (const [origin, log] of logs) n += Math.max(0, log.length - (have[origin] ?? 0));
  return n;
}
