/**
 * Trust policies: which external OIDC tokens (a CI system's) act as which service account. A
 * policy names the issuer and audience exactly, a glob on `sub`, and globs on other claims.
 */
import { randomUUID } from 'node:crypto';
import { HoopError } from '@hoop/shared';
import { asc, eq } from 'drizzle-orm';
import { guard, mapViolation, nowOf, type StoreContext } from './context.js';
import { SqlState } from './db-errors.js';
import { type TrustPolicyRow, trustPolicies, users } from './schema.js';
import { validateName } from './validation.js';

export interface TrustPolicyInfo {
  readonly id: string;
  readonly name: string;
  readonly issuer: string;
  readonly audience: string;
  readonly subjectPattern: string;
  readonly claims: Readonly<Record<string, string>>;
  readonly serviceAccount: string;
  readonly serviceAccountId: string;
  readonly createdAt: string;
}

export interface CreateTrustPolicyInput {
  name: string;
  issuer: string;
  audience: string;
  subjectPattern: string;
  claims?: Record<string, unknown> | undefined;
  serviceAccount: string;
}

const MAX_CLAIMS = 16;
const CLAIM_NAME = /^[A-Za-z_][A-Za-z0-9_.:-]{0,63}$/;

function invalid(message: string): HoopError {
  return new HoopError('INVALID_REQUEST', message);
}

/** An https issuer (http only for loopback, e.g. tests and local IdPs), without a trailing slash. */
export function validateIssuer(value: unknown): string {
  let url: URL;
  try {
    url = new URL(String(value));
  } catch {
    throw invalid('issuer must be a URL such as https://token.actions.githubusercontent.com');
  }
  const loopback = ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback)) {
    throw invalid('issuer must be an https URL (http only on loopback)');
  }
  if (url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') {
    throw invalid('issuer must not have a query, fragment or credentials');
  }
  return String(value);
}

function text(field: string, value: unknown, max = 512): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > max) {
    throw invalid(`${field} must be a non-empty string of at most ${max} characters`);
  }
  return value;
}

function toInfo(row: TrustPolicyRow, serviceAccount: string): TrustPolicyInfo {
  return {
    id: row.id,
    name: row.name,
    issuer: row.issuer,
    audience: row.audience,
    subjectPattern: row.subjectPattern,
    claims: row.claims ?? {},
    serviceAccount,
    serviceAccountId: row.serviceAccountId,
    createdAt: row.createdAt.toISOString(),
  };
}

export async function createTrustPolicy(
  ctx: StoreContext,
  input: CreateTrustPolicyInput,
): Promise<TrustPolicyInfo> {
  const name = validateName('trust policy', input.name);
  const issuer = validateIssuer(input.issuer);
  const audience = text('audience', input.audience);
  const subjectPattern = text('subject pattern', input.subjectPattern);
  const claims: Record<string, string> = {};
  const given = input.claims ?? {};
  if (typeof given !== 'object' || Array.isArray(given) || Object.keys(given).length > MAX_CLAIMS) {
    throw invalid(`claims must be an object of at most ${MAX_CLAIMS} name → pattern entries`);
  }
  for (const [claim, pattern] of Object.entries(given)) {
    if (!CLAIM_NAME.test(claim) || ['iss', 'aud', 'sub', 'exp', 'nbf', 'iat'].includes(claim)) {
      throw invalid(
        `claim name "${claim.slice(0, 64)}" is not allowed (iss, aud, sub and times have their own fields)`,
      );
    }
    claims[claim] = text(`claim ${claim}`, pattern);
  }
  return guard('create trust policy', async () => {
    const [account] = await ctx.db
      .select({ id: users.id, kind: users.kind })
      .from(users)
      .where(eq(users.name, input.serviceAccount))
      .limit(1);
    if (account === undefined || account.kind !== 'service') {
      throw new HoopError(
        'NOT_FOUND',
        `No service account named "${String(input.serviceAccount).slice(0, 80)}".`,
      );
    }
    try {
      const [row] = await ctx.db
        .insert(trustPolicies)
        .values({
          id: randomUUID(),
          name,
          issuer,
          audience,
          subjectPattern,
          claims,
          serviceAccountId: account.id,
          createdAt: nowOf(ctx),
        })
        .returning();
      return toInfo(row!, input.serviceAccount);
    } catch (err) {
      mapViolation(
        err,
        SqlState.uniqueViolation,
        () => new HoopError('ALREADY_EXISTS', `A trust policy named "${name}" already exists.`),
      );
    }
  });
}

async function select(
  ctx: StoreContext,
  where?: ReturnType<typeof eq>,
): Promise<TrustPolicyInfo[]> {
  const rows = await ctx.db
    .select({ policy: trustPolicies, account: users.name })
    .from(trustPolicies)
    .innerJoin(users, eq(trustPolicies.serviceAccountId, users.id))
    .where(where)
    .orderBy(asc(trustPolicies.name));
  return rows.map((r) => toInfo(r.policy, r.account));
}

export async function listTrustPolicies(ctx: StoreContext): Promise<TrustPolicyInfo[]> {
  return guard('list trust policies', () => select(ctx));
}

/** The policies that trust tokens from this issuer (exact string match, as `iss` is compared). */
export async function trustPoliciesForIssuer(
  ctx: StoreContext,
  issuer: string,
): Promise<TrustPolicyInfo[]> {
  return guard('read trust policies', () => select(ctx, eq(trustPolicies.issuer, issuer)));
}

export async function deleteTrustPolicy(ctx: StoreContext, name: string): Promise<TrustPolicyInfo> {
  return guard('delete trust policy', async () => {
    const [existing] = await select(ctx, eq(trustPolicies.name, name));
    if (existing === undefined)
      throw new HoopError('NOT_FOUND', `No trust policy named "${name}".`);
    await ctx.db.delete(trustPolicies).where(eq(trustPolicies.id, existing.id));
    return existing;
  });
}
