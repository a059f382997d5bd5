/**
 * Verdict's Prometheus metrics. One `Metrics` object per engine, on its own prom-client Registry, is passed
 * to the components that record; nothing registers on the global default registry, so several engines
 * (and tests) can live in one process.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

// Latency buckets from 100 µs to 5 s: inference batches are sub-millisecond, Kafka round-trips are not.
// Signed buckets for shadow − primary differences: a score in [0, 1] and a latency in seconds, either way.
const SCORE_DIFFERENCE = [-1, -0.5, -0.25, -0.1, -0.05, -0.01, -0.001, 0, 0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1];
const SECONDS_DIFFERENCE = [-0.25, -0.1, -0.05, -0.025, -0.01, -0.005, -0.001, -0.0001, 0, 0.0001, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25];
const SECONDS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/**
 * Verdict's metrics (names `verdict_*`; the README's metrics section and the help texts below say what each
 * counts), registered on `options.registry` or a new prom-client Registry (default). `processMetrics: true`
 * adds prom-client's process metrics, prefixed `verdict_` (default false: the daemon turns them on).
 * Read them with `metrics.registry.metrics()` (Prometheus text).
 */
export function createMetrics(options: { registry?: Registry; processMetrics?: boolean } = {}) {
  const registry = options.registry ?? new Registry();
  if (options.processMetrics === true) collectDefaultMetrics({ register: registry, prefix: 'verdict_' });
  const r = [registry];
  return {
    registry,
    eventsIn: new Counter({ name: 'verdict_events_in_total', help: 'Records read from the input', labelNames: ['pipeline'], registers: r }),
    decisions: new Counter({ name: 'verdict_decisions_total', help: 'Decisions made, by action', labelNames: ['pipeline', 'action'], registers: r }),
    deadLetters: new Counter({ name: 'verdict_dead_letters_total', help: 'Records sent to the dead-letter topic, by error code', labelNames: ['pipeline', 'code'], registers: r }),
    errors: new Counter({ name: 'verdict_errors_total', help: 'Typed errors, by component and code', labelNames: ['component', 'code'], registers: r }),
    stepOutcomes: new Counter({ name: 'verdict_step_outcomes_total', help: 'Pipeline step outcomes in closed joins', labelNames: ['pipeline', 'step', 'status'], registers: r }),
    lateOutputs: new Counter({ name: 'verdict_join_late_outputs_total', help: 'Step outputs that arrived after their join closed (dropped)', labelNames: ['pipeline', 'step'], registers: r }),
    ruleErrors: new Counter({ name: 'verdict_rule_errors_total', help: 'Decision rules (and the score) that failed to evaluate, by rule path', labelNames: ['pipeline', 'rule'], registers: r }),
    incompleteJoins: new Counter({ name: 'verdict_join_incomplete_total', help: 'Joins closed incomplete for their mode', labelNames: ['pipeline'], registers: r }),
    batchSize: new Histogram({ name: 'verdict_model_batch_size', help: 'Rows per inference batch', labelNames: ['model'], buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512], registers: r }),
    inferenceSeconds: new Histogram({ name: 'verdict_model_inference_seconds', help: 'Time to run one batch, including the worker round-trip', labelNames: ['model'], buckets: SECONDS, registers: r }),
    invalidOutputs: new Counter({ name: 'verdict_model_output_invalid_total', help: 'Rows whose model outputs held NaN, ±Infinity or an inexact int64, or came back in another shape than the manifest declares (the row\'s step fails with MODEL_OUTPUT_INVALID)', labelNames: ['model'], registers: r }),
    mailboxDepth: new Gauge({ name: 'verdict_model_mailbox_depth', help: 'Rows waiting in a model actor mailbox', labelNames: ['model'], registers: r }),
    mailboxCapacity: new Gauge({ name: 'verdict_model_mailbox_capacity', help: 'Rows a model actor mailbox holds at most (its batching.mailboxCapacity; summed over the threads that run the model, like the depth)', labelNames: ['model'], registers: r }),
    circuitState: new Gauge({ name: 'verdict_model_circuit_state', help: 'Circuit breaker of a model version: 0 closed, 1 open (rows refused with MODEL_CIRCUIT_OPEN), 2 half-open (one probe batch)', labelNames: ['model'], registers: r }),
    circuitTransitions: new Counter({ name: 'verdict_model_circuit_transitions_total', help: 'Circuit breaker transitions of a model version, by the state entered (open, half-open, closed)', labelNames: ['model', 'to'], registers: r }),
    modelInfo: new Gauge({ name: 'verdict_model_info', help: 'Model versions in use: 1 for each step, role (primary, canary, shadow) and version (main thread only)', labelNames: ['pipeline', 'step', 'role', 'model', 'version'], registers: r }),
    modelSwaps: new Counter({ name: 'verdict_model_swaps_total', help: 'Live model changes of a step role, by event: loaded (the new version serves new blocks), failed (refused; the old one keeps serving), unloaded (an old version released once idle)', labelNames: ['pipeline', 'step', 'role', 'event'], registers: r }),
    queueWait: new Histogram({ name: 'verdict_model_queue_wait_seconds', help: 'Time a queued run of rows waited in a model actor mailbox before its batch was dispatched', labelNames: ['model'], buckets: SECONDS, registers: r }),
    rowsWithdrawn: new Counter({ name: 'verdict_model_rows_withdrawn_total', help: 'Rows withdrawn from a model actor before they ran, because their step timed out (work not done)', labelNames: ['model'], registers: r }),
    workerRestarts: new Counter({ name: 'verdict_worker_restarts_total', help: 'Worker threads (inference or block workers) that died under a task and were replaced', registers: r }),
    consumerRestarts: new Counter({ name: 'verdict_kafka_consumer_restarts_total', help: 'Kafka consumers replaced, by reason (crash, stall)', labelNames: ['reason'], registers: r }),
    consumerCrashLoop: new Gauge({ name: 'verdict_kafka_consumer_crash_loop', help: 'The offset at which Kafka consumers keep crashing without progress (the series exists only while they do)', labelNames: ['topic', 'partition'], registers: r }),
    produceRejected: new Counter({ name: 'verdict_produce_rejected_total', help: 'Records the broker refused for themselves (not the connection), by what was refused (decision, dead_letter, payload_dropped) and the Kafka error', labelNames: ['record', 'error'], registers: r }),
    haltedPartitions: new Gauge({ name: 'verdict_partition_halted', help: 'The offset at which a partition stopped because even its payload-less dead letter was refused (the series exists only while it is halted)', labelNames: ['topic', 'partition'], registers: r }),
    stageSeconds: new Histogram({ name: 'verdict_stage_seconds', help: 'Time each block of events (the records processed together) spent in each stage', labelNames: ['pipeline', 'stage'], buckets: SECONDS, registers: r }),
    endToEndSeconds: new Histogram({ name: 'verdict_end_to_end_seconds', help: 'From record read to its outcome (decision or dead letter) acknowledged by the sink', labelNames: ['pipeline'], buckets: SECONDS, registers: r }),
    inflight: new Gauge({ name: 'verdict_inflight_events', help: 'Events read and not yet acknowledged', registers: r }),
    pausedPartitions: new Gauge({ name: 'verdict_paused_partitions', help: 'Partitions paused by backpressure', registers: r }),
    backpressurePauses: new Counter({ name: 'verdict_backpressure_pauses_total', help: 'Partitions paused by backpressure (stream.maxBufferedPerPartition or stream.maxBuffered reached), counted per partition paused', registers: r }),
    backpressureResumes: new Counter({ name: 'verdict_backpressure_resumes_total', help: 'Partitions resumed by backpressure (back under half its bounds), counted per partition resumed', registers: r }),
    admittedEvents: new Gauge({ name: 'verdict_admitted_events', help: 'Records released into processing and not yet acknowledged (bounded by stream.maxInflight, give or take one block)', registers: r }),
    streamBound: new Gauge({ name: 'verdict_stream_bound', help: 'The stream\'s configured bounds, in records: max_inflight (admitted), max_buffered (read, all partitions), max_buffered_per_partition', labelNames: ['bound'], registers: r }),
    commits: new Counter({ name: 'verdict_commits_total', help: 'Offset commits sent', registers: r }),
    consumerLag: new Gauge({ name: 'verdict_consumer_lag', help: 'High watermark minus committed offset', labelNames: ['topic', 'partition'], registers: r }),
    shadowDecisions: new Counter({ name: 'verdict_shadow_decisions_total', help: 'Shadow decisions (the rules on a step\'s shadow output) beside the decision made, by both actions and whether they agree', labelNames: ['pipeline', 'step', 'primary_action', 'shadow_action', 'agree'], registers: r }),
    shadowScoreDifference: new Histogram({ name: 'verdict_shadow_score_difference', help: 'Shadow decision score minus the decision\'s score, per event with both', labelNames: ['pipeline', 'step'], buckets: SCORE_DIFFERENCE, registers: r }),
    shadowLatencyDifference: new Histogram({ name: 'verdict_shadow_latency_difference_seconds', help: 'Shadow step latency minus the deciding version\'s, per event (same start)', labelNames: ['pipeline', 'step'], buckets: SECONDS_DIFFERENCE, registers: r }),
    shadowDropped: new Counter({ name: 'verdict_shadow_dropped_total', help: 'Events with no shadow decision: the shadow call was dropped (backpressure), its row missed the step time bound (timeout) or failed (failed)', labelNames: ['pipeline', 'step', 'reason'], registers: r }),
    shadowTopicSent: new Counter({ name: 'verdict_shadow_topic_sent_total', help: 'Shadow-topic records (both decisions of a compared event) the sink acknowledged', labelNames: ['pipeline'], registers: r }),
    shadowTopicDropped: new Counter({ name: 'verdict_shadow_topic_dropped_total', help: 'Shadow-topic records dropped: a thread\'s buffer was full (overflow), the send failed (failed), or the stream stopped first (shutdown)', labelNames: ['pipeline', 'reason'], registers: r }),
    stateKeys: new Gauge({ name: 'verdict_state_keys', help: 'Keys held in per-key state, per input partition', labelNames: ['pipeline', 'topic', 'partition'], registers: r }),
    stateBytes: new Gauge({ name: 'verdict_state_bytes', help: 'Per-key state size per input partition: the bytes of each key\'s last changelog record', labelNames: ['pipeline', 'topic', 'partition'], registers: r }),
    stateEvictions: new Counter({ name: 'verdict_state_evictions_total', help: 'Keys evicted from per-key state: idle past state.idleAfter (idle), or the least recently applied past state.maxKeysPerPartition (lru)', labelNames: ['pipeline', 'reason'], registers: r }),
    stateLateEvents: new Counter({ name: 'verdict_state_late_events_total', help: 'Events older than their key\'s latest event time minus state.allowedLateness: decided on the state as it is, not applied', labelNames: ['pipeline'], registers: r }),
    stateReplayedEvents: new Counter({ name: 'verdict_state_replayed_events_total', help: 'Events read again after a restart or rebalance whose effect the restored state already holds: not applied again', labelNames: ['pipeline'], registers: r }),
    stateDistinctSaturated: new Counter({ name: 'verdict_state_distinct_saturated_total', help: 'Values a distinct aggregate did not retain because it held maxDistinct already (its count is then a lower bound)', labelNames: ['pipeline'], registers: r }),
    stateRestoreSeconds: new Histogram({ name: 'verdict_state_restore_seconds', help: 'Time to restore one partition\'s state from its changelog, from assignment to ready', labelNames: ['pipeline'], buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120], registers: r }),
    stateRestoring: new Gauge({ name: 'verdict_state_restoring_partitions', help: 'Partitions whose state is being restored (their records wait; the daemon is not ready)', labelNames: ['pipeline'], registers: r }),
    changelogRecords: new Counter({ name: 'verdict_state_changelog_records_total', help: 'Changelog records written (key states, tombstones and meta records), after coalescing', labelNames: ['pipeline'], registers: r }),
    adminRequests: new Counter({ name: 'verdict_admin_requests_total', help: 'Admin API requests, by endpoint (its route, or "unknown") and HTTP status', labelNames: ['endpoint', 'status'], registers: r }),
    consecutiveCrashes: new Gauge({ name: 'verdict_crash_journal_consecutive_crashes', help: 'Runs before this one that ended in a process crash, in a row (from the crash journal, at start-up; 0 after a clean stop)', registers: r }),
    poisonIsolations: new Counter({ name: 'verdict_poison_isolations_total', help: 'Suspect offset ranges (in flight in consecutive crashes) processed in isolation, in child processes', labelNames: ['topic', 'partition'], registers: r }),
    poisonRecords: new Counter({ name: 'verdict_poison_records_total', help: 'Records that killed their isolation process alone: dead-lettered with POISON_SUSPECTED', labelNames: ['topic', 'partition'], registers: r }),
    lifecycle: new Gauge({ name: 'verdict_lifecycle_state', help: 'Daemon lifecycle: 1 for the current state', labelNames: ['state'], registers: r }),
  };
}

/** What `createMetrics` returns: `registry` and one prom-client metric per field. */
export type Metrics = ReturnType<typeof createMetrics>;
