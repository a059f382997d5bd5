/**
 * Per-file setup for the daemon tests: one mock cluster, a kafkajs admin and producer on it, and every
 * daemon started through `daemon()` killed at the end even when a test failed halfway.
 */
import type { Admin, Kafka, Producer } from 'kafkajs';
import { startMockBroker, type MockBroker } from '../../../mock-kafka/mock-broker.js';
import { DaemonProcess } from './daemon-process.js';
import { newKafka, newProducer } from './kafka-io.js';

export interface Harness {
  readonly broker: MockBroker;
  readonly kafka: Kafka;
  readonly admin: Admin;
  readonly producer: Producer;
  /** Starts a daemon process, tracked for cleanup. */
  daemon(configPath: string, name: string): Promise<DaemonProcess>;
  /** SIGKILLs the daemons still alive (after a failed test), then closes the clients and the cluster. */
  close(): Promise<void>;
}

export async function startHarness(name: string, brokers = 3): Promise<Harness> {
  const broker = await startMockBroker({ brokers });
  const kafka = newKafka(broker, `test-${name}`);
  const admin = kafka.admin();
  const producer = newProducer(kafka);
  await admin.connect();
  await producer.connect();
  const daemons = new Set<DaemonProcess>();
  return {
    broker, kafka, admin, producer,
    async daemon(configPath, daemonName) {
      const d = await DaemonProcess.start(configPath, daemonName);
      daemons.add(d);
      return d;
    },
    async close() {
      await Promise.all([...daemons].filter((d) => d.alive).map((d) => d.kill()));
      await producer.disconnect().catch(() => undefined);
      await admin.disconnect().catch(() => undefined);
      await broker.stop();
    },
  };
}
