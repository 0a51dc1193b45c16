// `import 'volley/bun'`: an opt-in `globalThis.Bun` carrying volley's serve.
import type { serve } from './index.js';

export interface BunShim {
  serve: typeof serve;
  env: NodeJS.ProcessEnv;
  /** The Bun release volley's serve() follows. */
  version: string;
  gc(force?: boolean): void;
}

export declare const Bun: BunShim;
export default Bun;
