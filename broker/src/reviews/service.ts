/**
 * Just-in-time approvals. A connection whose policy says `reviews.access.required` gets no grant
 * on request: a review is created instead, approvers (members of one of the policy's `approvers`
 * groups, or admins, never the requester) approve or reject it, and once `min_approvals` distinct
 * approvers agree, the grant is minted for the requested window. The requester fetches it from
 * the review (signed again from the stored grant, never stored). Pending reviews expire; approved
 * ones can be revoked, which revokes the grant and closes its live sessions. With
 * `require_all_groups`, every approver group must also have approved (approval-rule.ts). A member
 * of a `break_glass` group may instead take access at once with a justification: the review is
 * created approved, in their name, and everyone is told loudly. Every step is an audit event and
 * a notification.
 */
import { randomUUID } from 'node:crypto';
import { HoopError, type Logger, type Policy } from '@hoop/shared';
import type { AuditRecorder } from '../audit/record.js';
import { MAX_REASON_LENGTH } from '../grants/claims.js';
import type { GrantService, MintedGrant } from '../grants/service.js';
import type { Caller } from '../identity/caller.js';
import { nowOf, type StoreContext } from '../store/context.js';
import {
  duePendingReviews,
  getReview,
  insertReview,
  listReviews,
  type NewReview,
  updateReviewIf,
} from '../store/reviews.js';
import type { ReviewApproval, ReviewRow, ReviewStatus } from '../store/schema.js';
import { type AccessRequest, checkAccessRequest, checkBreakGlass } from './access-request.js';
import { approvalProgress, approvalRuleOf, approvingGroups } from './approval-rule.js';
import { assertTransition } from './state.js';
import { type ReviewView, viewOf } from './view.js';

export type { AccessRequest } from './access-request.js';
export type { ReviewView } from './view.js';

export const DEFAULT_REVIEW_PENDING_TTL_SECONDS = 3600;
export const DEFAULT_MAX_PENDING_PER_REQUESTER = 20;

export interface ReviewServiceOptions {
  readonly ctx: StoreContext;
  readonly audit: AuditRecorder;
  readonly grants: GrantService;
  readonly logger: Logger;
  /** The connection's current policy (CONNECTION_NOT_FOUND when there is none). */
  readonly policyOf: (connection: string) => Promise<Policy>;
  /** Ends the live sessions of a grant; returns how many. */
  readonly terminateGrant: (grantId: string, error: HoopError) => number;
  /** How long a review may stay pending (default 1 h). */
  readonly pendingTtlSeconds?: number;
  /** Bound on one requester's pending reviews (INVALID_REQUEST past it). */
  readonly maxPendingPerRequester?: number;
  /** Told about every created and decided review (webhook); must not throw. */
  readonly notify?: (event: ReviewNotification) => void;
}

export interface ReviewNotification {
  readonly event: 'review.created' | 'review.decided';
  readonly review: ReviewView;
}

/** A break-glass review, approved, with its grant (for the requester, once). */
export interface BreakGlassAccess {
  readonly review: ReviewView;
  readonly grant: MintedGrant;
}

type Actor = Pick<Caller, 'userId' | 'name' | 'role' | 'groups'>;

export class ReviewService {
  private readonly pendingTtlSeconds: number;
  private readonly maxPending: number;

  constructor(private readonly options: ReviewServiceOptions) {
    this.pendingTtlSeconds = options.pendingTtlSeconds ?? DEFAULT_REVIEW_PENDING_TTL_SECONDS;
    this.maxPending = options.maxPendingPerRequester ?? DEFAULT_MAX_PENDING_PER_REQUESTER;
    if (!(this.pendingTtlSeconds > 0) || !(this.maxPending > 0)) {
      throw new HoopError('USAGE', 'review limits must be positive');
    }
  }

  private get ctx(): StoreContext {
    return this.options.ctx;
  }

  /** Whether opening `connection` needs an approved access review first. */
  static accessRequired(policy: Policy): boolean {
    return policy.reviews?.access?.required === true;
  }

