/**
 * What the daemon and a crash-loop isolation child (runtime/isolation-child.ts) say to each other over the
 * fork's IPC channel, with Node's `advanced` serialisation (structured clone: buffers and plain data).
 */
import type { CompiledPipeline } from '../config/compiled.js';
import type { SerializedError } from '../core/errors.js';
import type { ModelBindings } from '../pipeline/route/bindings.js';
import type { WireBlock, WireReply } from './block-wire.js';

export type ChildRequest =
  /** Build the engine (load and warm the models); answered with `ready` or `start-failed`. */
  | { readonly kind: 'start'; readonly pipeline: CompiledPipeline; readonly logLevel: string | null }
  /** Run one piece (block-wire.ts's form, with its StateReads) on these bindings (plain data). */
  | { readonly kind: 'piece'; readonly id: number; readonly block: WireBlock; readonly bindings: ModelBindings };

export type ChildReply =
  | { readonly kind: 'ready' }
  | { readonly kind: 'start-failed'; readonly error: SerializedError }
  | { readonly kind: 'piece'; readonly id: number; readonly ok: true; readonly reply: WireReply }
  | { readonly kind: 'piece'; readonly id: number; readonly ok: false; readonly error: SerializedError };
