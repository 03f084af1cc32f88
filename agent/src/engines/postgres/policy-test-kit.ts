/**
 * Test helpers for the policy proxy (used by *.test.ts only): the example policy, a
 * direct admin connection for fixtures, and a raw protocol session through the engine.
 */
import { randomBytes } from 'node:crypto';
import type { AuditEvent, Policy } from '@hoop/shared';
import pg from 'pg';
import { PacketReader, type PgFrame } from './reader.js';
import { RawClient } from './test-harness.js';
import { startupMessage } from './writer.js';

export const LOCAL = { host: '127.0.0.1', port: 5432, user: 'postgres', database: 'test' } as const;

/** The example policy of the issue, with the masked table in `schema`. */
export function examplePolicy(schema: string, recording = true): Policy {
  return {
    guardrails: {
      deny: [
        { statements: ['drop', 'truncate', 'alter', 'grant', 'revoke'] },
        { rule: 'delete-without-where' },
        { rule: 'update-without-where' },
        { rule: 'copy-program' },
        { functions: ['pg_read_file', 'pg_ls_dir', 'lo_import', 'lo_export', 'dblink'] },
      ],
    },
    masking: {
      columns: [{ column: `${schema}.customers.email`, strategy: 'redact' }],
      detectors: ['email', 'credit_card', 'iban', 'phone', 'us_ssn', 'jwt'],
    },
    recording: { enabled: recording },
  };
}

export function uniqueSchema(prefix: string): string {
  return `${prefix}_${randomBytes(4).toString('hex')}`;
}

/** A direct connection to the local PostgreSQL, bypassing hoop. */
export async function adminClient(): Promise<pg.Client> {
  const client = new pg.Client({ ...LOCAL });
  await client.connect();
  return client;
}

/** Collects audit events. */
export function auditLog(): { events: AuditEvent[]; sink: (e: AuditEvent) => void } {
  const events: AuditEvent[] = [];
  return { events, sink: (e) => events.push(e) };
}

/** A raw-protocol session through the engine, past ReadyForQuery. */
export async function rawSession(port: number): Promise<RawClient> {
  const raw = await RawClient.connect(port);
  raw.send(
    startupMessage([
      ['user', 'someone'],
      ['database', 'anything'],
    ]),
  );
  await raw.readUntil(0x5a);
  return raw;
}

/** Splits a byte stream into frames (the whole stream must be complete messages). */
export function framesOf(bytes: Buffer): PgFrame[] {
  const reader = new PacketReader({ side: 'target', maxStartupBytes: 8, maxMessageBytes: 1 << 30 });
  reader.push(bytes);
  const frames: PgFrame[] = [];
  for (let f = reader.nextFrame(); f !== undefined; f = reader.nextFrame()) frames.push(f);
  return frames;
}
