import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { HoopError } from '@hoop/shared';
import {
  decryptSecret,
  encryptSecret,
  loadMasterKey,
  MASTER_KEY_FILE,
  parseMasterKey,
  SecretDecryptionError,
} from './secrets.js';

const root = mkdtempSync(join(tmpdir(), 'hoop-secrets-'));
after(() => rmSync(root, { recursive: true, force: true }));

describe('loadMasterKey', () => {
  const key = randomBytes(32);

  it('accepts HOOP_MASTER_KEY as base64, base64url or hex, ignoring surrounding space', () => {
    const dataDir = join(root, 'env');
    for (const text of [
      key.toString('base64'),
      key.toString('base64url'),
      key.toString('hex'),
      key.toString('hex').toUpperCase(),
      ` ${key.toString('base64')}\n`,
    ]) {
      assert.deepEqual(loadMasterKey({ envValue: text, dataDir }), key, text);
    }
    assert.throws(() => statSync(join(dataDir, MASTER_KEY_FILE)), /ENOENT/, 'no key file written');
  });

  it('rejects a malformed HOOP_MASTER_KEY without echoing it', () => {
    const bad = [
      'not-a-key',
      randomBytes(16).toString('base64'),
      randomBytes(33).toString('base64'),
      key.toString('hex').slice(2),
      `${key.toString('hex').slice(1)}g`,
      `${key.toString('base64').slice(0, -2)}!=`,
    ];
    for (const envValue of bad) {
      assert.throws(
        () => loadMasterKey({ envValue, dataDir: join(root, 'bad') }),
        (err: unknown) => {
          assert.ok(err instanceof HoopError);
          assert.equal(err.code, 'INVALID_REQUEST');
          assert.match(err.message, /HOOP_MASTER_KEY.*base64.*64 hex/);
          assert.ok(!err.message.includes(envValue), 'the message echoes the key');
          assert.ok(!err.hint.includes(envValue));
          return true;
        },
      );
      assert.equal(parseMasterKey(envValue), undefined);
    }
  });

  it('creates <dataDir>/master.key with mode 0600 when unset, then reuses it', () => {
    const dataDir = join(root, 'file', 'nested');
    const first = loadMasterKey({ dataDir });
    assert.equal(first.length, 32);
    const path = join(dataDir, MASTER_KEY_FILE);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.deepEqual(parseMasterKey(readFileSync(path, 'utf8')), first);
    assert.deepEqual(loadMasterKey({ dataDir }), first);
    assert.deepEqual(loadMasterKey({ envValue: '', dataDir }), first, 'empty env counts as unset');
  });

  it('refuses a damaged key file rather than replacing it', () => {
    const dataDir = join(root, 'damaged');
    loadMasterKey({ dataDir });
    writeFileSync(join(dataDir, MASTER_KEY_FILE), 'garbage\n');
    assert.throws(() => loadMasterKey({ dataDir }), {
      code: 'INVALID_REQUEST',
      message: /master key file .* is malformed/,
    });
    assert.equal(readFileSync(join(dataDir, MASTER_KEY_FILE), 'utf8'), 'garbage\n');
  });
});

describe('encryptSecret / decryptSecret', () => {
  const key = randomBytes(32);

  it('round-trips, with a fresh IV every time', () => {
    for (const plaintext of ['', 'p', 'pässwörd 🔑', 'x'.repeat(5000)]) {
      const a = encryptSecret(key, plaintext);
      const b = encryptSecret(key, plaintext);
      assert.notEqual(a, b);
      assert.match(a, /^v1:[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]*$/);
      assert.equal(decryptSecret(key, a), plaintext);
    }
  });

  it('binds the ciphertext to its additional data', () => {
    const stored = encryptSecret(key, 'secret', 'row-1');
    assert.equal(decryptSecret(key, stored, 'row-1'), 'secret');
    assert.throws(() => decryptSecret(key, stored, 'row-2'), SecretDecryptionError);
    assert.throws(() => decryptSecret(key, stored), SecretDecryptionError);
  });

  it('fails with a typed error on any tampering, never returning garbage', () => {
    const stored = encryptSecret(key, 'the plaintext');
    const parts = stored.split(':');
    const reasons = new Map<string, string>();
    const attempt = (text: string): void => {
      assert.throws(
        () => decryptSecret(key, text),
        (err: unknown) => {
          assert.ok(err instanceof SecretDecryptionError, String(err));
          assert.equal(err.code, 'INTERNAL');
          assert.ok(!err.message.includes('the plaintext'));
          reasons.set(err.reason, text);
          return true;
        },
      );
    };
    // flip every bit of iv, tag and ciphertext in turn
    for (let part = 1; part <= 3; part++) {
      const bytes = Buffer.from(parts[part]!, 'base64');
      for (let i = 0; i < bytes.length * 8; i++) {
        const copy = Buffer.from(bytes);
        copy[i >> 3] = copy[i >> 3]! ^ (1 << (i & 7));
        const next = [...parts];
        next[part] = copy.toString('base64');
        attempt(next.join(':'));
      }
    }
    attempt(parts.slice(0, 3).join(':'));
    attempt(`v2:${parts.slice(1).join(':')}`);
    attempt(
      `${parts[0]}:${parts[1]}:${Buffer.from(parts[2]!, 'base64').subarray(0, 12).toString('base64')}:${parts[3]}`,
    );
    attempt(`${stored}:extra`);
    attempt('');
    attempt('v1:***:***:***');
    assert.throws(() => decryptSecret(randomBytes(32), stored), {
      reason: 'authentication-failed',
    });
    assert.deepEqual([...reasons.keys()].sort(), [
      'authentication-failed',
      'malformed',
      'unsupported-version',
    ]);
  });

  it('refuses keys of the wrong size', () => {
    assert.throws(() => encryptSecret(randomBytes(16), 'x'), { code: 'INTERNAL' });
  });
});
