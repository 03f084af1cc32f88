/**
 * Sessions: one row per stream a client opened through the broker, from `open` to `closed` or
 * `failed`. Rows outlive their connection (the name is kept), their user and their agent.
 */
import { randomUUID } from 'node:crypto';
import { HoopError } from '@hoop/shared';
import { and, desc, eq, sql } from 'drizzle-orm';
import { connectionNotFound } from './connections.js';
import { guard, mapViolation, nowOf, type StoreContext } from './context.js';
import type { Db } from './database.js';
import { SqlState } from './db-errors.js';
import { type SessionInfo, toSessionInfo } from './records.js';
import { type SessionStatus, sessions } from './schema.js';
import { validateByteCount, validateText } from './validation.js';

/** Error code given to sessions a broker restart left open. */
export const BROKER_RESTARTED = 'BROKER_RESTARTED';

export const SESSION_LIST_DEFAULT_LIMIT = 100;
export const SESSION_LIST_MAX_LIMIT = 1000;

export interface CreateSessionInput {
  /** The session id, when the caller chose it (a random UUID otherwise). */
  id?: string | undefined;
  connectionId: string | null;
  connectionName: string;
  userId?: string | null | undefined;
  agentId?: string | null | undefined;
  /** What the client said it is (e.g. `psql`, `hoop-cli/0.1.0`). */
  client?: string | null | undefined;
}

export interface EndSessionInput {
  status: 'closed' | 'failed';
  errorCode?: string | null | undefined;
  bytesUp: number;
  bytesDown: number;
}

export interface ListSessionsOptions {
  /** 1 to SESSION_LIST_MAX_LIMIT; default SESSION_LIST_DEFAULT_LIMIT. Newest first. */
  limit?: number | undefined;
  status?: SessionStatus | undefined;
}

export async function createSession(
  ctx: StoreContext,
  input: CreateSessionInput,
): Promise<SessionInfo> {
  const connectionName = validateText('connection name', input.connectionName);
  const client =
    input.client === undefined || input.client === null
      ? null
      : validateText('client', input.client);
  return guard('create session', async () => {
    try {
      const [row] = await insertSessionQuery(ctx.db).execute({
        id: input.id ?? randomUUID(),
        connectionId: input.connectionId,
        connectionName,
        userId: input.userId ?? null,
        agentId: input.agentId ?? null,
        startedAt: nowOf(ctx),
        client,
      });
      return toSessionInfo(row!);
    } catch (err) {
      mapViolation(err, SqlState.foreignKeyViolation, () => connectionNotFound(connectionName));
    }
  });
}

/**
 * The session row's insert, built once per database: it runs for every new connection, and
 * drizzle building the statement again each time cost ~0.7 ms of the broker's event loop
 * (`pgbench -C`). On PostgreSQL it is also a named prepared statement.
 */
const insertSessionQueries = new WeakMap<Db, ReturnType<typeof buildInsertSession>>();

function buildInsertSession(db: Db) {
  return db
    .insert(sessions)
    .values({
      id: sql.placeholder('id'),
      connectionId: sql.placeholder('connectionId'),
      connectionName: sql.placeholder('connectionName'),
      userId: sql.placeholder('userId'),
      agentId: sql.placeholder('agentId'),
      status: 'open',
      startedAt: sql.placeholder('startedAt'),
      client: sql.placeholder('client'),
    })
    .returning()
    .prepare('hoop_insert_session');
}

function insertSessionQuery(db: Db): ReturnType<typeof buildInsertSession> {
  let query = insertSessionQueries.get(db);
  if (query === undefined) {
    query = buildInsertSession(db);
    insertSessionQueries.set(db, query);
  }
  return query;
}

