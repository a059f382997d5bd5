/**
 * Entry point of the child process that runs one Kafka system under test (see kafka-sut.ts). It starts the
 * system on `start`, answers `stats` with its own resident memory and CPU time (the process's and its main thread's), and stops and exits on `stop` or when the
 * parent goes away.
 */
import { createLogger } from '../../core/log.js';
import { createMetrics } from '../../core/metrics.js';
import { startMetricsServer, type MetricsServer } from '../../core/metrics-server.js';
import { clockTicks, mainThreadCpuUs } from '../thread-cpu.js';
import type { ChildMessage, KafkaSutConfig, ParentMessage, RunningSut } from './kafka-sut.js';
import { startNaive } from './naive-kafka.js';
import { startPassthrough } from './passthrough-kafka.js';
import { startVerdictKafka } from './verdict-kafka.js';

let running: RunningSut | undefined;
let server: MetricsServer | undefined;

const reply = (m: ChildMessage): void => {
  process.send?.(m);
};

async function start(config: KafkaSutConfig): Promise<void> {
  // Read once now (it runs `getconf`), not during a level's first stats request.
  clockTicks();
  const logger = createLogger({ level: config.logLevel, name: `bench-${config.kind}` });
  // Served over HTTP as the daemon serves its own (process metrics included, `verdict_` prefix), so the
  // harness reads the system under test's memory, event-loop delay and bounds the way an operator would.
  // The baselines record nothing of Verdict's: they serve the process metrics only.
  const metrics = createMetrics({ processMetrics: true });
  switch (config.kind) {
    case 'verdict': running = await startVerdictKafka(config, logger, metrics); break;
    case 'passthrough': running = await startPassthrough(config); break;
    case 'naive': running = await startNaive(config, logger); break;
  }
  const sut = running;
  server = await startMetricsServer({
    registry: metrics.registry, host: '127.0.0.1', port: 0, ready: () => running !== undefined,
    ...(sut.workerMetrics === undefined ? {} : { remote: sut.workerMetrics }),
  });
  reply({ type: 'started', settings: sut.settings, metricsPort: server.port });
}

async function stop(): Promise<void> {
  const sut = running;
  running = undefined;
  try {
    await sut?.stop();
    await server?.close();
  } finally {
    reply({ type: 'stopped' });
    process.disconnect?.();
    process.exit(0);
  }
}

process.on('message', (m: ParentMessage) => {
  switch (m.type) {
    case 'start':
      start(m.config).catch((err: unknown) => reply({ type: 'error', message: (err as Error).message }));
      break;
    case 'stats': {
      const cpu = process.cpuUsage();
      reply({ type: 'stats', seq: m.seq, rssBytes: process.memoryUsage.rss(), cpuUs: cpu.user + cpu.system, mainThreadCpuUs: mainThreadCpuUs() });
      break;
    }
    case 'stop':
      void stop();
      break;
  }
});
// The parent died or closed the channel: nobody reads the outputs any more.
process.on('disconnect', () => {
  const sut = running;
  running = undefined;
  if (sut !== undefined) void sut.stop().finally(() => process.exit(0));
});
