/**
 * The events every target sees: one seeded pool of transactions, serialised once, replayed in the same
 * order for every target, each occurrence with a fresh id. Serialising up front keeps JSON.stringify out of
 * the generator's tick, which shares two cores with the system under test.
 *
 * A small share of the pool is deliberately malformed (broken JSON, a missing field, a wrong type) so the
 * dead-letter path is measured too. Every record carries its id in the `bench-id` header, which dead
 * letters keep, so the harness can match outputs of both kinds back to the event that caused them.
 *
 * Each pass over the pool replays it later in event time (`ts` shifted by the pool's span per pass): the
 * per-key state sees every card's history go on, not jump back days, which would make every repeated event
 * late (not applied) and the state's cost at the higher levels of a run that of the late path.
 */
import type { OutboundHeader } from '../pipeline/record.js';
import { createTransactionGenerator } from './generator.js';

export const BENCH_ID_HEADER = 'bench-id';

export interface BenchEvent {
  readonly id: string;
  readonly key: string;
  readonly value: Buffer;
  readonly headers: Readonly<Record<string, string>>;
}

export interface EventPoolOptions {
  readonly seed: number;
  /** Distinct events before the sequence repeats (with new ids). Default 20,000. */
  readonly size?: number;
  readonly fraudRate?: number;
  /** Share of malformed records, 0..1. Default 0.001. */
  readonly poisonRate?: number;
}

type Template =
  | {
    readonly kind: 'event';
    readonly key: string;
    /** The event's JSON after its id, split around the value of `ts`: `"key":…,"ts":` and `,…}`. */
    readonly head: string;
    readonly ts: number;
    readonly tail: string;
  }
  | { readonly kind: 'poison'; readonly variant: number };

/** The prepared pool; `sequence()` hands out its events in order, the same order every time. */
export class EventPool {
  readonly size: number;
  readonly poisonCount: number;
  readonly #templates: readonly Template[];
  /** How far each pass over the pool moves event time: the pool's ts span plus one ms. */
  readonly #passMs: number;

  constructor(options: EventPoolOptions) {
    const size = options.size ?? 20_000;
    const poisonRate = options.poisonRate ?? 0.001;
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`pool size must be a positive integer, got ${size}`);
    if (!(poisonRate >= 0 && poisonRate < 1)) throw new RangeError(`poisonRate must be in [0, 1), got ${poisonRate}`);
    const generator = createTransactionGenerator({ seed: options.seed, ...(options.fraudRate === undefined ? {} : { fraudRate: options.fraudRate }) });
    const templates: Template[] = [];
    let poison = 0;
    let first = Infinity;
    let last = -Infinity;
    for (let n = 0; n < size; n++) {
      // Evenly spread, deterministic: the n-th record is poison when the running share crosses an integer.
      if (Math.floor((n + 1) * poisonRate) > Math.floor(n * poisonRate)) {
        templates.push({ kind: 'poison', variant: poison++ % 3 });
        continue;
      }
      const { event } = generator.next();
      const { id: _id, ...rest } = event;
      const json = JSON.stringify(rest).slice(1);
      // `key` comes first and is a plain string, so the first `"ts":` is the field.
      const at = json.indexOf('"ts":') + '"ts":'.length;
      const end = at + String(event.ts).length;
      templates.push({ kind: 'event', key: event.key, head: json.slice(0, at), ts: event.ts, tail: json.slice(end) });
      first = Math.min(first, event.ts);
      last = Math.max(last, event.ts);
    }
    this.size = size;
    this.poisonCount = poison;
    this.#templates = templates;
    this.#passMs = last >= first ? last - first + 1 : 0;
  }

  /** A fresh cursor over the pool; ids are `<prefix><n in base 36>`. */
  sequence(prefix: string): EventSequence {
    let n = 0;
    const templates = this.#templates;
    const passMs = this.#passMs;
    return {
      get taken() {
        return n;
      },
      take(count: number): BenchEvent[] {
        const out = new Array<BenchEvent>(count);
        for (let i = 0; i < count; i++, n++) {
          const id = prefix + n.toString(36);
          out[i] = materialise(templates[n % templates.length]!, id, Math.floor(n / templates.length) * passMs);
        }
        return out;
      },
    };
  }
}

export interface EventSequence {
  readonly taken: number;
  take(count: number): BenchEvent[];
}

/** A bench event's headers as the transport's header list. */
export function headerList(e: Pick<BenchEvent, 'headers'>): OutboundHeader[] {
  return Object.entries(e.headers).map(([key, value]) => ({ key, value }));
}

function materialise(t: Template, id: string, shiftMs: number): BenchEvent {
  const headers = { [BENCH_ID_HEADER]: id };
  if (t.kind === 'event') return { id, key: t.key, value: Buffer.from(`{"id":"${id}",${t.head}${t.ts + shiftMs}${t.tail}`), headers };
  return { id, key: 'card-poison', value: Buffer.from(poisonValue(t.variant, id)), headers };
}

/** Malformed records of the kinds producers really send: broken bytes, a missing field, a wrong type. */
function poisonValue(variant: number, id: string): string {
  switch (variant) {
    case 0: return `{"id":"${id}","amount":12.5,`;
    case 1: return JSON.stringify({ id, key: 'card-poison', ts: 1_735_689_600_000, currency: 'EUR' });
    default: return JSON.stringify({ id, key: 'card-poison', ts: 1_735_689_600_000, amount: 'twelve', currency: 'EUR' });
  }
}
