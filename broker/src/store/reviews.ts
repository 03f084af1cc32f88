/**
 * Reviews in the store: insert, read, list, and compare-and-set updates (a decision applies only
 * to the state it was made on, so two approvers racing never lose an approval or decide twice).
 */
import { and, desc, eq, lte, sql } from 'drizzle-orm';
import { guard, type StoreContext } from './context.js';
import { type ReviewApproval, type ReviewRow, type ReviewStatus, reviews } from './schema.js';

export type NewReview = typeof reviews.$inferInsert;

export const REVIEW_LIST_DEFAULT_LIMIT = 100;
export const REVIEW_LIST_MAX_LIMIT = 1000;

export async function insertReview(ctx: StoreContext, review: NewReview): Promise<ReviewRow> {
  return guard('store review', async () => {
    const [row] = await ctx.db.insert(reviews).values(review).returning();
    return row as ReviewRow;
  });
}

export async function getReview(ctx: StoreContext, id: string): Promise<ReviewRow | undefined> {
  return guard('get review', async () => {
    const [row] = await ctx.db.select().from(reviews).where(eq(reviews.id, id)).limit(1);
    return row;
  });
}

export interface ListReviewsOptions {
  readonly status?: ReviewStatus;
  readonly requesterId?: string;
  readonly limit?: number;
}

export async function listReviews(
  ctx: StoreContext,
  options: ListReviewsOptions = {},
): Promise<ReviewRow[]> {
  const limit = Math.min(
    Math.max(1, Math.trunc(options.limit ?? REVIEW_LIST_DEFAULT_LIMIT)),
    REVIEW_LIST_MAX_LIMIT,
  );
  return guard('list reviews', async () => {
    const conditions = [
      options.status === undefined ? undefined : eq(reviews.status, options.status),
      options.requesterId === undefined ? undefined : eq(reviews.requesterId, options.requesterId),
    ].filter((c) => c !== undefined);
    return ctx.db
      .select()
      .from(reviews)
      .where(conditions.length === 0 ? undefined : and(...conditions))
      .orderBy(desc(reviews.createdAt))
      .limit(limit);
  });
}

export interface ReviewPatch {
  readonly status?: ReviewStatus;
  readonly approvals?: ReviewApproval[];
  readonly decidedBy?: string | null;
  readonly decisionReason?: string | null;
  readonly decidedAt?: Date | null;
  readonly grantId?: string | null;
}

/**
 * Applies `patch` only when the review is still as `expected` says (status, and approvals when
 * given). Returns the updated row, or undefined when someone else changed it first.
 */
export async function updateReviewIf(
  ctx: StoreContext,
  id: string,
  expected: { status: ReviewStatus; approvals?: readonly ReviewApproval[] },
  patch: ReviewPatch,
): Promise<ReviewRow | undefined> {
  return guard('update review', async () => {
    const [row] = await ctx.db
      .update(reviews)
      .set(patch)
      .where(
        and(
          eq(reviews.id, id),
          eq(reviews.status, expected.status),
          expected.approvals === undefined
            ? undefined
            : sql`${reviews.approvals} = ${JSON.stringify(expected.approvals)}::jsonb`,
        ),
      )
      .returning();
    return row;
  });
}

/** Pending reviews whose time ran out (for the expiry sweep). */
export async function duePendingReviews(ctx: StoreContext, now: Date): Promise<ReviewRow[]> {
  return guard('list due reviews', async () =>
    ctx.db
      .select()
      .from(reviews)
      .where(and(eq(reviews.status, 'pending'), lte(reviews.expiresAt, now)))
      .limit(REVIEW_LIST_MAX_LIMIT),
  );
}
