/**
 * Records encoded by another implementation (Python's msgpack, a JSON file with a BOM), driven through the
 * engine's stream ingest on the embedded transport: they are decided, not dead-lettered.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { IntegerRangeError, UnsupportedValueError } from '../core/errors.js';
import { Engine } from '../runtime/engine.js';
import { HEADER } from '../pipeline/encode-outcome.js';
import { EmbeddedLog } from '../streams/embedded/embedded-log.js';
import { relaxedTimeouts, samplePipeline, samplePipelinePath } from './helpers/pipelines.js';
import { headerText } from '../pipeline/headers.js';

const FOREIGN = join(fileURLToPath(new URL('../../', import.meta.url)), 'test/fixtures/foreign');
const fixture = (name: string): Buffer => readFileSync(join(FOREIGN, name));

describe('foreign-encoded records through the engine', () => {
  let engine: Engine;
  before(async () => {
    engine = await Engine.create(relaxedTimeouts(await samplePipeline()), { baseDir: dirname(samplePipelinePath) });
  });
  after(async () => {
    await engine.close();
  });

  test('a uint64 ts, a timestamp-extension ts and a JSON BOM are decided; out-of-range and bin values are dead letters with their codes', async () => {
    const { input, output } = engine.pipeline;
    assert.equal(input.format, 'auto');
    const log = new EmbeddedLog();
    log.createTopic(input.topic, 1);
    log.createTopic(output.topic, 1);
    log.createTopic(output.deadLetter, 1);
    await log.producer().send([
      { topic: input.topic, key: 'card-py', value: fixture('tx-uint64-ts.msgpack'), headers: [] },
      { topic: input.topic, key: 'card-py', value: fixture('tx-timestamp-ext.msgpack'), headers: [] },
      { topic: input.topic, key: 'card-py', value: fixture('tx-bom.json'), headers: [] },
      { topic: input.topic, key: 'bad-1', value: fixture('uint64-max.msgpack'), headers: [] },
      { topic: input.topic, key: 'bad-2', value: fixture('bin-value.msgpack'), headers: [] },
    ]);
    const stream = engine.stream(log.consumer({ groupId: 'foreign', topics: [input.topic] }), log.producer());
    await log.waitForRecords(output.topic, 3);
    await log.waitForRecords(output.deadLetter, 2);
    assert.deepEqual(await stream.drain(10_000), { drained: true, abandoned: 0 });

    const decisions = log.read(output.topic, 0, 0);
    assert.deepEqual(decisions.map((r) => headerText(r.headers, HEADER.eventId)).sort(), ['j-1', 'py-1', 'py-2']);
    for (const d of decisions) {
      const body = JSON.parse(d.value?.toString() ?? '{}') as { action: string; completeness: Record<string, string> };
      assert.equal(body.completeness['gbt'], 'ok');
      assert.ok(['approve', 'review', 'decline'].includes(body.action));
    }
    const dead = log.read(output.deadLetter, 0, 0);
    assert.deepEqual(dead.map((r) => [r.key?.toString(), headerText(r.headers, HEADER.errorCode)]), [
      ['bad-1', IntegerRangeError.code],
      ['bad-2', UnsupportedValueError.code],
    ]);
    assert.deepEqual(dead[0]?.value, fixture('uint64-max.msgpack'), 'the dead letter keeps the original bytes');
  });
});
