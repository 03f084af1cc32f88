/** The policy document's `reviews` section: strict parsing, defaults, and what is written back. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HoopError } from '../errors.js';
import { parsePolicy } from './document.js';

function refused(reviews: unknown, path: string, message: RegExp): void {
  assert.throws(
    () => parsePolicy({ reviews }),
    (e: unknown) => {
      assert.ok(e instanceof HoopError);
      assert.equal(e.code, 'INVALID_REQUEST');
      assert.ok(e.message.includes(`policy ${path}:`), e.message);
      assert.match(e.message, message);
      return true;
    },
    path,
  );
}

describe('policy reviews', () => {
  it('keeps require_all_groups and break_glass, and re-parses what it produced', () => {
    const policy = parsePolicy({
      reviews: {
        approvers: ['dba', 'sre', 'dba'],
        min_approvals: 2,
        require_all_groups: true,
        break_glass: ['oncall'],
        access: { max_duration: '2h', justification: 'optional' },
      },
    });
    assert.deepEqual(policy.reviews, {
      approvers: ['dba', 'sre'],
      min_approvals: 2,
      require_all_groups: true,
      break_glass: ['oncall'],
      access: { required: true, max_duration: '2h', justification: 'optional' },
    });
    assert.deepEqual(parsePolicy(JSON.parse(JSON.stringify(policy))), policy);
  });

  it('leaves both out when they are off or empty (older agents see the same document)', () => {
    const policy = parsePolicy({
      reviews: { approvers: ['dba'], require_all_groups: false, break_glass: [], statements: [] },
    });
    assert.deepEqual(Object.keys(policy.reviews ?? {}).sort(), [
      'approvers',
      'min_approvals',
      'statements',
    ]);
  });

  it('refuses what it cannot mean, naming the entry', () => {
    refused(
      { approvers: ['dba'], require_all_groups: 'yes' },
      'reviews.require_all_groups',
      /true or false/,
    );
    refused({ require_all_groups: true }, 'reviews.require_all_groups', /at least one group/);
    refused(
      { approvers: ['dba'], break_glass: ['oncall'] },
      'reviews.break_glass',
      /add reviews.access/,
    );
    refused({ break_glass: 'oncall', access: {} }, 'reviews.break_glass', /must be a list/);
    refused({ break_glass: ['on call'], access: {} }, 'reviews.break_glass[0]', /not a group name/);
    refused({ approvers: [''], access: {} }, 'reviews.approvers[0]', /not a group name/);
    refused({ breakglass: ['oncall'] }, 'reviews.breakglass', /unknown key.*break_glass/);
    refused({ min_approvals: 11 }, 'reviews.min_approvals', /1 to 10/);
  });
});
