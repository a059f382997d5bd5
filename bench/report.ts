/**
 * The bench report: one JSON document with everything a run measured and where it ran, a Markdown summary
 * of it, and the chart. Written together into one directory.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { renderChart } from './chart.js';
import type { BoundUse } from './overload-bounds.js';
import type { CpuPerEvent } from './cpu.js';
import type { BenchReport, OverloadReport, RepeatsReport, ReportedLevel, SoakReport, TargetReport } from './report-types.js';
import { renderSoakChart } from './soak-chart.js';
import type { Trend } from './soak-trend.js';
import type { TargetName } from './targets/target.js';

export const RATIO_PAIRS: ReadonlyArray<readonly [TargetName, TargetName]> = [
  ['verdict-kafka', 'passthrough'],
  ['verdict-kafka', 'naive'],
  ['verdict-embedded', 'fused'],
];

/**
 * Pairs reported only when both targets ran: the librdkafka producer's (Verdict with it against the
 * passthrough with either producer, and against naive; the two passthroughs), and the cost of per-key
 * state, the sample pipeline with it against the same pipeline without (targets/without-state.ts).
 */
export const OPTIONAL_RATIO_PAIRS: ReadonlyArray<readonly [TargetName, TargetName]> = [
  ['verdict-kafka-librdkafka', 'passthrough'],
  ['verdict-kafka-librdkafka', 'passthrough-librdkafka'],
  ['verdict-kafka-librdkafka', 'naive'],
  ['passthrough-librdkafka', 'passthrough'],
  ['verdict-embedded', 'verdict-embedded-no-state'],
  ['verdict-kafka', 'verdict-kafka-no-state'],
];

/**
 * Ratios of max sustainable rates. `rateOf`: a target's rate; default the first report of that name (with
 * `--repeat`, the harness passes the median over the runs).
 */
export function ratios(targets: readonly TargetReport[], rateOf?: (n: TargetName) => number | null): Record<string, number | null> {
  const rate = rateOf ?? ((n: TargetName): number | null => targets.find((t) => t.name === n)?.maxSustainableRate ?? null);
  const ran = (n: TargetName): boolean => targets.some((t) => t.name === n);
  const out: Record<string, number | null> = {};
  for (const [a, b] of [...RATIO_PAIRS, ...OPTIONAL_RATIO_PAIRS.filter(([a, b]) => ran(a) && ran(b))]) {
    const ra = rate(a);
    const rb = rate(b);
    out[`${a}/${b}`] = ra === null || rb === null || rb === 0 ? null : Math.round((ra / rb) * 1000) / 1000;
  }
  return out;
}

const num = (n: number | null | undefined, digits = 0): string =>
  n === null || n === undefined ? '–' : n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const mib = (bytes: number): string => `${num(bytes / 2 ** 20)} MiB`;

/**
 * The level a target's CPU per event is quoted at: the sustainable one at the highest offered rate (its max
 * sustainable rate, or near it), the half-saturation check left out; null without a sustainable level.
 */
export function levelAtMax(t: TargetReport): ReportedLevel | null {
  let best: ReportedLevel | null = null;
  for (const l of t.levels) {
    if (l.role === 'half-saturation' || !l.judgement.sustainable) continue;
    if (best === null || l.offeredRate > best.offeredRate) best = l;
  }
  return best;
}

/** `process / main thread` µs per event, or – for what was not measured (embedded targets, off Linux). */
const perEvent = (c: CpuPerEvent | undefined): string => (c === undefined ? '– / –' : `${num(c.processUs, 1)} / ${num(c.mainThreadUs, 1)}`);

