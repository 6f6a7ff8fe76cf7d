import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/** The daemon's Prometheus metrics, one registry per daemon so tests can run several in one process. */
export function createDaemonMetrics() {
  const registry = new Registry();
  /** Read at scrape time (membership, connections): nothing is counted on a timer while nobody looks. */
  const live = { members: (): Record<string, number> => ({}), connectedPeers: (): number => 0 };
  // prom-client's event-loop monitor is a timer of its own (every 10 ms by default, 0.6% of a core on an idle
  // daemon; every 100 ms still 0.13%, each wake-up of an idle process costing ~130 us on these VMs). It is parked
  // (its first sample would be 24 days away) and its figures dropped; the daemon's ticker measures lag instead
  // (eventLoopLag below), on the one wake-up per heartbeat it has anyway.
  collectDefaultMetrics({ register: registry, prefix: 'hermesd_', eventLoopMonitoringPrecision: 2 ** 31 - 1 });
  for (const metric of registry.getMetricsAsArray()) {
    if (metric.name.includes('eventloop_lag')) registry.removeSingleMetric(metric.name);
  }
  return {
    registry,
    rejected: new Counter({
      name: 'hermes_messages_rejected_total',
      help: 'Messages from peers rejected by validation, by reason and kind',
      labelNames: ['reason', 'kind'] as const,
      registers: [registry],
    }),
    received: new Counter({
      name: 'hermes_messages_received_total',
      help: 'Valid gossip messages received, by kind',
      labelNames: ['kind'] as const,
      registers: [registry],
    }),
    published: new Counter({
      name: 'hermes_messages_published_total',
      help: 'Gossip messages published, by kind',
      labelNames: ['kind'] as const,
      registers: [registry],
    }),
    live,
    members: new Gauge({
      name: 'hermes_members',
      help: 'Nodes in the membership table, by state',
      labelNames: ['state'] as const,
      registers: [registry],
      collect() {
        for (const [state, n] of Object.entries(live.members())) this.set({ state }, n);
      },
    }),
    connectedPeers: new Gauge({
      name: 'hermes_connected_peers',
      help: 'Open libp2p peer connections',
      registers: [registry],
      collect() {
        this.set(live.connectedPeers());
      },
    }),
    eventLoopLag: new Histogram({
      name: 'hermesd_event_loop_lag_seconds',
      help: 'How late the heartbeat timer fired: event-loop lag, sampled once per heartbeat',
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
    probeSeconds: new Histogram({
      name: 'hermes_probe_duration_seconds',
      help: 'Time of a full hardware and model probe',
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
  };
}
export type DaemonMetrics = ReturnType<typeof createDaemonMetrics>;
