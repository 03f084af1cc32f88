/**
 * The tunnel hub: every live agent tunnel and CLI tunnel, and the routes between their streams.
 * It answers a CLI's `open` by finding the connection's agent, sending it `open-session` with the
 * target (and its credential, for the owning agent only), then relays bytes both ways without
 * parsing the target protocol.
 */
import { randomUUID } from 'node:crypto';
import {
  type AuditEvent,
  type Clock,
  type ConnectionTarget,
  type ControlMessage,
  decodeWindow,
  EARLY_DATA_MAX_BYTES,
  errorBodyOf,
  FRAME_HEADER_BYTES,
  type Frame,
  FrameConnection,
  FrameKind,
  HoopError,
  hoopErrorOf,
  type Logger,
  MAX_STREAM_ID,
  type OpenConnectionMessage,
  type Policy,
  rewriteStream,
  type StatementReviewMode,
  type TimerHandle,
  TUNNEL_STREAM,
  type TunnelLimits,
  toHoopError,
  type WebSocketLike,
} from '@hoop/shared';
import { type Authorizer, adminOnlyAuthorizer, type Caller } from '../identity/caller.js';
import { brokerWrites, GroupCommit, type WriteSettler } from '../store/group-commit.js';
import { ResolveCache } from './resolve-cache.js';
import { Route, RouteState } from './route.js';

/** What the hub needs from the store. */
export interface HubStore {
  resolveConnectionTarget(name: string): Promise<{
    info: { id: string; name: string; agentId: string; agent: string };
    target: ConnectionTarget;
    policy: Policy;
    tags: readonly string[];
    maxGrantTtlSeconds: number | null;
  }>;
  appendAuditEvents(
    agentId: string,
    events: readonly AuditEvent[],
  ): Promise<{ stored: number; rejected: number }>;
  createSession(input: {
    id?: string;
    connectionId: string;
    connectionName: string;
    userId: string | null;
    agentId: string | null;
    client?: string;
  }): Promise<{ id: string }>;
  endSession(
    id: string,
    result: { status: 'closed' | 'failed'; errorCode?: string; bytesUp: number; bytesDown: number },
  ): Promise<unknown>;
  /** Ends several sessions in one write, when the store can (session ends are grouped). */
  endSessions?(
    ends: readonly {
      id: string;
      status: 'closed' | 'failed';
      errorCode?: string;
      bytesUp: number;
      bytesDown: number;
    }[],
  ): Promise<unknown>;
  touchAgent(id: string): Promise<unknown>;
  /** Moves whenever a connection changes through this store (see ResolveCache). */
  connectionGeneration?(): number;
}

/** What the hub needs from the grants module: every session runs on a grant. */
export interface HubGrants {
  /**
   * Signs the session grant for a client that presented a user token (not a grant); `record`
   * stores it and its audit event (the hub calls it once the agent has been sent the grant).
   */
  mintSession(
    subject: { readonly userId: string; readonly name: string },
    connection: {
      readonly name: string;
      readonly tags: readonly string[];
      readonly maxGrantTtlSeconds: number | null;
    },
  ): Promise<{ id: string; grant: string; expiresAt: number; record: () => Promise<void> }>;
  /** Throws GRANT_REVOKED / GRANT_EXPIRED unless the grant may still open sessions. */
  assertUsable(grantId: string): Promise<void>;
}

export interface HubOptions {
  readonly store: HubStore;
  /** Grants; without them sessions are opened with no grant (and agents refuse them). */
  readonly grants?: HubGrants;
  /** Decides whether a client may open a connection; admins-only when omitted. */
  readonly authorize?: Authorizer;
  readonly limits: TunnelLimits;
  readonly clock: Clock;
  readonly logger: Logger;
  /**
   * The hash-chained audit log (idempotent on session + seq); when omitted, batches go to
   * `store.appendAuditEvents` without their seq and are not acknowledged.
   */
  readonly audit?: HubAuditLog;
  /** Where session ends register, so shutdown can write them before the store closes. */
  readonly writes?: WriteSettler;
}

/** Appends an agent's audit batch; event i of the batch has seq `seq + i`. */
export interface HubAuditLog {
  append(
    agentId: string,
    events: readonly AuditEvent[],
    seq: number | undefined,
  ): Promise<{ stored: number; rejected: number; duplicates: number }>;
}

interface AgentLink {
  readonly id: string;
  readonly name: string;
  readonly tunnel: FrameConnection;
  readonly routes: Map<number, Route>;
  nextStream: number;
}

interface ClientLink {
  readonly caller: Caller;
  /** The grant JWT the client authenticated with, when it did (passed on to the agent). */
  readonly grantToken: string | undefined;
  readonly userId: string;
  readonly userName: string;
  readonly tunnel: FrameConnection;
  readonly routes: Map<number, Route>;
  /** Streams whose open is still being looked up. */
  readonly opening: Set<number>;
  /**
   * Set once the identity the tunnel was opened as lost its access (disabled, its key deleted):
   * the caller above is stale, so every open on this tunnel is refused with it until the tunnel
   * closes (a reconnect checks the token again).
   */
  revoked?: HoopError;
  /**
   * DATA the client sent on a stream before it could go to the agent (the hello offers
   * `earlyData`): copies of the frames, passed on once the open-session is sent to an agent that
   * waits for `admit`, otherwise once the session row exists.
   */
  readonly early: Map<number, { frames: Buffer[]; bytes: number }>;
}

