/** What an access request and a break-glass request must carry, checked before any review exists. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HoopError, parsePolicy } from '@hoop/shared';
import { checkAccessRequest, checkBreakGlass } from './access-request.js';

const policy = parsePolicy({
  reviews: {
    approvers: ['dba'],
    break_glass: ['oncall', 'sre'],
    access: { max_duration: '1h', justification: 'optional' },
  },
});

function fails(fn: () => unknown, code: string, message: RegExp, hint?: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof HoopError);
    assert.equal(e.code, code);
    assert.match(e.message, message);
    if (hint !== undefined) assert.match(e.hint, hint);
    return true;
  });
}

describe('access requests', () => {
  it('defaults the window to max_duration and refuses a longer one', () => {
    assert.deepEqual(checkAccessRequest(policy, { connection: 'db' }), {
      justification: undefined,
      durationSeconds: 3600,
    });
    fails(
      () => checkAccessRequest(policy, { connection: 'db', durationSeconds: 3601 }),
      'INVALID_REQUEST',
      /at most 1h/,
    );
  });

  it('break-glass: a member of a break-glass group, with a reason, within max_duration', () => {
    const oncall = { name: 'olga', groups: ['dev', 'oncall'] };
    assert.deepEqual(
      checkBreakGlass(policy, oncall, {
        connection: 'db',
        durationSeconds: 600,
        justification: '  INC-9  ',
      }),
      { justification: 'INC-9', durationSeconds: 600, groups: ['oncall'] },
    );
    // The reason is mandatory even though the policy's justification is optional.
    for (const justification of [undefined, '', '   ']) {
      fails(
        () => checkBreakGlass(policy, oncall, { connection: 'db', justification }),
        'INVALID_REQUEST',
        /break-glass access to db needs a justification/,
        /--reason/,
      );
    }
    fails(
      () =>
        checkBreakGlass(policy, oncall, {
          connection: 'db',
          justification: 'x',
          durationSeconds: 7200,
        }),
      'INVALID_REQUEST',
      /at most 1h/,
    );
  });

  it('break-glass: refused off the break-glass groups (admins too) and without any', () => {
    fails(
      () =>
        checkBreakGlass(
          policy,
          { name: 'root', groups: ['admins'] },
          { connection: 'db', justification: 'x' },
        ),
      'AUTH_FORBIDDEN',
      /root is not in a break-glass group of db \(oncall, sre\)/,
      /hoop grants request db/,
    );
    const none = parsePolicy({ reviews: { approvers: ['dba'], access: {} } });
    fails(
      () =>
        checkBreakGlass(
          none,
          { name: 'olga', groups: ['oncall'] },
          { connection: 'db', justification: 'x' },
        ),
      'AUTH_FORBIDDEN',
      /db has no break-glass group/,
    );
  });
});