export function renderMarkdown(r: BenchReport): string {
  const c = r.config;
  const lines: string[] = [
    `# verdict bench: ${c.pipeline.name}`,
    '',
    `${r.startedAt} · ${r.machine.cpuCount} × ${r.machine.cpuModel} · ${mib(r.machine.memoryBytes)} · Node ${r.machine.node} · ${r.machine.os}`
      + ` · commit ${r.git.commit?.slice(0, 12) ?? 'unknown'}${r.git.dirty === true ? ' (dirty)' : ''}`,
    '',
    `Command: \`${c.command}\``,
    '',
    `Levels: ${c.warmupS} s warm-up + ${c.durationS} s measured in ${c.windowS} s windows; sustainable = nothing lost, achieved ≥ 95% of offered, `
      + `p99 ≤ ${c.sloP99Ms} ms, last windows' throughput within 10%. Latency: intended send time → output read (open loop, no coordinated omission).`
      + ` Kafka: ${c.kafka}. ${c.partitions} input partitions${c.overloadPartitions === null ? '' : ` (${c.overloadPartitions} for the overload target, all its levels included)`}.`,
    '',
    '## Maximum sustainable rate',
    '',
    '| target | transport | max sustainable (ev/s) | limited by at next rate | p50 / p99 at half of it (ms) | SUT CPU µs/event at max: process / main thread | what it is |',
    '| --- | --- | ---: | --- | --- | --- | --- |',
  ];
  for (const t of r.targets) {
    const half = t.halfSaturation;
    const limited = t.status !== 'ok' ? `${t.status}: ${t.note ?? ''}`
      : t.firstFailingRate === null ? (t.limitedBy.length === 0 ? '–' : t.limitedBy.join(', '))
      : `${num(t.firstFailingRate)}/s: ${t.limitedBy.join(', ')}`;
    const atMax = levelAtMax(t);
    const cpu = atMax === null ? '–' : `${perEvent(atMax.cpuPerEvent)} at ${num(atMax.offeredRate)}/s`;
    lines.push(`| ${t.run === undefined ? t.name : `${t.name} (run ${t.run})`} | ${t.transport} | ${num(t.maxSustainableRate)} | ${limited} | ${half === null ? '–' : `${num(half.latency.p50Ms, 1)} / ${num(half.latency.p99Ms, 1)} at ${num(half.offeredRate)}/s`} | ${cpu} | ${t.description} |`);
  }
  if (r.repeats !== undefined) lines.push('', ...repeatsMarkdown(r.repeats));
  lines.push('', `## Ratios (max sustainable rates${r.repeats === undefined ? '' : `, medians of ${r.repeats.runs} runs`})`, '');
  for (const [k, v] of Object.entries(r.ratios)) lines.push(`- ${k}: ${v === null ? '–' : `${num(v, 2)}×`}`);
  lines.push('', '## Every level', '', '| target | offered | achieved | p50 | p90 | p99 | p99.9 | max | decided | dead letters | lost | lag max | cores: machine / harness / SUT | SUT CPU µs/event: process / main thread | harness loop delay max (ms) | verdict |', '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | ---: | --- |');
  for (const t of r.targets) {
    for (const l of t.levels) {
      const verdict = l.judgement.sustainable ? 'ok' : l.judgement.reasons.join(', ');
      lines.push(`| ${t.name}${t.run === undefined ? '' : ` (run ${t.run})`}${l.role === 'half-saturation' ? ' (½ sat.)' : ''} | ${num(l.offeredRate)}${Math.abs(l.offeredMeanRate - l.offeredRate) > 0.01 * l.offeredRate ? ` (mean ${num(l.offeredMeanRate)})` : ''} | ${num(l.achievedRate)} | ${num(l.latency.p50Ms, 1)} | ${num(l.latency.p90Ms, 1)} | ${num(l.latency.p99Ms, 1)} | ${num(l.latency.p999Ms, 1)} | ${num(l.latency.maxMs, 1)} | ${l.decided} | ${l.deadLetters} | ${l.lost} | ${num(l.lagMax)} | ${num(l.cpu.machineCores, 2)} / ${num(l.cpu.harnessCores, 2)} / ${t.transport === 'embedded' ? 'same' : num(l.cpu.sutCores, 2)} | ${t.transport === 'embedded' ? 'same' : perEvent(l.cpuPerEvent)} | ${num(l.eventLoopDelay.maxMs, 0)} | ${verdict} |`);
    }
  }
  if (r.overload !== null) lines.push('', ...overloadMarkdown(r.overload));
  if (r.soak !== undefined) lines.push('', ...soakMarkdown(r.soak));
  lines.push('', '## Notes', '', ...r.notes.map((n) => `- ${n}`), '', 'Chart: `chart.svg` (latency and throughput against the offered rate). Raw figures: `report.json`.', '');
  return lines.join('\n');
}

function repeatsMarkdown(rep: RepeatsReport): string[] {
  const lines = [
    `## Medians of ${rep.runs} runs (targets interleaved, every other run in reverse order)`,
    '',
    '| target | max sustainable per run (ev/s) | median | SUT CPU µs/event at max, median: process / main thread |',
    '| --- | --- | ---: | --- |',
  ];
  for (const t of rep.targets) {
    lines.push(`| ${t.name} | ${t.maxSustainableRates.map((x) => num(x)).join(', ')} | ${num(t.medianMaxSustainableRate)} | ${perEvent(t.medianCpuPerEventAtMax)} |`);
  }
  return lines;
}

