/**
 * The bench summary's section on where the latency goes: for every level of a target that exports Verdict's
 * histograms (verdict-kafka and its variants), the harness's end-to-end figures beside Verdict's own and the
 * rest, which is transport and harness (latency-share.ts measures them).
 */
import type { VerdictShare } from './latency-share.js';
import type { BenchReport } from './report-types.js';

const fixed = (n: number, digits = 1): string => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

/** One table row: a level's offered rate, its end-to-end p50 and p99 (ms), and its share. */
export function latencyShareRow(target: string, offeredRate: number, e2e: { readonly p50Ms: number; readonly p99Ms: number }, s: VerdictShare): string {
  const stages = ['ingest', 'models', 'decision'].map((stage) => (s.stageMeanMs[stage] === undefined ? '–' : fixed(s.stageMeanMs[stage], 2))).join(' / ');
  const share = s.shareAtP50 === null ? '–' : `${Math.round(s.shareAtP50 * 100)}%`;
  return `| ${target} | ${offeredRate.toLocaleString('en-US')} | ${fixed(e2e.p50Ms)} / ${fixed(e2e.p99Ms)} | ${fixed(s.inProcess.p50Ms)} / ${fixed(s.inProcess.p99Ms)} (mean ${fixed(s.inProcess.meanMs)}) | ${share} | ${fixed(s.restP50Ms)} / ${fixed(s.restP99Ms)} | ${stages} | ${s.events.toLocaleString('en-US')} |`;
}

/** The section, or nothing when no level has Verdict's histograms (no Kafka target of Verdict's ran). */
export function latencyShareMarkdown(r: BenchReport): string[] {
  const rows: string[] = [];
  for (const t of r.targets) {
    for (const l of t.levels) {
      if (l.verdictShare === undefined || l.verdictShare === null) continue;
      rows.push(latencyShareRow(`${t.name}${l.role === 'half-saturation' ? ' (½ sat.)' : ''}`, l.offeredRate, l.latency, l.verdictShare));
    }
  }
  if (rows.length === 0) return [];
  const tick = r.config.generatorTickMs.kafka;
  return [
    '## Where the latency goes (Verdict on Kafka)',
    '',
    'End to end: the harness\'s figures (intended send → output read). Verdict: its own, scraped from its `/metrics` at the end of the '
      + 'warm-up and after the drain (`verdict_end_to_end_seconds`: record read → outcome acknowledged by the brokers, its own produce '
      + 'round trip included; percentiles interpolated within the histogram\'s buckets, the mean exact). The rest is transport and harness: '
      + `the generator's tick (every ${tick} ms, so on average ${fixed(tick / 2)} ms), the load producer, the consumer's fetch waits, the `
      + 'broker, the output reader; it is a difference of percentiles, not a percentile of differences. Stages: mean time of a block of '
      + 'events in each (README "The latency floor" has the whole breakdown).',
    '',
    '| target | offered (ev/s) | end to end p50 / p99 (ms) | Verdict: read → acknowledged p50 / p99 (ms) | Verdict\'s share at p50 | rest: transport + harness p50 / p99 (ms) | stages per block, mean: ingest / models / decision (ms) | events Verdict acknowledged |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows,
  ];
}