/**
 * Creates a statement review for a held statement; resolves with the review id. The decision
 * comes back through `Hub.statementDecided`.
 */
export type StatementReviewRequester = (request: {
  readonly session: string;
  readonly connection: string;
  readonly userId: string;
  readonly userName: string;
  readonly statement: string;
}) => Promise<string>;

/** Uses approved statement reviews up: each runs its statement once (reviews/statement-use.ts). */
export interface StatementReviewUses {
  /** Throws unless `review` is the user's approved, unused statement review for `connection`. */
  check(use: {
    review: string;
    userId: string;
    userName: string;
    connection: string;
  }): Promise<unknown>;
  /** As `check`, plus the statement must be the reviewed one; then it is used up. */
  consume(use: {
    review: string;
    userId: string;
    userName: string;
    connection: string;
    statement: string;
    session: string;
  }): Promise<void>;
  /** Uses up a review just approved for the session that holds its statement. */
  consumeHeld(
    review: { id: string; connection: string; requester: string; statement: string | null },
    session: string,
  ): Promise<void>;
}

/** How a stream's held statements go (from the client's `open`): wait, return, or use a review. */
interface StreamReviews {
  readonly mode: StatementReviewMode;
  readonly review: string | undefined;
}

export class Hub {
  /** Held statements by review id: which agent tunnel, request and session to answer. */
  private readonly heldStatements = new Map<
    string,
    { agent: AgentLink; ref: number; session: string }
  >();
  private statementReviews: StatementReviewRequester | undefined;
  private statementReviewUses: StatementReviewUses | undefined;
  /** Streams that asked for something other than waiting for each held statement's decision. */
  private readonly streamReviews = new WeakMap<Route, StreamReviews>();
  private readonly agents = new Map<string, AgentLink>();
  private readonly clients = new Set<ClientLink>();
  /** Per agent tunnel: the audit batches in arrival order, and where a failed one left off. */
  private readonly auditQueues = new WeakMap<AgentLink, AuditQueue>();
  /** Audit drains running now; shutdown waits for them before the store closes. */
  private readonly auditDrains = new Set<Promise<void>>();
  private closed = false;
  /** Per live route: the timer that ends it when its grant expires. */
  private readonly expiryTimers = new Map<Route, TimerHandle>();
  /** Session ends written together while another write runs (when the store can). */
  private readonly sessionEnds:
    | GroupCommit<Parameters<NonNullable<HubStore['endSessions']>>[0][number]>
    | undefined;
  /** Session rows being inserted (their audit events wait for them), by session id. */
  private readonly rowsStoring = new Map<string, Promise<boolean>>();
  /** Resolved connections, so an open does not wait for the store each time. */
  private readonly resolved: ResolveCache<Awaited<ReturnType<HubStore['resolveConnectionTarget']>>>;

  constructor(private readonly options: HubOptions) {
    const { store } = options;
    const endSessions = store.endSessions?.bind(store);
    this.sessionEnds =
      endSessions === undefined
        ? undefined
        : new GroupCommit(
            (ends) => endSessions(ends).then(() => undefined),
            brokerWrites(options.writes),
          );
    this.resolved = new ResolveCache({
      load: (name) => store.resolveConnectionTarget(name),
      // A store that cannot say when connections change is asked every time.
      generation: () => store.connectionGeneration?.() ?? Number.NaN,
      clock: options.clock,
      ttlMs: store.connectionGeneration === undefined ? 0 : RESOLVE_CACHE_MS,
    });
  }

  /** The authorizer the hub applies to opens (admins only until identity wires its own). */
  get authorizer(): Authorizer {
    return this.options.authorize ?? adminOnlyAuthorizer;
  }

  isAgentOnline(agentId: string): boolean {
    return this.agents.has(agentId);
  }

  get stats(): { agents: number; clients: number; routes: number } {
    let routes = 0;
    for (const c of this.clients) routes += c.routes.size;
    return { agents: this.agents.size, clients: this.clients.size, routes };
  }

  acceptAgent(ws: WebSocketLike, agent: { id: string; name: string }): void {
    const logger = this.options.logger.child({ agent: agent.name });
    const tunnel = this.frameConnection(ws, `agent ${agent.name}`, logger);
    const link: AgentLink = {
      id: agent.id,
      name: agent.name,
      tunnel,
      routes: new Map(),
      nextStream: 1,
    };
    tunnel.start({
      onReady: () => {
        const previous = this.agents.get(agent.id);
        if (previous !== undefined) {
          logger.info('agent reconnected; replacing its previous tunnel');
          previous.tunnel.close(
            new HoopError('TUNNEL_CLOSED', 'replaced by a newer tunnel from the same agent'),
          );
        }
        this.agents.set(agent.id, link);
        logger.info('agent connected');
        this.options.store.touchAgent(agent.id).catch(() => {});
      },
      onFrame: (frame, control) => this.fromAgent(link, frame, control),
      onClose: (err) => {
        if (this.agents.get(agent.id) === link) this.agents.delete(agent.id);
        logger.info('agent disconnected', err === undefined ? {} : { code: err.code });
        for (const route of [...link.routes.values()]) {
          this.endRoute(
            route,
            new HoopError('AGENT_OFFLINE', `agent ${agent.name} disconnected during the session`),
            'agent',
          );
        }
      },
    });
  }

