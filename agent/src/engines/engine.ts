/**
 * The engine interface: one implementation per protocol, looked up by connection type in the
 * registry. An engine terminates the client side of its protocol on `client` (bytes relayed from
 * the user's client through the tunnel), authenticates to the target itself with the resolved
 * credential, and relays. It never lets the target's credential reach the client.
 */
import type { Duplex } from 'node:stream';
import type { AuditSink, ConnectionTarget, ErrorCode, Logger, Policy } from '@hoop/shared';

export interface ResolvedCredential {
  /** The target password, or undefined when the target needs none (trust). */
  readonly password: string | undefined;
}

/**
 * What an engine learns about a statement held for approval. A refusal's `code` says why:
 * PENDING_APPROVAL (the client asked not to wait), REVIEW_NOT_APPROVED (rejected, expired, no
 * decision in time), REVIEW_CONSUMED / REVIEW_MISMATCH (an approved review that cannot be used
 * for it), or what kept the agent from asking.
 */
export type StatementDecision =
  | { readonly approved: true; readonly review: string }
  | {
      readonly approved: false;
      readonly review?: string;
      readonly message: string;
      readonly code: ErrorCode;
    };

/**
 * Asks approvers about one statement (a statement review at the broker). `onPending` is called
 * once the review exists, with its id (so the engine can tell the client what it waits for).
 * Resolves with the decision; a timeout, a lost tunnel or an aborted session is a refusal.
 */
export type StatementReviewer = (
  statement: string,
  onPending: (review: string) => void,
  signal: AbortSignal,
) => Promise<StatementDecision>;

export interface EngineSession {
  /** Unique id of this session (from the broker). */
  readonly sessionId: string;
  readonly target: ConnectionTarget;
  readonly credential: ResolvedCredential;
  /** The user's client: read what it sends, write what it should receive. */
  readonly client: Duplex;
  readonly logger: Logger;
  /** Aborted when the session must end (tunnel gone, grant revoked, agent shutting down). */
  readonly signal: AbortSignal;
  /**
   * The connection's validated policy. An engine that cannot enforce any part of it must refuse
   * the session (HoopError POLICY_UNENFORCEABLE, and the protocol's own error to the client).
   */
  readonly policy: Policy;
  /** Where the engine sends audit events (statements, denials, masking summaries). */
  readonly audit: AuditSink;
  /** Statement reviews through the broker; absent when the agent cannot ask (fail closed). */
  readonly reviewStatement?: StatementReviewer;
  /**
   * Resolves once the broker has stored the session's row (at once when the broker stored it
   * before opening the session). Until then the engine may dial the target and log in to it with
   * the client's startup, but passes nothing else between client and target: no greeting to the
   * client, no client bytes to the target, no cancel request. Rejects when the session ends
   * first (the row could not be stored).
   */
  readonly admitted: Promise<void>;
}

export interface Engine {
  readonly type: ConnectionTarget['type'];
  /**
   * Serves one client connection until either side closes. Resolves when the session is over;
   * errors are reported to the client in the protocol's own form before resolving, and the
   * promise rejects only with a HoopError describing why the session failed.
   */
  serve(session: EngineSession): Promise<void>;
  /** Releases engine-wide resources (e.g. cancel-key table). */
  close?(): Promise<void>;
  /**
   * A protocol's cancel request that reached the agent on a connection of its own (the direct
   * endpoint): passed to the target of the session holding the key; an unknown key is ignored.
   */
  cancel?(processId: number, secretKey: Buffer): Promise<void>;
}
