/**
 * The broker's store: users and their api tokens, agents, connections (credentials encrypted at
 * rest) and sessions, over either database backend (database.ts). One class, so the rest of the
 * broker holds one handle; the work is done per resource in users.ts, agents.ts, connections.ts
 * and sessions.ts.
 *
 * Rules every method keeps:
 * - reads meant for API responses return records.ts objects: no token hash, no ciphertext;
 * - tokens are generated here and returned once; only their sha256 is stored;
 * - time comes from the injected clock, ids from `crypto.randomUUID()`;
 * - input is validated first (INVALID_REQUEST says what is wrong), lookups fail with the
 *   resource's NOT_FOUND code, and driver errors are converted once (context.ts `guard`).
 */
import {
  type AuditEvent,
  type Clock,
  HoopError,
  type Logger,
  type Policy,
  silentLogger,
} from '@hoop/shared';
import * as agents from './agents.js';
import * as audit from './audit.js';
import { BearerCache } from './bearer-cache.js';
import type { CreateConnectionInput } from './connections.js';
import * as connections from './connections.js';
import type { StoreContext } from './context.js';
import type { Database } from './database.js';
import { WriteSettler } from './group-commit.js';
import type {
  AgentInfo,
  AuthenticatedUser,
  ConnectionInfo,
  ResolvedConnection,
  SessionInfo,
  UserInfo,
  UserTokenInfo,
} from './records.js';
import { MASTER_KEY_BYTES } from './secrets.js';
import type { CreateSessionInput, EndSessionInput, ListSessionsOptions } from './sessions.js';
import * as sessions from './sessions.js';
import type {
  BootstrapOptions,
  BootstrapResult,
  CreateUserInput,
  CreateUserTokenOptions,
} from './users.js';
import * as users from './users.js';

export interface StoreOptions {
  logger?: Logger | undefined;
}

export class Store {
  private readonly ctx: StoreContext;

  /**
   * The database, master key, clock and logger, for modules that keep their own tables
   * (grants, identity, audit) beside this class instead of growing it.
   */
  get context(): StoreContext {
    return this.ctx;
  }

  /**
   * @param database from `openDatabase` (the caller closes it)
   * @param masterKey the 32-byte key from `loadMasterKey`
   * @param clock the source of every timestamp the store writes and compares
   */
  constructor(database: Database, masterKey: Buffer, clock: Clock, options: StoreOptions = {}) {
    if (masterKey.length !== MASTER_KEY_BYTES) {
      throw new HoopError('INTERNAL', `The master key must be ${MASTER_KEY_BYTES} bytes.`);
    }
    this.ctx = {
      db: database.db,
      masterKey,
      clock,
      logger: (options.logger ?? silentLogger).child({ component: 'store' }),
      exclusive: database.kind === 'pglite',
      changes: { connections: 0 },
      writes: new WriteSettler(),
      // Only this process writes an exclusive store, so it sees every change to a token.
      ...(database.kind === 'pglite' ? { bearers: new BearerCache() } : {}),
    };
  }

  // ── users and api tokens ──────────────────────────────────────────────────

  /**
   * First start: when there are no users at all, creates `admin` (role admin) with one api token,
   * the given one or a generated `hoop_pat_…`, and returns it. Afterwards does nothing. Safe when
   * several brokers start at once on one database.
   */
  bootstrap(options: BootstrapOptions = {}): Promise<BootstrapResult> {
    return users.bootstrap(this.ctx, options);
  }

  /**
   * The user a bearer token belongs to, when it is known, not revoked, not expired and its user is
   * not disabled; records the use (last_used_at). Undefined otherwise: callers answer
   * AUTH_INVALID_TOKEN.
   */
  authenticateUserToken(token: string): Promise<AuthenticatedUser | undefined> {
    return users.authenticateUserToken(this.ctx, token);
  }

  /** Creates a `hoop_pat_…` token for the user (NOT_FOUND if none); returned once, never stored. */
  createUserToken(
    userId: string,
    name: string,
    options: CreateUserTokenOptions = {},
  ): Promise<string> {
    return users.createUserToken(this.ctx, userId, name, options);
  }

  /** The user's tokens, newest last, without their hashes. */
  listUserTokens(userId: string): Promise<UserTokenInfo[]> {
    return users.listUserTokens(this.ctx, userId);
  }

  /** Revokes a token by id (NOT_FOUND if none); revoking again keeps the first time. */
  revokeUserToken(tokenId: string): Promise<UserTokenInfo> {
    return users.revokeUserToken(this.ctx, tokenId);
  }

  /** Creates a user (ALREADY_EXISTS on a taken name); give them a token with createUserToken. */
  createUser(input: CreateUserInput): Promise<UserInfo> {
    return users.createUser(this.ctx, input);
  }

  listUsers(): Promise<UserInfo[]> {
    return users.listUsers(this.ctx);
  }

  /** NOT_FOUND when there is no such user. */
  getUser(name: string): Promise<UserInfo> {
    return users.getUser(this.ctx, name);
  }

  /** A disabled user's tokens stop authenticating (they are kept, and work again on enable). */
  setUserDisabled(name: string, disabled: boolean): Promise<UserInfo> {
    return users.setUserDisabled(this.ctx, name, disabled);
  }

