/**
 * Every resource bound of the tunnel is a named option; exceeding one raises the named error
 * (see errors.ts): maxFrameBytes → FRAME_TOO_LARGE, window → WINDOW_EXCEEDED,
 * maxStreams → TOO_MANY_STREAMS, maxBufferedBytes → TUNNEL_BUFFER_EXCEEDED.
 */

export interface TunnelLimits {
  /** Largest frame body accepted or produced. Data larger than this is split. */
  readonly maxFrameBytes: number;
  /** Per-stream credit: bytes a sender may have in flight before the receiver grants more. */
  readonly window: number;
  /** Concurrent streams on one tunnel. */
  readonly maxStreams: number;
  /** Bytes queued on one tunnel's socket before the tunnel is declared stuck and closed. */
  readonly maxBufferedBytes: number;
  /** Largest WebSocket message accepted (a batch of frames). */
  readonly maxMessageBytes: number;
  /** Heartbeat interval; a peer silent for two intervals is dead. */
  readonly heartbeatMs: number;
}

/**
 * Most bytes a client may send on a stream before its open-ok (HelloMessage.earlyData). The
 * CLI sends a Postgres client's StartupMessage that way (PostgreSQL takes at most 10,000 bytes
 * for one), saving a round trip between CLI and broker on every new connection.
 */
export const EARLY_DATA_MAX_BYTES = 16 * 1024;

export const defaultTunnelLimits: TunnelLimits = {
  maxFrameBytes: 256 * 1024,
  window: 1024 * 1024,
  maxStreams: 4096,
  maxBufferedBytes: 64 * 1024 * 1024,
  maxMessageBytes: 4 * 1024 * 1024,
  heartbeatMs: 15_000,
};

export function resolveLimits(overrides: Partial<TunnelLimits> = {}): TunnelLimits {
  const limits = { ...defaultTunnelLimits, ...overrides };
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isInteger(value) || value <= 0) {
      throw new RangeError(`tunnel limit ${name} must be a positive integer, got ${value}`);
    }
  }
  if (limits.maxFrameBytes + 9 > limits.maxMessageBytes) {
    throw new RangeError('tunnel limit maxMessageBytes must exceed maxFrameBytes plus the header');
  }
  return limits;
}
