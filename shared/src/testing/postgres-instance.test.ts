import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { findPostgresBinDir, startPostgresInstance } from './postgres-instance.js';

/** Runs a query with psql over TCP with `password`; resolves stdout or rejects with stderr. */
async function psqlTcp(
  instance: { host: string; port: number; user: string; database: string },
  password: string,
  sql: string,
): Promise<string> {
  const bin = await findPostgresBinDir();
  return new Promise((resolve, reject) => {
    execFile(
      join(bin, 'psql'),
      ['-X', '-At', '-h', instance.host, '-p', String(instance.port), '-U', instance.user].concat([
        '-d',
        instance.database,
        '-c',
        sql,
      ]),
      { env: { ...process.env, PGPASSWORD: password, PGCONNECT_TIMEOUT: '10' }, timeout: 20_000 },
      (err, stdout, stderr) => (err === null ? resolve(stdout.trim()) : reject(new Error(stderr))),
    );
  });
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

describe('startPostgresInstance', () => {
  it('runs a scram-sha-256 server that accepts only the right password, and stops cleanly', async () => {
    const instance = await startPostgresInstance({ auth: 'scram-sha-256', password: "it's-me" });
    try {
      assert.equal(instance.host, '127.0.0.1');
      assert.equal(instance.user, 'postgres');
      const verifier = await psqlTcp(
        instance,
        "it's-me",
        'select rolpassword from pg_authid where rolname = current_user',
      );
      assert.match(verifier, /^SCRAM-SHA-256\$/);
      await assert.rejects(
        psqlTcp(instance, 'wrong', 'select 1'),
        /password authentication failed/,
      );
    } finally {
      await instance.stop();
    }
    assert.equal(existsSync(dirname(instance.dataDir)), false, 'temp dir removed');
    assert.equal(await portOpen(instance.port), false, 'server gone');
    await instance.stop(); // idempotent
  });

  it('runs an md5 server with a custom role and a random password', async () => {
    await using instance = await startPostgresInstance({ auth: 'md5', user: 'app_owner' });
    assert.equal(instance.user, 'app_owner');
    assert.ok(instance.password.length >= 12);
    const verifier = await psqlTcp(
      instance,
      instance.password,
      'select rolpassword from pg_authid where rolname = current_user',
    );
    assert.match(verifier, /^md5[0-9a-f]{32}$/);
    await assert.rejects(psqlTcp(instance, 'wrong', 'select 1'), /password authentication failed/);
  });

  it('finds the highest installed version', async () => {
    const root = await mkdtemp(join(tmpdir(), 'hoop-pgroot-'));
    try {
      for (const version of ['9.6', '13', '15', '16']) {
        await mkdir(join(root, version, 'bin'), { recursive: true });
        if (version !== '16') {
          await writeFile(join(root, version, 'bin', 'initdb'), '');
          await writeFile(join(root, version, 'bin', 'postgres'), '');
        }
      }
      // 16 has no binaries, so 15 wins over 13 and 9.6.
      assert.equal(await findPostgresBinDir(root), join(root, '15', 'bin'));
      await assert.rejects(findPostgresBinDir(join(root, 'missing')), /no PostgreSQL installation/);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