  /** Creates a pending access review (the caller already may `connect`). */
  async requestAccess(caller: Actor, request: AccessRequest): Promise<ReviewView> {
    const policy = await this.options.policyOf(request.connection);
    const { justification, durationSeconds } = checkAccessRequest(policy, request);
    await this.assertRoomFor(caller.userId);
    return this.createPending(
      {
        kind: 'access',
        connectionName: request.connection,
        requesterId: caller.userId,
        requesterName: caller.name,
        justification: justification ?? null,
        durationSeconds,
      },
      policy,
      {
        actor: caller.name,
        detail: {
          kind: 'access',
          connection: request.connection,
          durationSeconds,
          ...(justification === undefined ? {} : { justification }),
        },
      },
    );
  }

  /**
   * Break-glass: a member of one of the policy's `break_glass` groups takes access at once, with
   * a justification. The grant is minted, the review is stored approved (decided by the
   * requester, marked break-glass), `review-break-glass` and `review-decided` are recorded and
   * the webhook is told. Approvers can still revoke it.
   */
  async breakGlass(caller: Actor, request: AccessRequest): Promise<BreakGlassAccess> {
    const policy = await this.options.policyOf(request.connection);
    const checked = checkBreakGlass(policy, caller, request);
    const now = nowOf(this.ctx);
    const grant = await this.options.grants.mint({
      subject: { userId: caller.userId, name: caller.name },
      connection: request.connection,
      actions: ['connect'],
      via: 'review',
      ttlSeconds: checked.durationSeconds,
      reason: `break-glass: ${checked.justification}`.slice(0, MAX_REASON_LENGTH),
      actor: caller.name,
    });
    const row = await insertReview(this.ctx, {
      id: randomUUID(),
      kind: 'access',
      connectionName: request.connection,
      requesterId: caller.userId,
      requesterName: caller.name,
      justification: checked.justification,
      durationSeconds: checked.durationSeconds,
      status: 'approved',
      approvals: [],
      breakGlass: true,
      decidedBy: caller.name,
      decisionReason: checked.justification,
      createdAt: now,
      decidedAt: now,
      expiresAt: now,
      grantId: grant.id,
    });
    await this.options.audit({
      type: 'review-break-glass',
      actor: caller.name,
      subject: row.id,
      detail: {
        connection: request.connection,
        durationSeconds: checked.durationSeconds,
        justification: checked.justification,
        groups: checked.groups,
        grant: grant.id,
      },
    });
    await this.decided(row, policy, caller.name, checked.justification, { breakGlass: true });
    return { review: viewOf(row, policy), grant };
  }

  /**
   * Creates a pending statement review for a statement an agent holds in `session` (called by
   * the hub; the requester is the session's user).
   */
  async requestStatement(request: {
    readonly session: string;
    readonly connection: string;
    readonly userId: string;
    readonly userName: string;
    readonly statement: string;
  }): Promise<ReviewView> {
    const policy = await this.options.policyOf(request.connection);
    await this.assertRoomFor(request.userId);
    return this.createPending(
      {
        kind: 'statement',
        connectionName: request.connection,
        requesterId: request.userId,
        requesterName: request.userName,
        statement: request.statement,
        sessionId: request.session,
      },
      policy,
      {
        actor: request.userName,
        session: request.session,
        detail: {
          kind: 'statement',
          connection: request.connection,
          statement: request.statement.slice(0, 4096),
        },
      },
    );
  }

  /** Stores a pending review, records `review-created`, notifies the webhook. */
  private async createPending(
    fields: Omit<NewReview, 'id' | 'status' | 'approvals' | 'createdAt' | 'expiresAt'>,
    policy: Policy,
    audit: { actor: string; session?: string; detail: Record<string, unknown> },
  ): Promise<ReviewView> {
    const now = nowOf(this.ctx);
    const row = await insertReview(this.ctx, {
      ...fields,
      id: randomUUID(),
      status: 'pending',
      approvals: [],
      createdAt: now,
      expiresAt: new Date(now.getTime() + this.pendingTtlSeconds * 1000),
    });
    await this.options.audit({
      type: 'review-created',
      actor: audit.actor,
      subject: row.id,
      ...(audit.session === undefined ? {} : { session: audit.session }),
      detail: audit.detail,
    });
    const view = viewOf(row, policy);
    this.notify('review.created', view);
    return view;
  }

