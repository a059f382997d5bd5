/**
 * A seeded generator of payment transactions with fraud mixed in: the load for benchmarks and demos, and the
 * data the sample models were trained on (scripts/export-training-data.ts).
 *
 * Events match the `transaction` schema in config/pipelines/card-risk.yaml. Each event is drawn for a card
 * from a fixed pool (so keys repeat and per-key ordering matters), first as that card's ordinary traffic, then,
 * for a fraud event, with a pattern's signals laid over it. Every signal of a pattern applies only with some
 * probability, and ordinary traffic has its own travellers, night owls, VPN users and big purchases, so the
 * classes overlap and a good model scores well but not perfectly. Velocities and the 7-day average are drawn,
 * not counted: they stand for what an upstream feature store would attach to the event.
 */
import { createRandom, type Random } from './prng.js';

export const MERCHANT_CATEGORIES = ['grocery', 'electronics', 'travel', 'gambling', 'crypto', 'fuel', 'restaurants'] as const;
export type MerchantCategory = (typeof MERCHANT_CATEGORIES)[number];

// A type alias rather than an interface, so an event is assignable to Record<string, unknown> (the mapper's input).
export type Transaction = {
  id: string;
  /** The card id, also the partition key. */
  key: string;
  ts: number;
  /** In one reference currency unit, whatever `currency` says, so amounts compare across countries. */
  amount: number;
  currency: string;
  merchant_category: MerchantCategory;
  country: string;
  card_country: string;
  card_age_days: number;
  velocity_1h: number;
  velocity_24h: number;
  amount_avg_7d: number;
  /** The cardholder's local hour, 0-23. */
  hour_of_day: number;
  ip_risk: number;
  device: { id: string; is_new: boolean };
};

export type FraudPattern = 'card_testing' | 'account_takeover' | 'high_risk_merchant' | 'cross_border';

export interface GeneratedTransaction {
  readonly event: Transaction;
  readonly isFraud: boolean;
  readonly pattern: FraudPattern | 'legit';
}

export interface GeneratorOptions {
  readonly seed: number;
  /** Share of fraud events, 0..1. Default 0.02. */
  readonly fraudRate?: number;
  /** Timestamp of the first event, ms. Default 2025-01-01T00:00:00Z, so output does not depend on the clock. */
  readonly startTs?: number;
  /** Size of the card pool. Default 5000. */
  readonly cards?: number;
  /** Mean gap between consecutive events, ms. Default 10. */
  readonly meanGapMs?: number;
}

export interface TransactionGenerator {
  next(): GeneratedTransaction;
}

interface Card {
  readonly id: string;
  readonly country: string;
  readonly ageDays: number;
  /** Multiplier on every category's typical amount: some cardholders spend more. */
  readonly spendLevel: number;
  /** Typical transactions an hour; scales both velocities. */
  readonly activity: number;
  readonly deviceId: string;
  readonly categoryWeights: readonly (readonly [MerchantCategory, number])[];
  readonly nightOwl: boolean;
  readonly traveller: boolean;
}

const HOME_COUNTRIES: readonly (readonly [string, number])[] = [
  ['US', 30], ['GB', 12], ['DE', 10], ['FR', 8], ['CA', 6], ['ES', 5], ['IT', 5], ['NL', 4], ['AU', 4],
  ['JP', 4], ['BR', 4], ['IN', 4], ['MX', 4],
];
const TRAVEL_COUNTRIES = ['US', 'GB', 'DE', 'FR', 'ES', 'IT', 'NL', 'PT', 'GR', 'TH', 'JP', 'MX', 'CA', 'AU', 'AE'];
const RISKY_COUNTRIES = ['NG', 'RU', 'UA', 'VN', 'ID', 'PH', 'RO', 'CN', 'BR', 'TR'];
const CURRENCY: Readonly<Record<string, string>> = {
  US: 'USD', GB: 'GBP', DE: 'EUR', FR: 'EUR', ES: 'EUR', IT: 'EUR', NL: 'EUR', PT: 'EUR', GR: 'EUR', RO: 'RON',
  CA: 'CAD', AU: 'AUD', JP: 'JPY', BR: 'BRL', IN: 'INR', MX: 'MXN', TH: 'THB', AE: 'AED', NG: 'NGN', RU: 'RUB',
  UA: 'UAH', VN: 'VND', ID: 'IDR', PH: 'PHP', CN: 'CNY', TR: 'TRY',
};

/** Median amount of an ordinary purchase, by category, for a cardholder of spend level 1. */
const TYPICAL_AMOUNT: Readonly<Record<MerchantCategory, number>> = {
  grocery: 45, restaurants: 35, fuel: 50, electronics: 180, travel: 400, gambling: 60, crypto: 250,
};
const BASE_CATEGORY_WEIGHT: Readonly<Record<MerchantCategory, number>> = {
  grocery: 30, restaurants: 22, fuel: 15, electronics: 8, travel: 6, gambling: 2, crypto: 1.5,
};
/** Weights of the local hour for ordinary traffic: quiet nights, busy days. */
const DAY_HOURS: readonly (readonly [number, number])[] = Array.from({ length: 24 }, (_, h) => {
  const w = h < 6 ? 1 : h < 9 ? 3 : h < 21 ? 6 : 3;
  return [h, w] as const;
});
const NIGHT_HOURS: readonly (readonly [number, number])[] = DAY_HOURS.map(([h, w]) => [h, h < 6 || h >= 22 ? w * 4 : w] as const);

