import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { VirtualTimeScheduler } from 'rxjs';
import { createMetrics } from '../core/metrics.js';
import { DeadlineJoin, type JoinBlock } from '../pipeline/join/deadline-join.js';
import type { JoinResult, StepReport } from '../pipeline/join/types.js';
import { ManualScheduler } from './helpers/manual-scheduler.js';

const STEPS = ['gbt', 'anomaly', 'mlp'];
const ok = (p: number) => ({ status: 'ok' as const, outputs: { fraud_probability: p }, model: 'm@1' });
const flush = () => new Promise<void>((r) => setImmediate(r));

/** The one-event-per-block view most tests take: open and report by event id and step name. */
function byId(windows: DeadlineJoin) {
  const blocks = new Map<string, JoinBlock>();
  return {
    open(id: string): Promise<JoinResult> {
      const block = windows.open([id]);
      blocks.set(id, block);
      return block.closed.then((results) => results[0]!);
    },
    report(id: string, step: string, report: StepReport): void {
      blocks.get(id)?.report(0, STEPS.indexOf(step), report);
    },
  };
}

function setup(mode: 'all' | 'any' | 'partial', deadlineMs = 50) {
  const scheduler = new ManualScheduler();
  const metrics = createMetrics();
  const windows = new DeadlineJoin({ pipeline: 'p', steps: STEPS, mode, deadlineMs, scheduler, metrics });
  return { scheduler, metrics, windows, join: byId(windows) };
}

/** Tracks whether a promise has settled, so a test can say "not closed yet". */
function track(p: Promise<JoinResult>): () => JoinResult | undefined {
  let result: JoinResult | undefined;
  void p.then((r) => { result = r; });
  return () => result;
}

