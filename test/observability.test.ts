import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startMetricsServer, type MetricsServer } from '../core/metrics-server.js';
import { packageRoot, defaultPipelinePath } from '../core/paths.js';
import { Engine } from '../runtime/engine.js';
import { EmbeddedLog } from '../streams/embedded/embedded-log.js';
import { createMetrics } from '../core/metrics.js';
import { transactions } from './helpers/pipelines.js';

const ops = resolve(packageRoot, 'ops');
const promtool = (...args: string[]) => execFileSync('promtool', args, { encoding: 'utf8', cwd: resolve(ops, 'prometheus') });

interface DashboardPanel { readonly id: number; readonly type: string; readonly title: string; readonly gridPos: { readonly y: number }; readonly targets?: ReadonlyArray<{ readonly refId: string; readonly expr: string }> }
const dashboard = JSON.parse(readFileSync(resolve(ops, 'grafana/verdict-dashboard.json'), 'utf8')) as { panels: DashboardPanel[] };
const queries = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p, ...t })));

/** The metric families of live model operations (issue 11's contract): each has a panel of its own. */
const liveModelFamilies = [
  'verdict_model_info', 'verdict_model_queue_wait_seconds', 'verdict_model_swaps_total', 'verdict_shadow_decisions_total',
  'verdict_shadow_score_difference', 'verdict_shadow_latency_difference_seconds', 'verdict_shadow_dropped_total',
  'verdict_admin_requests_total', 'verdict_shadow_topic_sent_total', 'verdict_shadow_topic_dropped_total',
];

/** The metric families of per-key state (issue 12): each is on the dashboard's "Per-key state" row. */
const stateFamilies = [
  'verdict_state_keys', 'verdict_state_bytes', 'verdict_state_evictions_total', 'verdict_state_late_events_total',
  'verdict_state_replayed_events_total', 'verdict_state_distinct_saturated_total', 'verdict_state_restore_seconds',
  'verdict_state_restoring_partitions', 'verdict_state_changelog_records_total',
];

