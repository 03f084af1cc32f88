/** Exponential backoff with full jitter: delay n is uniform in [base, min(cap, base·2ⁿ)]. */

export interface BackoffOptions {
  readonly baseMs: number;
  readonly capMs: number;
  readonly random?: () => number;
}

export class Backoff {
  private attempt = 0;
  private readonly random: () => number;

  constructor(private readonly options: BackoffOptions) {
    this.random = options.random ?? Math.random;
  }

  next(): number {
    const ceiling = Math.min(this.options.capMs, this.options.baseMs * 2 ** this.attempt);
    this.attempt = Math.min(this.attempt + 1, 30);
    return Math.round(this.options.baseMs + this.random() * (ceiling - this.options.baseMs));
  }

  reset(): void {
    this.attempt = 0;
  }
}