  private async assertRoomFor(userId: string): Promise<void> {
    const pending = await listReviews(this.ctx, {
      status: 'pending',
      requesterId: userId,
      limit: this.maxPending + 1,
    });
    if (pending.length >= this.maxPending) {
      throw new HoopError(
        'INVALID_REQUEST',
        `you have ${pending.length} pending reviews, the most one person may have`,
        { hint: 'Wait for a decision, or let old ones expire.' },
      );
    }
  }

  /** One review, for its requester, its approvers and admins; NOT_FOUND for anyone else. */
  async show(caller: Actor, id: string): Promise<ReviewView> {
    const { row, policy } = await this.visible(caller, id);
    return viewOf(row, policy);
  }

  /**
   * The requester's grant of an approved access review, signed again from the stored grant; the
   * review itself otherwise.
   */
  async showWithGrant(
    caller: Actor,
    id: string,
  ): Promise<ReviewView & { grant?: { id: string; grant: string; expiresAt: string } }> {
    const { row, policy } = await this.visible(caller, id);
    const view = viewOf(row, policy);
    if (
      row.kind === 'access' &&
      row.status === 'approved' &&
      row.grantId !== null &&
      row.requesterId === caller.userId
    ) {
      try {
        const g = await this.options.grants.reissue(row.grantId);
        return {
          ...view,
          grant: { id: g.id, grant: g.grant, expiresAt: new Date(g.expiresAt).toISOString() },
        };
      } catch (err) {
        // Expired or revoked since: the review shows it, there is no grant to give.
        if (err instanceof HoopError && err.code.startsWith('GRANT_')) return view;
        throw err;
      }
    }
    return view;
  }

  /** Reviews the caller may see: everything for admins; their own and those they may approve. */
  async list(
    caller: Actor,
    options: { status?: ReviewStatus; limit?: number } = {},
  ): Promise<ReviewView[]> {
    await this.expireDue();
    const rows = await listReviews(this.ctx, options);
    const policies = new Map<string, Policy | undefined>();
    const out: ReviewView[] = [];
    for (const row of rows) {
      if (!policies.has(row.connectionName)) {
        policies.set(row.connectionName, await this.policyOrUndefined(row.connectionName));
      }
      const policy = policies.get(row.connectionName);
      if (row.requesterId === caller.userId || mayApprove(caller, policy)) {
        out.push(viewOf(row, policy));
      }
    }
    return out;
  }

  async approve(caller: Actor, id: string, reason?: string): Promise<ReviewView> {
    const text = checkReason(reason);
    for (let attempt = 0; attempt < 5; attempt++) {
      const { row, policy } = await this.decidable(caller, id, 'approved');
      const rule = approvalRuleOf(policy);
      if (row.approvals.some((a) => a.userId === caller.userId)) {
        const missing = approvalProgress(rule, row.approvals).missingGroups;
        throw new HoopError('INVALID_REQUEST', `you already approved review ${id}`, {
          hint:
            `It needs approvals from ${rule.minApprovals} different approvers` +
            `${missing.length === 0 ? '' : `, including a member of ${missing.join(', ')}`}.`,
        });
      }
      const approval: ReviewApproval = {
        user: caller.name,
        userId: caller.userId,
        at: nowOf(this.ctx).toISOString(),
        ...(text === undefined ? {} : { reason: text }),
        groups: approvingGroups(rule, caller.groups),
      };
      const approvals = [...row.approvals, approval];
      const progress = approvalProgress(rule, approvals);
      const done = progress.approved;
      // The grant is minted before the review turns approved, so an approved access review
      // always names its grant (no window where a requester sees approved without one).
      const grantId = done && row.kind === 'access' ? await this.mintFor(row, caller) : undefined;
      const updated = await updateReviewIf(
        this.ctx,
        id,
        { status: 'pending', approvals: row.approvals },
        done
          ? {
              approvals,
              status: 'approved',
              decidedAt: nowOf(this.ctx),
              decidedBy: caller.name,
              ...(grantId === undefined ? {} : { grantId }),
            }
          : { approvals },
      );
      if (updated === undefined) {
        // Someone else changed it first: withdraw our grant, look again.
        if (grantId !== undefined) await this.withdraw(grantId, row, caller);
        continue;
      }
      await this.options.audit({
        type: 'review-approval',
        actor: caller.name,
        subject: id,
        detail: {
          connection: row.connectionName,
          requester: row.requesterName,
          approvals: approvals.length,
          needed: rule.minApprovals,
          groups: approval.groups,
          ...(progress.missingGroups.length === 0 ? {} : { missingGroups: progress.missingGroups }),
          ...(text === undefined ? {} : { reason: text }),
        },
      });
      if (done) await this.decided(updated, policy, caller.name, undefined);
      return viewOf(updated, policy);
    }
    throw new HoopError('INTERNAL', `review ${id} kept changing; try again`);
  }

