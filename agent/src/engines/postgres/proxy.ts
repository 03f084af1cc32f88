/**
 * The policy proxy: what runs after the handshake instead of the raw relay whenever the policy
 * inspects content or recording is on. Two MessagePumps, one per direction:
 *
 *   client ──Query/Parse/Bind/Execute/Sync…──► guardrails ──► target
 *   client ◄──masking (DataRow, CopyData, errors, notices)◄── target
 *
 * Client messages the target answers are queued as expectations, in order, so each answer is
 * matched to the message that caused it (the target answers in order, and after an error in an
 * extended-protocol batch skips everything up to Sync). That is how rows are tied to their
 * RowDescription, answers to audit records, and how a denial is answered in the right place.
 *
 * Denials: a denied Query is not forwarded; once every earlier answer has reached the client the
 * proxy sends ErrorResponse (42501) and ReadyForQuery itself. A denied Parse (or a Bind of a
 * statement that may not run) makes the proxy drop client messages up to Sync, forward the
 * Sync, and put the ErrorResponse before the target's ReadyForQuery. Inside a transaction block
 * a real server would now be in the failed state: the proxy answers ReadyForQuery 'E' and keeps
 * a *virtual* failed state — every statement but ROLLBACK / ROLLBACK TO SAVEPOINT / COMMIT is
 * refused with 25P02 as postgres would, and COMMIT is sent as ROLLBACK (which is what postgres
 * does with a COMMIT of a failed transaction), so work before the denial is never committed.
 *
 * Reviews (`reviews.statements`): a simple Query of a held kind waits (holdQuery), and so does
 * an extended-protocol batch that would run one, from its Parse (or the Bind of a statement
 * prepared earlier) up to its Sync or Flush (held-batch.ts): nothing of it reaches the target
 * until approved, then it is replayed in order, exactly once. Refused, the client gets
 * ErrorResponse (42501, the detail naming the review, review-gate.ts) and ReadyForQuery. Either
 * way the client's later messages wait behind it, so pipelined clients keep their order.
 *
 * Unchanged messages are forwarded as the original bytes; only masked DataRows and text
 * messages are re-encoded.
 */
import type { Duplex } from 'node:stream';
import type { Clock, Logger } from '@hoop/shared';
import type { StatementReviewer } from '../engine.js';
import { AnswerQueue } from './answer-queue.js';
import { BoundedMap } from './bounded-map.js';
import type { Catalog } from './catalog.js';
import { PgFailure, PostgresEngineError, protocolError } from './errors.js';
import { type Denial, denial, type Guardrails } from './guardrails.js';
import { HeldBatch } from './held-batch.js';
import { type ColumnPlan, MaskCounts, type Masker } from './masking.js';
import { BackendCode, FrontendCode, SqlState } from './messages.js';
import {
  type ClientMessage,
  decodeClientMessage,
  decodeServerMessage,
  encodeCopyData,
  encodeDataRow,
  encodeFields,
  encodeNotification,
  encodeParameterStatus,
  encodeParse,
  encodeQuery,
  encodeReadyForQuery,
  type FieldDescription,
  rowsFromTag,
  type TransactionStatus,
} from './protocol.js';
import { MessagePump } from './pump.js';
import { PacketReader, type PgFrame } from './reader.js';
import { Recorder, type StatementRecord } from './recorder.js';
import { maskFields, planColumns, rowMayChange } from './response-masking.js';
import { askReview } from './review-gate.js';
import { joinSides } from './sides.js';
import type { StatementFacts } from './sql.js';
import { encodeMessage, errorResponse } from './writer.js';

