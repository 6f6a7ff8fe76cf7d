import { sampleAdvert } from '@hermes-mesh/protocol';
import { describe, expect, it } from 'vitest';
import { createMembership, type MembershipEvent } from './membership.js';

function setup() {
  let t = 1_000;
  const events: Array<[MembershipEvent['type'], string]> = [];
  const m = createMembership({
    selfId: 'self',
    now: () => t,
    heartbeatMs: 1_000,
    deadAfterMs: 3_000,
    forgetAfterMs: 60_000,
    onEvent: (e) => events.push([e.type, e.member.nodeId]),
  });
  const advance = (ms: number) => {
    t += ms;
    m.tick();
  };
  return { m, events, advance };
}

const advert = (nodeId: string, seq: number, startedAt = 1) => sampleAdvert({ nodeId, seq, startedAt });

describe('membership', () => {
  it('joins on the first advert, updates on newer ones, ignores stale ones', () => {
    const { m, events } = setup();
    m.observeAdvert(advert('a', 1));
    m.observeAdvert(advert('a', 3));
    m.observeAdvert(advert('a', 2));
    expect(events).toEqual([
      ['joined', 'a'],
      ['updated', 'a'],
    ]);
    expect(m.get('a')?.advert.seq).toBe(3);
  });

  it('says when the first suspect is due to die, so a timer can declare it on time', () => {
    const { m, advance } = setup();
    m.observeAdvert(advert('a', 1)); // seen at 1000
    advance(500);
    m.observeAdvert(advert('b', 1)); // seen at 1500
    expect(m.nextDeathAt()).toBeUndefined(); // nobody suspect: heartbeats are enough
    m.observeDisconnect('b');
    expect(m.nextDeathAt()).toBe(4_500);
    advance(1_000); // a silent 1.5 s: suspect too, and due first
    expect(m.get('a')?.state).toBe('suspect');
    expect(m.nextDeathAt()).toBe(4_000);
    m.observeLife('a');
    expect(m.nextDeathAt()).toBe(4_500);
    advance(2_000); // t = 4500
    expect(m.get('b')?.state).toBe('dead');
    expect(m.nextDeathAt()).toBe(5_500); // a, quiet since 2500, is suspect again
  });

  it('goes suspect after 1.5 silent heartbeats and dead at the timeout, then forgets', () => {
    const { m, events, advance } = setup();
    m.observeAdvert(advert('a', 1));
    advance(1_400);
    expect(m.get('a')?.state).toBe('alive');
    advance(200);
    expect(m.get('a')?.state).toBe('suspect');
    advance(1_400);
    expect(m.get('a')?.state).toBe('dead');
    expect(events.map((e) => e[0])).toEqual(['joined', 'suspect', 'dead']);
    advance(60_000);
    expect(m.get('a')).toBeUndefined();
  });

  it('a suspect that speaks again is alive; a dead node that returns joins again', () => {
    const { m, events, advance } = setup();
    m.observeAdvert(advert('a', 1));
    m.observeDisconnect('a');
    m.observeAdvert(advert('a', 2));
    advance(3_000);
    m.observeAdvert(advert('a', 3));
    expect(events.map((e) => e[0])).toEqual(['joined', 'suspect', 'alive', 'dead', 'joined']);
    expect(m.get('a')?.state).toBe('alive');
  });

  it('other signed traffic keeps a node alive while its adverts run late, but never brings back a dead one', () => {
    const { m, events, advance } = setup();
    m.observeAdvert(advert('a', 1));
    advance(1_200);
    m.observeLife('a');
    advance(1_200);
    expect(m.get('a')?.state).toBe('alive');
    advance(400); // 1.6 s since the events: suspect
    m.observeLife('a');
    expect(m.get('a')?.state).toBe('alive');
    advance(3_000);
    expect(m.get('a')?.state).toBe('dead');
    m.observeLife('a');
    expect(m.get('a')?.state).toBe('dead');
    m.observeLife('stranger');
    expect(m.get('stranger')).toBeUndefined();
    expect(events).toEqual([
      ['joined', 'a'],
      ['suspect', 'a'],
      ['alive', 'a'],
      ['dead', 'a'],
    ]);
  });

  it('a restarted node (new incarnation) is accepted even with a lower seq', () => {
    const { m, events } = setup();
    m.observeAdvert(advert('a', 100, 1));
    m.observeAdvert(advert('a', 5, 2));
    expect(m.get('a')?.advert.seq).toBe(5);
    expect(events.map((e) => e[0])).toEqual(['joined', 'joined']);
  });

  it('drops a node that announces it leaves at once, and never marks itself dead', () => {
    const { m, advance } = setup();
    m.observeAdvert(advert('self', 1));
    m.observeAdvert(advert('a', 1));
    m.observeLeave('a', 'shutdown');
    expect(m.get('a')?.state).toBe('left');
    advance(10_000);
    expect(m.get('self')?.state).toBe('alive');
    expect(m.get('a')?.state).toBe('left');
  });

  it('refuses a suspect timeout that is not below the dead timeout', () => {
    expect(() => createMembership({ selfId: 's', now: () => 0, heartbeatMs: 2_000, deadAfterMs: 3_000 })).toThrow(
      /must be below/,
    );
  });
});
