import type { Advert } from '@hermes-mesh/protocol';
import { formatAgo, formatBytes, formatTable } from './format.js';

export interface PeerView {
  nodeId: string;
  name: string;
  state: 'alive' | 'suspect' | 'dead' | 'left';
  self: boolean;
  lastSeenMsAgo: number;
  advert: Advert;
}

const STATE_ORDER = { alive: 0, suspect: 1, dead: 2, left: 3 } as const;

/** The `hermes-coord nodes` table: one line per node, live ones first. */
export function formatNodes(peers: PeerView[]): string {
  const sorted = [...peers].sort((a, b) => STATE_ORDER[a.state] - STATE_ORDER[b.state] || a.name.localeCompare(b.name));
  const rows = sorted.map(({ advert: a, state, lastSeenMsAgo, nodeId, self }) => {
    const vramTotal = a.gpus.reduce((s, g) => s + g.vramTotal, 0);
    const vramFree = a.gpus.reduce((s, g) => s + g.vramFree, 0);
    const loaded = a.models.filter((m) => m.loaded).length;
    return [
      self ? `${a.name} *` : a.name,
      `${nodeId.slice(0, 8)}…${nodeId.slice(-4)}`,
      state,
      a.tier,
      `${a.cpu.cores}c ${Math.round(a.cpu.load * 100)}%`,
      `${formatBytes(a.mem.free)}/${formatBytes(a.mem.total)}`,
      a.gpus.length === 0 ? '-' : `${a.gpus.length}x ${formatBytes(vramFree)}/${formatBytes(vramTotal)}`,
      a.models.length === 0 ? '-' : `${a.models.length} (${loaded} loaded)`,
      `${a.slots.busy}/${a.slots.total}`,
      a.location,
      formatAgo(lastSeenMsAgo),
    ];
  });
  return formatTable(
    ['NAME', 'NODE', 'STATE', 'TIER', 'CPU', 'MEM FREE', 'GPU VRAM FREE', 'MODELS', 'SLOTS', 'WHERE', 'SEEN'],
    rows,
  );
}
