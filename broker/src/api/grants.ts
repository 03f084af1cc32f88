/**
 * /api/v1/grants: request (mint), list, show the presented grant, revoke; and the JWKS at
 * /.well-known/jwks.json that agents verify grants with. The grant JWT appears in exactly one
 * response: the one that mints it. On a connection that requires an access review the request
 * creates a review instead (202 `{review}`), unless it is break-glass (`breakGlass: true`, a
 * member of a break-glass group, with a reason): then the review is approved at once and the
 * grant is in the answer (201, with `review`).
 */
import type { IncomingMessage } from 'node:http';
import { HoopError } from '@hoop/shared';
import { MAX_GRANT_BYTES, parseTtl } from '../grants/claims.js';
import { type GrantService, looksLikeJwt, type MintedGrant } from '../grants/service.js';
import { bearerToken } from '../http/auth.js';
import type { Router } from '../http/router.js';
import { type Action, type Caller, actions as knownActions } from '../identity/caller.js';
import { ReviewService } from '../reviews/service.js';
import { grantConnection } from '../store/grants.js';
import { type ApiDeps, authenticate, requireAdmin, stringField } from './context.js';

export function grantRoutes(
  router: Router,
  deps: ApiDeps,
  grants: GrantService,
  reviews?: ReviewService,
): void {
  router.add('GET', '/.well-known/jwks.json', async () => ({ body: await grants.keys.jwks() }));

  router.add('POST', '/api/v1/grants', async ({ req, body }) => {
    const caller = await notGrant(authenticate(deps, req));
    const input = await body();
    const connection = stringField(input, 'connection', true);
    const reason = stringField(input, 'reason');
    const ttlSeconds =
      input['ttl'] === undefined || input['ttl'] === null ? undefined : parseTtl(input['ttl']);
    const actions = actionsField(input['actions']);
    const breakGlass = booleanField(input, 'breakGlass');
    const target = await grantConnection(deps.store.context, connection);
    const authorize = deps.hub.authorizer;
    let allowed = target !== undefined;
    for (const action of actions) {
      if (!allowed || target === undefined) break;
      allowed = await authorize(caller, { name: target.name, tags: target.tags }, action);
    }
    if (!allowed) {
      // The same answer as for a connection that does not exist: nothing to learn by probing.
      throw new HoopError(
        'CONNECTION_NOT_FOUND',
        `no connection named ${connection} that you may use`,
      );
    }
    if (breakGlass) {
      if (reviews === undefined) {
        throw new HoopError('INVALID_REQUEST', 'this broker has no access reviews');
      }
      const taken = await reviews.breakGlass(caller, {
        connection,
        ...(ttlSeconds === undefined ? {} : { durationSeconds: ttlSeconds }),
        ...(reason === undefined ? {} : { justification: reason }),
      });
      return {
        status: 201,
        body: { ...mintedBody(taken.grant, ['connect']), review: taken.review },
      };
    }
    if (
      reviews !== undefined &&
      ReviewService.accessRequired(await deps.store.getConnectionPolicy(connection))
    ) {
      // Just-in-time approval: a review now, the grant once approvers agree.
      const review = await reviews.requestAccess(caller, {
        connection,
        ...(ttlSeconds === undefined ? {} : { durationSeconds: ttlSeconds }),
        ...(reason === undefined ? {} : { justification: reason }),
      });
      return { status: 202, body: { review } };
    }
    const minted = await grants.mint({
      subject: { userId: caller.userId, name: caller.name },
      connection,
      actions,
      via: grantVia(caller.via),
      ...(ttlSeconds === undefined ? {} : { ttlSeconds }),
      ...(reason === undefined ? {} : { reason }),
    });
    return { status: 201, body: mintedBody(minted, actions) };
  });

  router.add('GET', '/api/v1/grants', async ({ req, query }) => {
    const caller = await notGrant(authenticate(deps, req));
    const limit = Number(query.get('limit') ?? '100');
    return {
      body: await grants.list(caller, {
        all: query.get('all') !== 'false',
        activeOnly: query.get('active') === 'true',
        includeSession: query.get('session') === 'true',
        ...(Number.isInteger(limit) && limit > 0 ? { limit } : {}),
      }),
    };
  });

  // The grant presented as the bearer: what `hoop connect --grant` checks before it listens.
  router.add('GET', '/api/v1/grants/current', async ({ req }) => {
    const caller = await grants.authenticate(grantBearer(req, deps.maxTokenBytes));
    const grant = caller.grant as NonNullable<Caller['grant']>;
    const conn = await deps.store.getConnection(grant.connection);
    return {
      body: {
        id: grant.id,
        user: caller.name,
        name: conn.name,
        connection: conn.name,
        actions: grant.actions,
        expiresAt: new Date(grant.expiresAt).toISOString(),
        type: conn.type,
        database: conn.database,
        agent: conn.agent,
        agentOnline: deps.hub.isAgentOnline(conn.agentId),
      },
    };
  });

  router.add('DELETE', '/api/v1/grants/:id', async ({ req, params }) => {
    const caller = await notGrant(authenticate(deps, req));
    const id = params['id'] as string;
    const revoked = await grants.revoke(id, caller);
    const sessionsEnded = deps.hub.terminateSessions(
      { grantId: id },
      new HoopError('GRANT_REVOKED', `the grant for ${revoked.connection} was revoked`),
    );
    return { body: { ...revoked, sessionsEnded } };
  });

  router.add('POST', '/api/v1/grants/keys/rotate', async ({ req }) => {
    const admin = await requireAdmin(deps, req);
    const kid = await grants.keys.rotate();
    deps.store.context.logger.info('rotated the grant-signing key', { kid, by: admin.name });
    return { status: 201, body: { kid } };
  });
}

