/**
 * The pipeline file's `state` section, compiled (config/compile-state.ts) and checked where it is read
 * (features, CEL): defaults, the fingerprint, and every refusal naming its config path.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { compilePipeline } from '../config/compile-pipeline.js';
import { parseDuration } from '../config/duration.js';
import { ConfigError } from '../core/errors.js';
import { ModelRegistry } from '../models/registry.js';
import { FIELD_COLUMNS, STATE_SECTION, modelWidth, statePipeline, statePipelineYaml, stateRegistryRoot, type StatePipelineOptions } from './helpers/state-pipeline.js';
import { parsePipeline } from '../config/load.js';

const registry = new ModelRegistry(stateRegistryRoot);
let width = 0;
before(async () => {
  width = await modelWidth();
});

const compile = (o: Omit<StatePipelineOptions, 'width'>) => compilePipeline(statePipeline({ width, ...o }), registry);

/** A state section with the given aggregates (YAML lines under `aggregates:`) and extra keys. */
const section = (aggregates: string, extra = ''): string => `
state:
  eventTime: { field: ts }${extra}
  aggregates:
${aggregates}
`;

async function refused(o: Omit<StatePipelineOptions, 'width'>, message: RegExp): Promise<void> {
  await assert.rejects(compile(o), (err: unknown) => {
    assert.ok(err instanceof ConfigError, String(err));
    assert.equal(err.code, ConfigError.code);
    assert.match(err.message, message);
    return true;
  });
}

function refusedAtLoad(o: Omit<StatePipelineOptions, 'width'>, message: RegExp): void {
  assert.throws(() => parsePipeline(statePipelineYaml({ width, ...o }), 'stateful.yaml'), (err: unknown) => {
    assert.ok(err instanceof ConfigError, String(err));
    assert.match(err.message, message);
    return true;
  });
}

describe('the state section compiles', () => {
  test('with every default applied: lateness 1m, idleAfter the longest window, buckets window/60, sees before, 100,000 keys', async () => {
    const p = await compile({});
    const state = p.state;
    assert.ok(state !== null);
    assert.deepEqual(state.eventTime, { field: 'ts', unit: 'ms' });
    assert.equal(state.allowedLatenessMs, 60_000);
    assert.equal(state.idleAfterMs, 7 * 86_400_000);
    assert.equal(state.maxKeysPerPartition, 100_000);
    assert.equal(state.changelogTopic, null);
    assert.deepEqual(state.aggregates, [
      { name: 'txn_count_1h', op: 'count', field: null, windowMs: 3_600_000, bucketMs: 60_000, sees: 'before' },
      { name: 'amount_sum_24h', op: 'sum', field: 'amount', windowMs: 86_400_000, bucketMs: 3_600_000, sees: 'before' },
      { name: 'amount_avg_7d', op: 'mean', field: 'amount', windowMs: 7 * 86_400_000, bucketMs: 168 * 60_000, sees: 'before' },
      { name: 'last_country', op: 'last', field: 'country', sees: 'before' },
      { name: 'since_last_s', op: 'timeSince' },
    ]);
    assert.match(state.fingerprint, /^[0-9a-f]{64}$/);
  });

  test('explicit settings win: unit s, lateness, idleAfter, key bound, sees, distinct bound, changelog topic', async () => {
    const p = await compile({
      state: section(`    d: { op: distinct, field: country, window: 90s, maxDistinct: 64, sees: after }
    c: { op: count, field: amount, window: 2h, bucket: 10m }`, `
  allowedLateness: 0s
  idleAfter: 30d
  maxKeysPerPartition: 5
  sees: after
  changelogTopic: my.changelog`).replace('{ field: ts }', '{ field: ts, unit: s }'),
      rules: ' []', when: 'true',
      columns: FIELD_COLUMNS,
    });
    const state = p.state!;
    assert.deepEqual(state.eventTime, { field: 'ts', unit: 's' });
    assert.equal(state.allowedLatenessMs, 0);
    assert.equal(state.idleAfterMs, 30 * 86_400_000);
    assert.equal(state.maxKeysPerPartition, 5);
    assert.equal(state.changelogTopic, 'my.changelog');
    assert.deepEqual(state.aggregates, [
      // 90s / 60 is not a whole number of seconds: the default bucket is then 1s.
      { name: 'd', op: 'distinct', field: 'country', maxDistinct: 64, windowMs: 90_000, bucketMs: 1_000, sees: 'after' },
      { name: 'c', op: 'count', field: 'amount', windowMs: 7_200_000, bucketMs: 600_000, sees: 'after' },
    ]);
  });

  test('the fingerprint follows what stored state means, not the key bound, the topic or sees', async () => {
    const fingerprint = async (state: string) => (await compile({ state, columns: FIELD_COLUMNS, rules: ' []', when: 'true' })).state!.fingerprint;
    const base = await fingerprint(section('    a: { op: count, window: 1h }\n    b: { op: sum, field: amount, window: 2h }'));
    assert.equal(await fingerprint(section('    a: { op: count, window: 1h }\n    b: { op: sum, field: amount, window: 2h }', '\n  maxKeysPerPartition: 9\n  changelogTopic: x.cl\n  sees: after')), base);
    assert.equal(await fingerprint(section('    a: { op: count, window: 1h, bucket: 1m }\n    b: { window: 2h, field: amount, op: sum }')), base, 'the same definition written otherwise');
    assert.notEqual(await fingerprint(section('    a: { op: count, window: 2h }\n    b: { op: sum, field: amount, window: 2h }')), base, 'a window');
    assert.notEqual(await fingerprint(section('    a: { op: count, window: 1h }\n    b: { op: max, field: amount, window: 2h }')), base, 'an op');
    assert.notEqual(await fingerprint(section('    a: { op: count, window: 1h }\n    b: { op: sum, field: amount, window: 2h }', '\n  allowedLateness: 2m')), base, 'the lateness');
    assert.notEqual(await fingerprint(section('    a: { op: count, window: 1h }\n    b: { op: sum, field: amount, window: 2h }', '\n  idleAfter: 3h')), base, 'the idle bound');
    assert.notEqual(await fingerprint(section('    b: { op: sum, field: amount, window: 2h }\n    a: { op: count, window: 1h }')), base, 'the order');
  });

  test('durations: whole numbers and a unit', () => {
    assert.deepEqual(parseDuration('90s'), { ms: 90_000 });
    assert.deepEqual(parseDuration('250ms'), { ms: 250 });
    assert.deepEqual(parseDuration('7d'), { ms: 604_800_000 });
    for (const bad of ['1.5h', '1h30m', '1 h', 'h', '10', '-1s', '1w']) assert.ok('problem' in parseDuration(bad), bad);
    assert.ok('problem' in parseDuration('99999999999999d'), 'beyond 2^53 ms');
  });
});

