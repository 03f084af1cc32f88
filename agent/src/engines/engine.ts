/**
 * The engine interface: one implementation per protocol, looked up by connection type in the
 * registry. An engine terminates the client side of its protocol on `client` (bytes relayed from
 * the user's client through the tunnel), authenticates to the target itself with the resolved
 * credential, and relays. It never lets the target's credential reach the client.
 */
import type { Duplex } from 'node:stream';
import type { AuditSink, ConnectionTarget, Logger, Policy } from '@hoop/shared';

export interface ResolvedCredential {
  /** The target password, or undefined when the target needs none (trust). */
  readonly password: string | undefined;
}

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
}
