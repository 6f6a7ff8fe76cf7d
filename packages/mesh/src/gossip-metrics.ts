import type { GossipsubOpts } from '@libp2p/gossipsub';

type MetricsRegister = NonNullable<GossipsubOpts['metricsRegister']>;

const VALIDATOR_VERDICTS = new Set(['reject', 'ignore', 'blacklisted']);

/**
 * Gossipsub drops messages with a bad signature before any topic validator runs and reports them only
 * through its metrics. This register keeps every gossipsub metric a no-op except the invalid-message
 * counter, which it forwards, so such messages are counted like every other rejection.
 */
export function invalidGossipBridge(onInvalid: (error: string) => void): MetricsRegister {
  const noop = { inc() {}, set() {}, addCollect() {}, observe() {}, reset() {}, startTimer: () => () => {} };
  return {
    gauge(config: { name: string }) {
      if (config.name !== 'gossipsub_msg_received_invalid_total') return noop;
      return {
        ...noop,
        inc(labels?: { error?: string } | number) {
          // Topic-validator verdicts ('reject', 'ignore') are counted by our validator already.
          const error = typeof labels === 'object' ? String(labels.error ?? '') : '';
          if (error !== '' && !VALIDATOR_VERDICTS.has(error)) onInvalid(error);
        },
      };
    },
    histogram: () => noop,
    avgMinMax: () => noop,
  } as unknown as MetricsRegister;
}
