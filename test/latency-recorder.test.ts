/** The bench's latency summary: percentiles from the HDR histogram never read above the largest value recorded. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { LatencyRecorder } from '../bench/latency-recorder.js';

describe('latency recorder', () => {
  test('a percentile whose bucket tops the max is capped at the max (a p99.9 above the max once showed in the demo)', () => {
    const recorder = new LatencyRecorder();
    for (let i = 0; i < 499; i++) recorder.recordMs(5);
    recorder.recordMs(53.091); // one slow event: its HDR bucket (3 significant digits) ends above 53.091 ms
    const s = recorder.summary();
    assert.equal(s.maxMs, 53.091);
    assert.equal(s.p999Ms, 53.091);
    assert.ok(s.p50Ms <= s.p90Ms && s.p90Ms <= s.p99Ms && s.p99Ms <= s.p999Ms && s.p999Ms <= s.maxMs, JSON.stringify(s));
  });
});
