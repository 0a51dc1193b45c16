'use strict';
// An opt-in `globalThis.Bun` for frameworks written for Bun (Elysia, hono's
// Bun adapter, ws-kit's @ws-kit/bun) to run unchanged on Node: they call
// `Bun.serve` themselves and read a few `Bun.*` members at start-up. Only
// what such frameworks touch on that path is here, nothing speculative:
//   serve    volley's serve() (Bun's Server and ServerWebSocket)
//   env      process.env
//   version  the Bun release whose behaviour volley's serve() follows
//   gc       a hint (runs `global.gc` when Node was started with --expose-gc)
// plus `CloseEvent`, which Node 20 lacks (hono's onClose builds one).
//
// The hazard: packages detect Bun by `globalThis.Bun` (std-env's `isBun`,
// used across unjs/h3/nitro) and would then take Bun-only paths, calling
// members this object lacks. So it is opt-in (`import 'volley/bun'`, or
// `node --import volley/register app.js`), and `process.versions.bun` is
// never set.
const { serve } = require('./volley.cjs');

/** The Bun release volley's serve() is checked against. */
const BUN_VERSION = '1.4.5';

function install() {
  if (globalThis.Bun !== undefined) return globalThis.Bun; // real Bun, or installed already
  const Bun = {
    serve,
    env: process.env,
    version: BUN_VERSION,
    gc() {
      if (typeof globalThis.gc === 'function') globalThis.gc();
    },
  };
  Object.defineProperty(globalThis, 'Bun', { value: Bun, writable: true, configurable: true, enumerable: false });
  if (typeof globalThis.CloseEvent === 'undefined') {
    class CloseEvent extends Event {
      constructor(type, init = {}) {
        super(type, init);
        this.code = init.code ?? 0;
        this.reason = init.reason ?? '';
        this.wasClean = init.wasClean ?? false;
      }
    }
    Object.defineProperty(globalThis, 'CloseEvent', { value: CloseEvent, writable: true, configurable: true });
  }
  return Bun;
}

install();
module.exports = { install, BUN_VERSION };
