import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AbortedError, MailboxFullError, ModelExecutionError, ModelInputError } from '../core/errors.js';
import { errorCount, POISON, settle, setup } from './helpers/fake-runner.js';

const rows = (n: number, poison: readonly number[] = []) =>
  Array.from({ length: n }, (_, i) => ({ x: [poison.includes(i) ? POISON : i, 1] }));

void test('a block larger than a batch is split across batches and settles once, every row in order', async () => {
  const { actor, runner, advanceTo } = setup({ maxBatchSize: 64 });
  const pending = actor.inferBlock(rows(150));
  // Two full batches at once; the last 22 rows are a partial batch, which waits for maxDelayMs.
  assert.deepEqual(runner.calls, [64, 64]);
  await settle();
  advanceTo(2);
  const result = await pending;
  assert.deepEqual(runner.calls, [64, 64, 22]);
  assert.equal(result.outputs.length, 150);
  assert.deepEqual(result.outputs.map((o) => o?.['sum']), Array.from({ length: 150 }, (_, i) => i + 1));
  assert.ok(result.errors.every((e) => e === undefined));
});

void test('blocks and single rows share batches: a block fills the room a batch has left', async () => {
  const { actor, runner, advanceTo } = setup({ maxBatchSize: 8 });
  const single = actor.infer({ x: [100, 0] });
  const block = actor.inferBlock(rows(10));
  advanceTo(2);
  assert.deepEqual(runner.calls, [8, 3]);
  assert.equal((await single)['sum'], 100);
  assert.deepEqual((await block).outputs.map((o) => o?.['sum']), Array.from({ length: 10 }, (_, i) => i + 1));
});

void test('a poison row in a block gets its own error; its neighbours get their outputs', async () => {
  const { actor, metrics, advanceTo } = setup({ maxBatchSize: 16 });
  const pending = actor.inferBlock(rows(12, [3, 9]));
  advanceTo(2);
  const { outputs, errors } = await pending;
  assert.deepEqual(errors.flatMap((e, i) => (e === undefined ? [] : [i])), [3, 9]);
  assert.ok(errors[3] instanceof ModelExecutionError);
  assert.equal(outputs[4]?.['sum'], 5);
  assert.equal(outputs[3], undefined);
  assert.equal(await errorCount(metrics, ModelExecutionError.code), 2);
});

void test('a row of the wrong shape fails alone before queuing; the valid rows around it still run', async () => {
  const { actor, runner, advanceTo } = setup({ maxBatchSize: 8 });
  const pending = actor.inferBlock([{ x: [1, 1] }, { x: [1, 2, 3] }, { x: [2, 2] }]);
  advanceTo(2);
  const { outputs, errors } = await pending;
  assert.ok(errors[1] instanceof ModelInputError);
  assert.deepEqual([outputs[0]?.['sum'], outputs[2]?.['sum']], [2, 4]);
  assert.deepEqual(runner.calls, [2], 'the two valid rows ran as one batch');
});

void test('a block that does not fit in the mailbox gets a MailboxFullError for every row, counted per row', async () => {
  const { actor, metrics, advanceTo } = setup({ mailboxCapacity: 4, maxBatchSize: 64 });
  const first = actor.inferBlock(rows(3));
  const refused = await actor.inferBlock(rows(2));
  assert.ok(refused.errors.every((e) => e instanceof MailboxFullError));
  assert.equal(await errorCount(metrics, MailboxFullError.code), 2);
  advanceTo(2);
  assert.ok((await first).errors.every((e) => e === undefined));
});

void test('aborting a block cancels its rows not yet dispatched, and only those', async () => {
  const { actor, runner, advanceTo } = setup({ maxBatchSize: 4, maxInflightBatches: 1 });
  runner.hold = true;
  const controller = new AbortController();
  const pending = actor.inferBlock(rows(10), controller.signal);
  await settle();
  assert.deepEqual(runner.calls, [4], 'one batch running, six rows queued');
  controller.abort();
  runner.hold = false;
  for (const release of runner.held.splice(0)) release();
  advanceTo(2);
  const { outputs, errors } = await pending;
  assert.deepEqual(outputs.slice(0, 4).map((o) => o?.['sum']), [1, 2, 3, 4]);
  assert.ok(errors.slice(4).every((e) => e instanceof AbortedError));
  assert.deepEqual(runner.calls, [4]);
});
