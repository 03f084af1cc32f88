import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { describe, it } from 'node:test';

/** Imports `specifier` in a fresh node and says whether libpg-query got loaded. */
function loadsSqlParser(specifier: string): Promise<boolean> {
  const script = `
import { createRequire } from 'node:module';
await import(${JSON.stringify(specifier)});
const loaded = Object.keys(createRequire(import.meta.url).cache).some((k) => k.includes('libpg-query'));
process.stdout.write(JSON.stringify({ loaded }));
`;
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--input-type=module', '-e', script],
      { cwd: new URL('..', import.meta.url), timeout: 30_000 },
      (err, stdout, stderr) => {
        if (err !== null) reject(new Error(`${err.message}\n${stderr}`));
        else resolve((JSON.parse(stdout) as { loaded: boolean }).loaded);
      },
    );
  });
}

describe('@hoop/agent/postgres-wire', () => {
  it('does not load the SQL parser (its WebAssembly module costs every importer ~10-18 MiB)', async () => {
    assert.equal(await loadsSqlParser('@hoop/agent/postgres-wire'), false);
  });

  it('the package root does, so the check above can tell', async () => {
    assert.equal(await loadsSqlParser('@hoop/agent'), true);
  });

  it('the broker does not load it', async () => {
    assert.equal(await loadsSqlParser('@hoop/broker'), false);
  });
});
