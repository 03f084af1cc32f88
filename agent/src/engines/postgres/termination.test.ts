/**
 * A session ended from outside (grant expired or revoked, identity disabled) tells the client
 * why with a FATAL it prints, on both the policy proxy and the raw relay.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HoopError, type Policy } from '@hoop/shared';
import pg from 'pg';
import { PostgresEngine } from './engine.js';
import { pgTarget, startEngineServer } from './test-harness.js';

const paths: Array<[string, Policy]> = [
  ['policy proxy', { recording: { enabled: true } }],
  ['raw relay', { recording: { enabled: false } }],
];

describe('session termination', () => {
  for (const [name, policy] of paths) {
    it(`sends a FATAL with the reason through the ${name}`, async () => {
      const engine = new PostgresEngine();
      const server = await startEngineServer({
        engine,
        target: pgTarget({ host: '127.0.0.1', port: 5432, database: 'test' }),
        password: undefined,
        policy,
      });
      const client = new pg.Client({
        host: '127.0.0.1',
        port: server.port,
        user: 'x',
        database: 'x',
      });
      try {
        await client.connect();
        assert.deepEqual((await client.query('select 1 as one')).rows, [{ one: 1 }]);
        const failed = new Promise<{ code?: string; message?: string }>((resolve) =>
          client.once('error', resolve),
        );
        server.abortAll(new HoopError('GRANT_EXPIRED', 'the grant for test-pg expired'));
        const error = await failed;
        assert.equal(error.code, '57P01');
        assert.match(String(error.message), /grant for test-pg expired.*GRANT_EXPIRED/);
      } finally {
        await client.end().catch(() => {});
        await server.close();
        await engine.close();
      }
    });
  }
});
