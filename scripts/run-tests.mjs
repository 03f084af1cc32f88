#!/usr/bin/env node
// Runs every compiled test file (`*.test.js` under `<package>/dist`) with node's test runner
// in one process tree so the run ends with one summary. Usage: run-tests.mjs [package ...]
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
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
const result = spawnSync(
  process.execPath,
  ['--test', `--test-concurrency=${concurrency}`, '--test-reporter=spec', ...files],
  { stdio: 'inherit', cwd: root },
);
process.exit(result.status ?? 1);
