/**
 * A seeded generator of payment transactions with fraud mixed in: the load for benchmarks and demos, and the
 * data the sample models were trained on (scripts/export-training-data.ts).
 *
 * Events match the `transaction` schema in config/pipelines/card-risk.yaml. They are raw: nothing per-card is
 * precomputed (no velocities, no averages). Those are what the pipeline's `state` section computes, per card,
 * from the stream itself.
 *
 * The generator simulates a population of cards, each with a history: a home country and time zone, habits
 * (its usual merchant categories, typical amounts, an activity rate per day that follows the local time of
 * day, its devices), trips abroad and quiet spells. Each card is a Poisson process in simulated event time; the
 * stream is their superposition, emitted in event-time order (`ts` advances by the population's arrivals, not
 * the wall clock), keyed by card id.
 *
 * Fraud comes in episodes laid over a card's history. Some patterns are visible only to per-card state:
 * - `card_testing`: a burst of tiny amounts within minutes (counts over 10 min / 1 h);
 * - `account_takeover`: after days without use, high amounts on a new device (time since last use, amount
 *   against the 7-day mean);
 * - `cross_border`: a cloned card used abroad while its owner keeps using it at home (the country changes
 *   from one event to the next; distinct countries in 24 h);
 * - `merchant_shift`: a run of purchases at categories the card does not use (distinct categories in 24 h).
 * and one is visible in the event alone: `high_risk_merchant` (a fresh card cashed out at crypto, gambling,
 * electronics). Every signal fires only with some probability, 30% of fraudsters are careful, and legitimate
 * cards have their own bursts of small payments, trips, quiet spells, new phones and splurges, so the classes
 * overlap and a good model scores well but not perfectly.
 */
import { createRandom, type Random } from './prng.js';

export const MERCHANT_CATEGORIES = ['grocery', 'electronics', 'travel', 'gambling', 'crypto', 'fuel', 'restaurants'] as const;
export type MerchantCategory = (typeof MERCHANT_CATEGORIES)[number];

// A type alias rather than an interface, so an event is assignable to Record<string, unknown> (the mapper's input).
export type Transaction = {
  id: string;
  /** The card id, also the record key (per-card state is keyed by it). */
  key: string;
  /** Event time, epoch ms (simulated). */
  ts: number;
  /** In one reference currency unit, whatever `currency` says, so amounts compare across countries. */
  amount: number;
  currency: string;
  merchant_category: MerchantCategory;
  country: string;
  card_country: string;
  card_age_days: number;
  /** The cardholder's local hour (home time zone), 0-23. */
  hour_of_day: number;
  ip_risk: number;
  /** `is_new`: the device was never seen with this card before (as the issuer's device registry reports it). */
  device: { id: string; is_new: boolean };
};

export const FRAUD_PATTERNS = ['card_testing', 'account_takeover', 'cross_border', 'merchant_shift', 'high_risk_merchant'] as const;
export type FraudPattern = (typeof FRAUD_PATTERNS)[number];

export interface GeneratedTransaction {
  readonly event: Transaction;
  readonly isFraud: boolean;
  readonly pattern: FraudPattern | 'legit';
}

export interface GeneratorOptions {
  readonly seed: number;
  /** Share of fraud events, 0..1 (held close to it by the episode scheduler). Default 0.02. */
  readonly fraudRate?: number;
  /** Simulated time at which the population starts, epoch ms. Default 2025-01-01T00:00:00Z, so output does not depend on the clock. */
  readonly startTs?: number;
  /** Size of the card population. Default 2000 (about 7000 events per simulated day). */
  readonly cards?: number;
}

export interface TransactionGenerator {
  /** The next event in event-time order (ties in emission order). */
  next(): GeneratedTransaction;
}

