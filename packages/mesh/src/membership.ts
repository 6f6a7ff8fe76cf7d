import type { Advert } from '@hermes-mesh/protocol';

export type MemberState = 'alive' | 'suspect' | 'dead' | 'left';

export interface Member {
  nodeId: string;
  advert: Advert;
  state: MemberState;
  /** When the last advert, or other sign of life, arrived (local clock). */
  lastSeen: number;
  /** When the state last changed (local clock). */
  since: number;
  self: boolean;
}

export type MembershipEvent =
  | { type: 'joined'; member: Member }
  | { type: 'updated'; member: Member }
  | { type: 'suspect'; member: Member; reason: string }
  | { type: 'alive'; member: Member }
  | { type: 'dead'; member: Member }
  | { type: 'left'; member: Member; reason: string };

export interface MembershipInit {
  selfId: string;
  now: () => number;
  /** Expected advert interval. Default 1 s. */
  heartbeatMs?: number;
  /** Silence after which a node is suspect. Default 1.5 heartbeats: one beat missed, with jitter to spare. */
  suspectAfterMs?: number;
  /** Silence after which a node is dead. Default 3 s. */
  deadAfterMs?: number;
  /** Dead and departed nodes are forgotten after this long. Default 10 min. */
  forgetAfterMs?: number;
  onEvent?: (event: MembershipEvent) => void;
}

export interface Membership {
  /** Feeds an advert (own or a peer's); older incarnations and sequence numbers are ignored. */
  observeAdvert(advert: Advert): void;
  /** A node announced it is leaving: drop it at once rather than waiting for the timeout. */
  observeLeave(nodeId: string, reason: string): void;
  /** The transport lost its connection to a node: suspect it now, dead only after the timeout. */
  observeDisconnect(nodeId: string): void;
  /**
   * Something else the node signed arrived (its ledger events): it is alive, even when its adverts run late
   * behind that traffic. Counts like a heartbeat, changes nothing else; only an advert brings back a dead node.
   */
  observeLife(nodeId: string): void;
  /** Advances time-based transitions; call it every heartbeat, and at nextDeathAt() when there is one. */
  tick(): void;
  /**
   * When the first suspect node is due to be declared dead, if any is suspect. Suspicion may be noticed a heartbeat
   * late; death should not be: a tick at this time declares it on the dot.
   */
  nextDeathAt(): number | undefined;
  get(nodeId: string): Member | undefined;
  members(): Member[];
  readonly deadAfterMs: number;
}

/** Which of two adverts from one node is newer: a later incarnation (restart) wins, then a higher seq. */
function isNewer(next: Advert, current: Advert): boolean {
  if (next.startedAt !== current.startedAt) return next.startedAt > current.startedAt;
  return next.seq > current.seq;
}

/**
 * The membership table: who is in the mesh and how sure we are that they are alive.
 * Pure over an injected clock, so the transitions are tested without waiting.
 */
export function createMembership(init: MembershipInit): Membership {
  const heartbeatMs = init.heartbeatMs ?? 1_000;
  const suspectAfterMs = init.suspectAfterMs ?? heartbeatMs * 1.5;
  const deadAfterMs = init.deadAfterMs ?? 3_000;
  const forgetAfterMs = init.forgetAfterMs ?? 10 * 60_000;
  if (!(suspectAfterMs < deadAfterMs)) {
    throw new Error(`suspectAfterMs (${suspectAfterMs}) must be below deadAfterMs (${deadAfterMs})`);
  }
  const table = new Map<string, Member>();
  const emit = (event: MembershipEvent) => init.onEvent?.(event);

  function setState(member: Member, state: MemberState, at: number): void {
    member.state = state;
    member.since = at;
  }

  return {
    deadAfterMs,
    observeAdvert(advert) {
      const t = init.now();
      const self = advert.nodeId === init.selfId;
      const member = table.get(advert.nodeId);
      if (!member) {
        const fresh: Member = { nodeId: advert.nodeId, advert, state: 'alive', lastSeen: t, since: t, self };
        table.set(advert.nodeId, fresh);
        emit({ type: 'joined', member: fresh });
        return;
      }
      if (!isNewer(advert, member.advert)) return;
      const restarted = advert.startedAt !== member.advert.startedAt;
      member.advert = advert;
      member.lastSeen = t;
      if (member.state === 'dead' || member.state === 'left') {
        setState(member, 'alive', t);
        emit({ type: 'joined', member });
      } else if (member.state === 'suspect') {
        setState(member, 'alive', t);
        emit({ type: 'alive', member });
      } else if (restarted) {
        emit({ type: 'joined', member });
      } else {
        emit({ type: 'updated', member });
      }
    },
    observeLeave(nodeId, reason) {
      const member = table.get(nodeId);
      if (!member || member.state === 'left' || member.self) return;
      setState(member, 'left', init.now());
      emit({ type: 'left', member, reason });
    },
    observeDisconnect(nodeId) {
      const member = table.get(nodeId);
      if (member?.state !== 'alive' || member.self) return;
      setState(member, 'suspect', init.now());
      emit({ type: 'suspect', member, reason: 'connection lost' });
    },
    observeLife(nodeId) {
      const member = table.get(nodeId);
      if (!member || member.self || member.state === 'dead' || member.state === 'left') return;
      const t = init.now();
      member.lastSeen = t;
      if (member.state === 'suspect') {
        setState(member, 'alive', t);
        emit({ type: 'alive', member });
      }
    },
    tick() {
      const t = init.now();
      for (const member of table.values()) {
        if (member.self) continue;
        const silent = t - member.lastSeen;
        if ((member.state === 'dead' || member.state === 'left') && t - member.since >= forgetAfterMs) {
          table.delete(member.nodeId);
        } else if (member.state !== 'dead' && member.state !== 'left' && silent >= deadAfterMs) {
          setState(member, 'dead', t);
          emit({ type: 'dead', member });
        } else if (member.state === 'alive' && silent >= suspectAfterMs) {
          setState(member, 'suspect', t);
          emit({ type: 'suspect', member, reason: `no advert for ${silent} ms` });
        }
      }
    },
    nextDeathAt() {
      let first: number | undefined;
      for (const member of table.values()) {
        if (member.state !== 'suspect') continue;
        const at = member.lastSeen + deadAfterMs;
        if (first === undefined || at < first) first = at;
      }
      return first;
    },
    get: (nodeId) => table.get(nodeId),
    members: () => [...table.values()],
  };
}
