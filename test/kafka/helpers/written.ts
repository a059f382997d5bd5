/**
 * Reads topics back with a plain kafkajs consumer, bytes exact (headers in order through Verdict's record
 * codec), and says which producer wrote each record. The record batch header tells: kafkajs writes a
 * non-idempotent batch with producer epoch 0 and base sequence 0, librdkafka with -1 and -1 (Kafka's
 * "none"). The batch's first offset shows which records were appended together.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { KafkaMessage } from 'kafkajs';
import { MOCK_CONSUMER_TIMINGS, uniqueTopic, type MockBroker } from '../../../mock-kafka/mock-broker.js';
import type { RecordHeader } from '../../../pipeline/record.js';
import { installRecordCodec, WIRE_HEADERS } from '../../../streams/kafka/kafkajs-record-codec.js';
import { waitUntil } from '../../helpers/wait.js';
import { newKafka } from './kafka-io.js';

export type Writer = 'kafkajs' | 'librdkafka';

export interface WrittenRecord {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly headers: readonly RecordHeader[];
  readonly writer: Writer;
  /** The first offset of the record batch it was appended in. */
  readonly batch: number;
}

interface BatchContext {
  readonly firstOffset: string;
  readonly producerEpoch: number;
  readonly firstSequence: number;
}

function writerOf(context: BatchContext): Writer {
  if (context.producerEpoch === 0 && context.firstSequence === 0) return 'kafkajs';
  if (context.producerEpoch === -1 && context.firstSequence === -1) return 'librdkafka';
  throw new Error(`a record batch neither producer writes: epoch ${context.producerEpoch}, sequence ${context.firstSequence}`);
}

/**
 * Every record of `topics` from the beginning, once `count` arrived and nothing more came for 300 ms;
 * sorted by topic, partition and offset.
 */
export async function readWritten(broker: MockBroker, topics: readonly string[], count: number, timeoutMs = 30_000): Promise<WrittenRecord[]> {
  installRecordCodec();
  const consumer = newKafka(broker, 'written-reader').consumer({ groupId: uniqueTopic('g-written'), ...MOCK_CONSUMER_TIMINGS });
  const records: WrittenRecord[] = [];
  await consumer.connect();
  try {
    for (const topic of topics) await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachBatch: async ({ batch }) => {
        for (const m of batch.messages) {
          const message = m as KafkaMessage & { batchContext: BatchContext; [WIRE_HEADERS]: RecordHeader[] };
          records.push({
            topic: batch.topic, partition: batch.partition, offset: Number(message.offset), key: message.key, value: message.value,
            headers: message[WIRE_HEADERS], writer: writerOf(message.batchContext), batch: Number(message.batchContext.firstOffset),
          });
        }
        return Promise.resolve();
      },
    });
    await waitUntil(() => records.length >= count, `${count} records of ${topics.join(', ')}`, timeoutMs);
    let seen = -1;
    while (seen !== records.length) {
      seen = records.length;
      await sleep(300);
    }
  } finally {
    await consumer.disconnect();
  }
  return records.sort((a, b) => a.topic.localeCompare(b.topic) || a.partition - b.partition || a.offset - b.offset);
}
