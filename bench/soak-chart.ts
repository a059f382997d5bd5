/**
 * The soak's chart, hand-written SVG like chart.ts: four panels over time since the load started (minutes),
 * each with its series, the least-squares line fitted after the warm-up (dashed) and the warm-up shaded:
 * memory (RSS and V8 heap used, MiB), the system under test's event-loop delay p99 (ms), the p99 latency
 * per window (ms) and the throughput per window (events/s). Linear axes from zero: a slope is read as a
 * slope.
 */
import type { SoakResult } from './soak.js';
import { fitLine, type Trend } from './soak-trend.js';

const W = 1200;
const H = 790;
const PANEL = { width: 470, height: 250 };
const LEFT = [90, 680] as const;
const TOP = [70, 410] as const;
const MiB = 2 ** 20;

function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** 1-2-5 ticks from 0 to at least `max`. */
function niceTicks(max: number): number[] {
  const top = max > 0 && Number.isFinite(max) ? max : 1;
  const raw = top / 5;
  const d = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((s) => s * d).find((s) => s >= raw) ?? 10 * d;
  const ticks: number[] = [];
  for (let t = 0; t <= top + step * 0.999; t += step) ticks.push(Number(t.toPrecision(6)));
  return ticks;
}

const label = (v: number): string => (Math.abs(v) >= 1000 ? `${Number((v / 1000).toPrecision(3))}k` : `${Number(v.toPrecision(3))}`);

interface Line {
  readonly name: string;
  readonly colour: string;
  readonly points: ReadonlyArray<readonly [number, number]>;
  readonly trend?: Trend;
}

function panel(col: 0 | 1, row: 0 | 1, title: string, yTitle: string, lines: readonly Line[], xMaxMin: number, warmupMin: number, fromS: number, scale: number): string[] {
  const left = LEFT[col];
  const top = TOP[row];
  const bottom = top + PANEL.height;
  const all = lines.flatMap((l) => l.points.map(([, v]) => v / scale));
  const yTicks = niceTicks(Math.max(0, ...all) * 1.05);
  const yMax = yTicks.at(-1) ?? 1;
  const xTicks = niceTicks(xMaxMin);
  const xMax = xTicks.at(-1) ?? 1;
  const x = (min: number): number => left + (min / xMax) * PANEL.width;
  const y = (v: number): number => bottom - (Math.max(0, Math.min(v, yMax)) / yMax) * PANEL.height;
  const out = [
    `<text x="${left + PANEL.width / 2}" y="${top - 14}" text-anchor="middle" class="title">${escapeXml(title)}</text>`,
    `<rect x="${left}" y="${top}" width="${(x(warmupMin) - left).toFixed(1)}" height="${PANEL.height}" class="warmup"/>`,
    `<rect x="${left}" y="${top}" width="${PANEL.width}" height="${PANEL.height}" class="frame"/>`,
  ];
  for (const t of xTicks) out.push(`<line x1="${x(t).toFixed(1)}" y1="${top}" x2="${x(t).toFixed(1)}" y2="${bottom}" class="grid"/>`, `<text x="${x(t).toFixed(1)}" y="${bottom + 16}" text-anchor="middle">${label(t)}</text>`);
  for (const t of yTicks) out.push(`<line x1="${left}" y1="${y(t).toFixed(1)}" x2="${left + PANEL.width}" y2="${y(t).toFixed(1)}" class="grid"/>`, `<text x="${left - 8}" y="${y(t).toFixed(1)}" text-anchor="end" dominant-baseline="middle">${label(t)}</text>`);
  out.push(
    `<text x="${left + PANEL.width / 2}" y="${bottom + 36}" text-anchor="middle">minutes since the load started (shaded: warm-up, left out of the slopes)</text>`,
    `<text x="${left - 58}" y="${top + PANEL.height / 2}" text-anchor="middle" transform="rotate(-90 ${left - 58} ${top + PANEL.height / 2})">${escapeXml(yTitle)}</text>`,
  );
  lines.forEach((l, i) => {
    const pts = l.points.map(([s, v]) => `${x(s / 60).toFixed(1)},${y(v / scale).toFixed(1)}`);
    if (pts.length > 0) out.push(`<polyline points="${pts.join(' ')}" fill="none" stroke="${l.colour}" stroke-width="1.5"/>`);
    const after = l.points.filter(([s]) => s >= fromS);
    if (after.length >= 2) {
      // The fitted line, drawn in the panel's units from the first to the last sample after the warm-up.
      const fit = fitLine(after.map(([s, v]) => [s, v / scale] as const));
      const [a, b] = [after[0]![0], after.at(-1)![0]];
      out.push(`<line x1="${x(a / 60).toFixed(1)}" y1="${y(fit.intercept + fit.slope * a).toFixed(1)}" x2="${x(b / 60).toFixed(1)}" y2="${y(fit.intercept + fit.slope * b).toFixed(1)}" stroke="${l.colour}" stroke-width="2" stroke-dasharray="6 4"/>`);
    }
    const t = l.trend;
    const legend = t === undefined ? l.name : `${l.name}: ${slopeLabel(t, scale)} (${t.verdict})`;
    // Under the axis title, clear of the data.
    const ly = bottom + 54 + i * 16;
    out.push(
      `<line x1="${left + 8}" y1="${ly}" x2="${left + 28}" y2="${ly}" stroke="${l.colour}" stroke-width="3"/>`,
      `<text x="${left + 34}" y="${ly}" dominant-baseline="middle" class="legend">${escapeXml(legend)}</text>`,
    );
  });
  return out;
}

