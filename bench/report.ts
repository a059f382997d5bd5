/**
 * The bench report: one JSON document with everything a run measured and where it ran, a Markdown summary
 * of it, and the chart. Written together into one directory.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { renderChart } from './chart.js';
import type { GitInfo, MachineInfo } from './machine.js';
import type { OverloadResult } from './overload.js';
import type { LevelResult } from './run-level.js';
import type { FailureReason, LevelJudgement } from './saturation.js';
import type { TargetName } from './targets/target.js';

export interface ReportedLevel extends LevelResult {
  readonly judgement: LevelJudgement;
  /** Why this level ran: a step of the search, a fixed rate, or the check at half the saturation rate. */
  readonly role: 'search' | 'fixed' | 'half-saturation';
}

export interface TargetReport {
  readonly name: TargetName;
  readonly transport: 'embedded' | 'kafka';
  readonly description: string;
  readonly status: 'ok' | 'skipped' | 'failed';
  /** Why a target was skipped or failed. */
  readonly note: string | null;
  readonly settings: Readonly<Record<string, unknown>>;
  readonly levels: readonly ReportedLevel[];
  /** The highest sustainable offered rate among the levels run (found by the search when it ran). */
  readonly maxSustainableRate: number | null;
  readonly firstFailingRate: number | null;
  readonly limitedBy: readonly (FailureReason | 'max-rate' | 'max-levels')[];
  readonly halfSaturation: ReportedLevel | null;
}

export interface BenchConfigReport {
  readonly command: string;
  readonly pipeline: { readonly path: string; readonly name: string; readonly steps: readonly string[] };
  readonly mode: 'saturate' | 'rates';
  readonly rates: readonly number[] | null;
  readonly saturation: Readonly<Record<string, number>> | null;
  readonly durationS: number;
  readonly warmupS: number;
  readonly windowS: number;
  readonly generatorTickMs: { readonly embedded: number; readonly kafka: number };
  readonly burst: { readonly factor: number; readonly everyMs: number; readonly lengthMs: number } | null;
  readonly sloP99Ms: number;
  readonly partitions: number;
  readonly seed: number;
  readonly poolSize: number;
  readonly poisonRate: number;
  readonly kafka: string;
  readonly targets: readonly TargetName[];
}

export interface BenchReport {
  readonly tool: 'verdict bench';
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly machine: MachineInfo;
  readonly git: GitInfo;
  readonly notes: readonly string[];
  readonly config: BenchConfigReport;
  readonly targets: readonly TargetReport[];
  /** Ratios of max sustainable rates; null when either side has none. */
  readonly ratios: Readonly<Record<string, number | null>>;
  readonly overload: (OverloadResult & { readonly target: TargetName; /** Whose memory was sampled. */ readonly rssOf: string }) | null;
  /** Load averages when the run ended (the machine's, at the start, are in `machine`). */
  readonly loadAverageAtEnd: readonly number[];
}

export const RATIO_PAIRS: ReadonlyArray<readonly [TargetName, TargetName]> = [
  ['verdict-kafka', 'passthrough'],
  ['verdict-kafka', 'naive'],
  ['verdict-embedded', 'fused'],
];

export function ratios(targets: readonly TargetReport[]): Record<string, number | null> {
  const rate = (n: TargetName): number | null => targets.find((t) => t.name === n)?.maxSustainableRate ?? null;
  const out: Record<string, number | null> = {};
  for (const [a, b] of RATIO_PAIRS) {
    const ra = rate(a);
    const rb = rate(b);
    out[`${a}/${b}`] = ra === null || rb === null || rb === 0 ? null : Math.round((ra / rb) * 1000) / 1000;
  }
  return out;
}

