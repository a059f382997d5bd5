/**
 * The admin API's HTTP layer over a real listener (node:http, global fetch), against a recording stand-in
 * for the daemon: authentication, off without a token, 4xx answers with JSON error bodies, the request
 * counter, and sharing the metrics endpoint.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ModelNotFoundError } from '../core/errors.js';
import { silentLogger } from '../core/log.js';
import { createMetrics } from '../core/metrics.js';
import { serveHttp, startMetricsServer, type HttpEndpoint } from '../core/metrics-server.js';
import { bearerCheck } from '../runtime/admin/admin-auth.js';
import { adminPlacement } from '../runtime/admin/admin-endpoint.js';
import { createAdminHandler } from '../runtime/admin/admin-handler.js';
import type { AdminConsumption, AdminTarget } from '../runtime/admin/admin-target.js';

const TOKEN = 'test-token-0123456789abcdef';

/** A stand-in daemon that records what it was asked. */
function recordingTarget() {
  const calls: string[] = [];
  let paused = false;
  const consumption = (changed: boolean): AdminConsumption => ({ paused, changed, partitions: 2 });
  const change = (name: string, to: number, alias = 'production') => ({ change: { name, alias, from: 1, to, at: '2026-01-01T00:00:00.000Z' }, swaps: null });
  const target: AdminTarget = {
    status: () => Promise.resolve({ lifecycle: 'running', paused, assignment: [], lagAgeMs: null, versions: { steps: [] }, breakers: [] }),
    models: () => Promise.resolve({ models: [] }),
    promote: (name, version, alias) => {
      calls.push(`promote ${name} ${version} ${alias ?? '-'}`);
      if (name !== 'fraud_gbt') return Promise.reject(new ModelNotFoundError(`model ${name} is not in the registry`));
      return Promise.resolve(change(name, version, alias));
    },
    rollback: (name, alias) => { calls.push(`rollback ${name} ${alias ?? '-'}`); return Promise.resolve(change(name, 1, alias)); },
    pause: () => { calls.push('pause'); const c = !paused; paused = true; return consumption(c); },
    resume: () => { calls.push('resume'); const c = paused; paused = false; return consumption(c); },
    config: () => ({ pipeline: '/p.yaml', config: { admin: { token: '[redacted]' } }, redacted: ['admin.token'], overridden: [] }),
  };
  return { target, calls };
}

interface Answer { status: number; body: { error?: { code: string; message: string } } & Record<string, unknown>; headers: Headers }

async function call(port: number, method: string, path: string, init: { token?: string | null; body?: string; headers?: Record<string, string> } = {}): Promise<Answer> {
  const token = init.token === undefined ? TOKEN : init.token;
  const response = await fetch(`http://127.0.0.1:${port}${path}`, {
    method,
    headers: { ...(token === null ? {} : { authorization: `Bearer ${token}` }), ...init.headers },
    ...(init.body === undefined ? {} : { body: init.body }),
  });
  assert.match(response.headers.get('content-type') ?? '', /^application\/json/, `${method} ${path} answers JSON`);
  return { status: response.status, body: await response.json() as Answer['body'], headers: response.headers };
}

const counted = async (metrics: ReturnType<typeof createMetrics>, endpoint: string, status: number): Promise<number> =>
  (await metrics.adminRequests.get()).values.find((v) => v.labels['endpoint'] === endpoint && v.labels['status'] === String(status))?.value ?? 0;

