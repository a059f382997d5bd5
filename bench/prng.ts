/**
 * A small seeded PRNG (mulberry32) and the few distributions the load generator draws from. Seeded so that a
 * benchmark run, a training set and a test can all be reproduced from one number; Math.random cannot be.
 */

export interface Random {
  /** Uniform in [0, 1). */
  next(): number;
  uniform(lo: number, hi: number): number;
  /** Integer in [lo, hi], both inclusive. */
  int(lo: number, hi: number): number;
  chance(p: number): boolean;
  normal(mean: number, sd: number): number;
  /** exp(N(mu, sigma)): amounts and ages are skewed, never negative. */
  logNormal(mu: number, sigma: number): number;
  exponential(mean: number): number;
  /** Poisson by inversion; fine for the small means used here (< 50). */
  poisson(mean: number): number;
  /** Beta(a, 1) or Beta(1, b) style skews via powers of a uniform, in [0, 1). */
  skew(power: number): number;
  pick<T>(items: readonly T[]): T;
  weighted<T>(items: readonly (readonly [T, number])[]): T;
}

export function createRandom(seed: number): Random {
  // mulberry32: 32 bits of state, period 2^32, good enough equidistribution for synthetic data.
  let state = seed >>> 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  // Box-Muller yields two normals per pair of uniforms; keep the spare so the stream stays cheap.
  let spare: number | undefined;
  const standardNormal = (): number => {
    if (spare !== undefined) {
      const s = spare;
      spare = undefined;
      return s;
    }
    const u = 1 - next();
    const v = next();
    const r = Math.sqrt(-2 * Math.log(u));
    spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  };
  const random: Random = {
    next,
    uniform: (lo, hi) => lo + (hi - lo) * next(),
    int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)),
    chance: (p) => next() < p,
    normal: (mean, sd) => mean + sd * standardNormal(),
    logNormal: (mu, sigma) => Math.exp(mu + sigma * standardNormal()),
    exponential: (mean) => -mean * Math.log(1 - next()),
    poisson: (mean) => {
      const limit = Math.exp(-mean);
      let k = 0;
      let p = next();
      while (p > limit) {
        k++;
        p *= next();
      }
      return k;
    },
    skew: (power) => Math.pow(next(), power),
    pick: (items) => {
      const item = items[Math.floor(next() * items.length)];
      if (item === undefined) throw new RangeError('pick from an empty list');
      return item;
    },
    weighted: (items) => {
      let total = 0;
      for (const [, w] of items) total += w;
      let r = next() * total;
      for (const [item, w] of items) {
        r -= w;
        if (r < 0) return item;
      }
      const last = items[items.length - 1];
      if (last === undefined) throw new RangeError('weighted pick from an empty list');
      return last[0];
    },
  };
  return random;
}
