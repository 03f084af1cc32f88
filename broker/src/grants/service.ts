/**
 * Grants: mint (sign a JWT and remember its jti), verify (signature, issuer, audience, type,
 * expiry, claim shapes), authenticate (verify + not revoked + holder still enabled), list and
 * revoke. The token itself is returned once, by `mint`, and never stored, logged or put in an
 * error.
 */
import { randomUUID } from 'node:crypto';
import { HoopError } from '@hoop/shared';
import { type JWTPayload, jwtVerify } from 'jose';
import type { AuditRecorder } from '../audit/record.js';
import type { Caller } from '../identity/caller.js';
import { nowOf, type StoreContext } from '../store/context.js';
import {
  type GrantConnection,
  type GrantInfo,
  getGrant,
  grantConnection,
  grantState,
  insertGrants,
  type ListGrantsOptions,
  listGrants,
  type NewGrant,
  revokeGrant,
  toGrantInfo,
} from '../store/grants.js';
import { brokerWrites, GroupCommit } from '../store/group-commit.js';
import {
  defaultGrantLimits,
  GRANT_ALGORITHM,
  GRANT_AUDIENCE,
  GRANT_ISSUER,
  GRANT_TYPE,
  type GrantClaims,
  type GrantLimits,
  type GrantVia,
  grantCapSeconds,
  grantTimes,
  MAX_GRANT_BYTES,
  MAX_REASON_LENGTH,
} from './claims.js';
import { signEdDsaJwt } from './jws.js';
import { KeyRing } from './keys.js';

export interface GrantServiceOptions {
  readonly ctx: StoreContext;
  readonly audit: AuditRecorder;
  readonly limits?: Partial<GrantLimits>;
  /**
   * Lifetime of the session grant minted for a client that presented a user token (not a
   * grant); capped like any grant. Default: the connection's cap.
   */
  readonly sessionGrantTtlSeconds?: number;
  /**
   * How long a session grant is shared with the user's next sessions on the same connection
   * (at most a tenth of its lifetime; exclusive stores only). Default SESSION_GRANT_REUSE_MS.
   */
  readonly sessionGrantReuseMs?: number;
  readonly issuer?: string;
  readonly audience?: string;
}

export interface MintRequest {
  readonly subject: { readonly userId: string; readonly name: string };
  readonly connection: string;
  /** Requested lifetime in seconds; the default TTL when omitted. Capped either way. */
  readonly ttlSeconds?: number;
  readonly reason?: string;
  readonly actions?: readonly string[];
  readonly via: GrantVia;
  /** Who asked, for the audit trail (defaults to the subject). */
  readonly actor?: string;
}

export interface MintedGrant {
  readonly id: string;
  /** The JWT: give it to the holder once; never log it. */
  readonly grant: string;
  /** epoch ms */
  readonly expiresAt: number;
  readonly ttlSeconds: number;
  /** The requested lifetime was cut to the connection's cap. */
  readonly capped: boolean;
  readonly connection: string;
}

/** Default of GrantServiceOptions.sessionGrantReuseMs. */
export const SESSION_GRANT_REUSE_MS = 30_000;
/** Most session grants kept for sharing at once (one per user and connection). */
const MAX_SHARED_SESSION_GRANTS = 1024;

interface SharedSessionGrant {
  readonly minted: MintedGrant;
  /** The key that signed it: a rotation stops the sharing. */
  readonly kid: string;
  /** epoch ms, on the store's clock */
  readonly mintedAt: number;
  /** Stores it, once, however many sessions share it. */
  readonly record: () => Promise<void>;
}

const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

/** Whether `token` has the shape of a JWT (three base64url parts); says nothing of validity. */
export function looksLikeJwt(token: string): boolean {
  return token.startsWith('eyJ') && token.length <= MAX_GRANT_BYTES && JWT_SHAPE.test(token);
}

export class GrantService {
  readonly keys: KeyRing;
  readonly limits: GrantLimits;
  readonly issuer: string;
  readonly audience: string;
  /** Grant rows stored while another insert runs go together in the next one. */
  private readonly rows: GroupCommit<NewGrant>;
  /** Session grants that new sessions of the same user and connection may share (mintSession). */
  private readonly sessionGrants = new Map<string, SharedSessionGrant>();

  constructor(private readonly options: GrantServiceOptions) {
    this.rows = new GroupCommit(
      (rows) => insertGrants(options.ctx, rows),
      brokerWrites(options.ctx.writes),
    );
    this.limits = { ...defaultGrantLimits, ...options.limits };
    this.issuer = options.issuer ?? GRANT_ISSUER;
    this.audience = options.audience ?? GRANT_AUDIENCE;
    this.keys = new KeyRing(options.ctx, { retentionSeconds: this.limits.ceilingSeconds });
  }

