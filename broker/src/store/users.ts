/** Users and their api tokens (`hoop_pat_…`, stored as sha256 only), and the first-start admin. */
import { randomUUID } from 'node:crypto';
import { HoopError } from '@hoop/shared';
import { and, asc, eq, isNull } from 'drizzle-orm';
import { guard, mapViolation, nowOf, type StoreContext } from './context.js';
import { SqlState } from './db-errors.js';
import {
  type AuthenticatedUser,
  toUserInfo,
  toUserTokenInfo,
  type UserInfo,
  type UserTokenInfo,
} from './records.js';
import { apiTokens, type UserRole, userRoles, users } from './schema.js';
import { generateToken, hashToken } from './tokens.js';
import { validateName, validateText, validateTimestamp } from './validation.js';

/** Name of the user `bootstrap` creates. */
export const ADMIN_USER_NAME = 'admin';

export interface BootstrapOptions {
  /** Token to give the admin user instead of a generated `hoop_pat_…` one. */
  adminToken?: string | undefined;
}

export interface BootstrapResult {
  created: boolean;
  /** The admin's token, only when this call created the admin. */
  adminToken?: string;
}

export interface CreateUserInput {
  name: string;
  role: UserRole;
}

export interface CreateUserTokenOptions {
  /** Milliseconds since the epoch after which the token no longer authenticates. */
  expiresAt?: number | undefined;
}

function userNotFound(name: string): HoopError {
  return new HoopError('NOT_FOUND', `No user named "${name}".`);
}

export async function bootstrap(
  ctx: StoreContext,
  options: BootstrapOptions,
): Promise<BootstrapResult> {
  const given = options.adminToken;
  if (given !== undefined && (given.length === 0 || given.trim() !== given)) {
    throw new HoopError(
      'INVALID_REQUEST',
      'Invalid admin token: expected a non-empty string without surrounding whitespace.',
    );
  }
  return guard('bootstrap', async () => {
    const result = await ctx.db.transaction(async (tx): Promise<BootstrapResult> => {
      const existing = await tx.select({ id: users.id }).from(users).limit(1);
      if (existing.length > 0) return { created: false };
      const now = nowOf(ctx);
      // a concurrent bootstrap that inserted first makes this insert a no-op
      const [admin] = await tx
        .insert(users)
        .values({
          id: randomUUID(),
          name: ADMIN_USER_NAME,
          role: 'admin',
          disabled: false,
          createdAt: now,
        })
        .onConflictDoNothing({ target: users.name })
        .returning({ id: users.id });
      if (admin === undefined) return { created: false };
      const token = given ?? generateToken('hoop_pat');
      await tx.insert(apiTokens).values({
        id: randomUUID(),
        userId: admin.id,
        tokenHash: hashToken(token),
        name: 'bootstrap',
        createdAt: now,
      });
      return { created: true, adminToken: token };
    });
    if (result.created) ctx.logger.info('created the admin user', { user: ADMIN_USER_NAME });
    return result;
  });
}

export async function createUser(ctx: StoreContext, input: CreateUserInput): Promise<UserInfo> {
  const name = validateName('user', input.name);
  if (!(userRoles as readonly unknown[]).includes(input.role)) {
    throw new HoopError(
      'INVALID_REQUEST',
      `Invalid role "${String(input.role).slice(0, 40)}": expected one of ${userRoles.join(', ')}.`,
    );
  }
  return guard('create user', async () => {
    try {
      const [row] = await ctx.db
        .insert(users)
        .values({
          id: randomUUID(),
          name,
          role: input.role,
          disabled: false,
          createdAt: nowOf(ctx),
        })
        .returning();
      return toUserInfo(row!);
    } catch (err) {
      mapViolation(
        err,
        SqlState.uniqueViolation,
        () => new HoopError('ALREADY_EXISTS', `A user named "${name}" already exists.`),
      );
    }
  });
}

