/**
 * /api/v1/serviceaccounts: identities for machines. They authenticate with API keys
 * (/api/v1/apikeys) or, from CI, through trust policies (/api/v1/trust); never with a password.
 */
import { HoopError } from '@hoop/shared';
import type { Router } from '../http/router.js';
import {
  createIdentity,
  deleteServiceAccount,
  getIdentity,
  listIdentities,
  validateGroups,
} from '../store/users.js';
import { type ApiDeps, requireAdmin, stringField } from './context.js';

export function serviceAccountRoutes(router: Router, deps: ApiDeps): void {
  const ctx = deps.store.context;

  router.add('GET', '/api/v1/serviceaccounts', async ({ req }) => {
    await requireAdmin(deps, req);
    return { body: await listIdentities(ctx, 'service') };
  });

  router.add('GET', '/api/v1/serviceaccounts/:name', async ({ req, params }) => {
    await requireAdmin(deps, req);
    return { body: await getIdentity(ctx, params['name'] as string, 'service') };
  });

  router.add('POST', '/api/v1/serviceaccounts', async (c) => {
    const caller = await requireAdmin(deps, c.req);
    const body = await c.body();
    const role = stringField(body, 'role') ?? 'user';
    if (role !== 'admin' && role !== 'user') {
      throw new HoopError('INVALID_REQUEST', 'field "role" must be admin or user');
    }
    const created = await createIdentity(ctx, {
      name: stringField(body, 'name', true),
      role,
      kind: 'service',
      groups: validateGroups(body['groups']),
    });
    await deps.audit({
      type: 'admin-change',
      actor: caller.name,
      subject: created.name,
      detail: { change: 'serviceaccount.create', role, groups: created.groups },
    });
    return { status: 201, body: created };
  });

  router.add('DELETE', '/api/v1/serviceaccounts/:name', async ({ req, params }) => {
    const caller = await requireAdmin(deps, req);
    const deleted = await deleteServiceAccount(ctx, params['name'] as string);
    const ended = deps.hub.terminateSessions(
      { userId: deleted.id },
      new HoopError('AUTH_INVALID_TOKEN', `service account ${deleted.name} was deleted`),
    );
    await deps.audit({
      type: 'admin-change',
      actor: caller.name,
      subject: deleted.name,
      detail: { change: 'serviceaccount.delete', sessionsEnded: ended },
    });
    return { body: { deleted: deleted.name, sessionsEnded: ended } };
  });
}
