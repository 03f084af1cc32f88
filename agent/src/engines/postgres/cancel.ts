/**
 * Query cancellation. The client only ever sees an agent-made BackendKeyData (process id and
 * secret), never the target's. A CancelRequest arrives on its own connection, as a separate
 * session to the same engine; the engine-wide table maps the agent key to the target and its
 * real key, and the agent sends the real CancelRequest to the target on a new connection.
 * Spec: https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-CANCELING-REQUESTS
 */
import { randomBytes, randomInt } from 'node:crypto';
import { type Clock, type Logger, type TargetTlsMode, toHoopError } from '@hoop/shared';
import { type DialOptions, dialTarget } from './dial.js';
import { cancelRequest } from './writer.js';

export interface CancelTarget {
  readonly host: string;
  readonly port: number;
  readonly tls: TargetTlsMode;
  /** The target's real BackendKeyData. */
  readonly processId: number;
  readonly secretKey: Buffer;
}

export interface CancelKey {
  readonly processId: number;
  readonly secretKey: Buffer;
}

function keyOf(processId: number, secretKey: Buffer): string {
  return `${processId}:${secretKey.toString('hex')}`;
}

export class CancelTable {
  private readonly entries = new Map<string, CancelTarget>();
  private readonly maxEntries: number;

  constructor(options: { maxEntries: number }) {
    this.maxEntries = options.maxEntries;
  }

  get size(): number {
    return this.entries.size;
  }

  /**
   * Records `target` under a fresh random key and returns it, or undefined when the table is full
   * (the session then works without cancellation rather than failing).
   */
  register(target: CancelTarget): CancelKey | undefined {
    if (this.entries.size >= this.maxEntries) return undefined;
    for (;;) {
      // A positive Int32, like a real pid, and a 4-byte secret (protocol 3.0).
      const processId = randomInt(1, 0x7fffffff);
      const secretKey = randomBytes(4);
      const key = keyOf(processId, secretKey);
      if (this.entries.has(key)) continue;
      this.entries.set(key, target);
      return { processId, secretKey };
    }
  }

  lookup(processId: number, secretKey: Buffer): CancelTarget | undefined {
    return this.entries.get(keyOf(processId, secretKey));
  }

  remove(key: CancelKey): void {
    this.entries.delete(keyOf(key.processId, key.secretKey));
  }

  clear(): void {
    this.entries.clear();
  }
}

/**
 * Sends the target's real CancelRequest on a new connection and waits (bounded) for the target
 * to close it. The target never answers a CancelRequest.
 */
export async function sendCancel(
  target: CancelTarget,
  options: { connectTimeoutMs: number; clock: Clock; signal: AbortSignal } & Pick<
    DialOptions,
    'tlsOptions'
  >,
): Promise<void> {
  // Cancel requests are not subject to pg_hba, so plaintext is enough unless TLS is required.
  const { socket } = await dialTarget({
    host: target.host,
    port: target.port,
    tls: target.tls === 'require' ? 'require' : 'disable',
    connectTimeoutMs: options.connectTimeoutMs,
    tlsOptions: options.tlsOptions,
    clock: options.clock,
    signal: options.signal,
  });
  await new Promise<void>((resolve) => {
    const timer = options.clock.setTimeout(() => socket.destroy(), options.connectTimeoutMs);
    socket.once('close', () => {
      options.clock.clearTimeout(timer);
      resolve();
    });
    socket.on('error', () => {});
    socket.resume();
    socket.end(cancelRequest(target.processId, target.secretKey));
  });
}

/** sendCancel, logged either way: Postgres never answers a CancelRequest, so no one is told. */
export async function forwardCancel(
  target: CancelTarget,
  settings: { connectTimeoutMs: number; clock: Clock } & Pick<DialOptions, 'tlsOptions'>,
  signal: AbortSignal,
  logger: Logger,
): Promise<void> {
  try {
    await sendCancel(target, { ...settings, signal });
    logger.info('cancel request forwarded to the target', {
      target: `${target.host}:${target.port}`,
    });
  } catch (err) {
    logger.warn('could not forward a cancel request', { error: toHoopError(err) });
  }
}
