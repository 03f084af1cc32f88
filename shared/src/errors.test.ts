import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ErrorCodes, errorCodeFromWsClose, HoopError, toHoopError } from './errors.js';

describe('error codes', () => {
  it('are all documented in the README table with the same HTTP, exit and close codes', async () => {
    const readme = await readFile(
      fileURLToPath(new URL('../../README.md', import.meta.url)),
      'utf8',
    );
    for (const [code, info] of Object.entries(ErrorCodes)) {
      const cells = readme
        .split('\n')
        .map((line) => line.split('|').map((c) => c.trim()))
        .find((c) => c[0] === '' && c[1] === `\`${code}\``);
      assert.ok(cells !== undefined, `README lacks a row for ${code}`);
      assert.equal(cells[2], String(info.http), `${code} HTTP status`);
      assert.equal(cells[3], String(info.exit), `${code} exit code`);
      assert.equal(cells[4], String(info.ws), `${code} WebSocket close code`);
    }
  });

  it('serialise without causes and map back from close codes', () => {
    const err = new HoopError('FRAME_TOO_LARGE', 'too big', { cause: new Error('secret detail') });
    assert.deepEqual(Object.keys(err.toJSON()).sort(), ['code', 'hint', 'message']);
    assert.equal(errorCodeFromWsClose(err.wsCloseCode), 'FRAME_TOO_LARGE');
    assert.equal(toHoopError(new Error('x')).code, 'INTERNAL');
    assert.equal(toHoopError(err), err);
  });
});
