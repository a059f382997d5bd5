/**
 * Reading and checking an ONNX model's signature before it enters the registry.
 *
 * The manifest's signature is what the tensor packer relies on at run time, so it is derived from the model
 * itself (onnxruntime's input and output metadata), checked against what the caller expects, and proven by a
 * smoke inference on a batch of two zero rows: a model that cannot batch would otherwise fail on live traffic.
 */
import ort from 'onnxruntime-node';
import { ModelIntegrityError, ModelSignatureError } from '../core/errors.js';
import { describeSpec } from './manifest.js';
import { allocate } from './tensors.js';
import { ELEMENT_TYPES as TYPES, type ElementType, type TensorSpec } from './types.js';

export interface Signature {
  readonly inputs: readonly TensorSpec[];
  readonly outputs: readonly TensorSpec[];
}

type Dim = number | string;
const ELEMENT_TYPES: ReadonlySet<string> = new Set<string>(TYPES);
const SMOKE_BATCH = 2;
const BATCH_DIM = 'N';

const isSymbolic = (d: Dim): d is string => typeof d === 'string';

/** ONNX leaves unnamed dynamic dims as "" or a non-positive number; give them a name so they read as dynamic. */
function normaliseDim(d: Dim, index: number): Dim {
  if (typeof d === 'number') return d > 0 ? d : index === 0 ? BATCH_DIM : `d${index}`;
  return d === '' ? (index === 0 ? BATCH_DIM : `d${index}`) : d;
}

function specFromMetadata(meta: ort.InferenceSession.ValueMetadata, role: 'input' | 'output'): TensorSpec {
  if (!meta.isTensor) throw new ModelSignatureError(`${role} ${meta.name} is not a tensor (sequences and maps are not supported)`);
  if (!ELEMENT_TYPES.has(meta.type)) {
    throw new ModelSignatureError(`${role} ${meta.name} has element type ${meta.type}; supported: ${[...ELEMENT_TYPES].join(', ')}`);
  }
  return { name: meta.name, type: meta.type as ElementType, shape: meta.shape.map(normaliseDim) };
}

/**
 * The signature as the model declares it; undefined when this onnxruntime build exposes names only. An
 * output of unknown shape has shape [] until the smoke run fills it.
 */
export function signatureOf(session: ort.InferenceSession): Signature | undefined {
  const inputs = session.inputMetadata as readonly ort.InferenceSession.ValueMetadata[] | undefined;
  const outputs = session.outputMetadata as readonly ort.InferenceSession.ValueMetadata[] | undefined;
  if (inputs === undefined || outputs === undefined) return undefined;
  return { inputs: inputs.map((m) => specFromMetadata(m, 'input')), outputs: outputs.map((m) => specFromMetadata(m, 'output')) };
}

/** Without metadata the caller's signature is taken as it is, once its names agree with the model's. */
function signatureFromNames(session: ort.InferenceSession, expected: Partial<Signature>): Signature {
  if (expected.inputs === undefined || expected.outputs === undefined) {
    throw new ModelSignatureError('this onnxruntime build exposes input and output names only: pass the expected signature');
  }
  const names = (specs: readonly TensorSpec[]) => specs.map((s) => s.name).sort().join(', ');
  if (names(expected.inputs) !== [...session.inputNames].sort().join(', ')) {
    throw new ModelSignatureError(`inputs differ: expected ${names(expected.inputs)}; the model has ${session.inputNames.join(', ')}`);
  }
  const missing = expected.outputs.filter((s) => !session.outputNames.includes(s.name));
  if (missing.length > 0) {
    throw new ModelSignatureError(`output ${missing.map((s) => s.name).join(', ')} is expected but the model has only ${session.outputNames.join(', ')}`);
  }
  return { inputs: expected.inputs, outputs: expected.outputs };
}

/** Merges one declared spec into the model's: types and fixed dims must agree, a symbolic model dim takes the declared size. */
function reconcileSpec(actual: TensorSpec, expected: TensorSpec, role: 'input' | 'output'): TensorSpec {
  const where = `${role} ${actual.name}`;
  if (actual.type !== expected.type) {
    throw new ModelSignatureError(`${where}: expected type ${expected.type}, the model has ${actual.type}`);
  }
  if (actual.shape.length === 0) return { ...actual, shape: expected.shape };
  if (actual.shape.length !== expected.shape.length) {
    throw new ModelSignatureError(`${where}: expected shape [${expected.shape.join(', ')}], the model has [${actual.shape.join(', ')}]`);
  }
  const shape = actual.shape.map((dim, i) => {
    const want = expected.shape[i] as Dim;
    if (i === 0) return isSymbolic(want) ? dim : want;
    if (isSymbolic(dim)) return want;
    if (isSymbolic(want) || want === dim) return dim;
    throw new ModelSignatureError(`${where}: expected shape [${expected.shape.join(', ')}], the model has [${actual.shape.join(', ')}]`);
  });
  return { ...actual, shape };
}

/**
 * Checks the model against the signature the caller expects. Inputs must match exactly (every input is fed);
 * every expected output must exist, and further outputs the model has are kept.
 */
