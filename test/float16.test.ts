import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fromHalfBits, toHalfBits } from '../models/float16.js';

void test('toHalfBits gives the IEEE half bit patterns of exact values', () => {
  assert.equal(toHalfBits(0), 0x0000);
  assert.equal(toHalfBits(-0), 0x8000);
  assert.equal(toHalfBits(1), 0x3c00);
  assert.equal(toHalfBits(1.5), 0x3e00);
  assert.equal(toHalfBits(-2), 0xc000);
  assert.equal(toHalfBits(65504), 0x7bff);
  assert.equal(toHalfBits(2 ** -14), 0x0400);
  assert.equal(toHalfBits(2 ** -24), 0x0001);
  assert.equal(toHalfBits(Infinity), 0x7c00);
  assert.equal(toHalfBits(-Infinity), 0xfc00);
  assert.equal(toHalfBits(NaN) & 0x7c00, 0x7c00);
  assert.notEqual(toHalfBits(NaN) & 0x3ff, 0);
});

void test('toHalfBits rounds to nearest, ties to even, straight from the float64', () => {
  assert.equal(toHalfBits(1 + 2 ** -11), 0x3c00, 'a tie rounds to the even 1.0');
  assert.equal(toHalfBits(1 + 3 * 2 ** -11), 0x3c02, 'a tie rounds to the even 1 + 2^-9');
  assert.equal(toHalfBits(1 + 2 ** -11 + 2 ** -40), 0x3c01, 'just above a tie rounds up (no double rounding through float32)');
  assert.equal(toHalfBits(0.1), 0x2e66);
  assert.equal(toHalfBits(65519), 0x7bff);
  assert.equal(toHalfBits(65520), 0x7c00, 'from the midpoint above 65504 it overflows');
  assert.equal(toHalfBits(2 ** -25), 0x0000, 'half the smallest subnormal is a tie to even zero');
  assert.equal(toHalfBits(3 * 2 ** -25), 0x0002);
  assert.equal(toHalfBits(2 ** -14 - 2 ** -26), 0x0400, 'rounds up from the largest subnormal into the smallest normal');
});

void test('fromHalfBits reads every finite half back exactly, and toHalfBits maps it to the same bits', () => {
  for (let bits = 0; bits < 0x10000; bits++) {
    if ((bits & 0x7c00) === 0x7c00) continue;
    const value = fromHalfBits(bits);
    assert.ok(Number.isFinite(value));
    const back = toHalfBits(value);
    if (back !== bits) assert.fail(`bits ${bits.toString(16)} read as ${value}, written back as ${back.toString(16)}`);
  }
  assert.equal(fromHalfBits(0x3e00), 1.5);
  assert.equal(fromHalfBits(0x7c00), Infinity);
  assert.equal(fromHalfBits(0xfc00), -Infinity);
  assert.ok(Number.isNaN(fromHalfBits(0x7e00)));
});
