/**
 * Admin API errors as HTTP: the status for each typed error, and the JSON body
 * `{ "error": { "code": "…", "message": "…" } }` every failed admin request answers with.
 */
import {
  AdminAuthError, AdminBodyTooLargeError, AdminConflictError, AdminDisabledError, AdminMethodError, AdminNotFoundError,
  AdminRequestError, ConfigError, ModelFileTooLargeError, ModelIntegrityError, ModelNotFoundError, ModelSignatureError,
  RegistryPathError, type VerdictError,
} from '../../core/errors.js';

const STATUS = new Map<string, number>([
  [AdminRequestError.code, 400],
  // A registry write refuses a bad name, alias or version, or a rollback with no earlier version, as CONFIG_INVALID.
  [ConfigError.code, 400],
  // A model name that is not one plain registry directory name (`../x`, `..%2F`), or a registry path a symlink leads out of.
  [RegistryPathError.code, 400],
  [AdminAuthError.code, 401],
  [AdminDisabledError.code, 403],
  [AdminNotFoundError.code, 404],
  [ModelNotFoundError.code, 404],
  [AdminMethodError.code, 405],
  [AdminConflictError.code, 409],
  // A version that fails its checks is refused; the version in force keeps serving.
  [ModelIntegrityError.code, 409],
  [ModelSignatureError.code, 409],
  [ModelFileTooLargeError.code, 409],
  [AdminBodyTooLargeError.code, 413],
]);

/** The HTTP status for an error an admin request ended with; 500 for anything not listed. */
export const httpStatusOf = (error: VerdictError): number => STATUS.get(error.code) ?? 500;

/** The JSON error body. */
export interface AdminErrorBody {
  readonly error: { readonly code: string; readonly message: string };
}

export const errorBody = (error: VerdictError): AdminErrorBody => ({ error: { code: error.code, message: error.message } });
