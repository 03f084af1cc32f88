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
} from 'drizzle-orm/pg-core';

export const userRoles = ['admin', 'user'] as const;
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
    createdAt: createdAt(),
  },
  (t) => [check('users_role_check', sql`${t.role} in ('admin', 'user')`)],
);

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
    sessionId: text('session_id').notNull(),
    agentId: text('agent_id').notNull(),
    type: text('type').notNull(),
    at: timestamp('at', { withTimezone: true, mode: 'date' }).notNull(),
    receivedAt: timestamp('received_at', { withTimezone: true, mode: 'date' }).notNull(),
    data: jsonb('data').notNull(),
  },
  (t) => [
    index('audit_events_session_idx').on(t.sessionId, t.id),
    index('audit_events_at_idx').on(t.at),
  ],
);

export type AuditEventRow = typeof auditEvents.$inferSelect;
export type UserRow = typeof users.$inferSelect;
export type ApiTokenRow = typeof apiTokens.$inferSelect;
export type AgentRow = typeof agents.$inferSelect;
export type ConnectionRow = typeof connections.$inferSelect;
export type SessionRow = typeof sessions.$inferSelect;
