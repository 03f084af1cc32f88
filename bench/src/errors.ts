/** Errors of the bench, each with a stable `code` (see bench/README.md). */

export const BenchErrorCode = {
  /** Bad flag or value: exit 2. */
  usage: 'USAGE',
  /** A program (psql, pgbench, pgbouncer, sshd) is not on PATH, or hoop is not built. */
  notFound: 'NOT_FOUND',
  /** A one-shot command exited non-zero. */
  commandFailed: 'COMMAND_FAILED',
  /** A command or a service did not finish or get ready in time. */
  timeout: 'TIMEOUT',
  /** A service (broker, agent, connect) exited before it was ready. */
  serviceExited: 'SERVICE_EXITED',
  /** pgbench finished but its output had no `tps = …` line. */
  pgbenchOutput: 'PGBENCH_OUTPUT',
  /** The soak saw sustained RSS or fd growth. */
  soakGrowth: 'SOAK_GROWTH',
  /** Ctrl-C or SIGTERM. */
  aborted: 'ABORTED',
} as const;

export type BenchErrorCode = (typeof BenchErrorCode)[keyof typeof BenchErrorCode];

export class BenchError extends Error {
  override readonly name = 'BenchError';
  readonly code: BenchErrorCode;

  constructor(code: BenchErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
