/**
 * Which compiler V8 uses for the embedded store's WebAssembly (PGlite: PostgreSQL built to
 * WebAssembly). By default V8 compiles each function with its baseline compiler (Liftoff) and
 * recompiles the hot ones with its optimizing compiler (TurboFan) on background threads. For
 * PostgreSQL's ~10 MB module that recompilation is the larger part of the store's memory and of
 * its start-up work. Measured on `hoop broker start` with the embedded store (2-core machine):
 *
 *   - RSS right after start: ~215–260 → ~165–170 MiB; after a minute of `pgbench -c 8` with
 *     recording on: ~315–340 → ~260–270 MiB;
 *   - CPU to start: ~3.4–3.8 → ~1.8–1.9 s on a fresh data directory, ~2.5–2.8 → ~1.4–1.6 s
 *     reopening one;
 *   - the price: the store's queries run ~20–25 % slower (an aggregate over 50k rows 18–21 →
 *     22–26 ms), a few µs per recorded statement on a path whose cost is elsewhere.
 *
 * The setting is process-wide and applies to modules compiled after it, so only a process whose
 * one WebAssembly module is the store should ask for it: `hoop broker start` does; `hoop up`
 * (whose embedded agent parses SQL with a WebAssembly parser on every statement) and the tests
 * do not.
 */
import { setFlagsFromString } from 'node:v8';

const BASELINE_ONLY = '--liftoff-only';

/** WebAssembly compiled from now on in this process stays on V8's baseline compiler. */
export function useBaselineWasmCompiler(): void {
  setFlagsFromString(BASELINE_ONLY);
}
