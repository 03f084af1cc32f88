import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FakeClock } from '../clock.js';
import { Heartbeat } from './heartbeat.js';

describe('Heartbeat', () => {
  it('pings every interval while the peer answers', () => {
    const clock = new FakeClock();
    let pings = 0;
    let dead = false;
    const hb = new Heartbeat(
      clock,
      1_000,
      () => pings++,
      () => {
        dead = true;
      },
    );
    for (let i = 0; i < 10; i++) {
      clock.advance(1_000);
      hb.seen();
    }
    assert.equal(pings, 10);
    assert.equal(dead, false);
    hb.stop();
    assert.equal(clock.pendingTimers(), 0);
  });

  it('declares the peer dead after two silent intervals, once', () => {
    const clock = new FakeClock();
    let deaths = 0;
    new Heartbeat(
      clock,
      1_000,
      () => {},
      () => deaths++,
    );
    clock.advance(1_000);
    assert.equal(deaths, 0);
    clock.advance(1_000);
    assert.equal(deaths, 1);
    clock.advance(10_000);
    assert.equal(deaths, 1);
  });
});
