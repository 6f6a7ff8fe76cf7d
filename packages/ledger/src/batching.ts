import { TypeCompiler } from '@sinclair/typebox/compiler';
import {
  BATCHED_AS,
  CREATED_DATA,
  type CreatedItem,
  type EventInput,
  MAX_BATCH_ITEMS,
  TRANSITION_DATA,
  type TransitionItem,
} from './events.js';

/**
 * How appendMany writes many action events as one: a run of transitions as one action.states event, a run of
 * created actions (a goal's plan) as one actions.created event. Every event costs every replica the same: an
 * envelope to encode, a stored entry, an index entry, a place in a gossip message, a decode and the garbage
 * left after. A placement pass, a worker's tick or a batch of verdicts moves hundreds of actions at once, a plan
 * creates as many, so one event for the lot cuts that cost by as much.
 *
 * Only runs of small, valid events of one type are packed: a bad one stays on its own (so it alone fails, as it
 * would unpacked), a large one too (so an event stays well under the gossip and sync caps), and an action appears
 * at most once per event (its next event starts the next one, keeping the order they were written in).
 */

/** A run shorter than this stays as separate events (one is cheaper as itself). */
const MIN_ITEMS = 2;
/** An event estimated larger than this is written on its own. */
const MAX_ITEM_BYTES = 16 * 1024;
/** Most estimated bytes of one packed event (gossip messages are capped at 1 MiB). */
const MAX_EVENT_BYTES = 128 * 1024;

const transitionData = TypeCompiler.Compile(TRANSITION_DATA);
const createdData = TypeCompiler.Compile(CREATED_DATA);

type Item = TransitionItem | CreatedItem;

export interface Packed {
  inputs: EventInput[];
  /** For each input given: the index of the input it went into, and its item there (-1: written as itself). */
  placed: Array<readonly [input: number, item: number]>;
}

export function packActionEvents(inputs: readonly EventInput[]): Packed {
  const out: EventInput[] = [];
  const placed: Array<readonly [number, number]> = new Array(inputs.length);
  let type: keyof typeof BATCHED_AS | undefined;
  let items: Item[] = [];
  let from: number[] = [];
  let ids = new Set<string>();
  let bytes = 0;
  const close = () => {
    if (type !== undefined && items.length >= MIN_ITEMS) {
      from.forEach((original, i) => {
        placed[original] = [out.length, i];
      });
      out.push({ type: BATCHED_AS[type], data: { items } } as EventInput);
    } else {
      for (const original of from) {
        placed[original] = [out.length, -1];
        out.push(inputs[original]!);
      }
    }
    type = undefined;
    items = [];
    from = [];
    ids = new Set();
    bytes = 0;
  };
  for (let i = 0; i < inputs.length; i++) {
    const input = inputs[i]!;
    const size = packableSize(input);
    if (size === undefined) {
      close();
      placed[i] = [out.length, -1];
      out.push(input);
      continue;
    }
    const actionId = input.actionId!;
    const full = items.length >= MAX_BATCH_ITEMS || bytes + size > MAX_EVENT_BYTES;
    if (input.type !== type || ids.has(actionId) || full) close();
    type = input.type as keyof typeof BATCHED_AS;
    ids.add(actionId);
    bytes += size;
    from.push(i);
    items.push(itemOf(input));
  }
  close();
  return { inputs: out, placed };
}

// Whole literals, not `{ ...ids, epoch, ... }`: V8 gave objects spread from a fresh literal and then extended
// a hidden class of their own, nearly one per item (a coordinator held ~72k of them after 20k actions, ~20 MB of
// maps and descriptors), where literals of one shape share one.
function itemOf(input: EventInput): Item {
  const goalId = input.goalId!;
  const actionId = input.actionId!;
  if (input.type === 'action.created') return { goalId, actionId, data: input.data as CreatedItem['data'] };
  return { goalId, actionId, epoch: input.epoch!, state: input.state!, data: input.data as TransitionItem['data'] };
}

/** The estimated encoded size of an event that can be packed; undefined when it must stay on its own. */
function packableSize(input: EventInput): number | undefined {
  const { goalId, actionId } = input;
  if (typeof goalId !== 'string' || typeof actionId !== 'string') return undefined;
  if (input.type === 'action.created') {
    if (!createdData.Check(input.data)) return undefined;
    // A plan's params can be anything (inline data to hash, say): measured, not guessed.
    const size = 64 + goalId.length + actionId.length + JSON.stringify(input.data).length;
    return size <= MAX_ITEM_BYTES ? size : undefined;
  }
  if (input.type !== 'action.state') return undefined;
  const { epoch, state } = input;
  if (typeof epoch !== 'number' || typeof state !== 'string' || !transitionData.Check(input.data)) return undefined;
  const data = input.data as TransitionItem['data'];
  // Fallback plans carry a whole spec; ASSIGNED without a node is refused: both stay on their own.
  if (data.spec !== undefined || data.kind !== undefined || (state === 'ASSIGNED' && !data.node)) return undefined;
  let size = 160 + goalId.length + actionId.length + (data.error?.length ?? 0) + (data.reason?.length ?? 0);
  const output = data.output;
  if (output) {
    if (output.value !== undefined && output.bytes === undefined) return undefined;
    size += output.ref.length + (output.summary?.length ?? 0) + (output.value === undefined ? 0 : output.bytes!);
  }
  return size <= MAX_ITEM_BYTES ? size : undefined;
}
