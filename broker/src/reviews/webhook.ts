/**
 * Review notifications to one webhook per broker: a JSON POST on review created and decided,
 * signed with HMAC-SHA256 over the exact body (`X-Hoop-Signature: sha256=<hex>`), retried with
 * exponential backoff a bounded number of times. `format: 'slack'` sends a Slack-compatible
 * `{text}` instead. Deliveries run in the background and never block or fail a review.
 */
import { createHmac } from 'node:crypto';
import { HoopError, type Logger } from '@hoop/shared';
import type { ReviewNotification } from './service.js';

export const webhookFormats = ['json', 'slack'] as const;
export type WebhookFormat = (typeof webhookFormats)[number];

export interface WebhookConfig {
  readonly url: string;
  /** HMAC key; deliveries are unsigned without one. */
  readonly secret?: string;
  readonly format: WebhookFormat;
  /** Attempts per notification, first included (default 5). */
  readonly maxAttempts: number;
  /** First retry delay; doubled each time (default 500 ms). */
  readonly backoffMs: number;
  /** Per attempt (default 5 s). */
  readonly timeoutMs: number;
  /** Deliveries in flight or waiting to retry, at most (default 1000; more are dropped, logged). */
  readonly maxQueued: number;
}

export const SIGNATURE_HEADER = 'x-hoop-signature';

/** From HOOP_REVIEW_WEBHOOK_URL / _SECRET / _FORMAT; undefined when no URL is set. */
export function webhookConfigFromEnv(env: {
  HOOP_REVIEW_WEBHOOK_URL?: string;
  HOOP_REVIEW_WEBHOOK_SECRET?: string;
  HOOP_REVIEW_WEBHOOK_FORMAT?: string;
}): WebhookConfig | undefined {
  const url = env.HOOP_REVIEW_WEBHOOK_URL;
  if (url === undefined || url === '') return undefined;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new HoopError('USAGE', 'HOOP_REVIEW_WEBHOOK_URL is not a URL');
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new HoopError('USAGE', 'HOOP_REVIEW_WEBHOOK_URL must be http(s)');
  }
  const format = env.HOOP_REVIEW_WEBHOOK_FORMAT ?? 'json';
  if (!(webhookFormats as readonly string[]).includes(format)) {
    throw new HoopError(
      'USAGE',
      `HOOP_REVIEW_WEBHOOK_FORMAT must be one of ${webhookFormats.join(', ')}`,
    );
  }
  return {
    url,
    ...(env.HOOP_REVIEW_WEBHOOK_SECRET ? { secret: env.HOOP_REVIEW_WEBHOOK_SECRET } : {}),
    format: format as WebhookFormat,
    maxAttempts: 5,
    backoffMs: 500,
    timeoutMs: 5000,
    maxQueued: 1000,
  };
}

export function signBody(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/** The body sent for a notification, in the configured format. */
export function webhookBody(format: WebhookFormat, n: ReviewNotification): string {
  if (format === 'slack') return JSON.stringify({ text: slackText(n) });
  return JSON.stringify({ event: n.event, review: n.review });
}

/** One Slack message line (mrkdwn); break-glass is meant to be noticed. */
function slackText(n: ReviewNotification): string {
  const r = n.review;
  const what =
    r.kind === 'access' ? `access to *${r.connection}*` : `a statement on *${r.connection}*`;
  const window = r.durationSeconds === null ? '' : ` for ${r.durationSeconds}s`;
  const why = r.justification === null ? '' : `: “${r.justification}”`;
  if (r.breakGlass && r.status === 'approved') {
    return (
      `<!here> :rotating_light: *BREAK-GLASS* :rotating_light: ${r.requester} took ${what}${window} ` +
      `without approval${why}\nReview ${r.id}. End it: \`hoop reviews revoke ${r.id}\``
    );
  }
  if (n.event === 'review.created') {
    return `:hourglass: ${r.requester} asks for ${what}${window}${why}\nApprove: \`${r.approveWith}\``;
  }
  return (
    `${r.status === 'approved' ? ':white_check_mark:' : ':x:'} review ${r.id} (${what} for ${r.requester}) is *${r.status}*` +
    `${r.decidedBy === null ? '' : ` by ${r.decidedBy}`}${r.breakGlass ? ' (break-glass)' : ''}`
  );
}

export class ReviewWebhook {
  private queued = 0;
  private readonly timers = new Set<NodeJS.Timeout>();
  private closed = false;

  constructor(
    private readonly config: WebhookConfig,
    private readonly logger: Logger,
  ) {}

  /** Queues a delivery; returns at once. */
  send(notification: ReviewNotification): void {
    if (this.closed) return;
    if (this.queued >= this.config.maxQueued) {
      this.logger.warn('review webhook queue is full; dropped a notification', {
        review: notification.review.id,
        event: notification.event,
      });
      return;
    }
    this.queued++;
    const body = webhookBody(this.config.format, notification);
    void this.attempt(body, notification, 1);
  }

  close(): void {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  private async attempt(body: string, n: ReviewNotification, attempt: number): Promise<void> {
    let failure: string;
    try {
      const res = await fetch(this.config.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'hoop-broker',
          'x-hoop-event': n.event,
          ...(this.config.secret === undefined
            ? {}
            : { [SIGNATURE_HEADER]: signBody(this.config.secret, body) }),
        },
        body,
        signal: AbortSignal.timeout(this.config.timeoutMs),
      });
      await res.arrayBuffer().catch(() => undefined);
      if (res.ok) {
        this.queued--;
        return;
      }
      failure = `HTTP ${res.status}`;
    } catch (err) {
      failure = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).name;
    }
    if (attempt >= this.config.maxAttempts || this.closed) {
      this.queued--;
      this.logger.warn('review webhook delivery failed; giving up', {
        review: n.review.id,
        event: n.event,
        attempts: attempt,
        failure,
      });
      return;
    }
    const delay = this.config.backoffMs * 2 ** (attempt - 1);
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      void this.attempt(body, n, attempt + 1);
    }, delay);
    timer.unref();
    this.timers.add(timer);
  }
}
