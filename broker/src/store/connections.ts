/**
 * Connections: a target an agent dials and the credential it injects. A password is stored only
 * as AES-256-GCM ciphertext bound to the connection's id; a reference (`env:NAME`) is stored as
 * typed and resolved by the agent. Only `resolveConnectionTarget` ever returns the secret.
 */
import { randomUUID } from 'node:crypto';
import {
  type ConnectionTarget,
  type CredentialSpec,
  HoopError,
  type Policy,
  parseCredentialRef,
  parsePolicy,
} from '@hoop/shared';
import { asc, eq } from 'drizzle-orm';
import { agentNotFound } from './agents.js';
import { guard, isViolation, noteConnectionChange, nowOf, type StoreContext } from './context.js';
import { SqlState } from './db-errors.js';
import { type ConnectionInfo, type ResolvedConnection, toConnectionInfo } from './records.js';
import { agents, type ConnectionRow, connections } from './schema.js';
import { decryptSecret, encryptSecret } from './secrets.js';
import {
  validateConnectionType,
  validateHost,
  validateName,
  validatePassword,
  validatePort,
  validateText,
  validateTlsMode,
} from './validation.js';

export interface CreateConnectionInput {
  name: string;
  /** Name of the agent that reaches the target. */
  agent: string;
  type: string;
  host: string;
  port: number;
  user: string;
  database: string;
  /** `disable`, `prefer` (default) or `require`. */
  tls?: string | undefined;
  /** Stored encrypted; sent only to the owning agent at session open. */
  password?: string | undefined;
  /** `env:NAME`: resolved by the agent from its own environment. */
  passwordRef?: string | undefined;
}

export function connectionNotFound(name: string): HoopError {
  return new HoopError('CONNECTION_NOT_FOUND', `No connection named "${name}".`);
}

/** Additional authenticated data binding a stored password to its connection row. */
function secretContext(connectionId: string): string {
  return `hoop:connection:${connectionId}:password`;
}

function validateRef(value: unknown): string {
  const ref = typeof value === 'string' ? parseCredentialRef(value) : undefined;
  if (ref?.kind !== 'env') {
    throw new HoopError(
      'INVALID_REQUEST',
      'Invalid password reference: expected env:NAME, where NAME is an environment variable of the agent (letters, digits and "_", not starting with a digit).',
    );
  }
  return `env:${ref.name}`;
}

export async function createConnection(
  ctx: StoreContext,
  input: CreateConnectionInput,
): Promise<ConnectionInfo> {
  const name = validateName('connection', input.name);
  const agentName = validateName('agent', input.agent);
  const type = validateConnectionType(input.type);
  const host = validateHost(input.host);
  const port = validatePort(input.port);
  const user = validateText('user', input.user);
  const database = validateText('database', input.database);
  const tls = validateTlsMode(input.tls);
  if (input.password !== undefined && input.passwordRef !== undefined) {
    throw new HoopError(
      'INVALID_REQUEST',
      'Give either a password or a password reference (env:NAME), not both.',
    );
  }
  const password = input.password === undefined ? undefined : validatePassword(input.password);
  const secretRef = input.passwordRef === undefined ? null : validateRef(input.passwordRef);
  return guard('create connection', async () => {
    const [agent] = await ctx.db
      .select({ id: agents.id, name: agents.name })
      .from(agents)
      .where(eq(agents.name, agentName))
      .limit(1);
    if (agent === undefined) throw agentNotFound(agentName);
    const id = randomUUID();
    const now = nowOf(ctx);
    try {
      const [row] = await ctx.db
        .insert(connections)
        .values({
          id,
          name,
          agentId: agent.id,
          type,
          host,
          port,
          username: user,
          databaseName: database,
          tls,
          secretCiphertext:
            password === undefined
              ? null
              : encryptSecret(ctx.masterKey, password, secretContext(id)),
          secretRef,
          createdAt: now,
          updatedAt: now,
        })
        .returning();
      return toConnectionInfo(row!, agent.name);
    } catch (err) {
      if (isViolation(err, SqlState.uniqueViolation)) {
        throw new HoopError('ALREADY_EXISTS', `A connection named "${name}" already exists.`);
      }
      // the agent was deleted between the lookup and the insert
      if (isViolation(err, SqlState.foreignKeyViolation)) throw agentNotFound(agentName);
      throw err;
    }
  });
}

