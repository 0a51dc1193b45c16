// A throwaway redis-server on a free loopback port for the tests that
// bridge processes. Missing redis-server: `haveRedis` is false (the tests
// skip), except in CI, where it is an error.
import { spawn, spawnSync } from 'node:child_process';
import net from 'node:net';

export const haveRedis = spawnSync('redis-server', ['--version']).status === 0;
if (!haveRedis && process.env.CI) throw new Error('redis-server is missing (CI installs the redis-server package)');

/** A free loopback TCP port. */
export function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = /** @type {net.AddressInfo} */ (s.address());
      s.close(() => resolve(port));
    });
  });
}

/**
 * Start redis-server for the test `t` (killed after it): its port, and
 * `cli(...args)` running redis-cli against it.
 */
export async function startRedis(t) {
  const port = await freePort();
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: 'ignore',
  });
  t.after(() => proc.kill('SIGKILL'));
  const cli = (...args) => spawnSync('redis-cli', ['-p', String(port), ...args], { encoding: 'utf8' }).stdout.trim();
  for (let i = 0; cli('PING') !== 'PONG'; i++) {
    if (i > 250) throw new Error('redis-server did not start');
    await new Promise((r) => setTimeout(r, 20));
  }
  /** Wait until `channel` has `n` subscribing connections at Redis. */
  const subscribers = async (channel, n) => {
    for (let i = 0; i < 250 && !cli('PUBSUB', 'NUMSUB', channel).endsWith(`\n${n}`); i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  return { port, cli, subscribers };
}
