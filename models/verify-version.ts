/**
 * The checks a registered version passes before a running engine switches to it (runtime/live-models.ts):
 * its file still has the manifest's sha256 (`ModelRegistry.resolve` checks that), and the manifest tells the
 * truth about the model. The packer builds tensors from the manifest's signature, so a manifest that lies
 * about an input (a hand edit, a copy with the wrong manifest) would score traffic with garbage or fail every
 * batch; here it is refused while the old version keeps serving.
 */
import { ModelIntegrityError, ModelSignatureError, isVerdictError } from '../core/errors.js';
import { DEFAULT_MAX_MODEL_BYTES, readModelFile } from './model-file.js';
import { verifyModel } from './signature.js';
import type { ResolvedModel } from './types.js';

/**
 * Loads the version's file in onnxruntime, reconciles its real signature with the manifest's (every input
 * and output name, element type and fixed dimension must agree; signature.ts) and runs two zero rows.
 * Rejects with ModelSignatureError (MODEL_SIGNATURE_MISMATCH) when the manifest does not describe the
 * model, ModelIntegrityError (MODEL_INTEGRITY) when the file does not load, ModelFileTooLargeError
 * (MODEL_FILE_TOO_LARGE) when it is above `maxModelBytes` (default 1 GiB), checked before it is read.
 */
export async function verifyManifestSignature(model: ResolvedModel, maxModelBytes: number = DEFAULT_MAX_MODEL_BYTES): Promise<void> {
  let bytes: Buffer;
  try {
    bytes = await readModelFile(model.path, maxModelBytes);
  } catch (error) {
    if (isVerdictError(error)) throw error;
    throw new ModelIntegrityError(`${model.path} cannot be read: ${(error as Error).message}`, { cause: error, details: { path: model.path } });
  }
  try {
    await verifyModel(bytes, model.path, { inputs: model.manifest.inputs, outputs: model.manifest.outputs });
  } catch (error) {
    if (error instanceof ModelSignatureError) {
      throw new ModelSignatureError(`${model.ref}: the manifest does not describe the model: ${error.message}`, {
        cause: error, details: { model: model.ref },
      });
    }
    throw error;
  }
}
