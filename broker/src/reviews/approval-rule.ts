/**
 * When a review is approved: at least `min_approvals` distinct approvers agreed, and, with
 * `require_all_groups`, every group in `approvers` has at least one approval from one of its
 * members. An approval counts for the approver groups its approver belonged to when approving;
 * an admin who is in none of them approves as an admin and satisfies no group.
 */
import type { Policy } from '@hoop/shared';

export interface ApprovalRule {
  readonly minApprovals: number;
  /** The approver groups. */
  readonly groups: readonly string[];
  readonly requireAllGroups: boolean;
}

/** An approval as the rule sees it: the approver groups it was given as. */
export interface CountedApproval {
  readonly groups?: readonly string[];
}

export interface ApprovalProgress {
  /** Distinct approvals so far. */
  readonly count: number;
  readonly needed: number;
  /** Groups that still need an approval from a member (empty unless `requireAllGroups`). */
  readonly missingGroups: readonly string[];
  readonly approved: boolean;
}

/** The rule of a connection's policy (none left: one approval from anyone who may approve). */
export function approvalRuleOf(policy: Policy | undefined): ApprovalRule {
  return {
    minApprovals: policy?.reviews?.min_approvals ?? 1,
    groups: policy?.reviews?.approvers ?? [],
    requireAllGroups: policy?.reviews?.require_all_groups === true,
  };
}

/** The approver groups `memberOf` approves as under `rule` (none for an admin outside them). */
export function approvingGroups(rule: ApprovalRule, memberOf: readonly string[]): string[] {
  return rule.groups.filter((g) => memberOf.includes(g));
}

export function approvalProgress(
  rule: ApprovalRule,
  approvals: readonly CountedApproval[],
): ApprovalProgress {
  const covered = new Set(approvals.flatMap((a) => a.groups ?? []));
  const missingGroups = rule.requireAllGroups ? rule.groups.filter((g) => !covered.has(g)) : [];
  return {
    count: approvals.length,
    needed: rule.minApprovals,
    missingGroups,
    approved: approvals.length >= rule.minApprovals && missingGroups.length === 0,
  };
}
