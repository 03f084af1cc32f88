/** Grant lifetime math: TTL parsing, caps, and the times that go into the JWT. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FakeClock, HoopError } from '@hoop/shared';
import { defaultGrantLimits, grantCapSeconds, grantTimes, parseTtl } from './claims.js';

describe('grant lifetimes', () => {
  it('parses seconds and durations', () => {
    assert.equal(parseTtl(90), 90);
    assert.equal(parseTtl('90'), 90);
    assert.equal(parseTtl('90s'), 90);
    assert.equal(parseTtl('10m'), 600);
    assert.equal(parseTtl('2h'), 7200);
    assert.equal(parseTtl('1h30m'), 5400);
    assert.equal(parseTtl('1d'), 86400);
  });

  it('refuses anything else with INVALID_REQUEST', () => {
    for (const bad of [0, -1, 1.5, '', 'soon', '10x', '1e3', '10 m', null, {}, '99999999999']) {
      assert.throws(
        () => parseTtl(bad),
        (e: unknown) => e instanceof HoopError && e.code === 'INVALID_REQUEST',
      );
    }
  });

  it('caps by the connection, else the default cap, never above the ceiling', () => {
    assert.equal(grantCapSeconds(defaultGrantLimits, null), 8 * 3600);
    assert.equal(grantCapSeconds(defaultGrantLimits, 300), 300);
    assert.equal(grantCapSeconds(defaultGrantLimits, 30 * 86400), 24 * 3600);
    assert.equal(grantCapSeconds(defaultGrantLimits, 0), 8 * 3600);
  });

  it('computes iat/exp from the injected clock', () => {
    const clock = new FakeClock(1_700_000_000_500);
    const t = grantTimes(clock.now(), undefined, 8 * 3600, defaultGrantLimits);
    assert.deepEqual(t, { iat: 1_700_000_000, exp: 1_700_000_600, ttlSeconds: 600, capped: false });
    clock.advance(10_000);
    const capped = grantTimes(clock.now(), 7200, 300, defaultGrantLimits);
    assert.deepEqual(capped, {
      iat: 1_700_000_010,
      exp: 1_700_000_310,
      ttlSeconds: 300,
      capped: true,
    });
    // The default TTL itself respects a cap below it.
    assert.equal(grantTimes(clock.now(), undefined, 60, defaultGrantLimits).ttlSeconds, 60);
  });
});