const PATTERNS: readonly (readonly [FraudPattern, number])[] = [
  ['card_testing', 0.3], ['account_takeover', 0.3], ['high_risk_merchant', 0.25], ['cross_border', 0.15],
];

/** Share of fraud events whose signals mostly stay hidden, and how much of each signal they still show. */
const CAREFUL_SHARE = 0.3;
const CAREFUL_BOLDNESS = 0.35;

const DAY_MS = 86_400_000;
const round2 = (x: number): number => Math.round(x * 100) / 100;
const clamp = (x: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, x));

function makeCard(r: Random, index: number): Card {
  const weights = new Map<MerchantCategory, number>(MERCHANT_CATEGORIES.map((c) => [c, BASE_CATEGORY_WEIGHT[c]]));
  const favourite = r.pick(MERCHANT_CATEGORIES);
  weights.set(favourite, (weights.get(favourite) ?? 0) * 3);
  // A few legitimate gamblers and crypto buyers, so those categories alone do not mean fraud.
  if (r.chance(0.04)) weights.set('gambling', BASE_CATEGORY_WEIGHT.gambling * 10);
  if (r.chance(0.03)) weights.set('crypto', BASE_CATEGORY_WEIGHT.crypto * 12);
  const youngCard = r.chance(0.06);
  return {
    id: `card-${String(index).padStart(6, '0')}`,
    country: r.weighted(HOME_COUNTRIES),
    ageDays: youngCard ? r.uniform(0, 40) : clamp(r.logNormal(Math.log(500), 0.9), 20, 6000),
    spendLevel: r.logNormal(0, 0.5),
    activity: r.logNormal(Math.log(0.4), 0.6),
    deviceId: `dev-${index.toString(36)}-${r.int(0, 0xffffff).toString(16)}`,
    categoryWeights: [...weights.entries()],
    nightOwl: r.chance(0.08),
    traveller: r.chance(0.1),
  };
}

function foreignCountry(r: Random, home: string, risky: number): string {
  for (;;) {
    const c = r.chance(risky) ? r.pick(RISKY_COUNTRIES) : r.pick(TRAVEL_COUNTRIES);
    if (c !== home) return c;
  }
}

function newDeviceId(r: Random): string {
  return `dev-n${r.int(0, 0x7fffffff).toString(36)}`;
}

/** The card's ordinary traffic. `ageDays` is the card's age at this event. */
function legitimate(r: Random, card: Card, ageDays: number): Omit<Transaction, 'id' | 'key' | 'ts'> {
  const abroad = r.chance(card.traveller ? 0.25 : 0.04);
  const category = abroad && r.chance(0.4) ? r.pick(['travel', 'restaurants'] as const) : r.weighted(card.categoryWeights);
  const country = abroad ? foreignCountry(r, card.country, 0.05) : card.country;
  // Occasional big-ticket purchases (a laptop, a holiday) look like takeover amounts and are not.
  const splurge = r.chance(0.02) ? r.uniform(3, 10) : 1;
  const amount = clamp(card.spendLevel * TYPICAL_AMOUNT[category] * r.logNormal(0, 0.7) * splurge, 0.5, 20_000);
  const burst = r.chance(0.03);
  const velocity1h = burst ? r.poisson(5) : r.poisson(card.activity);
  const isNewDevice = r.chance(abroad ? 0.1 : 0.03);
  const vpn = r.chance(0.05);
  return {
    amount: round2(amount),
    currency: CURRENCY[country] ?? 'USD',
    merchant_category: category,
    country,
    card_country: card.country,
    card_age_days: round2(ageDays),
    velocity_1h: velocity1h,
    velocity_24h: velocity1h + r.poisson(card.activity * 6),
    amount_avg_7d: round2(card.spendLevel * 70 * r.logNormal(0, 0.3)),
    hour_of_day: r.weighted(card.nightOwl ? NIGHT_HOURS : DAY_HOURS),
    ip_risk: round2(vpn ? r.uniform(0.4, 0.9) : r.skew(3) * 0.5),
    device: { id: isNewDevice ? newDeviceId(r) : card.deviceId, is_new: isNewDevice },
  };
}

/**
 * Lays a fraud pattern over an ordinary event. Each signal applies only with its probability, scaled by
 * `boldness`: careful fraudsters (low boldness) leave fewer traces and are the ones models miss.
 */