function slopeLabel(t: Trend, scale: number): string {
  const unit = t.unit === 'bytes' ? 'MiB' : t.unit;
  const v = t.slopePerHour / (t.unit === 'bytes' ? MiB : scale);
  return `${v >= 0 ? '+' : ''}${Number(v.toPrecision(3))} ${unit}/h`;
}

export function renderSoakChart(soak: SoakResult, caption: string): string {
  const xMaxMin = Math.max(soak.durationS / 60, ...soak.samples.map((s) => s.atS / 60));
  const warmupMin = soak.warmupS / 60;
  const pts = (f: (s: SoakResult['samples'][number]) => number | null): Array<readonly [number, number]> =>
    soak.samples.flatMap((s) => { const v = f(s); return v === null ? [] : [[s.atS, v] as const]; });
  const t = soak.trends;
  const body = [
    ...panel(0, 0, 'Memory of the system under test', 'MiB', [
      { name: 'RSS', colour: '#1f77b4', points: pts((s) => s.rssBytes), trend: t.rssBytes },
      { name: 'V8 heap used', colour: '#ff7f0e', points: pts((s) => s.heapUsedBytes), trend: t.heapUsedBytes },
    ], xMaxMin, warmupMin, soak.warmupS, MiB),
    ...panel(1, 0, 'Event-loop delay p99 (system under test\'s main thread)', 'ms', [
      { name: 'p99 per sample', colour: '#9467bd', points: pts((s) => s.eventLoopP99Ms), trend: t.eventLoopP99Ms },
    ], xMaxMin, warmupMin, soak.warmupS, 1),
    ...panel(0, 1, 'Latency p99 per window (intended send → output read)', 'ms', [
      { name: 'p99', colour: '#d62728', points: soak.windows.filter((w) => w.throughput > 0).map((w) => [w.atS, w.p99Ms] as const), trend: t.latencyP99Ms },
    ], xMaxMin, warmupMin, soak.warmupS, 1),
    ...panel(1, 1, 'Throughput per window', 'events/s', [
      { name: 'achieved', colour: '#2ca02c', points: soak.windows.map((w) => [w.atS, w.throughput] as const), trend: t.throughput },
    ], xMaxMin, warmupMin, soak.warmupS, 1),
  ];
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="system-ui, sans-serif" font-size="12">`,
    '<style>.frame{fill:none;stroke:#333}.grid{stroke:#e4e4e4}.title{font-size:14px;font-weight:600}.warmup{fill:#f2f2f2}.legend{font-size:11px}.caption{fill:#555;font-size:11px}</style>',
    `<rect width="${W}" height="${H}" fill="#fff"/>`,
    `<text x="${W / 2}" y="24" text-anchor="middle" class="title">${escapeXml(`verdict bench --soak: ${soak.rate}/s for ${Math.round(soak.durationS / 6) / 10} min, sampled every ${soak.sampleS} s (dashed: least-squares line after the warm-up)`)}</text>`,
    ...body,
    `<text x="${W / 2}" y="${H - 14}" text-anchor="middle" class="caption">${escapeXml(caption)}</text>`,
    '</svg>',
    '',
  ].join('\n');
}
