import type { MeshNode } from '@hermes-mesh/mesh';
import {
  type LedgerEvent,
  MessageTooLargeError,
  PROTOCOLS,
  ProtocolNotServedError,
  type VersionVector,
} from '@hermes-mesh/protocol';
import { chunkEntries, EVENT_BYTES_PER_MESSAGE, EVENTS_PER_MESSAGE, type Ledger, type LedgerEntry } from './ledger.js';

export interface ReplicatorInit {
  ledger: Ledger;
  /** Any MeshNode: the libp2p one, or an in-memory fake in tests. */
  mesh: MeshNode;
  /** Anti-entropy period: pull from every connected peer this often (default 5000 ms; 0 = only on connect/gaps). */
  intervalMs?: number;
  /**
   * While the ledger is quiet (a round pulled nothing, and nothing was written or received since the one before)
   * the period doubles, up to this (default 30 s); anything new brings it back to intervalMs. An idle mesh then
   * pulls twice a minute instead of 12 times; what gossip lost of a burst's tail is still pulled within seconds,
   * as the burst itself reset the period.
   */
  maxIntervalMs?: number;
  /**
   * A periodic pull asks only for events its peer has held this long (default 2000 ms): it repairs what gossip
   * lost, and during a burst what was written just now is still on its way (pulling it sent everything twice).
   * Pulls on connect and on a gap ask for everything missing.
   */
  settledMs?: number;
  /** Most events asked for per sync page (default 5000). */
  pageLimit?: number;
  /** Most event bytes served per sync page (default 6 MiB, under the 8 MiB sync-res cap). */
  pageBytes?: number;
  /** Most events per pushed message (default 500; split further if a message would pass the 1 MiB cap). */
  pushBatch?: number;
  /** About the most event bytes per pushed message (default 768 KiB, under the 1 MiB cap of an events message). */
  pushBytes?: number;
  /** Per-request timeout (default 10 s). */
  timeoutMs?: number;
  /**
   * How long new events wait to be pushed, so that what is written meanwhile goes in the same message (default
   * 20 ms; 0 = the next turn of the event loop). Peers that need them at once (see pushPromptly) get each
   * durable batch without waiting; for everyone else a few ms late costs nothing, while each message sent costs
   * the receiver a decode and a write.
   */
  pushDelayMs?: number;
  /**
   * How long a gap may stay open before it is pulled (default 200 ms). Events of one origin can reach a node by
   * several paths (an assignment handed over directly runs ahead of its coordinator's push), so a later event
   * often arrives just before an earlier one: pulling at once would mostly fetch what is already on its way.
   */
  gapGraceMs?: number;
  /**
   * True while some live member is not connected to this node (default: never). New events then also go on
   * gossip, which reaches that member through the others; otherwise each connected peer gets them directly
   * and only once, where gossip would deliver every message to every node once per mesh peer.
   */
  relay?: () => boolean;
}

export interface ReplicatorStats {
  pushedEvents: number;
  receivedEvents: number;
  pulledEvents: number;
  servedPages: number;
  syncRounds: number;
  errors: number;
  lastError?: string;
}

export interface Replicator {
  /** Pulls from `peer` page by page until it has nothing this replica lacks. Resolves with the events gained. */
  syncWith(peer: string): Promise<number>;
  /** syncWith every connected peer. */
  syncAll(): Promise<number>;
  /**
   * For the next PROMPT_MS, `peer` gets this node's new events as soon as each batch is durable, without the push
   * delay: a worker calls it for the coordinator that assigns it work, so a result reaches it in one hop at once.
   */
  pushPromptly(peer: string): void;
  /**
   * Calls `listener` with each batch of events a peer pushes here (only that peer's own), right after they are
   * folded and before they are durable: a coordinator verifies a reported claim so that its verdict shares the
   * claim's disk write. Returns the unsubscribe function.
   */
  onPush(listener: (events: readonly LedgerEvent[], peer: string) => void): () => void;
  stats(): ReplicatorStats;
  stop(): void;
}

