/**
 * Detects a dead peer: pings every interval, and declares the peer dead when nothing (message,
 * ping or pong) has arrived for two intervals. Uses the injected clock.
 */
import type { Clock, TimerHandle } from '../clock.js';

export class Heartbeat {
  private lastSeen: number;
  private timer: TimerHandle | undefined;
  private stopped = false;

  constructor(
    private readonly clock: Clock,
    private readonly intervalMs: number,
    private readonly ping: () => void,
    private readonly onDead: () => void,
  ) {
    this.lastSeen = clock.now();
    this.schedule();
  }

  /** Call on any inbound traffic. */
  seen(): void {
    this.lastSeen = this.clock.now();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = this.clock.setTimeout(() => this.tick(), this.intervalMs);
    this.timer.unref?.();
  }

  private tick(): void {
    if (this.stopped) return;
    if (this.clock.now() - this.lastSeen >= 2 * this.intervalMs) {
      this.stopped = true;
      this.onDead();
      return;
    }
    this.ping();
    this.schedule();
  }
}
