/**
 * The per-event core reading per-key state: a real engine (the shipped autoencoder, onnxruntime) given
 * hand-made StateReads, as the state stage would hand them over. Features built from state reach the
 * model exactly as the same numbers read from event fields do; CEL rules and step conditions read
 * `state.<name>` (null stays null); each decision records the values it used; a StateRead error
 * dead-letters its record byte for byte with its code. The same in both placements: on the main thread
 * (Engine.processBlock) and in a block worker (BlockPool.process, over the block wire), including a block
 * bisected around a record that kills its worker thread, where each record must keep its own StateRead.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { compilePipeline } from '../config/compile-pipeline.js';
import { DecodeError, InternalError, SchemaError, StateError, StateEventTimeError, StateKeyMissingError, WorkerCrashedError } from '../core/errors.js';
import { ModelRegistry } from '../models/registry.js';
import { HEADER } from '../pipeline/encode-outcome.js';
import { createIngestor } from '../pipeline/ingest/ingest.js';
import { stateErrorOf } from '../pipeline/ingest/state-read.js';
import type { EncodedOutcome } from '../pipeline/outcome.js';
import type { InboundRecord } from '../pipeline/record.js';
import type { StateRead, StateValues } from '../pipeline/state/types.js';
import { BlockPool } from '../runtime/block-pool.js';
import { Engine } from '../runtime/engine.js';
import { CRASH_MARKER } from './fixtures/actors/crashing-worker.js';
import { headerBytesOf, headerMap } from './helpers/headers.js';
import { FIELD_COLUMNS, STATE_NAMES, modelWidth, statePipeline, stateRegistryRoot } from './helpers/state-pipeline.js';

interface Case {
  readonly key: string | null;
  readonly value: string;
  readonly read: StateRead | undefined;
}

const values = (count: number, sum: number, avg: number | null, last: string | null, since: number | null): StateValues => ({
  // Deliberately not in declaration order: the decision lists them in it whatever the stage hands over.
  since_last_s: since, last_country: last, amount_avg_7d: avg, amount_sum_24h: sum, txn_count_1h: count,
});

/** An event whose n0..n3 hold the numbers the state columns compute from `v`, for the field-column twin. */
function event(id: string, amount: number, country: string, v: StateValues | null, extra = ''): string {
  const n = v === null ? { n0: 0, n1: 0, n2: 0, n3: 0 } : {
    n0: v['txn_count_1h'], n1: v['amount_avg_7d'] ?? 7, n2: v['last_country'] === country ? 1 : 0, n3: v['since_last_s'] ?? 0,
  };
  // Spaces and a non-ASCII field: a dead letter that re-encoded the event would not give these bytes back.
  return `{ "id": "${id}", "ts": 1700000000000, "amount": ${amount}, "country": "${country}", "note": "caf\u00e9",  "n0": ${n.n0}, "n1": ${n.n1}, "n2": ${n.n2}, "n3": ${n.n3}${extra} }`;
}

const v0 = values(0, 0, null, null, null);
const v1 = values(5, 100, 20, 'FR', 30);
const v2 = values(1, 5, 5, 'FR', 3600);
const v7 = values(2, 25, 12.5, 'DE', 0.5);
const CASES: readonly Case[] = [
  { key: 'card-1', value: event('e0', 10, 'FR', v0), read: { values: v0 } },
  { key: 'card-1', value: event('e1', 20, 'FR', v1), read: { values: v1 } },
  { key: 'card-2', value: event('e2', 5, 'DE', v2), read: { values: v2 } },
  { key: null, value: event('e3', 5, 'DE', null), read: { error: { code: StateKeyMissingError.code, message: 'the record has no key; state is keyed by the record key' } } },
  {
    key: 'card-3', value: event('e4', 5, 'DE', null),
    read: { error: { code: StateEventTimeError.code, message: 'event time "ts" is not a finite number >= 0', details: { field: 'ts', got: { x: 1 } } } },
  },
  // Ingests fine, but the stage gave it nothing: a bug of the stage, never decided without its state.
  { key: 'card-4', value: event('e5', 5, 'DE', null), read: undefined },
  // The stage could not read it either: the core's own decoding says why.
  { key: 'card-5', value: '{ "id": "e6", ', read: undefined },
  { key: 'card-6', value: event('e7', 30, 'DE', v7), read: { values: v7 } },
];
const EXPECTED_CODES: Readonly<Record<number, string>> = {
  3: StateKeyMissingError.code, 4: StateEventTimeError.code, 5: InternalError.code, 6: DecodeError.code,
};

