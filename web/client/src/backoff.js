// @ts-check
/**
 * How long to wait before trying again: full-jitter exponential backoff.
 * @module backoff
 */

const BACKOFF_BASE_MS = 500;
const BACKOFF_CAP_MS = 30_000;

/**
 * A random wait before retry number `attempt` (0-based), between 0 and
 * min(30 s, 0.5 s × 2^attempt).
 * @param {number} attempt
 * @returns {number} ms
 */
export function backoffDelay(attempt) {
  return Math.random() * Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt);
}
