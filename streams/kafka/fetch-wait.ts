/**
 * How long a consumer's fetch may wait for records, when the config leaves it to the broker.
 *
 * A real broker answers a waiting fetch as soon as records arrive, so a long wait costs nothing there and
 * Kafka's own default (`BROKER_FETCH_WAIT_MS`, 500 ms) keeps an idle consumer quiet. librdkafka's mock
 * cluster, the broker of the tests, the bench and local trials, never wakes a waiting fetch: a fetch that
 * found no records is answered, empty, when its wait ends, and records that arrived meanwhile wait for the
 * next one. There every consumer hop costs up to the whole wait (a p50 of about 502 ms at 500), so against
 * the mock the wait is `MOCK_FETCH_WAIT_MS`.
 *
 * The mock is recognised by its cluster id: librdkafka names it `mockCluster` followed by hex digits
 * (rd_kafka_mock_cluster_new in rdkafka_mock.c); a real cluster's id is a base64 UUID of 22 characters.
 */
import { BROKER_FETCH_WAIT_MS, MOCK_FETCH_WAIT_MS } from '../../config/kafka-options.js';
import type { AdminLike } from './kafka-client.js';

/**
 * Where a fetch wait came from: the config (`configured`), the broker found to be a real one (`broker`) or
 * librdkafka's mock cluster (`mock-broker`), or Kafka's default because the broker could not be asked
 * (`unknown`: asked again before the next consumer starts).
 */
export type FetchWaitSource = 'configured' | 'broker' | 'mock-broker' | 'unknown';

export interface FetchWait {
  /** ms. */
  readonly ms: number;
  readonly source: FetchWaitSource;
  /** The cluster id the choice was made on (absent when configured or not known). */
  readonly clusterId?: string;
}

const MOCK_CLUSTER_ID = /^mockCluster[0-9a-f]+$/;

/** True for the cluster id of librdkafka's mock cluster (`mockCluster` and hex digits). */
export function isMockClusterId(clusterId: string): boolean {
  return MOCK_CLUSTER_ID.test(clusterId);
}

/** The fetch wait for the cluster with this id, when the config leaves it open. */
export function fetchWaitFor(clusterId: string): FetchWait {
  return isMockClusterId(clusterId)
    ? { ms: MOCK_FETCH_WAIT_MS, source: 'mock-broker', clusterId }
    : { ms: BROKER_FETCH_WAIT_MS, source: 'broker', clusterId };
}

/**
 * Asks the cluster for its id and chooses the wait from it. Never rejects: when the broker cannot be asked,
 * Kafka's default (`unknown`, with the error), which costs latency only on the mock.
 */
export async function detectFetchWait(admin: Pick<AdminLike, 'clusterId'>): Promise<{ wait: FetchWait; error?: unknown }> {
  try {
    return { wait: fetchWaitFor(await admin.clusterId()) };
  } catch (error) {
    return { wait: { ms: BROKER_FETCH_WAIT_MS, source: 'unknown' }, error };
  }
}
