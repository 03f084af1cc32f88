/** StatementReviews: decisions, timeouts (fake clock), aborts and a lost tunnel all resolve. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FakeClock, type ReviewRequestMessage } from '@hoop/shared';
import { StatementReviews } from './reviews.js';

function setup(connected = true) {
  const clock = new FakeClock(0);
  const sent: ReviewRequestMessage[] = [];
  const reviews = new StatementReviews({
    clock,
    send: (m) => {
      sent.push(m);
      return connected;
    },
    timeoutMs: 1000,
  });
  return { clock, sent, reviews };
}

describe('StatementReviews', () => {
  it('approves after pending, with the review id shown once', async () => {
    const { sent, reviews } = setup();
    const shown: string[] = [];
    const decision = reviews.request(
      's1',
      'drop table t',
      (r) => shown.push(r),
      new AbortController().signal,
    );
    const ref = sent[0]?.ref as number;
    reviews.onPending({ t: 'review-pending', ref, review: 'r1' });
    reviews.onDecision({ t: 'review-decision', ref, review: 'r1', status: 'approved' });
    reviews.onDecision({ t: 'review-decision', ref, review: 'r1', status: 'rejected' });
    assert.deepEqual(await decision, { approved: true, review: 'r1' });
    assert.deepEqual(shown, ['r1']);
  });

  it('refuses on rejection, timeout, abort, lost tunnel and no tunnel', async () => {
    const { clock, sent, reviews } = setup();
    const signal = new AbortController().signal;
    const rejected = reviews.request('s1', 'x', () => {}, signal);
    reviews.onDecision({
      t: 'review-decision',
      ref: sent[0]?.ref as number,
      review: 'r1',
      status: 'rejected',
      by: 'bea',
      reason: 'no',
    });
    assert.match(((await rejected) as { message: string }).message, /rejected by bea: no/);

    const timedOut = reviews.request('s1', 'x', () => {}, signal);
    clock.advance(1000);
    assert.match(((await timedOut) as { message: string }).message, /no decision in time/);

    const abort = new AbortController();
    const aborted = reviews.request('s1', 'x', () => {}, abort.signal);
    abort.abort();
    assert.equal((await aborted).approved, false);

    const lost = reviews.request('s1', 'x', () => {}, signal);
    reviews.failAll();
    assert.match(((await lost) as { message: string }).message, /lost the broker/);

    const offline = setup(false);
    const none = await offline.reviews.request('s1', 'x', () => {}, signal);
    assert.equal(none.approved, false);
  });

  it('a detached pending review is refused at once as PENDING_APPROVAL, with no notice', async () => {
    const { sent, reviews } = setup();
    const shown: string[] = [];
    const decision = reviews.request('s1', 'x', (r) => shown.push(r), new AbortController().signal);
    reviews.onPending({
      t: 'review-pending',
      ref: sent[0]?.ref as number,
      review: 'r9',
      detached: true,
    });
    const refused = await decision;
    assert.equal(refused.approved, false);
    assert.deepEqual(shown, []);
    if (!refused.approved) {
      assert.equal(refused.code, 'PENDING_APPROVAL');
      assert.equal(refused.review, 'r9');
      assert.match(refused.message, /review r9 is pending/);
    }
  });

  it('runs on a decision with no pending review before it (an approved --review stream)', async () => {
    const { sent, reviews } = setup();
    const shown: string[] = [];
    const decision = reviews.request('s1', 'x', (r) => shown.push(r), new AbortController().signal);
    reviews.onDecision({
      t: 'review-decision',
      ref: sent[0]?.ref as number,
      review: 'r2',
      status: 'approved',
    });
    assert.deepEqual(await decision, { approved: true, review: 'r2' });
    assert.deepEqual(shown, []);
  });

  it("refusals carry the broker's error code, and the review once it exists", async () => {
    const { sent, reviews } = setup();
    const signal = new AbortController().signal;
    const mismatch = reviews.request('s1', 'x', () => {}, signal);
    reviews.onPending({
      t: 'review-pending',
      ref: sent[0]?.ref as number,
      error: { code: 'REVIEW_MISMATCH', message: 'review r3 was approved for another statement' },
    });
    const m = await mismatch;
    assert.equal(!m.approved && m.code, 'REVIEW_MISMATCH');

    const used = reviews.request('s1', 'x', () => {}, signal);
    const ref = sent[1]?.ref as number;
    reviews.onPending({ t: 'review-pending', ref, review: 'r4' });
    reviews.onPending({
      t: 'review-pending',
      ref,
      error: { code: 'REVIEW_CONSUMED', message: 'used' },
    });
    const u = await used;
    assert.deepEqual(u.approved ? undefined : [u.code, u.review], ['REVIEW_CONSUMED', 'r4']);

    const rejected = reviews.request('s1', 'x', () => {}, signal);
    reviews.onDecision({
      t: 'review-decision',
      ref: sent[2]?.ref as number,
      review: 'r5',
      status: 'expired',
    });
    const r = await rejected;
    assert.equal(!r.approved && r.code, 'REVIEW_NOT_APPROVED');
  });
});
