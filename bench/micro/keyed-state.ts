/**
 * The per-key state stage alone (runtime/keyed-state.ts), on the sample pipeline's state definition and
 * generated sample events (bench/generator.ts), one input partition holding every card:
 *
 * - `stage`: `KeyedState.apply` per block, as the stream calls it: decode and validate each record, apply
 *   it to its card's state, take the block's changelog entries (encoded) and copy them into records;
 * - its parts, timed apart on a second, identical state: decode and validate (`Ingestor.readEvent`), the
 *   state's `apply`, and `takeChanges` (each changed key encoded once, plus the meta entry).
 *
 * µs per event, wall clock and CPU (the process's, on this one thread), medians over rounds; each round starts from empty state, applies the first half of the
 * events unmeasured (the cards get their histories) and measures the second half in blocks. Also: the
 * changelog records and bytes a block writes per event, keys held, and the state's encoded size.
 * Run: `node dist/bench/micro/keyed-state.js [cards,...] [events] [block] [rounds] [pipeline.yaml]`
 * (defaults 5000,50000, 200000, 128 (the stream's largest block), 5, the sample pipeline).
 */
import type { CompiledPipeline } from '../../config/compiled.js';
import { cpuUsage } from 'node:process';
import { preciseScheduler } from '../../core/clock.js';
import { silentLogger } from '../../core/log.js';
import { defaultPipelinePath } from '../../core/paths.js';
import { createIngestor } from '../../pipeline/ingest/ingest.js';
import type { InboundRecord } from '../../pipeline/record.js';
import { PartitionState } from '../../pipeline/state/partition-state.js';
import { keyedStateFor, type KeyedState } from '../../runtime/keyed-state.js';
import { EmbeddedLog } from '../../streams/embedded/embedded-log.js';
import { createTransactionGenerator } from '../generator.js';
import { compileBenchPipeline } from '../targets/pipeline.js';

const CARDS = (process.argv[2] ?? '5000,50000').split(',').map(Number);
const EVENTS = Number(process.argv[3] ?? 200_000);
const BLOCK = Number(process.argv[4] ?? 128);
const ROUNDS = Number(process.argv[5] ?? 5);
const PIPELINE = process.argv[6] ?? defaultPipelinePath;
const TOPIC = 'transactions';

/** Wall and CPU (the process's user + system: this bench runs on one thread) time, ms. */
interface Spent { wall: number; cpu: number }

function timer(): () => Spent {
  const wall = performance.now();
  const cpu = cpuUsage();
  return () => {
    const c = cpuUsage(cpu);
    return { wall: performance.now() - wall, cpu: (c.user + c.system) / 1000 };
  };
}

interface Round {
  /** µs per event, wall clock. */
  readonly stageUs: number;
  /** µs per event of CPU: what a loaded machine cannot inflate by descheduling. */
  readonly stageCpuUs: number;
  readonly decodeValidateUs: number;
  readonly stateApplyUs: number;
  readonly takeChangesUs: number;
  readonly decodeValidateCpuUs: number;
  readonly stateApplyCpuUs: number;
  readonly takeChangesCpuUs: number;
  readonly changelogRecordsPerEvent: number;
  readonly changelogBytesPerEvent: number;
  readonly keys: number;
  readonly stateBytes: number;
}

function records(cards: number): InboundRecord[] {
  const generator = createTransactionGenerator({ seed: 7, cards });
  return Array.from({ length: EVENTS }, (_, offset): InboundRecord => {
    const { event } = generator.next();
    return { topic: TOPIC, partition: 0, offset, key: Buffer.from(event.key), value: Buffer.from(JSON.stringify(event)), headers: [], timestamp: event.ts };
  });
}

async function stage(pipeline: CompiledPipeline): Promise<KeyedState> {
  const log = new EmbeddedLog({ defaultPartitions: 1, logger: silentLogger });
  log.createTopic(TOPIC, 1);
  const ingestor = createIngestor(pipeline, { now: () => 0 });
  const source = log.consumer({ groupId: 'micro', topics: [TOPIC] });
  const state = keyedStateFor({ ...pipeline, input: { ...pipeline.input, topic: TOPIC } }, source, {
    readEvent: (r) => ingestor.readEvent(r), clock: preciseScheduler, logger: silentLogger,
  });
  if (state === undefined) throw new Error(`${PIPELINE} declares no state`);
  if (!(await state.restore([{ topic: TOPIC, partition: 0 }]))) throw new Error('restore failed');
  return state;
}

function blocks(all: readonly InboundRecord[]): InboundRecord[][] {
  const out: InboundRecord[][] = [];
  for (let i = 0; i < all.length; i += BLOCK) out.push(all.slice(i, i + BLOCK));
  return out;
}

