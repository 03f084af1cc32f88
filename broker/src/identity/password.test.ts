import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { globMatch } from './glob.js';
import { hashPassword, validatePassword, verifyPassword } from './password.js';

describe('password hashing (scrypt)', () => {
  it('hashes with N=2^15 and a per-password salt, and verifies', async () => {
    const a = await hashPassword('correct horse battery');
    const b = await hashPassword('correct horse battery');
    assert.match(a, /^scrypt\$32768\$8\$1\$/);
    assert.notEqual(a, b, 'salted');
    assert.equal(await verifyPassword('correct horse battery', a), true);
    assert.equal(await verifyPassword('correct horse batterY', a), false);
  });

  it('answers false (after the same work) for no hash or a malformed one', async () => {
    assert.equal(await verifyPassword('whatever-pass', undefined), false);
    assert.equal(await verifyPassword('whatever-pass', 'scrypt$99$1$1$x$y'), false);
    assert.equal(await verifyPassword('whatever-pass', 'plain'), false);
  });

  it('refuses short and huge passwords without echoing them', () => {
    assert.throws(
      () => validatePassword('short'),
      (e: Error) => !e.message.includes('short'),
    );
    assert.throws(() => validatePassword('x'.repeat(2000)), /at most/);
    assert.equal(validatePassword('long enough'), 'long enough');
  });
});

describe('glob (trust policy patterns)', () => {
  const cases: [string, string, boolean][] = [
    ['repo:org/app:*', 'repo:org/app:ref:refs/heads/main', true],
    ['repo:org/app:*', 'repo:org/app', false],
    ['repo:org/app:*', 'repo:org/app2:x', false],
    ['refs/heads/*', 'refs/heads/main', true],
    ['refs/heads/*', 'refs/tags/v1', false],
    ['org/app', 'org/app', true],
    ['org/app', 'org/apps', false],
    ['*', '', true],
    ['a*b*c', 'aXbYc', true],
    ['a*b*c', 'acb', false],
    ['a*a', 'a', false],
    ['*.*', 'no-dot', false],
  ];
  for (const [pattern, value, expected] of cases) {
    it(`${pattern} ~ ${value || '(empty)'} → ${expected}`, () => {
      assert.equal(globMatch(pattern, value), expected);
    });
  }
});