export function reconcileSignature(actual: Signature, expected: Partial<Signature>): Signature {
  let inputs = actual.inputs;
  if (expected.inputs !== undefined) {
    const want = new Map(expected.inputs.map((s) => [s.name, s]));
    const extra = actual.inputs.filter((s) => !want.has(s.name)).map((s) => s.name);
    const missing = expected.inputs.filter((s) => !actual.inputs.some((a) => a.name === s.name)).map((s) => s.name);
    if (missing.length > 0 || extra.length > 0) {
      throw new ModelSignatureError(
        `inputs differ: expected ${expected.inputs.map((s) => s.name).join(', ')}; the model has ${actual.inputs.map((s) => s.name).join(', ')}`,
      );
    }
    inputs = actual.inputs.map((a) => reconcileSpec(a, want.get(a.name) as TensorSpec, 'input'));
  }
  let outputs = actual.outputs;
  if (expected.outputs !== undefined) {
    const have = new Map(actual.outputs.map((s) => [s.name, s]));
    for (const e of expected.outputs) {
      if (!have.has(e.name)) {
        throw new ModelSignatureError(`output ${e.name} is expected but the model has only ${actual.outputs.map((s) => s.name).join(', ')}`);
      }
    }
    const want = new Map(expected.outputs.map((s) => [s.name, s]));
    outputs = actual.outputs.map((a) => {
      const e = want.get(a.name);
      return e === undefined ? a : reconcileSpec(a, e, 'output');
    });
  }
  return { inputs, outputs };
}

function assertBatchable(spec: TensorSpec, role: 'input' | 'output'): void {
  const first = spec.shape[0];
  if (first === undefined) throw new ModelSignatureError(`${role} ${spec.name} has no batch dimension (shape [])`);
  if (!isSymbolic(first)) {
    throw new ModelSignatureError(`${role} ${spec.name} has a fixed first dimension ${first}; Verdict batches rows, so it must be dynamic`);
  }
}

function zeros(type: ElementType, size: number): ort.Tensor.DataType {
  // Zeros, false, or empty strings: every element type's storage as a fresh buffer.
  return allocate(type, size);
}

function zeroFeed(spec: TensorSpec): ort.Tensor {
  const rest = spec.shape.slice(1);
  const symbolic = rest.find(isSymbolic);
  if (symbolic !== undefined) {
    throw new ModelSignatureError(`input ${describeSpec(spec)}: dimension ${symbolic} is not fixed; declare its size in the expected signature`);
  }
  const dims = [SMOKE_BATCH, ...(rest as number[])];
  return new ort.Tensor(spec.type, zeros(spec.type, dims.reduce((a, b) => a * b, 1)), dims);
}

/** Runs two zero rows and checks every output comes back batched; symbolic per-row output dims take the observed size. */
async function smokeRun(session: ort.InferenceSession, signature: Signature): Promise<Signature> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const spec of signature.inputs) feeds[spec.name] = zeroFeed(spec);
  let results: ort.InferenceSession.OnnxValueMapType;
  try {
    results = await session.run(feeds);
  } catch (err) {
    throw new ModelSignatureError(`smoke inference on a batch of ${SMOKE_BATCH} zero rows failed: ${(err as Error).message}`, { cause: err });
  }
  const outputs = signature.outputs.map((spec): TensorSpec => {
    const value = results[spec.name];
    if (value === undefined) throw new ModelSignatureError(`smoke inference did not produce output ${spec.name}`);
    const dims = value.dims;
    if (value.type !== spec.type) {
      throw new ModelSignatureError(`output ${spec.name}: declared ${spec.type}, smoke inference produced ${value.type}`);
    }
    if (dims[0] !== SMOKE_BATCH) {
      throw new ModelSignatureError(`output ${spec.name}: a batch of ${SMOKE_BATCH} rows produced dims [${dims.join(', ')}]; the first dim must be the batch`);
    }
    if (spec.shape.length === 0) return { ...spec, shape: [BATCH_DIM, ...dims.slice(1)] };
    if (dims.length !== spec.shape.length || spec.shape.some((d, i) => i > 0 && !isSymbolic(d) && d !== dims[i])) {
      throw new ModelSignatureError(`output ${spec.name}: declared [${spec.shape.join(', ')}], smoke inference produced [${dims.join(', ')}]`);
    }
    return { ...spec, shape: spec.shape.map((d, i) => (i > 0 && isSymbolic(d) ? (dims[i] as number) : d)) };
  });
  return { inputs: signature.inputs, outputs };
}

/**
 * Loads the model bytes in onnxruntime, derives and checks the signature, and proves it with a smoke run.
 * `source` only names the file in errors. Returns the signature to record in the manifest.
 */
export async function verifyModel(bytes: Uint8Array, source: string, expected: Partial<Signature> = {}): Promise<Signature> {
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(bytes);
  } catch (err) {
    throw new ModelIntegrityError(`${source} is not a loadable ONNX model: ${(err as Error).message}`, { cause: err, details: { path: source } });
  }
  try {
    const declared = signatureOf(session);
    const signature = declared === undefined ? signatureFromNames(session, expected) : reconcileSignature(declared, expected);
    for (const spec of signature.inputs) assertBatchable(spec, 'input');
    for (const spec of signature.outputs) if (spec.shape.length > 0) assertBatchable(spec, 'output');
    return await smokeRun(session, signature);
  } catch (err) {
    if (err instanceof ModelSignatureError) {
      throw new ModelSignatureError(`${source}: ${err.message}`, { cause: err, details: { path: source } });
    }
    throw err;
  } finally {
    await session.release();
  }
}