  /** `grantToken`: the grant JWT the client authenticated with, when `caller.via` is 'grant'. */
  acceptClient(ws: WebSocketLike, caller: Caller, grantToken?: string): void {
    const user = { userId: caller.userId, name: caller.name };
    const logger = this.options.logger.child({ user: user.name });
    const tunnel = this.frameConnection(ws, `client ${user.name}`, logger);
    const link: ClientLink = {
      caller,
      grantToken: caller.grant === undefined ? undefined : grantToken,
      userId: user.userId,
      userName: user.name,
      tunnel,
      routes: new Map(),
      opening: new Set(),
      early: new Map(),
    };
    this.clients.add(link);
    tunnel.start(
      {
        onFrame: (frame, control) => this.fromClient(link, frame, control),
        onClose: () => {
          this.clients.delete(link);
          link.early.clear();
          for (const route of [...link.routes.values()]) this.endRoute(route, undefined, 'client');
        },
      },
      { earlyData: true },
    );
  }

  /**
   * Ends live sessions: every session of a user (disabled, key deleted) or of one grant (revoked,
   * expired). The agent gets `terminate` with the reason, so its engine can tell the client in
   * the protocol's own words (psql: FATAL) before closing; the CLI side gets `close` with it.
   * Returns how many sessions were ended.
   */
  terminateSessions(filter: { userId?: string; grantId?: string }, error: HoopError): number {
    let ended = 0;
    for (const link of this.clients) {
      for (const route of [...link.routes.values()]) {
        const match =
          (filter.userId !== undefined && link.caller.userId === filter.userId) ||
          (filter.grantId !== undefined && route.grantId === filter.grantId);
        if (!match || route.state === RouteState.closed) continue;
        route.agent.tunnel.sendControl(TUNNEL_STREAM, {
          t: 'terminate',
          session: route.session,
          error: errorBodyOf(error),
        });
        route.client.tunnel.sendControl(route.client.stream, {
          t: 'close',
          error: errorBodyOf(error),
        });
        this.finish(route, error);
        ended++;
      }
    }
    if (filter.userId !== undefined) {
      // The identity's tunnels were authorized by its token at upgrade: refuse their opens now,
      // and close them once the ended sessions have had a moment to tell their clients why.
      for (const link of this.clients) {
        if (link.caller.userId !== filter.userId || link.revoked !== undefined) continue;
        link.revoked = error;
        const timer = this.options.clock.setTimeout(
          () => link.tunnel.close(error),
          REVOKED_TUNNEL_GRACE_MS,
        );
        timer.unref?.();
      }
    }
    return ended;
  }

  /** Closes every tunnel (broker shutdown). */
  close(): void {
    this.closed = true;
    const err = new HoopError('TUNNEL_CLOSED', 'the broker is shutting down');
    for (const timer of this.expiryTimers.values()) this.options.clock.clearTimeout(timer);
    this.expiryTimers.clear();
    for (const link of this.agents.values()) {
      this.auditQueues.get(link)?.wake?.();
      link.tunnel.close(err);
    }
    for (const link of this.clients) link.tunnel.close(err);
  }

  private frameConnection(ws: WebSocketLike, name: string, logger: Logger): FrameConnection {
    return new FrameConnection(ws, {
      role: 'broker',
      side: 'server',
      limits: this.options.limits,
      clock: this.options.clock,
      logger,
      name,
    });
  }

  /**
   * After close(): resolves once the audit appends already running have ended. Batches not yet
   * appended are dropped unacknowledged (their agents send them again when they reconnect).
   */
  async settle(): Promise<void> {
    while (this.auditDrains.size > 0) await Promise.allSettled([...this.auditDrains]);
  }

  // ---- client → broker ----

  private fromClient(link: ClientLink, frame: Frame, control: ControlMessage | undefined): void {
    const route = link.routes.get(frame.stream);
    if (frame.stream === 0)
      throw new HoopError('FRAME_MALFORMED', `clients may not send ${control?.t} on stream 0`);
    if (control?.t === 'open') {
      if (route !== undefined || link.opening.has(frame.stream)) {
        throw new HoopError(
          'FRAME_MALFORMED',
          `open on stream ${frame.stream}, which is already open`,
        );
      }
      if (link.routes.size >= this.options.limits.maxStreams) {
        link.tunnel.sendControl(frame.stream, {
          t: 'open-error',
          error: errorBodyOf(
            new HoopError(
              'TOO_MANY_STREAMS',
              `this tunnel already carries ${link.routes.size} streams`,
            ),
          ),
        });
        return;
      }
      link.opening.add(frame.stream);
      void this.open(link, frame.stream, control).finally(() => {
        link.opening.delete(frame.stream);
        link.early.delete(frame.stream);
      });
      return;
    }
    if (frame.kind === FrameKind.data && route?.passing !== true) {
      // Early data: the open is still being looked up, or its session row still being stored
      // for an agent that cannot wait for `admit`.
      if (
        route === undefined ? link.opening.has(frame.stream) : route.state === RouteState.opening
      ) {
        this.holdEarly(link, frame);
      }
      return;
    }
    if (route === undefined || route.state === RouteState.closed) return; // closed in flight
    if (frame.kind === FrameKind.data) {
      // Passed on before open-ok (to an agent that waits for `admit`): the same limit applies.
      if (route.state === RouteState.opening)
        route.earlyBytes = countEarly(frame, route.earlyBytes);
      route.carry('up', frame.body.length);
      this.forward(frame.raw, route.agent.tunnel, route.agent.stream);
    } else if (frame.kind === FrameKind.window) {
      route.grant('down', decodeWindow(frame));
      this.forward(frame.raw, route.agent.tunnel, route.agent.stream);
    } else if (control?.t === 'close') {
      this.forward(frame.raw, route.agent.tunnel, route.agent.stream);
      this.finish(route, control.error === undefined ? undefined : hoopErrorOf(control.error));
    } else {
      throw new HoopError(
        'FRAME_MALFORMED',
        `unexpected ${control?.t} from a client on stream ${frame.stream}`,
      );
    }
  }

