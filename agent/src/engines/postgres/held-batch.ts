/**
 * An extended-protocol batch held for review. From the Parse of a statement that needs approval
 * (or the Bind of one prepared earlier) up to the Sync or Flush that ends the batch, the client's
 * messages are kept here instead of reaching the target. What approvers see is what the batch
 * would run: each Execute's statement with its bound parameters, e.g.
 *
 *   insert into orders values ($1, $2)
 *   -- parameters: $1 = '42', $2 = NULL
 *
 * Approved, the messages are replayed to the target in order; otherwise none of them runs.
 * Bounded: at most `maxMessages` messages and `maxBytes` bytes (over it, the batch is refused).
 */
import { FrontendCode } from './messages.js';
import { decodeClientMessage } from './protocol.js';
import type { PgFrame } from './reader.js';
import { Recorder } from './recorder.js';

export interface HeldBatchLimits {
  readonly maxMessages: number;
  readonly maxBytes: number;
}

/** What the proxy already knows about statements and portals from earlier batches. */
export interface PreparedLookup {
  statement(name: string): string | undefined;
  portal(name: string): { sql: string; params: readonly (string | null)[] } | undefined;
}

export class HeldBatch {
  private readonly held: PgFrame[] = [];
  private bytes = 0;

  constructor(
    /** The statement kind that needs approval (for the audit rule and the message). */
    readonly kind: string,
    private readonly limits: HeldBatchLimits,
  ) {}

  get frames(): readonly PgFrame[] {
    return this.held;
  }

  /** Keeps a copy of `frame` (the reader's buffer is not ours); false when over a limit. */
  add(frame: PgFrame): boolean {
    if (
      this.held.length >= this.limits.maxMessages ||
      this.bytes + frame.frame.length > this.limits.maxBytes
    ) {
      return false;
    }
    const copy = Buffer.from(frame.frame);
    this.held.push({
      code: frame.code,
      frame: copy,
      body: copy.subarray(copy.length - frame.body.length),
    });
    this.bytes += copy.length;
    return true;
  }

  /** Whether `frame` ends a batch: the client waits for answers after Sync or Flush. */
  static ends(frame: PgFrame): boolean {
    return frame.code === FrontendCode.sync || frame.code === FrontendCode.flush;
  }

  /** The last message is a Sync (not a Flush). */
  get endsWithSync(): boolean {
    return this.held.at(-1)?.code === FrontendCode.sync;
  }

  /**
   * The statements the batch runs, with their parameters, for approvers; undefined when it runs
   * none (e.g. Parse and Describe only), which needs no approval.
   */
  reviewText(known: PreparedLookup): string | undefined {
    const statements = new Map<string, string>();
    const portals = new Map<string, { sql: string; params: readonly (string | null)[] }>();
    const runs: string[] = [];
    for (const frame of this.held) {
      if (frame.code === FrontendCode.copyData || frame.code === FrontendCode.copyDone) continue;
      const message = decodeClientMessage(frame.code, frame.body);
      switch (message.type) {
        case 'parse':
          statements.set(message.name, message.sql);
          break;
        case 'bind':
          portals.set(message.portal, {
            sql: statements.get(message.statement) ?? known.statement(message.statement) ?? '',
            params: Recorder.params(message.params, message.paramFormats),
          });
          break;
        case 'execute': {
          const portal = portals.get(message.portal) ?? known.portal(message.portal);
          runs.push(describeRun(portal?.sql ?? '', portal?.params ?? []));
          break;
        }
        case 'query':
          runs.push(message.sql);
          break;
        default:
          break;
      }
    }
    return runs.length === 0 ? undefined : runs.join(';\n');
  }
}

/** A statement and its parameters as approvers read them. */
export function describeRun(sql: string, params: readonly (string | null)[]): string {
  if (params.length === 0) return sql;
  const values = params.map(
    (value, i) => `$${i + 1} = ${value === null ? 'NULL' : `'${value.replaceAll("'", "''")}'`}`,
  );
  return `${sql}\n-- parameters: ${values.join(', ')}`;
}
