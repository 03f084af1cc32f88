/**
 * Statement reviews from the agent's side: an engine holding a statement asks through
 * `request`, which sends `review-request` to the broker on stream 0 and waits for
 * `review-pending` (the review id, shown to the client) and `review-decision`. A timeout, an
 * aborted session or a lost tunnel is a refusal: a held statement never runs without approval.
 * The broker may answer at once instead: a `detached` pending review (the client asked not to
 * wait: refused as PENDING_APPROVAL), or a decision with no pending review before it (the
 * stream runs an approved review, used up for this statement).
 */
import {
  type Clock,
  type ErrorCode,
  MAX_REVIEW_STATEMENT_BYTES,
  type ReviewDecisionMessage,
  type ReviewPendingMessage,
  type ReviewRequestMessage,
  type TimerHandle,
} from '@hoop/shared';
import type { StatementDecision } from './engines/engine.js';

/** Longest an engine waits for a decision (the broker expires pending reviews after 1 h). */
export const DEFAULT_STATEMENT_REVIEW_TIMEOUT_MS = 65 * 60_000;
/** Statements waiting for a decision on one agent, at most. */
export const DEFAULT_MAX_HELD_STATEMENTS = 1000;

interface Waiter {
  readonly onPending: (review: string) => void;
  readonly resolve: (decision: StatementDecision) => void;
  review?: string;
}

export class StatementReviews {
  private nextRef = 1;
  private readonly waiters = new Map<number, Waiter>();

  constructor(
    private readonly options: {
      readonly clock: Clock;
      /** Sends to the broker on stream 0; false when there is no tunnel. */
      readonly send: (message: ReviewRequestMessage) => boolean;
      readonly timeoutMs?: number;
      readonly maxHeld?: number;
    },
  ) {}

  request(
    session: string,
    statement: string,
    onPending: (review: string) => void,
    signal: AbortSignal,
  ): Promise<StatementDecision> {
    const refuse = (message: string): Promise<StatementDecision> =>
      Promise.resolve({ approved: false, message: `hoop: ${message}`, code: 'INVALID_REQUEST' });
    if (Buffer.byteLength(statement) > MAX_REVIEW_STATEMENT_BYTES) {
      return refuse(`statement too long to review (over ${MAX_REVIEW_STATEMENT_BYTES} bytes)`);
    }
    if (this.waiters.size >= (this.options.maxHeld ?? DEFAULT_MAX_HELD_STATEMENTS)) {
      return refuse('too many statements are waiting for approval on this agent');
    }
    const ref = this.nextRef++;
    return new Promise<StatementDecision>((resolve) => {
      let timer: TimerHandle | undefined;
      const done = (decision: StatementDecision): void => {
        if (!this.waiters.delete(ref)) return;
        if (timer !== undefined) this.options.clock.clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        resolve(decision);
      };
      const onAbort = (): void =>
        done({
          approved: false,
          message: 'hoop: the session ended while waiting for approval',
          code: 'TUNNEL_CLOSED',
        });
      this.waiters.set(ref, { onPending, resolve: done });
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      timer = this.options.clock.setTimeout(() => {
        const review = this.waiters.get(ref)?.review;
        done({
          approved: false,
          ...(review === undefined ? {} : { review }),
          message: `hoop: no decision in time on review ${review ?? '(none)'}; the statement did not run`,
          code: 'REVIEW_NOT_APPROVED',
        });
      }, this.options.timeoutMs ?? DEFAULT_STATEMENT_REVIEW_TIMEOUT_MS);
      if (!this.options.send({ t: 'review-request', session, ref, statement })) {
        done({
          approved: false,
          message: 'hoop: the broker is not reachable to ask for approval',
          code: 'BROKER_UNREACHABLE',
        });
      }
    });
  }

  onPending(message: ReviewPendingMessage): void {
    const waiter = this.waiters.get(message.ref);
    if (waiter === undefined) return;
    if (message.review === undefined) {
      const code: ErrorCode = message.error?.code ?? 'INTERNAL';
      waiter.resolve({
        approved: false,
        ...(waiter.review === undefined ? {} : { review: waiter.review }),
        message: `hoop: the statement did not run: ${message.error?.message ?? 'unknown error'}`,
        code,
      });
      return;
    }
    waiter.review = message.review;
    if (message.detached === true) {
      waiter.resolve({
        approved: false,
        review: message.review,
        message: `hoop: the statement needs approval: review ${message.review} is pending (approve with: hoop reviews approve ${message.review})`,
        code: 'PENDING_APPROVAL',
      });
      return;
    }
    waiter.onPending(message.review);
  }

  onDecision(message: ReviewDecisionMessage): void {
    const waiter = this.waiters.get(message.ref);
    if (waiter === undefined) return;
    if (message.status === 'approved') {
      waiter.resolve({ approved: true, review: message.review });
      return;
    }
    waiter.resolve({
      approved: false,
      review: message.review,
      message: `hoop: statement not approved: review ${message.review} was ${message.status}${message.by === undefined ? '' : ` by ${message.by}`}${message.reason === undefined ? '' : `: ${message.reason}`}`,
      code: 'REVIEW_NOT_APPROVED',
    });
  }

  /** The tunnel is gone: every held statement is refused (the broker cannot answer them). */
  failAll(): void {
    for (const waiter of [...this.waiters.values()]) {
      waiter.resolve({
        approved: false,
        message: 'hoop: lost the broker while waiting for approval',
        code: 'TUNNEL_CLOSED',
      });
    }
  }
}