  // ── agents ────────────────────────────────────────────────────────────────

  /** Registers an agent (ALREADY_EXISTS on a taken name); its `hoop_at_…` token is returned once. */
  createAgent(name: string): Promise<{ agent: AgentInfo; token: string }> {
    return agents.createAgent(this.ctx, name);
  }

  /** The agent a `hoop_at_…` token belongs to, or undefined. */
  authenticateAgent(token: string): Promise<AgentInfo | undefined> {
    return agents.authenticateAgent(this.ctx, token);
  }

  /** All agents, by name. */
  listAgents(): Promise<AgentInfo[]> {
    return agents.listAgents(this.ctx);
  }

  /** AGENT_NOT_FOUND when there is no such agent. */
  getAgent(name: string): Promise<AgentInfo> {
    return agents.getAgent(this.ctx, name);
  }

  /**
   * Deletes an agent, after which its token no longer authenticates. Refused (INVALID_REQUEST,
   * naming them) while connections still use it; AGENT_NOT_FOUND when there is no such agent.
   */
  deleteAgent(name: string): Promise<void> {
    return agents.deleteAgent(this.ctx, name);
  }

  /** Records that the agent was seen now (tunnel connected, heartbeat). */
  touchAgent(id: string): Promise<void> {
    return agents.touchAgent(this.ctx, id);
  }

  // ── connections ───────────────────────────────────────────────────────────

  /**
   * Creates a connection on an existing agent (AGENT_NOT_FOUND otherwise) with at most one of a
   * password (stored encrypted) or a reference `env:NAME` (resolved by the agent).
   */
  createConnection(input: CreateConnectionInput): Promise<ConnectionInfo> {
    return connections.createConnection(this.ctx, input);
  }

  /** All connections, by name, without secrets. */
  listConnections(): Promise<ConnectionInfo[]> {
    return connections.listConnections(this.ctx);
  }

  /** CONNECTION_NOT_FOUND when there is no such connection. */
  getConnection(name: string): Promise<ConnectionInfo> {
    return connections.getConnection(this.ctx, name);
  }

  /** Deletes a connection (CONNECTION_NOT_FOUND if none); its past sessions keep its name. */
  deleteConnection(name: string): Promise<void> {
    return connections.deleteConnection(this.ctx, name);
  }

  /**
   * The connection with its credential usable by an agent: a stored password decrypted (a
   * SecretDecryptionError if it cannot be), or the reference for the agent to resolve. Only for
   * the open message to the owning agent: never put `target` in a response or a log line.
   */
  getConnectionPolicy(name: string): Promise<Policy> {
    return connections.getConnectionPolicy(this.ctx, name);
  }

  /** Validates (INVALID_REQUEST naming the bad entry) and stores a policy document. */
  setConnectionPolicy(name: string, document: unknown): Promise<Policy> {
    return connections.setConnectionPolicy(this.ctx, name, document);
  }

  appendAuditEvents(
    agentId: string,
    events: readonly AuditEvent[],
  ): Promise<{ stored: number; rejected: number }> {
    return audit.appendAuditEvents(this.ctx, agentId, events);
  }

  listSessionEvents(sessionId: string, limit?: number): Promise<audit.StoredAuditEvent[]> {
    return audit.listSessionEvents(this.ctx, sessionId, limit);
  }

  resolveConnectionTarget(name: string): Promise<ResolvedConnection> {
    return connections.resolveConnectionTarget(this.ctx, name);
  }

  // ── sessions ──────────────────────────────────────────────────────────────

  /**
   * Changes to connections made through this store so far (policy, tags, deletion): a cache of
   * `resolveConnectionTarget` results is stale once this moves.
   */
  connectionGeneration(): number {
    return this.ctx.changes?.connections ?? 0;
  }

  /** Records a session opening (status `open`, started now). */
  createSession(input: CreateSessionInput): Promise<SessionInfo> {
    return sessions.createSession(this.ctx, input);
  }

  /**
   * Ends an open session with its final status and byte counts. Ending a session that has already
   * ended changes nothing and returns it as it is (the first end wins); NOT_FOUND if none.
   */
  endSession(id: string, end: EndSessionInput): Promise<SessionInfo> {
    return sessions.endSession(this.ctx, id, end);
  }

  /** Ends several sessions with one statement; only sessions still open change. */
  endSessions(ends: readonly (EndSessionInput & { readonly id: string })[]): Promise<void> {
    return sessions.endSessions(this.ctx, ends);
  }

  /** Sessions, newest first. */
  listSessions(options: ListSessionsOptions = {}): Promise<SessionInfo[]> {
    return sessions.listSessions(this.ctx, options);
  }

  /** NOT_FOUND when there is no such session. */
  getSession(id: string): Promise<SessionInfo> {
    return sessions.getSession(this.ctx, id);
  }

  /**
   * At broker start: sessions still `open` belonged to a broker that is gone; marks them failed
   * with error code BROKER_RESTARTED and returns how many there were.
   */
  failOpenSessions(): Promise<number> {
    return sessions.failOpenSessions(this.ctx);
  }
}