export interface ProxyOptions {
  readonly client: Duplex;
  readonly target: Duplex;
  readonly guardrails: Guardrails;
  readonly masker: Masker;
  /** Present when the policy masks by column. */
  readonly catalog: Catalog | undefined;
  readonly recorder: Recorder;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly signal: AbortSignal;
  readonly closeGraceMs: number;
  readonly maxMessageBytes: number;
  /** Client messages awaiting an answer; more is a TOO_MANY_PENDING failure. */
  readonly maxPendingMessages: number;
  /** Named prepared statements / portals / SQL PREPAREs remembered (oldest forgotten first). */
  readonly maxPreparedStatements: number;
  /** Asks approvers about statements of `reviews.statements` kinds (held until decided). */
  readonly reviewStatement?: StatementReviewer;
  /** Bytes of one extended-protocol batch held for review, at most (over it: refused). */
  readonly maxHeldBatchBytes?: number;
}

/** Default of `maxHeldBatchBytes`: a batch whose review text could not be sent anyway. */
export const DEFAULT_MAX_HELD_BATCH_BYTES = 1024 * 1024;

type Expectation =
  | {
      kind: 'query';
      record: StatementRecord | undefined;
      forceFailed: boolean;
      plan: ColumnPlan[] | undefined;
    }
  | { kind: 'sync'; forceFailed: boolean; inject: Buffer | undefined }
  | { kind: 'parse' | 'bind' | 'close' }
  | { kind: 'describe'; internalFor: ExecuteExpectation | undefined }
  | ExecuteExpectation;

interface ExecuteExpectation {
  kind: 'execute';
  record: StatementRecord | undefined;
  plan: ColumnPlan[] | undefined;
}

interface Prepared {
  readonly sql: string;
  /** Ends a (failed) transaction: ROLLBACK, ROLLBACK TO, COMMIT. */
  readonly ending: boolean;
  /** The kind that needs approval: every Bind of this statement is held for review. */
  readonly review?: string;
}

interface Portal extends Prepared {
  readonly params: (string | null)[];
}

const ENDING = new Set(['commit', 'rollback', 'rollback-to', 'prepare-transaction']);

const abortedDenial: Denial = {
  rule: 'transaction-aborted',
  message:
    'current transaction is aborted, commands ignored until end of transaction block (hoop denied an earlier statement)',
  sqlstate: SqlState.inFailedSqlTransaction,
};

export class PolicyProxy {
  private readonly o: ProxyOptions;
  private readonly expect: AnswerQueue<Expectation>;
  private status: TransactionStatus = 'I';
  private virtualAbort = false;
  private batchErrored = false;
  private skipUntilSync: Buffer | undefined;
  private copyOut: { binary: boolean } | undefined;
  private readonly statements: BoundedMap<Prepared>;
  private readonly portals: BoundedMap<Portal>;
  /** Names prepared with SQL PREPARE that passed the guardrails. */
  private readonly sqlPrepared: BoundedMap<true>;
  /** The extended-protocol batch waiting for review, while its messages arrive. */
  private held: HeldBatch | undefined;
  /** Replaying an approved batch: nothing in it is held again. */
  private replaying = false;
  /** Extended-protocol messages went to the target since the last Sync. */
  private batchOpen = false;
  private readonly clientPump: MessagePump;
  private readonly targetPump: MessagePump;

  constructor(options: ProxyOptions) {
    this.o = options;
    this.expect = new AnswerQueue(options.maxPendingMessages);
    this.statements = new BoundedMap(options.maxPreparedStatements);
    this.portals = new BoundedMap(options.maxPreparedStatements);
    this.sqlPrepared = new BoundedMap(options.maxPreparedStatements);
    const reader = (side: 'client' | 'target') =>
      new PacketReader({ side, maxStartupBytes: 8, maxMessageBytes: options.maxMessageBytes });
    this.clientPump = new MessagePump({
      source: options.client,
      dest: options.target,
      reader: reader('client'),
      handle: (frame, out) => this.onClient(frame, out),
      onFailure: (err) => this.fail(err),
    });
    this.targetPump = new MessagePump({
      source: options.target,
      dest: options.client,
      reader: reader('target'),
      handle: (frame, out) => this.onTarget(frame, out),
      onFailure: (err) => this.fail(err),
    });
  }

