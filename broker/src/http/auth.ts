/** Bearer-token extraction for the API and the tunnel upgrade. Tokens are never logged. */
import type { IncomingMessage } from 'node:http';
import { HoopError } from '@hoop/shared';

export function bearerToken(req: IncomingMessage, maxBytes: number): string {
  const header = req.headers.authorization;
  if (header === undefined || header === '') {
    throw new HoopError('AUTH_REQUIRED', 'this request needs a token (Authorization: Bearer …)');
  }
  if (header.length > maxBytes) {
    throw new HoopError('AUTH_INVALID_TOKEN', `the token is longer than ${maxBytes} bytes`);
  }
  const match = /^Bearer\s+(\S+)$/i.exec(header);
  if (match?.[1] === undefined) {
    throw new HoopError('AUTH_INVALID_TOKEN', 'the Authorization header is not "Bearer <token>"');
  }
  return match[1];
}
