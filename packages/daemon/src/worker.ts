import {
  type AppendResult,
  type EventInput,
  type Ledger,
  type LedgerEntry,
  type Replicator,
  visitActionEvents,
} from '@hermes-mesh/ledger';
import type { MeshNode } from '@hermes-mesh/mesh';
import { type Ack, type ActionOutput, type Assignment, ownString, PROTOCOLS } from '@hermes-mesh/protocol';
import type { Logger } from 'pino';

export type RunResult =
  | { ok: true; output: ActionOutput }
  | { ok: false; error: string; retryable: boolean; code?: string };

/** What runs one action (the executor); a seam so the worker is tested without real runners. */
export interface ActionRunner {
  run(
    assignment: Assignment,
    options: { signal: AbortSignal; onProgress?: (p: { kind: string; message?: string }) => void },
  ): Promise<RunResult>;
}

export interface WorkerInit {
  mesh: MeshNode;
  ledger: Ledger;
  /** Gets this node's events to the coordinators that assign it work as soon as they are durable. */
  replicator: Pick<Replicator, 'pushPromptly'>;
  runner: ActionRunner;
  slots: number;
  logger: Logger;
  /** Outputs larger than this stay on the node (referenced, not inlined in the ledger). */
  inlineOutputBytes?: number;
}

export interface Worker {
  busy(): number;
  /** Busy slots by the coordinator that assigned each running action. */
  busyByCoordinator(): Record<string, number>;
  running(): Array<{ actionId: string; epoch: number; startedAt: number }>;
  stop(): Promise<void>;
}

interface Running {
  assignment: Assignment;
  /** The coordinator that assigned it. */
  from: string;
  abort: AbortController;
  startedAt: number;
  done: Promise<void>;
}

/**
 * Takes assignments from coordinators over /hermes/assign, runs them in the node's slots, and writes every
 * ActionState change to the ledger. Cancellation and re-assignment elsewhere arrive through the ledger:
 * when the action's epoch moves on or it is cancelled, the run is aborted.
 */
