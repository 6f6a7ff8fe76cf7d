import type { LedgerEvent } from '@hermes-mesh/protocol';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LedgerCore } from './core.js';
import { expandEvent } from './events.js';
import { type Action, applyActionEvent, compareEvents, copyOwn, type Entity } from './fold.js';
import { simulateHistory, WORKERS } from './testing/simulate.js';
import { mayWrite, type Role, TRANSITIONS } from './transitions.js';

const NO_BYTES = new Uint8Array(0);

function fold(events: readonly LedgerEvent[]): LedgerCore {
  const core = new LedgerCore();
  for (const event of events) core.accept(structuredClone(event), NO_BYTES);
  return core;
}

/** A permutation with some events repeated: what gossip plus anti-entropy deliver. */
const shuffledWithDuplicates = (events: LedgerEvent[]) =>
  fc
    .tuple(
      fc.shuffledSubarray(events, { minLength: events.length, maxLength: events.length }),
      fc.array(fc.nat({ max: Math.max(0, events.length - 1) }), { maxLength: 20 }),
    )
    .map(([order, dupes]) => [...order, ...dupes.map((i) => events[i]!)]);

const histories = fc
  .record({
    seed: fc.nat(),
    goals: fc.integer({ min: 1, max: 4 }),
    actionsPerGoal: fc.integer({ min: 1, max: 4 }),
    steps: fc.integer({ min: 0, max: 80 }),
    noise: fc.constantFrom(0, 0.2, 0.5),
    batched: fc.boolean(),
  })
  .map(({ seed, ...options }) => simulateHistory(seed, options));

describe('fold', () => {
  it('gives the same state for the same events in any order, with duplicates', () => {
    fc.assert(
      fc.property(
        histories.chain((events) => fc.tuple(fc.constant(events), shuffledWithDuplicates(events))),
        ([events, delivered]) => {
          const inOrder = fold(events);
          const scrambled = fold(delivered);
          expect(scrambled.counts().held).toBe(0);
          expect(scrambled.stateHash()).toBe(inOrder.stateHash());
        },
      ),
      { numRuns: 150 },
    );
  });

  it('never applies an illegal transition: replaying the accepted events obeys the table', () => {
    fc.assert(
      fc.property(histories, (events) => {
        const core = fold(events);
        // An item of an action.states event is rejected on its own (its action id named), or with its event.
        const rejected = new Set(core.rejections().map((r) => `${r.origin}/${r.seq}/${r.actionId ?? ''}`));
        const byAction = new Map<string, LedgerEvent[]>();
        for (const e of events.flatMap(expandEvent)) {
          if (e.type !== 'action.state') continue;
          if (rejected.has(`${e.origin}/${e.seq}/${e.actionId}`) || rejected.has(`${e.origin}/${e.seq}/`)) continue;
          byAction.set(e.actionId!, [...(byAction.get(e.actionId!) ?? []), e]);
        }
        for (const [actionId, accepted] of byAction) {
          const created = events
            .flatMap(expandEvent)
            .find((e) => e.type === 'action.created' && e.actionId === actionId);
          let current = (created!.data as { preview?: boolean }).preview ? 'PREVIEW_PENDING' : 'PENDING';
          for (const event of accepted.sort(compareEvents)) {
            expect(TRANSITIONS[current as keyof typeof TRANSITIONS]).toContain(event.state);
            current = event.state!;
          }
          expect(core.action(actionId)!.state).toBe(current);
        }
      }),
      { numRuns: 150 },
    );
  });

  it('lets no stale-epoch event change an action: added late, they leave every action as it was', () => {
    let checked = 0;
    fc.assert(
      fc.property(
        fc.nat(),
        fc.array(fc.tuple(fc.nat(), fc.nat(), fc.nat(), fc.boolean()), { minLength: 1, maxLength: 30 }),
        (seed, injections) => {
          const base = simulateHistory(seed, { goals: 2, actionsPerGoal: 2, steps: 120 });
          const before = fold(base);
          const reassigned = before.actionsMatching().filter((a) => a.epoch >= 2);
          if (reassigned.length === 0) return;
          const stale = staleEvents(base, reassigned, injections);
          const after = fold([...base, ...stale]);
          for (const action of before.actionsMatching())
            expect(project(after.action(action.id)!)).toEqual(project(action));
          checked++;
        },
      ),
      { numRuns: 150 },
    );
    expect(checked).toBeGreaterThan(30);
  });

  it('rejects, without a change, any event whose epoch is older than the action', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 10 }),
        fc.constantFrom(...(Object.keys(TRANSITIONS) as Array<keyof typeof TRANSITIONS>)),
        fc.constantFrom('action.state', 'action.output'),
        fc.boolean(),
        (epoch, state, type, fromCoordinator) => {
          const view: Action = {
            id: 'a',
            goalId: 'g',
            flowId: 'f',
            kind: 'builtin',
            description: '',
            dependsOn: [],
            state: 'IN_PROGRESS',
            epoch,
            node: 'worker-1',
            attempts: epoch,
            createdAt: 1,
            updatedAt: 2,
          };
          const entity: Entity<Action> = { key: 'a', entries: [], view: structuredClone(view), rejected: new Map() };
          const event: LedgerEvent = {
            origin: fromCoordinator ? 'coord' : 'worker-1',
            seq: 1,
            lamport: 100,
            ts: 99,
            type,
            goalId: 'g',
            actionId: 'a',
            epoch: epoch - 1,
            state,
            data: type === 'action.output' ? { ref: 'x' } : { node: 'worker-2' },
          };
          const reason = applyActionEvent(entity, event, { coordinatorOf: () => 'coord' });
          expect(reason).toMatch(/stale epoch/);
          expect(entity.view).toEqual(view);
        },
      ),
    );
  });
});