export async function listConnections(ctx: StoreContext): Promise<ConnectionInfo[]> {
  return guard('list connections', async () => {
    const rows = await ctx.db
      .select({ row: connections, agentName: agents.name })
      .from(connections)
      .innerJoin(agents, eq(connections.agentId, agents.id))
      .orderBy(asc(connections.name));
    return rows.map((r) => toConnectionInfo(r.row, r.agentName));
  });
}

async function findConnection(
  ctx: StoreContext,
  name: string,
): Promise<{ row: ConnectionRow; agentName: string }> {
  return guard('get connection', async () => {
    const [found] = await ctx.db
      .select({ row: connections, agentName: agents.name })
      .from(connections)
      .innerJoin(agents, eq(connections.agentId, agents.id))
      .where(eq(connections.name, name))
      .limit(1);
    if (found === undefined) throw connectionNotFound(name);
    return found;
  });
}

export async function getConnection(ctx: StoreContext, name: string): Promise<ConnectionInfo> {
  const { row, agentName } = await findConnection(ctx, name);
  return toConnectionInfo(row, agentName);
}

export async function deleteConnection(ctx: StoreContext, name: string): Promise<void> {
  await guard('delete connection', async () => {
    const deleted = await ctx.db
      .delete(connections)
      .where(eq(connections.name, name))
      .returning({ id: connections.id });
    if (deleted.length === 0) throw connectionNotFound(name);
    noteConnectionChange(ctx);
  });
}

export async function resolveConnectionTarget(
  ctx: StoreContext,
  name: string,
): Promise<ResolvedConnection> {
  const { row, agentName } = await findConnection(ctx, name);
  const info = toConnectionInfo(row, agentName);
  let credential: CredentialSpec = { kind: 'none' };
  if (row.secretCiphertext !== null) {
    credential = {
      kind: 'password',
      value: decryptSecret(ctx.masterKey, row.secretCiphertext, secretContext(row.id)),
    };
  } else if (row.secretRef !== null) {
    const ref = parseCredentialRef(row.secretRef);
    if (ref === undefined) {
      throw new HoopError(
        'INTERNAL',
        `Connection "${name}" has an unreadable credential reference.`,
      );
    }
    credential = ref;
  }
  const target: ConnectionTarget = {
    name: info.name,
    type: info.type,
    host: info.host,
    port: info.port,
    user: info.user,
    database: info.database,
    tls: info.tls,
    credential,
  };
  return {
    info,
    target,
    policy: policyOf(row),
    tags: row.tags ?? [],
    maxGrantTtlSeconds: row.maxGrantTtlSeconds,
  };
}

function policyOf(row: ConnectionRow): Policy {
  // Stored policies were validated on the way in; parse again so an old row that no longer
  // validates fails loudly here instead of reaching an agent.
  return parsePolicy(row.policy ?? {});
}

/** The connection's policy (the default one when none was set). */
export async function getConnectionPolicy(ctx: StoreContext, name: string): Promise<Policy> {
  const { row } = await findConnection(ctx, name);
  return policyOf(row);
}

/** Validates and stores a policy document; returns the policy as it will be enforced. */
export async function setConnectionPolicy(
  ctx: StoreContext,
  name: string,
  document: unknown,
): Promise<Policy> {
  const policy = parsePolicy(document);
  const { row } = await findConnection(ctx, name);
  await guard('set connection policy', () =>
    ctx.db
      .update(connections)
      .set({ policy, updatedAt: nowOf(ctx) })
      .where(eq(connections.id, row.id)),
  );
  noteConnectionChange(ctx);
  return policy;
}
