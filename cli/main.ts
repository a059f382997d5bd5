#!/usr/bin/env node
/** The `verdict` command line: thin commands over the library. */
import { Command } from 'commander';
import { DEFAULT_LOG_LEVEL, fraction, positive } from './option-parsers.js';
import { createLogger } from '../core/log.js';
import { defaultPipelinePath } from '../core/paths.js';
import { asVerdictError } from '../core/errors.js';
import { adminCommand } from './admin-command.js';
import { benchCommand } from './bench-command.js';
import { formatSummary, runDemo } from './demo.js';
import { dlqCommand } from './dlq-command.js';
import { generateCommand } from './generate-command.js';
import { modelsCommand } from './models-command.js';
import { runCommand } from './run-command.js';
import { validateCommand } from './validate-command.js';

const program = new Command('verdict')
  .description('Real-time decisions from event streams, orchestrating several ONNX models')
  .option('--log-level <level>', 'pino log level (logs are JSON on stderr)', DEFAULT_LOG_LEVEL);

program
  .command('demo')
  .description('run the card-risk pipeline on the embedded transport with generated transactions')
  .option('--rate <events/s>', 'offered load, open loop', positive('rate'), 2000)
  .option('--duration <seconds>', 'how long to generate load', positive('duration'), 15)
  .option('--pipeline <file>', 'pipeline YAML', defaultPipelinePath)
  .option('--partitions <n>', 'input partitions', positive('partitions'), 4)
  .option('--seed <n>', 'generator seed', positive('seed'), 42)
  .option('--fraud-rate <p>', 'share of fraudulent transactions', fraction, 0.02)
  .option('--poison-rate <p>', 'share of malformed records (to show the dead-letter path)', fraction, 0.001)
  .action(async (opts: { rate: number; duration: number; pipeline: string; partitions: number; seed: number; fraudRate: number; poisonRate: number }) => {
    const logger = createLogger({ level: program.opts<{ logLevel: string }>().logLevel });
    const summary = await runDemo({
      pipelinePath: opts.pipeline, rate: opts.rate, durationS: opts.duration, partitions: opts.partitions,
      seed: opts.seed, fraudRate: opts.fraudRate, poisonRate: opts.poisonRate, logger, out: process.stdout,
    });
    process.stdout.write(formatSummary(summary, { rate: opts.rate, durationS: opts.duration, partitions: opts.partitions }));
    if (summary.decisions + summary.deadLetters !== summary.produced) process.exitCode = 1;
  });

program.addCommand(runCommand());
program.addCommand(validateCommand());
program.addCommand(modelsCommand());
program.addCommand(benchCommand());
program.addCommand(dlqCommand());
program.addCommand(generateCommand());
program.addCommand(adminCommand());

// A reader that stops early (`verdict validate … | head -1`) closes the pipe: that ends the output, not in error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code !== 'EPIPE') throw err;
  process.exit(0);
});

program.parseAsync(process.argv).catch((err: unknown) => {
  const code = asVerdictError(err).code;
  process.stderr.write(`error ${code}: ${(err as Error).message}\n`);
  process.exitCode = 1;
});
