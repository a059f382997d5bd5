/**
 * Hostile records through one daemon process over the mock broker, generated with fast-check as whole
 * transport records: null, empty and binary keys; null (tombstone), empty, garbage, valid JSON and
 * MessagePack values; NaN, ±Infinity, int64 and numbers beyond 2^53; deep nesting, many fields, long
 * strings, padding past the record size limit, invalid UTF-8; binary, empty, null and repeated headers,
 * look-alike `verdict-*` headers among them. Written with kafkajs through Verdict's ordered-header record
 * codec (null header values, repeated names in order) and read back with kcat (librdkafka), an independent
 * client.
 *
 * The property, over every run so far (cumulative, so a later run's duplicate of an earlier record counts):
 * every input record (topic, partition, offset) ends as exactly one decision (matched by its event id, every
 * event id unique) or one dead letter (matched by its provenance headers) that is the input byte for byte:
 * key, value (a tombstone stays null) and every header in order; no output matches no input; `/readyz`
 * stays 200 between runs; and the daemon's resident memory stays bounded (VmRSS from /proc, after a warm-up
 * run; generous, no timing). A record made to pass exactly one input limit (the pipeline's limits are set
 * small here) is dead-lettered with that limit's own code; a record under every limit never gets one.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import { pack } from 'msgpackr';
import { NestingTooDeepError, RecordTooLargeError, StringTooLongError, TooManyFieldsError } from '../../core/errors.js';
import { pipelineFileSchema } from '../../config/pipeline-schema.js';
import { uniqueTopic } from '../../mock-kafka/mock-broker.js';
import { installRecordCodec, WIRE_HEADERS } from '../../streams/kafka/kafkajs-record-codec.js';
import { transactions } from '../helpers/pipelines.js';
import { metricSum, writeDaemonConfig, type DaemonProcess } from './helpers/daemon-process.js';
import { describeEachProducer } from '../helpers/producers.js';
import { startHarness, type Harness } from './helpers/harness.js';
import { createTopics, waitForCommittedToEnd, type Topics } from './helpers/kafka-io.js';
import { lastHeader, readRaw, type RawHeader, type RawRecord } from './helpers/kcat-raw.js';

// Before kafkajs produces anything: its record encoder then writes ordered headers with null values.
installRecordCodec();

/** Small limits, so that records past them stay small (the defaults are 1 MiB, 32, 1,000 and 65,536). */
const LIMITS = { maxRecordBytes: 4096, maxDepth: 8, maxFields: 64, maxStringLength: 256 } as const;
const LIMIT_CODES: ReadonlySet<string> = new Set([RecordTooLargeError.code, NestingTooDeepError.code, TooManyFieldsError.code, StringTooLongError.code]);
/** Whether this build has `input.limits` (another part of issue 13); without it the limits are not set or asserted. */
const HAS_LIMITS = 'limits' in pipelineFileSchema.shape.input.shape;
/** Resident memory may grow this much from after the warm-up run to the end. */
const RSS_GROWTH_BOUND = 64 * 1024 * 1024;
const RUNS = 36;
const SEED = 20261130;

const bytes = (max: number) => fc.uint8Array({ maxLength: max }).map((a) => Buffer.from(a));
const events = transactions(30, 13, 0.1).map(({ event }) => event);

/**
 * What is added to a valid event, each kind under its limit (`over: false`) or past it (`over: true`) and
 * past no other: the sample event has about 14 fields over 2 levels and is under 400 bytes.
 */
type Extra =
  | { readonly kind: 'none' }
  | { readonly kind: 'fields'; readonly n: number; readonly over: boolean }
  | { readonly kind: 'nesting'; readonly depth: number; readonly over: boolean }
  | { readonly kind: 'string'; readonly length: number; readonly wide: boolean; readonly over: boolean }
  | { readonly kind: 'padding'; readonly bytes: number; readonly over: boolean }
  | { readonly kind: 'number'; readonly which: 'nan' | 'infinity' | 'minus-infinity' | 'int64' | 'beyond-2^53' | 'uint64-max' | 'minus-zero' | 'tiny' }
  | { readonly kind: 'invalid-utf8' };

