/**
 * The broker's relational schema, in one place. drizzle-kit reads this file to generate the SQL
 * migrations in the top-level `migrations/` folder (`npm run db:generate`); the same migrations run
 * on embedded PGlite and on PostgreSQL. Keep this file free of relative imports: drizzle-kit loads
 * it directly from source.
 *
 * Conventions: text UUID primary keys (`crypto.randomUUID()` in the store), snake_case columns,
 * `timestamp with time zone` everywhere, timestamps written by the store from the injected clock
 * (no database defaults for time). Tokens are stored only as sha256 hex digests; connection
 * passwords only as AES-256-GCM ciphertext.
 */
import { sql } from 'drizzle-orm';
import {
  bigint,
  boolean,
  check,
  index,
  integer,
  jsonb,
  pgTable,
  text,
  timestamp,
  uniqueIndex,
} from 'drizzle-orm/pg-core';

export const userRoles = ['admin', 'user'] as const;
export const userKinds = ['person', 'service'] as const;
export type UserRole = (typeof userRoles)[number];

export const sessionStatuses = ['open', 'closed', 'failed'] as const;
export type SessionStatus = (typeof sessionStatuses)[number];

export const tlsModes = ['disable', 'prefer', 'require'] as const;

const createdAt = () => timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull();

export const users = pgTable(
  'users',
  {
    id: text('id').primaryKey(),
    name: text('name').notNull().unique('users_name_unique'),
    role: text('role', { enum: userRoles }).notNull(),
    disabled: boolean('disabled').notNull().default(false),
    /** 'person' (local or OIDC) or 'service' (a service account, used through API keys). */
    kind: text('kind', { enum: userKinds }).notNull().default('person'),
    /** Groups this identity belongs to (for OIDC users: the groups claim of the last login). */
    groups: jsonb('groups').$type<string[]>().notNull().default([]),
    /** scrypt hash (`scrypt$N$r$p$salt$hash`) for local users; null for others. */
    passwordHash: text('password_hash'),
    oidcIssuer: text('oidc_issuer'),
    oidcSubject: text('oidc_subject'),
    createdAt: createdAt(),
  },
  (t) => [
    check('users_role_check', sql`${t.role} in ('admin', 'user')`),
    uniqueIndex('users_oidc_identity_idx').on(t.oidcIssuer, t.oidcSubject),
  ],
);

/** Which groups may do what on which connections (by name or by tag). */
export const accessRules = pgTable(
  'access_rules',
  {
    id: text('id').primaryKey(),
    groupName: text('group_name').notNull(),
    connectionName: text('connection_name'),
    tag: text('tag'),
    /** e.g. ['connect', 'exec'] */
    actions: jsonb('actions').$type<string[]>().notNull(),
    createdAt: createdAt(),
  },
  (t) => [
    index('access_rules_group_idx').on(t.groupName),
    check('access_rules_target_check', sql`(${t.connectionName} is null) <> (${t.tag} is null)`),
  ],
);

/** CI identity trust: an external OIDC JWT matching these maps to a service account. */
export const trustPolicies = pgTable('trust_policies', {
  id: text('id').primaryKey(),
  name: text('name').notNull().unique('trust_policies_name_unique'),
  issuer: text('issuer').notNull(),
  audience: text('audience').notNull(),
  /** Glob on the token's `sub` (`*` matches any run of characters). */
  subjectPattern: text('subject_pattern').notNull(),
  /** Claim name → required value (glob). */
  claims: jsonb('claims').$type<Record<string, string>>().notNull().default({}),
  serviceAccountId: text('service_account_id')
    .notNull()
    .references(() => users.id, { onDelete: 'cascade' }),
  createdAt: createdAt(),
});

/** Grants minted by the broker (the JWT itself is never stored). */
export const grants = pgTable(
  'grants',
  {
    /** The JWT's jti. */
    id: text('id').primaryKey(),
    userId: text('user_id').notNull(),
    subjectName: text('subject_name').notNull(),
    connectionName: text('connection_name').notNull(),
    actions: jsonb('actions').$type<string[]>().notNull(),
    reason: text('reason'),
    /** How the subject proved itself: token, apikey, oidc, ci, session. */
    via: text('via').notNull(),
    issuedAt: timestamp('issued_at', { withTimezone: true, mode: 'date' }).notNull(),
    expiresAt: timestamp('expires_at', { withTimezone: true, mode: 'date' }).notNull(),
    revokedAt: timestamp('revoked_at', { withTimezone: true, mode: 'date' }),
  },
  (t) => [index('grants_user_idx').on(t.userId), index('grants_expires_idx').on(t.expiresAt)],
);

/** Grant-signing keys; private halves encrypted with the master key. */
export const signingKeys = pgTable('signing_keys', {
  kid: text('kid').primaryKey(),
  algorithm: text('algorithm').notNull(),
  publicJwk: jsonb('public_jwk').notNull(),
  privateCiphertext: text('private_ciphertext').notNull(),
  createdAt: createdAt(),
  /** Set when rotated out: still published in the JWKS until its grants have expired. */
  retiredAt: timestamp('retired_at', { withTimezone: true, mode: 'date' }),
});

