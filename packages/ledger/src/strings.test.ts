import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { LedgerEvent } from '@hermes-mesh/protocol';
import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { StringCopies } from './strings.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const packr = new Packr({ useRecords: false, mapsAsObjects: true });

/** One decoded batch of `n` items with ids and text, about 150 bytes of strings each. */
function decodedBatch(n: number, tag: number) {
  const items = Array.from({ length: n }, (_, i) => ({
    goalId: 'g0613d317d75b29e1',
    actionId: `g0613d317d75b29e1.a${tag}-${i}`,
    state: 'STATUS_VERIFICATION_REQUESTED',
    data: {
      node: '12D3KooWRBy97UB99e3J6hiPesre1MZeuNQvfan4gBziswrRJsNK',
      description: `builtin action ${i} of ${tag}`,
    },
  }));
  return packr.unpack(packr.pack({ type: 'action.states', data: { items } })) as {
    type: string;
    data: { items: Array<{ actionId: string; data: { node: string; description: string } }> };
  };
}

function keptIds(copies?: StringCopies): string[] {
  const kept: string[] = [];
  for (let b = 0; b < 400; b++) {
    const event = decodedBatch(200, b);
    copies?.event(event as unknown as LedgerEvent);
    kept.push(event.data.items[100]!.actionId, event.data.items[100]!.data.node);
  }
  return kept;
}

/** Heap bytes still held after keeping one action id and one node id from each of 400 decoded batches. */
function heldByKeptIds(copying: boolean): number {
  gc();
  const before = process.memoryUsage().heapUsed;
  const kept = keptIds(copying ? new StringCopies() : undefined);
  gc();
  const held = process.memoryUsage().heapUsed - before;
  expect(kept).toHaveLength(800);
  return held;
}

describe('StringCopies', () => {
  it('keeps every value and the shape of the event', () => {
    const event = decodedBatch(3, 7);
    const before = JSON.stringify(event);
    new StringCopies().event(event as unknown as LedgerEvent);
    expect(JSON.stringify(event)).toBe(before);
  });

  it('what is kept of a decoded message no longer holds the whole message', () => {
    // Decoded as is, each kept id holds the piece of its message's strings it was sliced from (~9 KB);
    // copied, only its own characters.
    const raw = heldByKeptIds(false);
    const copied = heldByKeptIds(true);
    expect(raw).toBeGreaterThan(1_000_000);
    expect(copied).toBeLessThan(raw / 5);
  });

  it('copies ids of single events and of every batch item, whatever repeats', () => {
    const copies = new StringCopies();
    const node = (i: number) => `12D3KooWnode${i % 3}aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa`;
    const items = Array.from({ length: 9 }, (_, i) => ({
      goalId: `goal-${i % 2}-0000000000000`,
      actionId: `goal-${i % 2}-0000000000000.a${i}`,
      data: { node: node(i) },
    }));
    const batch = { origin: node(0), type: 'action.states', data: { items } } as unknown as LedgerEvent;
    const single = {
      origin: node(1),
      goalId: 'goal-9-0000000000000',
      data: { node: node(2) },
    } as unknown as LedgerEvent;
    const before = JSON.stringify([batch, single]);
    copies.event(batch);
    copies.event(single);
    expect(JSON.stringify([batch, single])).toBe(before);
  });
});
