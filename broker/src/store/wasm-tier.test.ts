import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';

/**
 * A fresh node (V8 flags are process-wide) compiles a small WebAssembly loop, calls it until V8
 * would have tiered it up (bounded rounds), and asks V8 which compiler its code came from. Run once with
 * `useBaselineWasmCompiler()` and once without, so the check fails if the call stops working.
 */
function tierAfterHotLoop(baseline: boolean): { liftoff: boolean; turbofan: boolean } {
  const module = new URL('./wasm-tier.js', import.meta.url).href;
  // (func (export "f") (param i32) (result i32) (local i32) loop … br_if … end local.get 1)
  const bytes = [
    0, 97, 115, 109, 1, 0, 0, 0, 1, 6, 1, 96, 1, 127, 1, 127, 3, 2, 1, 0, 7, 5, 1, 1, 102, 0, 0, 10,
    27, 1, 25, 1, 1, 127, 3, 64, 32, 1, 32, 0, 106, 33, 1, 32, 0, 65, 1, 107, 34, 0, 13, 0, 11, 32,
    1, 11,
  ];
  const script = `
    const { useBaselineWasmCompiler } = await import(${JSON.stringify(module)});
    if (${baseline}) useBaselineWasmCompiler();
    const { f } = new WebAssembly.Instance(new WebAssembly.Module(new Uint8Array(${JSON.stringify(bytes)}))).exports;
    // Tier-up compiles in the background: give it bounded rounds to land.
    for (let round = 0; round < 30 && !%IsTurboFanFunction(f); round++) {
      let sum = 0;
      for (let i = 0; i < 2000; i++) sum += f(10000);
      if (sum !== 2000 * 50005000) throw new Error('wrong sum ' + sum);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    console.log(JSON.stringify({ liftoff: %IsLiftoffFunction(f), turbofan: %IsTurboFanFunction(f) }));
  `;
  const run = spawnSync(
    process.execPath,
    ['--allow-natives-syntax', '--input-type=module', '-e', script],
    { encoding: 'utf8', timeout: 60_000 },
  );
  assert.equal(run.status, 0, run.stderr);
  return JSON.parse(run.stdout) as { liftoff: boolean; turbofan: boolean };
}

describe('useBaselineWasmCompiler', () => {
  it('keeps WebAssembly compiled afterwards on the baseline compiler, however hot', () => {
    assert.deepEqual(tierAfterHotLoop(true), { liftoff: true, turbofan: false });
  });

  it('without it, the same hot loop is recompiled by the optimizing compiler', () => {
    assert.deepEqual(tierAfterHotLoop(false), { liftoff: false, turbofan: true });
  });
});