function applyPattern(r: Random, pattern: FraudPattern, e: Omit<Transaction, 'id' | 'key' | 'ts'>, boldness: number): void {
  const hit = (p: number): boolean => r.chance(p * boldness);
  const newDevice = (p: number): void => {
    if (hit(p)) e.device = { id: newDeviceId(r), is_new: true };
  };
  const abroad = (p: number, risky: number): void => {
    if (!hit(p)) return;
    e.country = foreignCountry(r, e.card_country, risky);
    e.currency = CURRENCY[e.country] ?? 'USD';
  };
  const riskyIp = (p: number): void => {
    if (hit(p)) e.ip_risk = round2(r.uniform(0.35, 1));
  };
  switch (pattern) {
    case 'card_testing': {
      // Many tiny authorisations in a short time to find out whether a stolen number works.
      e.merchant_category = r.pick(['grocery', 'restaurants', 'electronics', 'crypto', 'gambling', 'fuel'] as const);
      if (hit(0.85)) e.amount = round2(r.uniform(0.5, 6));
      if (hit(0.8)) {
        e.velocity_1h = 3 + r.poisson(6);
        e.velocity_24h = e.velocity_1h + r.poisson(8);
      }
      newDevice(0.6);
      abroad(0.35, 0.6);
      riskyIp(0.55);
      if (hit(0.3)) e.hour_of_day = r.int(0, 23);
      break;
    }
    case 'account_takeover': {
      // Someone else holds the credentials: a new device, often abroad and at night, spending far above habit.
      newDevice(0.8);
      abroad(0.6, 0.5);
      if (hit(0.75)) e.amount = round2(clamp(e.amount_avg_7d * r.logNormal(Math.log(6), 0.6), 1, 20_000));
      if (hit(0.5)) e.hour_of_day = r.int(0, 5);
      riskyIp(0.5);
      if (hit(0.6)) e.merchant_category = r.weighted([['electronics', 4], ['travel', 2], ['crypto', 2], ['gambling', 1]] as const);
      break;
    }
    case 'high_risk_merchant': {
      // A freshly issued (or freshly stolen) card cashed out where goods are liquid.
      e.merchant_category = r.weighted([['crypto', 4.5], ['gambling', 3], ['electronics', 2.5]] as const);
      if (hit(0.8)) e.amount = round2(clamp(r.logNormal(Math.log(900), 0.7), 50, 20_000));
      if (hit(0.65)) e.card_age_days = round2(r.uniform(0, 45));
      newDevice(0.45);
      abroad(0.25, 0.5);
      riskyIp(0.4);
      break;
    }
    case 'cross_border': {
      // A cloned card used far from home for things that resell.
      abroad(0.9, 0.6);
      e.merchant_category = r.weighted([['travel', 3], ['electronics', 3], ['fuel', 1], ['restaurants', 1]] as const);
      if (hit(0.7)) e.amount = round2(clamp(e.amount_avg_7d * r.logNormal(Math.log(3), 0.6), 1, 20_000));
      if (hit(0.6)) {
        e.velocity_1h = r.poisson(2.5);
        e.velocity_24h = e.velocity_1h + r.poisson(5);
      }
      newDevice(0.5);
      riskyIp(0.4);
      break;
    }
  }
}

export function createTransactionGenerator(options: GeneratorOptions): TransactionGenerator {
  const fraudRate = options.fraudRate ?? 0.02;
  const cardCount = options.cards ?? 5000;
  const meanGapMs = options.meanGapMs ?? 10;
  if (!(fraudRate >= 0 && fraudRate <= 1)) throw new RangeError(`fraudRate must be in [0, 1], got ${fraudRate}`);
  if (!Number.isInteger(cardCount) || cardCount < 1) throw new RangeError(`cards must be a positive integer, got ${cardCount}`);
  if (!(meanGapMs >= 0)) throw new RangeError(`meanGapMs must be >= 0, got ${meanGapMs}`);

  const r = createRandom(options.seed);
  const startTs = options.startTs ?? Date.UTC(2025, 0, 1);
  const idPrefix = `txn-${(options.seed >>> 0).toString(36)}-`;
  // Cards are built lazily, so a large pool costs nothing until its cards are drawn.
  const cards: (Card | undefined)[] = new Array<Card | undefined>(cardCount);
  const cardAt = (i: number): Card => (cards[i] ??= makeCard(createRandom((options.seed ^ Math.imul(i + 1, 0x9e3779b1)) >>> 0), i));
  // The clock keeps fractional milliseconds so small mean gaps do not collapse to zero.
  let clock = startTs;
  let count = 0;

  return {
    next(): GeneratedTransaction {
      clock += r.exponential(meanGapMs);
      const ts = Math.floor(clock);
      const card = cardAt(r.int(0, cardCount - 1));
      const ageDays = card.ageDays + (ts - startTs) / DAY_MS;
      const body = legitimate(r, card, ageDays);
      const isFraud = r.chance(fraudRate);
      const pattern = isFraud ? r.weighted(PATTERNS) : 'legit';
      if (pattern !== 'legit') applyPattern(r, pattern, body, r.chance(CAREFUL_SHARE) ? CAREFUL_BOLDNESS : 1);
      const event: Transaction = { id: idPrefix + (count++).toString(36), key: card.id, ts, ...body };
      return { event, isFraud, pattern };
    },
  };
}