  private async open(
    link: ClientLink,
    clientStream: number,
    request: OpenConnectionMessage,
  ): Promise<void> {
    const { connection: name, client } = request;
    const fail = (err: HoopError): void => {
      link.tunnel.sendControl(clientStream, { t: 'open-error', error: errorBodyOf(err) });
    };
    if (link.revoked !== undefined) {
      fail(link.revoked);
      return;
    }
    let resolved: Awaited<ReturnType<HubStore['resolveConnectionTarget']>>;
    try {
      resolved = await this.resolved.get(name);
    } catch (err) {
      fail(toHoopError(err));
      return;
    }
    const heldGrant = link.caller.grant;
    let allowed = false;
    try {
      if (heldGrant !== undefined) {
        // A grant is its own authorization: its connection, its actions, until it expires or is
        // revoked (checked again here, so a revoked grant cannot open on a tunnel it already has).
        if (heldGrant.connection !== resolved.info.name) {
          throw new HoopError(
            'GRANT_WRONG_CONNECTION',
            `your grant is for ${heldGrant.connection}, not ${resolved.info.name}`,
          );
        }
        if (heldGrant.expiresAt <= this.options.clock.now()) {
          throw grantExpired(heldGrant.connection, heldGrant.expiresAt);
        }
        if (this.options.grants !== undefined) {
          await this.options.grants.assertUsable(heldGrant.id);
        }
        allowed = heldGrant.actions.includes('connect');
      } else {
        allowed = await this.authorizer(
          link.caller,
          { name: resolved.info.name, tags: resolved.tags },
          'connect',
        );
      }
    } catch (err) {
      fail(toHoopError(err));
      return;
    }
    if (!allowed) {
      // Not usable and not even acknowledged: the same answer as for a connection that does not exist.
      fail(new HoopError('CONNECTION_NOT_FOUND', `no connection named ${name} that you may use`));
      return;
    }
    if (request.review !== undefined) {
      // Checked before anything runs: an unusable review fails the open, not a statement later.
      try {
        await this.reviewUses().check({
          review: request.review,
          userId: link.userId,
          userName: link.userName,
          connection: resolved.info.name,
        });
      } catch (err) {
        fail(toHoopError(err));
        return;
      }
    }
    const agent = this.agents.get(resolved.info.agentId);
    if (agent === undefined) {
      fail(
        new HoopError(
          'AGENT_OFFLINE',
          `agent ${resolved.info.agent} of connection ${name} is not connected`,
        ),
      );
      return;
    }
    if (!this.clients.has(link)) return;
    // Every session runs on a grant: the client's own, or one minted now for its user token.
    let grant: { id: string; grant: string; expiresAt: number } | undefined;
    let recordGrant: (() => Promise<void>) | undefined;
    if (heldGrant !== undefined) {
      if (link.grantToken === undefined) {
        // Never widen a grant into a session grant: without the JWT there is nothing to pass on.
        fail(new HoopError('GRANT_INVALID', 'the tunnel was opened without its grant'));
        return;
      }
      grant = { id: heldGrant.id, grant: link.grantToken, expiresAt: heldGrant.expiresAt };
    } else if (resolved.policy.reviews?.access?.required === true) {
      // Just-in-time access: only a grant from an approved review opens this connection.
      fail(
        new HoopError('AUTH_FORBIDDEN', `${name} needs an approved access review`, {
          hint: `\`hoop connect ${name} --reason "…"\` asks for one and waits; a CI job uses \`hoop grants request ${name}\` and connects with the grant.`,
        }),
      );
      return;
    } else if (this.options.grants !== undefined) {
      try {
        const minted = await this.options.grants.mintSession(
          { userId: link.userId, name: link.userName },
          {
            name: resolved.info.name,
            tags: resolved.tags,
            maxGrantTtlSeconds: resolved.maxGrantTtlSeconds,
          },
        );
        grant = minted;
        recordGrant = minted.record;
      } catch (err) {
        fail(toHoopError(err));
        return;
      }
    }
    if (link.revoked !== undefined) {
      // Revoked while this open was being looked up.
      fail(link.revoked);
      return;
    }
    if (!this.clients.has(link) || this.agents.get(agent.id) !== agent) {
      fail(new HoopError('AGENT_OFFLINE', `agent ${agent.name} disconnected`));
      return;
    }
    // The session row is stored while the agent opens the session; the client hears open-ok
    // only once both are done. An agent that honours `admit` gets the client's startup at once
    // and logs in to the target meanwhile, but runs nothing else until the row is stored; an
    // older agent gets the startup only then. Either way nothing a client asks for runs before
    // the row exists (the agent's audit events for it are stored against it, after it).
    const admits = agent.tunnel.peer?.admit === true;
    const session = { id: randomUUID() };
    const storing = this.options.store.createSession({
      id: session.id,
      connectionId: resolved.info.id,
      connectionName: resolved.info.name,
      userId: link.userId,
      agentId: agent.id,
      ...(client === undefined ? {} : { client }),
    });
    const agentStream = this.allocate(agent);
    const route = new Route(
      session.id,
      name,
      { tunnel: link.tunnel, stream: clientStream, routes: link.routes },
      { tunnel: agent.tunnel, stream: agentStream, routes: agent.routes },
      this.options.limits.window,
      grant?.id,
    );
    link.routes.set(clientStream, route);
    agent.routes.set(agentStream, route);
    if (request.reviews !== undefined || request.review !== undefined) {
      this.streamReviews.set(route, { mode: request.reviews ?? 'hold', review: request.review });
    }
    agent.tunnel.sendControl(agentStream, {
      t: 'open-session',
      session: session.id,
      target: resolved.target,
      user: link.userName,
      policy: resolved.policy,
      ...(grant === undefined ? {} : { grant: grant.grant }),
      ...(admits ? { admit: true } : {}),
      // A direct session: the agent serves its own client holding this ticket; nothing is relayed.
      ...(request.direct === undefined ? {} : { direct: request.direct }),
    });
    if (grant !== undefined) this.scheduleExpiry(route, grant.id, grant.expiresAt);
    if (recordGrant !== undefined) this.recordGrant(route, recordGrant);
    this.options.logger.info('session opening', {
      session: session.id,
      connection: name,
      user: link.userName,
      agent: agent.name,
    });
    route.rowStored = storing.then(
      () => true,
      () => false,
    );
    this.rowsStoring.set(session.id, route.rowStored);
    void route.rowStored.then(() => this.rowsStoring.delete(session.id));
    if (admits) this.passEarly(link, clientStream, route);
    try {
      await storing;
    } catch (err) {
      this.abortRoute(route, toHoopError(err));
      return;
    }
    route.stored = true;
    if (route.state === RouteState.closed) return;
    if (admits) route.agent.tunnel.sendControl(route.agent.stream, { t: 'admit' });
    else this.passEarly(link, clientStream, route);
    if (route.agentReady) this.completeOpen(route);
  }

