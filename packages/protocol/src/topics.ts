/** Gossipsub topics and direct protocols, namespaced by mesh id so two meshes never mix. */
export const topics = (meshId: string) => ({
  adverts: `hermes/${meshId}/adverts/1`,
  events: `hermes/${meshId}/events/1`,
});

export const PROTOCOLS = {
  assign: '/hermes/assign/1.0.0',
  /** One-way: a node's own new ledger events, straight to each peer it is connected to (see the replicator). */
  ledgerPush: '/hermes/ledger-push/1.0.0',
  ledgerSync: '/hermes/ledger-sync/1.0.0',
  /** One-way: a node's advert, every heartbeat, straight to each peer it is connected to (see hermesd). */
  advert: '/hermes/advert/1.0.0',
} as const;

/**
 * A peer is connected but does not serve a direct protocol: it is still starting (handlers are registered after
 * it joins the mesh) or runs a version without it. Worth a retry shortly; not a fault of the message.
 */
export class ProtocolNotServedError extends Error {
  constructor(
    readonly peer: string,
    readonly protocol: string,
  ) {
    super(`${peer} does not serve ${protocol} (yet: it may still be starting, or run another version)`);
    this.name = 'ProtocolNotServedError';
  }
}

export const MESH_ID_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;
