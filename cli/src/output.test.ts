import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { table } from './output.js';

describe('table', () => {
  it('heads each column with its key in words and aligns the cells under it', () => {
    const out = table(
      [
        { id: 'a1', connectionName: 'demo', bytesUp: 90, endedAt: null, online: true },
        { id: 'b22', connectionName: 'orders', bytesUp: 1234, endedAt: '12:00', online: false },
      ],
      ['id', 'connectionName', 'bytesUp', 'endedAt', 'online'],
    );
    assert.equal(
      out,
      [
        'ID   CONNECTION NAME  BYTES UP  ENDED AT  ONLINE',
        'a1   demo             90        -         yes',
        'b22  orders           1234      12:00     no',
      ].join('\n'),
    );
  });
});
