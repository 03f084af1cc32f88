import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { PGlite } from '@electric-sql/pglite';
import { durablePgliteOptions, fsyncErrno, syncTree } from './pglite-durable-fs.js';
import { initializePgliteDataDir } from './pglite-init.js';

describe('DurableNodeFS (PGlite with real fsyncs)', () => {
  const root = mkdtempSync(join(tmpdir(), 'hoop-durable-'));
  after(() => rmSync(root, { recursive: true, force: true }));

  it('fsyncs the WAL when a transaction commits, and the rows are there after reopening', async () => {
    const dir = join(root, 'pglite');
    await initializePgliteDataDir(dir);
    let syncs = 0;
    const open = () =>
      PGlite.create(
        durablePgliteOptions(dir, [], () => {
          syncs += 1;
        }),
      );
    const db = await open();
    const settings = await db.query<{ name: string; setting: string }>(
      `select name, setting from pg_settings where name in ('fsync', 'wal_sync_method') order by name`,
    );
    assert.deepEqual(
      settings.rows.map((r) => `${r.name}=${r.setting}`),
      ['fsync=on', 'wal_sync_method=fsync'],
    );
    await db.exec('create table t (id int primary key)');
    for (let i = 1; i <= 3; i++) {
      const before = syncs;
      await db.query('insert into t values ($1)', [i]);
      assert.ok(syncs > before, `commit ${i} made no fsync`);
    }
    // A read-only statement writes no WAL and waits for no disk.
    const before = syncs;
    await db.query('select count(*) from t');
    assert.equal(syncs, before);
    // A checkpoint syncs the data files (and directories) it wrote.
    await db.exec('checkpoint');
    assert.ok(syncs > before + 1, `checkpoint made ${syncs - before} fsyncs`);
    await db.close();

    const again = await open();
    const { rows } = await again.query<{ n: number }>('select count(*)::int as n from t');
    assert.equal(rows[0]?.n, 3);
    await again.close();
  });

  it('gives postgres EIO for a failed fsync, keeping EBADF and EINVAL (refused on a directory)', () => {
    assert.equal(fsyncErrno(Object.assign(new Error('x'), { code: 'EIO' })), 29);
    assert.equal(fsyncErrno(Object.assign(new Error('x'), { code: 'ENOSPC' })), 29);
    assert.equal(fsyncErrno(Object.assign(new Error('x'), { code: 'EBADF' })), 8);
    assert.equal(fsyncErrno(Object.assign(new Error('x'), { code: 'EINVAL' })), 28);
    assert.equal(fsyncErrno('not an error'), 29);
  });

  it('syncTree fsyncs a nested tree of files and directories', () => {
    const dir = join(root, 'tree');
    mkdirSync(join(dir, 'a', 'b'), { recursive: true });
    writeFileSync(join(dir, 'top'), 'x');
    writeFileSync(join(dir, 'a', 'b', 'leaf'), 'y');
    syncTree(dir);
    assert.throws(() => syncTree(join(root, 'missing')), { code: 'ENOENT' });
  });
});