describe('the state section is refused with its config path', () => {
  test('a malformed duration', () => {
    refusedAtLoad({ state: section('    a: { op: count, window: 1hour }') }, /state\.aggregates\.a\.window: must be a duration/);
    refusedAtLoad({ state: section('    a: { op: count, window: 1h }', '\n  allowedLateness: 5min') }, /state\.allowedLateness: must be a duration/);
  });

  test('a window that is not a whole number of buckets, a bucket under 1s, more than 10,000 buckets', async () => {
    await refused({ state: section('    a: { op: count, window: 90m, bucket: 7m }') }, /state\.aggregates\.a\.bucket: the window 90m is not a whole number of buckets of 7m/);
    await refused({ state: section('    a: { op: count, window: 1h, bucket: 500ms }') }, /state\.aggregates\.a\.bucket: 500ms is below the least bucket, 1s/);
    await refused({ state: section('    a: { op: count, window: 7d, bucket: 1m }') }, /state\.aggregates\.a\.bucket: .* is 10080 buckets; at most 10000/);
    await refused({ state: section('    a: { op: count, window: 1500ms }') }, /state\.aggregates\.a\.window: the window 1500ms is not a whole number of buckets of 1s \(the default bucket/);
    await refused({ state: section('    a: { op: count, window: 0s }') }, /state\.aggregates\.a\.window: 0s is shorter than the least bucket/);
  });

  test('idleAfter shorter than the longest window, or absent with no window', async () => {
    await refused({ state: section('    a: { op: count, window: 1h }\n    b: { op: count, window: 24h }', '\n  idleAfter: 1h') },
      /state\.idleAfter: 1h is shorter than the longest window, 1d \(state\.aggregates\.b\.window\)/);
    await refused({ state: section('    l: { op: last, field: country }\n    t: { op: timeSince }'), rules: ' []', when: 'true', columns: FIELD_COLUMNS },
      /state\.idleAfter: required when no aggregate has a window/);
  });

  test('aggregate names: identifiers, each once', () => {
    refusedAtLoad({ state: section('    1abc: { op: count, window: 1h }') }, /state\.aggregates\.1abc: an aggregate name must be an identifier/);
    refusedAtLoad({ state: section('    a-b: { op: count, window: 1h }') }, /state\.aggregates\.a-b: an aggregate name must be an identifier/);
    refusedAtLoad({ state: section('    a: { op: count, window: 1h }\n    a: { op: count, window: 2h }') }, /state\.aggregates\.a: given twice/);
    refusedAtLoad({ state: section('') }, /state\.aggregates: /);
  });

  test('unknown keys and ops', () => {
    refusedAtLoad({ state: section('    a: { op: count, window: 1h, windw: 2h }') }, /state\.aggregates\.a: Unrecognized key: "windw"/);
    refusedAtLoad({ state: section('    t: { op: timeSince, sees: after }') }, /state\.aggregates\.t: Unrecognized key: "sees"/);
    refusedAtLoad({ state: section('    a: { op: median, field: amount, window: 1h }') }, /state\.aggregates\.a\.op: /);
    refusedAtLoad({ state: section('    a: { op: count, window: 1h }', '\n  keyBy: country') }, /state: Unrecognized key: "keyBy"/);
  });

  test('fields the schema does not declare, or of the wrong type', async () => {
    await refused({ state: section('    a: { op: sum, field: amount2, window: 1h }') }, /state\.aggregates\.a\.field: "amount2" is not a field of schema "t"/);
    await refused({ state: section('    a: { op: mean, field: country, window: 1h }') }, /state\.aggregates\.a\.field: "country" is a string; mean needs a number/);
    await refused({ state: STATE_SECTION.replace('{ field: ts, unit: ms }', '{ field: country }') }, /state\.eventTime\.field: "country" is a string; event time must be a number/);
    await refused({ state: STATE_SECTION.replace('{ field: ts, unit: ms }', '{ field: when }') }, /state\.eventTime\.field: "when" is not a field of schema "t"/);
  });

  test('a changelog topic that is another topic of the pipeline', async () => {
    await refused({ state: section('    a: { op: count, window: 1h }', '\n  changelogTopic: decisions'), rules: ' []', when: 'true', columns: FIELD_COLUMNS },
      /state\.changelogTopic: "decisions" is also output\.topic/);
  });
});

describe('what reads state is checked against the declared names', () => {
  test('a feature of an undeclared aggregate', async () => {
    await refused({ columns: FIELD_COLUMNS.replace('{ field: n0 }', '{ state: txn_count_2h }') },
      /input\.features\.dense\[0\]\.state: "txn_count_2h" is not a declared state aggregate \(declared: txn_count_1h, amount_sum_24h/);
  });

  test('a state feature in a pipeline without state', async () => {
    await refused({ state: '', rules: ' []', when: 'true' }, /input\.features\.dense\[0\]\.state: "txn_count_1h" is not a declared state aggregate \(the pipeline declares no state\)/);
  });

  test('a numeric feature of a last string value, and an equalsField of an undeclared field', async () => {
    await refused({ columns: FIELD_COLUMNS.replace('{ field: n0 }', '{ state: last_country }') },
      /input\.features\.dense\[0\]\.state: "last_country" is the last "country", a string; transform identity needs a number/);
    await refused({ columns: FIELD_COLUMNS.replace('{ field: n2 }', '{ state: last_country, equalsField: home }') },
      /input\.features\.dense\[2\]\.equalsField: "home" is not a field of schema "t"/);
  });

  test('state.<name> in a rule, the score, a fallback rule and a step condition', async () => {
    await refused({ rules: '\n    - { when: "state.txn_count_24h > 3.0", action: review, reason: r }' },
      /decision\.rules\[0\]\.when: state\.txn_count_24h is not a declared state aggregate/);
    await refused({ rules: '\n    - { when: "state[\'nope\'] == null", action: review, reason: r }' },
      /decision\.rules\[0\]\.when: state\.nope is not a declared state aggregate/);
    await refused({ when: 'state.velocity > 1.0' }, /steps\[1\]\.when: state\.velocity is not a declared state aggregate/);
    await refused({ state: '', columns: FIELD_COLUMNS, rules: ' []', when: 'state.txn_count_1h > 1.0' }, /steps\[1\]\.when: state\.txn_count_1h is not a declared state aggregate \(the pipeline declares no state\)/);
    const file = statePipeline({ width });
    await assert.rejects(compilePipeline({ ...file, decision: { ...file.decision, score: 'state.amount_avg_1d' } }, registry), /decision\.score: state\.amount_avg_1d is not a declared/);
    await assert.rejects(compilePipeline({
      ...file,
      decision: { ...file.decision, onIncomplete: { policy: 'fallback', default: 'review', rules: [{ when: 'state.x > 1.0', action: 'decline', reason: 'x' }] } },
    }, registry), /decision\.onIncomplete\.rules\[0\]\.when: state\.x is not a declared/);
  });

  test('a string that merely mentions state, and event.state, are not references', async () => {
    const p = await compile({ rules: '\n    - { when: "event.country == \'state.nope\' || has(event.state)", action: review, reason: r }' });
    assert.equal(p.decision.rules.length, 1);
  });
});
