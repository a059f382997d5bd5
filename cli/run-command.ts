/** `verdict run --config <file>`: the daemon, until SIGTERM or SIGINT. */
import { Command } from 'commander';
import { config as loadDotenv } from 'dotenv';
import { loadDaemonConfig } from '../config/load-daemon.js';
import { createLogger } from '../core/log.js';
import { Daemon } from '../runtime/daemon.js';

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
        // Exit once stopped rather than when the event loop empties: a client library can keep a socket open
        // after being closed (kafkajs, after a broker outage, keeps a dropped group coordinator connected),
        // and a stopped daemon must not linger. pino flushes its destination on exit.
        daemon.stop().then(
          (report) => process.exit(report.drained ? 0 : 3),
          () => process.exit(1),
        );
      };
      process.on('SIGTERM', onSignal);
      process.on('SIGINT', onSignal);
      daemon.state$.subscribe((state) => {
        if (state === 'failed') {
          process.exitCode = 1;
          // The failed daemon closes what it opened and the process ends when nothing is left; should a
          // handle stay open (see above), it still exits, once closing has had the drain timeout's time.
          // A raw, unref'd timer on purpose: it ends the process, not a piece of logic, and must not itself
          // keep the process alive; the daemon's own clock may be the very thing that is wedged.
          setTimeout(() => process.exit(1), loaded.config.shutdown.drainTimeoutMs).unref();
        }
        // Tell a supervising process (and the tests) when the daemon is up, on stdout, once.
        if (state === 'running') process.stdout.write(`verdict running${daemon.metricsPort === undefined ? '' : ` metrics=${daemon.metricsPort}`}\n`);
      });
      await daemon.start();
    });
}