const extra: fc.Arbitrary<Extra> = fc.oneof(
  { weight: 3, arbitrary: fc.constant({ kind: 'none' } as const) },
  fc.integer({ min: 1, max: 30 }).map((n) => ({ kind: 'fields', n, over: false }) as const),
  fc.integer({ min: 80, max: 150 }).map((n) => ({ kind: 'fields', n, over: true }) as const),
  fc.integer({ min: 1, max: 5 }).map((depth) => ({ kind: 'nesting', depth, over: false }) as const),
  fc.integer({ min: 10, max: 40 }).map((depth) => ({ kind: 'nesting', depth, over: true }) as const),
  fc.tuple(fc.integer({ min: 0, max: 200 }), fc.boolean()).map(([length, wide]) => ({ kind: 'string', length, wide, over: false }) as const),
  fc.tuple(fc.integer({ min: 300, max: 1000 }), fc.boolean()).map(([length, wide]) => ({ kind: 'string', length, wide, over: true }) as const),
  fc.integer({ min: 0, max: 2000 }).map((n) => ({ kind: 'padding', bytes: n, over: false }) as const),
  fc.integer({ min: 5000, max: 9000 }).map((n) => ({ kind: 'padding', bytes: n, over: true }) as const),
  fc.constantFrom('nan', 'infinity', 'minus-infinity', 'int64', 'beyond-2^53', 'uint64-max', 'minus-zero', 'tiny').map((which) => ({ kind: 'number', which }) as const),
  fc.constant({ kind: 'invalid-utf8' } as const),
);

/** A value as generated; its bytes are made at produce time, when a valid event gets its unique id. */
type ValueSpec =
  | { readonly kind: 'null' }
  | { readonly kind: 'bytes'; readonly bytes: Buffer }
  | { readonly kind: 'event'; readonly format: 'json' | 'msgpack'; readonly base: number; readonly extra: Extra; readonly cut: number | null }
  | { readonly kind: 'deep-array'; readonly depth: number };

const valueSpec: fc.Arbitrary<ValueSpec> = fc.oneof(
  fc.constant({ kind: 'null' } as const),
  fc.constant({ kind: 'bytes', bytes: Buffer.alloc(0) } as const),
  bytes(24).map((b) => ({ kind: 'bytes', bytes: b }) as const),
  { weight: 6, arbitrary: fc.record({
    kind: fc.constant('event' as const),
    format: fc.constantFrom('json' as const, 'msgpack' as const),
    base: fc.nat(events.length - 1),
    extra,
    // Now and then the encoded event cut short: malformed.
    cut: fc.oneof({ weight: 7, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.nat(60) }),
  }) },
  fc.integer({ min: 1, max: 24 }).map((depth) => ({ kind: 'deep-array', depth }) as const),
);

const header: fc.Arbitrary<RawHeader> = fc.record({
  key: fc.oneof(fc.constantFrom('dup', 'traceparent', 'x-trace-id', 'verdict-error-code', 'verdict-original-headers', 'verdict-source-offset', '1', ''), fc.string({ maxLength: 8 })),
  value: fc.option(bytes(24), { nil: null }),
});

interface GeneratedRecord {
  readonly partition: number;
  readonly key: Buffer | null;
  readonly value: ValueSpec;
  readonly headers: readonly RawHeader[];
}

const record: fc.Arbitrary<GeneratedRecord> = fc.record({
  partition: fc.integer({ min: 0, max: 1 }),
  key: fc.option(fc.oneof(bytes(24), fc.constantFrom('card-1', 'card-2', 'card-3').map((k) => Buffer.from(k))), { nil: null }),
  value: valueSpec,
  headers: fc.array(header, { maxLength: 6 }),
});

