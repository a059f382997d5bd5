/** The seeded transaction generator: reproducible, the configured fraud share, and events inside the schema. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MERCHANT_CATEGORIES, createTransactionGenerator, type GeneratedTransaction } from '../bench/generator.js';

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
    assert.deepEqual([...patterns].sort(), ['account_takeover', 'card_testing', 'cross_border', 'high_risk_merchant']);
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
      assert.ok(Number.isInteger(e.velocity_1h) && e.velocity_1h >= 0);
      assert.ok(Number.isInteger(e.velocity_24h) && e.velocity_24h >= e.velocity_1h);
      assert.ok(e.amount_avg_7d > 0);
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

  void test('rejects a fraud rate outside [0, 1]', () => {
    assert.throws(() => createTransactionGenerator({ seed: 1, fraudRate: 1.5 }), RangeError);
  });
});
