/**
 * Uses of approved statement reviews: an approval runs its statement exactly once, so using a
 * review is an insert keyed by the review id — the first use wins, any later one finds it taken.
 */
import { eq } from 'drizzle-orm';
import { guard, type StoreContext } from './context.js';
import { reviewUses } from './schema.js';

export type ReviewUseRow = typeof reviewUses.$inferSelect;

/** Records that `reviewId` ran in `sessionId`; false when it had already been used. */
export async function recordReviewUse(
  ctx: StoreContext,
  use: { reviewId: string; sessionId: string; usedAt: Date },
): Promise<boolean> {
  return guard('record review use', async () => {
    const rows = await ctx.db.insert(reviewUses).values(use).onConflictDoNothing().returning();
    return rows.length === 1;
  });
}

/** The use of a review, if it has been used. */
export async function getReviewUse(
  ctx: StoreContext,
  reviewId: string,
): Promise<ReviewUseRow | undefined> {
  return guard('get review use', async () => {
    const [row] = await ctx.db
      .select()
      .from(reviewUses)
      .where(eq(reviewUses.reviewId, reviewId))
      .limit(1);
    return row;
  });
}