  async reject(caller: Actor, id: string, reason?: string): Promise<ReviewView> {
    const text = checkReason(reason);
    const { policy } = await this.decidable(caller, id, 'rejected');
    const updated = await updateReviewIf(
      this.ctx,
      id,
      { status: 'pending' },
      {
        status: 'rejected',
        decidedAt: nowOf(this.ctx),
        decidedBy: caller.name,
        decisionReason: text ?? null,
      },
    );
    if (updated === undefined) return this.reject(caller, id, reason);
    await this.decided(updated, policy, caller.name, text);
    return viewOf(updated, policy);
  }

  /** Ends an approved access window early: the grant is revoked and its sessions close. */
  async revoke(
    caller: Actor,
    id: string,
    reason?: string,
  ): Promise<ReviewView & { sessionsEnded: number }> {
    const text = checkReason(reason);
    const { row, policy } = await this.visible(caller, id);
    if (row.requesterId !== caller.userId && !mayApprove(caller, policy)) {
      throw new HoopError('AUTH_FORBIDDEN', `${caller.name} may not revoke review ${id}`, {
        hint: 'Its requester, its approvers and admins may.',
      });
    }
    if (row.kind !== 'access') {
      throw new HoopError(
        'INVALID_REQUEST',
        `review ${id} is for one statement; only access windows can be revoked`,
      );
    }
    assertTransition(id, row.status, 'revoked');
    const updated = await updateReviewIf(
      this.ctx,
      id,
      { status: 'approved' },
      {
        status: 'revoked',
        decidedAt: nowOf(this.ctx),
        decidedBy: caller.name,
        decisionReason: text ?? null,
      },
    );
    if (updated === undefined) return this.revoke(caller, id, reason);
    let sessionsEnded = 0;
    if (row.grantId !== null) {
      // Revoked in the requester's name (it is their grant); the audit names who did it.
      await this.options.grants.revoke(row.grantId, {
        userId: row.requesterId,
        name: caller.name,
        role: 'user',
      });
      sessionsEnded = this.options.terminateGrant(
        row.grantId,
        new HoopError('GRANT_REVOKED', `the access review for ${row.connectionName} was revoked`),
      );
    }
    await this.decided(updated, policy, caller.name, text, { sessionsEnded });
    return { ...viewOf(updated, policy), sessionsEnded };
  }

  /** Marks every pending review past its time expired (sweep; reads also do it). */
  async expireDue(): Promise<number> {
    const due = await duePendingReviews(this.ctx, nowOf(this.ctx));
    let n = 0;
    for (const row of due) if (await this.expire(row)) n++;
    return n;
  }

  // ── internals ─────────────────────────────────────────────────────────────

  private async expire(row: ReviewRow): Promise<ReviewRow | undefined> {
    const updated = await updateReviewIf(
      this.ctx,
      row.id,
      { status: 'pending' },
      { status: 'expired', decidedAt: nowOf(this.ctx) },
    );
    if (updated === undefined) return undefined;
    const policy = await this.policyOrUndefined(row.connectionName);
    await this.decided(updated, policy, 'hoop', 'no decision in time');
    return updated;
  }

