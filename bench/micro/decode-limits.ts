/**
 * What decoding a record costs, and what the per-record input limits add to it (README "Limits"): the
 * sample events (bench/generator.ts, the test suite's `transactions`) as JSON and as MessagePack records,
 * decoded as ingestion decodes them (`decodeRecord`: the size check, the limits pre-scan of the bytes, then
 * the decoder), and decoded without the limits (`decodeValue` with no limits: the decoder alone).
 *
 * µs per event of CPU (this process, one thread), median of rounds, each round decoding every event once
 * after a warm-up. Run: `node dist/bench/micro/decode-limits.js [events] [rounds]` (defaults 10000, 30).
 */
import { cpuUsage } from 'node:process';
import { pack } from 'msgpackr';
import { DEFAULT_INPUT_LIMITS } from '../../config/pipeline-schema.js';
import { decodeRecord, decodeValue } from '../../pipeline/ingest/decode.js';
import type { InboundRecord } from '../../pipeline/record.js';
import { createTransactionGenerator } from '../generator.js';

const EVENTS = Number(process.argv[2] ?? 10_000);
const ROUNDS = Number(process.argv[3] ?? 30);

function records(values: readonly Buffer[]): InboundRecord[] {
  return values.map((value, offset) => ({
    topic: 'transactions', partition: 0, offset, key: Buffer.from(`card-${offset % 5000}`), value, headers: [], timestamp: 0,
  }));
}

/**
 * Median CPU µs per event of each decode over every record: `ROUNDS` rounds after two unmeasured ones, the
 * variants interleaved within each round so that a busy neighbour slows them alike.
 */
function usPerEvent(rs: readonly InboundRecord[], variants: ReadonlyArray<(r: InboundRecord) => unknown>): number[] {
  let sink = 0;
  const samples: number[][] = variants.map(() => []);
  for (let round = -2; round < ROUNDS; round++) {
    variants.forEach((decode, v) => {
      const t0 = cpuUsage();
      for (const r of rs) if (decode(r) !== null) sink++;
      const t = cpuUsage(t0);
      if (round >= 0) samples[v]!.push((t.user + t.system) / rs.length);
    });
  }
  if (sink === 0) throw new Error('nothing decoded');
  return samples.map((s) => {
    s.sort((a, b) => a - b);
    return +(s[s.length >> 1] ?? NaN).toFixed(3);
  });
}

function main(): void {
  const gen = createTransactionGenerator({ seed: 7, fraudRate: 0.05 });
  const events = Array.from({ length: EVENTS }, () => gen.next().event);
  const json = records(events.map((e) => Buffer.from(JSON.stringify(e))));
  const msgpack = records(events.map((e) => pack(e)));
  const limits = DEFAULT_INPUT_LIMITS;
  const results: Record<string, unknown> = {};
  for (const [name, rs, format] of [['json', json, 'json'], ['msgpack', msgpack, 'msgpack'], ['auto (json)', json, 'auto'], ['auto (msgpack)', msgpack, 'auto']] as const) {
    const [without = NaN, withLimits = NaN] = usPerEvent(rs, [(r) => decodeValue(r.value, format), (r) => decodeRecord(r, format, limits)]);
    results[name] = {
      valueBytes: Math.round(rs.reduce((s, r) => s + (r.value?.length ?? 0), 0) / rs.length),
      decoderUs: without,
      withLimitsUs: withLimits,
      addedUs: +(withLimits - without).toFixed(3),
    };
  }
  console.log(JSON.stringify({ events: EVENTS, rounds: ROUNDS, limits, usPerEvent: results }, null, 2));
}

main();
