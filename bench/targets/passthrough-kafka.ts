/**
 * The passthrough baseline: the I/O ceiling. A kafkajs consumer (Verdict's consumer) takes the input topic
 * batch by batch and produces every record, unchanged, to the output topic, with the same acks as Verdict's
 * sink (-1); kafkajs commits after each batch, once every record of it is acknowledged. No decoding, no
 * models: what is left is the cost of moving records through the clients and the broker.
 *
 * It produces with either client, used directly (no Verdict code on the path):
 * - `passthrough`: kafkajs `sendBatch`;
 * - `passthrough-librdkafka`: librdkafka's native Producer with Verdict's settings and acknowledgement
 *   (a delivery report per record, the batch done when every record is reported: librdkafka-rounds.ts).
 *   Not Verdict's LibrdkafkaProducer: a baseline measures the client, and the difference between the two is
 *   Verdict's own cost (bench/micro/producer-acks.ts measures it alone).
 */
import { kafkaProducerSchema } from '../../config/kafka-options.js';
import { loadLibrdkafka, type LibrdkafkaHeader } from '../../streams/kafka/librdkafka-binding.js';
import { librdkafkaConfig } from '../../streams/kafka/librdkafka-config.js';
import { connectBaseline, connectBaselineConsumer, type KafkaSutConfig, type RunningSut } from './kafka-sut.js';
import { LibrdkafkaRounds, type RawRecord } from './librdkafka-rounds.js';
import { TargetUnavailableError } from './target.js';

type KafkajsHeaders = Record<string, Buffer | string | (Buffer | string)[] | undefined>;

/** kafkajs's headers object as the binding's list: one object a header, repeated names in order. */
function librdkafkaHeaders(headers: KafkajsHeaders | undefined): LibrdkafkaHeader[] {
  const out: LibrdkafkaHeader[] = [];
  for (const [key, v] of Object.entries(headers ?? {})) {
    for (const value of Array.isArray(v) ? v : [v]) if (value !== undefined) out.push({ [key]: Buffer.from(value) });
  }
  return out;
}

export async function startPassthrough(config: KafkaSutConfig): Promise<RunningSut> {
  return config.producerClient === 'librdkafka' ? startLibrdkafkaPassthrough(config) : startKafkajsPassthrough(config);
}

async function startKafkajsPassthrough(config: KafkaSutConfig): Promise<RunningSut> {
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
    settings: { client: 'kafkajs eachBatch → kafkajs sendBatch', consumer: 'kafkajs', producer: 'kafkajs', acks: -1, partitionsConsumedConcurrently: config.partitionsConsumedConcurrently },
    stop: async () => {
      await consumer.disconnect();
      await producer.disconnect();
    },
  };
}

async function startLibrdkafkaPassthrough(config: KafkaSutConfig): Promise<RunningSut> {
  const loaded = await loadLibrdkafka();
  if ('missing' in loaded) throw new TargetUnavailableError(`the librdkafka producer is unavailable: ${loaded.missing}`);
  // Verdict's producer defaults (acks -1, linger.ms 1, …), as `kafka.producer.client: librdkafka` gets them.
  const settings = kafkaProducerSchema.parse({ client: 'librdkafka' });
  const rounds = await LibrdkafkaRounds.connect(loaded.module, librdkafkaConfig({ brokers: config.brokers, clientId: config.clientId }, settings), 'per-record');
  const consumer = await connectBaselineConsumer(config);
  await consumer.run({
    partitionsConsumedConcurrently: config.partitionsConsumedConcurrently,
    eachBatch: async ({ batch }) => {
      if (batch.messages.length === 0) return;
      await rounds.send(config.topics.output, batch.messages.map((m): RawRecord => ({ key: m.key, value: m.value, headers: librdkafkaHeaders(m.headers) })));
    },
  });
  return {
    settings: {
      client: `kafkajs eachBatch → librdkafka ${loaded.module.librdkafkaVersion} native Producer (a delivery report per record)`,
      consumer: 'kafkajs', producer: 'librdkafka', librdkafka: loaded.module.librdkafkaVersion,
      acks: settings.acks, lingerMs: settings.lingerMs, partitioner: 'murmur2_random', partitionsConsumedConcurrently: config.partitionsConsumedConcurrently,
    },
    stop: async () => {
      await consumer.disconnect();
      await rounds.disconnect();
    },
  };
}
