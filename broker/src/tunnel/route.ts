/**
 * A route joins one CLI stream to one agent stream for one session. The broker relays DATA and
 * WINDOW frames between them untouched except for the stream id, and keeps the credit count for
 * each direction so a peer that ignores its window is cut off (WINDOW_EXCEEDED) instead of making
 * the broker buffer. Lifecycle: opening → open → closed.
 */
import { type FrameConnection, HoopError } from '@hoop/shared';

export const RouteState = { opening: 'opening', open: 'open', closed: 'closed' } as const;
export type RouteState = (typeof RouteState)[keyof typeof RouteState];

const transitions: Record<RouteState, readonly RouteState[]> = {
  opening: ['open', 'closed'],
  open: ['closed'],
  closed: [],
};

export interface RouteEnd {
  readonly tunnel: FrameConnection;
  readonly stream: number;
  /** The owning link's route table, so finishing a route is O(1). */
  readonly routes: Map<number, Route>;
}

export class Route {
  private stateValue: RouteState = RouteState.opening;
  /** Bytes sent client → agent not yet granted back by the agent. */
  upInFlight = 0;
  /** Bytes sent agent → client not yet granted back by the client. */
  downInFlight = 0;
  bytesUp = 0;
  bytesDown = 0;
  /**
   * The session row is stored: the client is told open-ok only once this and `agentReady` are
   * both true (the agent opens the session while the broker stores its row).
   */
  stored = false;
  /** The agent answered open-ok. */
  agentReady = false;
  /**
   * The client's DATA goes on to the agent: once the row is stored, or from the open-session on
   * for an agent that waits for `admit` (until then the broker holds it as early data).
   */
  passing = false;
  /** DATA bytes the client sent before open-ok (EARLY_DATA_MAX_BYTES at most). */
  earlyBytes = 0;
  /** Frames the agent sent after its open-ok while the row was being stored (copies, in order). */
  readonly held: Buffer[] = [];
  /** Resolves true once the session row is stored, false if it could not be. */
  rowStored: Promise<boolean> = Promise.resolve(true);

  constructor(
    readonly session: string,
    readonly connection: string,
    readonly client: RouteEnd,
    readonly agent: RouteEnd,
    readonly window: number,
    /** The grant the session runs on (its jti), when known. */
    readonly grantId?: string,
  ) {}

  get state(): RouteState {
    return this.stateValue;
  }

  transition(to: RouteState): void {
    if (this.stateValue === to) return;
    if (!transitions[this.stateValue].includes(to)) {
      throw new HoopError(
        'INTERNAL',
        `route ${this.session}: illegal transition ${this.stateValue} → ${to}`,
      );
    }
    this.stateValue = to;
  }

  /** Accounts for data travelling one way; throws WINDOW_EXCEEDED when the sender overran. */
  carry(direction: 'up' | 'down', bytes: number): void {
    if (direction === 'up') {
      this.upInFlight += bytes;
      this.bytesUp += bytes;
      if (this.upInFlight > this.window) throw overrun('client', this.upInFlight, this.window);
    } else {
      this.downInFlight += bytes;
      this.bytesDown += bytes;
      if (this.downInFlight > this.window) throw overrun('agent', this.downInFlight, this.window);
    }
  }

  /** Accounts for a WINDOW grant travelling the other way. */
  grant(direction: 'up' | 'down', credit: number): void {
    if (direction === 'up') this.upInFlight = Math.max(0, this.upInFlight - credit);
    else this.downInFlight = Math.max(0, this.downInFlight - credit);
  }
}

function overrun(who: string, inFlight: number, window: number): HoopError {
  return new HoopError(
    'WINDOW_EXCEEDED',
    `${who} sent ${inFlight} bytes against a ${window}-byte window`,
  );
}