export async function listUsers(ctx: StoreContext): Promise<UserInfo[]> {
  return guard('list users', async () => {
    const rows = await ctx.db.select().from(users).orderBy(asc(users.name));
    return rows.map(toUserInfo);
  });
}

export async function getUser(ctx: StoreContext, name: string): Promise<UserInfo> {
  return guard('get user', async () => {
    const [row] = await ctx.db.select().from(users).where(eq(users.name, name)).limit(1);
    if (row === undefined) throw userNotFound(name);
    return toUserInfo(row);
  });
}

export async function setUserDisabled(
  ctx: StoreContext,
  name: string,
  disabled: boolean,
): Promise<UserInfo> {
  return guard('update user', async () => {
    const [row] = await ctx.db
      .update(users)
      .set({ disabled })
      .where(eq(users.name, name))
      .returning();
    if (row === undefined) throw userNotFound(name);
    return toUserInfo(row);
  });
}

export async function createUserToken(
  ctx: StoreContext,
  userId: string,
  name: string,
  options: CreateUserTokenOptions,
): Promise<string> {
  const label = validateText('token name', name);
  const expiresAt =
    options.expiresAt === undefined
      ? null
      : new Date(validateTimestamp('expiresAt', options.expiresAt));
  const token = generateToken('hoop_pat');
  return guard('create token', async () => {
    try {
      await ctx.db.insert(apiTokens).values({
        id: randomUUID(),
        userId,
        tokenHash: hashToken(token),
        name: label,
        createdAt: nowOf(ctx),
        expiresAt,
      });
    } catch (err) {
      mapViolation(
        err,
        SqlState.foreignKeyViolation,
        () => new HoopError('NOT_FOUND', 'No such user.'),
      );
    }
    return token;
  });
}

export async function listUserTokens(ctx: StoreContext, userId: string): Promise<UserTokenInfo[]> {
  return guard('list tokens', async () => {
    const rows = await ctx.db
      .select()
      .from(apiTokens)
      .where(eq(apiTokens.userId, userId))
      .orderBy(asc(apiTokens.createdAt), asc(apiTokens.id));
    return rows.map(toUserTokenInfo);
  });
}

export async function revokeUserToken(ctx: StoreContext, tokenId: string): Promise<UserTokenInfo> {
  return guard('revoke token', async () => {
    const [revoked] = await ctx.db
      .update(apiTokens)
      .set({ revokedAt: nowOf(ctx) })
      .where(and(eq(apiTokens.id, tokenId), isNull(apiTokens.revokedAt)))
      .returning();
    if (revoked !== undefined) return toUserTokenInfo(revoked);
    const [existing] = await ctx.db
      .select()
      .from(apiTokens)
      .where(eq(apiTokens.id, tokenId))
      .limit(1);
    if (existing === undefined) throw new HoopError('NOT_FOUND', 'No such api token.');
    return toUserTokenInfo(existing);
  });
}

export async function authenticateUserToken(
  ctx: StoreContext,
  token: string,
): Promise<AuthenticatedUser | undefined> {
  if (typeof token !== 'string' || token.length === 0) return undefined;
  const tokenHash = hashToken(token);
  return guard('authenticate token', async () => {
    const [row] = await ctx.db
      .select({
        tokenId: apiTokens.id,
        expiresAt: apiTokens.expiresAt,
        revokedAt: apiTokens.revokedAt,
        userId: users.id,
        name: users.name,
        role: users.role,
        disabled: users.disabled,
      })
      .from(apiTokens)
      .innerJoin(users, eq(apiTokens.userId, users.id))
      .where(eq(apiTokens.tokenHash, tokenHash))
      .limit(1);
    if (row === undefined || row.revokedAt !== null || row.disabled) return undefined;
    const now = nowOf(ctx);
    if (row.expiresAt !== null && row.expiresAt.getTime() <= now.getTime()) return undefined;
    await ctx.db.update(apiTokens).set({ lastUsedAt: now }).where(eq(apiTokens.id, row.tokenId));
    return { userId: row.userId, name: row.name, role: row.role, tokenId: row.tokenId };
  });
}