describe('metrics, alert rules and dashboard', () => {
  let engine: Engine;
  let server: MetricsServer;
  let scraped = '';

  before(async () => {
    const metrics = createMetrics({ processMetrics: true });
    engine = await Engine.create(defaultPipelinePath, { metrics });
    const log = new EmbeddedLog();
    const { input, output } = engine.pipeline;
    log.createTopic(input.topic, 2);
    await log.producer().send([
      ...transactions(300, 9).map(({ event }) => ({ topic: input.topic, key: String(event['key']), value: JSON.stringify(event), headers: [] })),
      { topic: input.topic, key: 'bad', value: 'not json', headers: [] },
    ]);
    const stream = engine.stream(log.consumer({ groupId: 'obs', topics: [input.topic] }), log.producer());
    await log.waitForRecords(output.topic, 300);
    await log.waitForRecords(output.deadLetter, 1);
    await stream.drain(5_000);
    server = await startMetricsServer({ registry: metrics.registry, remote: () => engine.workerMetrics(), host: '127.0.0.1', port: 0, ready: () => true });
    const res = await fetch(`http://127.0.0.1:${server.port}/metrics`);
    assert.equal(res.status, 200);
    scraped = await res.text();
  });
  after(async () => {
    await server.close();
    await engine.close();
  });

  test('the scraped exposition counts what happened', () => {
    assert.match(scraped, /verdict_events_in_total\{pipeline="card-risk"\} 301/);
    assert.match(scraped, /verdict_dead_letters_total\{pipeline="card-risk",code="INPUT_DECODE_FAILED"\} 1/);
    const decided = [...scraped.matchAll(/verdict_decisions_total\{pipeline="card-risk",action="\w+"\} (\d+)/g)].reduce((n, m) => n + Number(m[1]), 0);
    assert.equal(decided, 300);
    assert.match(scraped, /verdict_model_batch_size_count\{model="fraud_gbt@3"\} [1-9]/);
    assert.match(scraped, /verdict_process_resident_memory_bytes \d+/);
  });

  test('promtool accepts the exposition', () => {
    const dir = mkdtempSync(join(tmpdir(), 'verdict-metrics-'));
    writeFileSync(join(dir, 'metrics.txt'), scraped);
    const r = spawnSync('sh', ['-c', `promtool check metrics < ${join(dir, 'metrics.txt')}`], { encoding: 'utf8' });
    // prom-client's own Node.js gauges end in _total, which promtool's linter flags; that is its naming, not
    // ours. Every other finding, and any parse error, fails the test.
    const findings = `${r.stdout}${r.stderr}`.split('\n').filter((l) => l.trim() !== '' && !/^verdict_nodejs_active_\w+_total non-counter/.test(l));
    assert.deepEqual(findings, []);
  });

  test('the alert rules are valid and fire on the series they are about', () => {
    assert.match(promtool('check', 'rules', 'alerts.yaml'), /SUCCESS: 15 rules found/);
    assert.match(promtool('test', 'rules', 'alerts.test.yaml'), /SUCCESS/);
  });

  test('the dashboard has a panel for each live-model, shadow and admin metric family', () => {
    const missing = liveModelFamilies.filter((family) => !queries.some((q) => new RegExp(`\\b${family}(_bucket|_sum|_count)?\\{`).test(q.expr)));
    assert.deepEqual(missing, []);
  });

  test('the dashboard has a "Per-key state" row with a panel for each state metric family', () => {
    const { panels } = dashboard;
    const row = panels.find((p) => p.type === 'row' && p.title === 'Per-key state');
    assert.ok(row !== undefined, 'no "Per-key state" row');
    // A row holds the panels below it, up to the next row.
    const nextRow = panels.find((p) => p.type === 'row' && p.gridPos.y > row.gridPos.y);
    const below = panels.filter((p) => p.gridPos.y > row.gridPos.y && (nextRow === undefined || p.gridPos.y < nextRow.gridPos.y));
    const exprs = below.flatMap((p) => (p.targets ?? []).map((t) => t.expr));
    const missing = stateFamilies.filter((family) => !exprs.some((e) => new RegExp(`\\b${family}(_bucket|_sum|_count)?\\{`).test(e)));
    assert.deepEqual(missing, []);
  });

  test('every dashboard query is valid PromQL', () => {
    // promtool parses a rules file: each query becomes a recording rule, with the dashboard's variables filled in.
    const rules = queries.map((q) => ({
      record: `dashboard_panel_${q.panel.id}_${q.refId}`,
      expr: q.expr.replaceAll('$instance', '.*').replaceAll('$shadow_step', 'gbt').replaceAll('$__range', '1h'),
    }));
    assert.ok(rules.length >= 30, `${rules.length} queries`);
    const dir = mkdtempSync(join(tmpdir(), 'verdict-dashboard-'));
    // JSON is YAML: no YAML writer needed.
    writeFileSync(join(dir, 'queries.yaml'), JSON.stringify({ groups: [{ name: 'dashboard', rules }] }));
    const r = spawnSync('promtool', ['check', 'rules', join(dir, 'queries.yaml')], { encoding: 'utf8' });
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
    assert.match(r.stdout, new RegExp(`SUCCESS: ${rules.length} rules found`));
  });

  test('every verdict metric the rules and the dashboard query is one the daemon exports', () => {
    const exported = new Set([...scraped.matchAll(/^# TYPE (\w+) (\w+)/gm)].flatMap((m) => {
      const name = m[1] ?? '';
      return m[2] === 'histogram' ? [name, `${name}_bucket`, `${name}_sum`, `${name}_count`] : [name];
    }));
    const sources = [readFileSync(resolve(ops, 'prometheus/alerts.yaml'), 'utf8'), readFileSync(resolve(ops, 'grafana/verdict-dashboard.json'), 'utf8')];
    const used = new Set(sources.flatMap((s) => [...s.matchAll(/\b(verdict_[a-z_]+)/g)].map((m) => m[1] ?? '')));
    // Exported only by the daemon (lifecycle is set by it; lag is sampled from Kafka), so absent here.
    const daemonOnly = new Set(['verdict_lifecycle_state', 'verdict_consumer_lag']);
    // Issue 11's families, named by its contract, are registered by branches that land separately from the
    // dashboard and the rules. Those not yet registered are listed here; the second assertion fails once one
    // is exported, so the list cannot outlive its reason.
    const registeredFamilies = new Set([
      'verdict_admin_requests_total',
      'verdict_model_info', 'verdict_model_queue_wait_seconds', 'verdict_model_swaps_total',
      'verdict_shadow_decisions_total', 'verdict_shadow_score_difference', 'verdict_shadow_latency_difference_seconds', 'verdict_shadow_dropped_total',
      'verdict_shadow_topic_sent_total', 'verdict_shadow_topic_dropped_total',
    ]);
    const pending = liveModelFamilies.filter((f) => !registeredFamilies.has(f));
    const notYetRegistered = new Set(pending.flatMap((f) => [f, `${f}_bucket`, `${f}_sum`, `${f}_count`]));
    const missing = [...used].filter((n) => !exported.has(n) && !daemonOnly.has(n) && !notYetRegistered.has(n));
    assert.deepEqual(missing, []);
    const landed = pending.filter((f) => exported.has(f));
    assert.deepEqual(landed, [], 'exported now: add them to registeredFamilies');
    assert.deepEqual([...registeredFamilies].filter((f) => !exported.has(f)), [], 'registered families are exported');
    assert.ok(used.size >= 12, `rules and dashboard use ${used.size} metrics`);
  });
});