function records(cases: readonly Case[]): InboundRecord[] {
  return cases.map((c, offset) => ({
    topic: 'tx', partition: 0, offset, timestamp: 0,
    key: c.key === null ? null : Buffer.from(c.key), value: Buffer.from(c.value), headers: headerBytesOf({ 'x-trace-id': `t-${offset}` }),
  }));
}

const bytes = (v: Buffer | string | null): Buffer | null => (v === null ? null : Buffer.from(v));

/** Each outcome as comparable data: a decision's JSON without its latencies, a dead letter's bytes and headers. */
function comparable(encoded: readonly EncodedOutcome[]): unknown[] {
  return encoded.map((e) => {
    if (e.kind === 'dead-letter') {
      return { kind: e.kind, key: bytes(e.output.key)?.toString('hex'), value: bytes(e.output.value)?.toString('hex'), headers: headerMap(e.output.headers) };
    }
    const { latencyMs: _latency, ...decision } = JSON.parse(bytes(e.output.value)!.toString('utf8')) as Record<string, unknown>;
    return { kind: e.kind, decision };
  });
}

function decisionAt(encoded: readonly EncodedOutcome[], i: number): Record<string, unknown> & { state: Record<string, unknown> } {
  const e = encoded[i]!;
  assert.equal(e.kind, 'decision', `record ${i} is decided`);
  return JSON.parse(bytes(e.output.value)!.toString('utf8')) as Record<string, unknown> & { state: Record<string, unknown> };
}

/** What every placement must give for CASES. */
function checkOutcomes(encoded: readonly EncodedOutcome[], input: readonly InboundRecord[], where: string): void {
  assert.equal(encoded.length, CASES.length, where);
  for (const [i, c] of CASES.entries()) {
    const e = encoded[i]!;
    const code = EXPECTED_CODES[i];
    if (code !== undefined) {
      assert.equal(e.kind, 'dead-letter', `${where}: record ${i}`);
      const headers = headerMap(e.output.headers);
      assert.equal(headers[HEADER.errorCode], code, `${where}: record ${i}'s code`);
      // Byte for byte: the key (null stays null), the value, the input's headers first.
      assert.deepEqual(bytes(e.output.key), input[i]!.key, `${where}: record ${i}'s key bytes`);
      assert.ok(bytes(e.output.value)?.equals(input[i]!.value!), `${where}: record ${i}'s value bytes`);
      assert.deepEqual(e.output.headers[0], { key: 'x-trace-id', value: input[i]!.headers[0]!.value }, `${where}: record ${i}'s own header first`);
      if (c.read !== undefined && 'error' in c.read) assert.equal(headers[HEADER.errorMessage], c.read.error.message, `${where}: record ${i}'s message`);
      continue;
    }
    const decision = decisionAt(encoded, i);
    const read = c.read as { values: StateValues };
    // Every declared value, in declaration order, exactly as read (null stays null).
    assert.deepEqual(Object.keys(decision.state), [...STATE_NAMES], `${where}: record ${i}'s state names`);
    assert.deepEqual(decision.state, { ...read.values }, `${where}: record ${i}'s state values`);
  }
  const [d0, d1, d2, d7] = [0, 1, 2, 7].map((i) => decisionAt(encoded, i));
  assert.equal(d0!.state['amount_avg_7d'], null);
  assert.match(bytes(encoded[0]!.output.value)!.toString(), /"state":\{"txn_count_1h":0,"amount_sum_24h":0,"amount_avg_7d":null,"last_country":null,"since_last_s":null\}/);
  // Rules: `state.amount_avg_7d == null` (null stays null), `state.txn_count_1h > 3.0`, a string compared with an event field.
  assert.deepEqual([d0!.action, d0!.reasons], ['approve', ['no_history']], `${where}: no history`);
  assert.deepEqual([d1!.action, d1!.reasons], ['review', ['busy_card']], `${where}: busy card`);
  assert.deepEqual([d2!.action, d2!.reasons], ['review', ['country_changed']], `${where}: country changed`);
  assert.deepEqual([d7!.action, d7!.reasons], ['approve', []], `${where}: nothing fired`);
  // The step condition `state.txn_count_1h > 3.0`.
  assert.deepEqual([d0, d1, d2, d7].map((d) => (d!.completeness as Record<string, string>)['busy']), ['skipped', 'ok', 'skipped', 'skipped'], where);
  // The features moved the model: different state, different score.
  assert.notEqual(d0!.score, d1!.score, `${where}: the state columns reach the model`);
}