describe('admin API over HTTP', () => {
  const metrics = createMetrics();
  const { target, calls } = recordingTarget();
  let server: HttpEndpoint;
  before(async () => {
    server = await serveHttp(createAdminHandler({ token: TOKEN, target, logger: silentLogger, metrics }), { host: '127.0.0.1', port: 0, what: 'admin endpoint' });
  });
  after(() => server.close());

  test('a missing token is refused with 401 ADMIN_UNAUTHORIZED, and nothing is done', async () => {
    const r = await call(server.port, 'POST', '/admin/pause', { token: null });
    assert.equal(r.status, 401);
    assert.equal(r.body.error?.code, 'ADMIN_UNAUTHORIZED');
    assert.match(r.body.error?.message ?? '', /missing bearer token/);
    assert.equal(r.headers.get('www-authenticate'), 'Bearer');
    assert.deepEqual(calls, []);
  });

  test('a wrong token, one character off or of another length, is refused with 401', async () => {
    for (const wrong of [`${TOKEN.slice(0, -1)}X`, `${TOKEN}x`, 'short', TOKEN.toUpperCase()]) {
      const r = await call(server.port, 'GET', '/admin/status', { token: wrong });
      assert.equal(r.status, 401, wrong);
      assert.equal(r.body.error?.code, 'ADMIN_UNAUTHORIZED');
      assert.equal(r.body.error?.message, 'wrong bearer token');
    }
    const basic = await call(server.port, 'GET', '/admin/status', { token: null, headers: { authorization: `Basic ${TOKEN}` } });
    assert.equal(basic.status, 401, 'only the Bearer scheme');
    assert.deepEqual(calls, []);
  });

  test('an unauthenticated caller learns nothing about routes: an unknown path is 401 too', async () => {
    const r = await call(server.port, 'GET', '/admin/nope', { token: null });
    assert.equal(r.status, 401);
  });

  test('the right token reads the status and the redacted config', async () => {
    const status = await call(server.port, 'GET', '/admin/status');
    assert.equal(status.status, 200);
    assert.equal(status.body['lifecycle'], 'running');
    assert.equal(status.headers.get('cache-control'), 'no-store');
    const config = await call(server.port, 'GET', '/admin/config?pretty=1');
    assert.equal(config.status, 200);
    assert.deepEqual(config.body['redacted'], ['admin.token']);
  });

  test('an unknown path is 404 ADMIN_NOT_FOUND, a wrong method 405 with Allow', async () => {
    for (const path of ['/admin', '/admin/', '/admin/statuz', '/admin/status/extra', '/admin/models/fraud_gbt/delete', '/admin/models//promote']) {
      const r = await call(server.port, 'GET', path);
      assert.equal(r.status, 404, path);
      assert.equal(r.body.error?.code, 'ADMIN_NOT_FOUND');
    }
    const get = await call(server.port, 'GET', '/admin/pause');
    assert.equal(get.status, 405);
    assert.equal(get.body.error?.code, 'ADMIN_METHOD_NOT_ALLOWED');
    assert.equal(get.headers.get('allow'), 'POST');
    const post = await call(server.port, 'POST', '/admin/status', { body: '{}' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get('allow'), 'GET');
    const del = await call(server.port, 'DELETE', '/admin/models/fraud_gbt/promote');
    assert.equal(del.status, 405);
    assert.deepEqual(calls, []);
  });

  test('malformed or invalid bodies are 400 ADMIN_BAD_REQUEST naming the field', async () => {
    const cases: Array<[string, string, RegExp]> = [
      ['/admin/models/fraud_gbt/promote', '{"version": 2', /not JSON/],
      ['/admin/models/fraud_gbt/promote', '', /version/],
      ['/admin/models/fraud_gbt/promote', '{"version": "2"}', /version/],
      ['/admin/models/fraud_gbt/promote', '{"version": 1.5}', /version/],
      ['/admin/models/fraud_gbt/promote', '{"version": 0}', /version/],
      ['/admin/models/fraud_gbt/promote', '{"version": 2, "force": true}', /force/],
      ['/admin/models/fraud_gbt/promote', '[2]', /\(root\)/],
      ['/admin/models/fraud_gbt/rollback', '{"alias": 7}', /alias/],
      ['/admin/pause', '{"now": true}', /now/],
      ['/admin/models/%E0%A4%A/promote', '{"version": 2}', /malformed path/],
    ];
    for (const [path, body, message] of cases) {
      const r = await call(server.port, 'POST', path, { body });
      assert.equal(r.status, 400, `${path} ${body}`);
      assert.equal(r.body.error?.code, 'ADMIN_BAD_REQUEST');
      assert.match(r.body.error?.message ?? '', message, `${path} ${body}`);
    }
    assert.deepEqual(calls, [], 'the target was never asked');
  });

  test('a body over 64 KiB is 413 ADMIN_BODY_TOO_LARGE', async () => {
    const r = await call(server.port, 'POST', '/admin/models/fraud_gbt/promote', { body: JSON.stringify({ version: 2, alias: 'x'.repeat(70_000) }) });
    assert.equal(r.status, 413);
    assert.equal(r.body.error?.code, 'ADMIN_BODY_TOO_LARGE');
    // Chunked, with no declared length: refused once the bytes read pass the bound.
    const chunk = new TextEncoder().encode(' '.repeat(16 * 1024));
    const body = new ReadableStream<Uint8Array>({
      pull(controller) { controller.enqueue(chunk); },
    });
    const response = await fetch(`http://127.0.0.1:${server.port}/admin/pause`, {
      method: 'POST', headers: { authorization: `Bearer ${TOKEN}` }, body, duplex: 'half',
    });
    assert.equal(response.status, 413);
    assert.equal(((await response.json()) as Answer['body']).error?.code, 'ADMIN_BODY_TOO_LARGE');
    assert.deepEqual(calls, []);
  });

  test('promote, rollback, pause and resume reach the target; its typed errors keep their status', async () => {
    const promote = await call(server.port, 'POST', '/admin/models/fraud_gbt/promote', { body: '{"version": 2, "alias": "canary"}' });
    assert.equal(promote.status, 200);
    assert.deepEqual((promote.body['change'] as { to: number }).to, 2);
    const unknown = await call(server.port, 'POST', '/admin/models/nobody/promote', { body: '{"version": 2}' });
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error?.code, 'MODEL_NOT_FOUND');
    assert.equal((await call(server.port, 'POST', '/admin/models/fraud_gbt/rollback')).status, 200);
    const pause = await call(server.port, 'POST', '/admin/pause');
    assert.deepEqual(pause.body, { paused: true, changed: true, partitions: 2 });
    assert.deepEqual((await call(server.port, 'POST', '/admin/pause', { body: '{}' })).body, { paused: true, changed: false, partitions: 2 });
    assert.deepEqual((await call(server.port, 'POST', '/admin/resume')).body, { paused: false, changed: true, partitions: 2 });
    assert.deepEqual(calls, ['promote fraud_gbt 2 canary', 'promote nobody 2 -', 'rollback fraud_gbt -', 'pause', 'pause', 'resume']);
  });

  test('every request is counted by endpoint and status', async () => {
    assert.ok(await counted(metrics, 'pause', 401) >= 1);
    assert.ok(await counted(metrics, 'unknown', 404) >= 4);
    assert.equal(await counted(metrics, 'promote', 413), 1);
    assert.equal(await counted(metrics, 'pause', 413), 1);
    assert.equal(await counted(metrics, 'promote', 404), 1);
    assert.equal(await counted(metrics, 'resume', 200), 1);
  });
});

