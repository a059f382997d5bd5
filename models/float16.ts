/**
 * IEEE 754 half precision as 16-bit patterns. Node 20 has no Float16Array, so onnxruntime-node carries float16
 * tensors as a Uint16Array of half bits; these two functions convert to and from JS numbers.
 */

/** Rounds to the nearest integer, ties to even (IEEE's default rounding). */
function roundHalfEven(x: number): number {
  const floor = Math.floor(x);
  const rest = x - floor;
  if (rest > 0.5) return floor + 1;
  if (rest < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

/** The largest finite half is 65504; from the midpoint to the next power of two (65520) up, rounding gives Infinity. */
const HALF_OVERFLOW = 65520;
const MIN_NORMAL = 2 ** -14;

/**
 * The half nearest to `value` (round half to even), as bits, computed straight from the float64 so no double
 * rounding can occur. Values beyond the half range become ±Infinity and NaN stays NaN: the caller decides
 * whether that is acceptable.
 */
export function toHalfBits(value: number): number {
  if (Number.isNaN(value)) return 0x7e00;
  const sign = value < 0 || Object.is(value, -0) ? 0x8000 : 0;
  const a = Math.abs(value);
  if (a >= HALF_OVERFLOW) return sign | 0x7c00;
  // Subnormal: a multiple of 2^-24. A result of 1024 is the bit pattern of the smallest normal, as it should be.
  if (a < MIN_NORMAL) return sign | roundHalfEven(a * 2 ** 24);
  let e = Math.floor(Math.log2(a));
  // log2 may be off by one near powers of two; the exponent must satisfy 2^e <= a < 2^(e+1) exactly.
  if (2 ** e > a) e--;
  else if (2 ** (e + 1) <= a) e++;
  // a / 2^e is exact (a power-of-two scaling), and so are the subtraction and the scaling by 1024.
  let m = roundHalfEven((a / 2 ** e - 1) * 1024);
  if (m === 1024) {
    e++;
    m = 0;
  }
  return sign | ((e + 15) << 10) | m;
}

/** The number a half's bits stand for (exact: every half is a float64). */
export function fromHalfBits(bits: number): number {
  const sign = (bits & 0x8000) !== 0 ? -1 : 1;
  const exp = (bits >>> 10) & 0x1f;
  const mant = bits & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant === 0 ? sign * Infinity : NaN;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}
