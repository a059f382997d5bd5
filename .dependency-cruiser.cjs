/**
 * The layering, checked by `npm run lint` (dependency-cruiser): imports point down only, and nothing
 * imports in a circle (type-only imports included).
 *
 *   cli/ bench/          commands and the load-test harness
 *   runtime/             wiring: engine, daemon, programmatic API, block workers
 *   streams/             transport (embedded/, kafka/) and the stream runtime (streams/runtime/)
 *   pipeline/            the per-event core (pipeline/stages.ts lists the stages); no transport, no threads
 *   actors/              actor core and the model actor
 *   config/ models/      schemas, loading, compiling; registry and tensors (config may use models)
 *   core/                errors, clock, logs, metrics, retry
 *   mock-kafka/          the test broker's launcher, for tests and the bench
 */
const below = {
  core: ['core'],
  models: ['core', 'models'],
  config: ['core', 'models', 'config'],
  actors: ['core', 'models', 'config', 'actors'],
  pipeline: ['core', 'models', 'config', 'actors', 'pipeline'],
  streams: ['core', 'models', 'config', 'actors', 'pipeline', 'streams'],
  runtime: ['core', 'models', 'config', 'actors', 'pipeline', 'streams', 'runtime'],
  'mock-kafka': ['core', 'mock-kafka'],
};
const layers = Object.keys(below);

module.exports = {
  forbidden: [
    { name: 'no-circular', severity: 'error', comment: 'Import cycles hide the data flow.', from: {}, to: { circular: true } },
    ...layers.map((layer) => ({
      name: `layering-${layer}`,
      severity: 'error',
      comment: `${layer}/ may import only ${below[layer].join(', ')} (and packages).`,
      from: { path: `^${layer}/` },
      to: { path: `^(${layers.filter((l) => !below[layer].includes(l)).join('|')}|cli|bench|test|index\\.ts)/?` },
    })),
    {
      name: 'core-no-transport-no-threads',
      severity: 'error',
      comment: 'The per-event core, the actors, config and models run on any thread and know no transport: Kafka clients and thread pools are wired in streams/ and runtime/.',
      // The metrics endpoint (core/metrics-server.ts) serves HTTP to Prometheus; it carries no records.
      from: { path: '^(pipeline|actors|config|models|core)/', pathNot: '^core/metrics-server[.]ts$' },
      to: { path: ['(^|/)node_modules/(kafkajs|piscina|node-rdkafka)/', '^(node:)?worker_threads$', '^(node:)?(net|tls|dgram|http|https|http2|child_process|cluster)$'] },
    },
    { name: 'no-test-imports', severity: 'error', comment: 'Production code never imports the tests.', from: { pathNot: '^test/' }, to: { path: '^test/' } },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // node_modules stay in the graph as leaves (doNotFollow), so rules can name packages.
    exclude: { path: '^dist/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
