/**
 * Identities and their bearer tokens, and the first-start admin. Identities are people (local
 * users with a scrypt password hash, or OIDC users keyed by issuer + subject) and service
 * accounts. Tokens are api_tokens rows, stored as sha256 only: user tokens (`hoop_pat_…`, e.g.
 * from `hoop login`) and a service account's API keys (`hoop_sak_…`).
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { HoopError } from '@hoop/shared';
import { and, asc, eq, isNull } from 'drizzle-orm';
import type { CachedBearer } from './bearer-cache.js';
import { guard, mapViolation, noteIdentityChange, nowOf, type StoreContext } from './context.js';
import { SqlState } from './db-errors.js';
import {
  type AuthenticatedUser,
  toUserInfo,
  toUserTokenInfo,
  type UserInfo,
  type UserTokenInfo,
} from './records.js';
import { apiTokens, type UserRole, type UserRow, userRoles, users } from './schema.js';
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
  const created = await createIdentity(ctx, { name: input.name, role: input.role, kind: 'person' });
  return {
    id: created.id,
    name: created.name,
    role: created.role,
    disabled: created.disabled,
    createdAt: created.createdAt,
  };
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
  return guard('update user', () =>
    changingIdentities(ctx, async () => {
      const [row] = await ctx.db
        .update(users)
        .set({ disabled })
        .where(eq(users.name, name))
        .returning();
      if (row === undefined) throw userNotFound(name);
      return toUserInfo(row);
    }),
  );
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
  return guard('revoke token', () =>
    changingIdentities(ctx, async () => {
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
    }),
  );
}

export async function authenticateUserToken(
  ctx: StoreContext,
  token: string,
): Promise<AuthenticatedUser | undefined> {
  const found = await authenticateBearer(ctx, token);
  return found === undefined
    ? undefined
    : { userId: found.userId, name: found.name, role: found.role, tokenId: found.tokenId };
}

// ── identities: people (local, OIDC) and service accounts ─────────────────────

export type IdentityKind = 'person' | 'service';

/** An identity as shown in API responses: never its password hash. */
export interface IdentityInfo {
  readonly id: string;
  readonly name: string;
  readonly role: UserRole;
  readonly kind: IdentityKind;
  readonly groups: readonly string[];
  readonly disabled: boolean;
  /** How it logs in: a local password, an identity provider, or neither (tokens/API keys only). */
  readonly login: 'password' | 'oidc' | 'none';
  readonly createdAt: string;
}

/** What a bearer token proves: the identity behind it, and which token it was. */
export interface BearerIdentity {
  readonly userId: string;
  readonly name: string;
  readonly role: UserRole;
  readonly kind: IdentityKind;
  readonly groups: readonly string[];
  readonly tokenId: string;
  readonly tokenName: string;
}

export interface ApiKeyInfo {
  readonly id: string;
  readonly serviceAccount: string;
  readonly name: string;
  readonly createdAt: string;
  readonly lastUsedAt: string | null;
  readonly expiresAt: string | null;
}

/** Prefix of service-account API keys (user tokens keep `hoop_pat_`). */
export const API_KEY_PREFIX = 'hoop_sak_';

/** Group names: like other names, plus `.`, `:` and `/` (IdP groups such as `org:team/db`). */
const GROUP_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}$/;
const MAX_GROUPS = 64;

export function validateGroups(value: unknown): string[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value) || value.length > MAX_GROUPS) {
    throw new HoopError('INVALID_REQUEST', `groups must be a list of at most ${MAX_GROUPS} names`);
  }
  for (const group of value) validateGroupName(group);
  return [...new Set(value as string[])];
}

export function validateGroupName(value: unknown): string {
  if (typeof value !== 'string' || !GROUP_PATTERN.test(value)) {
    const shown = typeof value === 'string' ? ` "${value.slice(0, 80)}"` : '';
    throw new HoopError(
      'INVALID_REQUEST',
      `Invalid group${shown}: use 1-128 characters from A-Z, a-z, 0-9, "_", ".", ":", "/" and "-".`,
    );
  }
  return value;
}

function toIdentityInfo(row: UserRow): IdentityInfo {
  return {
    id: row.id,
    name: row.name,
    role: row.role,
    kind: row.kind,
    groups: row.groups ?? [],
    disabled: row.disabled,
    login: row.passwordHash !== null ? 'password' : row.oidcIssuer !== null ? 'oidc' : 'none',
    createdAt: row.createdAt.toISOString(),
  };
}

