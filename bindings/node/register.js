// `node --import volley/register app.js`: the same as `import 'volley/bun'`
// at the top of app.js.
import './bun.js';
