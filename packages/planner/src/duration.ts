/** The longest timeout an assignment may carry (protocol's Assignment.timeoutMs maximum). */
export const MAX_TIMEOUT_MS = 7 * 24 * 3600 * 1000;

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;
const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/;

export type DurationResult = { ok: true; ms: number } | { ok: false; message: string };

/** Reads a plan timeout: a number of milliseconds, or a number with a unit ('250ms', '30s', '5m', '2h'). */
export function parseDuration(value: string | number): DurationResult {
  const ms = typeof value === 'number' ? value : durationTextToMs(value.trim());
  if (ms === undefined) {
    return { ok: false, message: `'${value}' is not a duration: use milliseconds or a number with ms, s, m or h` };
  }
  if (!Number.isInteger(ms) || ms < 1)
    return { ok: false, message: `${value} must be a whole number of ms, at least 1` };
  if (ms > MAX_TIMEOUT_MS) return { ok: false, message: `${value} is longer than the maximum of 7 days` };
  return { ok: true, ms };
}

function durationTextToMs(text: string): number | undefined {
  if (/^\d+$/.test(text)) return Number(text);
  const match = DURATION.exec(text);
  if (!match) return undefined;
  return Math.round(Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS]);
}