/** How long a peer asked for with pushPromptly keeps getting each batch at once. */
const PROMPT_MS = 10 * 60_000;
/** A peer not serving ledger-sync yet is asked again after 250 ms, 500 ms, ... 4 s (~7.75 s in all). */
const NOT_SERVED_FIRST_MS = 250;
const NOT_SERVED_RETRIES = 5;

const DEFAULTS = {
  intervalMs: 5000,
  maxIntervalMs: 30_000,
  settledMs: 2000,
  pageLimit: 5000,
  pageBytes: 6 * 1024 * 1024,
  pushBatch: EVENTS_PER_MESSAGE,
  pushBytes: EVENT_BYTES_PER_MESSAGE,
  timeoutMs: 10_000,
  pushDelayMs: 20,
  gapGraceMs: 200,
  relay: () => false,
};

/**
 * Replicates a ledger over a mesh: pushes this node's new events to each connected peer directly (and on gossip
 * too while some member is not connected), pulls whatever it lacks by version vector over the ledger-sync
 * protocol (on connect, on a gap, and periodically), and serves those pulls.
 */
export async function createReplicator(init: ReplicatorInit): Promise<Replicator> {
  const options = { ...DEFAULTS, ...definedOnly(init) };
  const { ledger, mesh } = init;
  const stats: ReplicatorStats = {
    pushedEvents: 0,
    receivedEvents: 0,
    pulledEvents: 0,
    servedPages: 0,
    syncRounds: 0,
    errors: 0,
  };
  let stopped = false;
  const inFlight = new Map<string, Promise<number>>();
  /** Peers to pull from again once the current pull ends (a gap showed up meanwhile). */
  const again = new Set<string>();

  const fail = (err: unknown) => {
    stats.errors++;
    stats.lastError = err instanceof Error ? err.message : String(err);
  };

  /**
   * Where the local log stood at a time in the last minute (sampled as events become durable): events at or
   * below it have been held at least since then. What the log held at start counts as settled from time 0.
   */
  const durableAt: Array<[time: number, position: number]> = [[0, ledger.position()]];
  function positionAsOf(time: number): number {
    let at = 0;
    for (const [t, position] of durableAt) {
      if (t > time) break;
      at = position;
    }
    return at;
  }

  await mesh.handle(PROTOCOLS.ledgerSync, async (request) => {
    if (stopped || request.kind !== 'sync-req') return undefined;
    const body = request.body as { have: VersionVector; limit: number; upTo?: VersionVector; settledMs?: number };
    stats.servedPages++;
    // After an open from a snapshot, the events under it are readable once loaded: serve whole pages.
    await ledger.loaded();
    const limit = Math.min(body.limit, options.pageLimit);
    const page = ledger.eventsSince(body.have, limit, {
      maxBytes: options.pageBytes,
      ...(body.upTo ? { upTo: body.upTo } : {}),
      ...(body.settledMs === undefined ? {} : { maxPosition: positionAsOf(Date.now() - body.settledMs) }),
    });
    return { kind: 'sync-res', body: page };
  });

  /**
   * Pulls what this replica lacks from `peer`, page by page; `upTo` bounds the pull to a gap's missing range,
   * `settledMs` to what the peer has held that long.
   */
  async function pullFrom(peer: string, upTo?: VersionVector, settledMs?: number): Promise<number> {
    let gained = 0;
    for (;;) {
      const have = ledger.versionVector();
      const request = {
        have,
        limit: options.pageLimit,
        ...(upTo ? { upTo } : {}),
        ...(settledMs ? { settledMs } : {}),
      };
      const reply = await mesh.request(peer, PROTOCOLS.ledgerSync, 'sync-req', request, {
        timeoutMs: options.timeoutMs,
      });
      if (reply.kind !== 'sync-res') throw new Error(`${peer} answered sync-req with ${reply.kind}`);
      const page = reply.body as { events: LedgerEvent[]; more: boolean };
      const report = await ledger.ingest(page.events);
      gained += report.accepted;
      stats.pulledEvents += report.accepted;
      stats.syncRounds++;
      // A page that teaches nothing cannot be followed by one that does: stop rather than loop.
      if (!page.more || report.accepted === 0) return gained;
    }
  }

  /**
   * Peers that answered a pull with "not served": each is starting (it joins the mesh before its replicator is
   * up) and is asked again after a short wait, doubling, NOT_SERVED_RETRIES times before it counts as an error.
   */
  const notServed = new Map<string, { tries: number; timer: NodeJS.Timeout }>();
  function retryWhenServed(peer: string): boolean {
    const tries = (notServed.get(peer)?.tries ?? 0) + 1;
    if (stopped || tries > NOT_SERVED_RETRIES) {
      notServed.delete(peer);
      return false;
    }
    const timer = setTimeout(() => void syncWith(peer), NOT_SERVED_FIRST_MS * 2 ** (tries - 1));
    timer.unref();
    notServed.set(peer, { tries, timer });
    return true;
  }
  /** Drops the retry state of `peer` (it answered, or went away), with its pending timer. */
  function forgetNotServed(peer: string): void {
    clearTimeout(notServed.get(peer)?.timer);
    notServed.delete(peer);
  }

  function syncWith(peer: string, upTo?: VersionVector, settledMs?: number): Promise<number> {
    const running = inFlight.get(peer);
    if (running) {
      again.add(peer);
      return running;
    }
    const pull = pullFrom(peer, upTo, settledMs)
      .then(
        (gained) => {
          forgetNotServed(peer);
          return gained;
        },
        (err) => {
          if (!(err instanceof ProtocolNotServedError && retryWhenServed(peer))) fail(err);
          return 0;
        },
      )
      .finally(() => {
        inFlight.delete(peer);
        if (again.delete(peer) && !stopped) void syncWith(peer);
      });
    inFlight.set(peer, pull);
    return pull;
  }

  /** syncWith every connected peer; the periodic pull asks only for what has settled (see settledMs). */
  async function syncAll(settledMs?: number): Promise<number> {
    const gained = await Promise.all(mesh.connectedPeers().map((peer) => syncWith(peer, undefined, settledMs)));
    return gained.reduce((a, b) => a + b, 0);
  }

  // ---- push ----
  /**
   * This node's own entries not yet pushed to every connected peer, in log order, and how far each prompt peer
   * has had them already (so the delayed push sends it only the rest, and in order).
   */
  let outbox: LedgerEntry[] = [];
  const sentTo = new Map<string, number>();
  const prompt = new Map<string, number>();
  let flushScheduled = false;
  const unsubscribe = ledger.subscribe(ledger.position(), (entries: LedgerEntry[]) => {
    noteActivity();
    // One sample per 100 ms (within it the last one moves up: a settled page may then reach up to 100 ms past
    // its window, never miss an event for good); a minute of them, the oldest saying where the log stood before.
    const now = Date.now();
    const position = entries[entries.length - 1]!.position;
    const last = durableAt[durableAt.length - 1]!;
    if (now - last[0] < 100) last[1] = position;
    else durableAt.push([now, position]);
    while (durableAt.length > 2 && durableAt[1]![0] < now - 60_000) durableAt.shift();
    const before = outbox.length;
    for (const entry of entries) if (entry.event.origin === ledger.origin) outbox.push(entry);
    if (outbox.length === before) return;
    if (prompt.size > 0) pushPrompt(now);
    if (!flushScheduled) {
      flushScheduled = true;
      if (options.pushDelayMs > 0) setTimeout(flushOutbox, options.pushDelayMs).unref();
      else setImmediate(flushOutbox);
    }
  });

  /** The entries (in log order) after position `upTo`; all of them when it is undefined. */
  function after(entries: LedgerEntry[], upTo: number | undefined): LedgerEntry[] {
    if (upTo === undefined) return entries;
    let from = entries.length;
    while (from > 0 && entries[from - 1]!.position > upTo) from--;
    return entries.slice(from);
  }

  function pushPrompt(now: number): void {
    const connected = new Set(mesh.connectedPeers());
    for (const [peer, askedAt] of prompt) {
      if (now - askedAt > PROMPT_MS) prompt.delete(peer);
      else if (connected.has(peer)) pushTo([peer], after(outbox, sentTo.get(peer)));
    }
  }

  function flushOutbox(): void {
    flushScheduled = false;
    const entries = outbox;
    outbox = [];
    const last = entries[entries.length - 1]!.position;
    // Peers that had none of these yet get the same messages (encoded once); a prompt peer only what it lacks.
    const everything: string[] = [];
    for (const peer of mesh.connectedPeers()) {
      const upTo = sentTo.get(peer);
      if (upTo === undefined) everything.push(peer);
      else if (upTo < last) pushTo([peer], after(entries, upTo));
    }
    const chunks = chunksOf(entries);
    if (everything.length > 0) for (const events of chunks) send(everything, events);
    sentTo.clear(); // every connected peer now has the whole outbox
    stats.pushedEvents += entries.length;
    if (options.relay()) for (const events of chunks) publish(events);
  }

  function pushTo(peers: string[], entries: LedgerEntry[]): void {
    if (entries.length === 0 || peers.length === 0) return;
    for (const events of chunksOf(entries)) send(peers, events);
    for (const peer of peers) sentTo.set(peer, entries[entries.length - 1]!.position);
  }

  const chunksOf = (entries: LedgerEntry[]) =>
    chunkEntries(entries, options.pushBatch, options.pushBytes).map((chunk) => chunk.map((e) => e.event));

  /** Hands `events` to `deliver`; a batch over the message cap is split in halves until each piece fits. */
  function inPieces(events: LedgerEvent[], deliver: (piece: LedgerEvent[]) => Promise<void>): void {
    if (stopped || events.length === 0) return;
    deliver(events).catch((err) => {
      if (err instanceof MessageTooLargeError && events.length > 1) {
        const half = Math.ceil(events.length / 2);
        inPieces(events.slice(0, half), deliver);
        inPieces(events.slice(half), deliver);
      } else fail(err);
    });
  }

  /** One message straight to each of `peers`. A lost one is a gap, pulled by the receiver (or periodically). */
  const send = (peers: readonly string[], events: LedgerEvent[]) =>
    inPieces(events, async (piece) => {
      // Encoding throws at once when too large (then nothing was sent); each peer's send fails on its own. A peer
      // not listening yet is starting: its replicator pulls all it lacks as it comes up, this included.
      for (const sent of mesh.notifyEach(peers, PROTOCOLS.ledgerPush, 'events', { events: piece })) {
        sent.catch((err) => {
          if (!(err instanceof ProtocolNotServedError)) fail(err);
        });
      }
    });

  const publish = (events: LedgerEvent[]) => inPieces(events, (piece) => mesh.publish('events', { events: piece }));

  // ---- receive ----
  function receive(events: readonly LedgerEvent[], peer: string): void {
    stats.receivedEvents += events.length;
    ledger.ingest(events).then((report) => {
      // Held events mean a gap: what fills it is on the sender (and maybe elsewhere); ask for it if it stays.
      if (report.held > 0 || ledger.hasGaps()) pullIfGapStays(peer);
    }, fail);
  }
  const pushListeners = new Set<(events: readonly LedgerEvent[], peer: string) => void>();
  await mesh.listen(PROTOCOLS.ledgerPush, (message, peer) => {
    if (stopped || message.kind !== 'events') return;
    // A peer pushes its own events only; the connection says who it is. Others' come by gossip or sync.
    const own = message.body.events.filter((e) => e.origin === peer);
    if (own.length < message.body.events.length) {
      fail(new Error(`${peer} pushed ${message.body.events.length - own.length} events of other origins`));
    }
    if (own.length === 0) return;
    receive(own, peer);
    for (const listener of pushListeners) listener(own, peer);
  });
  // Gossip: events relayed for members that are not connected to their origin.
  const offMessage = mesh.on('message', (message, peer) => {
    if (!stopped && message.kind === 'events') receive((message.body as { events: LedgerEvent[] }).events, peer);
  });
  const gapChecks = new Map<string, NodeJS.Timeout>();
  /**
   * Pulls from `peer` if a gap open now is still open after the grace period, and nothing of it arrived meanwhile.
   * During a burst new gaps open all the time (a direct assignment runs ahead of the gossip carrying its origin's
   * earlier events) and gossip closes each one, sometimes only after a second or more when the sender is busy or
   * the events are large: pulling then would fetch, a second time, what is already on its way. A gap counts as
   * stuck while its origin is still short of where the held events began, and has gained nothing since the last
   * look; while gossip is making progress on it, it gets another grace period.
   */
  function pullIfGapStays(peer: string): void {
    if (stopped || gapChecks.has(peer)) return;
    const seen = new Map(ledger.gaps().map((g) => [g.origin, { have: g.have, heldFrom: g.heldFrom }]));
    if (seen.size === 0) return;
    const check = setTimeout(() => {
      gapChecks.delete(peer);
      if (stopped) return;
      const open = ledger.gaps();
      // Only the missing ranges: a page of everything after them would mostly be what gossip is bringing.
      const stuck = open.filter((g) => {
        const then = seen.get(g.origin);
        return then !== undefined && g.have === then.have && g.have < then.heldFrom - 1;
      });
      if (stuck.length > 0 && !inFlight.has(peer)) {
        void syncWith(peer, Object.fromEntries(stuck.map((g) => [g.origin, g.heldFrom - 1])));
      } else if (open.length > 0) pullIfGapStays(peer); // progress, newer gaps or a pull under way: look again
    }, options.gapGraceMs);
    check.unref();
    gapChecks.set(peer, check);
  }
  const offConnect = mesh.on('peer:connect', (peer) => {
    if (!stopped) void syncWith(peer);
  });
  const offDisconnect = mesh.on('peer:disconnect', forgetNotServed);
  // ---- periodic pull (anti-entropy), backing off while quiet ----
  let period = options.intervalMs;
  let timer: NodeJS.Timeout | undefined;
  let due = 0;
  let changed = false;
  function schedulePull(ms: number): void {
    if (stopped || options.intervalMs <= 0) return;
    clearTimeout(timer);
    due = Date.now() + ms;
    timer = setTimeout(periodicPull, ms);
    timer.unref();
  }
  async function periodicPull(): Promise<void> {
    changed = false;
    const gained = await syncAll(options.settledMs);
    const quiet = gained === 0 && !changed;
    period = quiet ? Math.min(period * 2, Math.max(options.maxIntervalMs, options.intervalMs)) : options.intervalMs;
    schedulePull(period);
  }
  function noteActivity(): void {
    changed = true;
    if (period === options.intervalMs) return;
    period = options.intervalMs;
    if (due - Date.now() > period) schedulePull(period);
  }
  schedulePull(period);
  // Peers connected before this replicator existed (the node joins the mesh first) are caught up with now,
  // not at the first periodic pull.
  void syncAll();

  return {
    syncWith,
    syncAll,
    pushPromptly(peer) {
      prompt.set(peer, Date.now());
    },
    onPush(listener) {
      pushListeners.add(listener);
      return () => pushListeners.delete(listener);
    },
    stats: () => ({ ...stats }),
    stop() {
      stopped = true;
      clearTimeout(timer);
      for (const check of gapChecks.values()) clearTimeout(check);
      unsubscribe();
      offMessage();
      offConnect();
      offDisconnect();
      for (const { timer } of notServed.values()) clearTimeout(timer);
    },
  };
}

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
