/**
 * The passthrough baseline: the I/O ceiling. The same Kafka client as Verdict (kafkajs) consumes the input
 * topic batch by batch and produces every record, unchanged, to the output topic, with the same acks as
 * Verdict's sink (-1); kafkajs commits after each batch. No decoding, no models: what is left is the cost
 * of moving records through the client and the broker.
 */
import { connectBaseline, type KafkaSutConfig, type RunningSut } from './kafka-sut.js';

export async function startPassthrough(config: KafkaSutConfig): Promise<RunningSut> {
  const { consumer, producer } = await connectBaseline(config);
  await consumer.run({
    partitionsConsumedConcurrently: config.partitionsConsumedConcurrently,
    eachBatch: async ({ batch }) => {
      if (batch.messages.length === 0) return;
      await producer.sendBatch({
        topicMessages: [{
          topic: config.topics.output,
          messages: batch.messages.map((m) => ({ key: m.key, value: m.value, headers: m.headers ?? {} })),
        }],
        acks: -1,
      });
    },
  });
  return {
    settings: { client: 'kafkajs eachBatch → sendBatch', acks: -1, partitionsConsumedConcurrently: config.partitionsConsumedConcurrently },
    stop: async () => {
      await consumer.disconnect();
      await producer.disconnect();
    },
  };
}
