/**
 * /api/v1/sessions: who connected where, when, for how long, how it ended, and — for `show` —
 * every recorded event of the session in order (the SQL timeline: statements with duration,
 * rows, denials and masking summaries).
 */
import type { Router } from '../http/router.js';
import { type ApiDeps, requireAdmin } from './context.js';

export function sessionRoutes(router: Router, deps: ApiDeps): void {
  router.add('GET', '/api/v1/sessions', async ({ req, query }) => {
    await requireAdmin(deps, req);
    const limit = Number(query.get('limit') ?? '100');
    return {
      body: await deps.store.listSessions({
        limit: Number.isInteger(limit) && limit > 0 ? Math.min(limit, 1000) : 100,
      }),
    };
  });

  router.add('GET', '/api/v1/sessions/:id', async ({ req, params }) => {
    await requireAdmin(deps, req);
    const session = await deps.store.getSession(params['id'] as string);
    const events = await deps.store.listSessionEvents(session.id, 100_000);
    return { body: { ...session, events: events.map((e) => e.event) } };
  });
}