  private async mintFor(row: ReviewRow, caller: Actor): Promise<string> {
    const minted = await this.options.grants.mint({
      subject: { userId: row.requesterId, name: row.requesterName },
      connection: row.connectionName,
      actions: ['connect'],
      via: 'review',
      ...(row.durationSeconds === null ? {} : { ttlSeconds: row.durationSeconds }),
      ...(row.justification === null ? {} : { reason: row.justification }),
      actor: caller.name,
    });
    return minted.id;
  }

  private async withdraw(grantId: string, row: ReviewRow, caller: Actor): Promise<void> {
    await this.options.grants.revoke(grantId, {
      userId: row.requesterId,
      name: caller.name,
      role: 'user',
    });
  }

  private async decided(
    row: ReviewRow,
    policy: Policy | undefined,
    actor: string,
    reason: string | undefined,
    extra: Record<string, unknown> = {},
  ): Promise<void> {
    await this.options.audit({
      type: 'review-decided',
      actor,
      subject: row.id,
      detail: {
        kind: row.kind,
        status: row.status,
        connection: row.connectionName,
        requester: row.requesterName,
        approvals: row.approvals.map((a) => a.user),
        ...(row.grantId === null ? {} : { grant: row.grantId }),
        ...(reason === undefined ? {} : { reason }),
        ...extra,
      },
    });
    this.notify('review.decided', viewOf(row, policy));
  }

  private notify(event: ReviewNotification['event'], review: ReviewView): void {
    try {
      this.options.notify?.({ event, review });
    } catch (err) {
      this.options.logger.warn('review notification failed', { review: review.id, error: err });
    }
  }

  private async policyOrUndefined(connection: string): Promise<Policy | undefined> {
    try {
      return await this.options.policyOf(connection);
    } catch {
      return undefined;
    }
  }

  /** The review (expired if its time ran out) when the caller may see it; NOT_FOUND otherwise. */
  private async visible(
    caller: Actor,
    id: string,
  ): Promise<{ row: ReviewRow; policy: Policy | undefined }> {
    let row = await getReview(this.ctx, id);
    const policy = row === undefined ? undefined : await this.policyOrUndefined(row.connectionName);
    if (row === undefined || (row.requesterId !== caller.userId && !mayApprove(caller, policy))) {
      throw new HoopError('NOT_FOUND', `no review with id ${id} that you may see`, {
        hint: 'List reviews with `hoop reviews list`.',
      });
    }
    if (row.status === 'pending' && row.expiresAt.getTime() <= this.ctx.clock.now()) {
      row = (await this.expire(row)) ?? (await getReview(this.ctx, id)) ?? row;
    }
    return { row, policy };
  }

  /** The pending review the caller may decide: an approver, and not its requester. */
  private async decidable(
    caller: Actor,
    id: string,
    to: ReviewStatus,
  ): Promise<{ row: ReviewRow; policy: Policy | undefined }> {
    const { row, policy } = await this.visible(caller, id);
    if (row.requesterId === caller.userId) {
      throw new HoopError('AUTH_FORBIDDEN', 'you cannot approve or reject your own review', {
        hint: 'Ask another approver to run `hoop reviews approve ID`.',
      });
    }
    if (!mayApprove(caller, policy)) {
      throw new HoopError(
        'AUTH_FORBIDDEN',
        `${caller.name} is not an approver for ${row.connectionName}`,
        {
          hint: `Approvers are members of: ${(policy?.reviews?.approvers ?? []).join(', ') || '(admins only)'}.`,
        },
      );
    }
    assertTransition(id, row.status, to);
    return { row, policy };
  }
}

/** Admins always; others when one of their groups is one of the policy's approver groups. */
export function mayApprove(caller: Actor, policy: Policy | undefined): boolean {
  if (caller.role === 'admin') return true;
  const groups = policy?.reviews?.approvers ?? [];
  return caller.groups.some((g) => groups.includes(g));
}

function checkReason(reason: string | undefined): string | undefined {
  const text = reason?.trim() || undefined;
  if (text !== undefined && text.length > MAX_REASON_LENGTH) {
    throw new HoopError('INVALID_REQUEST', `reason is longer than ${MAX_REASON_LENGTH} characters`);
  }
  return text;
}
