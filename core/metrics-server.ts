/**
 * The daemon's HTTP endpoint: Prometheus metrics at /metrics, liveness at /healthz, readiness at /readyz
 * (ready only while the pipeline is running, so a load balancer or orchestrator stops routing to a draining
 * daemon).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ServerListenError } from './errors.js';
import { AggregatorRegistry, type MetricObjectWithValues, type MetricValue, type Registry } from 'prom-client';

export interface MetricsServer {
  readonly port: number;
  close(): Promise<void>;
}

export interface MetricsServerOptions {
  readonly registry: Registry;
  /**
   * Metrics kept elsewhere (block workers' registries, as prom-client JSON), merged into each scrape: counters
   * and histograms summed by label set, gauges summed.
   */
  readonly remote?: () => Promise<unknown[]>;
  readonly host: string;
  readonly port: number;
  readonly ready: () => boolean;
}

type MetricJson = Array<MetricObjectWithValues<MetricValue<string>>>;

/** The registry's exposition, with remote registries merged in. */
export async function exposition(registry: Registry, remote?: () => Promise<unknown[]>): Promise<string> {
  const others = remote === undefined ? [] : await remote();
  if (others.length === 0) return registry.metrics();
  const own = await registry.getMetricsAsJSON();
  return AggregatorRegistry.aggregate([own as MetricJson, ...(others as MetricJson[])]).metrics();
}

export async function startMetricsServer(options: MetricsServerOptions): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/metrics') {
      exposition(options.registry, options.remote).then(
        (text) => { res.writeHead(200, { 'content-type': options.registry.contentType }); res.end(text); },
        (err: unknown) => { res.writeHead(500); res.end(String(err)); },
      );
    } else if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok\n');
    } else if (path === '/readyz') {
      const ready = options.ready();
      res.writeHead(ready ? 200 : 503, { 'content-type': 'text/plain' });
      res.end(ready ? 'ready\n' : 'not ready\n');
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      // EADDRINUSE and friends are about the host, not a model or a record: a typed error naming the address.
      reject(new ServerListenError(`metrics endpoint cannot listen on ${options.host}:${options.port}: ${err.code ?? err.message}`, {
        cause: err, details: { host: options.host, port: options.port, reason: err.code },
      }));
    });
    server.listen(options.port, options.host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}
