/**
 * The review gate: a statement (or an extended-protocol batch) of a `reviews.statements` kind
 * asks approvers before it reaches the target. The client is told the review id in a
 * NoticeResponse while it waits; a refusal becomes a Denial (42501) whose ErrorResponse detail
 * names the hoop error code and the review, so a program (`hoop exec`) can tell a pending review
 * from a rejected one:
 *
 *   DETAIL:  hoop error PENDING_APPROVAL, review 6f1c…
 */
import { type ErrorCode, isErrorCode } from '@hoop/shared';
import type { StatementReviewer } from '../engine.js';
import type { Denial } from './guardrails.js';
import { SqlState } from './messages.js';
import { noticeResponse } from './writer.js';

export type GateAnswer =
  | { readonly approved: true; readonly review: string }
  | { readonly approved: false; readonly denial: Denial };

/** The ErrorResponse detail of a refused held statement. */
export function reviewErrorDetail(code: ErrorCode, review: string | undefined): string {
  return `hoop error ${code}${review === undefined ? '' : `, review ${review}`}`;
}

/** Reads `reviewErrorDetail` back (undefined for any other detail). */
export function parseReviewErrorDetail(
  detail: string | undefined,
): { code: ErrorCode; review: string | undefined } | undefined {
  const found = /^hoop error ([A-Z_]+)(?:, review (\S+))?$/.exec(detail ?? '');
  if (found === null || !isErrorCode(found[1])) return undefined;
  return { code: found[1], review: found[2] };
}

/** The notice a client gets while its statement waits. */
export function waitingNotice(review: string): Buffer {
  return noticeResponse(
    `hoop: waiting for approval: review ${review} (approve with: hoop reviews approve ${review})`,
  );
}

/**
 * Asks about `text` (what approvers see: the SQL, with bound parameters for the extended
 * protocol). `toClient` sends the waiting notice. Never rejects: a failure to ask is a refusal.
 */
export async function askReview(
  reviewer: StatementReviewer | undefined,
  text: string,
  kind: string,
  toClient: (message: Buffer) => void,
  signal: AbortSignal,
): Promise<GateAnswer> {
  const rule = `review: ${kind}`;
  const refuse = (message: string, code: ErrorCode, review?: string): GateAnswer => ({
    approved: false,
    denial: {
      rule,
      message,
      sqlstate: SqlState.insufficientPrivilege,
      detail: reviewErrorDetail(code, review),
    },
  });
  if (reviewer === undefined) {
    return refuse(
      `hoop: statement denied by policy: ${kind} statements need approval and this agent cannot ask (rule ${rule})`,
      'POLICY_UNENFORCEABLE',
    );
  }
  try {
    const decision = await reviewer(text, (review) => toClient(waitingNotice(review)), signal);
    if (decision.approved) return decision;
    return refuse(decision.message, decision.code, decision.review);
  } catch (err) {
    return refuse(
      `hoop: statement review failed: ${err instanceof Error ? err.message : String(err)}`,
      'INTERNAL',
    );
  }
}
