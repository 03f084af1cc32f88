/**
 * /api/v1/audit: the hash-chained audit log, for admins.
 *   GET /api/v1/audit?since&connection&user&limit&after   rows, oldest first
 *   GET /api/v1/audit/verify                              walks the chain, names bad rows
 *   GET /api/v1/audit/export                              every row as JSON lines (streamed)
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HoopError } from '@hoop/shared';
import type { Router } from '../http/router.js';
import { sendError } from '../http/router.js';
import { exportRecord, listAudit, scanAudit, verifyAudit } from '../store/audit.js';
import { type ApiDeps, requireAdmin } from './context.js';

function parseSince(value: string | null): Date | undefined {
  if (value === null || value === '') return undefined;
  const rel = /^(\d+)([smhd])$/.exec(value);
  if (rel !== null) {
    const unit = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[rel[2] as 's'];
    return new Date(Date.now() - Number(rel[1]) * unit);
  }
  const at = new Date(value);
  if (Number.isNaN(at.getTime())) {
    throw new HoopError(
      'INVALID_REQUEST',
      `since "${value}" is not a time (ISO 8601) or a duration like 24h`,
    );
  }
  return at;
}

function positiveInt(value: string | null, name: string, fallback: number): number {
  if (value === null || value === '') return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0)
    throw new HoopError('INVALID_REQUEST', `${name} must be a whole number`);
  return n;
}

export function auditRoutes(router: Router, deps: ApiDeps): void {
  router.add('GET', '/api/v1/audit', async ({ req, query }) => {
    await requireAdmin(deps, req);
    const since = parseSince(query.get('since'));
    const connection = query.get('connection') || undefined;
    const user = query.get('user') || undefined;
    const after = positiveInt(query.get('after'), 'after', 0);
    return {
      body: await listAudit(deps.store.context, {
        ...(since === undefined ? {} : { since }),
        ...(connection === undefined ? {} : { connection }),
        ...(user === undefined ? {} : { user }),
        ...(after > 0 ? { afterId: after } : {}),
        limit: Math.min(positiveInt(query.get('limit'), 'limit', 1000) || 1000, 10_000),
      }),
    };
  });

  router.add('GET', '/api/v1/audit/verify', async ({ req }) => {
    await requireAdmin(deps, req);
    return { body: await verifyAudit(deps.store.context) };
  });
}

/**
 * GET /api/v1/audit/export: JSON lines, streamed page by page (the router only answers JSON).
 * Returns false when the request is for another path.
 */
export async function handleAuditExport(
  deps: ApiDeps,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<boolean> {
  const path = new URL(req.url ?? '/', 'http://broker').pathname;
  if (path !== '/api/v1/audit/export') return false;
  try {
    if (req.method !== 'GET')
      throw new HoopError('USAGE', `${req.method} is not supported on ${path}`);
    await requireAdmin(deps, req);
  } catch (err) {
    sendError(res, err instanceof HoopError ? err : new HoopError('INTERNAL', String(err)));
    return true;
  }
  res.writeHead(200, {
    'content-type': 'application/x-ndjson; charset=utf-8',
    'cache-control': 'no-store',
  });
  try {
    for await (const row of scanAudit(deps.store.context)) {
      if (!res.write(`${JSON.stringify(exportRecord(row))}\n`)) {
        await new Promise<void>((resolve) => res.once('drain', () => resolve()));
      }
    }
    res.end();
  } catch {
    res.destroy();
  }
  return true;
}