  /** Runs until both sides are closed. `fromClient`/`fromTarget`: bytes read during startup. */
  run(fromClient: Buffer, fromTarget: Buffer): Promise<void> {
    const { client, target, clock, closeGraceMs, signal, logger } = this.o;
    return joinSides(
      client,
      target,
      { signal, clock, closeGraceMs, logger, label: 'proxy' },
      {
        shutdown: (end) => {
          this.shutdown = end;
        },
        start: () => {
          this.targetPump.start(fromTarget);
          this.clientPump.start(fromClient);
        },
        closed: () => {
          this.clientPump.stop();
          this.targetPump.stop();
          this.expect.wakeAll();
        },
      },
    );
  }

  private shutdown: () => void = () => {};

  /** A protocol violation or internal failure: tell the client (FATAL) and close both sides. */
  private fail(err: unknown): void {
    const response =
      err instanceof PostgresEngineError && err.response !== undefined
        ? err.response
        : {
            severity: 'FATAL' as const,
            code: SqlState.internalError,
            message: 'hoop: internal error in the agent',
          };
    this.o.logger.warn('policy proxy failed', { error: err });
    const { client } = this.o;
    if (!client.destroyed && !client.writableEnded) client.write(errorResponse(response));
    this.o.target.destroy();
    this.shutdown();
  }

  // ---- expectations ----

  private push(e: Expectation): void {
    this.expect.push(e);
    if (e.kind === 'sync') this.batchOpen = false;
    else if (e.kind !== 'query') this.batchOpen = true;
  }

  private peek(): Expectation | undefined {
    return this.expect.peek();
  }

  private pop(): Expectation | undefined {
    return this.expect.pop();
  }

  /** Resolves once every forwarded message has been answered. */
  private idle(): Promise<void> | undefined {
    return this.expect.idle();
  }

  private get record(): boolean {
    return this.o.recorder.enabled;
  }

  // ---- client → target ----

  private onClient(frame: PgFrame, out: Buffer[]): undefined | Promise<void> {
    if (this.held !== undefined) return this.holdFrame(this.held, frame, out);
    const code = frame.code;
    if (code === FrontendCode.copyData || code === FrontendCode.copyDone) {
      if (this.skipUntilSync === undefined) out.push(frame.frame);
      return undefined;
    }
    const message = decodeClientMessage(code, frame.body);
    if (this.skipUntilSync !== undefined) {
      if (message.type !== 'sync') return undefined;
      const inject = this.skipUntilSync;
      this.skipUntilSync = undefined;
      out.push(frame.frame);
      this.push({ kind: 'sync', forceFailed: this.virtualAbort, inject });
      return this.idle();
    }
    switch (message.type) {
      case 'query':
        return this.onQuery(message.sql, frame, out);
      case 'parse':
        return this.onParse(message, frame, out);
      case 'bind': {
        const statement = this.statements.get(message.statement);
        if (this.virtualAbort && statement?.ending !== true) {
          this.denyBatch(abortedDenial, statement?.sql ?? '', undefined);
          return undefined;
        }
        if (!this.replaying && this.o.guardrails.reviewKinds.size > 0) {
          if (statement === undefined) {
            // Forgotten (maxPreparedStatements) or never prepared: hoop cannot tell whether it
            // needs approval, so it does not run.
            this.denyBatch(
              denial(
                `prepared statement "${message.statement}" is not known to hoop; prepare it again`,
                'review: unknown statement',
              ),
              '',
              undefined,
            );
            return undefined;
          }
          if (statement.review !== undefined) return this.startHold(statement.review, frame, out);
        }
        this.portals.set(message.portal, {
          sql: statement?.sql ?? '',
          ending: statement?.ending ?? false,
          params: this.record ? Recorder.params(message.params, message.paramFormats) : [],
        });
        out.push(frame.frame);
        this.push({ kind: 'bind' });
        return undefined;
      }
      case 'describe':
        out.push(frame.frame);
        this.push({ kind: 'describe', internalFor: undefined });
        return undefined;
      case 'execute':
        return this.onExecute(message.portal, frame, out);
      case 'close':
        if (message.target === 'S') this.statements.delete(message.name);
        else this.portals.delete(message.name);
        out.push(frame.frame);
        this.push({ kind: 'close' });
        return undefined;
      case 'sync':
        out.push(frame.frame);
        this.push({ kind: 'sync', forceFailed: this.virtualAbort, inject: undefined });
        return undefined;
      case 'function-call':
        if (this.o.guardrails.needed) {
          return this.denyQuery(
            '<function call>',
            denial('the fastpath function call protocol bypasses inspection', 'function-call'),
          );
        }
        out.push(frame.frame);
        this.push({
          kind: 'query',
          record: this.record ? this.o.recorder.start('<function call>') : undefined,
          forceFailed: false,
          plan: undefined,
        });
        return undefined;
      default:
        // flush, copy-fail, terminate: forwarded as they are.
        out.push(frame.frame);
        return undefined;
    }
  }

