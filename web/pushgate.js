// @ts-check
/**
 * The browser client as the gateway serves it, at `/pushgate.js`: a plain ES module, no build
 * step. It is the package `@pushgate/client` of web/client/ (see its README.md for the API);
 * this file only re-exports it, so pages that import `/pushgate.js` keep working.
 *
 * ```html
 * <script type="module">
 *   import { connect } from '/pushgate.js';
 *   connect({ topics: ['chat'] }).addEventListener('event', (e) => console.log(e.detail));
 * </script>
 * ```
 * @module pushgate
 */

export * from './client/src/index.js';