/** The event with its extra; `id` made unique so a decision names exactly one input. */
function eventValue(spec: Extract<ValueSpec, { kind: 'event' }>, id: string): Buffer {
  const event: Record<string, unknown> = { ...events[spec.base]!, id };
  const x = spec.extra;
  let patch: ((b: Buffer) => Buffer) | undefined;
  switch (x.kind) {
    case 'fields':
      for (let i = 0; i < x.n; i++) event[`x${i}`] = i;
      break;
    case 'nesting': {
      let nested: Record<string, unknown> = { leaf: 1 };
      for (let i = 1; i < x.depth; i++) nested = { a: nested };
      event['nest'] = nested;
      break;
    }
    case 'string':
      event['note'] = (x.wide ? '\u00e9' : 'a').repeat(x.length);
      break;
    case 'number':
      if (spec.format === 'json') {
        const literal = { nan: 'NaN', infinity: '1e400', 'minus-infinity': '-1e400', int64: '9223372036854775807', 'beyond-2^53': '9007199254740993', 'uint64-max': '18446744073709551615', 'minus-zero': '-0', tiny: '5e-324' }[x.which];
        event['amount'] = '@AMOUNT@';
        patch = (b) => Buffer.from(b.toString('utf8').replace('"@AMOUNT@"', literal));
      } else {
        event['amount'] = {
          nan: NaN, infinity: Infinity, 'minus-infinity': -Infinity, int64: 2n ** 63n - 1n, 'beyond-2^53': 2n ** 53n + 1n,
          'uint64-max': 2n ** 64n - 1n, 'minus-zero': -0, tiny: 5e-324,
        }[x.which];
      }
      break;
    case 'invalid-utf8':
      // Two bytes no UTF-8 text holds (0xff 0xfe), in place of the marker's inside the currency string, in either format.
      event['currency'] = 'E%%R';
      patch = (b) => {
        const at = b.indexOf(Buffer.from('E%%R'));
        const out = Buffer.from(b);
        out[at + 1] = 0xff;
        out[at + 2] = 0xfe;
        return out;
      };
      break;
    default:
      break;
  }
  let value: Buffer = spec.format === 'json' ? Buffer.from(JSON.stringify(event)) : Buffer.from(pack(event));
  if (patch !== undefined) value = patch(value);
  if (x.kind === 'padding') value = spec.format === 'json' ? Buffer.concat([value, Buffer.alloc(x.bytes, 0x20)]) : Buffer.concat([value, Buffer.alloc(x.bytes, 0xc0)]);
  return spec.cut === null ? value : value.subarray(0, spec.cut + 1);
}

/**
 * The limit code a record must get: the one limit it was made to pass (and no other), `none` when it is under
 * every limit, or `any` when the generator cannot say: random bytes may be a MessagePack header announcing
 * 65,535 items or ten nested arrays, a cut event may end inside a map whose header counts 100 keys, and a
 * deep array is no event at all.
 */
function expectedLimitCode(spec: ValueSpec, total: number): string {
  if (total > LIMITS.maxRecordBytes) return RecordTooLargeError.code;
  // Not an event (the root is an array): refused as undecodable, or by a scan that judged its depth first.
  if (spec.kind === 'deep-array') return 'any';
  if (spec.kind === 'bytes') return 'any';
  if (spec.kind === 'null') return 'none';
  if (spec.cut !== null) return 'any';
  const x = spec.extra;
  if (!('over' in x) || !x.over) return 'none';
  switch (x.kind) {
    case 'fields': return TooManyFieldsError.code;
    case 'nesting': return NestingTooDeepError.code;
    case 'string': return StringTooLongError.code;
    case 'padding': return 'any'; // under 4096 after all only if the generator's bounds were wrong: the size check above decides
  }
}

interface Produced {
  readonly partition: number;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly headers: readonly RawHeader[];
  readonly eventId: string | undefined;
  readonly spec: ValueSpec;
}

function materialise(r: GeneratedRecord, id: string): Produced {
  const spec = r.value;
  let value: Buffer | null;
  let eventId: string | undefined;
  switch (spec.kind) {
    case 'null': value = null; break;
    case 'bytes': value = spec.bytes; break;
    case 'deep-array': value = Buffer.from(`${'['.repeat(spec.depth)}1${']'.repeat(spec.depth)}`); break;
    case 'event': value = eventValue(spec, id); eventId = id; break;
  }
  // Plain objects (fast-check may make null-prototype ones), as kcat's are read back.
  return { partition: r.partition, key: r.key, value, headers: r.headers.map((x) => ({ key: x.key, value: x.value })), eventId, spec };
}

const sizeOf = (p: Produced): number =>
  (p.key?.length ?? 0) + (p.value?.length ?? 0) + p.headers.reduce((n, h) => n + Buffer.byteLength(h.key) + (h.value?.length ?? 0), 0);

const sameBytes = (a: Buffer | null, b: Buffer | null): boolean => (a === null || b === null ? a === b : a.equals(b));
const at = (partition: number, offset: number): string => `${partition}/${offset}`;

/** The daemon's resident set size in bytes (VmRSS), threads included. */
function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (m === null) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]) * 1024;
}

let h: Harness;

