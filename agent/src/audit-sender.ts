/**
 * Batches engine audit events and sends them to the broker on the tunnel (stream 0), one batch
 * per flush interval or when a batch is full. While the tunnel is down, events wait in a bounded
 * queue; past `maxQueued` the oldest are dropped and counted (the durable spool replaces this
 * queue with disk in the audit issue).
 */
import type { AuditEvent, Clock, Logger, TimerHandle } from '@hoop/shared';

export interface AuditChannel {
  send(events: readonly AuditEvent[]): boolean;
}

export interface AuditSenderOptions {
  readonly clock: Clock;
  readonly logger: Logger;
  readonly flushMs?: number;
  readonly maxBatch?: number;
  readonly maxQueued?: number;
}

export class AuditSender {
  private queue: AuditEvent[] = [];
  private timer: TimerHandle | undefined;
  private channel: AuditChannel | undefined;
  dropped = 0;

  constructor(private readonly options: AuditSenderOptions) {}

  get queued(): number {
    return this.queue.length;
  }

  /** Attach (tunnel up) or detach (tunnel down) the channel. */
  setChannel(channel: AuditChannel | undefined): void {
    this.channel = channel;
    if (channel !== undefined && this.queue.length > 0) this.schedule();
  }

  push(event: AuditEvent): void {
    const max = this.options.maxQueued ?? 100_000;
    if (this.queue.length >= max) {
      this.queue.shift();
      this.dropped++;
      if (this.dropped === 1 || this.dropped % 1000 === 0) {
        this.options.logger.warn(
          'audit queue full while the broker is unreachable; dropping oldest events',
          { dropped: this.dropped },
        );
      }
    }
    this.queue.push(event);
    if (this.queue.length >= (this.options.maxBatch ?? 500)) this.flush();
    else this.schedule();
  }

  flush(): void {
    if (this.timer !== undefined) this.options.clock.clearTimeout(this.timer);
    this.timer = undefined;
    const channel = this.channel;
    if (channel === undefined) return;
    const max = this.options.maxBatch ?? 500;
    while (this.queue.length > 0) {
      const batch = this.queue.slice(0, max);
      if (!channel.send(batch)) return;
      this.queue.splice(0, batch.length);
    }
  }

  stop(): void {
    this.flush();
    if (this.timer !== undefined) this.options.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(): void {
    if (this.timer !== undefined || this.channel === undefined) return;
    this.timer = this.options.clock.setTimeout(() => {
      this.timer = undefined;
      this.flush();
    }, this.options.flushMs ?? 100);
    this.timer.unref?.();
  }
}
