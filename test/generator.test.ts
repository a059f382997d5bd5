/**
 * The seeded transaction generator: reproducible, the configured fraud share, raw events inside the schema in
 * event-time order, and fraud patterns that show in a card's history rather than in the event alone.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FRAUD_PATTERNS, MERCHANT_CATEGORIES, createTransactionGenerator, type GeneratedTransaction } from '../bench/generator.js';

const take = (n: number, options: Parameters<typeof createTransactionGenerator>[0]): GeneratedTransaction[] => {
  const gen = createTransactionGenerator(options);
  return Array.from({ length: n }, () => gen.next());
};

void describe('transaction generator', () => {
  void test('the same seed yields the same stream, a different seed a different one', () => {
    const a = take(500, { seed: 42 });
    assert.deepEqual(take(500, { seed: 42 }), a);
    const b = take(500, { seed: 43 });
    assert.notDeepEqual(b.map((g) => g.event.amount), a.map((g) => g.event.amount));
  });

  void test('fraud share is close to the configured rate', () => {
    const rows = take(20_000, { seed: 7, fraudRate: 0.05 });
    const share = rows.filter((g) => g.isFraud).length / rows.length;
    // Binomial sd at n=20000, p=0.05 is 0.0015; 0.006 is four of them.
    assert.ok(Math.abs(share - 0.05) < 0.006, `fraud share ${share}`);
    assert.equal(take(2_000, { seed: 7, fraudRate: 0 }).some((g) => g.isFraud), false);
  });

  void test('every fraud pattern occurs and legitimate events are labelled legit', () => {
    const rows = take(20_000, { seed: 11, fraudRate: 0.1 });
    const patterns = new Set(rows.filter((g) => g.isFraud).map((g) => g.pattern));
    assert.deepEqual([...patterns].sort(), [...FRAUD_PATTERNS].sort());
    assert.ok(rows.filter((g) => !g.isFraud).every((g) => g.pattern === 'legit'));
  });

  void test('fields stay inside the transaction schema ranges', () => {
    const start = Date.UTC(2025, 5, 1);
    const rows = take(5_000, { seed: 3, fraudRate: 0.2, startTs: start, cards: 300 });
    let prevTs = start;
    const ids = new Set<string>();
    for (const { event: e } of rows) {
      assert.ok(Number.isInteger(e.ts) && e.ts >= prevTs, `ts ${e.ts} after ${prevTs}`);
      prevTs = e.ts;
      ids.add(e.id);
      assert.match(e.key, /^card-\d{6}$/);
      assert.ok(e.amount > 0 && Number.isFinite(e.amount));
      assert.match(e.currency, /^[A-Z]{3}$/);
      assert.ok((MERCHANT_CATEGORIES as readonly string[]).includes(e.merchant_category));
      assert.match(e.country, /^[A-Z]{2}$/);
      assert.match(e.card_country, /^[A-Z]{2}$/);
      assert.ok(e.card_age_days >= 0);
      // Raw events: per-card aggregates are the pipeline's state, never precomputed.
      assert.equal('velocity_1h' in e || 'velocity_24h' in e || 'amount_avg_7d' in e, false);
      assert.ok(Number.isInteger(e.hour_of_day) && e.hour_of_day >= 0 && e.hour_of_day <= 23);
      assert.ok(e.ip_risk >= 0 && e.ip_risk <= 1);
      assert.equal(typeof e.device.id, 'string');
      assert.equal(typeof e.device.is_new, 'boolean');
    }
    assert.equal(ids.size, rows.length, 'event ids are unique');
    const keys = new Set(rows.map((g) => g.event.key));
    assert.ok(keys.size <= 300 && keys.size < rows.length, 'keys repeat across a card pool');
  });

  void test('fraud events carry more risk signals than legitimate ones', () => {
    const rows = take(20_000, { seed: 5, fraudRate: 0.1 });
    const share = (pick: (g: GeneratedTransaction) => boolean, fraud: boolean): number => {
      const group = rows.filter((g) => g.isFraud === fraud);
      return group.filter(pick).length / group.length;
    };
    const newDevice = (g: GeneratedTransaction): boolean => g.event.device.is_new;
    const abroad = (g: GeneratedTransaction): boolean => g.event.country !== g.event.card_country;
    assert.ok(share(newDevice, true) > 3 * share(newDevice, false));
    assert.ok(share(abroad, true) > 3 * share(abroad, false));
    // Overlap is deliberate: some legitimate traffic shows each signal too, so models cannot be perfect.
    assert.ok(share(newDevice, false) > 0 && share(abroad, false) > 0);
  });

  void test('simulated time advances by the population\'s arrivals, not by the wall clock', () => {
    const rows = take(14_000, { seed: 9, cards: 2000 });
    const days = (rows[rows.length - 1]!.event.ts - rows[0]!.event.ts) / 86_400_000;
    // 2000 cards at about 3.5 transactions a day (log-normal around 2.5, clamped): roughly two days.
    assert.ok(days > 1 && days < 4, `${days} simulated days`);
  });

  void test('fraud patterns show in the card\'s history: bursts, quiet spells, country flips', () => {
    const rows = take(60_000, { seed: 21, fraudRate: 0.05 });
    const previous = new Map<string, GeneratedTransaction>();
    /** Per pattern: events, and those whose card had another event within 10 minutes / 2 days before, or changed country. */
    const seen: Record<string, { n: number; within10m: number; quiet2d: number; countryFlip: number }> = {};
    for (const g of rows) {
      const prev = previous.get(g.event.key);
      previous.set(g.event.key, g);
      if (prev === undefined) continue;
      const s = (seen[g.pattern] ??= { n: 0, within10m: 0, quiet2d: 0, countryFlip: 0 });
      const gap = g.event.ts - prev.event.ts;
      s.n++;
      if (gap <= 600_000) s.within10m++;
      if (gap >= 2 * 86_400_000) s.quiet2d++;
      if (g.event.country !== prev.event.country) s.countryFlip++;
    }
    const rate = (p: string, k: 'within10m' | 'quiet2d' | 'countryFlip'): number => seen[p]![k] / seen[p]!.n;
    // Card testing comes in bursts; takeover after days of silence; cloned cards abroad flip the country.
    assert.ok(rate('card_testing', 'within10m') > 10 * rate('legit', 'within10m'), JSON.stringify(seen));
    assert.ok(rate('account_takeover', 'quiet2d') > 10 * rate('legit', 'quiet2d'), JSON.stringify(seen));
    assert.ok(rate('cross_border', 'countryFlip') > 5 * rate('legit', 'countryFlip'), JSON.stringify(seen));
    // Overlap is deliberate: legitimate cards have bursts, quiet spells and trips too.
    assert.ok(rate('legit', 'within10m') > 0 && rate('legit', 'quiet2d') > 0 && rate('legit', 'countryFlip') > 0);
  });

  void test('rejects a fraud rate outside [0, 1]', () => {
    assert.throws(() => createTransactionGenerator({ seed: 1, fraudRate: 1.5 }), RangeError);
  });
});