  /** Guardrails for a SQL string; in the virtual failed state only transaction ends pass. */
  private verdict(
    sql: string,
  ): { allowed: true; statements: readonly StatementFacts[] } | { allowed: false; denial: Denial } {
    const verdict = this.o.guardrails.check(sql, new Set(this.sqlPrepared.keys()));
    if (!this.virtualAbort) return verdict;
    if (verdict.allowed && ENDING.has(verdict.statements[0]?.transaction ?? '')) return verdict;
    return { allowed: false, denial: abortedDenial };
  }

  /** Remembers SQL PREPARE / DEALLOCATE of allowed statements (EXECUTE is checked against them). */
  private track(statements: readonly StatementFacts[]): void {
    for (const s of statements) {
      if (s.prepare !== undefined) this.sqlPrepared.set(s.prepare, true);
      if (s.deallocate === '*') this.sqlPrepared.clear();
      else if (s.deallocate !== undefined) this.sqlPrepared.delete(s.deallocate);
    }
  }

  private onQuery(sql: string, frame: PgFrame, out: Buffer[]): undefined | Promise<void> {
    const verdict = this.verdict(sql);
    if (!verdict.allowed) return this.denyQuery(sql, verdict.denial);
    const held =
      this.virtualAbort || this.replaying
        ? undefined
        : this.o.guardrails.reviewKind(verdict.statements);
    if (held !== undefined) return this.holdQuery(sql, held, frame, out, verdict.statements);
    this.forwardQuery(sql, frame.frame, out, verdict.statements);
    return undefined;
  }

  /**
   * A statement that needs approval: once everything before it is answered, the client gets a
   * NoticeResponse naming the review, and the statement waits (the client's later messages wait
   * behind it). Approved: forwarded exactly once. Otherwise: ErrorResponse 42501 and
   * ReadyForQuery, and the session goes on.
   */
  private async holdQuery(
    sql: string,
    kind: string,
    frame: PgFrame,
    out: Buffer[],
    statements: readonly StatementFacts[],
  ): Promise<void> {
    const original = Buffer.from(frame.frame); // the reader's buffer is not ours to keep
    await this.idle();
    const answer = await askReview(
      this.o.reviewStatement,
      sql,
      kind,
      (notice) => this.toClient(notice),
      this.o.signal,
    );
    if (!answer.approved) return this.denyQuery(sql, answer.denial);
    this.o.logger.info('statement approved by review', { review: answer.review });
    this.forwardQuery(sql, original, out, statements);
  }

