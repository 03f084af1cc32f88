/**
 * /api/v1/apikeys: a service account's API keys (`hoop_sak_…`). A key is shown once, stored as
 * sha256, used like any token (HOOP_TOKEN), may expire, records its last use, and deleting it
 * ends the live sessions of its service account.
 */
import { HoopError } from '@hoop/shared';
import type { Router } from '../http/router.js';
import { createApiKey, deleteApiKey, listApiKeys } from '../store/users.js';
import { type ApiDeps, requireAdmin, stringField } from './context.js';

const UNIT_MS = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
/** Longest key lifetime accepted: one year. */
const MAX_EXPIRY_MS = 366 * UNIT_MS.d;

/** `30d`, `12h`, `90m`, `3600s` → milliseconds (INVALID_REQUEST otherwise). */
export function parseDuration(value: string): number {
  const match = /^(\d{1,6})([smhd])$/.exec(value.trim());
  const ms =
    match === null ? Number.NaN : Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS];
  if (!Number.isFinite(ms) || ms <= 0 || ms > MAX_EXPIRY_MS) {
    throw new HoopError(
      'INVALID_REQUEST',
      `expires must be a duration such as 30d, 12h or 90m, at most 366d (got "${value.slice(0, 20)}")`,
    );
  }
  return ms;
}

export function apiKeyRoutes(router: Router, deps: ApiDeps): void {
  const ctx = deps.store.context;

  router.add('GET', '/api/v1/apikeys', async ({ req, query }) => {
    await requireAdmin(deps, req);
    return { body: await listApiKeys(ctx, query.get('serviceaccount') ?? undefined) };
  });

  router.add('POST', '/api/v1/apikeys', async (c) => {
    const caller = await requireAdmin(deps, c.req);
    const body = await c.body();
    const expires = stringField(body, 'expires');
    const created = await createApiKey(ctx, stringField(body, 'serviceAccount', true), {
      name: stringField(body, 'name'),
      expiresAt: expires === undefined ? undefined : ctx.clock.now() + parseDuration(expires),
    });
    await deps.audit({
      type: 'admin-change',
      actor: caller.name,
      subject: created.info.serviceAccount,
      detail: { change: 'apikey.create', id: created.id, expiresAt: created.info.expiresAt },
    });
    return { status: 201, body: { ...created.info, key: created.key } };
  });

  router.add('DELETE', '/api/v1/apikeys/:id', async ({ req, params }) => {
    const caller = await requireAdmin(deps, req);
    const deleted = await deleteApiKey(ctx, params['id'] as string);
    const ended = deps.hub.terminateSessions(
      { userId: deleted.userId },
      new HoopError('AUTH_INVALID_TOKEN', `an API key of ${deleted.serviceAccount} was deleted`),
    );
    await deps.audit({
      type: 'admin-change',
      actor: caller.name,
      subject: deleted.serviceAccount,
      detail: { change: 'apikey.delete', id: deleted.id, sessionsEnded: ended },
    });
    return {
      body: { deleted: deleted.id, serviceAccount: deleted.serviceAccount, sessionsEnded: ended },
    };
  });
}
