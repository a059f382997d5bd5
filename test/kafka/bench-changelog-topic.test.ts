/**
 * A Kafka bench target on the sample pipeline (which keeps per-key state), against the mock broker: the
 * topics it makes include the state's changelog, so the stream's changelog check finds it with the input's
 * partition count (the mock refuses kafkajs's CreateTopics, and without the topic the restore retries for ever).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { silentLogger } from '../../core/log.js';
import { defaultPipelinePath } from '../../core/paths.js';
import { startMockCluster, type KafkaCluster } from '../../bench/targets/kafka-cluster.js';
import { createKafkaTargetTopics } from '../../bench/targets/kafka-topics.js';
import { loadBenchPipeline } from '../../bench/targets/pipeline.js';
import { KafkaChangelog } from '../../streams/kafka/kafka-changelog.js';
import { kafkajsClientFactory } from '../../streams/kafka/kafkajs-client.js';

let cluster: KafkaCluster;
before(async () => { cluster = await startMockCluster(); });
after(async () => { await cluster.stop(); });

test('the changelog a Kafka target makes on the mock broker passes the stream\'s changelog check and reads empty', { timeout: 60_000 }, async () => {
  const { file } = await loadBenchPipeline(defaultPipelinePath);
  const made = await createKafkaTargetTopics(cluster, { prefix: 'bench-t-verdict-kafka', partitions: 3, kind: 'verdict', pipeline: file });
  assert.notEqual(made.changelog, null);
  const changelog = made.changelog!;
  const factory = kafkajsClientFactory({ brokers: [...cluster.brokers], clientId: 'bench-changelog-test', logLevel: 'nothing' }, silentLogger);
  const store = new KafkaChangelog(factory);
  const admin = factory.admin();
  try {
    await store.prepare(changelog, made.topics.input);
    assert.equal(await admin.partitionCount(changelog), 3);
    const seen: number[] = [];
    await store.read(changelog, [0, 1, 2], (p) => seen.push(p), new AbortController().signal);
    assert.deepEqual(seen, []);
  } finally {
    await store.close();
    await admin.disconnect();
  }
});
