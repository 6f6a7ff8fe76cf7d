// Talking to the coordinator's API from the page: JSON requests and the SSE event stream, both with the optional
// bearer token. EventSource cannot send an Authorization header, so the stream is read with fetch.

const TOKEN_KEY = 'hermes-mesh.token';

/** The token kept for this tab only (sessionStorage: gone when the tab closes). */
export function savedToken(): string {
  return sessionStorage.getItem(TOKEN_KEY) ?? '';
}

export function saveToken(token: string): void {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

function headers(extra: Record<string, string> = {}): Record<string, string> {
  const token = savedToken();
  return { ...extra, ...(token ? { authorization: `Bearer ${token}` } : {}) };
}

/** GET (or POST with `body`) a JSON route; a non-2xx answer throws ApiError with the API's own message. */
export async function api<T>(path: string, body?: unknown): Promise<T> {
  const res = await fetch(path, {
    method: body === undefined ? 'GET' : 'POST',
    headers: headers(body === undefined ? { accept: 'application/json' } : { 'content-type': 'application/json' }),
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    cache: 'no-store',
    signal: AbortSignal.timeout(15_000),
  });
  const json = (await res.json().catch(() => ({}))) as { error?: string };
  if (!res.ok) throw new ApiError(json.error ?? `HTTP ${res.status}`, res.status);
  return json as T;
}

/** One ledger event as `/v1/events` sends it: the envelope, its ledger position, and its type's data. */
export interface MeshEvent {
  position: number;
  type: string;
  origin: string;
  ts: number;
  goalId?: string;
  actionId?: string;
  state?: string;
  epoch?: number;
  data?: Record<string, unknown>;
}

export type StreamStatus =
  | { kind: 'connecting' }
  | { kind: 'live' }
  | { kind: 'reconnecting'; why: string; inMs: number }
  | { kind: 'unauthorized' };

export interface EventStream {
  /** Drops the connection (if any) and connects again at once, from the last position seen. */
  reconnect(): void;
  /** The last ledger position received. */
  position(): number;
}

/** Keep-alives come every 15 s; a stream silent for longer than this is taken as dead. */
const SILENCE_MS = 45_000;

/**
 * Follows `/v1/events` from ledger position `from`, for good: when the stream drops it reconnects with backoff and
 * resumes with Last-Event-ID (the last position seen), so no event is missed or repeated. A 401 waits for
 * `reconnect()` (after the user gives a token).
 */
export function followEvents(
  from: number,
  onEvents: (events: MeshEvent[]) => void,
  onStatus: (status: StreamStatus) => void,
): EventStream {
  let last = from;
  let current: AbortController | undefined;
  let wake: (() => void) | undefined;
  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });

  async function readOnce(): Promise<'unauthorized' | string> {
    const abort = new AbortController();
    current = abort;
    let watchdog = setTimeout(() => abort.abort(), SILENCE_MS);
    try {
      const res = await fetch('/v1/events', {
        headers: headers({ accept: 'text/event-stream', 'last-event-id': String(last) }),
        cache: 'no-store',
        signal: abort.signal,
      });
      if (res.status === 401) return 'unauthorized';
      if (!res.ok || !res.body) return `HTTP ${res.status}`;
      onStatus({ kind: 'live' });
      backoff = 500;
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return 'the stream ended';
        clearTimeout(watchdog);
        watchdog = setTimeout(() => abort.abort(), SILENCE_MS);
        buffer += value;
        const blocks = buffer.split('\n\n');
        buffer = blocks.pop() ?? '';
        const batch: MeshEvent[] = [];
        for (const block of blocks) {
          const data = block
            .split('\n')
            .filter((line) => line.startsWith('data:'))
            .map((line) => line.slice(5).replace(/^ /, ''))
            .join('\n');
          if (!data) continue;
          const event = JSON.parse(data) as MeshEvent;
          last = event.position;
          batch.push(event);
        }
        if (batch.length > 0) onEvents(batch);
      }
    } catch (err) {
      return abort.signal.aborted ? 'reconnecting' : (err as Error).message;
    } finally {
      clearTimeout(watchdog);
      abort.abort();
    }
  }

  let backoff = 500;
  (async () => {
    for (;;) {
      onStatus({ kind: 'connecting' });
      const outcome = await readOnce();
      if (outcome === 'unauthorized') {
        onStatus({ kind: 'unauthorized' });
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        continue;
      }
      onStatus({ kind: 'reconnecting', why: outcome, inMs: backoff });
      await pause(backoff);
      backoff = Math.min(backoff * 2, 3_000);
    }
  })();

  return {
    reconnect() {
      backoff = 500;
      current?.abort();
      wake?.();
    },
    position: () => last,
  };
}