describe('the core reads per-key state', () => {
  let width = 0;
  let input: InboundRecord[] = [];
  const closers: Array<() => Promise<void>> = [];
  before(async () => {
    width = await modelWidth();
    input = records(CASES);
  });
  after(async () => {
    for (const close of closers.reverse()) await close();
  });

  const engineOf = async (edit: { columns?: string; state?: string; rules?: string; when?: string } = {}): Promise<Engine> => {
    const engine = await Engine.create(statePipeline({ width, ...edit }));
    closers.push(() => engine.close());
    return engine;
  };
  const states = (): Array<StateRead | undefined> => CASES.map((c) => c.read);

  test('on the main thread: state features, rules, step conditions, the decision\'s state, dead letters by code', { timeout: 60_000 }, async () => {
    const engine = await engineOf();
    const encoded = await engine.processBlock(input, undefined, states());
    checkOutcomes(encoded, input, 'main thread');
  });

  test('a state column gives the model exactly what an event field holding the same number gives', { timeout: 60_000 }, async () => {
    const fromState = await engineOf();
    const fromFields = await engineOf({ columns: FIELD_COLUMNS });
    const [a, b] = await Promise.all([fromState.processBlock(input, undefined, states()), fromFields.processBlock(input, undefined, states())]);
    assert.deepEqual(comparable(a), comparable(b));
    // And the comparison is not vacuous: the field twin's features do depend on n0..n3.
    const shifted = records(CASES.map((c) => ({ ...c, value: c.value.replace('"n0": 5', '"n0": 50') })));
    const moved = await fromFields.processBlock(shifted, undefined, states());
    assert.notEqual(decisionAt(moved, 1).score, decisionAt(b, 1).score);
  });

  test('a pipeline without state: no StateReads needed, no state in its decisions', { timeout: 60_000 }, async () => {
    const engine = await engineOf({ columns: FIELD_COLUMNS, state: '', rules: ' []', when: 'true' });
    assert.equal(engine.pipeline.state, null);
    const encoded = await engine.processBlock(input.slice(0, 3));
    for (let i = 0; i < 3; i++) {
      const text = bytes(encoded[i]!.output.value)!.toString();
      assert.equal(encoded[i]!.kind, 'decision');
      assert.ok(!('state' in (JSON.parse(text) as object)), 'no state key');
    }
  });

  test('in a block worker: the StateReads cross the block wire with their records, also through a bisection around a poison record', { timeout: 180_000 }, async () => {
    const main = await engineOf();
    const expected = comparable(await main.processBlock(input, undefined, states()));
    const pipeline = await compilePipeline(statePipeline({ width, runtime: '{ workers: 1, mode: blocks }' }), new ModelRegistry(stateRegistryRoot));
    const pool = new BlockPool({ pipeline, taskFile: new URL('./fixtures/actors/crashing-block-worker.js', import.meta.url) });
    closers.push(() => pool.close());
    await pool.ready();

    const encoded = await pool.process(input, undefined, states());
    checkOutcomes(encoded, input, 'block worker');
    assert.deepEqual(comparable(encoded), expected, 'the same outcomes as on the main thread');

    // A record that kills the worker thread in the middle: the block is retried, then halved down to it;
    // every other record must still be decided with its own state.
    const poison: Case = { key: 'card-9', value: event('e9', 1, 'FR', v1, `, "x":${CRASH_MARKER}`), read: { values: v1 } };
    const withPoison = [...CASES.slice(0, 2), poison, ...CASES.slice(2)];
    const poisoned = records(withPoison);
    const bisected = await pool.process(poisoned, undefined, withPoison.map((c) => c.read));
    assert.equal(bisected[2]!.kind, 'dead-letter');
    assert.equal(headerMap(bisected[2]!.output.headers)[HEADER.errorCode], WorkerCrashedError.code);
    const rest = [...bisected.slice(0, 2), ...bisected.slice(3)];
    // Offsets (and the test's trace ids) moved by one past the poison record; compare dead letters without them.
    const withoutOffsets = (outcomes: unknown[]) => outcomes.map((o) => {
      const { headers, ...rest } = o as { headers?: Record<string, unknown> };
      if (headers === undefined) return o;
      const { [HEADER.sourceOffset]: _offset, [HEADER.attempts]: _attempts, 'x-trace-id': _trace, ...kept } = headers;
      return { ...rest, headers: kept };
    });
    assert.deepEqual(withoutOffsets(comparable(rest)), withoutOffsets(expected));
  });
});