/** Pending OIDC logins (authorization-code + PKCE), consumed once. */
export const oidcLogins = pgTable('oidc_logins', {
  state: text('state').primaryKey(),
  nonce: text('nonce').notNull(),
  codeVerifier: text('code_verifier').notNull(),
  redirectUri: text('redirect_uri').notNull(),
  createdAt: createdAt(),
  expiresAt: timestamp('expires_at', { withTimezone: true, mode: 'date' }).notNull(),
});

export const apiTokens = pgTable(
  'api_tokens',
  {
    id: text('id').primaryKey(),
    userId: text('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    tokenHash: text('token_hash').notNull().unique('api_tokens_token_hash_unique'),
    name: text('name').notNull(),
    createdAt: createdAt(),
    lastUsedAt: timestamp('last_used_at', { withTimezone: true, mode: 'date' }),
    expiresAt: timestamp('expires_at', { withTimezone: true, mode: 'date' }),
    revokedAt: timestamp('revoked_at', { withTimezone: true, mode: 'date' }),
  },
  (t) => [index('api_tokens_user_id_idx').on(t.userId)],
);

export const agents = pgTable('agents', {
  id: text('id').primaryKey(),
  name: text('name').notNull().unique('agents_name_unique'),
  tokenHash: text('token_hash').notNull().unique('agents_token_hash_unique'),
  createdAt: createdAt(),
  lastSeenAt: timestamp('last_seen_at', { withTimezone: true, mode: 'date' }),
});

export const connections = pgTable(
  'connections',
  {
    id: text('id').primaryKey(),
    name: text('name').notNull().unique('connections_name_unique'),
    agentId: text('agent_id')
      .notNull()
      .references(() => agents.id, { onDelete: 'restrict' }),
    type: text('type').notNull(),
    host: text('host').notNull(),
    port: integer('port').notNull(),
    username: text('username').notNull(),
    databaseName: text('database_name').notNull(),
    tls: text('tls', { enum: tlsModes }).notNull().default('prefer'),
    /** `v1:<iv>:<tag>:<ciphertext>` from secrets.ts; never returned by API-facing reads. */
    secretCiphertext: text('secret_ciphertext'),
    /** A reference the agent resolves locally, e.g. `env:PGPASS`. */
    secretRef: text('secret_ref'),
    /** The connection's policy document (validated JSON); null = the default policy. */
    policy: jsonb('policy'),
    tags: jsonb('tags').$type<string[]>().notNull().default([]),
    /** Cap on grant lifetime for this connection, in seconds; null = the broker default cap. */
    maxGrantTtlSeconds: integer('max_grant_ttl_seconds'),
    createdAt: createdAt(),
    updatedAt: timestamp('updated_at', { withTimezone: true, mode: 'date' }).notNull(),
  },
  (t) => [
    index('connections_agent_id_idx').on(t.agentId),
    check('connections_port_check', sql`${t.port} between 1 and 65535`),
    check('connections_tls_check', sql`${t.tls} in ('disable', 'prefer', 'require')`),
    check('connections_secret_check', sql`${t.secretCiphertext} is null or ${t.secretRef} is null`),
  ],
);

export const sessions = pgTable(
  'sessions',
  {
    id: text('id').primaryKey(),
    connectionId: text('connection_id').references(() => connections.id, {
      onDelete: 'set null',
    }),
    /** Kept so the history still names the connection after it is deleted. */
    connectionName: text('connection_name').notNull(),
    /** Not foreign keys on purpose: the history outlives users and agents. */
    userId: text('user_id'),
    agentId: text('agent_id'),
    status: text('status', { enum: sessionStatuses }).notNull(),
    errorCode: text('error_code'),
    startedAt: timestamp('started_at', { withTimezone: true, mode: 'date' }).notNull(),
    endedAt: timestamp('ended_at', { withTimezone: true, mode: 'date' }),
    bytesUp: bigint('bytes_up', { mode: 'number' }).notNull().default(0),
    bytesDown: bigint('bytes_down', { mode: 'number' }).notNull().default(0),
    client: text('client'),
  },
  (t) => [
    index('sessions_started_at_idx').on(t.startedAt),
    index('sessions_status_idx').on(t.status),
    check('sessions_status_check', sql`${t.status} in ('open', 'closed', 'failed')`),
  ],
);

/**
 * Audit events as the agents sent them (statements, denials, masking summaries, session
 * start/end). Append-only; the durable, hash-chained log replaces this in the audit issue.
 */
export const auditEvents = pgTable(
  'audit_events',
  {
    id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
    /** Null for events that belong to no session (logins, grants, admin changes). */
    sessionId: text('session_id'),
    /** Null for broker-produced events. */
    agentId: text('agent_id'),
    /** The agent's per-session sequence number; (session, seq) is unique, so redelivery is idempotent. */
    seq: bigint('seq', { mode: 'number' }),
    type: text('type').notNull(),
    at: timestamp('at', { withTimezone: true, mode: 'date' }).notNull(),
    receivedAt: timestamp('received_at', { withTimezone: true, mode: 'date' }).notNull(),
    data: jsonb('data').notNull(),
    /** Hash chain: sha256 hex of prev_hash and this row's canonical content. */
    prevHash: text('prev_hash'),
    hash: text('hash'),
  },
  (t) => [
    index('audit_events_session_idx').on(t.sessionId, t.id),
    index('audit_events_at_idx').on(t.at),
    uniqueIndex('audit_events_session_seq_idx').on(t.sessionId, t.seq),
  ],
);

/** Session recordings (e.g. asciicast lines, statement timelines), chunked. */
export const recordingChunks = pgTable(
  'recording_chunks',
  {
    sessionId: text('session_id').notNull(),
    seq: bigint('seq', { mode: 'number' }).notNull(),
    at: timestamp('at', { withTimezone: true, mode: 'date' }).notNull(),
    kind: text('kind').notNull(),
    data: text('data').notNull(),
  },
  (t) => [uniqueIndex('recording_chunks_session_seq_idx').on(t.sessionId, t.seq)],
);

export const reviewKinds = ['access', 'statement'] as const;
export const reviewStatuses = ['pending', 'approved', 'rejected', 'expired', 'revoked'] as const;
export type ReviewKind = (typeof reviewKinds)[number];
export type ReviewStatus = (typeof reviewStatuses)[number];

/** One approval given to a review. */
export interface ReviewApproval {
  readonly user: string;
  readonly userId: string;
  /** ISO time */
  readonly at: string;
  readonly reason?: string;
  /** The approver groups the approver belonged to (none for an admin outside them). */
  readonly groups?: readonly string[];
}

/** Just-in-time approvals: an access window or one statement, waiting for approvers. */
export const reviews = pgTable(
  'reviews',
  {
    id: text('id').primaryKey(),
    kind: text('kind', { enum: reviewKinds }).notNull(),
    connectionName: text('connection_name').notNull(),
    requesterId: text('requester_id').notNull(),
    requesterName: text('requester_name').notNull(),
    justification: text('justification'),
    /** Access reviews: the window asked for, in seconds. */
    durationSeconds: integer('duration_seconds'),
    /** Statement reviews: the statement held. */
    statement: text('statement'),
    /** Statement reviews: the session holding it. */
    sessionId: text('session_id'),
    status: text('status', { enum: reviewStatuses }).notNull(),
    approvals: jsonb('approvals').$type<ReviewApproval[]>().notNull().default([]),
    /** Who rejected or revoked it, and why. */
    decidedBy: text('decided_by'),
    decisionReason: text('decision_reason'),
    createdAt: createdAt(),
    /** A pending review past this time is expired. */
    expiresAt: timestamp('expires_at', { withTimezone: true, mode: 'date' }).notNull(),
    decidedAt: timestamp('decided_at', { withTimezone: true, mode: 'date' }),
    /** Access reviews: the grant minted on approval. */
    grantId: text('grant_id'),
    /** Break-glass: approved at creation by its requester, a member of a break-glass group. */
    breakGlass: boolean('break_glass').notNull().default(false),
  },
  (t) => [
    check(
      'reviews_status_check',
      sql`${t.status} in ('pending', 'approved', 'rejected', 'expired', 'revoked')`,
    ),
    check('reviews_kind_check', sql`${t.kind} in ('access', 'statement')`),
    index('reviews_status_idx').on(t.status, t.createdAt),
    index('reviews_requester_idx').on(t.requesterId),
  ],
);

/**
 * Approved statement reviews that have run their statement: one row per review, so the primary
 * key makes a second use fail (an approval runs its statement exactly once).
 */
export const reviewUses = pgTable('review_uses', {
  reviewId: text('review_id').primaryKey(),
  /** The session the statement ran in. */
  sessionId: text('session_id').notNull(),
  usedAt: timestamp('used_at', { withTimezone: true, mode: 'date' }).notNull(),
});

export type ReviewRow = typeof reviews.$inferSelect;
export type AuditEventRow = typeof auditEvents.$inferSelect;
export type AccessRuleRow = typeof accessRules.$inferSelect;
export type TrustPolicyRow = typeof trustPolicies.$inferSelect;
export type GrantRow = typeof grants.$inferSelect;
export type SigningKeyRow = typeof signingKeys.$inferSelect;
export type UserRow = typeof users.$inferSelect;
export type ApiTokenRow = typeof apiTokens.$inferSelect;
export type AgentRow = typeof agents.$inferSelect;
export type ConnectionRow = typeof connections.$inferSelect;
export type SessionRow = typeof sessions.$inferSelect;
