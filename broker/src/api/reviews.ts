/**
 * /api/v1/reviews: list, show (the requester also gets the grant once approved), approve,
 * reject, revoke. Access reviews are created by `POST /api/v1/grants` on a connection whose
 * policy requires them (202 `{review}`).
 */
import { HoopError } from '@hoop/shared';
import type { Router } from '../http/router.js';
import type { Caller } from '../identity/caller.js';
import type { ReviewService } from '../reviews/service.js';
import { type ReviewStatus, reviewStatuses } from '../store/schema.js';
import { type ApiDeps, authenticate, stringField } from './context.js';

export function reviewRoutes(router: Router, deps: ApiDeps, reviews: ReviewService): void {
  router.add('GET', '/api/v1/reviews', async ({ req, query }) => {
    const caller = await person(authenticate(deps, req));
    const status = query.get('status') ?? undefined;
    if (status !== undefined && !(reviewStatuses as readonly string[]).includes(status)) {
      throw new HoopError('INVALID_REQUEST', `status must be one of ${reviewStatuses.join(', ')}`);
    }
    const limit = Number(query.get('limit') ?? '100');
    return {
      body: await reviews.list(caller, {
        ...(status === undefined ? {} : { status: status as ReviewStatus }),
        ...(Number.isInteger(limit) && limit > 0 ? { limit } : {}),
      }),
    };
  });

  router.add('GET', '/api/v1/reviews/:id', async ({ req, params }) => {
    const caller = await person(authenticate(deps, req));
    return { body: await reviews.showWithGrant(caller, params['id'] as string) };
  });

  for (const action of ['approve', 'reject', 'revoke'] as const) {
    router.add('POST', `/api/v1/reviews/:id/${action}`, async ({ req, params, body }) => {
      const caller = await person(authenticate(deps, req));
      const input = await body();
      const reason = stringField(input, 'reason');
      const id = params['id'] as string;
      const result =
        action === 'approve'
          ? await reviews.approve(caller, id, reason)
          : action === 'reject'
            ? await reviews.reject(caller, id, reason)
            : await reviews.revoke(caller, id, reason);
      return { body: result };
    });
  }
}

/** A grant is for its connection only: it cannot request, see or decide reviews. */
async function person(caller: Promise<Caller>): Promise<Caller> {
  const resolved = await caller;
  if (resolved.grant !== undefined || resolved.via === 'grant') {
    throw new HoopError('AUTH_FORBIDDEN', 'a grant cannot be used for reviews', {
      hint: 'Use your hoop login (or API key) for `hoop reviews`.',
    });
  }
  return resolved;
}