  /** Keeps a copy of DATA sent before it may go to the agent (at most EARLY_DATA_MAX_BYTES). */
  private holdEarly(link: ClientLink, frame: Frame): void {
    let early = link.early.get(frame.stream);
    if (early === undefined) {
      early = { frames: [], bytes: 0 };
      link.early.set(frame.stream, early);
    }
    early.bytes = countEarly(frame, early.bytes);
    early.frames.push(Buffer.from(frame.raw));
  }

  /**
   * What the client sent early goes to the agent now (after the open-session it already has),
   * and later data flows straight through: once the session row is stored, or at once for an
   * agent that waits for `admit`.
   */
  private passEarly(link: ClientLink, clientStream: number, route: Route): void {
    route.passing = true;
    const early = link.early.get(clientStream);
    link.early.delete(clientStream);
    if (early === undefined || route.state === RouteState.closed) return;
    route.earlyBytes = early.bytes;
    try {
      for (const raw of early.frames) {
        route.carry('up', raw.length - FRAME_HEADER_BYTES);
        this.forward(raw, route.agent.tunnel, route.agent.stream);
      }
    } catch (err) {
      this.abortRoute(route, toHoopError(err));
    }
  }

  /** Tells the client its stream is open, then passes on what the agent sent meanwhile. */
  private completeOpen(route: Route): void {
    if (route.state !== RouteState.opening) return;
    route.transition(RouteState.open);
    route.client.tunnel.sendControl(route.client.stream, { t: 'open-ok', session: route.session });
    for (const raw of route.held.splice(0)) {
      this.forward(raw, route.client.tunnel, route.client.stream);
    }
  }

  /**
   * Stores a session grant (its row and `grant-minted` event) while the agent is already opening
   * the session: it is not on the connection's critical path (the agent verifies the JWT itself;
   * the row serves listing and revocation). If it cannot be stored the session is closed: a
   * session whose grant the broker cannot record does not run.
   */
  private recordGrant(route: Route, record: () => Promise<void>): void {
    record().catch((err: unknown) => {
      this.options.logger.error('could not record a session grant; closing the session', {
        session: route.session,
        error: err,
      });
      const error = new HoopError(
        'INTERNAL',
        'the broker could not record the grant of this session, so it was closed',
        { hint: 'The broker log has details; try again once its store is healthy.' },
      );
      this.abortRoute(route, error);
    });
  }

  /** Ends the route's session (and any other on the same grant) when its grant expires. */
  private scheduleExpiry(route: Route, grantId: string, expiresAt: number): void {
    const delay = Math.min(Math.max(0, expiresAt - this.options.clock.now()), 2 ** 31 - 1);
    const timer = this.options.clock.setTimeout(() => {
      this.expiryTimers.delete(route);
      this.terminateSessions({ grantId }, grantExpired(route.connection, expiresAt));
    }, delay);
    timer.unref?.();
    this.expiryTimers.set(route, timer);
  }

  private allocate(agent: AgentLink): number {
    for (let i = 0; i < 1 << 16; i++) {
      const id = agent.nextStream;
      agent.nextStream = id >= MAX_STREAM_ID ? 1 : id + 1;
      if (!agent.routes.has(id)) return id;
    }
    throw new HoopError('TOO_MANY_STREAMS', `agent ${agent.name} has no free stream id`);
  }

  /** Where statement reviews are created (set once the review service exists). */
  setStatementReviews(requester: StatementReviewRequester): void {
    this.statementReviews = requester;
  }

  /** The approved-review store, or INVALID_REQUEST when this broker has none. */
  private reviewUses(): StatementReviewUses {
    if (this.statementReviewUses === undefined) {
      throw new HoopError('INVALID_REQUEST', 'this broker cannot run approved statement reviews');
    }
    return this.statementReviewUses;
  }