describe('deadline join on virtual time', () => {
  test('mode all closes when every step has settled, complete when all ok or skipped', async () => {
    const { join } = setup('all');
    const w = track(join.open('e1'));
    join.report('e1', 'gbt', ok(0.2));
    join.report('e1', 'anomaly', ok(0.1));
    await flush();
    assert.equal(w(), undefined, 'still waiting for mlp');
    join.report('e1', 'mlp', { status: 'skipped', reason: 'when is false' });
    await flush();
    assert.deepEqual(w()?.completeness, { gbt: 'ok', anomaly: 'ok', mlp: 'skipped' });
    assert.equal(w()?.complete, true);
    assert.deepEqual(Object.keys(w()?.outputs ?? {}), ['gbt', 'anomaly']);
  });

  test('mode all is incomplete when a step errors', async () => {
    const { join } = setup('all');
    const p = join.open('e1');
    join.report('e1', 'gbt', ok(0.2));
    join.report('e1', 'anomaly', { status: 'error', error: { code: 'MODEL_EXECUTION_FAILED', message: 'boom', retryable: false, details: {} } });
    join.report('e1', 'mlp', { status: 'skipped', reason: 'x' });
    const r = await p;
    assert.equal(r.complete, false);
    assert.equal(r.completeness['anomaly'], 'error');
    assert.equal(r.errors['anomaly']?.code, 'MODEL_EXECUTION_FAILED');
  });

  test('mode any closes at the first ok result; the others become timeouts', async () => {
    const { join, scheduler } = setup('any');
    const p = join.open('e1');
    scheduler.advance(3);
    join.report('e1', 'anomaly', ok(0.4));
    const r = await p;
    assert.equal(r.complete, true);
    assert.equal(r.closedAt, 3);
    assert.deepEqual(r.completeness, { gbt: 'timeout', anomaly: 'ok', mlp: 'timeout' });
  });

  test('mode any does not close on errors or skips, only on an ok', async () => {
    const { join, scheduler } = setup('any', 50);
    const w = track(join.open('e1'));
    join.report('e1', 'gbt', { status: 'error', error: { code: 'MODEL_TIMEOUT', message: 't', retryable: true, details: {} } });
    join.report('e1', 'anomaly', { status: 'skipped', reason: 'when is false' });
    await flush();
    assert.equal(w(), undefined);
    scheduler.advance(7);
    join.report('e1', 'mlp', ok(0.6));
    await flush();
    assert.deepEqual([w()?.complete, w()?.closedAt], [true, 7]);
  });

  test('every step skipped by design is a complete join in every mode, and not counted incomplete', async () => {
    for (const mode of ['all', 'any', 'partial'] as const) {
      const { join, metrics } = setup(mode);
      const p = join.open('e1');
      for (const s of STEPS) join.report('e1', s, { status: 'skipped', reason: 'when is false' });
      const r = await p;
      assert.equal(r.complete, true, mode);
      assert.deepEqual(r.completeness, { gbt: 'skipped', anomaly: 'skipped', mlp: 'skipped' }, mode);
      assert.equal((await metrics.incompleteJoins.get()).values[0]?.value ?? 0, 0, mode);
    }
  });

  test('mode any and partial with no ok step and a failed one are incomplete; skips do not help', async () => {
    for (const mode of ['any', 'partial'] as const) {
      const { join, metrics } = setup(mode);
      const p = join.open('e1');
      join.report('e1', 'gbt', { status: 'skipped', reason: 'when is false' });
      join.report('e1', 'anomaly', { status: 'skipped', reason: 'when is false' });
      join.report('e1', 'mlp', { status: 'error', error: { code: 'MODEL_EXECUTION_FAILED', message: 'boom', retryable: false, details: {} } });
      const r = await p;
      assert.equal(r.complete, false, mode);
      assert.equal((await metrics.incompleteJoins.get()).values[0]?.value, 1, mode);
    }
  });

  test('mode partial decides on what arrived by the deadline', async () => {
    const { join, scheduler } = setup('partial', 50);
    const w = track(join.open('e1'));
    join.report('e1', 'gbt', ok(0.9));
    scheduler.advance(49);
    await flush();
    assert.equal(w(), undefined, 'open until the deadline');
    scheduler.advance(1);
    await flush();
    assert.equal(w()?.closedAt, 50);
    assert.deepEqual(w()?.completeness, { gbt: 'ok', anomaly: 'timeout', mlp: 'timeout' });
    assert.equal(w()?.complete, false, "a step that timed out leaves it incomplete: the incomplete policy decides on what arrived");
  });

  test('a join with nothing by the deadline is incomplete in every mode', async () => {
    for (const mode of ['all', 'any', 'partial'] as const) {
      const { join, scheduler, metrics } = setup(mode, 10);
      const p = join.open('e');
      scheduler.advance(10);
      const r = await p;
      assert.equal(r.complete, false, mode);
      assert.equal((await metrics.incompleteJoins.get()).values[0]?.value, 1);
    }
  });

  test('step outcomes are counted by status when the window closes', async () => {
    const { join, scheduler, metrics } = setup('all', 10);
    const p = join.open('e1');
    join.report('e1', 'gbt', ok(0.1));
    join.report('e1', 'mlp', { status: 'skipped', reason: 'x' });
    assert.deepEqual((await metrics.stepOutcomes.get()).values, [], 'nothing counted while open');
    scheduler.advance(10);
    await p;
    const counted = (await metrics.stepOutcomes.get()).values.filter((v) => v.value > 0).map((v) => `${v.labels['step']}:${v.labels['status']}`).sort();
    assert.deepEqual(counted, ['anomaly:timeout', 'gbt:ok', 'mlp:skipped']);
  });

  test('deadlines run on an rxjs VirtualTimeScheduler', async () => {
    const scheduler = new VirtualTimeScheduler();
    const join = byId(new DeadlineJoin({ pipeline: 'p', steps: STEPS, mode: 'partial', deadlineMs: 25, scheduler }));
    const a = join.open('a');
    join.report('a', 'gbt', ok(0.2));
    scheduler.flush();
    const r = await a;
    assert.deepEqual([r.closedAt, r.completeness['gbt'], r.completeness['mlp'], r.complete], [25, 'ok', 'timeout', false]);
  });

  test('late outputs are counted per step and dropped', async () => {
    const { windows, scheduler, metrics } = setup('partial', 20);
    const block = windows.open(['e1', 'e2']);
    block.report(1, 0, ok(0.2));
    scheduler.advance(20);
    const [r] = await block.closed;
    block.report(0, 0, ok(0.5));
    block.report(1, 2, ok(0.5));
    assert.equal(windows.lateCount, 2);
    assert.equal(r?.outputs['gbt'], undefined, 'the closed result is not changed');
    const late = (await metrics.lateOutputs.get()).values;
    assert.deepEqual(late.map((v) => [v.labels['step'], v.value]).sort(), [['gbt', 1], ['mlp', 1]]);
  });

  test('a second report for a step is ignored: the first one wins', async () => {
    const { join, windows } = setup('all');
    const p = join.open('e1');
    join.report('e1', 'gbt', ok(0.1));
    join.report('e1', 'gbt', ok(0.99));
    join.report('e1', 'anomaly', ok(0.1));
    join.report('e1', 'mlp', { status: 'skipped', reason: 'x' });
    const r = await p;
    assert.equal(r.outputs['gbt']?.['fraud_probability'], 0.1);
    assert.equal(windows.duplicateCount, 1);
  });

  test('many interleaved events close in deadline order from a single timer', async () => {
    const { join, windows, scheduler } = setup('partial', 30);
    const closed: string[] = [];
    const all: Promise<unknown>[] = [];
    for (let i = 0; i < 10; i++) {
      all.push(join.open(`e${i}`).then((r) => closed.push(`${r.eventId}@${r.closedAt}`)));
      if (i % 2 === 0) {
        // Even events finish early, odd ones wait for their deadline.
        for (const s of STEPS) join.report(`e${i}`, s, ok(0.1));
      }
      scheduler.advance(5);
    }
    assert.ok(scheduler.pendingCount <= 1, `one timer at a time, saw ${scheduler.pendingCount}`);
    scheduler.advance(100);
    await Promise.all(all);
    const late = closed.filter((c) => /e[13579]@/.test(c));
    assert.deepEqual(late, ['e1@35', 'e3@45', 'e5@55', 'e7@65', 'e9@75']);
    assert.equal(windows.openCount, 0);
  });

  test('the same event id open twice (a replay) joins independently: windows are keyed by position', async () => {
    const { windows } = setup('all');
    const first = windows.open(['dup']);
    const second = windows.open(['dup', 'other']);
    for (let s = 0; s < STEPS.length; s++) first.report(0, s, ok(0.1));
    const [r] = await first.closed;
    assert.equal(r?.complete, true);
    assert.equal(windows.openCount, 1, 'the second window is still open');
    windows.close();
    const [again] = await second.closed;
    assert.deepEqual(again?.completeness, { gbt: 'timeout', anomaly: 'timeout', mlp: 'timeout' });
  });

  test('a block closes when its last event settles; each event keeps its own completeness', async () => {
    const { windows, metrics } = setup('all', 1000);
    const block = windows.open(['a', 'b', 'c']);
    let closed = false;
    void block.closed.then(() => { closed = true; });
    for (const e of [0, 1, 2]) block.report(e, 0, ok(0.1 * (e + 1)));
    for (const e of [0, 1, 2]) block.report(e, 1, e === 1 ? { status: 'error', error: { code: 'MODEL_EXECUTION_FAILED', message: 'x', retryable: false, details: {} } } : ok(0.5));
    block.report(0, 2, { status: 'skipped', reason: 'when is false' });
    block.report(1, 2, { status: 'skipped', reason: 'when is false' });
    await flush();
    assert.equal(closed, false, 'event c has not settled mlp yet');
    block.report(2, 2, ok(0.9));
    const results = await block.closed;
    assert.deepEqual(results.map((r) => r.eventId), ['a', 'b', 'c']);
    assert.deepEqual(results.map((r) => r.complete), [true, false, true]);
    assert.equal(results[2]?.outputs['mlp']?.['fraud_probability'], 0.9);
    assert.equal(results[1]?.errors['anomaly']?.code, 'MODEL_EXECUTION_FAILED');
    const counted = Object.fromEntries((await metrics.stepOutcomes.get()).values.map((v) => [`${v.labels['step']}:${v.labels['status']}`, v.value]));
    assert.deepEqual(counted, { 'gbt:ok': 3, 'anomaly:ok': 2, 'anomaly:error': 1, 'mlp:skipped': 2, 'mlp:ok': 1 });
  });

  test('mode any settles each event of a block at its own first ok', async () => {
    const { windows, scheduler } = setup('any', 100);
    const block = windows.open(['a', 'b']);
    block.report(0, 1, ok(0.3));
    scheduler.advance(5);
    block.report(1, 0, { status: 'skipped', reason: 'x' });
    block.report(1, 2, ok(0.7));
    block.report(0, 0, ok(0.9));
    const [a, b] = await block.closed;
    assert.deepEqual(a?.completeness, { gbt: 'timeout', anomaly: 'ok', mlp: 'timeout' });
    assert.deepEqual(b?.completeness, { gbt: 'skipped', anomaly: 'timeout', mlp: 'ok' });
    assert.equal(a?.closedAt, 5);
    assert.equal(windows.lateCount, 1, "a's gbt came after a had settled");
  });

  test('close() on shutdown settles every open window with timeouts', async () => {
    const { join, windows } = setup('partial', 1000);
    const a = join.open('a');
    const b = join.open('b');
    join.report('a', 'gbt', ok(0.3));
    windows.close();
    const [ra, rb] = await Promise.all([a, b]);
    assert.deepEqual(ra.completeness, { gbt: 'ok', anomaly: 'timeout', mlp: 'timeout' });
    assert.deepEqual(rb.completeness, { gbt: 'timeout', anomaly: 'timeout', mlp: 'timeout' });
  });
});
