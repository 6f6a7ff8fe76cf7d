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

export const EXIT = { ok: 0, failure: 1, badInput: 2, notFound: 3, unreachable: 4 } as const;

export interface ApiClientInit {
  baseUrl: string;
  token?: string;
  timeoutMs?: number;
}

/** Minimal JSON client for the hermes HTTP APIs (hermesd's local API now, the coordinator's later). */
export function createApiClient(init: ApiClientInit) {
  let base: URL;
  try {
    base = new URL(init.baseUrl);
  } catch {
    throw new ApiError(`--api: "${init.baseUrl}" is not a URL (e.g. http://127.0.0.1:4880)`, EXIT.badInput);
  }
  return {
    async get<T>(path: string): Promise<T> {
      const url = new URL(path, base);
      let res: Response;
      try {
        res = await fetch(url, {
          headers: init.token ? { authorization: `Bearer ${init.token}` } : {},
          signal: AbortSignal.timeout(init.timeoutMs ?? 10_000),
        });
      } catch (err) {
        const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
        throw new ApiError(
          `cannot reach ${base.origin} (${cause}): is hermesd running? check --api or HERMES_API`,
          EXIT.unreachable,
        );
      }
      if (res.status === 401) throw new ApiError(`${url.pathname}: unauthorized: set HERMES_API_TOKEN`, EXIT.failure);
      if (res.status === 404) throw new ApiError(`${url.pathname}: not found`, EXIT.notFound);
      if (!res.ok) throw new ApiError(`${url.pathname}: HTTP ${res.status}: ${await res.text()}`, EXIT.failure);
      return (await res.json()) as T;
    },
  };
}