  private get ctx(): StoreContext {
    return this.options.ctx;
  }

  /** Loads (or creates) the signing key, so the first grant does not pay for it. */
  async init(): Promise<void> {
    await this.keys.signingKey();
  }

  async mint(request: MintRequest): Promise<MintedGrant> {
    const connection = await grantConnection(this.ctx, request.connection);
    if (connection === undefined) {
      throw new HoopError('CONNECTION_NOT_FOUND', `no connection named ${request.connection}`);
    }
    const { minted, record } = await this.sign(request, connection);
    await record();
    return minted;
  }

  /**
   * Signs a grant for `connection` (already looked up) and returns it with `record`, which
   * stores it and its `grant-minted` audit event. The grant must not be handed out before
   * `record` resolved, except by the hub for a session grant whose session is closed if
   * recording fails.
   */
  private async sign(
    request: MintRequest,
    connection: GrantConnection,
  ): Promise<{ minted: MintedGrant; record: () => Promise<void>; kid: string }> {
    const reason = request.reason?.trim() || undefined;
    if (reason !== undefined && reason.length > MAX_REASON_LENGTH) {
      throw new HoopError(
        'INVALID_REQUEST',
        `reason is longer than ${MAX_REASON_LENGTH} characters`,
      );
    }
    const actions = [...new Set(request.actions ?? ['connect'])];
    if (actions.length === 0)
      throw new HoopError('INVALID_REQUEST', 'a grant needs at least one action');
    const cap = grantCapSeconds(this.limits, connection.maxGrantTtlSeconds);
    const times = grantTimes(this.ctx.clock.now(), request.ttlSeconds, cap, this.limits);
    const id = randomUUID();
    const { kid, key } = await this.keys.signingKey();
    const payload: JWTPayload = {
      name: request.subject.name,
      conn: connection.name,
      act: actions,
      ...(reason === undefined ? {} : { reason }),
    };
    const grant = signEdDsaJwt(
      { alg: GRANT_ALGORITHM, kid, typ: GRANT_TYPE },
      {
        ...payload,
        iss: this.issuer,
        aud: this.audience,
        sub: request.subject.userId,
        jti: id,
        iat: times.iat,
        exp: times.exp,
      },
      key,
    );
    const record = async (): Promise<void> => {
      await this.rows.add({
        id,
        userId: request.subject.userId,
        subjectName: request.subject.name,
        connectionName: connection.name,
        actions,
        reason,
        via: request.via,
        issuedAt: new Date(times.iat * 1000),
        expiresAt: new Date(times.exp * 1000),
      });
      await this.options.audit({
        type: 'grant-minted',
        actor: request.actor ?? request.subject.name,
        subject: id,
        detail: {
          connection: connection.name,
          user: request.subject.name,
          actions,
          via: request.via,
          ttlSeconds: times.ttlSeconds,
          expiresAt: times.exp * 1000,
          ...(reason === undefined ? {} : { reason }),
        },
      });
    };
    const minted: MintedGrant = {
      id,
      grant,
      expiresAt: times.exp * 1000,
      ttlSeconds: times.ttlSeconds,
      capped: times.capped,
      connection: connection.name,
    };
    return { minted, record, kid };
  }

  /**
   * The JWT of an existing, still usable grant, signed again from its stored facts (same jti,
   * subject, connection, actions and window). Lets a requester fetch the grant an approver's
   * decision minted without the token ever being stored.
   */
  async reissue(id: string): Promise<MintedGrant> {
    await this.assertUsable(id);
    const row = await getGrant(this.ctx, id);
    if (row === undefined) throw invalid('this broker has no record of it');
    const { kid, key } = await this.keys.signingKey();
    const iat = Math.floor(row.issuedAt.getTime() / 1000);
    const exp = Math.floor(row.expiresAt.getTime() / 1000);
    const grant = signEdDsaJwt(
      { alg: GRANT_ALGORITHM, kid, typ: GRANT_TYPE },
      {
        name: row.subjectName,
        conn: row.connectionName,
        act: row.actions,
        ...(row.reason === null ? {} : { reason: row.reason }),
        iss: this.issuer,
        aud: this.audience,
        sub: row.userId,
        jti: row.id,
        iat,
        exp,
      },
      key,
    );
    return {
      id: row.id,
      grant,
      expiresAt: exp * 1000,
      ttlSeconds: exp - iat,
      capped: false,
      connection: row.connectionName,
    };
  }

