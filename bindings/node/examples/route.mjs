// Route patterns for the framework layers: `/room/:roomId` (harpia,
// bunWay) or `/api/chat/[roomId]` (Putnami's file names) → a matcher that
// returns the decoded parameters, or null.

const COLON = /^:(\w+)$/;
const BRACKETS = /^\[(\w+)\]$/;

/**
 * @param {string} pattern
 * @param {'colon' | 'brackets'} [style]
 * @returns {(path: string) => Record<string, string> | null}
 */
export function compileRoute(pattern, style = 'colon') {
  const param = style === 'brackets' ? BRACKETS : COLON;
  /** @type {string[]} */
  const names = [];
  const source = pattern
    .split('/')
    .map((seg) => {
      const m = param.exec(seg);
      if (m) {
        names.push(m[1]);
        return '([^/]+)';
      }
      return seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    })
    .join('/');
  const re = new RegExp(`^${source}/?$`);
  return (path) => {
    const m = re.exec(path);
    return m ? Object.fromEntries(names.map((n, i) => [n, decodeURIComponent(m[i + 1])])) : null;
  };
}
