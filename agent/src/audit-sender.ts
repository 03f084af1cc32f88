/**
 * Sends engine audit events to the broker through the durable spool (spool/spool.ts):
 *
 *   engine ─audit(event)─► push: JSON → spool.append (written before push returns)
 *   spool (fsync'd) ─read─► batch {t:'audit', seq: first seq, events} ─tunnel stream 0─► broker
 *   broker stores, answers {t:'audit-ack', seq: last seq of the batch} ─► spool.ack → delete
 *
 * Batches carry consecutive seqs (event i of a batch has seq `seq + i`). At most `maxInFlight`
 * batches wait for acks; after a reconnect, or when no ack arrives within `ackTimeoutMs`,
 * sending restarts at the oldest unacknowledged event (the broker ignores duplicates). Memory is
 * bounded by maxInFlight × maxBatchBytes whatever the spool holds.
 */
import type { AuditEvent, Clock, Logger, TimerHandle } from '@hoop/shared';
import { HoopError, systemClock } from '@hoop/shared';
import type { Spool } from './spool/spool.js';

export interface AuditChannel {
  /** Sends one batch; false when the tunnel cannot take it now. */
  send(events: readonly AuditEvent[], seq: number): boolean;
}

export interface AuditSenderOptions {
  readonly spool: Spool;
  readonly clock?: Clock;
  readonly logger: Logger;
  readonly maxBatch?: number;
  /** Payload bytes per batch; keep well under the tunnel's maxFrameBytes. */
  readonly maxBatchBytes?: number;
  readonly maxInFlight?: number;
  readonly ackTimeoutMs?: number;
  /** Longest statement text kept in one event; longer text is cut with a marker. */
  readonly maxTextBytes?: number;
}

export class AuditSender {
  private readonly spool: Spool;
  private readonly clock: Clock;
  private channel: AuditChannel | undefined;
  /** Last seq of each batch sent and not yet acknowledged, oldest first. */
  private inFlight: number[] = [];
  private ackTimer: TimerHandle | undefined;
  private pumpScheduled = false;
  private stopped = false;

  constructor(private readonly options: AuditSenderOptions) {
    this.spool = options.spool;
    this.clock = options.clock ?? systemClock;
  }

  /** Events accepted and not yet acknowledged by the broker. */
  get queued(): number {
    return this.spool.pending;
  }

  /** Attach (tunnel up) or detach (tunnel down) the channel; attaching resends what is unacked. */
  setChannel(channel: AuditChannel | undefined): void {
    this.channel = channel;
    this.inFlight = [];
    this.clearAckTimer();
    this.spool.rewind();
    if (channel !== undefined) this.schedulePump();
  }

  /**
   * Accepts one event: on return it is written to the spool (kill -9 safe). Throws a HoopError
   * when it cannot be recorded (disk full, I/O error): the caller must not run unrecorded.
   */
  push(event: AuditEvent): void {
    const payload = this.encode(event);
    try {
      this.spool.append(payload);
    } catch (err) {
      if (err instanceof HoopError) throw err;
      throw new HoopError('SPOOL_FULL', `cannot write the audit spool: ${(err as Error).message}`, {
        cause: err,
      });
    }
    // Sending waits for the fsync (the spool's onDurable calls notifyDurable()).
  }

  /** The spool made more records durable. */
  notifyDurable(): void {
    this.schedulePump();
  }

  /** The broker stored everything up to and including `seq`. */
  ack(seq: number): void {
    this.spool.ack(seq);
    while (this.inFlight.length > 0 && (this.inFlight[0] as number) <= seq) this.inFlight.shift();
    this.clearAckTimer();
    if (this.inFlight.length > 0) this.armAckTimer();
    this.schedulePump();
  }

  /** Sends what fits now. */
  flush(): void {
    this.pump();
  }

  stop(): void {
    this.stopped = true;
    this.clearAckTimer();
    this.channel = undefined;
  }

  private encode(event: AuditEvent): Buffer {
    const maxText = this.options.maxTextBytes ?? 64 * 1024;
    let payload = Buffer.from(JSON.stringify(event));
    if (event.type === 'statement' && Buffer.byteLength(event.text) > maxText) {
      const cut = Buffer.from(event.text)
        .subarray(0, maxText)
        .toString('utf8')
        .replace(/\uFFFD$/, '');
      const dropped = Buffer.byteLength(event.text) - Buffer.byteLength(cut);
      payload = Buffer.from(
        JSON.stringify({ ...event, text: `${cut}…[${dropped} more bytes not recorded]` }),
      );
    }
    if (event.type === 'statement' && event.params !== undefined && payload.length > 128 * 1024) {
      payload = Buffer.from(
        JSON.stringify({
          ...event,
          params: [`[${event.params.length} parameters not recorded: too large]`],
        }),
      );
    }
    return payload;
  }

  private schedulePump(): void {
    if (this.pumpScheduled || this.stopped) return;
    this.pumpScheduled = true;
    queueMicrotask(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  private pump(): void {
    const channel = this.channel;
    if (channel === undefined || this.stopped) return;
    const maxInFlight = this.options.maxInFlight ?? 4;
    while (this.inFlight.length < maxInFlight) {
      const records = this.spool.read(
        this.options.maxBatch ?? 500,
        this.options.maxBatchBytes ?? 128 * 1024,
      );
      const first = records[0];
      const last = records[records.length - 1];
      if (first === undefined || last === undefined) return;
      const events: AuditEvent[] = [];
      for (const r of records) {
        try {
          events.push(JSON.parse(r.payload.toString('utf8')) as AuditEvent);
        } catch {
          // CRC-valid but not JSON: only a bug writes this. Send a marker so the seq stays stored.
          this.options.logger.error('spool record is not JSON; sending a placeholder', {
            seq: r.seq,
          });
          events.push({
            type: 'session-end',
            session: '',
            at: 0,
            connection: '',
            user: '',
            detail: 'unreadable spool record',
          });
        }
      }
      if (!channel.send(events, first.seq)) {
        this.spool.rewind();
        return;
      }
      this.inFlight.push(last.seq);
      if (this.ackTimer === undefined) this.armAckTimer();
    }
  }

  private armAckTimer(): void {
    this.ackTimer = this.clock.setTimeout(() => {
      this.ackTimer = undefined;
      if (this.inFlight.length === 0) return;
      this.options.logger.warn('no audit acknowledgement from the broker; resending', {
        unacked: this.inFlight.length,
      });
      this.inFlight = [];
      this.spool.rewind();
      this.schedulePump();
    }, this.options.ackTimeoutMs ?? 30_000);
    this.ackTimer.unref?.();
  }

  private clearAckTimer(): void {
    if (this.ackTimer !== undefined) this.clock.clearTimeout(this.ackTimer);
    this.ackTimer = undefined;
  }
}
