/**
 * Every Kafka scenario that produces through Verdict runs once per producer client (issue 14): kafkajs, and
 * librdkafka's native producer. `describeEachProducer` is the one way a test file does it. The librdkafka
 * runs never skip: when the optional binding is not installed, each of its tests fails, saying so.
 */
import { before, describe, type SuiteContext, type TestOptions } from 'node:test';
import { LIBRDKAFKA_PACKAGE, loadLibrdkafka } from '../../streams/kafka/librdkafka-binding.js';

/** The two producers, by their config names (`kafka.producer.client`); `auto` is one of them at run time. */
export const PRODUCER_CLIENTS = ['kafkajs', 'librdkafka'] as const;
export type TestProducerClient = (typeof PRODUCER_CLIENTS)[number];

/** Rejects, with how to get it, when the librdkafka binding cannot be loaded. */
export async function requireLibrdkafka(): Promise<void> {
  const loaded = await loadLibrdkafka();
  if ('missing' in loaded) {
    throw new Error(`the librdkafka producer's tests need ${LIBRDKAFKA_PACKAGE}, and ${loaded.missing}: build it with `
      + 'CKJS_LINKING=dynamic npm ci (README "Choosing the producer"); these tests fail rather than skip');
  }
}

/**
 * `describe(name)` once per producer client, as `name [kafkajs producer]` and `name [librdkafka producer]`;
 * `body` declares the hooks and tests, producing through `client`. The librdkafka suite first checks the
 * binding loads (a failing `before` fails every test of the suite).
 */
export function describeEachProducer(name: string, options: TestOptions, body: (client: TestProducerClient, suite: SuiteContext) => void): void {
  for (const client of PRODUCER_CLIENTS) {
    void describe(`${name} [${client} producer]`, options, (suite) => {
      if (client === 'librdkafka') before(requireLibrdkafka);
      body(client, suite);
    });
  }
}
