/**
 * Backlog drain: how fast Verdict empties a backlog on the embedded log when nothing else runs, and what
 * each event costs in CPU (main thread, and the whole process with its inference worker). The closed-loop
 * ceiling of the hot path, free of the generator, the reader and the latency objective; `verdict bench`
 * is the open-loop measure. Run: `node dist/bench/micro/drain.js [events] [repeats] [pipeline.yaml]`.
 */
import { cpuUsage } from 'node:process';
import { silentLogger } from '../../core/log.js';
import { defaultPipelinePath } from '../../core/paths.js';
import { Engine } from '../../runtime/engine.js';
import { EmbeddedLog } from '../../streams/embedded/embedded-log.js';
import { createTransactionGenerator } from '../generator.js';

const EVENTS = Number(process.argv[2] ?? 100_000);
const REPEATS = Number(process.argv[3] ?? 3);
const PIPELINE = process.argv[4] ?? defaultPipelinePath;
const PARTITIONS = 4;

async function drainOnce(engine: Engine, round: number): Promise<{ eventsPerS: number; mainUs: number; processUs: number }> {
  const { input, output } = engine.pipeline;
  const log = new EmbeddedLog({ defaultPartitions: PARTITIONS, logger: silentLogger });
  log.createTopic(input.topic, PARTITIONS);
  log.createTopic(output.topic, PARTITIONS);
  log.createTopic(output.deadLetter, 1);
  const generator = createTransactionGenerator({ seed: 7 + round });
  const records = Array.from({ length: EVENTS }, () => {
    const { event } = generator.next();
    return { topic: input.topic, key: event.key, value: JSON.stringify(event), headers: [] };
  });
  await log.producer().send(records);
  let delivered = 0;
  let done!: () => void;
  const finished = new Promise<void>((resolve) => { done = resolve; });
  const cpu0 = cpuUsage();
  const started = performance.now();
  const elu0 = performance.eventLoopUtilization();
  const stream = engine.stream(log.consumer({ groupId: `drain-${round}`, topics: [input.topic] }), log.producer(), {
    onDelivered: () => { if (++delivered === EVENTS) done(); },
  });
  await finished;
  const seconds = (performance.now() - started) / 1000;
  const elu = performance.eventLoopUtilization(elu0);
  const cpu = cpuUsage(cpu0);
  await stream.drain(5_000);
  return {
    eventsPerS: EVENTS / seconds,
    mainUs: (elu.active * 1000) / EVENTS,
    processUs: (cpu.user + cpu.system) / EVENTS,
  };
}

async function main(): Promise<void> {
  const engine = await Engine.create(PIPELINE, { logger: silentLogger });
  await engine.prepareStream();
  const rounds = [];
  for (let r = 0; r < REPEATS; r++) rounds.push(await drainOnce(engine, r));
  await engine.close();
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1] ?? NaN;
  console.log(JSON.stringify({
    events: EVENTS,
    repeats: REPEATS,
    eventsPerS: Math.round(median(rounds.map((r) => r.eventsPerS))),
    mainThreadUsPerEvent: +median(rounds.map((r) => r.mainUs)).toFixed(1),
    processCpuUsPerEvent: +median(rounds.map((r) => r.processUs)).toFixed(1),
    rounds: rounds.map((r) => ({ eventsPerS: Math.round(r.eventsPerS), mainUs: +r.mainUs.toFixed(1), processUs: +r.processUs.toFixed(1) })),
  }, null, 2));
}

await main();
