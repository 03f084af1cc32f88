import { randomBytes } from 'node:crypto';
import { after } from 'node:test';
import postgres from 'postgres';
import { runAuditSuite } from './audit.suite.js';
import { openDatabase } from './database.js';

const adminUrl =
  process.env['HOOP_TEST_POSTGRES_URL'] ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
const created: string[] = [];

after(async () => {
  for (const name of created) await admin.unsafe(`drop database if exists "${name}" with (force)`);
  await admin.end({ timeout: 5 });
});

runAuditSuite('PostgreSQL', async () => {
  const name = `hoop_audit_test_${randomBytes(6).toString('hex')}`;
  await admin.unsafe(`create database "${name}"`);
  created.push(name);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return openDatabase({ databaseUrl: url.toString() });
});
