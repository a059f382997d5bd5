/**
 * `verdict generate`: generated card transactions (bench/generator.ts, with a few malformed records) produced
 * to a Kafka topic at a steady rate until SIGTERM/SIGINT, or until `--count` events are offered. The load of
 * the compose file; also handy against any cluster running the sample pipeline.
 */
import { Command } from 'commander';
import { startFeed } from '../bench/feed.js';
import { kafkaProducerSchema } from '../config/kafka-options.js';
import { preciseScheduler } from '../core/clock.js';
import { createLogger } from '../core/log.js';
import { kafkajsClientFactory } from '../streams/kafka/kafkajs-client.js';
import { brokerList, DEFAULT_LOG_LEVEL, fraction, positive, positiveInt } from './option-parsers.js';

interface GenerateCliOptions {
  readonly brokers: string[];
  readonly topic: string;
  readonly rate: number;
  readonly count?: number;
  readonly seed: number;
  readonly fraudRate: number;
  readonly poisonRate: number;
}

export function generateCommand(): Command {
  return new Command('generate')
    .description('produce generated card transactions to a Kafka topic at a steady rate, until stopped')
    .requiredOption('--brokers <list>', 'bootstrap brokers, host:port,…', brokerList)
    .option('--topic <topic>', 'topic to produce to (the sample pipeline\'s input)', 'transactions')
    .option('--rate <events/s>', 'offered load, open loop', positive('rate'), 200)
    .option('--count <n>', 'stop after n events (default: run until SIGTERM/SIGINT)', positiveInt)
    .option('--seed <n>', 'generator seed', positiveInt, 42)
    .option('--fraud-rate <p>', 'share of fraudulent transactions', fraction, 0.02)
    .option('--poison-rate <p>', 'share of malformed records (to show the dead-letter path)', fraction, 0.001)
    .action(async function (this: Command, opts: GenerateCliOptions) {
      const logger = createLogger({ level: this.optsWithGlobals<{ logLevel?: string }>().logLevel ?? DEFAULT_LOG_LEVEL });
      const factory = kafkajsClientFactory({ brokers: opts.brokers, clientId: 'verdict-generate' }, logger);
      const producer = factory.producer(kafkaProducerSchema.parse({}));
      await producer.connect();
      process.stdout.write(`generate: ${opts.rate} events/s to ${opts.topic} on ${opts.brokers.join(',')}\n`);
      const feed = startFeed({
        producer, topic: opts.topic, rate: opts.rate, seed: opts.seed, fraudRate: opts.fraudRate, poisonRate: opts.poisonRate,
        // Ids unique per run: a restarted generator must not repeat the previous run's event ids.
        idPrefix: `g${Date.now().toString(36)}-`,
        clock: preciseScheduler, logger,
        ...(opts.count === undefined ? {} : { count: opts.count }),
      });
      const stop = (): void => feed.stop();
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
      const report = await feed.done;
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
      await producer.disconnect();
      process.stdout.write(`generate: sent ${report.sent}, failed ${report.failed}\n`);
      if (report.failed > 0) process.exitCode = 1;
    });
}