  /** Where approved statement reviews are used up (set once the review store exists). */
  setStatementReviewUses(uses: StatementReviewUses): void {
    this.statementReviewUses = uses;
  }

  /**
   * A statement review was decided: tell the agent holding the statement (if still there). An
   * approval is used up as it is passed on, so the statement runs once, here; when it cannot be
   * (already used by `--review`, or no way to record it), the agent is told it may not run.
   */
  async statementDecided(review: {
    readonly id: string;
    readonly status: string;
    readonly connection: string;
    readonly requester: string;
    readonly statement: string | null;
    readonly decidedBy: string | null;
    readonly decisionReason: string | null;
  }): Promise<void> {
    const held = this.heldStatements.get(review.id);
    if (held === undefined || review.status === 'pending') return;
    this.heldStatements.delete(review.id);
    if (this.agents.get(held.agent.id) !== held.agent) return; // that tunnel is gone
    if (review.status === 'approved') {
      try {
        if (this.statementReviewUses === undefined) {
          throw new HoopError('INTERNAL', 'approved statement reviews cannot be recorded as used');
        }
        await this.statementReviewUses.consumeHeld(review, held.session);
      } catch (err) {
        if (this.agents.get(held.agent.id) !== held.agent) return;
        held.agent.tunnel.sendControl(TUNNEL_STREAM, {
          t: 'review-pending',
          ref: held.ref,
          error: errorBodyOf(toHoopError(err)),
        });
        return;
      }
      if (this.agents.get(held.agent.id) !== held.agent) return;
    }
    held.agent.tunnel.sendControl(TUNNEL_STREAM, {
      t: 'review-decision',
      ref: held.ref,
      review: review.id,
      status: review.status as 'approved' | 'rejected' | 'expired' | 'revoked',
      ...(review.decidedBy === null ? {} : { by: review.decidedBy }),
      ...(review.decisionReason === null ? {} : { reason: review.decisionReason }),
    });
  }

  private async requestStatementReview(
    link: AgentLink,
    session: string,
    ref: number,
    statement: string,
  ): Promise<void> {
    const answer = (body: { review: string; detached?: boolean } | { error: HoopError }): void => {
      if (this.agents.get(link.id) !== link) return;
      link.tunnel.sendControl(TUNNEL_STREAM, {
        t: 'review-pending',
        ref,
        ...('review' in body
          ? { review: body.review, ...(body.detached === true ? { detached: true } : {}) }
          : { error: errorBodyOf(body.error) }),
      });
    };
    try {
      const route = [...link.routes.values()].find((r) => r.session === session);
      const owner =
        route === undefined
          ? undefined
          : [...this.clients].find((c) => c.routes === route.client.routes);
      if (route === undefined || owner === undefined || this.statementReviews === undefined) {
        throw new HoopError('NOT_FOUND', `no live session ${session} on this agent to review`);
      }
      const wanted = this.streamReviews.get(route);
      if (wanted?.review !== undefined) {
        // The stream runs an approved review: this statement must be that one, used up now.
        await this.reviewUses().consume({
          review: wanted.review,
          userId: owner.userId,
          userName: owner.userName,
          connection: route.connection,
          statement,
          session,
        });
        if (this.agents.get(link.id) !== link) return;
        link.tunnel.sendControl(TUNNEL_STREAM, {
          t: 'review-decision',
          ref,
          review: wanted.review,
          status: 'approved',
        });
        return;
      }
      const review = await this.statementReviews({
        session,
        connection: route.connection,
        userId: owner.userId,
        userName: owner.userName,
        statement,
      });
      if (wanted?.mode === 'return') {
        // The client does not wait: the review stays pending, and no decision goes to the agent.
        answer({ review, detached: true });
        return;
      }
      this.heldStatements.set(review, { agent: link, ref, session });
      answer({ review });
    } catch (err) {
      answer({ error: toHoopError(err) });
    }
  }

  // ---- agent → broker ----

  private fromAgent(link: AgentLink, frame: Frame, control: ControlMessage | undefined): void {
    if (control?.t === 'audit') {
      this.storeAudit(link, control.events, control.seq);
      return;
    }
    if (control?.t === 'review-request') {
      void this.requestStatementReview(link, control.session, control.ref, control.statement);
      return;
    }
    const route = link.routes.get(frame.stream);
    if (route === undefined || route.state === RouteState.closed) return;
    // After its open-ok and before the session row is stored, the agent's frames wait here.
    const holding = route.state === RouteState.opening && route.agentReady;
    if (frame.kind === FrameKind.data) {
      if (route.state !== RouteState.open && !holding) {
        throw new HoopError('FRAME_MALFORMED', `data on stream ${frame.stream} before open-ok`);
      }
      route.carry('down', frame.body.length);
      if (holding) route.held.push(Buffer.from(frame.raw));
      else this.forward(frame.raw, route.client.tunnel, route.client.stream);
      return;
    }
    if (frame.kind === FrameKind.window) {
      route.grant('up', decodeWindow(frame));
      if (holding) route.held.push(Buffer.from(frame.raw));
      else this.forward(frame.raw, route.client.tunnel, route.client.stream);
      return;
    }
    switch (control?.t) {
      case 'open-ok':
        if (route.state !== RouteState.opening || route.agentReady) return;
        route.agentReady = true;
        if (route.stored) this.completeOpen(route);
        return;
      case 'open-error':
        route.client.tunnel.sendControl(route.client.stream, control);
        this.finish(route, hoopErrorOf(control.error), true);
        return;
      case 'close':
        if (route.state === RouteState.opening) {
          // The agent ended the session before the client was told it opened.
          const error =
            control.error === undefined
              ? new HoopError('TUNNEL_CLOSED', 'the agent ended the session as it opened')
              : hoopErrorOf(control.error);
          route.client.tunnel.sendControl(route.client.stream, {
            t: 'open-error',
            error: errorBodyOf(error),
          });
          this.finish(route, error, true);
          return;
        }
        this.forward(frame.raw, route.client.tunnel, route.client.stream);
        this.finish(route, control.error === undefined ? undefined : hoopErrorOf(control.error));
        return;
      default:
        throw new HoopError(
          'FRAME_MALFORMED',
          `unexpected ${control?.t} from an agent on stream ${frame.stream}`,
        );
    }
  }