const num = (n: number | null | undefined, digits = 0): string =>
  n === null || n === undefined ? '–' : n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const mib = (bytes: number): string => `${num(bytes / 2 ** 20)} MiB`;

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
      + ` Kafka: ${c.kafka}. ${c.partitions} input partitions.`,
    '',
    '## Maximum sustainable rate',
    '',
    '| target | transport | max sustainable (ev/s) | limited by at next rate | p50 / p99 at half of it (ms) | what it is |',
    '| --- | --- | ---: | --- | --- | --- |',
  ];
  for (const t of r.targets) {
    const half = t.halfSaturation;
    const limited = t.status !== 'ok' ? `${t.status}: ${t.note ?? ''}`
      : t.firstFailingRate === null ? (t.limitedBy.length === 0 ? '–' : t.limitedBy.join(', '))
      : `${num(t.firstFailingRate)}/s: ${t.limitedBy.join(', ')}`;
    lines.push(`| ${t.name} | ${t.transport} | ${num(t.maxSustainableRate)} | ${limited} | ${half === null ? '–' : `${num(half.latency.p50Ms, 1)} / ${num(half.latency.p99Ms, 1)} at ${num(half.offeredRate)}/s`} | ${t.description} |`);
  }
  lines.push('', '## Ratios (max sustainable rates)', '');
  for (const [k, v] of Object.entries(r.ratios)) lines.push(`- ${k}: ${v === null ? '–' : `${num(v, 2)}×`}`);
  lines.push('', '## Every level', '', '| target | offered | achieved | p50 | p90 | p99 | p99.9 | max | decided | dead letters | lost | lag max | cores: machine / harness / SUT | harness loop delay max (ms) | verdict |', '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | --- |');
  for (const t of r.targets) {
    for (const l of t.levels) {
      const verdict = l.judgement.sustainable ? 'ok' : l.judgement.reasons.join(', ');
      lines.push(`| ${t.name}${l.role === 'half-saturation' ? ' (½ sat.)' : ''} | ${num(l.offeredRate)}${Math.abs(l.offeredMeanRate - l.offeredRate) > 0.01 * l.offeredRate ? ` (mean ${num(l.offeredMeanRate)})` : ''} | ${num(l.achievedRate)} | ${num(l.latency.p50Ms, 1)} | ${num(l.latency.p90Ms, 1)} | ${num(l.latency.p99Ms, 1)} | ${num(l.latency.p999Ms, 1)} | ${num(l.latency.maxMs, 1)} | ${l.decided} | ${l.deadLetters} | ${l.lost} | ${num(l.lagMax)} | ${num(l.cpu.machineCores, 2)} / ${num(l.cpu.harnessCores, 2)} / ${l.cpu.sutCores === null ? 'same' : num(l.cpu.sutCores, 2)} | ${num(l.eventLoopDelay.maxMs, 0)} | ${verdict} |`);
    }
  }
  if (r.overload !== null) {
    const o = r.overload;
    lines.push('', `## Overload: ${o.target} at ${num(o.rate)}/s for ${o.durationS} s, then no load`, '',
      `- resident memory (${o.rssOf}): ${mib(o.rss.minBytes)} – ${mib(o.rss.maxBytes)}, peak ${mib(o.rss.firstHalfMaxBytes)} in the first half of the load and ${mib(o.rss.secondHalfMaxBytes)} in the second, slope ${num(o.rss.slopeMiBPerMin, 2)} MiB/min in the second (${o.checks.memoryFlat ? 'flat' : 'NOT flat'})`,
      `- lag: up to ${num(o.lagMax)} records (${o.checks.lagGrew ? 'grew under overload' : 'did not grow: the rate was not an overload'})`,
      `- lost: ${o.lost}; caught up ${o.catchUpS === null ? 'NOT within the timeout' : `${num(o.catchUpS, 1)} s after the load stopped`}`);
  }
  lines.push('', '## Notes', '', ...r.notes.map((n) => `- ${n}`), '', 'Chart: `chart.svg` (latency and throughput against the offered rate). Raw figures: `report.json`.', '');
  return lines.join('\n');
}

export interface WrittenReport {
  readonly dir: string;
  readonly json: string;
  readonly markdown: string;
  readonly chart: string;
}

export async function writeReport(report: BenchReport, dir: string): Promise<WrittenReport> {
  await mkdir(dir, { recursive: true });
  const files = { json: join(dir, 'report.json'), markdown: join(dir, 'summary.md'), chart: join(dir, 'chart.svg') };
  await writeFile(files.json, `${JSON.stringify(report, null, 2)}\n`);
  await writeFile(files.markdown, renderMarkdown(report));
  await writeFile(files.chart, renderChart(report));
  return { dir, ...files };
}
