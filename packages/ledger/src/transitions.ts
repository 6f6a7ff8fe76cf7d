import type { ActionState } from '@hermes-mesh/protocol';

/**
 * The one ActionState transition table. A transition not listed here is illegal: the event is recorded as
 * rejected and the action keeps its state. ASSIGNED from a non-final state is a (re)assignment with a new epoch.
 */
export const TRANSITIONS: Readonly<Record<ActionState, readonly ActionState[]>> = {
  PENDING: ['ASSIGNED', 'PREVIEW_PENDING', 'CANCELLED'],
  PREVIEW_PENDING: ['PREVIEW_APPROVED', 'CANCELLED'],
  PREVIEW_APPROVED: ['ASSIGNED', 'CANCELLED'],
  ASSIGNED: ['IN_PROGRESS', 'ERROR', 'PENDING', 'ASSIGNED', 'CANCELLED'],
  IN_PROGRESS: ['STATUS_VERIFICATION_REQUESTED', 'ERROR', 'PENDING', 'ASSIGNED', 'CANCELLED'],
  STATUS_VERIFICATION_REQUESTED: ['COMPLETED', 'ERROR', 'ASSIGNED', 'CANCELLED'],
  COMPLETED: ['RECIPE_REQUESTED', 'TERMINATED'],
  RECIPE_REQUESTED: ['RECIPE_RECEIVED', 'TERMINATED'],
  RECIPE_RECEIVED: ['TERMINATED'],
  ERROR: ['FALLBACK_REQUESTED', 'ASSIGNED', 'PENDING', 'TERMINATED', 'CANCELLED'],
  FALLBACK_REQUESTED: ['FALLBACK_RECEIVED', 'TERMINATED', 'CANCELLED'],
  FALLBACK_RECEIVED: ['ASSIGNED', 'PENDING', 'TERMINATED', 'CANCELLED'],
  TERMINATED: [],
  CANCELLED: [],
};

export type Role = 'coordinator' | 'worker';

/**
 * Who may move an action into each state. The worker is the node assigned in the current epoch: it reports
 * progress; placement, verification and every final decision belong to the goal's coordinator.
 */
export const WRITERS: Readonly<Record<ActionState, readonly Role[]>> = {
  PENDING: ['coordinator'],
  PREVIEW_PENDING: ['coordinator'],
  PREVIEW_APPROVED: ['coordinator'],
  ASSIGNED: ['coordinator'],
  IN_PROGRESS: ['worker'],
  STATUS_VERIFICATION_REQUESTED: ['worker'],
  COMPLETED: ['coordinator'],
  RECIPE_REQUESTED: ['coordinator'],
  RECIPE_RECEIVED: ['coordinator'],
  ERROR: ['worker', 'coordinator'],
  FALLBACK_REQUESTED: ['coordinator'],
  FALLBACK_RECEIVED: ['coordinator'],
  TERMINATED: ['coordinator'],
  CANCELLED: ['coordinator'],
};

/** States an action never leaves. */
export const FINAL_STATES: ReadonlySet<ActionState> = new Set(['TERMINATED', 'CANCELLED']);

export function isLegalTransition(from: ActionState, to: ActionState): boolean {
  return TRANSITIONS[from].includes(to);
}

export function mayWrite(to: ActionState, roles: ReadonlySet<Role>): boolean {
  return WRITERS[to].some((role) => roles.has(role));
}
