/**
 * Audit events from agents: appended as they arrive (only for sessions that agent served), read
 * back per session as a timeline. The durable, hash-chained audit log is its own piece of work.
 */
import type { AuditEvent } from '@hoop/shared';
import { and, asc, eq, inArray } from 'drizzle-orm';
import { guard, nowOf, type StoreContext } from './context.js';
import { auditEvents, sessions } from './schema.js';

export interface StoredAuditEvent {
  readonly id: number;
  readonly receivedAt: string;
  readonly event: AuditEvent;
}

/** Appends events; events naming a session this agent did not serve are dropped and counted. */
export async function appendAuditEvents(
  ctx: StoreContext,
  agentId: string,
  events: readonly AuditEvent[],
): Promise<{ stored: number; rejected: number }> {
  if (events.length === 0) return { stored: 0, rejected: 0 };
  return guard('append audit events', async () => {
    const ids = [...new Set(events.map((e) => e.session))];
    const owned = await ctx.db
      .select({ id: sessions.id })
      .from(sessions)
      .where(and(inArray(sessions.id, ids), eq(sessions.agentId, agentId)));
    const allowed = new Set(owned.map((r) => r.id));
    const receivedAt = nowOf(ctx);
    const rows = events
      .filter((e) => allowed.has(e.session))
      .map((e) => ({
        sessionId: e.session,
        agentId,
        type: e.type,
        at: new Date(e.at),
        receivedAt,
        data: e,
      }));
    if (rows.length > 0) await ctx.db.insert(auditEvents).values(rows);
    return { stored: rows.length, rejected: events.length - rows.length };
  });
}

export async function listSessionEvents(
  ctx: StoreContext,
  sessionId: string,
  limit = 10_000,
): Promise<StoredAuditEvent[]> {
  return guard('list session events', async () => {
    const rows = await ctx.db
      .select()
      .from(auditEvents)
      .where(eq(auditEvents.sessionId, sessionId))
      .orderBy(asc(auditEvents.id))
      .limit(limit);
    return rows.map((r) => ({
      id: r.id,
      receivedAt: r.receivedAt.toISOString(),
      event: r.data as AuditEvent,
    }));
  });
}
