/**
 * One open-loop level against a fake target that answers only what it is told to: a level stops offering
 * load as soon as its backlog passes the target's limit (the embedded log's bounded input retention), and
 * says why, instead of letting retention delete the backlog unread.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { cpuBetween, type CpuMark } from '../bench/cpu.js';
import { EventPool, type BenchEvent } from '../bench/events.js';
import { OutputRouter, runLevel, type LevelPlan } from '../bench/run-level.js';
import type { BenchTarget, OutputListener } from '../bench/targets/target.js';

/** Answers the first `answering` events it is sent, at once; the rest never. */
function fakeTarget(answering: number): BenchTarget & { sent: number } {
  let listener: OutputListener = () => undefined;
  return {
    name: 'fused', transport: 'embedded', description: 'fake', sent: 0,
    start(onOutput) { listener = onOutput; return Promise.resolve(); },
    send(events: readonly BenchEvent[]) {
      for (const e of events) if (this.sent++ < answering) queueMicrotask(() => listener(e.id, 'decision'));
    },
    lag: () => Promise.resolve(0),
    rss: () => Promise.resolve(0),
    sutCpu: () => Promise.resolve(null),
    settings: () => ({}),
    stop: () => Promise.resolve(),
  };
}

const plan: LevelPlan = { offeredRate: 4000, durationS: 1, warmupS: 0, windowS: 0.25, maxBacklogS: 30, drainTimeoutS: 0.3, drainIdleS: 0.2 };

describe('bench level', () => {
  test('a backlog beyond the target\'s limit cuts the level short, before the schedule ends', async () => {
    const target = fakeTarget(100);
    const outputs = new OutputRouter();
    await target.start(outputs.listener);
    const result = await runLevel(plan, { target, outputs, events: new EventPool({ seed: 1, size: 500 }).sequence('e'), backlogLimit: 300 });
    assert.match(result.cutShort ?? '', /unanswered: beyond 300/);
    assert.ok(result.sent < 4000 * 0.5, `stopped early: ${result.sent} of 4000 sent`);
    assert.ok(result.sent > 400, `but not before the limit: ${result.sent} sent`);
    assert.equal(result.decided, 100);
    assert.equal(result.lost, result.sent - 100);
  });

  test('without a limit the same level runs its whole schedule', async () => {
    const target = fakeTarget(Infinity);
    const outputs = new OutputRouter();
    await target.start(outputs.listener);
    const result = await runLevel(plan, { target, outputs, events: new EventPool({ seed: 1, size: 500 }).sequence('e') });
    assert.equal(result.cutShort, null);
    assert.equal(result.sent, 4000);
    assert.equal(result.decided + result.deadLetters, 4000);
    assert.equal(result.lost, 0);
  });

  test('a level cut short during its warm-up has no measured period, so no core figures', async () => {
    const target = fakeTarget(100);
    const outputs = new OutputRouter();
    await target.start(outputs.listener);
    const result = await runLevel({ ...plan, warmupS: 0.5 }, { target, outputs, events: new EventPool({ seed: 1, size: 500 }).sequence('e'), backlogLimit: 300 });
    assert.match(result.cutShort ?? '', /unanswered: beyond 300/);
    assert.deepEqual(result.cpu, { machineCores: null, harnessCores: null, sutCores: null });
  });
});

describe('cores between two CPU marks', () => {
  const mark = (at: number, machineBusyMs: number, harnessUs: number, sutUs: number | null): CpuMark => ({ at, machineBusyMs, harnessUs, sutUs });

  test('busy time over wall time, to two decimals', () => {
    assert.deepEqual(cpuBetween(mark(1000, 500, 2_000_000, 0), mark(3000, 3500, 3_000_000, 500_000)), { machineCores: 1.5, harnessCores: 0.5, sutCores: 0.25 });
    assert.deepEqual(cpuBetween(mark(0, 0, 0, null), mark(3000, 1000, 0, null)), { machineCores: 0.33, harnessCores: 0, sutCores: null });
  });

  test('an end mark taken before the start mark measures nothing, instead of a negative figure', () => {
    assert.deepEqual(cpuBetween(mark(3000, 3500, 3_000_000, 500_000), mark(1000, 3280, 2_000_000, 0)), { machineCores: null, harnessCores: null, sutCores: null });
    assert.deepEqual(cpuBetween(mark(1000, 500, 2_000_000, 0), mark(1000, 500, 2_000_000, 0)), { machineCores: null, harnessCores: null, sutCores: null });
  });

  test('a counter that went backwards leaves only its own figure out', () => {
    assert.deepEqual(cpuBetween(mark(0, 500, 0, 1_000_000), mark(1000, 400, 250_000, 0)), { machineCores: null, harnessCores: 0.25, sutCores: null });
  });
});
