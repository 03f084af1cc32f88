/**
 * A small router for the REST API: method + path pattern (`/api/v1/connections/:name`) →
 * handler. Handlers return a JSON-able value or throw a HoopError; the router turns both into
 * responses with one error format: `{ "error": { "code", "message", "hint" } }`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HoopError, type Logger, toHoopError } from '@hoop/shared';

export interface RequestContext {
  readonly req: IncomingMessage;
  readonly params: Record<string, string>;
  readonly query: URLSearchParams;
  /** Parsed JSON body (only for methods with a body). */
  body(): Promise<Record<string, unknown>>;
}

export interface HandlerResult {
  status?: number;
  body: unknown;
}

export type Handler = (ctx: RequestContext) => Promise<HandlerResult>;

interface Route {
  method: string;
  parts: string[];
  handler: Handler;
}

export class Router {
  private readonly routes: Route[] = [];

  constructor(
    private readonly logger: Logger,
    private readonly maxBodyBytes: number,
  ) {}

  add(method: string, pattern: string, handler: Handler): void {
    this.routes.push({ method, parts: pattern.split('/').filter(Boolean), handler });
  }

  /** Returns false when no route matches the path (so others may serve it). */
  async handle(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    const url = new URL(req.url ?? '/', 'http://broker');
    const segments = url.pathname.split('/').filter(Boolean).map(safeDecode);
    let pathMatched = false;
    for (const route of this.routes) {
      const params = match(route.parts, segments);
      if (params === undefined) continue;
      pathMatched = true;
      if (route.method !== req.method) continue;
      try {
        const result = await route.handler({
          req,
          params,
          query: url.searchParams,
          body: () => readJson(req, this.maxBodyBytes),
        });
        sendJson(res, result.status ?? 200, result.body);
      } catch (err) {
        const error = toHoopError(err);
        if (error.code === 'INTERNAL') {
          this.logger.error('request failed', {
            method: req.method,
            path: url.pathname,
            error: err,
          });
        }
        sendError(res, error);
      }
      return true;
    }
    if (pathMatched) {
      sendError(
        res,
        new HoopError('USAGE', `${req.method} is not supported on ${url.pathname}`),
        405,
      );
      return true;
    }
    return false;
  }
}

function safeDecode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

function match(parts: string[], segments: string[]): Record<string, string> | undefined {
  if (parts.length !== segments.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i] as string;
    const segment = segments[i] as string;
    if (part.startsWith(':')) params[part.slice(1)] = segment;
    else if (part !== segment) return undefined;
  }
  return params;
}

async function readJson(req: IncomingMessage, limit: number): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new HoopError('INVALID_REQUEST', `request body exceeds ${limit} bytes`);
    chunks.push(chunk as Buffer);
  }
  if (size === 0) return {};
  let value: unknown;
  try {
    value = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new HoopError('INVALID_REQUEST', 'request body is not valid JSON');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new HoopError('INVALID_REQUEST', 'request body must be a JSON object');
  }
  return value as Record<string, unknown>;
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
  });
  res.end(text);
}

export function sendError(res: ServerResponse, error: HoopError, status = error.httpStatus): void {
  sendJson(res, status, { error: error.toJSON() });
}