describe('copyOwn', () => {
  it('copies exactly what an object spread copies, in the same order', () => {
    const symbol = Symbol('s');
    const hidden = Symbol('hidden');
    const inherited = Object.create({ fromProto: 1 }) as Record<string, unknown>;
    inherited.own = 2;
    const withSymbols: Record<string | symbol, unknown> = { a: 1, [symbol]: 'sym' };
    Object.defineProperty(withSymbols, hidden, { value: 'no', enumerable: false });
    Object.defineProperty(withSymbols, 'quiet', { value: 'no', enumerable: false });
    const samples: object[] = [
      {},
      { ref: 'r', summary: 's' },
      { b: 1, 2: 'two', a: undefined, 1: 'one', z: { deep: [1] } },
      JSON.parse('{"__proto__": {"polluted": true}, "x": 1}'),
      inherited,
      withSymbols,
      Object.assign(Object.create(null), { n: 1 }),
    ];
    for (const sample of samples) {
      const copy = copyOwn(sample);
      const spread = { ...sample } as Record<string | symbol, unknown>;
      expect(Reflect.ownKeys(copy)).toEqual(Reflect.ownKeys(spread));
      for (const key of Reflect.ownKeys(spread)) expect(copy[key]).toBe(spread[key]);
      expect(Object.getPrototypeOf(copy)).toBe(Object.prototype);
    }
    fc.assert(
      fc.property(fc.object(), (value) => {
        const copy = copyOwn(value);
        expect(Reflect.ownKeys(copy)).toEqual(Reflect.ownKeys({ ...value }));
        expect(copy).toStrictEqual({ ...value });
      }),
    );
  });
});

describe('writers', () => {
  it('lets exactly the roles WRITERS names move an action into each state', () => {
    const origins: Array<[string, Role[]]> = [
      ['coord', ['coordinator']],
      ['worker-1', ['worker']],
      ['stranger', []],
    ];
    let checked = 0;
    for (const [from, targets] of Object.entries(TRANSITIONS) as Array<[keyof typeof TRANSITIONS, string[]]>) {
      for (const to of targets as Array<keyof typeof TRANSITIONS>) {
        if (to === 'ASSIGNED') continue;
        for (const [origin, roles] of [...origins, ['coord', ['coordinator', 'worker']] as [string, Role[]]]) {
          // The coordinator assigned to itself holds both roles.
          const node = roles.length === 2 ? 'coord' : 'worker-1';
          const entity: Entity<Action> = {
            key: 'a',
            entries: [],
            rejected: new Map(),
            view: {
              id: 'a',
              goalId: 'g',
              flowId: 'f',
              kind: 'builtin',
              description: '',
              dependsOn: [],
              state: from,
              epoch: 2,
              node,
              attempts: 2,
              createdAt: 1,
              updatedAt: 1,
            },
          };
          const event: LedgerEvent = {
            origin,
            seq: 1,
            lamport: 10,
            ts: 5,
            type: 'action.state',
            goalId: 'g',
            actionId: 'a',
            epoch: 2,
            state: to,
            data: {},
          };
          const reason = applyActionEvent(entity, event, { coordinatorOf: () => 'coord' });
          expect(reason === undefined, `${origin} ${from} -> ${to}: ${reason}`).toBe(mayWrite(to, new Set(roles)));
          checked++;
        }
      }
    }
    expect(checked).toBeGreaterThan(100);
  });
});

/** One action `a` of goal `g`, running on worker-1, as the fold holds it: the fields a test cares about given. */
function actionEntity(view: Pick<Action, 'kind' | 'state' | 'epoch' | 'attempts'> & Partial<Action>): Entity<Action> {
  return {
    key: 'a',
    entries: [],
    rejected: new Map(),
    view: {
      id: 'a',
      goalId: 'g',
      flowId: 'f',
      description: 'x',
      dependsOn: [],
      node: 'worker-1',
      createdAt: 1,
      updatedAt: 1,
      ...view,
    },
  };
}