async function round(pipeline: CompiledPipeline, warm: readonly InboundRecord[][], measured: readonly InboundRecord[][], events: number): Promise<Round> {
  const definition = pipeline.state!;
  const ingestor = createIngestor(pipeline, { now: () => 0 });

  // The stage as the stream runs it.
  const keyed = await stage(pipeline);
  for (const b of warm) keyed.apply(b);
  let changelogRecords = 0;
  let changelogBytes = 0;
  const stageTimer = timer();
  for (const b of measured) {
    const { changelog } = keyed.apply(b);
    changelogRecords += changelog.length;
    for (const r of changelog) changelogBytes += (r.key?.length ?? 0) + (r.value?.length ?? 0);
  }
  const stageSpent = stageTimer();
  keyed.close();

  // Its parts, on a state of its own fed the same blocks.
  const state = new PartitionState(definition);
  for (const b of warm) {
    for (const r of b) state.apply(r.offset, r.key, ingestor.readEvent(r));
    state.takeChanges();
  }
  const decode: Spent = { wall: 0, cpu: 0 };
  const apply: Spent = { wall: 0, cpu: 0 };
  const take: Spent = { wall: 0, cpu: 0 };
  const add = (into: Spent, spent: Spent): void => { into.wall += spent.wall; into.cpu += spent.cpu; };
  for (const b of measured) {
    let t = timer();
    const decoded = b.map((r) => ingestor.readEvent(r));
    add(decode, t());
    t = timer();
    for (let i = 0; i < b.length; i++) state.apply(b[i]!.offset, b[i]!.key, decoded[i]!);
    add(apply, t());
    t = timer();
    state.takeChanges();
    add(take, t());
  }
  const us = (ms: number): number => (ms * 1000) / events;
  return {
    stageUs: us(stageSpent.wall), stageCpuUs: us(stageSpent.cpu),
    decodeValidateUs: us(decode.wall), stateApplyUs: us(apply.wall), takeChangesUs: us(take.wall),
    decodeValidateCpuUs: us(decode.cpu), stateApplyCpuUs: us(apply.cpu), takeChangesCpuUs: us(take.cpu),
    changelogRecordsPerEvent: changelogRecords / events, changelogBytesPerEvent: changelogBytes / events,
    keys: state.keys, stateBytes: state.bytes,
  };
}

const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1] ?? NaN;
const fixed = (n: number, digits = 2): number => +n.toFixed(digits);

async function main(): Promise<void> {
  const pipeline = await compileBenchPipeline(PIPELINE, silentLogger);
  if (pipeline.state === null) throw new Error(`${PIPELINE} declares no state`);
  const results = [];
  for (const cards of CARDS) {
    const all = records(cards);
    const half = Math.floor(all.length / 2);
    const warm = blocks(all.slice(0, half));
    const measured = blocks(all.slice(half));
    const rounds: Round[] = [];
    for (let r = 0; r < ROUNDS; r++) rounds.push(await round(pipeline, warm, measured, all.length - half));
    const m = (pick: (r: Round) => number, digits = 2): number => fixed(median(rounds.map(pick)), digits);
    results.push({
      cards,
      measuredEvents: all.length - half,
      usPerEvent: {
        stage: m((r) => r.stageUs),
        applyWithDecode: m((r) => r.decodeValidateUs + r.stateApplyUs),
        decodeValidate: m((r) => r.decodeValidateUs),
        stateApply: m((r) => r.stateApplyUs),
        takeChangesEncode: m((r) => r.takeChangesUs),
      },
      cpuUsPerEvent: {
        stage: m((r) => r.stageCpuUs),
        applyWithDecode: m((r) => r.decodeValidateCpuUs + r.stateApplyCpuUs),
        decodeValidate: m((r) => r.decodeValidateCpuUs),
        stateApply: m((r) => r.stateApplyCpuUs),
        takeChangesEncode: m((r) => r.takeChangesCpuUs),
      },
      changelogPerEvent: { records: m((r) => r.changelogRecordsPerEvent, 3), bytes: m((r) => r.changelogBytesPerEvent, 0) },
      keysHeld: m((r) => r.keys, 0),
      stateMiB: m((r) => r.stateBytes / 2 ** 20, 1),
      roundsWall: rounds.map((r) => ({ stage: fixed(r.stageUs), decode: fixed(r.decodeValidateUs), apply: fixed(r.stateApplyUs), take: fixed(r.takeChangesUs) })),
    });
  }
  console.log(JSON.stringify({ pipeline: pipeline.name, events: EVENTS, block: BLOCK, rounds: ROUNDS, aggregates: pipeline.state.aggregates.map((a) => a.name), results }, null, 2));
}

await main();
