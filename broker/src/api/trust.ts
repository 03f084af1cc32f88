/**
 * /api/v1/trust: trust policies that let a CI job's own OIDC token act as a service account
 * (issuer and audience exact, subject and claims as globs). The job stores no secret.
 */
import { HoopError } from '@hoop/shared';
import type { Router } from '../http/router.js';
import { createTrustPolicy, deleteTrustPolicy, listTrustPolicies } from '../store/trust.js';
import { type ApiDeps, requireAdmin, stringField } from './context.js';

export function trustRoutes(router: Router, deps: ApiDeps): void {
  const ctx = deps.store.context;

  router.add('GET', '/api/v1/trust', async ({ req }) => {
    await requireAdmin(deps, req);
    return { body: await listTrustPolicies(ctx) };
  });

  router.add('POST', '/api/v1/trust', async (c) => {
    const caller = await requireAdmin(deps, c.req);
    const body = await c.body();
    const claims = body['claims'];
    if (
      claims !== undefined &&
      (claims === null || typeof claims !== 'object' || Array.isArray(claims))
    ) {
      throw new HoopError('INVALID_REQUEST', 'field "claims" must be an object of claim → pattern');
    }
    const policy = await createTrustPolicy(ctx, {
      name: stringField(body, 'name', true),
      issuer: stringField(body, 'issuer', true),
      audience: stringField(body, 'audience', true),
      subjectPattern: stringField(body, 'subject', true),
      claims: claims as Record<string, unknown> | undefined,
      serviceAccount: stringField(body, 'serviceAccount', true),
    });
    await deps.audit({
      type: 'admin-change',
      actor: caller.name,
      subject: policy.name,
      detail: { change: 'trust.create', policy },
    });
    return { status: 201, body: policy };
  });

  router.add('DELETE', '/api/v1/trust/:name', async ({ req, params }) => {
    const caller = await requireAdmin(deps, req);
    const deleted = await deleteTrustPolicy(ctx, params['name'] as string);
    await deps.audit({
      type: 'admin-change',
      actor: caller.name,
      subject: deleted.name,
      detail: { change: 'trust.delete', policy: deleted },
    });
    return { body: { deleted: deleted.name } };
  });
}