  /**
   * The session grant for a token-authenticated client opening `connection` (as the hub looked
   * it up); `record` stores it. The hub sends the grant to the agent at once and records it
   * beside the session, off the connection's critical path.
   *
   * On an exclusive store, the sessions one user opens on one connection within
   * sessionGrantReuseMs of each other share a grant (one signature, one row, one `grant-minted`
   * event, and the agent checks the same JWT once): a client that connects over and over (a
   * pool, `pgbench -C`, a script) paid all of that on every connection. Revoking that grant ends
   * all of them. Not shared on a store other brokers use too, where a revocation made by another
   * broker would not be seen here.
   */
  async mintSession(
    subject: { readonly userId: string; readonly name: string },
    connection: GrantConnection,
  ): Promise<MintedGrant & { record: () => Promise<void> }> {
    const shareable = this.ctx.exclusive === true;
    const key = `${subject.userId}\n${subject.name}\n${connection.name}\n${connection.maxGrantTtlSeconds ?? ''}`;
    if (shareable) {
      const shared = await this.sharedSessionGrant(key);
      if (shared !== undefined) return { ...shared.minted, record: shared.record };
    }
    const { minted, record, kid } = await this.sign(
      {
        subject,
        connection: connection.name,
        via: 'session',
        actions: ['connect'],
        ttlSeconds: this.options.sessionGrantTtlSeconds ?? this.limits.ceilingSeconds,
      },
      connection,
    );
    let recording: Promise<void> | undefined;
    const recordOnce = (): Promise<void> => {
      recording ??= record();
      return recording;
    };
    if (shareable) {
      const entry: SharedSessionGrant = {
        minted,
        kid,
        mintedAt: this.ctx.clock.now(),
        record: recordOnce,
      };
      this.shareSessionGrant(key, entry);
      // A grant that could not be stored is never handed out again.
      void recordOnce().catch(() => {
        if (this.sessionGrants.get(key) === entry) this.sessionGrants.delete(key);
      });
    }
    return { ...minted, record: recordOnce };
  }

  /** The session grant minted for `key` recently enough to share, signed with the current key. */
  private async sharedSessionGrant(key: string): Promise<SharedSessionGrant | undefined> {
    const shared = this.sessionGrants.get(key);
    if (shared === undefined) return undefined;
    const age = this.ctx.clock.now() - shared.mintedAt;
    const window = Math.min(this.sessionGrantReuseMs, (shared.minted.ttlSeconds * 1000) / 10);
    if (age < 0 || age >= window || shared.kid !== (await this.keys.signingKey()).kid) {
      if (this.sessionGrants.get(key) === shared) this.sessionGrants.delete(key);
      return undefined;
    }
    return shared;
  }

  private shareSessionGrant(key: string, entry: SharedSessionGrant): void {
    this.sessionGrants.delete(key);
    this.sessionGrants.set(key, entry);
    // Oldest first (Map order): drop what can no longer be shared, and never keep more than
    // MAX_SHARED_SESSION_GRANTS.
    const now = this.ctx.clock.now();
    for (const [k, e] of this.sessionGrants) {
      const stale = now - e.mintedAt >= this.sessionGrantReuseMs;
      if (!stale && this.sessionGrants.size <= MAX_SHARED_SESSION_GRANTS) break;
      this.sessionGrants.delete(k);
    }
  }

  private get sessionGrantReuseMs(): number {
    return this.options.sessionGrantReuseMs ?? SESSION_GRANT_REUSE_MS;
  }

