/**
 * Parity with the training features: the sample models are trained on per-card state computed by the
 * training script's own implementation of the state Semantics (models/training/state_features.py). A fixed
 * record sequence (generated transactions with out-of-order, late and tied events, a key idle past
 * `idleAfter`, events without aggregated fields, invalid event times and a record without a key) and what
 * Python computed for each record are committed in test/fixtures/state-parity.json
 * (models/training/make_state_fixture.py). Verdict's PartitionState, with the sample pipeline's compiled
 * state section, must see the same values, and the pipeline's feature mapper must build the same rows.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { compileFeatures } from '../pipeline/ingest/features.js';
import { PartitionState } from '../pipeline/state/partition-state.js';
import type { StateRead, StateValue } from '../pipeline/state/types.js';
import { compiled, samplePipeline, samplePipelinePath } from './helpers/pipelines.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

type Expected =
  | { readonly values: Readonly<Record<string, StateValue>>; readonly features: readonly number[] | null }
  | { readonly error: { readonly code: string } };

interface Fixture {
  readonly pipeline: string;
  readonly columns: readonly string[];
  /** What Python counted: late records, keys reset by the idle rule. */
  readonly counts: { readonly late: number; readonly idle: number; readonly lru: number; readonly outOfOrder: number };
  readonly records: readonly { readonly key: string | null; readonly event: Record<string, unknown> }[];
  readonly expected: readonly Expected[];
}

const fixture = JSON.parse(readFileSync(join(ROOT, 'test/fixtures/state-parity.json'), 'utf8')) as Fixture;

/** Sums and means: 1e-9 relative (both sides add in the same order, so they are in fact equal). */
function sameValue(got: StateValue | undefined, want: StateValue): boolean {
  if (typeof got === 'number' && typeof want === 'number' && !Number.isInteger(want)) {
    return Math.abs(got - want) <= 1e-9 * Math.max(1, Math.abs(want));
  }
  return got === want;
}

void describe('state parity with the training features', () => {
  void test('PartitionState sees, for every record, what the training script computed', async () => {
    const pipeline = await compiled(await samplePipeline(), dirname(samplePipelinePath));
    assert.ok(pipeline.state !== null, 'the sample pipeline declares state');
    const state = pipeline.state;
    const mapper = compileFeatures(pipeline.input.features['dense'] ?? []);
    assert.deepEqual(mapper.columns.length, fixture.columns.length, 'same feature width as the fixture');
    const counted = { late: 0, idle: 0, lru: 0 };
    const part = new PartitionState(state, { onLate: () => counted.late++, onEvict: (reason) => counted[reason]++ });
    const names = state.aggregates.map((a) => a.name);
    let compared = 0;
    let rows = 0;
    fixture.records.forEach((rec, offset) => {
      const want = fixture.expected[offset]!;
      const read: StateRead = part.apply(offset, rec.key === null ? null : new Uint8Array(Buffer.from(rec.key, 'utf8')), rec.event);
      const where = `record ${offset} (key ${rec.key}, ts ${String(rec.event['ts'])})`;
      if ('error' in want) {
        assert.ok('error' in read, `${where}: expected ${want.error.code}, got values`);
        assert.equal(read.error.code, want.error.code, where);
        return;
      }
      assert.ok('values' in read, `${where}: expected values, got ${'error' in read ? read.error.code : '?'}`);
      assert.deepEqual(Object.keys(read.values).sort(), [...names].sort(), `${where}: every declared aggregate`);
      for (const name of names) {
        const wantValue = want.values[name] ?? null;
        assert.ok(sameValue(read.values[name], wantValue), `${where}: ${name} is ${String(read.values[name])}, Python says ${String(wantValue)}`);
        compared++;
      }
      if (want.features !== null) {
        const row = mapper.map(rec.event, undefined, 0, read.values);
        want.features.forEach((v, i) => {
          const got = row[i]!;
          // Both are float32: log1p may differ by an ulp of a double before rounding to float32.
          assert.ok(Math.abs(got - v) <= 1e-6 * Math.max(1, Math.abs(v)), `${where}: column ${fixture.columns[i]} is ${got}, Python says ${v}`);
        });
        rows++;
      }
    });
    assert.deepEqual(counted, { late: fixture.counts.late, idle: fixture.counts.idle, lru: fixture.counts.lru });
    // The sequence exercises what it claims to: many values, late and out-of-order records, idle resets,
    // refusals of both kinds.
    assert.ok(fixture.counts.late > 20 && fixture.counts.outOfOrder > 20 && fixture.counts.idle > 0, JSON.stringify(fixture.counts));
    assert.ok(compared > 10_000, `compared ${compared} values`);
    assert.ok(rows > 1_900, `compared ${rows} feature rows`);
    const codes = new Set(fixture.expected.flatMap((e) => ('error' in e ? [e.error.code] : [])));
    assert.deepEqual([...codes].sort(), ['STATE_EVENT_TIME_INVALID', 'STATE_KEY_MISSING']);
  });
});
