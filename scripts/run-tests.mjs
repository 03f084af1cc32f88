#!/usr/bin/env node
// Runs every compiled test file (`*.test.js` under `<package>/dist`) with node's test runner
// in one process tree so the run ends with one summary. Usage: run-tests.mjs [package ...]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(fileURLToPath(import.meta.url), '../..');
const all = ['shared', 'broker', 'agent', 'cli', 'test', 'bench'];
const packages = process.argv.slice(2).length > 0 ? process.argv.slice(2) : all;

function walk(dir, out) {
  let entries;
  try {
    entries = readdirSync(dir);
  } catch {
    return out;
  }
  for (const name of entries) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path, out);
    else if (name.endsWith('.test.js')) out.push(path);
  }
  return out;
}

const files = packages.flatMap((p) => walk(join(root, p, 'dist'), [])).sort();
if (files.length === 0) {
  console.error('run-tests: no compiled test files found; run `npm run build` first');
  process.exit(1);
}
const concurrency = process.env.HOOP_TEST_CONCURRENCY ?? '2';
const tapDir = mkdtempSync(join(tmpdir(), 'hoop-tests-'));
const tapFile = join(tapDir, 'results.tap');
const result = spawnSync(
  process.execPath,
  [
    '--test',
    `--test-concurrency=${concurrency}`,
    '--test-reporter=spec',
    '--test-reporter-destination=stdout',
    '--test-reporter=tap',
    `--test-reporter-destination=${tapFile}`,
    ...files,
  ],
  { stdio: 'inherit', cwd: root },
);
// One plain closing line with the totals, whatever the reporter printed above.
let tap = '';
try {
  tap = readFileSync(tapFile, 'utf8');
} catch {}
rmSync(tapDir, { recursive: true, force: true });
const count = (name) =>
  Number(
    /^# (\w+) (\d+)$/m.test(tap) ? (new RegExp(`^# ${name} (\\d+)$`, 'm').exec(tap)?.[1] ?? 0) : 0,
  );
const failed = count('fail') + count('cancelled');
console.log(
  `\n${count('pass')} passed, ${failed} failed${count('skipped') ? `, ${count('skipped')} skipped` : ''}`,
);
process.exit(result.status ?? 1);