export async function endSession(
  ctx: StoreContext,
  id: string,
  end: EndSessionInput,
): Promise<SessionInfo> {
  if (end.status !== 'closed' && end.status !== 'failed') {
    throw new HoopError(
      'INVALID_REQUEST',
      `Invalid session status "${String(end.status).slice(0, 40)}": expected closed or failed.`,
    );
  }
  const bytesUp = validateByteCount('bytesUp', end.bytesUp);
  const bytesDown = validateByteCount('bytesDown', end.bytesDown);
  const errorCode =
    end.errorCode === undefined || end.errorCode === null
      ? null
      : validateText('error code', end.errorCode);
  return guard('end session', async () => {
    const [ended] = await ctx.db
      .update(sessions)
      .set({ status: end.status, errorCode, endedAt: nowOf(ctx), bytesUp, bytesDown })
      .where(and(eq(sessions.id, id), eq(sessions.status, 'open')))
      .returning();
    if (ended !== undefined) return toSessionInfo(ended);
    return getSession(ctx, id);
  });
}

/**
 * Ends several sessions with one statement (the hub groups session ends, see GroupCommit).
 * Like endSession, only sessions still open change.
 */
export async function endSessions(
  ctx: StoreContext,
  ends: readonly (EndSessionInput & { readonly id: string })[],
): Promise<void> {
  if (ends.length === 0) return;
  const endedAt = nowOf(ctx).toISOString();
  const rows = ends.map((end) => {
    if (end.status !== 'closed' && end.status !== 'failed') {
      throw new HoopError(
        'INVALID_REQUEST',
        `Invalid session status "${String(end.status).slice(0, 40)}": expected closed or failed.`,
      );
    }
    return {
      id: end.id,
      status: end.status,
      error_code:
        end.errorCode === undefined || end.errorCode === null
          ? null
          : validateText('error code', end.errorCode),
      ended_at: endedAt,
      bytes_up: validateByteCount('bytesUp', end.bytesUp),
      bytes_down: validateByteCount('bytesDown', end.bytesDown),
    };
  });
  await guard('end sessions', async () => {
    await ctx.db.execute(sql`
      update sessions as s
      set status = v.status, error_code = v.error_code, ended_at = v.ended_at,
          bytes_up = v.bytes_up, bytes_down = v.bytes_down
      from jsonb_to_recordset(${JSON.stringify(rows)}::jsonb)
        as v(id text, status text, error_code text, ended_at timestamptz, bytes_up bigint,
             bytes_down bigint)
      where s.id = v.id and s.status = 'open'`);
  });
}

export async function listSessions(
  ctx: StoreContext,
  options: ListSessionsOptions,
): Promise<SessionInfo[]> {
  const limit = options.limit ?? SESSION_LIST_DEFAULT_LIMIT;
  if (!Number.isInteger(limit) || limit < 1 || limit > SESSION_LIST_MAX_LIMIT) {
    throw new HoopError(
      'INVALID_REQUEST',
      `Invalid limit ${String(limit)}: expected an integer from 1 to ${SESSION_LIST_MAX_LIMIT}.`,
    );
  }
  return guard('list sessions', async () => {
    const rows = await ctx.db
      .select()
      .from(sessions)
      .where(options.status === undefined ? undefined : eq(sessions.status, options.status))
      .orderBy(desc(sessions.startedAt), desc(sessions.id))
      .limit(limit);
    return rows.map(toSessionInfo);
  });
}

export async function getSession(ctx: StoreContext, id: string): Promise<SessionInfo> {
  return guard('get session', async () => {
    const [row] = await ctx.db.select().from(sessions).where(eq(sessions.id, id)).limit(1);
    if (row === undefined) throw new HoopError('NOT_FOUND', `No session with id "${id}".`);
    return toSessionInfo(row);
  });
}

export async function failOpenSessions(ctx: StoreContext): Promise<number> {
  return guard('fail open sessions', async () => {
    const failed = await ctx.db
      .update(sessions)
      .set({ status: 'failed', errorCode: BROKER_RESTARTED, endedAt: nowOf(ctx) })
      .where(eq(sessions.status, 'open'))
      .returning({ id: sessions.id });
    if (failed.length > 0) {
      ctx.logger.warn('marked sessions left open by a previous broker as failed', {
        count: failed.length,
      });
    }
    return failed.length;
  });
}
