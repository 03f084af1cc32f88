/**
 * What the store hands out: plain objects safe to put in an API response or a log line. No token
 * hash and no secret ciphertext ever appears here; times are ISO 8601 strings.
 */
import type { ConnectionTarget, ConnectionType, Policy, TargetTlsMode } from '@hoop/shared';
import type {
  AgentRow,
  ApiTokenRow,
  ConnectionRow,
  SessionRow,
  SessionStatus,
  UserRole,
  UserRow,
} from './schema.js';

export interface UserInfo {
  readonly id: string;
  readonly name: string;
  readonly role: UserRole;
  readonly disabled: boolean;
  readonly createdAt: string;
}

export interface AuthenticatedUser {
  readonly userId: string;
  readonly name: string;
  readonly role: UserRole;
  /** The api token that authenticated, e.g. to revoke it on logout. */
  readonly tokenId: string;
}

export interface UserTokenInfo {
  readonly id: string;
  readonly userId: string;
  readonly name: string;
  readonly createdAt: string;
  readonly lastUsedAt: string | null;
  readonly expiresAt: string | null;
  readonly revokedAt: string | null;
}

export interface AgentInfo {
  readonly id: string;
  readonly name: string;
  readonly createdAt: string;
  readonly lastSeenAt: string | null;
}

/** How a connection gets its credential, as shown to people: never the secret itself. */
export type ConnectionCredentialKind = 'stored' | 'none' | `ref:env:${string}`;

export interface ConnectionInfo {
  readonly id: string;
  readonly name: string;
  readonly type: ConnectionType;
  /** The owning agent's name. */
  readonly agent: string;
  readonly agentId: string;
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly database: string;
  readonly tls: TargetTlsMode;
  readonly credential: ConnectionCredentialKind;
  readonly createdAt: string;
  readonly updatedAt: string;
}

/** A connection with its credential in the clear: only ever sent to the owning agent. */
export interface ResolvedConnection {
  readonly info: ConnectionInfo;
  readonly target: ConnectionTarget;
  readonly policy: Policy;
  /** For access rules by tag. */
  readonly tags: readonly string[];
  /** Cap on grants for this connection (null: the broker's ceiling). */
  readonly maxGrantTtlSeconds: number | null;
}

export interface SessionInfo {
  readonly id: string;
  readonly connectionId: string | null;
  readonly connectionName: string;
  readonly userId: string | null;
  readonly agentId: string | null;
  readonly status: SessionStatus;
  readonly errorCode: string | null;
  readonly startedAt: string;
  readonly endedAt: string | null;
  readonly bytesUp: number;
  readonly bytesDown: number;
  readonly client: string | null;
}

function iso(date: Date): string;
function iso(date: Date | null): string | null;
function iso(date: Date | null): string | null {
  return date === null ? null : date.toISOString();
}

export function toUserInfo(row: UserRow): UserInfo {
  return {
    id: row.id,
    name: row.name,
    role: row.role,
    disabled: row.disabled,
    createdAt: iso(row.createdAt),
  };
}

export function toUserTokenInfo(row: ApiTokenRow): UserTokenInfo {
  return {
    id: row.id,
    userId: row.userId,
    name: row.name,
    createdAt: iso(row.createdAt),
    lastUsedAt: iso(row.lastUsedAt),
    expiresAt: iso(row.expiresAt),
    revokedAt: iso(row.revokedAt),
  };
}

export function toAgentInfo(row: AgentRow): AgentInfo {
  return {
    id: row.id,
    name: row.name,
    createdAt: iso(row.createdAt),
    lastSeenAt: iso(row.lastSeenAt),
  };
}

export function credentialKindOf(row: ConnectionRow): ConnectionCredentialKind {
  if (row.secretCiphertext !== null) return 'stored';
  if (row.secretRef !== null) return `ref:${row.secretRef}` as ConnectionCredentialKind;
  return 'none';
}

export function toConnectionInfo(row: ConnectionRow, agentName: string): ConnectionInfo {
  return {
    id: row.id,
    name: row.name,
    type: row.type as ConnectionType,
    agent: agentName,
    agentId: row.agentId,
    host: row.host,
    port: row.port,
    user: row.username,
    database: row.databaseName,
    tls: row.tls,
    credential: credentialKindOf(row),
    createdAt: iso(row.createdAt),
    updatedAt: iso(row.updatedAt),
  };
}

export function toSessionInfo(row: SessionRow): SessionInfo {
  return {
    id: row.id,
    connectionId: row.connectionId,
    connectionName: row.connectionName,
    userId: row.userId,
    agentId: row.agentId,
    status: row.status,
    errorCode: row.errorCode,
    startedAt: iso(row.startedAt),
    endedAt: iso(row.endedAt),
    bytesUp: row.bytesUp,
    bytesDown: row.bytesDown,
    client: row.client,
  };
}
