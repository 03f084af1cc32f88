/**
 * A review as the API, the CLI and the webhook see it: the stored row with the connection's
 * approval rule applied (how many approvals it needs, which groups still have to approve). Never
 * a grant: only the requester gets that, added by the service.
 */
import type { Policy } from '@hoop/shared';
import type { ReviewRow, ReviewStatus } from '../store/schema.js';
import { approvalProgress, approvalRuleOf } from './approval-rule.js';

export interface ReviewView {
  readonly id: string;
  readonly kind: 'access' | 'statement';
  readonly status: ReviewStatus;
  readonly connection: string;
  readonly requester: string;
  readonly justification: string | null;
  readonly durationSeconds: number | null;
  readonly statement: string | null;
  readonly approvals: readonly {
    user: string;
    at: string;
    reason?: string;
    /** The approver groups the approval counts for. */
    groups: readonly string[];
  }[];
  readonly minApprovals: number;
  readonly approvers: readonly string[];
  /** Whether every approver group must approve (`reviews.require_all_groups`). */
  readonly requireAllGroups: boolean;
  /** Pending reviews: approver groups that have not approved yet (with `requireAllGroups`). */
  readonly missingGroups: readonly string[];
  /** Taken by a member of a break-glass group, approved at once without approvers. */
  readonly breakGlass: boolean;
  readonly createdAt: string;
  readonly expiresAt: string;
  readonly decidedAt: string | null;
  readonly decidedBy: string | null;
  readonly decisionReason: string | null;
  readonly grantId: string | null;
  /** The command an approver runs. */
  readonly approveWith: string;
}

export function viewOf(row: ReviewRow, policy: Policy | undefined): ReviewView {
  const rule = approvalRuleOf(policy);
  const progress = approvalProgress(rule, row.approvals);
  return {
    id: row.id,
    kind: row.kind,
    status: row.status,
    connection: row.connectionName,
    requester: row.requesterName,
    justification: row.justification,
    durationSeconds: row.durationSeconds,
    statement: row.statement,
    approvals: row.approvals.map((a) => ({
      user: a.user,
      at: a.at,
      ...(a.reason === undefined ? {} : { reason: a.reason }),
      groups: a.groups ?? [],
    })),
    minApprovals: rule.minApprovals,
    approvers: rule.groups,
    requireAllGroups: rule.requireAllGroups,
    missingGroups: row.status === 'pending' ? progress.missingGroups : [],
    breakGlass: row.breakGlass,
    createdAt: row.createdAt.toISOString(),
    expiresAt: row.expiresAt.toISOString(),
    decidedAt: row.decidedAt?.toISOString() ?? null,
    decidedBy: row.decidedBy,
    decisionReason: row.decisionReason,
    grantId: row.grantId,
    approveWith: `hoop reviews approve ${row.id}`,
  };
}
