/** The statement-review control messages: round trips and strict validation. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Packr } from 'msgpackr';
import { HoopError } from '../errors.js';
import { decodeControl, encodeControl, MAX_REVIEW_STATEMENT_BYTES } from './messages.js';

const packr = new Packr({ useRecords: false, moreTypes: false });
const malformed = (value: unknown) =>
  assert.throws(
    () => decodeControl(packr.pack(value)),
    (e: unknown) => e instanceof HoopError && e.code === 'FRAME_MALFORMED',
  );

describe('review control messages', () => {
  it('round-trips review-request, review-pending and review-decision', () => {
    for (const message of [
      { t: 'review-request', session: 's1', ref: 1, statement: 'drop table t' },
      { t: 'review-pending', ref: 1, review: 'r1' },
      { t: 'review-pending', ref: 2, error: { code: 'NOT_FOUND', message: 'gone' } },
      { t: 'review-decision', ref: 1, review: 'r1', status: 'approved', by: 'abe' },
      { t: 'review-decision', ref: 1, review: 'r1', status: 'rejected', reason: 'no' },
    ] as const) {
      assert.deepEqual(decodeControl(encodeControl(message)), message);
    }
  });

  it('refuses malformed ones', () => {
    malformed({ t: 'review-request', session: 's1', ref: -1, statement: 'x' });
    malformed({ t: 'review-request', session: 's1', ref: 1 });
    malformed({
      t: 'review-request',
      session: 's1',
      ref: 1,
      statement: 'x'.repeat(MAX_REVIEW_STATEMENT_BYTES + 1),
    });
    malformed({ t: 'review-pending', ref: 1 });
    malformed({
      t: 'review-pending',
      ref: 1,
      review: 'r',
      error: { code: 'NOT_FOUND', message: 'x' },
    });
    malformed({ t: 'review-decision', ref: 1, review: 'r1', status: 'maybe' });
    malformed({ t: 'review-decision', ref: 1, status: 'approved' });
  });
});