interface Card {
  readonly index: number;
  readonly id: string;
  readonly country: string;
  /** Home time zone, hours from UTC: `hour_of_day` is local to it. */
  readonly tz: number;
  readonly ageDays: number;
  /** Multiplier on every category's typical amount: some cardholders spend more. */
  readonly spendLevel: number;
  /** Mean transactions per day. */
  readonly perDay: number;
  readonly categoryWeights: readonly (readonly [MerchantCategory, number])[];
  readonly nightOwl: boolean;
  readonly traveller: boolean;
  /** Devices this card has been used from (an owner's new phone joins it). */
  readonly devices: string[];
  /** A trip abroad in progress: the country and when it ends (ms). */
  trip: { country: string; until: number } | null;
  /** No new fraud episode starts on the card before this time (ms): one episode at a time. */
  busyUntil: number;
  /** A phone the owner will use from their next ordinary transaction on (seen then for the first time). */
  newPhone: string | null;
}

/** One planned event: the card's next ordinary one, or a step of a fraud (or legitimate burst) episode. */
interface Planned {
  readonly at: number;
  /** Tie-break: planned earlier, emitted earlier, so the stream is deterministic. */
  readonly seq: number;
  readonly card: Card;
  readonly kind: 'habit' | 'extra';
  /** For `extra` events: how to draw the body. */
  readonly draw?: (r: Random, e: Body) => void;
  readonly pattern: FraudPattern | 'legit';
}

type Body = Omit<Transaction, 'id' | 'key' | 'ts'>;

const HOME_COUNTRIES: readonly (readonly [string, number])[] = [
  ['US', 30], ['GB', 12], ['DE', 10], ['FR', 8], ['CA', 6], ['ES', 5], ['IT', 5], ['NL', 4], ['AU', 4],
  ['JP', 4], ['BR', 4], ['IN', 4], ['MX', 4],
];
/** Hours from UTC (one zone per country is enough here). */
const TZ: Readonly<Record<string, number>> = {
  US: -5, GB: 0, DE: 1, FR: 1, CA: -5, ES: 1, IT: 1, NL: 1, AU: 10, JP: 9, BR: -3, IN: 5, MX: -6,
};
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
/** Activity by local hour: quiet nights, busy days (night owls shift theirs late). */
const DAY_WEIGHTS: readonly number[] = Array.from({ length: 24 }, (_, h) => (h < 6 ? 1 : h < 9 ? 3 : h < 21 ? 6 : 3));
const NIGHT_WEIGHTS: readonly number[] = DAY_WEIGHTS.map((w, h) => (h < 6 || h >= 22 ? w * 4 : w));
const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

/**
 * Fraud patterns by episode (not by event): weights chosen so fraud events split roughly 30% card testing,
 * 20% takeover, 20% cross-border, 15% merchant shift, 15% high-risk merchant. `meanEvents` is the expected
 * events of one episode, used to pace episode starts.
 */
const PATTERNS: readonly (readonly [FraudPattern, number])[] = [
  ['card_testing', 0.042], ['account_takeover', 0.065], ['cross_border', 0.057], ['merchant_shift', 0.03], ['high_risk_merchant', 0.15],
];
const MEAN_EPISODE_EVENTS = 2.9;
/** How much a planned, not yet emitted fraud event counts towards the share when pacing episode starts. */
const PENDING_WEIGHT = 0.1;

/** Share of fraud episodes whose signals mostly stay hidden, and how much of each signal they still show. */
const CAREFUL_SHARE = 0.3;
const CAREFUL_BOLDNESS = 0.35;

const MINUTE_MS = 60_000;
const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;
const round2 = (x: number): number => Math.round(x * 100) / 100;
const clamp = (x: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, x));
const localHour = (ts: number, tz: number): number => (((Math.floor(ts / HOUR_MS) + tz) % 24) + 24) % 24;

