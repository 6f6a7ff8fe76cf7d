/** Prints one benchmark figure as a JSON line: {bench, metric, value, unit, ...context}. */
export function report(
  bench: string,
  metric: string,
  value: number,
  unit: string,
  extra: Record<string, unknown> = {},
) {
  console.log(JSON.stringify({ bench, metric, value: Number(value.toPrecision(6)), unit, ...extra }));
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}
