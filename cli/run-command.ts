/** `verdict run --config <file>`: the daemon, until SIGTERM or SIGINT. */
import { Command } from 'commander';
import { config as loadDotenv } from 'dotenv';
import { loadDaemonConfig } from '../config/load-daemon.js';
import { createLogger } from '../core/log.js';
import { Daemon } from '../engine/daemon.js';

export function runCommand(): Command {
  return new Command('run')
    .description('run a pipeline between Kafka topics until stopped (SIGTERM/SIGINT drain gracefully)')
    .requiredOption('-c, --config <file>', 'daemon config YAML (see config/verdict.example.yaml)')
    .option('--env-file <file>', 'environment file to load before the config', '.env')
    .action(async (opts: { config: string; envFile: string }) => {
      loadDotenv({ path: opts.envFile, quiet: true });
      const loaded = await loadDaemonConfig(opts.config);
      const logger = createLogger({ level: process.env['VERDICT_LOG_LEVEL'] ?? loaded.config.log.level });
      const daemon = new Daemon(loaded, logger);
      let signals = 0;
      const onSignal = (signal: NodeJS.Signals): void => {
        signals++;
        if (signals > 1) {
          logger.warn({ signal }, 'second signal: exiting without draining');
          process.exit(130);
        }
        logger.info({ signal }, 'stopping');
        daemon.stop().then(
          (report) => { process.exitCode = report.drained ? 0 : 3; },
          () => { process.exitCode = 1; },
        );
      };
      process.on('SIGTERM', onSignal);
      process.on('SIGINT', onSignal);
      daemon.state$.subscribe((state) => {
        if (state === 'failed') process.exitCode = 1;
        // Tell a supervising process (and the tests) when the daemon is up, on stdout, once.
        if (state === 'running') process.stdout.write(`verdict running${daemon.metricsPort === undefined ? '' : ` metrics=${daemon.metricsPort}`}\n`);
      });
      await daemon.start();
    });
}
