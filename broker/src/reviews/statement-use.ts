/**
 * Using an approved statement review: a statement an agent held runs only with an approval, and
 * an approval runs its statement exactly once. Two ways lead here: the held session itself gets
 * the decision (the hub uses the review up as it tells the agent), or a later stream names the
 * review (`hoop exec --review ID`), and then the broker checks, before anything runs, that the
 * review is the caller's, for this connection, approved and unused, and when the agent holds the
 * statement, that it is the reviewed text. Each use is a `review-consumed` audit event.
 */
import { HoopError } from '@hoop/shared';
import type { AuditRecorder } from '../audit/record.js';
import { nowOf, type StoreContext } from '../store/context.js';
import { getReviewUse, recordReviewUse } from '../store/review-uses.js';
import { getReview } from '../store/reviews.js';
import type { ReviewRow } from '../store/schema.js';

export interface StatementUse {
  readonly review: string;
  readonly userId: string;
  readonly userName: string;
  readonly connection: string;
}

export class StatementReviewUses {
  constructor(
    private readonly options: { readonly ctx: StoreContext; readonly audit: AuditRecorder },
  ) {}

  /**
   * Throws unless `use.review` is an approved, unused statement review of this user and
   * connection: NOT_FOUND, REVIEW_MISMATCH, PENDING_APPROVAL, REVIEW_NOT_APPROVED or
   * REVIEW_CONSUMED, each saying what to do.
   */
  async check(use: StatementUse): Promise<ReviewRow> {
    const { ctx } = this.options;
    const row = await getReview(ctx, use.review);
    if (row === undefined || row.requesterId !== use.userId) {
      throw new HoopError('NOT_FOUND', `no statement review ${use.review} of yours`, {
        hint: 'Use the id `hoop exec` printed when it asked for the review (`hoop reviews list`).',
      });
    }
    if (row.kind !== 'statement') {
      throw new HoopError(
        'REVIEW_MISMATCH',
        `review ${row.id} is an access review, not a statement review`,
        {
          hint: `Use its grant with \`hoop connect ${row.connectionName}\` instead.`,
        },
      );
    }
    if (row.connectionName !== use.connection) {
      throw new HoopError(
        'REVIEW_MISMATCH',
        `review ${row.id} is for a statement on ${row.connectionName}, not ${use.connection}`,
      );
    }
    const expired = row.status === 'pending' && row.expiresAt.getTime() <= ctx.clock.now();
    if (row.status === 'pending' && !expired) {
      throw new HoopError('PENDING_APPROVAL', `review ${row.id} is still pending`, {
        hint: `An approver runs \`hoop reviews approve ${row.id}\`; or wait for it with \`hoop exec --wait\`.`,
      });
    }
    if (row.status !== 'approved') {
      const status = expired ? 'expired' : row.status;
      const by = row.decidedBy === null || row.decidedBy === 'hoop' ? '' : ` by ${row.decidedBy}`;
      const why = row.decisionReason === null ? '' : `: ${row.decisionReason}`;
      throw new HoopError('REVIEW_NOT_APPROVED', `review ${row.id} was ${status}${by}${why}`);
    }
    const used = await getReviewUse(ctx, row.id);
    if (used !== undefined) throw consumed(row.id, used.sessionId, used.usedAt);
    return row;
  }

  /**
   * Uses the review up for `statement` held in `session`: checks as `check` does, then that the
   * statement is the reviewed one, then records the use (only the first use of a review wins).
   */
  async consume(use: StatementUse & { statement: string; session: string }): Promise<void> {
    const row = await this.check(use);
    if ((row.statement ?? '').trim() !== use.statement.trim()) {
      throw new HoopError(
        'REVIEW_MISMATCH',
        `review ${row.id} was approved for another statement; this one did not run`,
        {
          hint: `Run exactly the reviewed SQL (\`hoop reviews show ${row.id}\`), or leave out --review to ask for a new review.`,
        },
      );
    }
    await this.record(row, use.session, use.userName);
  }

  /** Uses up a review just decided for the session holding its statement (no text check). */
  async consumeHeld(
    row: { id: string; connection: string; requester: string; statement: string | null },
    session: string,
  ): Promise<void> {
    await this.record(
      {
        id: row.id,
        connectionName: row.connection,
        requesterName: row.requester,
        statement: row.statement,
      },
      session,
      row.requester,
    );
  }

  private async record(
    row: Pick<ReviewRow, 'id' | 'connectionName' | 'requesterName' | 'statement'>,
    session: string,
    actor: string,
  ): Promise<void> {
    const { ctx, audit } = this.options;
    const usedAt = nowOf(ctx);
    if (!(await recordReviewUse(ctx, { reviewId: row.id, sessionId: session, usedAt }))) {
      const used = await getReviewUse(ctx, row.id);
      throw consumed(row.id, used?.sessionId ?? 'another session', used?.usedAt ?? usedAt);
    }
    await audit({
      type: 'review-consumed',
      actor,
      subject: row.id,
      session,
      detail: {
        kind: 'statement',
        connection: row.connectionName,
        requester: row.requesterName,
        statement: (row.statement ?? '').slice(0, 4096),
      },
    });
  }
}

function consumed(id: string, session: string, at: Date): HoopError {
  return new HoopError(
    'REVIEW_CONSUMED',
    `review ${id} already ran its statement (session ${session}, ${at.toISOString()})`,
  );
}