  private forwardQuery(
    sql: string,
    /** The Query message as it goes to the target. */
    frame: Buffer,
    out: Buffer[],
    statements: readonly StatementFacts[],
  ): void {
    const verdict = { statements };
    this.track(verdict.statements);
    const first = verdict.statements[0]?.transaction;
    if (this.virtualAbort) {
      this.virtualAbort = false;
      // COMMIT (or PREPARE TRANSACTION) of a failed transaction rolls it back.
      out.push(
        first === 'commit' || first === 'prepare-transaction' ? encodeQuery('ROLLBACK') : frame,
      );
    } else {
      out.push(frame);
    }
    this.push({
      kind: 'query',
      record: this.record ? this.o.recorder.start(sql) : undefined,
      forceFailed: false,
      plan: undefined,
    });
  }

  /** Answers a denied simple Query once everything before it has been answered. */
  private denyQuery(sql: string, found: Denial): Promise<void> {
    const respond = (): void => {
      const status: TransactionStatus = this.status === 'I' ? 'I' : 'E';
      if (status === 'E') this.virtualAbort = true;
      this.toClient(errorFor(found), encodeReadyForQuery(status));
      this.recordDenial(sql, found, undefined);
    };
    const waiting = this.idle();
    if (waiting === undefined) {
      respond();
      return Promise.resolve();
    }
    return waiting.then(respond);
  }

  /** A denied extended-protocol message: drop the client's messages up to Sync. */
  private denyBatch(found: Denial, sql: string, params: (string | null)[] | undefined): void {
    this.skipUntilSync = errorFor(found);
    this.recordDenial(sql, found, params);
  }

  private recordDenial(sql: string, found: Denial, params: (string | null)[] | undefined): void {
    this.o.logger.info('statement denied by policy', { rule: found.rule });
    const record = this.o.recorder.start(sql, params);
    record.denied = { rule: found.rule };
    record.error = { code: found.sqlstate, message: found.message };
    this.o.recorder.finish(record);
  }

  private toClient(...buffers: Buffer[]): void {
    const { client } = this.o;
    if (client.destroyed || client.writableEnded) return;
    client.write(buffers.length === 1 ? (buffers[0] as Buffer) : Buffer.concat(buffers));
  }

  private onParse(
    message: Extract<ClientMessage, { type: 'parse' }>,
    frame: PgFrame,
    out: Buffer[],
  ): undefined | Promise<void> {
    const verdict = this.verdict(message.sql);
    if (!verdict.allowed) {
      this.denyBatch(verdict.denial, message.sql, undefined);
      return undefined;
    }
    const held = this.o.guardrails.reviewKind(verdict.statements);
    if (held !== undefined && !this.replaying) return this.startHold(held, frame, out);
    this.track(verdict.statements);
    const first = verdict.statements[0]?.transaction;
    const ending = ENDING.has(first ?? '');
    this.statements.set(message.name, {
      sql: message.sql,
      ending,
      ...(held === undefined ? {} : { review: held }),
    });
    if (this.virtualAbort && (first === 'commit' || first === 'prepare-transaction')) {
      out.push(encodeParse(message.name, 'ROLLBACK', message.paramTypes));
    } else {
      out.push(frame.frame);
    }
    this.push({ kind: 'parse' });
    return undefined;
  }

  // ---- extended-protocol batches held for review ----

  /** Starts holding the batch at `frame` (a Parse or Bind that needs approval). */
  private startHold(kind: string, frame: PgFrame, out: Buffer[]): undefined | Promise<void> {
    const batch = new HeldBatch(kind, {
      maxMessages: this.o.maxPendingMessages,
      maxBytes: this.o.maxHeldBatchBytes ?? DEFAULT_MAX_HELD_BATCH_BYTES,
    });
    // What went to the target earlier in this batch is answered now (Flush), not after the wait.
    if (this.batchOpen) out.push(FLUSH);
    this.held = batch;
    return this.holdFrame(batch, frame, out);
  }