describeEachProducer('hostile records through one daemon over Kafka', { timeout: 240_000 }, (producer) => {
  before(async () => { h = await startHarness('hostile', 1); });
  after(async () => { await h.close(); });

  test('every record ends as exactly one decision or one byte-exact dead letter; the daemon stays ready and its memory bounded', { timeout: 220_000 }, async (t) => {
    const topics: Topics = await createTopics(h.broker, 'hostile', 2);
    const groupId = uniqueTopic('g-hostile');
    const config = writeDaemonConfig({
      producer,
      bootstrap: h.broker.bootstrap, groupId, topics, logLevel: 'warn',
      editPipeline: (p) => {
        if (HAS_LIMITS) (p as unknown as { input: Record<string, unknown> }).input['limits'] = { ...LIMITS };
      },
    });
    const daemon: DaemonProcess = await h.daemon(config, 'hostile');
    const pid = daemon.pid!;
    const produced = new Map<string, Produced>();
    const seen = { records: 0, decisions: 0, deadLetters: 0, tombstones: 0, nullHeaders: 0, limitCodes: {} as Record<string, number>, codes: {} as Record<string, number> };
    const rss: number[] = [];
    let run = 0;

    const runs = await fc.check(fc.asyncProperty(fc.array(record, { minLength: 1, maxLength: 40, size: 'max' }), async (generated) => {
      run++;
      const records = generated.map((r, i) => materialise(r, `hostile-${run}-${i}`));
      // Offsets are assigned per partition in send order: a single send of one batch keeps them in order.
      await h.producer.send({
        topic: topics.input, acks: -1,
        messages: records.map((r) => ({
          partition: r.partition, key: r.key, value: r.value,
          headers: { [WIRE_HEADERS]: r.headers },
        })),
      });
      await waitForCommittedToEnd(h.admin, groupId, topics.input, 60_000);
      assert.equal((await fetch(`http://127.0.0.1:${daemon.metricsPort}/readyz`)).status, 200, `ready after run ${run}: ${daemon.describeErrors()}`);
      assert.ok(daemon.alive, 'the daemon never exits');

      // What is on the input topic, as kcat reads it, is what was generated (this run's records in send order per partition).
      const inputs = await readRaw(h.broker, topics.input);
      for (const p of [0, 1]) {
        const mine = records.filter((r) => r.partition === p);
        const all = inputs.filter((r) => r.partition === p);
        const onTopic = all.slice(all.length - mine.length);
        assert.equal(onTopic.length, mine.length);
        onTopic.forEach((r, i) => {
          const g = mine[i]!;
          assert.ok(sameBytes(r.key, g.key) && sameBytes(r.value, g.value), `input ${at(p, r.offset)} as generated`);
          assert.deepEqual(r.headers, g.headers, `input ${at(p, r.offset)} headers as generated`);
          produced.set(at(p, r.offset), g);
        });
      }
      seen.records += records.length;

      // Every output so far against every input so far.
      const [decisions, dead] = await Promise.all([readRaw(h.broker, topics.output), readRaw(h.broker, topics.dlq)]);
      const byId = new Map<string, RawRecord>();
      for (const r of inputs) {
        const id = produced.get(at(r.partition, r.offset))?.eventId;
        if (id !== undefined) byId.set(id, r);
      }
      const outcomes = new Map<string, number>(inputs.map((r) => [at(r.partition, r.offset), 0]));
      const count = (where: string, what: string): void => {
        const n = outcomes.get(where);
        assert.ok(n !== undefined, `${what} names no input record (${where})`);
        outcomes.set(where, n + 1);
      };
      for (const d of decisions) {
        const id = lastHeader(d, 'verdict-event-id') ?? '';
        const input = byId.get(id);
        assert.ok(input !== undefined, `decision for event id ${id} matches no input`);
        count(at(input.partition, input.offset), `decision ${id}`);
        assert.ok(sameBytes(d.key, input.key), `decision ${id} keyed with the input key's exact bytes`);
      }
      const codes: Record<string, number> = {};
      const limitCodes: Record<string, number> = {};
      let tombstones = 0;
      let nullHeaders = 0;
      for (const d of dead) {
        assert.equal(lastHeader(d, 'verdict-source-topic'), topics.input);
        const where = at(Number(lastHeader(d, 'verdict-source-partition')), Number(lastHeader(d, 'verdict-source-offset')));
        count(where, `dead letter ${d.partition}/${d.offset}`);
        const input = inputs.find((r) => at(r.partition, r.offset) === where)!;
        assert.ok(sameBytes(d.key, input.key), `dead letter of ${where}: the key's bytes`);
        assert.ok(sameBytes(d.value, input.value), `dead letter of ${where}: the value's bytes, null kept`);
        const n = Number(lastHeader(d, 'verdict-original-headers'));
        assert.deepEqual(d.headers.slice(0, n), input.headers, `dead letter of ${where}: every input header, in order, bytes and nulls exact`);
        const code = lastHeader(d, 'verdict-error-code') ?? '';
        codes[code] = (codes[code] ?? 0) + 1;
        if (input.value === null) tombstones++;
        if (input.headers.some((x) => x.value === null)) nullHeaders++;
        if (HAS_LIMITS) {
          const g = produced.get(where)!;
          const expected = expectedLimitCode(g.spec, sizeOf(g));
          if (LIMIT_CODES.has(expected)) {
            assert.equal(code, expected, `dead letter of ${where}: the limit's own code`);
            limitCodes[code] = (limitCodes[code] ?? 0) + 1;
          } else if (expected === 'none') {
            assert.ok(!LIMIT_CODES.has(code), `${where} is under every limit, yet dead-lettered with ${code}`);
          }
        }
      }
      // A record past a limit is never decided.
      if (HAS_LIMITS) {
        for (const d of decisions) {
          const input = byId.get(lastHeader(d, 'verdict-event-id') ?? '')!;
          const g = produced.get(at(input.partition, input.offset))!;
          assert.ok(!LIMIT_CODES.has(expectedLimitCode(g.spec, sizeOf(g))), `${at(input.partition, input.offset)} is past a limit, yet decided`);
        }
      }
      const lost = [...outcomes].filter(([, n]) => n === 0).map(([w]) => w);
      const repeated = [...outcomes].filter(([, n]) => n > 1).map(([w]) => w);
      assert.deepEqual(lost, [], 'no record without an outcome');
      assert.deepEqual(repeated, [], 'no record with two outcomes');
      assert.equal(decisions.length + dead.length, inputs.length, 'records in = decided + dead-lettered');
      Object.assign(seen, { decisions: decisions.length, deadLetters: dead.length, tombstones, nullHeaders, codes, limitCodes });
      rss.push(rssBytes(pid));
    }), { numRuns: RUNS, seed: SEED, endOnFailure: true });
    // The property's own error, whole (fast-check's report names the counterexample but not always why).
    if (runs.failed) {
      const error = runs.errorInstance instanceof Error ? runs.errorInstance : new Error(String(runs.errorInstance));
      error.message = `run ${run} failed (seed ${SEED}); counterexample ${fc.stringify(runs.counterexample)}\n${error.message}\n${daemon.describeErrors()}`;
      throw error;
    }

    const metrics = await daemon.scrapeMetrics();
    const growth = rss[rss.length - 1]! - rss[0]!;
    const summary = { ...seen, runs: run, rssAfterWarmUpMiB: +(rss[0]! / 2 ** 20).toFixed(1), rssEndMiB: +(rss[rss.length - 1]! / 2 ** 20).toFixed(1), rssMaxMiB: +(Math.max(...rss) / 2 ** 20).toFixed(1), limits: HAS_LIMITS };
    t.diagnostic(`generated records tried: ${seen.records} in ${run} runs; ${JSON.stringify(summary)}`);
    console.log(`hostile records: ${JSON.stringify(summary)}`);
    assert.equal(metricSum(metrics, 'verdict_kafka_consumer_restarts_total'), 0, 'the consumer never crashed');
    assert.equal(metricSum(metrics, 'verdict_decisions_total'), seen.decisions, 'decisions counted in /metrics');
    assert.equal(metricSum(metrics, 'verdict_dead_letters_total'), seen.deadLetters, 'dead letters counted in /metrics');
    assert.ok(growth < RSS_GROWTH_BOUND, `resident memory grew ${(growth / 2 ** 20).toFixed(1)} MiB after the warm-up run (bound ${RSS_GROWTH_BOUND / 2 ** 20} MiB)`);
    // The generator reached every kind of record the property is about.
    assert.ok(seen.decisions > 50 && seen.deadLetters > 50 && seen.tombstones > 0 && seen.nullHeaders > 0, JSON.stringify(seen));
    if (HAS_LIMITS) for (const code of LIMIT_CODES) assert.ok((seen.limitCodes[code] ?? 0) > 0, `some record passed the limit of ${code}: ${JSON.stringify(seen.limitCodes)}`);
    assert.deepEqual(await daemon.stop(), { code: 0, signal: null }, daemon.describeErrors());
  });
});
