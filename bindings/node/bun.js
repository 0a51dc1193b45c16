// `import 'volley/bun'` (first, before the framework): installs an opt-in
// `globalThis.Bun` whose `serve` is volley's. See lib/bun.cjs for what it
// carries and why it is opt-in.
import shim from './lib/bun.cjs';

export const Bun = shim.install(); // installed on load; returns it
export default Bun;
