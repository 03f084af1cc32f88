/**
 * A CI system's OIDC issuer for tests: one key pair (jose), a node:http server on 127.0.0.1:0
 * serving the discovery document and the JWKS, and `sign` to mint job tokens with any claims.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, type JWTPayload, SignJWT } from 'jose';

export interface TestIssuer {
  readonly issuer: string;
  readonly kid: string;
  /** The public key as a PEM-less JWK (for forging tests). */
  readonly publicJwk: Record<string, unknown>;
  /** How many JWKS fetches the server answered. */
  readonly jwksFetches: number;
  /** A job token: RS256, kid set, iat now, exp in `ttlSeconds` (default 300). */
  sign(claims: JWTPayload, options?: { ttlSeconds?: number; iat?: number }): Promise<string>;
  close(): Promise<void>;
}

export async function startTestIssuer(): Promise<TestIssuer> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  const kid = 'test-ci-key-1';
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' };
  let issuer = '';
  let jwksFetches = 0;
  const server: Server = createServer((req, res) => {
    const send = (body: unknown) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.url === '/.well-known/openid-configuration') {
      send({
        issuer,
        jwks_uri: `${issuer}/jwks`,
        id_token_signing_alg_values_supported: ['RS256'],
      });
    } else if (req.url === '/jwks') {
      jwksFetches++;
      send({ keys: [publicJwk] });
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    issuer,
    kid,
    publicJwk,
    get jwksFetches() {
      return jwksFetches;
    },
    async sign(claims, options = {}) {
      const iat = options.iat ?? Math.floor(Date.now() / 1000);
      return new SignJWT({ ...claims })
        .setProtectedHeader({ alg: 'RS256', kid, typ: 'JWT' })
        .setIssuer(typeof claims.iss === 'string' ? claims.iss : issuer)
        .setIssuedAt(iat)
        .setExpirationTime(iat + (options.ttlSeconds ?? 300))
        .sign(privateKey);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
