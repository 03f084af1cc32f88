/**
 * The one function through which the broker records what happens outside sessions: logins,
 * grants minted and revoked, admin changes. These go into the same hash-chained log as the
 * agents' session events (`store/audit.ts`), through the same serialized append.
 */
import type { Logger } from '@hoop/shared';
import { appendChained, type ChainInput } from '../store/audit.js';
import { nowOf, type StoreContext } from '../store/context.js';
import { brokerWrites, GroupCommit } from '../store/group-commit.js';

export type BrokerAuditType =
  | 'login'
  | 'login-failed'
  | 'grant-minted'
  | 'grant-revoked'
  | 'admin-change'
  | 'review-created'
  | 'review-approval'
  | 'review-decided'
  | 'review-break-glass'
  | 'review-consumed';

export interface BrokerAuditEvent {
  readonly type: BrokerAuditType;
  /** Who did it (user name), when known. */
  readonly actor?: string;
  /** What it was about (connection, grant id, user, …). */
  readonly subject?: string;
  readonly session?: string;
  /** Extra facts; never a secret or token. */
  readonly detail?: Readonly<Record<string, unknown>>;
}

export type AuditRecorder = (event: BrokerAuditEvent) => Promise<void>;

export function createAuditRecorder(ctx: StoreContext, logger: Logger): AuditRecorder {
  // Events recorded while an append runs go together in the next one (see GroupCommit).
  const appends = new GroupCommit<ChainInput>(
    (rows) => appendChained(ctx, rows).then(() => undefined),
    brokerWrites(ctx.writes),
  );
  return async (event) => {
    const at = nowOf(ctx);
    try {
      await appends.add({
        sessionId: event.session ?? null,
        agentId: null,
        seq: null,
        type: event.type,
        at,
        data: { ...event, at: at.getTime() },
      });
    } catch (err) {
      logger.error('could not record an audit event', { type: event.type, error: err });
      throw err;
    }
  };
}
