/** Checks shared by the tests of the endpoints plain Postgres clients log in to with a token. */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import type pg from 'pg';

/**
 * Runs `select pg_sleep(30)` on `client` and cancels it the way psql's Ctrl-C does: a
 * CancelRequest with the session's key on a connection of its own to `port`. Asserts the query
 * fails with 57014 (query_canceled) well before 30 s and the session still answers.
 */
export async function assertCancelsOnOwnConnection(client: pg.Client, port: number): Promise<void> {
  const keyed = client as unknown as { processID: number; secretKey: number };
  const started = Date.now();
  const sleeping = client.query('select pg_sleep(30)');
  await new Promise((r) => setTimeout(r, 300));
  const cancel = Buffer.alloc(16);
  cancel.writeInt32BE(16, 0);
  cancel.writeInt32BE(80877102, 4);
  cancel.writeInt32BE(keyed.processID, 8);
  cancel.writeInt32BE(keyed.secretKey, 12);
  await new Promise<void>((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => s.end(cancel));
    s.on('close', () => resolve());
    s.on('error', reject);
  });
  await assert.rejects(sleeping, (e: { code?: string }) => e.code === '57014');
  assert.ok(Date.now() - started < 15_000);
  const { rows } = await client.query('select 1 as one');
  assert.deepEqual(rows, [{ one: 1 }]);
}

/**
 * A wrong token is refused with 28P01 (and its text is never echoed back), a connection that does
 * not exist with 3D000. `client(password, user)` makes an unconnected client of the endpoint.
 */
export async function assertRefusesBadLogins(
  client: (password: string, user?: string) => pg.Client,
  token: string,
): Promise<void> {
  await assert.rejects(
    client('hoop_pat_nope').connect(),
    (e: { code?: string; message?: string }) => {
      assert.equal(e.code, '28P01');
      assert.ok(!String(e.message).includes('hoop_pat_nope'));
      return true;
    },
  );
  await assert.rejects(
    client(token, 'no-such-connection').connect(),
    (e: { code?: string }) => e.code === '3D000',
  );
}