function overloadMarkdown(o: OverloadReport): string[] {
  const m = o.memory;
  const check = (ok: boolean | null, yes: string, no: string, unknown: string): string => (ok === null ? unknown : ok ? yes : no);
  const peakLag = o.samples.filter((s) => s.phase === 'load').at(-1)?.lag;
  const p = o.prediction;
  return [
    `## Overload: ${o.target} at ${num(o.rate)}/s for ${o.durationS} s on ${o.partitions} partitions, then no load`,
    '',
    `Rate: ${o.rateBasis}.`,
    '',
    o.invalidBecause === null ? '' : `**Not a valid overload check:** ${o.invalidBecause}.\n`,
    `| check | result |`,
    '| --- | --- |',
    `| memory flat | ${m.verdict}: ${m.why} |`,
    `| lag grew | ${check(o.checks.lagGrew, 'yes', 'no: the rate was not an overload', '–')}: up to ${num(o.lagMax)} records |`,
    `| nothing lost | ${o.lost === 0 ? `yes: all ${num(o.sent)} events answered` : `NO: ${num(o.lost)} of ${num(o.sent)} unanswered; ${o.lostBySut === null ? 'this target cannot tell who lost them' : `lost by the system under test ${num(o.lostBySut)}, deleted by broker retention ${num(o.deletedByBroker)}${o.neverAccepted > 0 ? `, never accepted by the broker ${num(o.neverAccepted)}` : ''}`}`} |`,
    `| broker kept the backlog | ${check(o.checks.brokerKeptBacklog, 'yes: its log start offset never passed the consumer group\'s committed offset', `NO: retention overtook the consumer at ${num(o.retentionOvertookAtS, 0)} s`, 'cannot tell on this target')} |`,
    `| caught up | ${o.catchUpS === null ? `NO: ${o.catchUpEnd.reason}` : `${num(o.catchUpS, 1)} s after the load stopped`} |`,
    ...boundsRows(o),
    '',
    `- resident memory of the system under test before the load ${o.rssBeforeBytes === null ? '–' : mib(o.rssBeforeBytes)}, during it (peak) ${mib(Math.max(0, ...o.samples.filter((s) => s.phase === 'load').map((s) => s.rssBytes)))}, after the catch-up ${o.rssAfterBytes === null ? '–' : mib(o.rssAfterBytes)}.`,
    `- accounting: ${num(o.sent)} sent = ${num(o.level.decided)} decided + ${num(o.level.deadLetters)} dead-lettered + ${num(o.lost)} unanswered; ${num(o.duplicates)} outputs were second outputs of an event already answered (at-least-once redelivery, not counted twice).`,
    o.retention === null ? '- retention headroom: not measured on this target.'
      : `- retention headroom (measured): the busiest partition held at most ${num(o.retention.busiestUnreadMax)} unread records ≈ ${num(o.retention.bytes / 2 ** 20, 2)} MiB of record batches, ${num(o.retention.fill * 100)}% of the ${num(o.retention.retentionBytesPerPartition / 2 ** 20)} MiB per partition: ${num(o.retention.headroom * 100)}% headroom.`,
    `- resident memory of ${o.rssOf}: start ${mib(m.startBytes)}, peak of the first ${num(m.referenceS)} s ${mib(m.referenceBytes)}, peak of the load after ${num(m.judgedFromS)} s ${mib(m.secondHalfPeakBytes)} `
      + `(slope ${num(m.slopeMiBPerMin, 1)} MiB/min), peak overall ${mib(m.peakBytes)}, end of catch-up ${mib(m.endBytes)}.`
      + (m.verdict === 'not judged' ? '' : ` Flat means that peak within ${mib(m.toleranceBytes)} of it (10% of it, at least 24 MiB); `
        + `the check can tell a queue from noise only when the lag's growth over that part, at ${num(o.recordBytes)} bytes a record, is at least twice that (here ${mib(m.queueGrowthBytes)}).`),
    `- ${p === null ? o.predictionNote : `backlog forecast before the run: ${num(p.backlogRecords)} records at ${num(p.consumeRate)}/s consumed; busiest partition ${num(p.busiestPartitionBytes / 2 ** 20, 2)} MiB = ${num(p.fill * 100)}% of the ${num(p.retentionBytesPerPartition / 2 ** 20)} MiB retention (${p.fits ? 'fits' : 'does not fit'}); if nothing were consumed ${num((o.worstCase?.fill ?? 0) * 100)}%. Measured: lag ${num(peakLag)} records when the load stopped`}.`,
    `- generator tick ${o.tickMs} ms; lag and memory sampled every second (report.json: overload.samples).`,
  ];
}

/** A slope per hour in the series' unit (bytes shown as MiB), with its standard error. */
function slopeText(t: Trend): string {
  const [div, unit, digits] = t.unit === 'bytes' ? [2 ** 20, 'MiB', 2] : [1, t.unit, 2];
  const v = t.slopePerHour / div;
  return `${v >= 0 ? '+' : ''}${num(v, digits)} ± ${num(t.slopeStdErrPerHour / div, digits)} ${unit}/h`;
}

function meanText(t: Trend): string {
  return t.unit === 'bytes' ? mib(t.mean) : `${num(t.mean, t.unit === 'ms' ? 2 : 0)} ${t.unit}`;
}

