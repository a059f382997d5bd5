/**
 * The compose file for users (docker-compose.yml). No Docker engine runs here, so it is never started: Debian's
 * docker-compose parses and validates it (`docker-compose config`), and this test checks that its parts agree
 * with the rest of the repository (the pipeline's topics, the daemon config and its overrides, the scrape
 * target, the provisioned data source and dashboard, the files it mounts).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { before, describe, test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { loadDaemonConfig } from '../config/load-daemon.js';
import { loadPipelineFile } from '../config/load.js';
import { packageRoot } from '../core/paths.js';

interface ComposeService {
  readonly image?: string;
  readonly build?: { readonly context: string };
  readonly command?: readonly string[];
  readonly environment?: Readonly<Record<string, string | number | null>>;
  readonly depends_on?: Readonly<Record<string, { readonly condition: string }>>;
  readonly healthcheck?: { readonly test: readonly string[] };
  readonly ports?: ReadonlyArray<string | { readonly published: number; readonly target: number }>;
  readonly volumes?: readonly string[];
}

const root = packageRoot;
const prometheusConfig = parseYaml(readFileSync(resolve(root, 'ops/prometheus/prometheus.yml'), 'utf8')) as {
  scrape_configs: Array<{ job_name: string; static_configs: Array<{ targets: string[] }> }>;
};

/** The value following `flag` in a command line. */
const argOf = (command: readonly string[] | undefined, flag: string): string | undefined => command?.[command.indexOf(flag) + 1];

/** The published container ports of a service (either notation docker-compose prints). */
const targetPorts = (service: ComposeService): number[] =>
  (service.ports ?? []).map((p) => (typeof p === 'string' ? Number(/:(\d+)(\/tcp)?$/.exec(p)?.[1]) : p.target));