/** A grant is for its connection only: it cannot mint, list or revoke grants. */
async function notGrant(caller: Promise<Caller>): Promise<Caller> {
  const resolved = await caller;
  if (resolved.grant !== undefined || resolved.via === 'grant') {
    throw new HoopError('AUTH_FORBIDDEN', 'a grant cannot be used to manage grants', {
      hint: 'Use your hoop login (or API key) for `hoop grants`.',
    });
  }
  return resolved;
}

function grantBearer(req: IncomingMessage, maxTokenBytes: number): string {
  const token = bearerToken(req, Math.min(maxTokenBytes, MAX_GRANT_BYTES + 'Bearer '.length));
  if (!looksLikeJwt(token)) throw new HoopError('AUTH_INVALID_TOKEN', 'the bearer is not a grant');
  return token;
}

function mintedBody(minted: MintedGrant, actions: readonly Action[]) {
  return {
    id: minted.id,
    grant: minted.grant,
    expiresAt: new Date(minted.expiresAt).toISOString(),
    connection: minted.connection,
    actions,
    ttlSeconds: minted.ttlSeconds,
    capped: minted.capped,
  };
}

function booleanField(input: Record<string, unknown>, name: string): boolean {
  const value = input[name];
  if (value === undefined || value === null) return false;
  if (typeof value !== 'boolean') {
    throw new HoopError('INVALID_REQUEST', `field "${name}" must be true or false`);
  }
  return value;
}

function actionsField(value: unknown): Action[] {
  if (value === undefined || value === null) return ['connect'];
  if (!Array.isArray(value) || value.length === 0 || value.length > knownActions.length) {
    throw new HoopError(
      'INVALID_REQUEST',
      `field "actions" must be a list of ${knownActions.join(', ')}`,
    );
  }
  const out = new Set<Action>();
  for (const a of value) {
    if (typeof a !== 'string' || !(knownActions as readonly string[]).includes(a)) {
      throw new HoopError(
        'INVALID_REQUEST',
        `unknown action in "actions"; use ${knownActions.join(', ')}`,
      );
    }
    out.add(a as Action);
  }
  return [...out];
}

function grantVia(via: Caller['via']): 'token' | 'apikey' | 'oidc' | 'ci' {
  return via === 'grant' ? 'token' : via;
}
