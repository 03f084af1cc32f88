import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HoopError } from '@hoop/shared';
import { resolveCredential } from './credentials.js';

describe('resolveCredential', () => {
  it('passes a stored password, reads env references from the agent env', () => {
    assert.equal(resolveCredential({ kind: 'password', value: 's3cret' }, {}).password, 's3cret');
    assert.equal(resolveCredential({ kind: 'env', name: 'PGPASS' }, { PGPASS: 'p' }).password, 'p');
    assert.equal(resolveCredential({ kind: 'none' }, {}).password, undefined);
  });

  it('fails closed with SECRET_UNAVAILABLE naming the variable, never a value', () => {
    assert.throws(
      () => resolveCredential({ kind: 'env', name: 'MISSING' }, { OTHER: 'x' }),
      (e) =>
        e instanceof HoopError && e.code === 'SECRET_UNAVAILABLE' && e.message.includes('MISSING'),
    );
  });
});
