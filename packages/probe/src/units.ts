/**
 * nvidia-smi reports values as text with units ("24564 MiB", "7 %", "41 C"), or as "N/A", "[N/A]",
 * "Not Supported", "[Insufficient Permissions]" where a field is unavailable. These return undefined for
 * anything that is not a number, never NaN.
 */
const UNIT_BYTES: Record<string, number> = { B: 1, KiB: 2 ** 10, MiB: 2 ** 20, GiB: 2 ** 30, TiB: 2 ** 40 };

function numberWithUnit(text: unknown): { value: number; unit: string } | undefined {
  if (typeof text !== 'string' && typeof text !== 'number') return undefined;
  const m = /^\s*(-?\d+(?:\.\d+)?)\s*([A-Za-z%]*)\s*$/.exec(String(text));
  if (!m) return undefined;
  const value = Number(m[1]);
  return Number.isFinite(value) ? { value, unit: m[2] ?? '' } : undefined;
}

export function parseBytes(text: unknown): number | undefined {
  const n = numberWithUnit(text);
  if (!n) return undefined;
  const factor = UNIT_BYTES[n.unit || 'MiB']; // nvidia-smi's memory fields are MiB
  return factor === undefined ? undefined : Math.round(n.value * factor);
}

/** "7 %" -> 0.07 */
export function parseFraction(text: unknown): number | undefined {
  const n = numberWithUnit(text);
  if (!n || (n.unit !== '%' && n.unit !== '')) return undefined;
  return Math.min(1, Math.max(0, n.value / 100));
}

/** "41 C" -> 41 */
export function parseCelsius(text: unknown): number | undefined {
  const n = numberWithUnit(text);
  return n && (n.unit === 'C' || n.unit === '') ? n.value : undefined;
}
