/**
 * One open-loop level against a fake target that answers only what it is told to: a level stops offering
 * load as soon as its backlog passes the target's limit (the embedded log's bounded input retention), and
 * says why, instead of letting retention delete the backlog unread.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
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
    sutCpuUs: () => Promise.resolve(null),
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
});
