/** Health, identity and the OpenAPI document. */
import type { Router } from '../http/router.js';
import { type ApiDeps, authenticate } from './context.js';
import { openApiDocument } from './openapi.js';

export function systemRoutes(router: Router, deps: ApiDeps): void {
  router.add('GET', '/api/v1/health', async () => ({
    body: { status: 'ok', version: deps.version, ...deps.hub.stats },
  }));

  router.add('GET', '/api/v1/openapi.json', async () => ({ body: openApiDocument(deps.version) }));

  router.add('GET', '/api/v1/whoami', async ({ req }) => {
    const caller = await authenticate(deps, req);
    return { body: { id: caller.userId, name: caller.name, role: caller.role } };
  });
}
