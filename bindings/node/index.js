// ESM entry: the implementation is CommonJS (lib/volley.cjs), so both
// `import` and `require` get the same objects.
import volley from './lib/volley.cjs';

export const { serve, eventStream, Server, ServerWebSocket, Cookie, CookieMap } = volley;
export default volley;
