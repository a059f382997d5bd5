/**
 * librdkafka's native Producer (@confluentinc/kafka-javascript) used directly, as a team would use it: for
 * the passthrough-librdkafka baseline and the producer-acks micro-benchmark. It takes Verdict's producer
 * settings (streams/kafka/librdkafka-config.ts: acks -1, murmur2_random, Nagle off, …) and nothing else of
 * Verdict's: no null-header or whole-round routing, no refusal mapping. A round of records is done when
 * librdkafka confirmed each of them, learnt one of two ways:
 *
 * - `per-record` (Verdict's way): a delivery report per record (`dr_cb`, served by a background poll
 *   thread), counted down per round; a round with a failed record rejects;
 * - `flush`: `delivery.report.only.error=true` and one `flush()` after the round's records; error reports
 *   are only counted (`errors`): they cannot be traced to a round.
 */
import type { LibrdkafkaConfig, LibrdkafkaDeliveryReport, LibrdkafkaError, LibrdkafkaHeader, LibrdkafkaModule, LibrdkafkaProducerClient } from '../../streams/kafka/librdkafka-binding.js';

export type RoundAcks = 'per-record' | 'flush';

/** One record as the binding takes it. */
export interface RawRecord {
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly headers: readonly LibrdkafkaHeader[];
  /** Absent or null: the partitioner picks (murmur2 of the key). */
  readonly partition?: number | null;
}

/** A flush waits at most this long (ms) for a round. */
const FLUSH_TIMEOUT_MS = 30_000;

export class LibrdkafkaRounds {
  readonly #client: LibrdkafkaProducerClient;
  readonly #acks: RoundAcks;
  readonly #rounds = new Map<number, { pending: number; failure: LibrdkafkaError | null; resolve: () => void; reject: (err: Error) => void }>();
  #next = 0;
  /** Delivery reports with an error, all rounds together. */
  errors = 0;

  private constructor(client: LibrdkafkaProducerClient, acks: RoundAcks) {
    this.#client = client;
    this.#acks = acks;
  }

  /** Connects a producer with `config` (librdkafkaConfig's); rejects with the binding's error message. */
  static async connect(module: LibrdkafkaModule, config: LibrdkafkaConfig, acks: RoundAcks): Promise<LibrdkafkaRounds> {
    const client = new module.Producer(acks === 'flush' ? { ...config, 'delivery.report.only.error': true } : config);
    const rounds = new LibrdkafkaRounds(client, acks);
    client.on('delivery-report', (err, report) => rounds.#reported(err, report));
    await new Promise<void>((resolve, reject) => client.connect({ timeout: 10_000 }, (err) => (err ? reject(new Error(`librdkafka connect: ${err.message}`)) : resolve())));
    client.setPollInBackground(true);
    return rounds;
  }

  /**
   * Produces the records to `topic` and resolves when each is confirmed (per the acks mode). Rejects with
   * the first error of a record (per-record), or the flush's error; a full local queue throws from produce.
   */
  send(topic: string, records: readonly RawRecord[]): Promise<void> {
    if (records.length === 0) return Promise.resolve();
    if (this.#acks === 'flush') {
      for (const r of records) this.#client.produce(topic, r.partition ?? null, r.value, r.key, null, null, r.headers);
      return new Promise((resolve, reject) => this.#client.flush(FLUSH_TIMEOUT_MS, (err) => (err ? reject(new Error(`librdkafka flush: ${err.message}`)) : resolve())));
    }
    const id = this.#next;
    this.#next = (this.#next + 1) % Number.MAX_SAFE_INTEGER;
    const done = new Promise<void>((resolve, reject) => this.#rounds.set(id, { pending: records.length, failure: null, resolve, reject }));
    try {
      for (const r of records) this.#client.produce(topic, r.partition ?? null, r.value, r.key, null, id, r.headers);
    } catch (err) {
      // Refused locally (queue full, unknown partition): the round fails; reports of its queued records find no round.
      this.#rounds.delete(id);
      return Promise.reject(new Error(`librdkafka produce: ${(err as LibrdkafkaError).message}`));
    }
    return done;
  }

  #reported(err: LibrdkafkaError | null, report: LibrdkafkaDeliveryReport): void {
    if (err !== null && err !== undefined) this.errors++;
    if (typeof report.opaque !== 'number') return;
    const round = this.#rounds.get(report.opaque);
    if (round === undefined) return;
    if (err !== null && err !== undefined) round.failure ??= err;
    if (--round.pending > 0) return;
    this.#rounds.delete(report.opaque);
    if (round.failure === null) round.resolve();
    else round.reject(new Error(`librdkafka delivery: ${round.failure.message}`));
  }

  /** Waits for what is queued (up to 10 s), then disconnects. */
  async disconnect(): Promise<void> {
    await new Promise<void>((resolve) => this.#client.flush(10_000, () => resolve()));
    await new Promise<void>((resolve) => this.#client.disconnect(() => resolve()));
  }
}
