/**
 * The review lifecycle as a named-state machine. Every change of a review's status goes through
 * `assertTransition`, so a decided review is never decided again.
 *
 *   pending ──approve (the approval rule met)──► approved ──revoke──► revoked
 *      │ ──reject──► rejected
 *      └ ──time──► expired
 *
 * A break-glass review is never pending: it is created approved (by its requester) and can only
 * be revoked from there.
 */
import { HoopError } from '@hoop/shared';
import type { ReviewStatus } from '../store/schema.js';

const transitions: Readonly<Record<ReviewStatus, readonly ReviewStatus[]>> = {
  pending: ['approved', 'rejected', 'expired'],
  approved: ['revoked'],
  rejected: [],
  expired: [],
  revoked: [],
};

export function canTransition(from: ReviewStatus, to: ReviewStatus): boolean {
  return transitions[from].includes(to);
}

/** INVALID_REQUEST naming both states unless `from → to` is a transition of the machine. */
export function assertTransition(id: string, from: ReviewStatus, to: ReviewStatus): void {
  if (!canTransition(from, to)) {
    throw new HoopError('INVALID_REQUEST', `review ${id} is ${from}; it cannot become ${to}`, {
      hint: 'See its state with `hoop reviews show ID`.',
    });
  }
}
