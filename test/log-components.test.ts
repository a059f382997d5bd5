/**
 * Every log line names one component, scoped under the components that made it (`daemon.registry`), so a
 * log pipeline that keeps one `component` key per line loses nothing.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { pino } from 'pino';
import { componentLogger, type Logger } from '../core/log.js';
import { ModelRegistry } from '../models/registry.js';

const FIXTURES = fileURLToPath(new URL('../../test/fixtures/registry/', import.meta.url));

/** A root logger like createLogger's, writing its JSON lines into `lines` instead of stderr. */
function capture(level = 'info'): { root: Logger; lines: string[] } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done): void {
      lines.push(...chunk.toString('utf8').split('\n').filter((l) => l !== ''));
      done();
    },
  });
  return { root: pino({ name: 'verdict', level }, sink), lines };
}

const componentKeys = (line: string): number => line.split('"component":').length - 1;

describe('log lines carry one scoped component', () => {
  test('a registry made with the daemon\'s logger logs "daemon.registry", once per line', async () => {
    const { root, lines } = capture();
    const dir = await mkdtemp(join(tmpdir(), 'verdict-log-'));
    try {
      const registry = new ModelRegistry(dir, componentLogger(root, 'daemon'));
      await registry.register('demo', join(FIXTURES, 'linear4.onnx'));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    const registered = lines.filter((l) => l.includes('"msg":"model registered"'));
    assert.equal(registered.length, 1);
    const line = registered[0]!;
    assert.equal(componentKeys(line), 1);
    const parsed = JSON.parse(line) as { component: string; name: string; ref: string };
    assert.deepEqual([parsed.component, parsed.name, parsed.ref], ['daemon.registry', 'verdict', 'demo@1']);
  });

  test('three levels deep: one dotted name, and each parent\'s other bindings once', () => {
    const { root, lines } = capture();
    const engine = componentLogger(componentLogger(root, 'daemon'), 'engine', { pipeline: 'fraud' });
    componentLogger(engine, 'model_actor', { model: 'fraud@2' }).warn('batch failed');
    assert.equal(lines.length, 1);
    const line = lines[0]!;
    assert.equal(componentKeys(line), 1);
    assert.equal(line.split('"pipeline":').length - 1, 1);
    assert.equal(line.split('"name":').length - 1, 1);
    const { component, pipeline, model } = JSON.parse(line) as Record<string, unknown>;
    assert.deepEqual([component, pipeline, model], ['daemon.engine.model_actor', 'fraud', 'fraud@2']);
  });

  test('a component at the root is named alone, and a child keeps its parent\'s level', () => {
    const { root, lines } = capture('info');
    const daemon = componentLogger(root, 'daemon');
    daemon.level = 'debug';
    const source = componentLogger(daemon, 'kafka_source', { groupId: 'g' });
    source.debug('assigned');
    daemon.info('starting');
    assert.deepEqual(lines.map((l) => [componentKeys(l), (JSON.parse(l) as { component: string }).component]),
      [[1, 'daemon.kafka_source'], [1, 'daemon']]);
  });
});