export interface CreateIdentityInput {
  name: string;
  role: UserRole;
  kind: IdentityKind;
  groups?: readonly string[] | undefined;
  /** From `hashPassword` (identity/password.ts); only for local people. */
  passwordHash?: string | undefined;
}

export async function createIdentity(
  ctx: StoreContext,
  input: CreateIdentityInput,
): Promise<IdentityInfo> {
  const name = validateName(input.kind === 'service' ? 'service account' : 'user', input.name);
  if (!(userRoles as readonly unknown[]).includes(input.role)) {
    throw new HoopError(
      'INVALID_REQUEST',
      `Invalid role: expected one of ${userRoles.join(', ')}.`,
    );
  }
  const groups = validateGroups(input.groups);
  return guard('create identity', async () => {
    try {
      const [row] = await ctx.db
        .insert(users)
        .values({
          id: randomUUID(),
          name,
          role: input.role,
          kind: input.kind,
          groups,
          passwordHash: input.kind === 'person' ? (input.passwordHash ?? null) : null,
          disabled: false,
          createdAt: nowOf(ctx),
        })
        .returning();
      return toIdentityInfo(row!);
    } catch (err) {
      mapViolation(
        err,
        SqlState.uniqueViolation,
        () =>
          new HoopError(
            'ALREADY_EXISTS',
            `A user or service account named "${name}" already exists.`,
          ),
      );
    }
  });
}

export async function listIdentities(
  ctx: StoreContext,
  kind?: IdentityKind,
): Promise<IdentityInfo[]> {
  return guard('list identities', async () => {
    const rows = await ctx.db
      .select()
      .from(users)
      .where(kind === undefined ? undefined : eq(users.kind, kind))
      .orderBy(asc(users.name));
    return rows.map(toIdentityInfo);
  });
}

/** NOT_FOUND (naming the kind) when there is no identity of that kind with that name. */
export async function getIdentity(
  ctx: StoreContext,
  name: string,
  kind?: IdentityKind,
): Promise<IdentityInfo> {
  const row = await identityRow(ctx, name, kind);
  return toIdentityInfo(row);
}

async function identityRow(ctx: StoreContext, name: string, kind?: IdentityKind): Promise<UserRow> {
  return guard('get identity', async () => {
    const [row] = await ctx.db.select().from(users).where(eq(users.name, name)).limit(1);
    if (row === undefined || (kind !== undefined && row.kind !== kind)) {
      throw new HoopError(
        'NOT_FOUND',
        kind === 'service' ? `No service account named "${name}".` : `No user named "${name}".`,
      );
    }
    return row;
  });
}

/** Enables or disables an identity; returns it (NOT_FOUND if none). */
export async function setIdentityDisabled(
  ctx: StoreContext,
  name: string,
  disabled: boolean,
  kind?: IdentityKind,
): Promise<IdentityInfo> {
  const existing = await identityRow(ctx, name, kind);
  return guard('update identity', () =>
    changingIdentities(ctx, async () => {
      const [row] = await ctx.db
        .update(users)
        .set({ disabled })
        .where(eq(users.id, existing.id))
        .returning();
      return toIdentityInfo(row!);
    }),
  );
}

/** Deletes a service account with its API keys and trust policies (cascade). */
export async function deleteServiceAccount(ctx: StoreContext, name: string): Promise<IdentityInfo> {
  const existing = await identityRow(ctx, name, 'service');
  return guard('delete service account', () =>
    changingIdentities(ctx, async () => {
      await ctx.db.delete(users).where(eq(users.id, existing.id));
      return toIdentityInfo(existing);
    }),
  );
}

/**
 * The stored password hash of a local, enabled person named `name`, or undefined (no such user,
 * disabled, a service account, or no password): callers verify in constant time either way.
 */
export async function passwordLoginCandidate(
  ctx: StoreContext,
  name: string,
): Promise<{ identity: IdentityInfo; passwordHash: string | null } | undefined> {
  if (typeof name !== 'string' || name.length === 0 || name.length > 255) return undefined;
  return guard('find user', async () => {
    const [row] = await ctx.db.select().from(users).where(eq(users.name, name)).limit(1);
    if (row === undefined || row.kind !== 'person') return undefined;
    return { identity: toIdentityInfo(row), passwordHash: row.passwordHash };
  });
}

/**
 * The person a (issuer, subject) pair logged in as: created on first login (kind person, role
 * user) and its groups refreshed from the identity provider on every login. The name is the
 * preferred name when free and valid, else one derived from the subject, so an OIDC login never
 * takes over an existing local user.
 */
