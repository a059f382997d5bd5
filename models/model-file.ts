/**
 * The model file size bound: one helper, used wherever a model file is read or loaded (the registry's
 * register, resolve, inspect and promote; the manifest check before a swap; every thread's session cache).
 * The size is checked with `stat` before any byte is read, so a huge file (a wrong path, a disk image, a
 * hostile registry) costs one system call, not gigabytes of memory or a minute of hashing.
 */
import { open, stat } from 'node:fs/promises';
import { ConfigError, ModelFileTooLargeError } from '../core/errors.js';

/**
 * 1 GiB: larger than any model a decision pipeline scores within milliseconds, and half of ONNX's own cap
 * (a protobuf message cannot exceed 2 GiB; bigger models keep their weights in external data files).
 */
export const DEFAULT_MAX_MODEL_BYTES = 1024 ** 3;

function tooLarge(path: string, sizeBytes: number, maxModelBytes: number): ModelFileTooLargeError {
  return new ModelFileTooLargeError(
    `${path} is ${sizeBytes} bytes, above the ${maxModelBytes}-byte model file bound (maxModelBytes)`,
    { details: { path, sizeBytes, maxModelBytes } },
  );
}

function notRegular(path: string): ConfigError {
  // A FIFO or a device (/dev/zero) has no size to check and may never end.
  return new ConfigError(`${path} is not a regular file`, { details: { path } });
}

/**
 * The file's size in bytes, once `stat` (following symlinks) shows a regular file of at most
 * `maxModelBytes`. Throws ModelFileTooLargeError (MODEL_FILE_TOO_LARGE, `details.sizeBytes`,
 * `details.maxModelBytes`), ConfigError (CONFIG_INVALID) for a FIFO, device or directory, and `stat`'s own
 * error (ENOENT…) for a missing file, for the caller to classify.
 */
export async function checkModelFileSize(path: string, maxModelBytes: number): Promise<number> {
  const info = await stat(path);
  if (!info.isFile()) throw notRegular(path);
  if (info.size > maxModelBytes) throw tooLarge(path, info.size, maxModelBytes);
  return info.size;
}

/**
 * The file's bytes, read only after the open handle's `fstat` passed the bound, and never more than the
 * size that `fstat` gave: a file that grows while it is read is refused (CONFIG_INVALID). Otherwise errors
 * as `checkModelFileSize`.
 */
export async function readModelFile(path: string, maxModelBytes: number): Promise<Buffer> {
  const handle = await open(path, 'r');
  try {
    const info = await handle.stat();
    if (!info.isFile()) throw notRegular(path);
    if (info.size > maxModelBytes) throw tooLarge(path, info.size, maxModelBytes);
    // One byte more than the size seen tells a file that grew since the fstat.
    const buffer = Buffer.alloc(info.size + 1);
    let length = 0;
    while (length < buffer.length) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    if (length > info.size) throw new ConfigError(`${path} grew while it was read`, { details: { path } });
    return buffer.subarray(0, length);
  } finally {
    await handle.close();
  }
}