export async function createWorker(init: WorkerInit): Promise<Worker> {
  const { ledger, logger } = init;
  const inlineBytes = init.inlineOutputBytes ?? 256 * 1024;
  const running = new Map<string, Running>();

  const stopWatching = ledger.subscribe(ledger.position(), (entries: LedgerEntry[]) => {
    if (running.size === 0) return;
    for (const { event: stored } of entries) {
      visitActionEvents(stored, (event) => {
        if (event.type !== 'action.state') return;
        const run = running.get(event.actionId);
        if (!run) return;
        const epoch = event.epoch ?? 0;
        if (event.state === 'CANCELLED') run.abort.abort(new Error('cancelled'));
        else if (event.state === 'ASSIGNED' && epoch > run.assignment.epoch) {
          run.abort.abort(new Error(`epoch ${run.assignment.epoch} lost to epoch ${epoch}`));
        }
      });
    }
  });

  function decide(a: Assignment, from: string): Ack {
    const current = running.get(a.actionId);
    if (current && current.assignment.epoch === a.epoch)
      return { actionId: a.actionId, epoch: a.epoch, accepted: true };
    const known = ledger.action(a.actionId);
    if (known && (known.epoch > a.epoch || known.state === 'CANCELLED' || known.state === 'TERMINATED')) {
      return {
        actionId: a.actionId,
        epoch: a.epoch,
        accepted: false,
        reason: `stale: action is ${known.state} at epoch ${known.epoch}`,
      };
    }
    if (running.size >= init.slots) {
      return { actionId: a.actionId, epoch: a.epoch, accepted: false, reason: `no free slot (${init.slots} busy)` };
    }
    current?.abort.abort(new Error(`superseded by epoch ${a.epoch}`));
    start(a, from);
    return { actionId: a.actionId, epoch: a.epoch, accepted: true };
  }

  /**
   * The transitions written in one turn of the event loop go to the ledger together: appendMany packs them into
   * one action.states event (the IN_PROGRESS of a whole assignment batch, the claims of the results that came
   * in). In the order they were written; each caller still gets its own result.
   */
  let tick: Array<{ input: EventInput; done: (result: AppendResult) => void; failed: (err: unknown) => void }> = [];
  function appendInTick(input: EventInput): Promise<AppendResult> {
    return new Promise((done, failed) => {
      if (tick.push({ input, done, failed }) === 1) setImmediate(flushTick);
    });
  }
  function flushTick() {
    const batch = tick;
    tick = [];
    ledger.appendMany(batch.map((t) => t.input)).then(
      (results) => {
        for (const [i, r] of results.entries()) batch[i]!.done(r);
      },
      (err) => {
        for (const t of batch) t.failed(err);
      },
    );
  }

  async function write(a: Assignment, fields: { state?: 'IN_PROGRESS' | 'ERROR'; error?: string; reason?: string }) {
    const data: { error?: string; reason?: string } = {};
    if (fields.error !== undefined) data.error = fields.error.slice(0, 16_000);
    if (fields.reason !== undefined) data.reason = fields.reason.slice(0, 4_000);
    const result = await appendInTick({
      type: 'action.state',
      goalId: a.goalId,
      actionId: a.actionId,
      epoch: a.epoch,
      state: fields.state!,
      data,
    });
    if (!result.ok) logger.warn({ action: a.actionId, error: result.error }, 'could not record action state');
  }

  /** The claim of success and its output in one event (STATUS_VERIFICATION_REQUESTED carries it). */
  async function claimSuccess(a: Assignment, output: ActionOutput) {
    const inline = output.bytes <= inlineBytes;
    const result = await appendInTick({
      type: 'action.state',
      goalId: a.goalId,
      actionId: a.actionId,
      epoch: a.epoch,
      state: 'STATUS_VERIFICATION_REQUESTED',
      data: {
        output: {
          ref: inline ? 'inline' : `node:${init.mesh.peerId}/${a.actionId}/${a.epoch}`,
          summary: output.summary.slice(0, 65_536),
          bytes: output.bytes,
          ...(inline ? { value: output.value } : {}),
        },
      },
    });
    if (!result.ok) throw new Error(`could not record output: ${result.error}`);
  }

  function start(a: Assignment, from: string) {
    const abort = new AbortController();
    const entry: Running = { assignment: a, from, abort, startedAt: Date.now(), done: Promise.resolve() };
    running.set(a.actionId, entry);
    entry.done = (async () => {
      try {
        // Not awaited: the run starts at once, and a fast result's claim joins IN_PROGRESS in the same ledger
        // write (appendInTick keeps the order they were written in).
        void write(a, { state: 'IN_PROGRESS' });
        const result = await init.runner.run(a, {
          signal: abort.signal,
          onProgress: (p) => logger.debug({ action: a.actionId, ...p }, 'action progress'),
        });
        if (abort.signal.aborted) {
          // The epoch moved on or the goal was cancelled: whoever owns the action now decides what happens.
          logger.info({ action: a.actionId, epoch: a.epoch, reason: String(abort.signal.reason) }, 'action aborted');
          return;
        }
        if (result.ok) {
          await claimSuccess(a, result.output);
        } else {
          await write(a, { state: 'ERROR', error: result.error, reason: result.retryable ? 'retryable' : 'permanent' });
        }
      } catch (err) {
        logger.error({ action: a.actionId, err: String(err) }, 'action failed in the worker');
        await write(a, { state: 'ERROR', error: String(err), reason: 'retryable' }).catch(() => {});
      } finally {
        if (running.get(a.actionId) === entry) running.delete(a.actionId);
      }
    })();
  }

  await init.mesh.handle(PROTOCOLS.assign, async (request, peer) => {
    if (request.kind !== 'assign') return undefined;
    // Its results go to the coordinator in one hop, as soon as they are durable.
    init.replicator.pushPromptly(peer);
    const { assignments, events } = request.body;
    if (events && events.length > 0) {
      // Ingest folds (and advances the Lamport clock) at once and only then waits for the disk: the decision
      // below already sees the assignment, and this node's next events queue behind it in the same log.
      void ledger.ingest(events).then(
        (report) => {
          if (report.invalid.length > 0) {
            logger.warn({ peer, invalid: report.invalid.slice(0, 3) }, 'assignment carried invalid events');
          }
        },
        (err) => logger.error({ peer, err: String(err) }, 'could not store an assignment'),
      );
    }
    const acks = assignments.map((a) => {
      // Its ids go into every event the run writes, kept by the ledger: not as slices of this message.
      a.goalId = ownString(a.goalId);
      a.actionId = ownString(a.actionId);
      return decide(a, peer);
    });
    return { kind: 'ack', body: { acks } };
  });

  return {
    busy: () => running.size,
    busyByCoordinator() {
      const by: Record<string, number> = {};
      for (const r of running.values()) by[r.from] = (by[r.from] ?? 0) + 1;
      return by;
    },
    running: () =>
      [...running.values()].map((r) => ({
        actionId: r.assignment.actionId,
        epoch: r.assignment.epoch,
        startedAt: r.startedAt,
      })),
    async stop() {
      stopWatching();
      for (const r of running.values()) r.abort.abort(new Error('node stopping'));
      await Promise.allSettled([...running.values()].map((r) => r.done));
    },
  };
}