export async function upsertOidcIdentity(
  ctx: StoreContext,
  input: {
    issuer: string;
    subject: string;
    preferredName: string | undefined;
    groups: readonly string[];
  },
): Promise<IdentityInfo> {
  const groups = input.groups
    .filter((g) => typeof g === 'string' && GROUP_PATTERN.test(g))
    .slice(0, MAX_GROUPS);
  return guard('upsert oidc identity', () =>
    changingIdentities(ctx, async () => {
      const [existing] = await ctx.db
        .select()
        .from(users)
        .where(and(eq(users.oidcIssuer, input.issuer), eq(users.oidcSubject, input.subject)))
        .limit(1);
      if (existing !== undefined) {
        const [row] = await ctx.db
          .update(users)
          .set({ groups })
          .where(eq(users.id, existing.id))
          .returning();
        return toIdentityInfo(row!);
      }
      const digest = createHash('sha256').update(`${input.issuer}\n${input.subject}`).digest('hex');
      const preferred = (input.preferredName ?? '')
        .toLowerCase()
        .replace(/[^a-z0-9_-]+/g, '-')
        .replace(/^[-_]+/, '')
        .slice(0, 50);
      const candidates = [
        ...(NAME_PATTERN_LOOSE.test(preferred)
          ? [preferred, `${preferred}-${digest.slice(0, 6)}`]
          : []),
        `oidc-${digest.slice(0, 12)}`,
      ];
      for (const name of candidates) {
        const [row] = await ctx.db
          .insert(users)
          .values({
            id: randomUUID(),
            name,
            role: 'user',
            kind: 'person',
            groups,
            oidcIssuer: input.issuer,
            oidcSubject: input.subject,
            disabled: false,
            createdAt: nowOf(ctx),
          })
          .onConflictDoNothing()
          .returning();
        if (row !== undefined) return toIdentityInfo(row);
      }
      throw new HoopError('INTERNAL', 'could not name the new OIDC user');
    }),
  );
}

const NAME_PATTERN_LOOSE = /^[a-z0-9][a-z0-9_-]{0,49}$/;

/**
 * Runs a write to identities or tokens, then drops cached token verifications. After it, not
 * before: a lookup that read the database before the write cannot cache what it read.
 */
async function changingIdentities<T>(ctx: StoreContext, write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } finally {
    noteIdentityChange(ctx);
  }
}

// ── bearer tokens of any identity ─────────────────────────────────────────────

/** How precisely a token's last use is recorded. */
export const LAST_USED_RESOLUTION_MS = 60_000;

/**
 * The identity a bearer token (user token or API key) belongs to, when the token is known, not
 * revoked, not expired, and its identity not disabled; records the use (last_used_at, to the
 * minute: a token used again within LAST_USED_RESOLUTION_MS of its recorded use costs no write,
 * which matters to a CI job opening a native session per connection).
 */
export async function authenticateBearer(
  ctx: StoreContext,
  token: string,
): Promise<BearerIdentity | undefined> {
  if (typeof token !== 'string' || token.length === 0) return undefined;
  const tokenHash = hashToken(token);
  return guard('authenticate token', async () => {
    const now = ctx.clock.now();
    const cache = ctx.bearers;
    let bearer = cache?.get(tokenHash, now);
    if (bearer === undefined) {
      const generation = cache?.current ?? 0;
      bearer = await readBearer(ctx, tokenHash);
      if (bearer === undefined) return undefined;
      cache?.set(tokenHash, bearer, generation, now);
    }
    if (bearer.expiresAt !== null && bearer.expiresAt <= now) return undefined;
    const lastUsed = bearer.lastUsedAt;
    if (lastUsed === null || now - lastUsed >= LAST_USED_RESOLUTION_MS || now < lastUsed) {
      await ctx.db
        .update(apiTokens)
        .set({ lastUsedAt: new Date(now) })
        .where(eq(apiTokens.id, bearer.tokenId));
      bearer.lastUsedAt = now;
    }
    return {
      userId: bearer.userId,
      name: bearer.name,
      role: bearer.role,
      kind: bearer.kind,
      groups: bearer.groups,
      tokenId: bearer.tokenId,
      tokenName: bearer.tokenName,
    };
  });
}