describe('a StateRead error becomes its typed error', () => {
  test('by code, its details flattened for a header; an unknown code is STATE_FAILED and keeps it', () => {
    const known = stateErrorOf({ code: StateEventTimeError.code, message: 'bad time', details: { field: 'ts', got: { x: 1 }, n: 2 } });
    assert.ok(known instanceof StateEventTimeError);
    assert.equal(known.message, 'bad time');
    assert.deepEqual(known.details, { field: 'ts', got: '{"x":1}', n: 2 });
    assert.ok(stateErrorOf({ code: StateKeyMissingError.code, message: 'no key' }) instanceof StateKeyMissingError);
    const unknown = stateErrorOf({ code: 'STATE_SOMETHING_NEW', message: 'm' });
    assert.ok(unknown instanceof StateError);
    assert.equal(unknown.code, StateError.code);
    assert.equal(unknown.details['stateCode'], 'STATE_SOMETHING_NEW');
  });
});

describe('the ingestor with state', () => {
  test('readEvent decodes, validates and identifies, throwing the typed error; fromRecord holds the values to the declared names', async () => {
    const width = await modelWidth();
    const pipeline = await compilePipeline(statePipeline({ width }), new ModelRegistry(stateRegistryRoot));
    const ingestor = createIngestor(pipeline, { now: () => 0 });
    const [good, , , , , , bad] = records(CASES);
    assert.equal(ingestor.readEvent(good!)['id'], 'e0');
    assert.throws(() => ingestor.readEvent(bad!), (err: unknown) => err instanceof DecodeError);
    const noId = { ...good!, value: Buffer.from('{ "ts": 1, "amount": 1, "country": "FR" }') };
    assert.throws(() => ingestor.readEvent(noId), (err: unknown) => err instanceof SchemaError);
    assert.deepEqual(Object.keys(ingestor.fromRecord(good!, 0, v1).state), [...STATE_NAMES]);
    assert.throws(() => ingestor.fromRecord(good!, 0), (err: unknown) => err instanceof InternalError);
    const { since_last_s: _dropped, ...short } = v1;
    assert.throws(() => ingestor.fromRecord(good!, 0, short), (err: unknown) => err instanceof InternalError && /since_last_s/.test(err.message));
  });
});
