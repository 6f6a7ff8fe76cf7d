import { readSse, type SseEvent } from './sse.js';

/** A failure talking to the API, with the exit code the CLI should use and what to do about it. */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** Exit codes of every hermes-coord command. */
export const EXIT = { ok: 0, failure: 1, badInput: 2, notFound: 3, unreachable: 4 } as const;

export interface ApiClientInit {
  baseUrl: string;
  token?: string;
  timeoutMs?: number;
}

export type ApiClient = ReturnType<typeof createApiClient>;

/** JSON client for the hermes HTTP APIs (hermesd's local API and the coordinator's). */
export function createApiClient(init: ApiClientInit) {
  let base: URL;
  try {
    base = new URL(init.baseUrl);
  } catch {
    throw new ApiError(`--api: "${init.baseUrl}" is not a URL (e.g. http://127.0.0.1:4880)`, EXIT.badInput);
  }
  const headers = (extra: Record<string, string> = {}) => ({
    ...(init.token ? { authorization: `Bearer ${init.token}` } : {}),
    ...extra,
  });

  async function call(path: string, request: RequestInit, signal?: AbortSignal): Promise<Response> {
    const url = new URL(path, base);
    let res: Response;
    try {
      res = await fetch(url, { ...request, signal: signal ?? AbortSignal.timeout(init.timeoutMs ?? 10_000) });
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
      throw new ApiError(
        `cannot reach ${base.origin} (${cause}): is it running? check --api or HERMES_API`,
        EXIT.unreachable,
      );
    }
    if (res.ok) return res;
    let message = `HTTP ${res.status}`;
    try {
      const body = (await res.json()) as { error?: string; details?: string[]; hint?: string };
      message = [body.error, ...(body.details ?? []), body.hint].filter(Boolean).join('\n  ');
    } catch {
      // not JSON: keep the status
    }
    if (res.status === 401) throw new ApiError(`${url.pathname}: unauthorized: set HERMES_API_TOKEN`, EXIT.failure);
    if (res.status === 404) throw new ApiError(message, EXIT.notFound);
    if (res.status === 400) throw new ApiError(message, EXIT.badInput);
    throw new ApiError(`${url.pathname}: ${message}`, EXIT.failure);
  }

  return {
    async get<T>(path: string): Promise<T> {
      return (await (await call(path, { headers: headers() })).json()) as T;
    },
    async post<T>(path: string, body: unknown): Promise<T> {
      const res = await call(path, {
        method: 'POST',
        headers: headers({ 'content-type': 'application/json' }),
        body: JSON.stringify(body ?? {}),
      });
      return (await res.json()) as T;
    },
    /** Follows an SSE stream, reconnecting with Last-Event-ID when the connection drops, until `signal` aborts. */
    async *events(path: string, signal: AbortSignal): AsyncGenerator<SseEvent> {
      let lastId: string | undefined;
      let failures = 0;
      while (!signal.aborted) {
        try {
          const res = await call(path, { headers: headers(lastId ? { 'last-event-id': lastId } : {}) }, signal);
          failures = 0;
          for await (const event of readSse(res.body!, signal)) {
            if (event.id) lastId = event.id;
            yield event;
          }
        } catch (err) {
          if (signal.aborted) return;
          if (++failures > 5) throw err;
          await new Promise((r) => setTimeout(r, 200 * failures));
        }
      }
    },
  };
}
