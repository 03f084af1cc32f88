/**
 * Driver errors leave the store as HoopErrors that say what failed, never with the query's
 * parameters: run against the real embedded store and drizzle, not hand-made error objects.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HoopError } from '@hoop/shared';
import { sql } from 'drizzle-orm';
import { guard } from './context.js';
import { openDatabase } from './database.js';

const SECRET = 'hoop_pat_do-not-show-me';

async function failure(fn: () => Promise<unknown>): Promise<HoopError> {
  try {
    await fn();
  } catch (err) {
    assert.ok(err instanceof HoopError, `a HoopError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected a failure');
}

describe('store errors', () => {
  it('names the SQLSTATE and the driver message, without the parameters', async () => {
    const database = await openDatabase();
    try {
      const err = await failure(() =>
        guard('read a token', () =>
          database.db.execute(sql`select (${SECRET})::int from no_such_table`),
        ),
      );
      assert.equal(err.code, 'INTERNAL');
      assert.match(err.message, /^Store: read a token failed: .*no_such_table.* \(42P01\)$/);
      assert.doesNotMatch(err.message, /do-not-show-me/);
    } finally {
      await database.close();
    }
  });

  it('says the embedded store is closed when it is, not "unknown error"', async () => {
    const database = await openDatabase();
    await database.close();
    const err = await failure(() =>
      guard('append audit events', () => database.db.execute(sql`select ${SECRET}::text`)),
    );
    assert.equal(err.message, 'Store: append audit events failed: the embedded store is closed');
    assert.doesNotMatch(err.message, /do-not-show-me|Failed query/);
  });
});