function makeCard(r: Random, index: number): Card {
  const weights = new Map<MerchantCategory, number>(MERCHANT_CATEGORIES.map((c) => [c, BASE_CATEGORY_WEIGHT[c]]));
  const favourite = r.pick(MERCHANT_CATEGORIES);
  weights.set(favourite, (weights.get(favourite) ?? 0) * 3);
  // A few legitimate gamblers and crypto buyers, so those categories alone do not mean fraud.
  if (r.chance(0.04)) weights.set('gambling', BASE_CATEGORY_WEIGHT.gambling * 10);
  if (r.chance(0.03)) weights.set('crypto', BASE_CATEGORY_WEIGHT.crypto * 12);
  // Most cards stick to a few categories: drop some of the rest, so a sudden mix change stands out.
  for (const c of MERCHANT_CATEGORIES) if (c !== favourite && c !== 'grocery' && r.chance(0.35)) weights.set(c, (weights.get(c) ?? 0) * 0.1);
  const youngCard = r.chance(0.06);
  const country = r.weighted(HOME_COUNTRIES);
  const id = `card-${String(index).padStart(6, '0')}`;
  return {
    index,
    id,
    country,
    tz: TZ[country] ?? 0,
    ageDays: youngCard ? r.uniform(0, 40) : clamp(r.logNormal(Math.log(500), 0.9), 20, 6000),
    spendLevel: r.logNormal(0, 0.5),
    perDay: clamp(r.logNormal(Math.log(2.5), 0.7), 0.2, 30),
    categoryWeights: [...weights.entries()],
    nightOwl: r.chance(0.08),
    traveller: r.chance(0.1),
    devices: [`dev-${index.toString(36)}-${r.int(0, 0xffffff).toString(16)}`, ...(r.chance(0.4) ? [`dev-${index.toString(36)}-${r.int(0, 0xffffff).toString(16)}`] : [])],
    trip: null,
    busyUntil: 0,
    newPhone: null,
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

/** Time of the card's next ordinary transaction after `t`: a Poisson process thinned by the local hour's activity. */
function nextHabitTime(r: Random, card: Card, t: number): number {
  const weights = card.nightOwl ? NIGHT_WEIGHTS : DAY_WEIGHTS;
  const peak = Math.max(...weights);
  const peakPerMs = (card.perDay / DAY_MS) * (peak / mean(weights));
  for (;;) {
    t += r.exponential(1 / peakPerMs);
    if (r.chance((weights[localHour(t, card.tz)] ?? 0) / peak)) return t;
  }
}

/** An ordinary transaction of the card at time `ts`: its habits, where it is, one of its devices. */
function ordinary(r: Random, card: Card, ts: number, ageDays: number): Body {
  const abroad = card.trip !== null && ts < card.trip.until && r.chance(0.9);
  const country = abroad && card.trip !== null ? card.trip.country : card.country;
  const category = abroad && r.chance(0.4) ? r.pick(['travel', 'restaurants'] as const) : r.weighted(card.categoryWeights);
  // Occasional big-ticket purchases (a laptop, a holiday) look like takeover amounts and are not.
  const splurge = r.chance(0.02) ? r.uniform(3, 10) : 1;
  const amount = clamp(card.spendLevel * TYPICAL_AMOUNT[category] * r.logNormal(0, 0.6) * splurge, 0.5, 20_000);
  const vpn = r.chance(0.05);
  return {
    amount: round2(amount),
    currency: CURRENCY[country] ?? 'USD',
    merchant_category: category,
    country,
    card_country: card.country,
    card_age_days: round2(ageDays),
    hour_of_day: localHour(ts, card.tz),
    ip_risk: round2(vpn ? r.uniform(0.4, 0.9) : r.skew(3) * 0.5),
    device: { id: r.pick(card.devices), is_new: false },
  };
}

/**
 * The population, its planned events in a binary min-heap by (time, plan order), and the fraud pacing.
 * Cards are made up front (a few µs each); a card's own PRNG makes its profile independent of the stream.
 */
export function createTransactionGenerator(options: GeneratorOptions): TransactionGenerator {
  const fraudRate = options.fraudRate ?? 0.02;
  const cardCount = options.cards ?? 2000;
  if (!(fraudRate >= 0 && fraudRate <= 1)) throw new RangeError(`fraudRate must be in [0, 1], got ${fraudRate}`);
  if (!Number.isInteger(cardCount) || cardCount < 1) throw new RangeError(`cards must be a positive integer, got ${cardCount}`);

  const r = createRandom(options.seed);
  const startTs = options.startTs ?? Date.UTC(2025, 0, 1);
  const idPrefix = `txn-${(options.seed >>> 0).toString(36)}-`;
  const heap: Planned[] = [];
  let seq = 0;
  let emitted = 0;
  /** Fraud events emitted so far, and planned but not yet due (a takeover waits days for its quiet spell). */
  let fraudEmitted = 0;
  let fraudPending = 0;
  // Episodes start on ordinary events at a base probability, nudged by how far emitted fraud is from its
  // target share (pending events counted at a discount, since they arrive later), so the share holds close
  // to `fraudRate` from the start even though episodes vary in length and some start days after they are planned.
  const baseStart = fraudRate >= 1 ? 1 : fraudRate / ((1 - fraudRate) * MEAN_EPISODE_EVENTS);

  const less = (a: Planned, b: Planned): boolean => a.at < b.at || (a.at === b.at && a.seq < b.seq);
  const push = (p: Omit<Planned, 'seq'>): void => {
    const item: Planned = { ...p, seq: seq++ };
    heap.push(item);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!less(item, heap[parent]!)) break;
      heap[i] = heap[parent]!;
      i = parent;
    }
    heap[i] = item;
  };
  const pop = (): Planned => {
    const top = heap[0]!;
    const last = heap.pop()!;
    if (heap.length > 0) {
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        if (left >= heap.length) break;
        const right = left + 1;
        const child = right < heap.length && less(heap[right]!, heap[left]!) ? right : left;
        if (!less(heap[child]!, last)) break;
        heap[i] = heap[child]!;
        i = child;
      }
      heap[i] = last;
    }
    return top;
  };
  const plan = (card: Card, at: number, pattern: FraudPattern | 'legit', draw: (r: Random, e: Body) => void): void => {
    if (pattern !== 'legit') fraudPending++;
    push({ at, card, kind: 'extra', draw, pattern });
  };

  for (let i = 0; i < cardCount; i++) {
    const card = makeCard(createRandom((options.seed ^ Math.imul(i + 1, 0x9e3779b1)) >>> 0), i);
    push({ at: nextHabitTime(r, card, startTs), card, kind: 'habit', pattern: 'legit' });
  }

  /** Starts a fraud episode on `card` after its ordinary event at `t`; returns when the owner is next seen, if it moves. */
  const startEpisode = (card: Card, t: number): number | null => {
    const pattern = r.weighted(PATTERNS);
    const bold = r.chance(CAREFUL_SHARE) ? CAREFUL_BOLDNESS : 1;
    const hit = (p: number): boolean => r.chance(p * bold);
    const typical = card.spendLevel * 70;
    switch (pattern) {
      case 'card_testing': {
        // Many tiny authorisations within minutes, to learn whether a stolen number works; careful testers
        // send fewer, further apart. Sometimes a cash-out follows.
        const n = bold === 1 ? 3 + r.poisson(6) : 2 + r.poisson(1);
        const gapMs = bold === 1 ? 40_000 : 4 * MINUTE_MS;
        const device = hit(0.6) ? newDeviceId(r) : null;
        const country = hit(0.35) ? foreignCountry(r, card.country, 0.6) : null;
        const risky = hit(0.55);
        let at = t + r.exponential(2 * HOUR_MS);
        for (let k = 0; k < n; k++) {
          at += r.exponential(gapMs);
          plan(card, at, pattern, (rr, e) => {
            e.merchant_category = rr.pick(['grocery', 'restaurants', 'electronics', 'crypto', 'gambling', 'fuel'] as const);
            e.amount = round2(rr.chance(0.85) ? rr.uniform(0.5, 6) : rr.uniform(5, 25));
            if (device !== null) e.device = { id: device, is_new: true };
            if (country !== null) { e.country = country; e.currency = CURRENCY[country] ?? 'USD'; }
            if (risky) e.ip_risk = round2(rr.uniform(0.35, 1));
          });
        }
        if (r.chance(0.3)) {
          at += r.exponential(10 * MINUTE_MS);
          plan(card, at, pattern, (rr, e) => {
            e.merchant_category = rr.pick(['electronics', 'crypto'] as const);
            e.amount = round2(clamp(typical * rr.logNormal(Math.log(5), 0.5), 20, 20_000));
            if (device !== null) e.device = { id: device, is_new: true };
          });
        }
        card.busyUntil = at;
        return null;
      }
      case 'account_takeover': {
        // The card falls quiet for days (its owner away or not using it); then someone else, on a new device,
        // spends far above the card's habit within hours. The owner comes back later.
        const quiet = r.uniform(2, 6) * DAY_MS;
        const n = 1 + r.poisson(2);
        const device = hit(0.85) ? newDeviceId(r) : null;
        const country = hit(0.4) ? foreignCountry(r, card.country, 0.5) : null;
        const night = hit(0.5);
        let at = t + quiet;
        if (night) at = Math.floor(at / DAY_MS) * DAY_MS + (((r.int(0, 4) - card.tz) % 24 + 24) % 24) * HOUR_MS + r.uniform(0, HOUR_MS);
        if (at <= t) at = t + quiet;
        const firstAt = at;
        for (let k = 0; k < n; k++) {
          plan(card, at, pattern, (rr, e) => {
            if (hit(0.75)) e.amount = round2(clamp(typical * rr.logNormal(Math.log(6), 0.5), 5, 20_000));
            if (rr.chance(0.6)) e.merchant_category = rr.weighted([['electronics', 4], ['travel', 2], ['crypto', 2], ['gambling', 1]] as const);
            if (device !== null) e.device = { id: device, is_new: true };
            if (country !== null) { e.country = country; e.currency = CURRENCY[country] ?? 'USD'; }
            if (rr.chance(0.5 * bold)) e.ip_risk = round2(rr.uniform(0.35, 1));
          });
          at += r.exponential(1.5 * HOUR_MS);
        }
        card.busyUntil = at;
        return Math.max(at, firstAt) + r.uniform(0.5, 3) * DAY_MS;
      }
      case 'cross_border': {
        // A cloned card used abroad while the owner keeps using it at home: the country flips between events.
        const n = 1 + r.poisson(2.5);
        const country = foreignCountry(r, card.country, 0.6);
        const device = hit(0.5) ? newDeviceId(r) : null;
        let at = t + r.exponential(3 * HOUR_MS);
        for (let k = 0; k < n; k++) {
          plan(card, at, pattern, (rr, e) => {
            e.country = country;
            e.currency = CURRENCY[country] ?? 'USD';
            e.merchant_category = rr.weighted([['travel', 3], ['electronics', 3], ['fuel', 1], ['restaurants', 1]] as const);
            if (hit(0.7)) e.amount = round2(clamp(typical * rr.logNormal(Math.log(3), 0.6), 1, 20_000));
            if (device !== null) e.device = { id: device, is_new: true };
            if (rr.chance(0.4 * bold)) e.ip_risk = round2(rr.uniform(0.35, 1));
          });
          at += r.exponential(2 * HOUR_MS);
        }
        card.busyUntil = at;
        return null;
      }
      case 'merchant_shift': {
        // A run of purchases at categories the card does not use, at its usual place, within a couple of hours.
        const rare = [...card.categoryWeights].sort((a, b) => a[1] - b[1]).slice(0, 3).map(([c]) => c);
        const n = 2 + r.poisson(bold === 1 ? 3 : 1);
        const device = hit(0.4) ? newDeviceId(r) : null;
        let at = t + r.exponential(3 * HOUR_MS);
        for (let k = 0; k < n; k++) {
          plan(card, at, pattern, (rr, e) => {
            const c = rr.pick(rare);
            e.merchant_category = c;
            e.amount = round2(clamp(card.spendLevel * TYPICAL_AMOUNT[c] * rr.logNormal(Math.log(1.8), 0.5), 1, 20_000));
            if (device !== null) e.device = { id: device, is_new: true };
            if (rr.chance(0.3 * bold)) e.ip_risk = round2(rr.uniform(0.35, 1));
          });
          at += r.exponential(25 * MINUTE_MS);
        }
        card.busyUntil = at;
        return null;
      }
      case 'high_risk_merchant': {
        // One event: a freshly issued (or freshly stolen) card cashed out where goods are liquid. Visible
        // without state: category, amount, card age.
        const at = t + r.exponential(6 * HOUR_MS);
        plan(card, at, pattern, (rr, e) => {
          e.merchant_category = rr.weighted([['crypto', 4.5], ['gambling', 3], ['electronics', 2.5]] as const);
          if (hit(0.8)) e.amount = round2(clamp(rr.logNormal(Math.log(900), 0.7), 50, 20_000));
          if (hit(0.65)) e.card_age_days = round2(rr.uniform(0, 45));
          if (hit(0.45)) e.device = { id: newDeviceId(rr), is_new: true };
          if (hit(0.25)) { e.country = foreignCountry(rr, card.country, 0.5); e.currency = CURRENCY[e.country] ?? 'USD'; }
          if (hit(0.4)) e.ip_risk = round2(rr.uniform(0.35, 1));
        });
        card.busyUntil = at;
        return null;
      }
    }
  };

  /** After an ordinary event at `t`: the owner's own episodes (trips, quiet spells, bursts) and when they are next seen. */
  const ownerNext = (card: Card, t: number): number => {
    if (card.trip !== null && t >= card.trip.until) card.trip = null;
    if (card.trip === null && r.chance(card.traveller ? 0.02 : 0.003)) {
      card.trip = { country: foreignCountry(r, card.country, 0.05), until: t + r.uniform(2, 10) * DAY_MS };
    }
    if (r.chance(0.01)) {
      // Legitimate bursts: parking, transit, vending, a few small payments within minutes.
      let at = t;
      for (let k = 1 + r.poisson(1.5); k > 0; k--) {
        at += r.exponential(3 * MINUTE_MS);
        plan(card, at, 'legit', (rr, e) => {
          e.amount = round2(rr.uniform(0.5, 12));
          e.merchant_category = rr.pick(['fuel', 'restaurants', 'grocery'] as const);
        });
      }
    }
    // Quiet spells: days without use, sometimes back on a new phone. Now and then a new phone without one.
    if (r.chance(0.006)) {
      if (r.chance(0.3)) card.newPhone = newDeviceId(r);
      return nextHabitTime(r, card, t + r.uniform(2, 8) * DAY_MS);
    }
    if (r.chance(0.003)) card.newPhone = newDeviceId(r);
    return nextHabitTime(r, card, t);
  };

  return {
    next(): GeneratedTransaction {
      const p = pop();
      const ts = Math.floor(p.at);
      const card = p.card;
      const ageDays = card.ageDays + (ts - startTs) / DAY_MS;
      const body = ordinary(r, card, ts, ageDays);
      if (p.kind === 'habit') {
        if (card.newPhone !== null) {
          body.device = { id: card.newPhone, is_new: true };
          card.devices.push(card.newPhone);
          card.newPhone = null;
        }
        let next = ownerNext(card, p.at);
        if (fraudRate > 0 && p.at >= card.busyUntil) {
          const deficit = fraudRate * (emitted + 1) - fraudEmitted - PENDING_WEIGHT * fraudPending;
          if (r.chance(baseStart * clamp(1 + deficit / 25, 0, 4))) next = Math.max(next, startEpisode(card, p.at) ?? next);
        }
        push({ at: next, card, kind: 'habit', pattern: 'legit' });
      } else {
        p.draw?.(r, body);
        if (p.pattern !== 'legit') {
          fraudPending--;
          fraudEmitted++;
        }
      }
      const event: Transaction = { id: idPrefix + (emitted++).toString(36), key: card.id, ts, ...body };
      return { event, isFraud: p.pattern !== 'legit', pattern: p.pattern };
    },
  };
}
