/**
 * Where the Kafka targets run: librdkafka's mock cluster on loopback (the test broker, started per target
 * so every target starts from an empty broker), or an existing cluster given with `--brokers`.
 */
import { Kafka, logLevel } from 'kafkajs';
import { MOCK_FETCH_WAIT_MS } from '../../config/kafka-options.js';
import { TransportError } from '../../core/errors.js';
import type { ConsumerTimings } from './kafka-sut.js';

export interface KafkaCluster {
  readonly brokers: readonly string[];
  /** 'mock' for the embedded test broker, else the bootstrap list as given. */
  readonly kind: 'mock' | 'external';
  readonly timings: ConsumerTimings;
  /**
   * Creates a topic with one replica. `configs` (e.g. `cleanup.policy: compact`) are set on an external
   * cluster; the mock broker's own API takes none, so there they are not applied.
   */
  createTopic(name: string, partitions: number, configs?: Readonly<Record<string, string>>): Promise<void>;
  stop(): Promise<void>;
}

/** Timings for a real cluster: quick rebalances, and a fetch wait short enough not to dominate latency. */
const EXTERNAL_TIMINGS: ConsumerTimings = { sessionTimeout: 10_000, rebalanceTimeout: 10_000, heartbeatInterval: 1_000, maxWaitTimeInMs: 100 };

/** The fetch wait of every Kafka client against the mock broker (see startMockCluster): the daemon's, when it detects the mock. */
export { MOCK_FETCH_WAIT_MS };

/**
 * Starts the mock broker. It lives in mock-kafka/ (shared with the tests) and needs librdkafka-dev to
 * build; it is imported only when a Kafka target runs without `--brokers`.
 */
export async function startMockCluster(): Promise<KafkaCluster> {
  const { startMockBroker, MOCK_CONSUMER_TIMINGS } = await import('../../mock-kafka/mock-broker.js');
  const broker = await startMockBroker({ brokers: 1 });
  return {
    brokers: broker.bootstrap,
    kind: 'mock',
    // The mock answers a fetch that finds no records only when maxWaitTimeInMs has passed, even if records
    // arrive meanwhile (no long-poll wake-up): every consumer hop would add up to that wait to latency.
    timings: { ...MOCK_CONSUMER_TIMINGS, maxWaitTimeInMs: MOCK_FETCH_WAIT_MS },
    createTopic: (name, partitions) => broker.createTopic(name, partitions, 1),
    stop: () => broker.stop(),
  };
}

export function externalCluster(brokers: readonly string[]): KafkaCluster {
  const admin = new Kafka({ clientId: 'verdict-bench-admin', brokers: [...brokers], logLevel: logLevel.NOTHING }).admin();
  let connected: Promise<void> | undefined;
  return {
    brokers,
    kind: 'external',
    timings: EXTERNAL_TIMINGS,
    createTopic: async (name, partitions, configs = {}) => {
      connected ??= admin.connect();
      await connected;
      try {
        const configEntries = Object.entries(configs).map(([configName, value]) => ({ name: configName, value }));
        await admin.createTopics({ topics: [{ topic: name, numPartitions: partitions, configEntries }], waitForLeaders: true });
      } catch (err) {
        throw new TransportError(`cannot create topic ${name}: ${(err as Error).message}`, { retryable: false, cause: err });
      }
    },
    stop: async () => {
      if (connected !== undefined) await admin.disconnect();
    },
  };
}
