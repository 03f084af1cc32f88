/**
 * One Store conformance suite, run against every backend (store.pglite.test.ts,
 * store.postgres.test.ts). The backend hands over a freshly migrated, empty database; the tests
 * run in order on it and share its state, so each test uses its own names.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { FakeClock, HoopError } from '@hoop/shared';
import { eq } from 'drizzle-orm';
import type { Database } from './database.js';
import { connections } from './schema.js';
import { SecretDecryptionError } from './secrets.js';
import { BROKER_RESTARTED } from './sessions.js';
import { Store } from './store.js';
import { hashToken } from './tokens.js';

export interface StoreSuiteBackend {
  /** Opens a fresh, empty, migrated database for the whole suite. */
  open(): Promise<Database>;
}

const START = Date.UTC(2025, 0, 2, 3, 4, 5);

/** Asserts that `promise` rejects with a HoopError of `code` whose message matches `message`. */
export async function rejectsWith(
  promise: Promise<unknown>,
  code: string,
  message?: RegExp,
): Promise<HoopError> {
  let caught: unknown;
  try {
    await promise;
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof HoopError, `expected a HoopError ${code}, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  if (message !== undefined) assert.match(caught.message, message);
  return caught;
}

export function runStoreSuite(backendName: string, backend: StoreSuiteBackend): void {
  describe(`Store on ${backendName}`, () => {
    let database: Database;
    let store: Store;
    const clock = new FakeClock(START);
    const masterKey = randomBytes(32);

    before(async () => {
      database = await backend.open();
      store = new Store(database, masterKey, clock);
    });

    after(async () => {
      await database?.close();
    });

    it('bootstraps the admin once, with a generated token', async () => {
      const first = await store.bootstrap();
      assert.equal(first.created, true);
      assert.match(first.adminToken ?? '', /^hoop_pat_[A-Za-z0-9_-]{43}$/);
      const again = await store.bootstrap({ adminToken: 'ignored-because-users-exist' });
      assert.deepEqual(again, { created: false });

      const admin = await store.authenticateUserToken(first.adminToken!);
      assert.equal(admin?.name, 'admin');
      assert.equal(admin?.role, 'admin');
      assert.equal(await store.authenticateUserToken('ignored-because-users-exist'), undefined);
      const users = await store.listUsers();
      assert.deepEqual(
        users.map((u) => [u.name, u.role, u.disabled]),
        [['admin', 'admin', false]],
      );
    });

    it('authenticates user tokens until they are revoked, expired or the user is disabled', async () => {
      const alice = await store.createUser({ name: 'alice', role: 'user' });
      assert.equal(alice.createdAt, new Date(clock.now()).toISOString());
      const token = await store.createUserToken(alice.id, 'laptop');
      assert.match(token, /^hoop_pat_/);

      clock.advance(1000);
      const auth = await store.authenticateUserToken(token);
      assert.deepEqual(auth && { userId: auth.userId, name: auth.name, role: auth.role }, {
        userId: alice.id,
        name: 'alice',
        role: 'user',
      });
      const [info] = await store.listUserTokens(alice.id);
      assert.equal(info?.name, 'laptop');
      assert.equal(info?.lastUsedAt, new Date(clock.now()).toISOString());
      assert.equal(info?.id, auth?.tokenId);
      assert.ok(!JSON.stringify(info).includes(hashToken(token)), 'token info leaks the hash');
      // The last use is recorded to the minute: a use within it writes nothing, a later one does.
      const firstUse = info?.lastUsedAt;
      clock.advance(30_000);
      assert.ok(await store.authenticateUserToken(token));
      assert.equal((await store.listUserTokens(alice.id))[0]?.lastUsedAt, firstUse);
      clock.advance(30_000);
      assert.ok(await store.authenticateUserToken(token));
      assert.equal(
        (await store.listUserTokens(alice.id))[0]?.lastUsedAt,
        new Date(clock.now()).toISOString(),
      );

      assert.equal(await store.authenticateUserToken(`${token}x`), undefined);
      assert.equal(await store.authenticateUserToken(''), undefined);

      const revoked = await store.revokeUserToken(info!.id);
      assert.equal(revoked.revokedAt, new Date(clock.now()).toISOString());
      assert.equal(await store.authenticateUserToken(token), undefined);
      clock.advance(1000);
      const again = await store.revokeUserToken(info!.id);
      assert.equal(again.revokedAt, revoked.revokedAt, 'the first revocation time is kept');
      await rejectsWith(store.revokeUserToken('no-such-token'), 'NOT_FOUND');

      const expiring = await store.createUserToken(alice.id, 'ci', {
        expiresAt: clock.now() + 60_000,
      });
      assert.ok(await store.authenticateUserToken(expiring));
      clock.advance(60_000);
      assert.equal(await store.authenticateUserToken(expiring), undefined, 'expired token');

      const other = await store.createUserToken(alice.id, 'desktop');
      assert.ok(await store.authenticateUserToken(other));
      await store.setUserDisabled('alice', true);
      assert.equal(await store.authenticateUserToken(other), undefined, 'disabled user');
      await store.setUserDisabled('alice', false);
      assert.ok(await store.authenticateUserToken(other));

      // A lookup already on its way when the token is revoked does not outlive the revocation.
      const racing = store.authenticateUserToken(other);
      const revoking = store.revokeUserToken(
        (await store.listUserTokens(alice.id)).find((t) => t.name === 'desktop')!.id,
      );
      await Promise.all([racing, revoking]);
      assert.equal(await store.authenticateUserToken(other), undefined, 'revoked while looked up');

      await rejectsWith(store.createUserToken('no-such-user', 'x'), 'NOT_FOUND');
      await rejectsWith(
        store.createUser({ name: 'alice', role: 'user' }),
        'ALREADY_EXISTS',
        /alice/,
      );
      await rejectsWith(
        store.createUser({ name: 'bob', role: 'root' as 'user' }),
        'INVALID_REQUEST',
        /role/,
      );
      await rejectsWith(store.getUser('nobody'), 'NOT_FOUND');
    });

    it('creates, authenticates, lists and touches agents', async () => {
      const { agent, token } = await store.createAgent('edge-1');
      assert.match(token, /^hoop_at_[A-Za-z0-9_-]{43}$/);
      assert.deepEqual(Object.keys(agent).sort(), ['createdAt', 'id', 'lastSeenAt', 'name']);
      assert.equal(agent.lastSeenAt, null);

      assert.deepEqual(await store.authenticateAgent(token), agent);
      assert.equal(await store.authenticateAgent(token.slice(0, -1)), undefined);
      assert.equal(await store.authenticateAgent(''), undefined);

      clock.advance(5000);
      await store.touchAgent(agent.id);
      const seen = await store.getAgent('edge-1');
      assert.equal(seen.lastSeenAt, new Date(clock.now()).toISOString());

      await store.createAgent('edge-0');
      const names = (await store.listAgents()).map((a) => a.name);
      assert.deepEqual(names, ['edge-0', 'edge-1']);
      assert.ok(!JSON.stringify(await store.listAgents()).includes(hashToken(token)));

      await rejectsWith(store.createAgent('edge-1'), 'ALREADY_EXISTS', /edge-1/);
      await rejectsWith(store.getAgent('nope'), 'AGENT_NOT_FOUND', /nope/);
    });

    it('validates names, ports, types and credentials', async () => {
      const base = {
        name: 'valid-name',
        agent: 'edge-1',
        type: 'postgres',
        host: 'db.internal',
        port: 5432,
        user: 'app',
        database: 'app',
      };
      for (const name of ['', 'Upper', '-leading', 'has space', 'a'.repeat(64), 'dot.ted']) {
        await rejectsWith(store.createAgent(name), 'INVALID_REQUEST', /agent name/);
        await rejectsWith(
          store.createConnection({ ...base, name }),
          'INVALID_REQUEST',
          /connection name/,
        );
      }
      await store.createAgent('a'.repeat(63)).then(({ agent }) => store.deleteAgent(agent.name));
      for (const port of [0, 65536, 1.5, Number.NaN, '5432' as unknown as number]) {
        await rejectsWith(store.createConnection({ ...base, port }), 'INVALID_REQUEST', /port/);
      }
      await rejectsWith(
        store.createConnection({ ...base, type: 'oracle' }),
        'INVALID_REQUEST',
        /type "oracle".*postgres/,
      );
      await rejectsWith(
        store.createConnection({ ...base, tls: 'maybe' }),
        'INVALID_REQUEST',
        /tls/,
      );
      await rejectsWith(store.createConnection({ ...base, host: '' }), 'INVALID_REQUEST', /host/);
      await rejectsWith(
        store.createConnection({ ...base, host: 'a b' }),
        'INVALID_REQUEST',
        /host/,
      );
      await rejectsWith(store.createConnection({ ...base, user: '' }), 'INVALID_REQUEST', /user/);
      await rejectsWith(
        store.createConnection({ ...base, database: 'x\n' }),
        'INVALID_REQUEST',
        /database/,
      );
      await rejectsWith(
        store.createConnection({ ...base, password: 's3cret', passwordRef: 'env:PGPASS' }),
        'INVALID_REQUEST',
        /not both/,
      );
      for (const passwordRef of ['PGPASS', 'file:/etc/pass', 'env:', 'env:1BAD', 'env:A-B']) {
        await rejectsWith(
          store.createConnection({ ...base, passwordRef }),
          'INVALID_REQUEST',
          /env:NAME/,
        );
      }
      const error = await rejectsWith(
        store.createConnection({ ...base, password: '' }),
        'INVALID_REQUEST',
        /password/,
      );
      assert.equal(error.httpStatus, 400);
      await rejectsWith(
        store.createConnection({ ...base, agent: 'ghost' }),
        'AGENT_NOT_FOUND',
        /ghost/,
      );
      assert.equal((await store.listConnections()).length, 0);
    });

    it('stores passwords encrypted and resolves them only for the agent', async () => {
      const password = `pw-${randomBytes(8).toString('hex')}`;
      const info = await store.createConnection({
        name: 'orders',
        agent: 'edge-1',
        type: 'postgres',
        host: '10.0.0.5',
        port: 5432,
        user: 'orders_app',
        database: 'orders',
        password,
      });
      assert.equal(info.credential, 'stored');
      assert.equal(info.tls, 'prefer');
      assert.equal(info.agent, 'edge-1');
      assert.ok(!JSON.stringify(info).includes(password));

      const [row] = await database.db
        .select({ secret: connections.secretCiphertext })
        .from(connections)
        .where(eq(connections.name, 'orders'));
      const stored = row?.secret ?? '';
      assert.ok(stored.startsWith('v1:'), 'ciphertext is versioned');
      assert.ok(!stored.includes(password), 'the column holds the plaintext');
      assert.ok(!stored.includes(Buffer.from(password).toString('base64')));

      const listed = await store.listConnections();
      assert.deepEqual(listed, [info]);
      assert.deepEqual(await store.getConnection('orders'), info);
      assert.ok(!JSON.stringify(listed).includes(stored), 'list leaks the ciphertext');

      const resolved = await store.resolveConnectionTarget('orders');
      assert.deepEqual(resolved.info, info);
      assert.deepEqual(resolved.target, {
        name: 'orders',
        type: 'postgres',
        host: '10.0.0.5',
        port: 5432,
        user: 'orders_app',
        database: 'orders',
        tls: 'prefer',
        credential: { kind: 'password', value: password },
      });

      // another master key cannot decrypt it
      const stranger = new Store(database, randomBytes(32), clock);
      await assert.rejects(store.resolveConnectionTarget('nope'), { code: 'CONNECTION_NOT_FOUND' });
      await assert.rejects(stranger.resolveConnectionTarget('orders'), SecretDecryptionError);

      await rejectsWith(
        store.createConnection({
          name: 'orders',
          agent: 'edge-0',
          type: 'postgres',
          host: 'h',
          port: 1,
          user: 'u',
          database: 'd',
        }),
        'ALREADY_EXISTS',
        /orders/,
      );
    });

    it('detects a tampered or moved ciphertext', async () => {
      const base = {
        agent: 'edge-0',
        type: 'postgres',
        host: 'h',
        port: 5432,
        user: 'u',
        database: 'd',
      };
      await store.createConnection({ ...base, name: 'tamper-a', password: 'alpha' });
      await store.createConnection({ ...base, name: 'tamper-b', password: 'bravo' });
      const secretOf = async (name: string): Promise<string> => {
        const [row] = await database.db
          .select({ secret: connections.secretCiphertext })
          .from(connections)
          .where(eq(connections.name, name));
        return row!.secret!;
      };
      const a = await secretOf('tamper-a');
      const b = await secretOf('tamper-b');

      // a's ciphertext copied onto b's row: bound to a's id, so it no longer authenticates
      await database.db
        .update(connections)
        .set({ secretCiphertext: a })
        .where(eq(connections.name, 'tamper-b'));
      await assert.rejects(store.resolveConnectionTarget('tamper-b'), (err: unknown) => {
        assert.ok(err instanceof SecretDecryptionError);
        assert.equal(err.reason, 'authentication-failed');
        assert.ok(!err.message.includes('alpha'));
        return true;
      });

      // one flipped ciphertext byte
      const [v, iv, tag, ct] = b.split(':') as [string, string, string, string];
      const bytes = Buffer.from(ct, 'base64');
      bytes[0] = bytes[0]! ^ 1;
      await database.db
        .update(connections)
        .set({ secretCiphertext: [v, iv, tag, bytes.toString('base64')].join(':') })
        .where(eq(connections.name, 'tamper-b'));
      await assert.rejects(store.resolveConnectionTarget('tamper-b'), { code: 'INTERNAL' });
      assert.equal(
        (await store.resolveConnectionTarget('tamper-a')).target.credential.kind,
        'password',
      );
      await store.deleteConnection('tamper-a');
      await store.deleteConnection('tamper-b');
    });

    it('keeps env references and no-credential connections', async () => {
      const ref = await store.createConnection({
        name: 'billing',
        agent: 'edge-1',
        type: 'postgres',
        host: 'billing.db',
        port: 6432,
        user: 'billing',
        database: 'billing',
        tls: 'require',
        passwordRef: 'env:BILLING_PG_PASSWORD',
      });
      assert.equal(ref.credential, 'ref:env:BILLING_PG_PASSWORD');
      assert.equal(ref.tls, 'require');
      const resolved = await store.resolveConnectionTarget('billing');
      assert.deepEqual(resolved.target.credential, { kind: 'env', name: 'BILLING_PG_PASSWORD' });

      const none = await store.createConnection({
        name: 'trusting',
        agent: 'edge-0',
        type: 'postgres',
        host: 'localhost',
        port: 5432,
        user: 'postgres',
        database: 'postgres',
        tls: 'disable',
      });
      assert.equal(none.credential, 'none');
      assert.deepEqual((await store.resolveConnectionTarget('trusting')).target.credential, {
        kind: 'none',
      });
      assert.deepEqual(
        (await store.listConnections()).map((c) => `${c.name}@${c.agent}`),
        ['billing@edge-1', 'orders@edge-1', 'trusting@edge-0'],
      );
    });

    it('refuses to delete an agent its connections still use', async () => {
      await rejectsWith(store.deleteAgent('edge-0'), 'INVALID_REQUEST', /trusting/);
      await store.deleteConnection('trusting');
      await rejectsWith(store.deleteConnection('trusting'), 'CONNECTION_NOT_FOUND');
      await rejectsWith(store.getConnection('trusting'), 'CONNECTION_NOT_FOUND', /trusting/);
      await store.deleteAgent('edge-0');
      await rejectsWith(store.deleteAgent('edge-0'), 'AGENT_NOT_FOUND');
      assert.deepEqual(
        (await store.listAgents()).map((a) => a.name),
        ['edge-1'],
      );
    });

    it('records the session lifecycle', async () => {
      const orders = await store.getConnection('orders');
      const admin = await store.getUser('admin');
      clock.advance(1000);
      const opened = await store.createSession({
        connectionId: orders.id,
        connectionName: orders.name,
        userId: admin.id,
        agentId: orders.agentId,
        client: 'psql',
      });
      assert.equal(opened.status, 'open');
      assert.equal(opened.startedAt, new Date(clock.now()).toISOString());
      assert.equal(opened.endedAt, null);
      assert.equal(opened.bytesUp, 0);

      clock.advance(2500);
      const big = 2 ** 40 + 7;
      const closed = await store.endSession(opened.id, {
        status: 'closed',
        bytesUp: 1234,
        bytesDown: big,
      });
      assert.equal(closed.status, 'closed');
      assert.equal(closed.bytesDown, big, 'bigint columns round-trip above 2^32');
      assert.equal(closed.endedAt, new Date(clock.now()).toISOString());
      assert.equal(closed.errorCode, null);

      clock.advance(1000);
      const again = await store.endSession(opened.id, {
        status: 'failed',
        bytesUp: 0,
        bytesDown: 0,
      });
      assert.deepEqual(again, closed, 'the first end wins');
      assert.deepEqual(await store.getSession(opened.id), closed);

      const failing = await store.createSession({
        connectionId: orders.id,
        connectionName: 'orders',
      });
      clock.advance(10);
      const failed = await store.endSession(failing.id, {
        status: 'failed',
        errorCode: 'TARGET_UNREACHABLE',
        bytesUp: 0,
        bytesDown: 0,
      });
      assert.equal(failed.errorCode, 'TARGET_UNREACHABLE');
      assert.equal(failed.userId, null);
      assert.equal(failed.client, null);

      clock.advance(10);
      const left1 = await store.createSession({
        connectionId: orders.id,
        connectionName: 'orders',
      });
      clock.advance(10);
      const left2 = await store.createSession({ connectionId: null, connectionName: 'gone' });

      const newest = await store.listSessions({ limit: 2 });
      assert.deepEqual(
        newest.map((s) => s.id),
        [left2.id, left1.id],
      );
      assert.equal((await store.listSessions()).length, 4);
      assert.equal((await store.listSessions({ status: 'open' })).length, 2);
      await rejectsWith(store.listSessions({ limit: 0 }), 'INVALID_REQUEST', /limit/);
      await rejectsWith(store.listSessions({ limit: 100_000 }), 'INVALID_REQUEST', /limit/);
      await rejectsWith(
        store.endSession(left1.id, { status: 'closed', bytesUp: -1, bytesDown: 0 }),
        'INVALID_REQUEST',
        /bytesUp/,
      );
      await rejectsWith(
        store.endSession(left1.id, { status: 'open' as 'closed', bytesUp: 0, bytesDown: 0 }),
        'INVALID_REQUEST',
        /status/,
      );
      // Several ends in one write: only sessions still open change; bad input is refused.
      const s3 = await store.createSession({ connectionId: orders.id, connectionName: 'orders' });
      const s4 = await store.createSession({ connectionId: orders.id, connectionName: 'orders' });
      clock.advance(20);
      await store.endSessions([
        { id: s3.id, status: 'closed', bytesUp: 5, bytesDown: big },
        { id: s4.id, status: 'failed', errorCode: 'AGENT_OFFLINE', bytesUp: 0, bytesDown: 1 },
        { id: opened.id, status: 'failed', bytesUp: 9, bytesDown: 9 },
        { id: 'missing', status: 'closed', bytesUp: 0, bytesDown: 0 },
      ]);
      const [e3, e4] = [await store.getSession(s3.id), await store.getSession(s4.id)];
      assert.equal(e3.status, 'closed');
      assert.equal(e3.bytesDown, big);
      assert.equal(e3.endedAt, new Date(clock.now()).toISOString());
      assert.equal(e4.status, 'failed');
      assert.equal(e4.errorCode, 'AGENT_OFFLINE');
      assert.deepEqual(
        await store.getSession(opened.id),
        closed,
        'an ended session stays as it was',
      );
      await rejectsWith(
        store.endSessions([{ id: left1.id, status: 'closed', bytesUp: -1, bytesDown: 0 }]),
        'INVALID_REQUEST',
        /bytesUp/,
      );
      assert.equal((await store.getSession(left1.id)).status, 'open');
      await rejectsWith(store.getSession('missing'), 'NOT_FOUND');
      await rejectsWith(
        store.endSession('missing', { status: 'closed', bytesUp: 0, bytesDown: 0 }),
        'NOT_FOUND',
      );
      await rejectsWith(
        store.createSession({ connectionId: 'no-such-connection', connectionName: 'x' }),
        'CONNECTION_NOT_FOUND',
      );

      clock.advance(10);
      assert.equal(await store.failOpenSessions(), 2);
      assert.equal(await store.failOpenSessions(), 0);
      const after1 = await store.getSession(left1.id);
      assert.equal(after1.status, 'failed');
      assert.equal(after1.errorCode, BROKER_RESTARTED);
      assert.equal(after1.endedAt, new Date(clock.now()).toISOString());

      // deleting a connection keeps its sessions, by name
      await store.deleteConnection('orders');
      const kept = await store.getSession(opened.id);
      assert.equal(kept.connectionId, null);
      assert.equal(kept.connectionName, 'orders');
    });

    it('bootstraps with a given token on an empty database only', async () => {
      // the admin exists already: nothing happens, whatever token is given
      const result = await store.bootstrap({ adminToken: 'hoop_pat_given' });
      assert.equal(result.created, false);
      assert.equal(await store.authenticateUserToken('hoop_pat_given'), undefined);
      await rejectsWith(store.bootstrap({ adminToken: ' padded ' }), 'INVALID_REQUEST');
    });
  });
}
