import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { canaryThreshold, inCanary, keyHash32 } from '../pipeline/route/key-split.js';

/** The reference: FNV-1a over the UTF-8 bytes TextEncoder gives, then murmur3's fmix32, spelled out plainly. */
function reference(key: string): number {
  let h = 0x811c9dc5;
  for (const b of new TextEncoder().encode(key)) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35) >>> 0;
  h ^= h >>> 16;
  return h >>> 0;
}

describe('the canary key split', () => {
  test('the hash is FNV-1a over UTF-8 then fmix32, for ASCII, accented, CJK, astral and lone-surrogate keys', () => {
    for (const key of ['', 'a', 'card-00017', 'card-00018', 'héllo', 'カード', '💳 4111', 'x\uD800y', 'end\uDC00', '\uD83D']) {
      assert.equal(keyHash32(key), reference(key), key);
    }
    // Pinned values: a change of hash would move every key to another version.
    assert.equal(keyHash32(''), 0xab3e7c0b);
    assert.equal(keyHash32('card-1'), 0x60156d0c);
  });

  // The share of 20,000 distinct keys in the canary is Binomial(n, p): mean n·p, sd sqrt(n·p·(1 − p)). A
  // well-mixed hash stays within 5 sd of the mean except with probability below 1e-6 per check.
  for (const percent of [1, 10, 25, 50, 90]) {
    test(`over 20,000 distinct keys, the share at ${percent} % is within 5 binomial sd of it`, () => {
      const n = 20_000;
      const p = percent / 100;
      let inside = 0;
      for (let k = 0; k < n; k++) if (inCanary(`card-${k}`, percent)) inside++;
      const sd = Math.sqrt(n * p * (1 - p));
      assert.ok(Math.abs(inside - n * p) <= 5 * sd, `${inside} keys of ${n} at ${percent} % (expected ${n * p} ± ${(5 * sd).toFixed(1)})`);
    });
  }

  test('the split does not follow a low bit pattern: keys differing in their last character spread over both sides', () => {
    // Sequential ids are the worst case for FNV-1a without the finaliser.
    let inside = 0;
    for (let k = 0; k < 1000; k++) if (inCanary(`${k}`, 50)) inside++;
    const sd = Math.sqrt(1000 * 0.25);
    assert.ok(Math.abs(inside - 500) <= 5 * sd, `${inside} of 1000`);
  });

  test('100 % takes every key and a tiny share takes almost none; shares nest as the percent grows', () => {
    assert.equal(canaryThreshold(100), 2 ** 32);
    const keys = Array.from({ length: 5000 }, (_, k) => `k${k}`);
    assert.ok(keys.every((k) => inCanary(k, 100)));
    assert.ok(keys.filter((k) => inCanary(k, 0.001)).length <= 5);
    // A key in a 10 % canary stays in it when the canary grows to 20 %: raising the percent only adds keys.
    assert.ok(keys.filter((k) => inCanary(k, 10)).every((k) => inCanary(k, 20)));
  });

  test('a key always gets the same answer', () => {
    for (let k = 0; k < 1000; k++) {
      const key = `card-${k * 7919}`;
      const first = inCanary(key, 33);
      for (let again = 0; again < 5; again++) assert.equal(inCanary(key, 33), first);
    }
  });
});
