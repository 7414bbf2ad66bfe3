// @ts-check
/**
 * The one error type of the client, and how a gateway answer becomes one.
 * @module errors
 */

/** @typedef {import('./types.js').ErrorObject} ErrorObject */

/** An error answered by the gateway (or a network failure, code `network`). */
export class PushgateError extends Error {
  /**
   * @param {string} code
   * @param {string} message
   * @param {number} [status] the HTTP status, when there was an answer
   */
  constructor(code, message, status) {
    super(message);
    this.name = 'PushgateError';
    /** @type {string} a stable code from docs/protocol.md, or one of the client's own */
    this.code = code;
    /** @type {number|undefined} */
    this.status = status;
  }

  /** Whether retrying cannot help: a 4xx answer other than 408 and 429. */
  get terminal() {
    return this.status !== undefined && this.status >= 400 && this.status < 500 && this.status !== 408 && this.status !== 429;
  }

  /** @returns {ErrorObject} */
  toJSON() {
    return { code: this.code, message: this.message };
  }
}

/**
 * `error` as a PushgateError (anything else is a network failure).
 * @param {unknown} error
 * @returns {PushgateError}
 */
export function asPushgateError(error) {
  return error instanceof PushgateError ? error : new PushgateError('network', String(error));
}

/**
 * The error a failed answer carries: its JSON error body, else its status.
 * @param {{status: number}} response
 * @param {string} text the answer's body
 * @returns {PushgateError}
 */
export function errorFromText(response, text) {
  try {
    const { error } = JSON.parse(text);
    if (error && typeof error.code === 'string') return new PushgateError(error.code, String(error.message), response.status);
  } catch {
    // not the JSON error body: fall through
  }
  return new PushgateError(`http_${response.status}`, `HTTP ${response.status}`, response.status);
}
