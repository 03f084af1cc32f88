import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { errorText, openIdleSession, startFakePostgres, startupReply } from './fake-postgres.js';

describe('fake PostgreSQL', () => {
  it('answers the startup with AuthenticationOk … ReadyForQuery', () => {
    const reply = startupReply(7);
    assert.deepEqual([...reply.subarray(0, 9)], [0x52, 0, 0, 0, 8, 0, 0, 0, 0]);
    assert.deepEqual([...reply.subarray(reply.length - 6)], [0x5a, 0, 0, 0, 5, 0x49]);
  });

  it('holds idle sessions opened by the client side, and counts them', async () => {
    const server = await startFakePostgres();
    try {
      const sessions = await Promise.all(
        Array.from({ length: 5 }, () => openIdleSession('127.0.0.1', server.port, 'u', 'd', 5000)),
      );
      assert.equal(server.sessions(), 5);
      for (const s of sessions) s.close();
      for (let i = 0; i < 50 && server.sessions() > 0; i++)
        await new Promise((r) => setTimeout(r, 20));
      assert.equal(server.sessions(), 0);
    } finally {
      await server.close();
    }
  });

  it('reads the message of an ErrorResponse', () => {
    assert.equal(errorText(Buffer.from('SFATAL\0C28000\0Mno access\0\0')), 'no access');
  });
});