  /**
   * Checks a grant's signature (a key of ours, alg EdDSA only), type, issuer, audience and
   * expiry, and the shape of its claims. Throws GRANT_EXPIRED or GRANT_INVALID; the error never
   * repeats the token.
   */
  async verify(token: string): Promise<GrantClaims> {
    if (typeof token !== 'string' || token.length > MAX_GRANT_BYTES) {
      throw new HoopError(
        'AUTH_INVALID_TOKEN',
        `the token is longer than ${MAX_GRANT_BYTES} bytes`,
      );
    }
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(
        token,
        async (header) => {
          if (header.alg !== GRANT_ALGORITHM || typeof header.kid !== 'string') {
            throw invalid('it is not signed with a grant key');
          }
          const key = await this.keys.publicKey(header.kid);
          if (key === undefined) throw invalid('it is signed with a key this broker does not know');
          return key;
        },
        {
          algorithms: [GRANT_ALGORITHM],
          issuer: this.issuer,
          audience: this.audience,
          typ: GRANT_TYPE,
          currentDate: new Date(this.ctx.clock.now()),
          requiredClaims: ['sub', 'jti', 'exp', 'iat'],
        },
      ));
    } catch (err) {
      throw mapVerifyError(err);
    }
    return claimsOf(payload);
  }

  /**
   * Who a grant's holder is: verifies the grant, then checks the store — the grant is known and
   * not revoked, and its subject still exists and is enabled.
   */
  async authenticate(token: string): Promise<Caller> {
    const claims = await this.verify(token);
    await this.assertUsable(claims.id);
    return {
      userId: claims.userId,
      name: claims.name,
      // A grant carries no role: whoever holds it may do what it says, on its connection, only.
      role: 'user',
      kind: 'person',
      groups: [],
      via: 'grant',
      grant: {
        id: claims.id,
        connection: claims.connection,
        actions: claims.actions,
        expiresAt: claims.expiresAt,
      },
    };
  }

  /** Throws GRANT_REVOKED / GRANT_EXPIRED / GRANT_INVALID unless the grant may open sessions now. */
  async assertUsable(id: string): Promise<void> {
    const state = await grantState(this.ctx, id);
    if (state === undefined) throw invalid('this broker has no record of it');
    if (state.revokedAt !== null) throw new HoopError('GRANT_REVOKED', 'the grant was revoked');
    if (state.subjectGone) {
      throw new HoopError('GRANT_REVOKED', 'the identity the grant was issued to is disabled');
    }
    if (state.expiresAt.getTime() <= this.ctx.clock.now()) {
      throw new HoopError('GRANT_EXPIRED', `the grant expired at ${state.expiresAt.toISOString()}`);
    }
  }

  /** A caller's own grants; every grant for admins (`all`). */
  list(
    caller: { readonly userId: string; readonly role: string },
    options: Omit<ListGrantsOptions, 'userId'> & { all?: boolean } = {},
  ): Promise<GrantInfo[]> {
    const { all, ...rest } = options;
    return listGrants(this.ctx, {
      ...rest,
      ...(caller.role === 'admin' && all !== false ? {} : { userId: caller.userId }),
    });
  }

  /**
   * Revokes a grant (owner or admin). Someone else's grant is NOT_FOUND, as if it did not exist.
   * The caller ends the grant's live sessions (the hub), this only records the revocation.
   */
  async revoke(
    id: string,
    caller: { readonly userId: string; readonly name: string; readonly role: string },
  ): Promise<GrantInfo> {
    const row = await getGrant(this.ctx, id);
    if (row === undefined || (row.userId !== caller.userId && caller.role !== 'admin')) {
      throw new HoopError('NOT_FOUND', `no grant with id ${id} that you may revoke`, {
        hint: 'List your grants with `hoop grants list`.',
      });
    }
    const wasRevoked = row.revokedAt !== null;
    for (const [key, shared] of this.sessionGrants) {
      if (shared.minted.id === id) this.sessionGrants.delete(key);
    }
    const revoked = await revokeGrant(this.ctx, id);
    if (!wasRevoked) {
      await this.options.audit({
        type: 'grant-revoked',
        actor: caller.name,
        subject: id,
        detail: { connection: revoked.connectionName, user: revoked.subjectName },
      });
    }
    return toGrantInfo(revoked, nowOf(this.ctx));
  }
}

function invalid(why: string): HoopError {
  return new HoopError('GRANT_INVALID', `the grant is not valid: ${why}`);
}

/** jose's error codes → ours, with fixed messages (no claim values, no token). */
function mapVerifyError(err: unknown): HoopError {
  if (err instanceof HoopError) return err;
  const code = (err as { code?: unknown }).code;
  switch (code) {
    case 'ERR_JWT_EXPIRED':
      return new HoopError('GRANT_EXPIRED', 'the grant has expired');
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return invalid('its signature does not verify');
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED': {
      const claim = (err as { claim?: unknown }).claim;
      return invalid(
        `its ${typeof claim === 'string' ? `"${claim.slice(0, 16)}" ` : ''}claim is wrong`,
      );
    }
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
      return invalid('it is not signed with a grant key');
    default:
      return invalid('it is malformed');
  }
}

function claimsOf(payload: JWTPayload): GrantClaims {
  const { sub, jti, iat, exp } = payload;
  const name = payload['name'];
  const conn = payload['conn'];
  const act = payload['act'];
  const reason = payload['reason'];
  if (
    typeof sub !== 'string' ||
    typeof jti !== 'string' ||
    typeof iat !== 'number' ||
    typeof exp !== 'number' ||
    typeof name !== 'string' ||
    typeof conn !== 'string' ||
    !Array.isArray(act) ||
    !act.every((a) => typeof a === 'string') ||
    (reason !== undefined && typeof reason !== 'string')
  ) {
    throw invalid('its claims are not a grant');
  }
  return {
    id: jti,
    userId: sub,
    name,
    connection: conn,
    actions: act as string[],
    reason: reason as string | undefined,
    issuedAt: iat * 1000,
    expiresAt: exp * 1000,
  };
}