  /** Keeps a message of the held batch; at its end, asks approvers. */
  private holdFrame(batch: HeldBatch, frame: PgFrame, out: Buffer[]): undefined | Promise<void> {
    if (!batch.add(frame)) {
      this.held = undefined;
      const limit = this.o.maxHeldBatchBytes ?? DEFAULT_MAX_HELD_BATCH_BYTES;
      this.denyBatch(
        denial(
          `a batch held for review is limited to ${this.o.maxPendingMessages} messages and ${limit} bytes (maxHeldBatchBytes)`,
          `review: ${batch.kind}`,
          SqlState.programLimitExceeded,
        ),
        '',
        undefined,
      );
      return this.onClient(frame, out);
    }
    if (!HeldBatch.ends(frame)) return undefined;
    this.held = undefined;
    return this.releaseHeld(batch, out);
  }

  /** The held batch is complete: run it once approved, otherwise refuse it. */
  private async releaseHeld(batch: HeldBatch, out: Buffer[]): Promise<void> {
    const text = batch.reviewText({
      statement: (name) => this.statements.get(name)?.sql,
      portal: (name) => this.portals.get(name),
    });
    if (text === undefined) return this.replay(batch, out); // runs nothing: nothing to approve
    await this.idle();
    const answer = await askReview(
      this.o.reviewStatement,
      text,
      batch.kind,
      (notice) => this.toClient(notice),
      this.o.signal,
    );
    if (answer.approved) {
      this.o.logger.info('statement batch approved by review', { review: answer.review });
      return this.replay(batch, out);
    }
    this.recordDenial(text, answer.denial, undefined);
    if (batch.endsWithSync) {
      // The target ends the batch (and anything it ran before the hold); the refusal goes
      // right before its ReadyForQuery.
      out.push(SYNC);
      this.push({ kind: 'sync', forceFailed: this.virtualAbort, inject: errorFor(answer.denial) });
      return;
    }
    // Ended by Flush: the client waits for an answer before it sends Sync.
    if (!this.batchErrored) this.toClient(errorFor(answer.denial));
    this.skipUntilSync = Buffer.alloc(0);
  }

  /** Runs the held messages through the proxy as if they had just arrived. */
  private async replay(batch: HeldBatch, out: Buffer[]): Promise<void> {
    this.replaying = true;
    try {
      for (const frame of batch.frames) {
        const pending = this.onClient(frame, out);
        if (pending !== undefined) {
          this.sendToTarget(out);
          await pending;
        }
      }
    } finally {
      this.replaying = false;
    }
  }

