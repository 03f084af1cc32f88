import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { runAuditSuite } from './audit.suite.js';
import { openDatabase } from './database.js';

const root = mkdtempSync(join(tmpdir(), 'hoop-audit-pglite-'));
let n = 0;
after(() => rmSync(root, { recursive: true, force: true }));
runAuditSuite('PGlite', () => openDatabase({ dataDir: join(root, `db${n++}`) }));