  /**
   * Stores audit batches, then acks them (`audit-ack` with the last seq stored). Batches of one
   * tunnel are stored and acked in arrival order. While one append runs, batches that arrive
   * wait and are then stored together (group commit: one transaction for many batches, which
   * keeps the store's work per event small under load and adds no delay when idle). Duplicates
   * (redelivery) are skipped and still acked. When an append fails, later batches are neither
   * stored nor acked until the agent resends from the failed one (its ack timeout), so an ack
   * never covers a batch that was lost.
   */
  private storeAudit(link: AgentLink, events: readonly AuditEvent[], seq?: number): void {
    if (this.closed) return;
    let queue = this.auditQueues.get(link);
    if (queue === undefined) {
      queue = { pending: [], running: false, failedAt: undefined, lastAppend: 0 };
      this.auditQueues.set(link, queue);
    }
    queue.pending.push({ events, seq });
    if (!queue.running) {
      const drain = this.drainAudit(link, queue);
      this.auditDrains.add(drain);
      void drain.finally(() => this.auditDrains.delete(drain));
    } else if (queue.wake !== undefined && pendingEvents(queue) >= AUDIT_GROUP_READY) queue.wake();
  }

  private async drainAudit(link: AgentLink, q: AuditQueue): Promise<void> {
    q.running = true;
    try {
      while (q.pending.length > 0 && !this.closed) {
        // Appends at most every AUDIT_APPEND_INTERVAL_MS: what arrives meanwhile joins the next
        // group (the agent bounds what it sends unacknowledged), so the store does a few large
        // appends instead of many small ones on the event loop the relay shares. A group large
        // enough goes at once (storeAudit wakes this wait): waiting a whole interval capped an
        // agent's upload at what it may have in flight per interval (measured: 8k events/s,
        // below what one agent records under pgbench, so its spool kept growing).
        const wait =
          pendingEvents(q) >= AUDIT_GROUP_READY
            ? 0
            : q.lastAppend + AUDIT_APPEND_INTERVAL_MS - this.options.clock.now();
        if (wait > 0) {
          await new Promise<void>((resolve) => {
            const timer = this.options.clock.setTimeout(() => {
              q.wake = undefined;
              resolve();
            }, wait);
            q.wake = () => {
              this.options.clock.clearTimeout(timer);
              q.wake = undefined;
              resolve();
            };
          });
        }
        if (this.closed) break;
        const group = takeAuditGroup(q.pending, MAX_AUDIT_GROUP);
        if (group.seq !== undefined && q.failedAt !== undefined) {
          if (group.seq > q.failedAt) continue;
          q.failedAt = undefined;
        }
        await this.appendAuditGroup(link, q, group);
        q.lastAppend = this.options.clock.now();
      }
    } finally {
      q.running = false;
    }
  }

  private async appendAuditGroup(link: AgentLink, q: AuditQueue, group: AuditBatch): Promise<void> {
    const audit = this.options.audit;
    const { events, seq } = group;
    // Events of a session whose row is still being stored wait for it (a pooled store may run
    // the append on another connection than the insert).
    const rows: Promise<boolean>[] = [];
    for (const e of events) {
      const row = this.rowsStoring.get(e.session);
      if (row !== undefined && !rows.includes(row)) rows.push(row);
    }
    if (rows.length > 0) await Promise.all(rows);
    try {
      const { rejected } =
        audit === undefined
          ? await this.options.store.appendAuditEvents(link.id, events)
          : await audit.append(link.id, events, seq);
      if (rejected > 0)
        this.options.logger.warn('dropped audit events for sessions the agent did not serve', {
          agent: link.name,
          rejected,
        });
      if (seq !== undefined && audit !== undefined && link.tunnel.state === 'ready') {
        link.tunnel.sendControl(TUNNEL_STREAM, { t: 'audit-ack', seq: seq + events.length - 1 });
      }
    } catch (err) {
      if (seq !== undefined) q.failedAt = seq;
      this.options.logger.error('could not store audit events; the agent will resend them', {
        agent: link.name,
        error: err,
      });
    }
  }

  // ---- shared ----

  /** Sends an encoded frame (a received one, or a held copy) on as `stream` of `to`. */
  private forward(raw: Buffer, to: FrameConnection, stream: number): void {
    rewriteStream(raw, stream);
    to.sendEncoded(raw);
  }

  /**
   * Ends a route for a reason of the broker's own (its store failed): the client hears
   * open-error or close, the agent close, both with the error.
   */
  private abortRoute(route: Route, error: HoopError): void {
    if (route.state === RouteState.closed) return;
    route.client.tunnel.sendControl(route.client.stream, {
      t: route.state === RouteState.opening ? 'open-error' : 'close',
      error: errorBodyOf(error),
    });
    this.endRoute(route, error, 'client');
  }