function soakMarkdown(o: SoakReport): string[] {
  const rows: Array<[string, Trend]> = [
    ['resident memory (RSS)', o.trends.rssBytes], ['V8 heap used', o.trends.heapUsedBytes], ['event-loop delay p99', o.trends.eventLoopP99Ms],
    ['latency p99 per window', o.trends.latencyP99Ms], ['throughput', o.trends.throughput], ['lag', o.trends.lag],
  ];
  const l = o.level;
  return [
    `## Soak: ${o.target} at ${num(o.rate)}/s for ${num(o.durationS / 60, 1)} min on ${o.partitions} partitions`,
    '',
    `Rate: ${o.rateSource}. Sampled every ${o.sampleS} s; the first ${num(o.warmupS)} s (warm-up) are left out of the slopes. Memory and event-loop delay: ${o.measuredIn}. Overall: **${o.verdict}**.`,
    '',
    '| series | mean after warm-up | slope (least squares ± 1 SE) | slope / mean | verdict |',
    '| --- | ---: | ---: | ---: | --- |',
    ...rows.map(([name, t]) => `| ${name} | ${meanText(t)} | ${slopeText(t)} | ${num(t.relativeSlopePerHour * 100, 2)}%/h | ${t.thresholdPerHour === Infinity ? 'not judged' : `${t.verdict}: ${t.why}`} |`),
    '',
    `- sent ${num(l.sent)}, decided ${num(l.decided)}, dead letters ${num(l.deadLetters)}, lost ${num(l.lost)}, duplicates ${num(l.duplicates)}; latency after the warm-up p50 ${num(l.latency.p50Ms, 1)} / p99 ${num(l.latency.p99Ms, 1)} / p99.9 ${num(l.latency.p999Ms, 1)} / max ${num(l.latency.maxMs, 1)} ms${l.cutShort === null ? '' : `; **cut short**: ${l.cutShort}`}.`,
    `- Flat means: ${o.rules.join('; ')}. A series is flat when slope + 2 SE is within its threshold, rising when slope − 2 SE is beyond it, inconclusive in between (the SE assumes independent residuals, so it is optimistic for correlated samples).`,
    '- A harness scenario, not a CI test: the figures depend on the machine and on what else runs on it. Chart: `soak.svg`; samples: `report.json` (soak.samples, soak.windows).',
  ];
}

function boundsRows(o: OverloadReport): string[] {
  const b = o.bounds;
  if (b === null) return ['| within bounds | not measured: the target has no metrics endpoint of its own |'];
  const use = (name: string, u: BoundUse): string =>
    `${name} ${num(u.max)} of ${u.bound === null ? '–' : num(u.bound)}${u.allowance > 0 ? ` (+${num(u.allowance)})` : ''}${u.within === false ? ' (**over**)' : ''}`;
  const mailboxes = Object.entries(b.mailboxes).map(([model, u]) => use(`mailbox ${model}`, u));
  const yes = (ok: boolean | null): string => (ok === null ? 'not measured' : ok ? 'yes' : 'NO');
  return [
    `| within bounds (max seen in ${b.samples} scrapes) | ${yes(b.withinBounds)}: ${[use('in flight (read, not acknowledged) against maxBuffered (+ one fetch)', b.inflight), use('admitted against maxInflight', b.admitted), ...mailboxes].join('; ')} |`,
    `| consumer paused and resumed | ${yes(b.pausedAndResumed)}: ${b.pauses === null ? '–' : num(b.pauses)} partition pauses, ${b.resumes === null ? '–' : num(b.resumes)} resumes by backpressure; at most ${b.pausedPartitionsMax === null ? '–' : num(b.pausedPartitionsMax)} of ${o.partitions} partitions paused at once |`,
  ];
}

export interface WrittenReport {
  readonly dir: string;
  readonly json: string;
  readonly markdown: string;
  readonly chart: string;
  /** The soak's chart, when a soak ran. */
  readonly soakChart?: string;
}

export async function writeReport(report: BenchReport, dir: string): Promise<WrittenReport> {
  await mkdir(dir, { recursive: true });
  const files = { json: join(dir, 'report.json'), markdown: join(dir, 'summary.md'), chart: join(dir, 'chart.svg') };
  await writeFile(files.json, `${JSON.stringify(report, null, 2)}\n`);
  await writeFile(files.markdown, renderMarkdown(report));
  await writeFile(files.chart, renderChart(report));
  if (report.soak === undefined) return { dir, ...files };
  const soakChart = join(dir, 'soak.svg');
  const m = report.machine;
  await writeFile(soakChart, renderSoakChart(report.soak, `${report.soak.target} · ${report.config.pipeline.name} · ${m.cpuCount} × ${m.cpuModel} · Node ${m.node} · ${report.startedAt} · generator and system under test share the machine`));
  return { dir, ...files, soakChart };
}
