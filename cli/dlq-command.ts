/**
 * `verdict dlq replay`: re-injects dead letters into the input topic after a fix (streams/dlq-replay.ts),
 * prints what it read, matched and replayed, and exits.
 */
import { Command } from 'commander';
import { config as loadDotenv } from 'dotenv';
import { loadDaemonConfig } from '../config/load-daemon.js';
import { asVerdictError, ConfigError } from '../core/errors.js';
import { createLogger } from '../core/log.js';
import { replayDeadLetters, type DlqReplayReport } from '../streams/dlq-replay.js';
import type { KafkaConnection } from '../streams/kafka/kafka-client.js';
import { kafkajsClientFactory } from '../streams/kafka/kafkajs-client.js';
import { brokerList, DEFAULT_LOG_LEVEL, positiveInt } from './option-parsers.js';

interface ReplayCliOptions {
  readonly brokers?: string[];
  readonly config?: string;
  readonly envFile: string;
  readonly from: string;
  readonly to: string;
  readonly code?: string[];
  readonly max?: number;
  readonly dryRun?: boolean;
}

export function formatReplayReport(report: DlqReplayReport, options: { from: string; to: string; dryRun: boolean }): string {
  const codes = Object.entries(report.byCode).map(([code, n]) => `${code}=${n}`).join(' ');
  const lines = [
    `dlq replay ${options.from} -> ${options.to}: read ${report.read}, matched ${report.matched}, replayed ${report.replayed}${options.dryRun ? ' (dry run: nothing produced)' : ''}`,
  ];
  if (codes.length > 0) lines.push(`  matched by code: ${codes}`);
  for (const d of report.payloadDropped) {
    lines.push(`  not replayed (written without its payload): read the input again from ${d.topic}/${d.partition}/${d.offset}`);
  }
  for (const p of report.incomplete) {
    lines.push(`  incomplete: partition ${p.partition} stopped at offset ${p.reached} of ${p.highWatermark}`);
  }
  return `${lines.join('\n')}\n`;
}

/** The Kafka connection: the daemon config's `kafka` block if given (TLS, SASL), brokers from the flag first. */
async function connection(opts: ReplayCliOptions): Promise<KafkaConnection> {
  if (opts.config === undefined) {
    if (opts.brokers === undefined) throw new ConfigError('--brokers or --config is required');
    return { brokers: opts.brokers, clientId: 'verdict-dlq-replay' };
  }
  loadDotenv({ path: opts.envFile, quiet: true });
  const { kafka } = (await loadDaemonConfig(opts.config)).config;
  const { ssl, sasl, connectionTimeout, requestTimeout, logLevel } = kafka;
  return {
    brokers: opts.brokers ?? kafka.brokers, clientId: `${kafka.clientId}-dlq-replay`,
    ssl, sasl, connectionTimeout, requestTimeout, logLevel,
  };
}

export function dlqCommand(): Command {
  const dlq = new Command('dlq').description('work with the dead-letter topic');
  dlq
    .command('replay')
    .description('re-produce dead letters (original key, value and headers) to the input topic, up to the watermarks at start')
    .requiredOption('--from <topic>', 'dead-letter topic to read')
    .requiredOption('--to <topic>', 'input topic to produce to')
    .option('--brokers <list>', 'bootstrap brokers, host:port,…', brokerList)
    .option('--config <file>', 'take the Kafka connection (brokers, TLS, SASL) from this daemon config')
    .option('--env-file <file>', 'environment file loaded before --config', '.env')
    .option('--code <code...>', 'replay only dead letters with these verdict-error-code values')
    .option('--max <n>', 'replay at most n records', positiveInt)
    .option('--dry-run', 'read and count only; produce nothing')
    .action(async function (this: Command, opts: ReplayCliOptions) {
      const level = this.optsWithGlobals<{ logLevel?: string }>().logLevel ?? DEFAULT_LOG_LEVEL;
      const logger = createLogger({ level });
      try {
        const factory = kafkajsClientFactory(await connection(opts), logger);
        const report = await replayDeadLetters(factory, {
          from: opts.from, to: opts.to, codes: opts.code ?? [], dryRun: opts.dryRun === true, logger,
          ...(opts.max === undefined ? {} : { max: opts.max }),
        });
        process.stdout.write(formatReplayReport(report, { from: opts.from, to: opts.to, dryRun: opts.dryRun === true }));
        if (report.incomplete.length > 0) process.exitCode = 2;
      } catch (err) {
        const code = asVerdictError(err).code;
        process.stderr.write(`error ${code}: ${(err as Error).message}\n`);
        process.exitCode = 1;
      }
    });
  return dlq;
}