describe('fallback replacement', () => {
  const failed = () =>
    actionEntity({
      kind: 'exec',
      spec: { kind: 'exec', params: { command: 'false' } },
      state: 'FALLBACK_REQUESTED',
      epoch: 3,
      attempts: 3,
    });
  const event = (state: 'FALLBACK_RECEIVED' | 'TERMINATED', origin = 'coord'): LedgerEvent => ({
    origin,
    seq: 9,
    lamport: 50,
    ts: 7,
    type: 'action.state',
    goalId: 'g',
    actionId: 'a',
    epoch: 3,
    state,
    data: { reason: 'verifier: use the builtin', kind: 'builtin', spec: { kind: 'builtin', params: { name: 'noop' } } },
  });
  const context = { coordinatorOf: () => 'coord' };

  it('FALLBACK_RECEIVED from the coordinator replaces the kind and spec', () => {
    const entity = failed();
    expect(applyActionEvent(entity, event('FALLBACK_RECEIVED'), context)).toBeUndefined();
    expect(entity.view).toMatchObject({
      state: 'FALLBACK_RECEIVED',
      kind: 'builtin',
      spec: { params: { name: 'noop' } },
    });
  });

  it('no other transition, and no worker, may replace the action', () => {
    for (const [state, origin] of [
      ['TERMINATED', 'coord'],
      ['FALLBACK_RECEIVED', 'worker-1'],
    ] as const) {
      const entity = failed();
      const before = structuredClone(entity.view);
      expect(applyActionEvent(entity, event(state, origin), context)).toBeDefined();
      expect(entity.view).toEqual(before);
    }
  });
});

describe('a claim of success with its output', () => {
  const running = () => actionEntity({ kind: 'builtin', state: 'IN_PROGRESS', epoch: 2, attempts: 2 });
  const claim = (state: 'STATUS_VERIFICATION_REQUESTED' | 'ERROR', epoch = 2, origin = 'worker-1'): LedgerEvent => ({
    origin,
    seq: 4,
    lamport: 20,
    ts: 9,
    type: 'action.state',
    goalId: 'g',
    actionId: 'a',
    epoch,
    state,
    data: { output: { ref: 'inline', summary: 'hashed 3 files', bytes: 12, value: { ok: 1 } } },
  });
  const context = { coordinatorOf: () => 'coord' };

  it('STATUS_VERIFICATION_REQUESTED sets the output for its epoch and node, as an action.output event would', () => {
    const entity = running();
    expect(applyActionEvent(entity, claim('STATUS_VERIFICATION_REQUESTED'), context)).toBeUndefined();
    expect(entity.view).toMatchObject({
      state: 'STATUS_VERIFICATION_REQUESTED',
      output: {
        ref: 'inline',
        summary: 'hashed 3 files',
        bytes: 12,
        value: { ok: 1 },
        node: 'worker-1',
        epoch: 2,
        at: 9,
      },
    });
  });

  it('no other state, no stale epoch and no other node may carry one', () => {
    for (const event of [
      claim('ERROR'),
      claim('STATUS_VERIFICATION_REQUESTED', 1),
      claim('STATUS_VERIFICATION_REQUESTED', 2, 'worker-9'),
    ]) {
      const entity = running();
      const before = structuredClone(entity.view);
      expect(applyActionEvent(entity, event, context)).toBeDefined();
      expect(entity.view).toEqual(before);
    }
  });
});

/** Events from workers naming an epoch below the action's final one, at random places in Lamport order. */
function staleEvents(base: LedgerEvent[], actions: Action[], injections: Array<[number, number, number, boolean]>) {
  const seqs = new Map<string, number>();
  for (const e of base) seqs.set(e.origin, Math.max(seqs.get(e.origin) ?? 0, e.seq));
  const maxLamport = base.length;
  return injections.map(([which, epochPick, lamportPick, output]) => {
    const action = actions[which % actions.length]!;
    const origin = WORKERS[which % WORKERS.length]!;
    const seq = (seqs.get(origin) ?? 0) + 1;
    seqs.set(origin, seq);
    const epoch = 1 + (epochPick % (action.epoch - 1));
    const states = ['IN_PROGRESS', 'STATUS_VERIFICATION_REQUESTED', 'ERROR'] as const;
    const common = { origin, seq, lamport: 1 + (lamportPick % maxLamport), ts: 5, goalId: action.goalId };
    const event: LedgerEvent = output
      ? { ...common, type: 'action.output', actionId: action.id, epoch, data: { ref: `stale/${seq}`, summary: 'x' } }
      : {
          ...common,
          type: 'action.state',
          actionId: action.id,
          epoch,
          state: states[lamportPick % states.length]!,
          data: { error: 'stale', reason: 'stale' },
        };
    return event;
  });
}

function project(action: Action) {
  const { state, epoch, node, output, error, reason, attempts, assignedAt } = action;
  return { state, epoch, node, output, error, reason, attempts, assignedAt };
}
