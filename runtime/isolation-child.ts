/**
 * The child process of crash-loop isolation (runtime/poison-isolation.ts): forked by the daemon to run
 * suspect records where their crash takes down only this process. It builds an Engine from the compiled
 * pipeline it is sent (as a block worker does, runtime/block-worker.ts: no pipeline file, no alias
 * following, inference on its own thread), then runs the pieces it is sent one at a time, each through
 * `Engine.processBlock`, and answers with their encoded outcomes: exactly what normal processing yields.
 *
 * It exits when the daemon disconnects (the daemon kills it when done with it, or dies itself).
 */
import { asVerdictError } from '../core/errors.js';
import { componentLogger, createLogger, silentLogger } from '../core/log.js';
import { createMetrics } from '../core/metrics.js';
import { InThreadRunner } from '../models/in-thread-runner.js';
import { fromWire, outcomesToWire } from './block-wire.js';
import { Engine } from './engine.js';
import type { ChildReply, ChildRequest } from './isolation-protocol.js';

let engine: Engine | undefined;

function send(reply: ChildReply): void {
  process.send?.(reply);
}

async function start(request: Extract<ChildRequest, { kind: 'start' }>): Promise<void> {
  try {
    engine = await Engine.fromCompiled(request.pipeline, {
      metrics: createMetrics(),
      logger: request.logLevel === null ? silentLogger : componentLogger(createLogger({ level: request.logLevel }), 'isolation_child', { pid: process.pid }),
      runner: new InThreadRunner({ intraOpThreads: request.pipeline.placement.intraOpThreads }),
      followAliases: 'off',
    });
    send({ kind: 'ready' });
  } catch (error) {
    send({ kind: 'start-failed', error: asVerdictError(error).toJSON() });
  }
}

async function piece(request: Extract<ChildRequest, { kind: 'piece' }>): Promise<void> {
  try {
    if (engine === undefined) throw new Error('isolation child asked to run a piece before it started');
    const encoded = await engine.processBlock(fromWire(request.block), request.bindings, request.block.states);
    send({ kind: 'piece', id: request.id, ok: true, reply: outcomesToWire(encoded).reply });
  } catch (error) {
    send({ kind: 'piece', id: request.id, ok: false, error: asVerdictError(error).toJSON() });
  }
}

process.on('message', (message: ChildRequest) => {
  if (message.kind === 'start') void start(message);
  else void piece(message);
});
process.on('disconnect', () => process.exit(0));
