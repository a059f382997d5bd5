/**
 * One failure policy for a dead worker thread (README "When a model fails"): the same poison record,
 * whose run kills the thread, gives the same outcome whether blocks run in block workers
 * (runtime.mode: blocks) or only inference runs in workers (runtime.mode: inference). The poison record is
 * dead-lettered byte for byte with MODEL_WORKER_CRASHED; its neighbours are decided. The incomplete policy
 * is fail-open, which would approve the poison record if the crash were left to it.
 *
 * Real ONNX models; the crash hooks are test task files: crashing-worker.ts (inference workers: a row whose
 * first model input is CRASH_MARKER) and crashing-block-worker.ts (block workers: a record whose value holds
 * CRASH_MARKER as a number). The join deadline is long, so each crash is known before it.
 */
import assert from 'node:assert/strict';
import { dirname } from 'node:path';
import { after, describe, test } from 'node:test';
import { WorkerCrashedError } from '../core/errors.js';
import { PiscinaRunner } from '../runtime/workers/piscina-runner.js';
import { HEADER } from '../pipeline/encode-outcome.js';
import type { InboundRecord, OutboundRecord } from '../pipeline/record.js';
import { Engine } from '../runtime/engine.js';
import { EmbeddedLog } from '../streams/embedded/embedded-log.js';
import { CRASH_MARKER } from './fixtures/actors/crashing-worker.js';
import { headerMap, headersOf } from './helpers/headers.js';
import { crashPipeline } from './helpers/crash.js';
import { samplePipeline, samplePipelinePath, transactions } from './helpers/pipelines.js';

const baseDir = dirname(samplePipelinePath);
const EVENTS = 12;
const POISON_AT = 5;

function records(): { input: OutboundRecord[]; poisonId: string } {
  const events = transactions(EVENTS, 41).map(({ event }) => event);
  events[POISON_AT]!['ip_risk'] = CRASH_MARKER;
  const input = events.map((event, i): OutboundRecord => ({
    topic: 'transactions',
    key: String(event['key']),
    // Bytes a decoder would not give back as they were (whitespace, a non-ASCII name) prove the dead letter is the input itself.
    value: i === POISON_AT ? `${JSON.stringify(event).slice(0, -1)},  "note":"caf\u00e9"}` : JSON.stringify(event),
    headers: headersOf({ 'x-trace-id': `t-${i}` }),
  }));
  return { input, poisonId: String(events[POISON_AT]!['id']) };
}

async function run(engine: Engine, input: readonly OutboundRecord[]): Promise<{ decisions: InboundRecord[]; dead: InboundRecord[] }> {
  const { output } = engine.pipeline;
  const log = new EmbeddedLog();
  log.createTopic('transactions', 1);
  log.createTopic(output.topic, 1);
  log.createTopic(output.deadLetter, 1);
  await log.producer().send(input);
  await engine.prepareStream();
  const stream = engine.stream(log.consumer({ groupId: 'crash', topics: ['transactions'] }), log.producer());
  await log.waitForRecords(output.topic, input.length - 1);
  await log.waitForRecords(output.deadLetter, 1);
  assert.deepEqual(await stream.drain(30_000), { drained: true, abandoned: 0 });
  return { decisions: log.read(output.topic, 0, 0), dead: log.read(output.deadLetter, 0, 0) };
}

describe('a worker thread that dies on one record', () => {
  const closers: Array<() => Promise<void>> = [];
  after(async () => {
    for (const close of closers) await close();
  });

  test('gives the same outcome in both placements: the poison record is dead-lettered byte for byte, its neighbours decided', { timeout: 180_000 }, async () => {
    const file = await samplePipeline();
    const { input, poisonId } = records();
    const poison = input[POISON_AT]!;

    const runner = new PiscinaRunner({ threads: 1, filename: new URL('./fixtures/actors/crashing-worker.js', import.meta.url) });
    const inference = await Engine.create(crashPipeline(file, 'inference'), { baseDir, runner });
    closers.push(() => inference.close(), () => runner.close());
    const blocks = await Engine.create(crashPipeline(file, 'blocks'), {
      baseDir, blockTaskFile: new URL('./fixtures/actors/crashing-block-worker.js', import.meta.url),
    });
    closers.push(() => blocks.close());

    const outcomes = [];
    for (const engine of [inference, blocks]) {
      const { decisions, dead } = await run(engine, input);
      const placement = engine.pipeline.placement.blocks === 'workers' ? 'blocks' : 'inference';
      assert.equal(dead.length, 1, `${placement}: one dead letter`);
      const letter = dead[0]!;
      assert.equal(headerMap(letter.headers)[HEADER.errorCode], WorkerCrashedError.code, placement);
      assert.ok(letter.key?.equals(Buffer.from(poison.key as string)), `${placement}: the key's bytes`);
      assert.ok(letter.value?.equals(Buffer.from(poison.value as string)), `${placement}: the value's bytes`);
      assert.deepEqual(letter.headers.slice(0, 1).map((h) => [h.key, h.value?.toString()]), [['x-trace-id', `t-${POISON_AT}`]], `${placement}: the input's headers first`);
      const decided = decisions.map((d) => headerMap(d.headers)[HEADER.eventId]);
      assert.equal(decided.length, EVENTS - 1, `${placement}: every neighbour decided`);
      assert.ok(!decided.includes(poisonId), `${placement}: the poison record is not decided`);
      outcomes.push({ decided: [...decided].sort(), dead: [letter.key?.toString('hex'), letter.value?.toString('hex'), headerMap(letter.headers)[HEADER.errorCode]] });
    }
    assert.deepEqual(outcomes[0], outcomes[1], 'the same outcome in both placements');
  });
});