describe('docker-compose.yml', () => {
  let services: Record<string, ComposeService>;

  before(() => {
    // A clean environment: what a user's shell exports must not decide whether the file is valid.
    const out = execFileSync('docker-compose', ['--file', 'docker-compose.yml', 'config'], {
      cwd: root, encoding: 'utf8', env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '' },
    });
    services = (parseYaml(out) as { services: Record<string, ComposeService> }).services;
  });

  test('docker-compose config accepts it, with every service the stack needs', () => {
    assert.deepEqual(Object.keys(services).sort(), ['generator', 'grafana', 'kafka', 'kafka-init', 'prometheus', 'verdict']);
  });

  test('Verdict starts after Kafka is healthy and its topics exist, and reports its own health', () => {
    const verdict = services['verdict'];
    assert.deepEqual(verdict?.depends_on, {
      kafka: { condition: 'service_healthy' }, 'kafka-init': { condition: 'service_completed_successfully' },
    });
    assert.ok(services['kafka']?.healthcheck !== undefined);
    assert.match(verdict?.healthcheck?.test.join(' ') ?? '', /\/readyz/);
    assert.deepEqual(services['generator']?.depends_on, { 'kafka-init': { condition: 'service_completed_successfully' } });
  });

  test('Kafka runs in KRaft mode, single node', () => {
    const env = services['kafka']?.environment ?? {};
    assert.equal(env['KAFKA_PROCESS_ROLES'], 'broker,controller');
    assert.equal(env['KAFKA_CONTROLLER_QUORUM_VOTERS'], '1@kafka:9093');
    assert.equal(env['KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR'], 1);
  });

  test('the daemon and the generator are the Dockerfile\'s image', () => {
    for (const name of ['verdict', 'generator']) {
      assert.equal(services[name]?.build?.context, root, name);
      assert.equal(services[name]?.image, 'verdict:local', name);
    }
    assert.ok(existsSync(resolve(root, 'Dockerfile')));
  });

  test('kafka-init creates exactly the sample pipeline\'s topics, and the generator feeds its input', async () => {
    const pipeline = await loadPipelineFile(resolve(root, 'config/pipelines/card-risk.yaml'));
    const script = services['kafka-init']?.command?.join('\n') ?? '';
    const created = [...script.matchAll(/^create (\S+) \d+$/gm)].map((m) => m[1]);
    assert.deepEqual(created.sort(), [pipeline.input.topic, pipeline.output.topic, pipeline.output.deadLetter].sort());
    assert.equal(argOf(services['generator']?.command, 'generate'), '--brokers');
    assert.equal(argOf(services['generator']?.command, '--topic'), pipeline.input.topic);
  });

  test('the daemon config the image runs, with the compose overrides, reaches Kafka and serves metrics to Prometheus', async () => {
    const verdict = services['verdict'];
    const env = Object.fromEntries(Object.entries(verdict?.environment ?? {}).filter((e): e is [string, string] => typeof e[1] === 'string'));
    // The image's own command (compose does not replace it).
    assert.equal(verdict?.command, undefined);
    const cmd = /^CMD (\[.*\])$/m.exec(readFileSync(resolve(root, 'Dockerfile'), 'utf8'))?.[1];
    const configPath = argOf(JSON.parse(cmd ?? '[]') as string[], '--config') ?? '';
    const { config } = await loadDaemonConfig(resolve(root, configPath), env);
    assert.deepEqual(config.kafka.brokers, ['kafka:9092']);
    assert.equal(argOf(services['generator']?.command, '--brokers'), 'kafka:9092');
    assert.equal(config.metrics.host, '0.0.0.0');
    assert.ok(targetPorts(verdict ?? {}).includes(config.metrics.port));
    const scrape = prometheusConfig.scrape_configs.find((s) => s.job_name === 'verdict');
    assert.deepEqual(scrape?.static_configs.flatMap((s) => s.targets), [`verdict:${config.metrics.port}`]);
  });

  test('Prometheus mounts the checked config and rules; Grafana is provisioned with that Prometheus and the dashboard', () => {
    const mounts = Object.values(services).flatMap((s) => s.volumes ?? []).map((v) => v.split(':'));
    for (const [source] of mounts) assert.ok(source !== undefined && source.startsWith(root) && existsSync(source), `${source} exists`);
    const mountOf = (target: string): string | undefined => mounts.find((m) => m[1] === target)?.[0];
    assert.equal(mountOf('/etc/prometheus'), resolve(root, 'ops/prometheus'));
    execFileSync('promtool', ['check', 'config', 'prometheus.yml'], { cwd: resolve(root, 'ops/prometheus') });

    const provisioning = mountOf('/etc/grafana/provisioning') ?? '';
    const datasources = parseYaml(readFileSync(resolve(provisioning, 'datasources/prometheus.yaml'), 'utf8')) as { datasources: Array<{ type: string; url: string }> };
    const prometheusPort = targetPorts(services['prometheus'] ?? {})[0];
    assert.deepEqual(datasources.datasources.map((d) => [d.type, d.url]), [['prometheus', `http://prometheus:${prometheusPort}`]]);
    const dashboards = parseYaml(readFileSync(resolve(provisioning, 'dashboards/verdict.yaml'), 'utf8')) as { providers: Array<{ options: { path: string } }> };
    const folder = dashboards.providers[0]?.options.path ?? '';
    assert.equal(mountOf(`${folder}/verdict-dashboard.json`), resolve(root, 'ops/grafana/verdict-dashboard.json'));
  });

  test('the admin API stays on loopback unless the user sets it: published on the host\'s loopback only', () => {
    const env = services['verdict']?.environment ?? {};
    // Keys without a value: passed through from the user's shell only when set there.
    assert.equal(env['VERDICT_ADMIN__TOKEN'], null);
    assert.equal(env['VERDICT_ADMIN__HOST'], null);
    assert.ok((services['verdict']?.ports ?? []).includes('127.0.0.1:9465:9465/tcp'));
  });
});
