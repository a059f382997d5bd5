/**
 * The circuit breaker through a real engine: real ONNX models in a Piscina inference worker that dies on a
 * marked row (crashing-worker.ts), metrics served over HTTP and scraped. Two events whose rows crash their
 * worker open each model's breaker; `/metrics` shows the gauge open and the transition counted; a third
 * poisoned event is refused without reaching a worker (no further crash); after the cool-down the next
 * event is the probe, and its success closes the breaker.
 */
import assert from 'node:assert/strict';
import { dirname } from 'node:path';
import { after, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ModelCircuitOpenError } from '../core/errors.js';
import { createMetrics } from '../core/metrics.js';
import { startMetricsServer, type MetricsServer } from '../core/metrics-server.js';
import { PiscinaRunner } from '../runtime/workers/piscina-runner.js';
import { Engine } from '../runtime/engine.js';
import { CRASH_MARKER } from './fixtures/actors/crashing-worker.js';
import { crashPipeline } from './helpers/crash.js';
import { samplePipeline, samplePipelinePath, transactions } from './helpers/pipelines.js';

const COOL_DOWN_MS = 1_500;

describe('circuit breaker, observed in /metrics', () => {
  let engine: Engine | undefined;
  let server: MetricsServer | undefined;
  const metrics = createMetrics();
  const runner = new PiscinaRunner({ threads: 1, filename: new URL('./fixtures/actors/crashing-worker.js', import.meta.url), metrics });
  after(async () => {
    await server?.close();
    await engine?.close();
    await runner.close();
  });

  const scrape = async (): Promise<string> => {
    const res = await fetch(`http://127.0.0.1:${server!.port}/metrics`);
    assert.equal(res.status, 200);
    return res.text();
  };
  const restarts = async (): Promise<number> => (await metrics.workerRestarts.get()).values[0]?.value ?? 0;

  test('opens after consecutive crashes, refuses rows while open, and closes after a successful probe', { timeout: 120_000 }, async () => {
    const file = await samplePipeline();
    const pipeline = crashPipeline(file, 'inference');
    engine = await Engine.create(
      { ...pipeline, models: { ...pipeline.models, circuitBreaker: { failureThreshold: 2, coolDownMs: COOL_DOWN_MS } } },
      { baseDir: dirname(samplePipelinePath), runner, metrics },
    );
    server = await startMetricsServer({ registry: metrics.registry, host: '127.0.0.1', port: 0, ready: () => true });
    const events = transactions(4, 17).map(({ event }) => event);
    const poisoned = (i: number) => ({ ...events[i]!, ip_risk: CRASH_MARKER });

    assert.match(await scrape(), /verdict_model_circuit_state\{model="fraud_gbt@3"\} 0/);
    for (const i of [0, 1]) {
      const result = await engine.evaluate(poisoned(i));
      assert.equal(result.outcome.kind, 'dead-letter');
    }
    const opened = await scrape();
    assert.match(opened, /verdict_model_circuit_state\{model="fraud_gbt@3"\} 1/);
    assert.match(opened, /verdict_model_circuit_state\{model="txn_autoencoder@2"\} 1/);
    assert.match(opened, /verdict_model_circuit_transitions_total\{model="fraud_gbt@3",to="open"\} 1/);

    // While open, even a poisoned row is refused before it reaches a worker: no further crash.
    const crashes = await restarts();
    const refused = await engine.evaluate(poisoned(2));
    assert.equal(await restarts(), crashes);
    assert.equal(refused.outcome.kind, 'decision', 'MODEL_CIRCUIT_OPEN is the model unavailable, left to the incomplete policy');
    assert.deepEqual(refused.decision?.completeness, { gbt: 'error', anomaly: 'error', mlp: 'skipped' });
    assert.match(await scrape(), new RegExp(`verdict_errors_total\\{component="model_actor",code="${ModelCircuitOpenError.code}"\\} [1-9]`));

    // After the cool-down the next event's rows are the probes; they succeed and close the breakers.
    await sleep(COOL_DOWN_MS + 100);
    const probe = await engine.evaluate(events[3]!);
    assert.equal(probe.decision?.complete, true);
    const closed = await scrape();
    assert.match(closed, /verdict_model_circuit_state\{model="fraud_gbt@3"\} 0/);
    assert.match(closed, /verdict_model_circuit_transitions_total\{model="fraud_gbt@3",to="half-open"\} 1/);
    assert.match(closed, /verdict_model_circuit_transitions_total\{model="fraud_gbt@3",to="closed"\} 1/);
  });
});
