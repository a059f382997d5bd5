/**
 * The naive baseline: what a team writes first. A kafkajs `eachMessage` consumer parses each event, maps
 * its features, runs the three models one row at a time on the main thread (the MLP only when the trees
 * see risk, as the pipeline's cascade does), applies the rules as plain code and awaits a `send` of the
 * decision before taking the next message. Bad input goes to the dead-letter topic.
 */
import { DecodeError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { OutboundHeader, OutboundRecord, RecordHeader } from '../../pipeline/record.js';
import { MLP_THRESHOLD, deadLetterRecord, decide, decisionRecord, loadBaselineModels, runModel } from './baseline-models.js';
import { connectBaseline, type KafkaSutConfig, type RunningSut } from './kafka-sut.js';
import { compileBenchPipeline } from './pipeline.js';

type KafkajsHeaders = Record<string, Buffer | string | (Buffer | string)[] | undefined>;

function headerList(headers: KafkajsHeaders | undefined): RecordHeader[] {
  const out: RecordHeader[] = [];
  for (const [key, v] of Object.entries(headers ?? {})) {
    for (const value of Array.isArray(v) ? v : [v]) out.push({ key, value: value === undefined ? null : Buffer.from(value) });
  }
  return out;
}

/** kafkajs's headers object: the naive baseline produces with plain kafkajs, as a naive user would. */
function kafkajsHeaders(headers: readonly OutboundHeader[]): Record<string, Buffer | string> {
  const out: Record<string, Buffer | string> = {};
  for (const h of headers) if (h.value !== null) out[h.key] = h.value;
  return out;
}

export async function startNaive(config: KafkaSutConfig, logger: Logger): Promise<RunningSut> {
  const pipeline = await compileBenchPipeline(config.pipelinePath, logger, config.topics);
  const models = await loadBaselineModels(pipeline);
  const width = models.features.width;
  const { consumer, producer } = await connectBaseline(config);
  await consumer.run({
    eachMessage: async ({ partition, message }) => {
      const value = message.value ?? Buffer.alloc(0);
      let record: OutboundRecord;
      try {
        let event: Record<string, unknown>;
        try {
          event = JSON.parse(value.toString('utf8')) as Record<string, unknown>;
        } catch (err) {
          throw new DecodeError(`value is not valid JSON: ${(err as Error).message}`, { cause: err });
        }
        const state = models.state(partition, Number(message.offset), message.key, event);
        const row = models.features.map(event, undefined, 0, state);
        const gbt = (await runModel(models.gbt, row, 1, width))[0] ?? 0;
        const anomaly = (await runModel(models.anomaly, row, 1, width))[0] ?? 0;
        const mlp = gbt > MLP_THRESHOLD ? (await runModel(models.mlp, row, 1, width))[0] ?? 0 : undefined;
        const decision = decide(gbt, anomaly, mlp, event, state);
        record = decisionRecord(models, { id: String(event['id']), key: String(event['key']), decision, mlpRan: mlp !== undefined }, message.key);
      } catch (err) {
        record = deadLetterRecord(models, err, message.key, value, headerList(message.headers));
      }
      await producer.send({ topic: record.topic, messages: [{ key: record.key, value: record.value, headers: kafkajsHeaders(record.headers) }], acks: -1 });
    },
  });
  return {
    settings: { client: 'kafkajs eachMessage → send per decision', acks: -1, inference: 'onnxruntime-node, one row per run, main thread' },
    stop: async () => {
      await consumer.disconnect();
      await producer.disconnect();
      await models.close();
    },
  };
}
