import { type LedgerEvent, ownString } from '@hermes-mesh/protocol';

type Fields = Record<string, unknown>;

/**
 * Copies of the ids in events received from peers, so that what the ledger keeps holds only its own characters.
 * msgpackr's native decoder reads a message's strings as one long string and hands out slices of it, and V8 keeps
 * a slice's whole parent alive: after 20k actions, 17.6 MB of a worker's 94 MB heap were such parents, kept by
 * the goal, action and node ids of stored events and fold entries (most of them in batch items).
 *
 * Only those fields, read directly, and the data of created actions (once per action): a walk over every string
 * of every event cost workers ~15 % more CPU. A value that repeats from one item to the next (the goal, the node,
 * a policy) is copied once per run of it.
 */
export class StringCopies {
  private readonly origins = new Repeats();
  private readonly goals = new Repeats();
  private readonly nodes = new Repeats();
  /** Per field name, for the strings of created actions' data: plans repeat their kinds and policies. */
  private readonly byKey = new Map<string, Repeats>();

  /** Replaces, in place, the ids of `event` (as decoded) by copies. */
  event(event: LedgerEvent): void {
    const e = event as unknown as Fields;
    copyField(e, 'origin', this.origins);
    copyField(e, 'goalId', this.goals);
    copyField(e, 'actionId');
    const data = event.data as unknown;
    if (typeof data !== 'object' || data === null) return;
    const items = (data as Fields).items;
    if (!Array.isArray(items)) {
      copyField(data as Fields, 'node', this.nodes);
      return;
    }
    const created = event.type === 'actions.created';
    for (const item of items as unknown[]) {
      if (typeof item !== 'object' || item === null) continue;
      copyField(item as Fields, 'goalId', this.goals);
      copyField(item as Fields, 'actionId');
      const itemData = (item as Fields).data;
      if (typeof itemData !== 'object' || itemData === null) continue;
      // A created action's data (description, spec) is kept whole in its view: every string in it, once per action.
      if (created) this.copyAll(itemData as Fields, 0);
      else copyField(itemData as Fields, 'node', this.nodes);
    }
  }

  private copyAll(fields: Fields, depth: number): void {
    if (depth > 8) return;
    for (const key in fields) {
      const value = fields[key];
      if (typeof value === 'string') copyField(fields, key, this.repeatsOf(key));
      else if (typeof value === 'object' && value !== null && !(value instanceof Uint8Array)) {
        this.copyAll(value as Fields, depth + 1);
      }
    }
  }

  /** The field's Repeats, made on first use; past 64 field names, none (each value copied on its own). */
  private repeatsOf(key: string): Repeats | undefined {
    let repeats = this.byKey.get(key);
    if (repeats === undefined && this.byKey.size < 64) {
      repeats = new Repeats();
      this.byKey.set(key, repeats);
    }
    return repeats;
  }
}

/** One field's last value and its copy: the same copy while the value repeats. */
class Repeats {
  private seen = '';
  private copy = '';

  of(s: string): string {
    if (s !== this.seen) {
      this.seen = s;
      this.copy = ownString(s);
    }
    return this.copy;
  }
}

function copyField(fields: Fields, key: string, repeats?: Repeats): void {
  const value = fields[key];
  if (typeof value === 'string') fields[key] = repeats ? repeats.of(value) : ownString(value);
}
