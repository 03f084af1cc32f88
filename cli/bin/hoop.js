#!/usr/bin/env -S MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=262144 node --initial-old-space-size=64
// The flag: a relay allocates a buffer for every socket read. With V8's default initial
// old-generation limit (~25 MB for a small heap) that churn set off a full mark-compact every
// ~50 ms while bulk data flowed (a 100 MB COPY ran 15-25 of them in each process, about half of
// their CPU). Starting the limit at 64 MB leaves them to the scavenger: COPY through the broker
// went from ~0.65x to ~1.0x of direct (bench/README.md). Scripts and the bench run this file
// directly, so the flag is in one place; `node cli/bin/hoop.js` still works, without it.
// MALLOC_ARENA_MAX=2: glibc gives each thread that allocates (V8's helpers, libuv's pool, the
// broker's store thread) its own malloc arena, and each keeps its freed pages. Two arenas took
// ~10 MiB off a broker with 1,000 idle sessions (162 -> 152 MiB, twice each) and changed no
// throughput we measured (bench/README.md).
// MALLOC_MMAP_THRESHOLD_=262144: a fixed threshold, so blocks of 256 KB and more (messages to
// the store's thread, tunnel messages) are always mapped on their own and unmapped when freed.
// glibc's default raises the threshold to the largest block freed so far (up to 32 MB), and the
// heap then kept ~35 MiB of freed pages after 20 s of recorded pgbench (broker 172 -> 141 MiB
// after the same load; COPY and pgbench -c 8 within their run-to-run noise).
import { main } from '../dist/main.js';

// A reader that stops early (`hoop … | head -1`) closes the pipe: the rest of the output has
// nowhere to go, and the command still finishes and exits as it would have. Without this the
// EPIPE was an unhandled 'error' event and a stack trace.
process.stdout.on('error', (err) => {
  if (err.code === 'EPIPE' || err.code === 'ERR_STREAM_DESTROYED') return;
  throw err;
});

main(process.argv).then((code) => {
  process.exitCode = code;
});
