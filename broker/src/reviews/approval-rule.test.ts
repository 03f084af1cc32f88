/** The approval rule: distinct approvals, and with require_all_groups one from every group. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parsePolicy } from '@hoop/shared';
import { approvalProgress, approvalRuleOf, approvingGroups } from './approval-rule.js';

const rule = (reviews: Record<string, unknown>) =>
  approvalRuleOf(parsePolicy({ reviews: { access: {}, ...reviews } }));

describe('approval rule', () => {
  it('without require_all_groups: min_approvals distinct approvals, from any approver group', () => {
    const r = rule({ approvers: ['dba', 'sre'], min_approvals: 2 });
    assert.deepEqual(approvalProgress(r, [{ groups: ['dba'] }]), {
      count: 1,
      needed: 2,
      missingGroups: [],
      approved: false,
    });
    assert.equal(approvalProgress(r, [{ groups: ['dba'] }, { groups: ['dba'] }]).approved, true);
    // An admin's approval (no group) counts towards min_approvals.
    assert.equal(approvalProgress(r, [{ groups: [] }, { groups: ['sre'] }]).approved, true);
  });

  it('with require_all_groups: every group needs one of its members, whatever the count', () => {
    const r = rule({ approvers: ['dba', 'sre'], min_approvals: 1, require_all_groups: true });
    const one = approvalProgress(r, [{ groups: ['dba'] }]);
    assert.equal(one.approved, false);
    assert.deepEqual(one.missingGroups, ['sre']);
    assert.equal(approvalProgress(r, [{ groups: ['dba'] }, { groups: ['sre'] }]).approved, true);
    // One approver in both groups covers both.
    assert.equal(approvalProgress(r, [{ groups: ['dba', 'sre'] }]).approved, true);
    // Admins outside the groups, or approvals stored without groups, cover none.
    assert.deepEqual(approvalProgress(r, [{ groups: [] }, {}]).missingGroups, ['dba', 'sre']);
  });

  it('with require_all_groups, min_approvals still counts distinct approvals', () => {
    const r = rule({ approvers: ['dba', 'sre'], min_approvals: 3, require_all_groups: true });
    const covered = approvalProgress(r, [{ groups: ['dba'] }, { groups: ['sre'] }]);
    assert.deepEqual(covered.missingGroups, []);
    assert.equal(covered.approved, false);
    assert.equal(
      approvalProgress(r, [{ groups: ['dba'] }, { groups: ['sre'] }, { groups: [] }]).approved,
      true,
    );
  });

  it('an approver approves as the approver groups they are in', () => {
    const r = rule({ approvers: ['dba', 'sre'] });
    assert.deepEqual(approvingGroups(r, ['dev', 'sre', 'dba']), ['dba', 'sre']);
    assert.deepEqual(approvingGroups(r, ['admins']), []);
  });

  it('no policy: one approval', () => {
    const r = approvalRuleOf(undefined);
    assert.equal(approvalProgress(r, []).approved, false);
    assert.equal(approvalProgress(r, [{}]).approved, true);
  });
});