  /** Writes queued output to the target now (before waiting for its answers). */
  private sendToTarget(out: Buffer[]): void {
    const parts = out.splice(0);
    const { target } = this.o;
    if (parts.length === 0 || target.destroyed || target.writableEnded) return;
    target.write(parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts));
  }

  private onExecute(portalName: string, frame: PgFrame, out: Buffer[]): undefined {
    const portal = this.portals.get(portalName);
    if (this.virtualAbort) {
      if (portal?.ending !== true) {
        this.denyBatch(abortedDenial, portal?.sql ?? '', portal?.params);
        return undefined;
      }
      this.virtualAbort = false;
    }
    const execute: ExecuteExpectation = {
      kind: 'execute',
      record: this.record ? this.o.recorder.start(portal?.sql ?? '', portal?.params) : undefined,
      plan: undefined,
    };
    if (this.o.masker.active) {
      // Describe the portal ourselves: its RowDescription (with the real result formats) tells
      // how to mask the rows, even when the client never asked for it.
      out.push(describePortal(portalName));
      this.push({ kind: 'describe', internalFor: execute });
    }
    out.push(frame.frame);
    this.push(execute);
    return undefined;
  }

  // ---- target → client ----

  private onTarget(frame: PgFrame, out: Buffer[]): undefined | Promise<void> {
    const code = frame.code;
    if (code === BackendCode.dataRow) {
      this.onDataRow(frame, out);
      return undefined;
    }
    if (code === BackendCode.copyData) {
      this.onCopyData(frame, out);
      return undefined;
    }
    const message = decodeServerMessage(code, frame.body);
    switch (message.type) {
      case 'row-description':
        return this.onRowDescription(message.fields, frame, out);
      case 'no-data': {
        const head = this.peek();
        if (head?.kind === 'describe') {
          this.pop();
          if (head.internalFor !== undefined) return undefined;
        }
        out.push(frame.frame);
        return undefined;
      }
      case 'parse-complete':
      case 'bind-complete':
      case 'close-complete':
        if (this.peek()?.kind !== 'query') this.pop();
        out.push(frame.frame);
        return undefined;
      case 'command-complete':
      case 'empty-query':
      case 'portal-suspended': {
        const head = this.peek();
        const tag = message.type === 'command-complete' ? message.tag : undefined;
        if (head?.kind === 'query' && head.record !== undefined && tag !== undefined) {
          head.record.tag = tag;
          head.record.addRows(rowsFromTag(tag));
        }
        if (head?.kind === 'execute') {
          this.pop();
          if (head.record !== undefined) {
            if (tag !== undefined) {
              head.record.tag = tag;
              head.record.addRows(rowsFromTag(tag));
            }
            this.o.recorder.finish(head.record);
          }
        }
        this.copyOut = undefined;
        out.push(frame.frame);
        return undefined;
      }
      case 'error':
        this.onError(message.fields, frame, out);
        return undefined;
      case 'ready-for-query':
        this.onReady(message.status, out);
        return undefined;
      case 'copy-response':
        if (message.direction === 'out') this.copyOut = { binary: message.format === 1 };
        out.push(frame.frame);
        return undefined;
      case 'copy-done':
        this.copyOut = undefined;
        out.push(frame.frame);
        return undefined;
      case 'notice': {
        const masked = maskFields(message.fields, this.o.masker, this.currentCounts());
        out.push(masked === undefined ? frame.frame : encodeFields(code, masked));
        return undefined;
      }
      case 'parameter-status': {
        const masked = this.o.masker.scanText(message.value, this.currentCounts());
        out.push(masked === undefined ? frame.frame : encodeParameterStatus(message.name, masked));
        return undefined;
      }
      case 'notification': {
        const masked = this.o.masker.scanText(message.payload, this.currentCounts());
        out.push(
          masked === undefined
            ? frame.frame
            : encodeNotification(message.pid, message.channel, masked),
        );
        return undefined;
      }
      default:
        out.push(frame.frame);
        return undefined;
    }
  }

  private currentCounts(): MaskCounts {
    const head = this.peek();
    if (head !== undefined && (head.kind === 'query' || head.kind === 'execute')) {
      if (head.record !== undefined) return head.record.counts;
    }
    return new MaskCounts();
  }

  private onRowDescription(
    fields: readonly FieldDescription[],
    frame: PgFrame,
    out: Buffer[],
  ): undefined | Promise<void> {
    const head = this.peek();
    const finish = (failed: boolean): void => {
      const plan = planColumns(fields, this.o.catalog, this.o.masker, failed);
      if (head?.kind === 'describe') {
        this.pop();
        if (head.internalFor !== undefined) {
          head.internalFor.plan = plan;
          return;
        }
      } else if (head?.kind === 'query') {
        head.plan = plan;
      }
      out.push(frame.frame);
    };
    const { catalog, masker } = this.o;
    if (catalog !== undefined && masker.hasColumnMasks) {
      const missing = catalog.missing(fields.map((f) => f.tableOid));
      if (missing.length > 0) {
        return catalog.load(missing).then(
          () => finish(false),
          (err: unknown) => {
            this.o.logger.warn('catalog lookup failed: masking every table column', {
              error: err,
            });
            finish(true);
          },
        );
      }
    }
    finish(false);
    return undefined;
  }

  private onDataRow(frame: PgFrame, out: Buffer[]): void {
    const { masker } = this.o;
    if (!masker.active) {
      out.push(frame.frame);
      return;
    }
    const head = this.peek();
    const plan =
      head !== undefined && (head.kind === 'query' || head.kind === 'execute')
        ? head.plan
        : undefined;
    const counts =
      head !== undefined && (head.kind === 'query' || head.kind === 'execute') && head.record
        ? head.record.counts
        : new MaskCounts();
    if (!rowMayChange(frame.frame, plan, masker)) {
      out.push(frame.frame);
      return;
    }
    const message = decodeServerMessage(frame.code, frame.body);
    if (message.type !== 'data-row') return;
    let changed = false;
    const values = message.values.map((value, i) => {
      const masked = masker.maskValue(value, plan?.[i], counts);
      if (masked !== value) changed = true;
      return masked;
    });
    out.push(changed ? encodeDataRow(values) : frame.frame);
  }

  private onCopyData(frame: PgFrame, out: Buffer[]): void {
    const { masker } = this.o;
    if (this.copyOut === undefined || !masker.active) {
      out.push(frame.frame);
      return;
    }
    if (this.copyOut.binary) return; // denied up front; never pass unmaskable bytes
    // The row is read in place, after the type and length (no view of it is made).
    const masked = masker.scanBytes(frame.frame, this.currentCounts(), 'utf8', 5);
    out.push(masked === undefined ? frame.frame : encodeCopyData(Buffer.from(masked, 'utf8')));
  }

  private onError(fields: Map<number, string>, frame: PgFrame, out: Buffer[]): void {
    const masked = maskFields(fields, this.o.masker, this.currentCounts());
    const head = this.peek();
    this.copyOut = undefined;
    if (head !== undefined && head.kind !== 'query' && head.kind !== 'sync') {
      // Extended protocol: the target skips every message up to Sync.
      this.batchErrored = true;
      for (let e = this.peek(); e !== undefined && e.kind !== 'sync' && e.kind !== 'query'; ) {
        this.pop();
        if (e.kind === 'execute' && e.record !== undefined) {
          e.record.failWith(fields);
          this.o.recorder.finish(e.record);
        }
        e = this.peek();
      }
    } else if (head?.kind === 'query') {
      head.record?.failWith(fields);
    }
    out.push(masked === undefined ? frame.frame : encodeFields(BackendCode.errorResponse, masked));
  }

  private onReady(status: TransactionStatus, out: Buffer[]): void {
    let head = this.peek();
    while (head !== undefined && head.kind !== 'query' && head.kind !== 'sync') {
      this.pop();
      if (head.kind === 'execute' && head.record !== undefined) this.o.recorder.finish(head.record);
      head = this.peek();
    }
    if (head === undefined) {
      throw protocolError('target', PgFailure.unexpectedMessage, 'unexpected ReadyForQuery');
    }
    this.pop();
    let answered = status;
    if (head.kind === 'query' && head.record !== undefined) this.o.recorder.finish(head.record);
    if (head.kind === 'sync' && head.inject !== undefined) {
      if (!this.batchErrored) out.push(head.inject);
      if (status === 'T') {
        answered = 'E';
        this.virtualAbort = true;
      }
    } else if (head.forceFailed && status === 'T' && this.virtualAbort) {
      answered = 'E';
    }
    this.batchErrored = false;
    this.status = answered;
    out.push(answered === status ? encodeReadyForQuery(status) : encodeReadyForQuery(answered));
    this.expect.wakeIfIdle();
  }
}

/** The ErrorResponse of a denial. */
function errorFor(found: Denial): Buffer {
  return errorResponse({
    severity: 'ERROR',
    code: found.sqlstate,
    message: found.message,
    ...(found.detail === undefined ? {} : { detail: found.detail }),
  });
}

const FLUSH = encodeMessage(FrontendCode.flush);
const SYNC = encodeMessage(FrontendCode.sync);

/** Describe ('D') of a portal. */
function describePortal(name: string): Buffer {
  return encodeMessage(FrontendCode.describe, Buffer.from(`P${name}\0`, 'utf8'));
}
