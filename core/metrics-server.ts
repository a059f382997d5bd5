/**
 * The daemon's HTTP endpoint: Prometheus metrics at /metrics, liveness at /healthz, readiness at /readyz
 * (ready only while the pipeline is running, so a load balancer or orchestrator stops routing to a draining
 * daemon), and whatever is mounted on it under a path prefix (the admin API's /admin, when it shares the
 * metrics host and port).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ServerListenError } from './errors.js';
import { AggregatorRegistry, type MetricObjectWithValues, type MetricValue, type Registry } from 'prom-client';

/** A listening HTTP endpoint. */
export interface HttpEndpoint {
  /** The bound port (the one the system chose when asked for 0). */
  readonly port: number;
  /** Stops listening and drops open connections. */
  close(): Promise<void>;
}

/** The metrics endpoint: an `HttpEndpoint`. */
export type MetricsServer = HttpEndpoint;

/** Serves one request; it owns the response. */
export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void;

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
  /** Handlers for paths under a prefix (`'/admin'` serves `/admin` and `/admin/…`); none by default. */
  readonly mounts?: Readonly<Record<string, RequestHandler>>;
}

type MetricJson = Array<MetricObjectWithValues<MetricValue<string>>>;

/** The registry's exposition, with remote registries merged in. */
export async function exposition(registry: Registry, remote?: () => Promise<unknown[]>): Promise<string> {
  const others = remote === undefined ? [] : await remote();
  if (others.length === 0) return registry.metrics();
  const own = await registry.getMetricsAsJSON();
  return AggregatorRegistry.aggregate([own as MetricJson, ...(others as MetricJson[])]).metrics();
}

/** The request's path without its query string. */
export const pathOf = (req: IncomingMessage): string => (req.url ?? '/').split('?')[0] ?? '/';

/** The handler mounted at the path's prefix, if any. */
function mounted(mounts: Readonly<Record<string, RequestHandler>>, path: string): RequestHandler | undefined {
  for (const [prefix, handler] of Object.entries(mounts)) {
    if (path === prefix || path.startsWith(`${prefix}/`)) return handler;
  }
  return undefined;
}

export async function startMetricsServer(options: MetricsServerOptions): Promise<MetricsServer> {
  const mounts = options.mounts ?? {};
  return serveHttp((req, res) => {
    const path = pathOf(req);
    const handler = mounted(mounts, path);
    if (handler !== undefined) {
      handler(req, res);
    } else if (path === '/metrics') {
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
  }, { host: options.host, port: options.port, what: 'metrics endpoint' });
}

/**
 * Listens on `host:port` with one handler: the one way the daemon opens an HTTP port. Rejects with
 * `ServerListenError` (SERVER_LISTEN_FAILED, `details`: host, port, reason) naming `what` when it cannot.
 */
export async function serveHttp(handler: RequestHandler, at: { host: string; port: number; what: string }): Promise<HttpEndpoint> {
  const server: Server = createServer(handler);
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      // EADDRINUSE and friends are about the host, not a model or a record: a typed error naming the address.
      reject(new ServerListenError(`${at.what} cannot listen on ${at.host}:${at.port}: ${err.code ?? err.message}`, {
        cause: err, details: { host: at.host, port: at.port, reason: err.code },
      }));
    });
    server.listen(at.port, at.host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}
