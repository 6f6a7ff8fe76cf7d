import type { LedgerEvent } from '@hermes-mesh/protocol';
import { Packr } from 'msgpackr';

/** Plain maps in and out, like the protocol codec: a stored event decodes to exactly what was received. */
export const eventPackr = new Packr({
  useRecords: false,
  mapsAsObjects: true,
  moreTypes: false,
  int64AsType: 'number',
});

export function encodeEvent(event: LedgerEvent): Buffer {
  return eventPackr.pack(event);
}

/**
 * One event as this replica holds it: `position` is the local ingest order, `size` its encoded bytes.
 * An entry restored from a snapshot holds only where its bytes lie (in a stored segment) and decodes the event
 * the first time something reads it: opening from a snapshot never decodes the events the snapshot covers.
 */
export class LogEntry {
  private decoded: LedgerEvent | undefined;
  private segment: Buffer | undefined;
  private readonly offset: number;

  constructor(
    readonly position: number,
    readonly size: number,
    readonly origin: string,
    readonly seq: number,
    event: LedgerEvent | undefined,
    segment?: Buffer,
    offset = 0,
  ) {
    this.decoded = event;
    this.segment = segment;
    this.offset = offset;
  }

  get event(): LedgerEvent {
    if (this.decoded !== undefined) return this.decoded;
    let event: LedgerEvent;
    try {
      event = eventPackr.unpack(this.segment!.subarray(this.offset, this.offset + this.size)) as LedgerEvent;
    } catch (err) {
      throw new Error(`stored event at position ${this.position} cannot be decoded: ${(err as Error).message}`);
    }
    if (event?.origin !== this.origin || event.seq !== this.seq) {
      throw new Error(`stored event at position ${this.position} is not ${this.origin}/${this.seq}`);
    }
    this.decoded = event;
    this.segment = undefined;
    return event;
  }

  /** True while the event is still only bytes (restored from a snapshot and not read since). */
  get pending(): boolean {
    return this.decoded === undefined;
  }
}
