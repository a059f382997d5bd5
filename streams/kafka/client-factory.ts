/**
 * The client factory Verdict's Kafka transport uses: kafkajs for consuming, administration and changelog
 * reads, and for producing whichever client the producer settings name (`kafka.producer.client`, see
 * config/kafka-options.ts): kafkajs, or librdkafka's native producer (librdkafka-producer.ts), which keeps
 * a kafkajs producer beside it for what librdkafka cannot write exactly.
 */
import type { Logger } from '../../core/log.js';
import type { KafkaClientFactory, KafkaConnection } from './kafka-client.js';
import { kafkajsClientFactory } from './kafkajs-client.js';
import { LibrdkafkaProducer } from './librdkafka-producer.js';

export function kafkaClientFactory(connection: KafkaConnection, logger: Logger): KafkaClientFactory {
  const kafkajs = kafkajsClientFactory(connection, logger);
  return {
    ...kafkajs,
    producer: (settings) => (settings.client === 'kafkajs'
      ? kafkajs.producer(settings)
      : new LibrdkafkaProducer(connection, settings, { companion: kafkajs.producer(settings), logger })),
  };
}
