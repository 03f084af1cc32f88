import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { md5PasswordHash } from './auth.js';
import { PgFailure, PostgresEngineError } from './errors.js';
import { saslprep } from './saslprep.js';
import {
  ScramSha256Client,
  scramClientProof,
  scramSaltedPassword,
  scramServerSignature,
} from './scram.js';

/** RFC 7677 §3: user "user", password "pencil". */
const RFC = {
  clientNonce: 'rOprNGfwEbeRWgbNEkqO',
  clientFirst: 'n,,n=user,r=rOprNGfwEbeRWgbNEkqO',
  serverFirst:
    'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096',
  clientFinal:
    'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
  serverFinal: 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=',
};

const isScramFailure = (err: unknown): boolean =>
  err instanceof PostgresEngineError &&
  err.code === 'TARGET_AUTH_FAILED' &&
  err.reason === PgFailure.scramFailed;

describe('SCRAM-SHA-256', () => {
  it('computes the RFC 7677 client proof and server signature', async () => {
    const salted = await scramSaltedPassword(
      'pencil',
      Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64'),
      4096,
    );
    const authMessage = [
      RFC.clientFirst.slice(3),
      RFC.serverFirst,
      'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0',
    ].join(',');
    assert.equal(
      scramClientProof(salted, authMessage).toString('base64'),
      'dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
    );
    assert.equal(
      scramServerSignature(salted, authMessage).toString('base64'),
      '6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=',
    );
  });

  it('runs the RFC 7677 exchange end to end', async () => {
    const client = new ScramSha256Client('pencil', { username: 'user', nonce: RFC.clientNonce });
    assert.equal(client.clientFirst(), RFC.clientFirst);
    assert.equal(await client.clientFinal(RFC.serverFirst), RFC.clientFinal);
    assert.equal(client.verified, false);
    client.verifyServerFinal(RFC.serverFinal);
    assert.equal(client.verified, true);
  });

  it('sends an empty user name by default, as PostgreSQL expects', () => {
    const client = new ScramSha256Client('pencil', { nonce: 'abc' });
    assert.equal(client.clientFirst(), 'n,,n=,r=abc');
  });

  it('rejects a server signature that does not match', async () => {
    const client = new ScramSha256Client('pencil', { username: 'user', nonce: RFC.clientNonce });
    client.clientFirst();
    await client.clientFinal(RFC.serverFirst);
    assert.throws(
      () => client.verifyServerFinal('v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA='),
      isScramFailure,
    );
    assert.equal(client.verified, false);
  });

  it('rejects a server error, a foreign nonce, an extension and too many iterations', async () => {
    const make = (): ScramSha256Client => {
      const c = new ScramSha256Client('pencil', { nonce: 'abc', maxIterations: 10_000 });
      c.clientFirst();
      return c;
    };
    await assert.rejects(make().clientFinal('r=xyz123,s=AAAA,i=4096'), isScramFailure);
    await assert.rejects(make().clientFinal('r=abc,s=AAAA,i=4096'), isScramFailure);
    await assert.rejects(make().clientFinal('m=ext,r=abc1,s=AAAA,i=4096'), isScramFailure);
    await assert.rejects(make().clientFinal('r=abc1,s=AAAA,i=20000'), isScramFailure);
    await assert.rejects(make().clientFinal('r=abc1,s=AAAA,i=0'), isScramFailure);
    await assert.rejects(make().clientFinal('r=abc1,s=AAAA'), isScramFailure);
    await assert.rejects(make().clientFinal('garbage'), isScramFailure);
    const errored = make();
    await errored.clientFinal('r=abc1,s=AAAA,i=4096');
    assert.throws(() => errored.verifyServerFinal('e=invalid-proof'), isScramFailure);
  });

  it('refuses messages out of order', async () => {
    const client = new ScramSha256Client('pencil', { nonce: 'abc' });
    await assert.rejects(client.clientFinal('r=abc1,s=AAAA,i=1'), isScramFailure);
    assert.throws(() => client.verifyServerFinal(RFC.serverFinal), isScramFailure);
  });
});

describe('SASLprep', () => {
  it('keeps ASCII passwords as they are', () => {
    assert.equal(saslprep('pencil'), 'pencil');
    assert.equal(saslprep('with space\t'), 'with space\t');
  });

  it('maps non-ASCII spaces, drops ignorable characters and normalizes NFKC', () => {
    assert.equal(saslprep('I\u00adX'), 'IX');
    assert.equal(saslprep('a\u00a0b'), 'a b');
    assert.equal(saslprep('\u2168'), 'IX');
    assert.equal(saslprep('e\u0301'), '\u00e9');
  });

  it('falls back to the raw password when a prohibited character remains', () => {
    assert.equal(saslprep('\u00e9\u0007'), '\u00e9\u0007');
    assert.equal(saslprep('\u00e9\ue000'), '\u00e9\ue000');
  });
});

describe('MD5 password', () => {
  it("matches PostgreSQL's md5(md5(password || user) || salt)", () => {
    // select 'md5' || md5(md5('penciluser') || 'abcd')
    assert.equal(
      md5PasswordHash('user', 'pencil', Buffer.from('abcd')),
      'md5d621238dc9a10c6c869b264c13379ee7',
    );
  });
});
