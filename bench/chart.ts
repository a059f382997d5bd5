/**
 * The chart, as hand-written SVG (no dependency, opens in any browser without a server): on the left p50
 * (dashed) and p99 (solid) latency against the offered rate, on the right achieved against offered
 * throughput, one colour per target; both axes logarithmic, because rates step geometrically and latency
 * spans orders of magnitude once a target saturates. Unsustainable levels are drawn as crosses, the check
 * at half the saturation rate as a hollow circle.
 */
import type { BenchReport, ReportedLevel } from './report-types.js';
import type { TargetName } from './targets/target.js';

const COLOURS: Readonly<Record<TargetName, string>> = {
  'verdict-embedded': '#1f77b4',
  fused: '#ff7f0e',
  'verdict-kafka': '#2ca02c',
  'verdict-kafka-librdkafka': '#8c564b',
  passthrough: '#7f7f7f',
  'passthrough-librdkafka': '#e377c2',
  naive: '#d62728',
  'verdict-embedded-shadow': '#9467bd',
  'verdict-embedded-no-state': '#17becf',
  'verdict-kafka-no-state': '#bcbd22',
};

const W = 1200;
const H = 560;
const PANEL = { width: 470, height: 360, top: 70 };
const LEFT_X = 90;
const RIGHT_X = 680;

interface Scale {
  (v: number): number;
  readonly ticks: readonly number[];
}

