/**
 * The CLI's tunnel to the broker (`/v1/tunnel`), opened lazily and reopened when it has closed
 * (a broker restart), so a long-running `hoop connect` keeps serving new client connections.
 */
import WebSocket from 'ws';
import { type Clock, systemClock } from '../clock.js';
import { HoopError } from '../errors.js';
import type { Logger } from '../logger.js';
import { TunnelEndpoint } from './endpoint.js';
import { resolveLimits, type TunnelLimits } from './limits.js';
import type { OpenConnectionMessage } from './messages.js';
import type { TunnelStream } from './stream.js';

/**
 * WebSocket clients must mask frames, but the mask only protects proxies from scripts running in
 * browsers; hoop's clients are not browsers. An all-zero mask lets ws skip the byte-by-byte XOR
 * on both ends (it checks for it), which matters for bulk results.
 */
export function zeroMask(mask: Buffer): void {
  mask.fill(0);
}

/** The ws(s) URL of a tunnel endpoint, from the broker's base http(s) URL. */
export function tunnelUrl(brokerUrl: string, path: '/v1/agent' | '/v1/tunnel'): string {
  let url: URL;
  try {
    url = new URL(brokerUrl);
  } catch {
    throw new HoopError(
      'USAGE',
      `broker URL "${brokerUrl}" is not a URL (expected http(s)://host:port)`,
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new HoopError(
      'USAGE',
      `broker URL must start with http:// or https://, got ${url.protocol}`,
    );
  }
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  url.pathname = `${url.pathname.replace(/\/+$/, '')}${path}`;
  return url.toString();
}

export interface TunnelClientOptions {
  readonly brokerUrl: string;
  readonly token: string;
  readonly logger: Logger;
  readonly clock?: Clock;
  readonly limits?: Partial<TunnelLimits>;
  readonly connectTimeoutMs?: number;
}

export class TunnelClient {
  private endpoint: TunnelEndpoint | undefined;
  private connecting: Promise<TunnelEndpoint> | undefined;
  private readonly limits: TunnelLimits;
  private readonly url: string;
  private closed = false;

  constructor(private readonly options: TunnelClientOptions) {
    this.limits = resolveLimits(options.limits);
    this.url = tunnelUrl(options.brokerUrl, '/v1/tunnel');
  }

  /** The live endpoint, connecting first if there is none. */
  async ready(): Promise<TunnelEndpoint> {
    if (this.closed) throw new HoopError('TUNNEL_CLOSED', 'the tunnel client is closed');
    if (this.endpoint?.isOpen) return this.endpoint;
    this.connecting ??= this.connect().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  /** See TunnelEndpoint.open (`early`: the client's first bytes, sent early when they can be). */
  async open(
    message: OpenConnectionMessage,
    early?: Promise<Buffer>,
  ): Promise<{ stream: TunnelStream; session: string; earlySent: boolean }> {
    const endpoint = await this.ready();
    return endpoint.open(message, early);
  }

  close(): void {
    this.closed = true;
    this.endpoint?.close();
  }

  private connect(): Promise<TunnelEndpoint> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.url, {
        headers: { authorization: `Bearer ${this.options.token}` },
        perMessageDeflate: false,
        maxPayload: this.limits.maxMessageBytes,
        generateMask: zeroMask,
        handshakeTimeout: this.options.connectTimeoutMs ?? 10_000,
      });
      let settled = false;
      const fail = (error: HoopError) => {
        if (settled) return;
        settled = true;
        ws.terminate();
        reject(error);
      };
      ws.on('unexpected-response', (_req, res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          let body: { error?: { code?: string; message?: string } } | undefined;
          try {
            body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
          } catch {
            body = undefined;
          }
          const code =
            res.statusCode === 401
              ? 'AUTH_INVALID_TOKEN'
              : res.statusCode === 403
                ? 'AUTH_FORBIDDEN'
                : 'BROKER_UNREACHABLE';
          fail(
            new HoopError(
              code,
              body?.error?.message ?? `the broker refused the tunnel (HTTP ${res.statusCode})`,
            ),
          );
        });
      });
      ws.on('error', (err) => {
        fail(
          new HoopError(
            'BROKER_UNREACHABLE',
            `cannot reach the broker at ${this.options.brokerUrl}: ${err.message}`,
          ),
        );
      });
      ws.on('open', () => {
        (
          ws as unknown as { _socket?: { setNoDelay?: (v: boolean) => void } }
        )._socket?.setNoDelay?.(true);
        const endpoint = new TunnelEndpoint(ws, {
          role: 'cli',
          limits: this.limits,
          clock: this.options.clock ?? systemClock,
          logger: this.options.logger,
        });
        endpoint.on('close', (err) => {
          if (err !== undefined && !this.closed) {
            this.options.logger.warn(
              'tunnel to the broker closed; it reopens on the next connection',
              { code: err.code },
            );
          }
        });
        endpoint.ready().then(
          () => {
            if (settled) return;
            settled = true;
            this.endpoint = endpoint;
            resolve(endpoint);
          },
          (err: HoopError) => fail(err),
        );
      });
    });
  }
}