  /** Ends a route because one side went away: tell the other side, then finish it. */
  private endRoute(route: Route, error: HoopError | undefined, gone: 'agent' | 'client'): void {
    if (route.state === RouteState.closed) return;
    const other = gone === 'agent' ? route.client : route.agent;
    if (route.state === RouteState.opening && gone === 'agent' && error !== undefined) {
      other.tunnel.sendControl(other.stream, { t: 'open-error', error: errorBodyOf(error) });
    } else {
      other.tunnel.sendControl(
        other.stream,
        error === undefined ? { t: 'close' } : { t: 'close', error: errorBodyOf(error) },
      );
    }
    this.finish(route, error, route.state === RouteState.opening);
  }

  private finish(route: Route, error: HoopError | undefined, failed = false): void {
    if (route.state === RouteState.closed) return;
    route.transition(RouteState.closed);
    const expiry = this.expiryTimers.get(route);
    if (expiry !== undefined) {
      this.options.clock.clearTimeout(expiry);
      this.expiryTimers.delete(route);
    }
    route.client.routes.delete(route.client.stream);
    route.agent.routes.delete(route.agent.stream);
    const status = failed || error !== undefined ? 'failed' : 'closed';
    this.options.logger.info('session ended', {
      session: route.session,
      connection: route.connection,
      status,
      ...(error === undefined ? {} : { code: error.code }),
      bytesUp: route.bytesUp,
      bytesDown: route.bytesDown,
    });
    void route.rowStored.then((stored) => {
      if (stored) {
        void this.endSession(route.session, status, error?.code, route.bytesUp, route.bytesDown);
      }
    });
  }

  private async endSession(
    id: string,
    status: 'closed' | 'failed',
    errorCode: string | undefined,
    bytesUp: number,
    bytesDown: number,
  ): Promise<void> {
    const end = { status, ...(errorCode === undefined ? {} : { errorCode }), bytesUp, bytesDown };
    try {
      if (this.sessionEnds !== undefined) await this.sessionEnds.add({ id, ...end });
      else await this.options.store.endSession(id, end);
    } catch (err) {
      this.options.logger.warn('could not record session end', { session: id, error: err });
    }
  }
}

function grantExpired(connection: string, expiresAt: number): HoopError {
  return new HoopError(
    'GRANT_EXPIRED',
    `the grant for ${connection} expired at ${new Date(expiresAt).toISOString()}; request a new one: hoop grants request ${connection}`,
  );
}

interface AuditBatch {
  readonly events: readonly AuditEvent[];
  readonly seq: number | undefined;
}

interface AuditQueue {
  readonly pending: AuditBatch[];
  running: boolean;
  /** seq of the batch whose append failed; later batches wait for its resend. */
  failedAt: number | undefined;
  /** When the last append finished (clock ms). */
  lastAppend: number;
  /** Ends the drain's wait for the interval early (set while it waits). */
  wake?: (() => void) | undefined;
}

function pendingEvents(q: AuditQueue): number {
  let n = 0;
  for (const b of q.pending) n += b.events.length;
  return n;
}

/**
 * Longest a resolved connection is reused. Changes made through this broker apply at once; this
 * bounds how long one made by another broker sharing the database goes unseen here.
 */
const RESOLVE_CACHE_MS = 5_000;

/** How long a revoked identity's tunnel stays open after its sessions were ended (see revoked). */
const REVOKED_TUNNEL_GRACE_MS = 1_000;

/**
 * Least time between two audit appends of one agent. Each append costs the embedded store a
 * few ms however small it is (measured: ~750 us per event in groups of 20, ~120 in groups of
 * 500), so under load larger, rarer groups are what keeps recording affordable; events are in
 * the agent's spool meanwhile.
 */
const AUDIT_APPEND_INTERVAL_MS = 250;

/**
 * `sent` early bytes on the frame's stream plus this frame's; more than EARLY_DATA_MAX_BYTES
 * before open-ok is FRAME_MALFORMED, whether the broker holds them or has passed them on.
 */
function countEarly(frame: Frame, sent: number): number {
  const bytes = sent + frame.body.length;
  if (bytes > EARLY_DATA_MAX_BYTES) {
    throw new HoopError(
      'FRAME_MALFORMED',
      `more than ${EARLY_DATA_MAX_BYTES} bytes of data on stream ${frame.stream} before it opened`,
    );
  }
  return bytes;
}

/** Most events stored in one append. */
const MAX_AUDIT_GROUP = 2000;

/** Pending events that make a group worth appending without waiting for the interval. */
const AUDIT_GROUP_READY = MAX_AUDIT_GROUP / 2;

/**
 * Takes the first pending batch plus every following one that continues its sequence (seq is
 * the first event's number), up to `max` events, as one batch.
 */
export function takeAuditGroup(pending: AuditBatch[], max: number): AuditBatch {
  const first = pending.shift() as AuditBatch;
  if (first.seq === undefined) return first;
  const events = [...first.events];
  let next = first.seq + first.events.length;
  while (pending.length > 0) {
    const candidate = pending[0] as AuditBatch;
    if (candidate.seq !== next || events.length + candidate.events.length > max) break;
    pending.shift();
    events.push(...candidate.events);
    next += candidate.events.length;
  }
  return { events, seq: first.seq };
}
