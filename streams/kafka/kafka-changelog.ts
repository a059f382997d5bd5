/**
 * A Kafka changelog topic (streams/types.ts `ChangelogStore`): created compacted with the input topic's
 * partition count when absent, and read back partition by partition on a restore.
 *
 * Compaction keeps each key's latest record, so the topic stays about one record per key held, however long
 * the daemon runs. (The test broker, librdkafka's mock cluster, neither compacts nor keeps more than about
 * 5 MiB per partition: tests size their runs to fit.)
 */
import { ConfigError } from '../../core/errors.js';
import type { ChangelogStore } from '../types.js';
import type { AdminLike, KafkaClientFactory } from './kafka-client.js';

/** The topic configs a changelog is created with: compacted, as Kafka Streams creates its changelogs. */
export const CHANGELOG_TOPIC_CONFIGS: Readonly<Record<string, string>> = { 'cleanup.policy': 'compact' };

export class KafkaChangelog implements ChangelogStore {
  readonly #factory: KafkaClientFactory;
  #admin: AdminLike | undefined;

  constructor(factory: KafkaClientFactory) {
    this.#factory = factory;
  }

  async prepare(topic: string, inputTopic: string): Promise<void> {
    const admin = this.#adminClient();
    const partitions = await admin.partitionCount(inputTopic);
    if (partitions === null) throw new ConfigError(`input topic ${inputTopic} does not exist`, { details: { topic: inputTopic } });
    const existing = await admin.partitionCount(topic);
    if (existing === null) {
      await admin.createTopic(topic, partitions, CHANGELOG_TOPIC_CONFIGS);
      return;
    }
    if (existing !== partitions) {
      throw new ConfigError(`changelog topic ${topic} has ${existing} partitions, the input topic ${inputTopic} ${partitions}: they must match`, {
        details: { topic, partitions: existing, inputPartitions: partitions },
      });
    }
  }

  async read(topic: string, partitions: readonly number[], onRecord: (partition: number, key: Buffer | null, value: Buffer | null) => void, signal: AbortSignal): Promise<void> {
    const wanted = new Set(partitions);
    const ends = new Map<number, number>();
    for (const { partition, low, high } of await this.#adminClient().topicOffsets(topic)) {
      // An empty partition (nothing written, or everything deleted) needs no read at all.
      if (wanted.has(partition) && high > low) ends.set(partition, high);
    }
    await this.#factory.readPartitions(topic, ends, onRecord, signal);
  }

  /** Disconnects the admin client, if one was made. */
  async close(): Promise<void> {
    const admin = this.#admin;
    this.#admin = undefined;
    await admin?.disconnect();
  }

  #adminClient(): AdminLike {
    this.#admin ??= this.#factory.admin();
    return this.#admin;
  }
}
