import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { constantTimeEqual, generateToken, hashToken, tokenPrefixOf } from './tokens.js';

describe('tokens', () => {
  it('generates prefixed 32-byte base64url tokens, all different', () => {
    const seen = new Set<string>();
    for (const prefix of ['hoop_at', 'hoop_pat'] as const) {
      for (let i = 0; i < 50; i++) {
        const token = generateToken(prefix);
        assert.ok(token.startsWith(`${prefix}_`));
        const body = token.slice(prefix.length + 1);
        assert.match(body, /^[A-Za-z0-9_-]{43}$/);
        assert.equal(Buffer.from(body, 'base64url').length, 32);
        assert.equal(tokenPrefixOf(token), prefix);
        seen.add(token);
      }
    }
    assert.equal(seen.size, 100);
    assert.equal(tokenPrefixOf('Bearer x'), undefined);
  });

  it('hashes with sha256 to lowercase hex', () => {
    // sha256("abc"), FIPS 180-2 appendix B.1
    assert.equal(
      hashToken('abc'),
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
    const token = generateToken('hoop_pat');
    assert.equal(hashToken(token), hashToken(token));
    assert.notEqual(hashToken(token), hashToken(`${token} `));
  });

  it('compares in constant time', () => {
    assert.equal(constantTimeEqual('abc', 'abc'), true);
    assert.equal(constantTimeEqual('abc', 'abd'), false);
    assert.equal(constantTimeEqual('abc', 'abcd'), false);
    assert.equal(constantTimeEqual('', ''), true);
  });
});