function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** A log scale over [lo, hi] (widened to whole decades' 1-2-5 steps) onto [from, to]. */
function logScale(lo: number, hi: number, from: number, to: number): Scale {
  const steps = [1, 2, 5];
  const floor = (v: number): number => {
    const d = 10 ** Math.floor(Math.log10(v));
    return [...steps].reverse().map((s) => s * d).find((x) => x <= v * 1.0000001) ?? d;
  };
  const ceil = (v: number): number => {
    const d = 10 ** Math.floor(Math.log10(v));
    return [...steps, 10].map((s) => s * d).find((x) => x >= v / 1.0000001) ?? 10 * d;
  };
  const a = floor(Math.max(lo, 1e-3));
  const b = Math.max(ceil(Math.max(hi, a * 1.01)), a * 2);
  const la = Math.log10(a);
  const lb = Math.log10(b);
  const f = ((v: number) => from + ((Math.log10(Math.max(v, a)) - la) / (lb - la)) * (to - from)) as Scale;
  const ticks: number[] = [];
  for (let d = 10 ** Math.floor(la); d <= b * 1.0001; d *= 10) {
    for (const s of steps) {
      const t = s * d;
      if (t >= a / 1.0001 && t <= b * 1.0001) ticks.push(Number(t.toPrecision(3)));
    }
  }
  // Too many ticks over several decades: keep only the decades.
  (f as { ticks: readonly number[] }).ticks = ticks.length > 10 ? ticks.filter((t) => Number.isInteger(Math.log10(t))) : ticks;
  return f;
}

const label = (v: number): string => (v >= 1000 ? `${Number((v / 1000).toPrecision(3))}k` : `${Number(v.toPrecision(3))}`);

function axes(x: Scale, y: Scale, left: number, title: string, xTitle: string, yTitle: string): string[] {
  const top = PANEL.top;
  const bottom = top + PANEL.height;
  const right = left + PANEL.width;
  const out = [
    `<text x="${left + PANEL.width / 2}" y="${top - 16}" text-anchor="middle" class="title">${escapeXml(title)}</text>`,
    `<rect x="${left}" y="${top}" width="${PANEL.width}" height="${PANEL.height}" class="frame"/>`,
  ];
  for (const t of x.ticks) {
    const px = x(t).toFixed(1);
    out.push(`<line x1="${px}" y1="${top}" x2="${px}" y2="${bottom}" class="grid"/>`, `<text x="${px}" y="${bottom + 18}" text-anchor="middle">${label(t)}</text>`);
  }
  for (const t of y.ticks) {
    const py = y(t).toFixed(1);
    out.push(`<line x1="${left}" y1="${py}" x2="${right}" y2="${py}" class="grid"/>`, `<text x="${left - 8}" y="${py}" text-anchor="end" dominant-baseline="middle">${label(t)}</text>`);
  }
  out.push(
    `<text x="${left + PANEL.width / 2}" y="${bottom + 42}" text-anchor="middle">${escapeXml(xTitle)}</text>`,
    `<text x="${left - 58}" y="${top + PANEL.height / 2}" text-anchor="middle" transform="rotate(-90 ${left - 58} ${top + PANEL.height / 2})">${escapeXml(yTitle)}</text>`,
  );
  return out;
}

/**
 * One line through the levels of the search (or the fixed rates), in rate order; the level at half the
 * saturation rate repeats a rate already on the line, so it is a hollow marker off the line.
 */
function series(levels: readonly ReportedLevel[], x: Scale, y: Scale, value: (l: ReportedLevel) => number, colour: string, dashed: boolean): string[] {
  const at = (l: ReportedLevel): readonly [number, number] => [x(l.offeredRate), y(Math.max(value(l), 1e-3))];
  const line = levels.filter((l) => l.role !== 'half-saturation').sort((a, b) => a.offeredRate - b.offeredRate);
  const out: string[] = [];
  if (line.length > 0) {
    out.push(`<polyline points="${line.map((l) => at(l).map((v) => v.toFixed(1)).join(',')).join(' ')}" fill="none" stroke="${colour}" stroke-width="2"${dashed ? ' stroke-dasharray="6 4"' : ''}/>`);
  }
  for (const l of levels) {
    const [px, py] = at(l);
    if (l.role === 'half-saturation') out.push(`<circle cx="${px.toFixed(1)}" cy="${py.toFixed(1)}" r="5" fill="#fff" stroke="${colour}" stroke-width="2"/>`);
    else if (l.judgement.sustainable) out.push(`<circle cx="${px.toFixed(1)}" cy="${py.toFixed(1)}" r="3.5" fill="${colour}"/>`);
    else out.push(`<path d="M${(px - 4).toFixed(1)},${(py - 4).toFixed(1)} l8,8 m0,-8 l-8,8" stroke="${colour}" stroke-width="2"/>`);
  }
  return out;
}

/** Legend entries a row; more targets wrap onto a second row. */
const LEGEND_PER_ROW = 5;

export function renderChart(report: BenchReport): string {
  // With --repeat, the first run of each target (the medians are in the summary).
  const targets = report.targets.filter((t) => t.levels.length > 0 && (t.run ?? 1) === 1);
  const all = targets.flatMap((t) => t.levels);
  const rates = all.map((l) => l.offeredRate);
  const achieved = all.map((l) => l.achievedRate).filter((v) => v > 0);
  const latencies = all.flatMap((l) => [l.latency.p50Ms, l.latency.p99Ms]).filter((v) => v > 0);
  const slo = report.config.sloP99Ms;
  const minRate = Math.min(...rates, ...achieved, 100);
  const maxRate = Math.max(...rates, ...achieved, 1000);
  const top = PANEL.top;
  const bottom = top + PANEL.height;

  const xl = logScale(Math.min(...rates, 1000), Math.max(...rates, 1000), LEFT_X, LEFT_X + PANEL.width);
  const yl = logScale(Math.min(...latencies, 1), Math.max(...latencies, slo * 2), bottom, top);
  const xr = logScale(minRate, maxRate, RIGHT_X, RIGHT_X + PANEL.width);
  const yr = logScale(minRate, maxRate, bottom, top);

  const body: string[] = [
    ...axes(xl, yl, LEFT_X, 'Latency (intended send → output), p50 dashed, p99 solid', 'offered rate (events/s)', 'latency (ms)'),
    `<line x1="${LEFT_X}" y1="${yl(slo).toFixed(1)}" x2="${LEFT_X + PANEL.width}" y2="${yl(slo).toFixed(1)}" class="slo"/>`,
    `<text x="${LEFT_X + PANEL.width - 4}" y="${(yl(slo) - 5).toFixed(1)}" text-anchor="end" class="slo-label">p99 objective ${slo} ms</text>`,
    ...axes(xr, yr, RIGHT_X, 'Throughput: achieved against offered', 'offered rate (events/s)', 'achieved (events/s)'),
    `<line x1="${xr(minRate).toFixed(1)}" y1="${yr(minRate).toFixed(1)}" x2="${xr(maxRate).toFixed(1)}" y2="${yr(maxRate).toFixed(1)}" class="diagonal"/>`,
  ];
  for (const t of targets) {
    const colour = COLOURS[t.name];
    body.push(`<g class="target" data-target="${t.name}">`);
    body.push(...series(t.levels, xl, yl, (l) => l.latency.p50Ms, colour, true));
    body.push(...series(t.levels, xl, yl, (l) => l.latency.p99Ms, colour, false));
    body.push(...series(t.levels, xr, yr, (l) => l.achievedRate, colour, false));
    body.push('</g>');
  }
  // Legend: one entry per target, with its max sustainable rate.
  const legendY = bottom + (targets.length > LEGEND_PER_ROW ? 62 : 75);
  targets.forEach((t, i) => {
    const lx = 40 + (i % LEGEND_PER_ROW) * 228;
    const ly = legendY + Math.floor(i / LEGEND_PER_ROW) * 20;
    const rate = t.maxSustainableRate === null ? 'none sustainable' : `max ${label(t.maxSustainableRate)}/s`;
    body.push(
      `<line x1="${lx}" y1="${ly}" x2="${lx + 26}" y2="${ly}" stroke="${COLOURS[t.name]}" stroke-width="3"/>`,
      `<text x="${lx + 32}" y="${ly}" dominant-baseline="middle">${escapeXml(`${t.name} (${rate})`)}</text>`,
    );
  });
  const m = report.machine;
  const caption = `${report.config.pipeline.name} · ${m.cpuCount} × ${m.cpuModel} · Node ${m.node} · ${report.startedAt} · × = level not sustainable · ○ = at half the saturation rate · generator and system under test share the machine`;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="system-ui, sans-serif" font-size="12">`,
    '<style>.frame{fill:none;stroke:#333}.grid{stroke:#e4e4e4}.title{font-size:15px;font-weight:600}.slo{stroke:#d62728;stroke-dasharray:2 3}'
      + '.slo-label{fill:#d62728;font-size:11px}.diagonal{stroke:#999;stroke-dasharray:4 4}.caption{fill:#555;font-size:11px}</style>',
    `<rect width="${W}" height="${H}" fill="#fff"/>`,
    `<text x="${W / 2}" y="24" text-anchor="middle" class="title">verdict bench: Verdict and baselines against the offered rate</text>`,
    ...body,
    `<text x="${W / 2}" y="${H - 14}" text-anchor="middle" class="caption">${escapeXml(caption)}</text>`,
    '</svg>',
    '',
  ].join('\n');
}
