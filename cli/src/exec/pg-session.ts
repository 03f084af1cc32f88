/**
 * One `hoop exec` run against a Postgres connection: a tunnel stream opened with the run's
 * review mode, the `pg` client speaking over it (no local port: nothing else on the machine can
 * use the session), one simple Query with the whole SQL, and the result sets with their command
 * tags. Errors leave as HoopErrors: a refused open keeps the broker's code, a held statement's
 * refusal is read from the ErrorResponse detail the agent writes (review-gate.ts),
 * and anything else the database says is STATEMENT_FAILED.
 */
import type { Duplex } from 'node:stream';
import { parseReviewErrorDetail } from '@hoop/agent/postgres-wire';
import {
  type ErrorCode,
  HoopError,
  type Logger,
  type StatementReviewMode,
  TunnelClient,
  type TunnelStream,
} from '@hoop/shared';
import pg from 'pg';

export interface ExecRequest {
  readonly brokerUrl: string;
  /** A user token, API key or grant. */
  readonly token: string;
  readonly connection: string;
  readonly sql: string;
  readonly reviews: StatementReviewMode;
  /** An approved statement review to run. */
  readonly review?: string | undefined;
  readonly logger: Logger;
  /** A notice from the database or from hoop (not the waiting notice). */
  readonly onNotice?: (message: string) => void;
  /** The statement waits for review `id` (only with `reviews: 'hold'`). */
  readonly onWaiting?: (review: string) => void;
}

export interface ResultSet {
  /** The command tag, as PostgreSQL sends it (e.g. "SELECT 2", "INSERT 0 1", "CREATE TABLE"). */
  readonly tag: string;
  readonly command: string;
  readonly rowCount: number | null;
  /** Empty for statements that return no rows. */
  readonly columns: readonly string[];
  /** Values as PostgreSQL prints them (text); SQL NULL is null. */
  readonly rows: readonly (readonly (string | null)[])[];
}

const WAITING = /^hoop: waiting for approval: review (\S+) /;

/** Every value as the text PostgreSQL sent: nothing is lost to JavaScript number or Date. */
const textTypes = { getTypeParser: () => (value: string) => value };

export async function execSql(request: ExecRequest): Promise<ResultSet[]> {
  const tunnel = new TunnelClient({
    brokerUrl: request.brokerUrl,
    token: request.token,
    logger: request.logger,
  });
  try {
    const { stream } = await tunnel.open({
      t: 'open',
      connection: request.connection,
      client: 'hoop exec',
      reviews: request.reviews,
      ...(request.review === undefined ? {} : { review: request.review }),
    });
    const client = new pg.Client({
      // The agent logs in to the target itself: user and database here are only labels.
      user: 'hoop',
      database: request.connection,
      stream: () => asSocket(stream),
      types: textTypes,
    });
    client.on('error', () => {});
    client.on('notice', (notice) => {
      const waiting = WAITING.exec(notice.message ?? '');
      if (waiting !== null) request.onWaiting?.(waiting[1] as string);
      else request.onNotice?.(`${notice.severity ?? 'NOTICE'}: ${notice.message ?? ''}`);
    });
    const tags: string[] = [];
    client.connection.on('commandComplete', (message: { text: string }) => tags.push(message.text));
    try {
      await client.connect();
      const answer = await client.query<string[]>({ text: request.sql, rowMode: 'array' });
      const results = Array.isArray(answer) ? (answer as pg.QueryResult<string[]>[]) : [answer];
      return results.map((r, i) => ({
        tag: tags[i] ?? r.command ?? '',
        command: r.command ?? '',
        rowCount: r.rowCount,
        columns: (r.fields ?? []).map((f) => f.name),
        rows: r.rows,
      }));
    } catch (err) {
      throw execError(err);
    } finally {
      await client.end().catch(() => {});
    }
  } finally {
    tunnel.close();
  }
}

/** The tunnel stream as the socket `pg` drives: already connected, no TCP options. */
function asSocket(stream: TunnelStream): Duplex {
  return Object.assign(stream, {
    setNoDelay: () => stream,
    setKeepAlive: () => stream,
    connect: () => {
      process.nextTick(() => stream.emit('connect'));
      return stream;
    },
  });
}

/** A review refusal: the code the agent named, with the review id for a pending one. */
export class ReviewRefusedError extends HoopError {
  constructor(
    code: ErrorCode,
    message: string,
    readonly review: string | undefined,
  ) {
    super(code, message);
  }
}

/** One conversion, at the boundary, of what `pg` throws. */
export function execError(err: unknown): HoopError {
  if (err instanceof HoopError) return err;
  if (!(err instanceof pg.DatabaseError)) {
    return new HoopError('TUNNEL_CLOSED', `the session ended: ${(err as Error).message}`);
  }
  const message = err.message.replace(/^hoop: /, '');
  const refusal = parseReviewErrorDetail(err.detail);
  if (refusal !== undefined) return new ReviewRefusedError(refusal.code, message, refusal.review);
  if (err.code === '42501' && err.message.startsWith('hoop: ')) {
    return new HoopError('AUTH_FORBIDDEN', message, {
      hint: "The connection's policy does not allow this statement.",
    });
  }
  return new HoopError('STATEMENT_FAILED', `${err.message} (SQLSTATE ${err.code ?? '?'})`, {
    ...(err.hint === undefined ? {} : { hint: err.hint }),
  });
}