/** The usable token stored under `tokenHash` (not revoked, its identity not disabled). */
async function readBearer(ctx: StoreContext, tokenHash: string): Promise<CachedBearer | undefined> {
  const [row] = await ctx.db
    .select({
      tokenId: apiTokens.id,
      tokenName: apiTokens.name,
      expiresAt: apiTokens.expiresAt,
      revokedAt: apiTokens.revokedAt,
      lastUsedAt: apiTokens.lastUsedAt,
      userId: users.id,
      name: users.name,
      role: users.role,
      kind: users.kind,
      groups: users.groups,
      disabled: users.disabled,
    })
    .from(apiTokens)
    .innerJoin(users, eq(apiTokens.userId, users.id))
    .where(eq(apiTokens.tokenHash, tokenHash))
    .limit(1);
  if (row === undefined || row.revokedAt !== null || row.disabled) return undefined;
  return {
    tokenId: row.tokenId,
    tokenName: row.tokenName,
    expiresAt: row.expiresAt?.getTime() ?? null,
    lastUsedAt: row.lastUsedAt?.getTime() ?? null,
    userId: row.userId,
    name: row.name,
    role: row.role,
    kind: row.kind,
    groups: row.groups ?? [],
  };
}

/** The identity an id names, for callers that hold only the id (e.g. a trust policy's target). */
export async function getIdentityById(
  ctx: StoreContext,
  id: string,
): Promise<IdentityInfo | undefined> {
  return guard('get identity', async () => {
    const [row] = await ctx.db.select().from(users).where(eq(users.id, id)).limit(1);
    return row === undefined ? undefined : toIdentityInfo(row);
  });
}

// ── service-account API keys ─────────────────────────────────────────────────

export async function createApiKey(
  ctx: StoreContext,
  serviceAccount: string,
  options: { name?: string | undefined; expiresAt?: number | undefined },
): Promise<{ id: string; key: string; info: ApiKeyInfo }> {
  const account = await identityRow(ctx, serviceAccount, 'service');
  const label = validateText('API key name', options.name ?? 'apikey');
  const expiresAt =
    options.expiresAt === undefined
      ? null
      : new Date(validateTimestamp('expiresAt', options.expiresAt));
  const key = `${API_KEY_PREFIX}${randomBytes(32).toString('base64url')}`;
  const id = randomUUID();
  return guard('create API key', async () => {
    const [row] = await ctx.db
      .insert(apiTokens)
      .values({
        id,
        userId: account.id,
        tokenHash: hashToken(key),
        name: label,
        createdAt: nowOf(ctx),
        expiresAt,
      })
      .returning();
    return { id, key, info: toApiKeyInfo(row!, account.name) };
  });
}

function toApiKeyInfo(
  row: {
    id: string;
    name: string;
    createdAt: Date;
    lastUsedAt: Date | null;
    expiresAt: Date | null;
  },
  serviceAccount: string,
): ApiKeyInfo {
  return {
    id: row.id,
    serviceAccount,
    name: row.name,
    createdAt: row.createdAt.toISOString(),
    lastUsedAt: row.lastUsedAt?.toISOString() ?? null,
    expiresAt: row.expiresAt?.toISOString() ?? null,
  };
}

/** Live API keys (not revoked), of one service account or of all. */
export async function listApiKeys(
  ctx: StoreContext,
  serviceAccount?: string,
): Promise<ApiKeyInfo[]> {
  const account =
    serviceAccount === undefined ? undefined : await identityRow(ctx, serviceAccount, 'service');
  return guard('list API keys', async () => {
    const rows = await ctx.db
      .select({ token: apiTokens, owner: users.name })
      .from(apiTokens)
      .innerJoin(users, eq(apiTokens.userId, users.id))
      .where(
        and(
          eq(users.kind, 'service'),
          isNull(apiTokens.revokedAt),
          account === undefined ? undefined : eq(users.id, account.id),
        ),
      )
      .orderBy(asc(users.name), asc(apiTokens.createdAt), asc(apiTokens.id));
    return rows.map((r) => toApiKeyInfo(r.token, r.owner));
  });
}

/** Deletes an API key (NOT_FOUND if none); returns whose it was, to end that identity's sessions. */
export async function deleteApiKey(
  ctx: StoreContext,
  id: string,
): Promise<ApiKeyInfo & { userId: string }> {
  return guard('delete API key', () =>
    changingIdentities(ctx, async () => {
      const [row] = await ctx.db
        .select({ token: apiTokens, owner: users.name, kind: users.kind })
        .from(apiTokens)
        .innerJoin(users, eq(apiTokens.userId, users.id))
        .where(eq(apiTokens.id, id))
        .limit(1);
      if (row === undefined || row.kind !== 'service')
        throw new HoopError('NOT_FOUND', 'No such API key.');
      await ctx.db.delete(apiTokens).where(eq(apiTokens.id, id));
      return { ...toApiKeyInfo(row.token, row.owner), userId: row.token.userId };
    }),
  );
}
