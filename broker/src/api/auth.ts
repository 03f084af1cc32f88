/**
 * /api/v1/auth: getting a hoop token. Local users post their password; people of the identity
 * provider run authorization code + PKCE (start → browser → callback) through the CLI's loopback
 * listener. Both return an expiring user token; every attempt is audited.
 */
import { HoopError } from '@hoop/shared';
import type { Router } from '../http/router.js';
import type { ApiDeps } from './context.js';

export function authRoutes(router: Router, deps: ApiDeps): void {
  const oidcOff = () =>
    new HoopError('OIDC_FAILED', 'this broker has no identity provider configured', {
      hint: 'Log in with `hoop login --user NAME` or `--token T`, or set HOOP_OIDC_ISSUER on the broker.',
    });

  /** What `hoop login` may use here (no token needed). */
  router.add('GET', '/api/v1/auth/methods', async () => ({
    body: {
      password: true,
      oidc: deps.identity.oidc === undefined ? null : { issuer: deps.identity.oidc.issuer },
    },
  }));

  router.add('POST', '/api/v1/auth/login', async (c) => {
    const body = await c.body();
    const result = await deps.identity.login(body['user'], body['password']);
    return {
      body: {
        token: result.token,
        user: result.user,
        role: result.role,
        expiresAt: new Date(result.expiresAt).toISOString(),
      },
    };
  });

  router.add('POST', '/api/v1/auth/oidc/start', async (c) => {
    const oidc = deps.identity.oidc;
    if (oidc === undefined) throw oidcOff();
    const body = await c.body();
    return { body: await oidc.start(body['redirectUri']) };
  });

  router.add('POST', '/api/v1/auth/oidc/callback', async (c) => {
    const oidc = deps.identity.oidc;
    if (oidc === undefined) throw oidcOff();
    const body = await c.body();
    const result = await oidc.callback(body['code'], body['state']);
    return {
      body: {
        token: result.token,
        user: result.user.name,
        role: result.user.role,
        groups: result.user.groups,
        expiresAt: new Date(result.expiresAt).toISOString(),
      },
    };
  });
}