describe('admin API off', () => {
  test('with no token configured every /admin path is 403 ADMIN_DISABLED, even with a token sent', async () => {
    const { target, calls } = recordingTarget();
    const server = await serveHttp(createAdminHandler({ token: undefined, target, logger: silentLogger }), { host: '127.0.0.1', port: 0, what: 'admin' });
    try {
      for (const [method, path, token] of [['GET', '/admin/status', TOKEN], ['POST', '/admin/pause', TOKEN], ['GET', '/admin/nope', null], ['GET', '/admin/config', '']] as const) {
        const r = await call(server.port, method, path, { token });
        assert.equal(r.status, 403, `${method} ${path}`);
        assert.equal(r.body.error?.code, 'ADMIN_DISABLED');
        assert.match(r.body.error?.message ?? '', /VERDICT_ADMIN__TOKEN/);
      }
      assert.deepEqual(calls, []);
    } finally {
      await server.close();
    }
  });
});

describe('admin API placement', () => {
  test('sharing the metrics host and port, it is served by the metrics endpoint beside /metrics', async () => {
    const metrics = createMetrics();
    const { target } = recordingTarget();
    const handler = createAdminHandler({ token: TOKEN, target, logger: silentLogger, metrics });
    const server = await startMetricsServer({ registry: metrics.registry, host: '127.0.0.1', port: 0, ready: () => true, mounts: { '/admin': handler } });
    try {
      assert.equal((await call(server.port, 'GET', '/admin/status')).status, 200);
      assert.equal((await call(server.port, 'GET', '/admin/status', { token: null })).status, 401);
      const scrape = await (await fetch(`http://127.0.0.1:${server.port}/metrics`)).text();
      assert.match(scrape, /verdict_admin_requests_total\{endpoint="status",status="200"\} 1/);
      assert.equal((await fetch(`http://127.0.0.1:${server.port}/administer`)).status, 404, 'a prefix is a whole path segment');
    } finally {
      await server.close();
    }
  });

  test('the placement: shared, own listener, or off without a token', () => {
    const metrics = { enabled: true, host: '127.0.0.1', port: 9464 };
    assert.equal(adminPlacement({ metrics, admin: { host: '127.0.0.1', port: 9464, token: TOKEN } }), 'metrics');
    assert.equal(adminPlacement({ metrics, admin: { host: '127.0.0.1', port: 9465, token: TOKEN } }), 'own');
    assert.equal(adminPlacement({ metrics: { ...metrics, enabled: false }, admin: { host: '127.0.0.1', port: 9464, token: TOKEN } }), 'own');
    assert.equal(adminPlacement({ metrics, admin: { host: '127.0.0.1', port: 9464 } }), 'off');
  });

  test('the token check accepts exactly the token', () => {
    const check = bearerCheck(TOKEN);
    assert.equal(check(`Bearer ${TOKEN}`), true);
    assert.equal(check(`bearer ${TOKEN}`), true, 'the scheme is case-insensitive (RFC 7235)');
    for (const header of [undefined, '', 'Bearer', 'Bearer ', `Bearer ${TOKEN} extra`, `Token ${TOKEN}`, `Bearer ${TOKEN.slice(1)}`]) {
      assert.equal(check(header), false, String(header));
    }
  });
});
