// Human-sized numbers: the dashboard's own functions, so the page and the CLI print them alike.
export { formatAgo, formatBytes } from '@hermes-mesh/dashboard/format';

/** Left-aligned columns separated by two spaces, header first. */
export function formatTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}
