import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { PGlite } from '@electric-sql/pglite';
import { initializePgliteDataDirs, isPgliteDataDir } from './pglite-init.js';

async function tables(dir: string): Promise<string[]> {
  const db = await PGlite.create(dir);
  try {
    const { rows } = await db.query<{ name: string }>(
      `select tablename as name from pg_tables where schemaname = 'public' order by 1`,
    );
    return rows.map((r) => r.name);
  } finally {
    await db.close();
  }
}

async function createTable(dir: string, name: string): Promise<void> {
  const db = await PGlite.create(dir);
  await db.exec(`create table ${name} (id int)`);
  await db.close();
}

describe('initializePgliteDataDirs', () => {
  const root = mkdtempSync(join(tmpdir(), 'hoop-pglite-init-'));
  after(() => rmSync(root, { recursive: true, force: true }));

  it('runs initdb once and gives the other absent or empty directory its own copy', async () => {
    const store = join(root, 'data', 'pglite');
    const demo = join(root, 'data', 'demo-db');
    mkdirSync(demo, { recursive: true }); // empty, as `hoop up` may leave it
    const done = await initializePgliteDataDirs([store, demo]);
    assert.deepEqual(done, { initialized: [store], copied: [demo] });
    assert.ok(isPgliteDataDir(store) && isPgliteDataDir(demo));
    assert.deepEqual(
      readdirSync(join(root, 'data')).filter((n) => n.includes('.copying-')),
      [],
      'no staging directory is left behind',
    );
    // Two independent databases: what one stores the other does not see.
    await createTable(demo, 'customers');
    await createTable(store, 'sessions');
    assert.deepEqual(await tables(demo), ['customers']);
    assert.deepEqual(await tables(store), ['sessions']);
  });

  it('leaves existing data directories alone, and copies neither a used one nor over files', async () => {
    const store = join(root, 'data', 'pglite'); // from the test above, holds `sessions`
    const busy = join(root, 'busy');
    mkdirSync(busy, { recursive: true });
    writeFileSync(join(busy, 'notes.txt'), 'mine');
    const done = await initializePgliteDataDirs([store, busy]);
    assert.deepEqual(done, { initialized: [busy], copied: [] });
    assert.ok(existsSync(join(busy, 'notes.txt')), 'the file is still there');
    assert.deepEqual(await tables(busy), []);
    assert.deepEqual(await tables(store), ['sessions']);
    assert.deepEqual(await initializePgliteDataDirs([store, busy]), {
      initialized: [],
      copied: [],
    });
  });
});
