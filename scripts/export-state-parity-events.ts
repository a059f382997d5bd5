/**
 * Writes the fixed event sequence of the state parity test (test/state-parity.test.ts): generated
 * transactions of a small card population, in offset order, with disorder injected the way real streams
 * have it. models/training/make_state_fixture.py computes, with the training script's own state code, what
 * every event saw, and commits both as test/fixtures/state-parity.json.
 *
 *   node dist/scripts/export-state-parity-events.js <out.jsonl> [--events 2000] [--seed 12]
 *
 * Injected (deterministically, from the seed):
 * - out-of-order events within the allowed lateness (1 min) and late ones beyond it (5 min, 2 h);
 * - a key idle past `idleAfter` (8 d) that comes back, and one whose next event is in its own past but long
 *   after the partition's latest (reset by the partition's time, not its own);
 * - events without the aggregated fields (amount, country), a negative and a non-numeric event time, and a
 *   record without a key.
 * One line per record: `{"key": string | null, "event": {...}}`; the line number is the offset.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createTransactionGenerator, type Transaction } from '../bench/generator.js';
import { createRandom } from '../bench/prng.js';

interface Rec {
  readonly key: string | null;
  readonly event: Record<string, unknown>;
}

const MIN = 60_000;
const DAY = 86_400_000;

function sequence(events: number, seed: number): Rec[] {
  const gen = createTransactionGenerator({ seed, cards: 12, fraudRate: 0.12 });
  const r = createRandom(seed ^ 0x5eed);
  const out: Rec[] = [];
  const lastOf = new Map<string, Transaction>();
  let extra = 0;
  const variant = (e: Transaction, changes: Record<string, unknown>, drop: readonly string[] = []): Record<string, unknown> => {
    const copy: Record<string, unknown> = { ...e, id: `${e.id}-x${extra++}`, ...changes };
    for (const f of drop) delete copy[f];
    return copy;
  };
  for (let i = 0; out.length < events; i++) {
    const { event } = gen.next();
    out.push({ key: event.key, event });
    const prev = lastOf.get(event.key);
    lastOf.set(event.key, event);
    if (i === 0) continue;
    const roll = r.next();
    if (roll < 0.03) out.push({ key: event.key, event: variant(event, { ts: event.ts - r.int(1, 59_000) }) }); // out of order, applied
    else if (roll < 0.045) out.push({ key: event.key, event: variant(event, { ts: event.ts - 5 * MIN - r.int(0, 60_000) }) }); // late
    else if (roll < 0.05) out.push({ key: event.key, event: variant(event, { ts: event.ts - 2 * 3_600_000 }) }); // very late
    else if (roll < 0.055 && prev !== undefined) out.push({ key: event.key, event: variant(event, { ts: prev.ts }) }); // tie with an earlier time
    else if (roll < 0.058) out.push({ key: event.key, event: variant(event, {}, ['amount']) });
    else if (roll < 0.061) out.push({ key: event.key, event: variant(event, {}, ['country']) });
    else if (roll < 0.062) out.push({ key: event.key, event: variant(event, { ts: -1 }) });
    else if (roll < 0.063) out.push({ key: event.key, event: variant(event, { ts: 'soon' }) });
    else if (roll < 0.064) out.push({ key: null, event: variant(event, {}) });
  }
  // A key that goes idle and comes back, and one reset by the partition's time while its own event is older.
  const base = lastOf.values().next().value as Transaction;
  const first = out.findIndex((x) => typeof x.event['ts'] === 'number' && x.key !== null);
  const t0 = (out[first]?.event['ts'] as number) + DAY;
  const at = (k: number): number => Math.min(out.length, Math.floor((out.length * k) / 10));
  const idle = (ts: number, n: number): Rec => ({ key: 'card-idle', event: { ...base, id: `idle-${n}`, key: 'card-idle', ts, amount: 10 + n } });
  const insertions: [number, Rec][] = [];
  const tsAt = (pos: number): number => {
    for (let j = pos; j >= 0; j--) if (typeof out[j]?.event['ts'] === 'number' && (out[j]?.event['ts'] as number) >= 0) return out[j]!.event['ts'] as number;
    return t0;
  };
  insertions.push([at(1), idle(tsAt(at(1)), 1)], [at(1), idle(tsAt(at(1)) + MIN, 2)]);
  // Back after far more than 8 days of the partition's time, at its own time + 1 h: reset by W_p.
  insertions.push([at(6), idle(tsAt(at(1)) + 3_600_000, 3)], [at(6), idle(tsAt(at(6)), 4)]);
  // From the back, and at one position the later-listed first, so each lands where it was listed.
  const ordered = insertions.map(([pos, rec], n) => ({ pos, rec, n })).sort((a, b) => b.pos - a.pos || b.n - a.n);
  for (const { pos, rec } of ordered) out.splice(pos, 0, rec);
  return out.slice(0, events);
}

function main(): void {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { events: { type: 'string', default: '2000' }, seed: { type: 'string', default: '12' } },
  });
  const path = positionals[0];
  if (path === undefined) {
    process.stderr.write('usage: export-state-parity-events <out.jsonl> [--events N] [--seed S]\n');
    process.exitCode = 2;
    return;
  }
  const recs = sequence(Number(values.events), Number(values.seed));
  writeFileSync(path, recs.map((x) => JSON.stringify(x)).join('\n') + '\n');
  process.stdout.write(`wrote ${recs.length} records to ${path}\n`);
}

main();
