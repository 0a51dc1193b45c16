'use strict';
// The C ABI through koffi: find libvolley.so (VOLLEY_LIB, a prebuilt copy
// in this package, or the repository's cargo build, made on first use when
// cargo is there), and declare the functions the binding calls.
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

/** The one platform the package's prebuilt library is built for: Linux on
 * x86-64 with glibc 2.28 or newer (scripts/prebuilt.sh). */
const GLIBC_FLOOR = [2, 28];

function platformProblem() {
  if (process.platform !== 'linux' || process.arch !== 'x64') return `${process.platform}-${process.arch}`;
  const glibc = process.report?.getReport?.().header?.glibcVersionRuntime;
  if (!glibc) return 'linux-x64 without glibc (musl?)';
  const [major, minor] = glibc.split('.').map(Number);
  if (major < GLIBC_FLOOR[0] || (major === GLIBC_FLOOR[0] && minor < GLIBC_FLOOR[1])) return `linux-x64 with glibc ${glibc}`;
  return null;
}

function findLibrary() {
  if (process.env.VOLLEY_LIB) return process.env.VOLLEY_LIB;
  const prebuilt = path.join(__dirname, '..', 'prebuilt', 'linux-x64', 'libvolley.so');
  const problem = platformProblem();
  if (!problem && fs.existsSync(prebuilt)) return prebuilt;
  const root = path.resolve(__dirname, '..', '..', '..');
  const built = path.join(root, 'target', 'release', 'libvolley.so');
  if (fs.existsSync(built)) return built;
  if (fs.existsSync(path.join(root, 'Cargo.toml'))) {
    process.stderr.write('volley: building libvolley.so with cargo (once)...\n');
    const r = spawnSync('cargo', ['build', '--release', '-q', '-p', 'volley-ffi'], { cwd: root, stdio: 'inherit' });
    if (r.status === 0 && fs.existsSync(built)) return built;
  }
  if (problem && fs.existsSync(prebuilt)) {
    throw new Error(`volley: this package's prebuilt libvolley.so is for linux-x64 with glibc >= ${GLIBC_FLOOR.join('.')}, ` +
      `not ${problem}: build the library from source (cargo build --release -p volley-ffi) and set VOLLEY_LIB to it`);
  }
  throw new Error('volley: libvolley.so not found: set VOLLEY_LIB, or build it with `cargo build --release -p volley-ffi`');
}

// Found before koffi loads: on a platform the package does not cover, the
// error says what to do (koffi's own would not).
const libPath = findLibrary();
const koffi = require('koffi');
const lib = koffi.load(libPath);
const u8p = 'const uint8_t *';

koffi.struct('volley_ws', { generation: 'uint64_t', key: 'uint32_t', reserved: 'uint32_t' });
koffi.struct('volley_bytes', { data: u8p, len: 'size_t' });
/** volley_send_stage: a connection, flags and a length, the payload after it. */
const SendStage = koffi.struct('volley_send_stage', { ws: 'volley_ws', flags: 'uint32_t', len: 'uint32_t' });
koffi.struct('volley_header', { name: 'volley_bytes', value: 'volley_bytes' });
const Options = koffi.struct('volley_options', {
  struct_size: 'uint32_t',
  port: 'uint16_t',
  host: 'const char *',
  routes: 'void *',
  routes_len: 'size_t',
  workers: 'uint32_t',
  max_payload_length: 'uint64_t',
  idle_timeout_ms: 'uint32_t',
  backpressure_limit: 'uint64_t',
  close_on_backpressure_limit: 'bool',
  send_pings: 'bool',
  publish_to_self: 'bool',
  ping_interval_ms: 'uint32_t',
  pong_timeout_ms: 'uint32_t',
  max_lifetime_ms: 'uint32_t',
  handshake_timeout_ms: 'uint32_t',
  request_timeout_ms: 'uint32_t',
  close_timeout_ms: 'uint32_t',
  max_header_bytes: 'uint32_t',
  max_headers: 'uint32_t',
  max_body_bytes: 'uint64_t',
  max_connections: 'uint32_t',
  slow_consumer: 'uint32_t',
  slow_consumer_close_code: 'uint16_t',
  deflate_compress: 'uint32_t',
  deflate_decompress: 'uint32_t',
  deflate_level: 'uint32_t',
  deflate_threshold: 'uint32_t',
  deflate_max_window_bits: 'uint8_t',
  tls_cert_pem: u8p,
  tls_cert_pem_len: 'size_t',
  tls_key_pem: u8p,
  tls_key_pem_len: 'size_t',
  mailbox_bytes: 'uint64_t',
  queue_bytes: 'uint64_t',
  sse_keepalive_ms: 'uint32_t',
  pubsub_bridge: 'const char *',
  // Past ABI v1's 208 bytes (filled by volley_options_init_sized).
  send_timeout_ms: 'uint32_t',
  reuse_port: 'uint8_t',
  unix_path: 'const char *',
});
koffi.opaque('volley_server');
const srv = 'volley_server *';

const f = {
  options_init_sized: lib.func('uint32_t volley_options_init_sized(_Out_ volley_options *o, size_t size)'),
  options_size: koffi.sizeof(Options),
  last_error: lib.func('const char *volley_last_error(void)'),
  set_log: lib.func('uint32_t volley_set_log(void *cb, void *ud, uint32_t level)'),
  log_take: lib.func('size_t volley_log_take(_Out_ uint32_t *level, _Out_ uint8_t *buf, size_t cap)'),
  server_new: lib.func(`uint32_t volley_server_new(const volley_options *o, void *h, void *ud, _Out_ ${srv} *out)`),
  server_free: lib.func(`void volley_server_free(${srv} s)`),
  server_stop: lib.func(`uint32_t volley_server_stop(${srv} s, uint32_t flags)`),
  server_port: lib.func(`uint16_t volley_server_port(${srv} s)`),
  is_running: lib.func(`bool volley_server_is_running(${srv} s)`),
  server_fd: lib.func(`uint32_t volley_server_fd(${srv} s, _Out_ int *fd)`),
  poll_packed: lib.func(`int64_t volley_server_poll_packed(${srv} s, uint8_t *buf, size_t cap)`),
  copy: lib.func('uint32_t volley_copy(uint8_t *dst, uint64_t address, size_t len)'),
  publish: lib.func(`uint32_t volley_server_publish(${srv} s, const char *t, size_t tl, ${u8p} d, size_t l, uint32_t flags, void *r)`),
  publish_text: lib.func(`uint32_t volley_server_publish(${srv} s, const char *t, size_t tl, const char *d, size_t l, uint32_t flags, void *r)`),
  close_idle: lib.func(`uint32_t volley_server_close_idle(${srv} s, _Out_ size_t *closed)`),
  subscriber_count: lib.func(`uint32_t volley_server_subscriber_count(${srv} s, const char *t, size_t tl, _Out_ size_t *n)`),
  cork: lib.func(`uint32_t volley_server_cork(${srv} s)`),
  uncork: lib.func(`uint32_t volley_server_uncork(${srv} s)`),
  stats: lib.func(`uint32_t volley_server_stats(${srv} s, uint8_t *out)`),
  send_text: lib.func(`int64_t volley_ws_send_parts(${srv} s, uint32_t key, uint64_t gen, const char *d, size_t l, uint32_t flags)`),
  send_bytes: lib.func(`int64_t volley_ws_send_parts(${srv} s, uint32_t key, uint64_t gen, ${u8p} d, size_t l, uint32_t flags)`),
  // One stage the binding reuses (header, then payload), by address: two
  // arguments per send instead of six (koffi converts each one).
  send_staged: lib.func(`int64_t volley_ws_send_staged(${srv} s, uintptr_t stage)`),
  ws_publish_text: lib.func(`int64_t volley_ws_publish_parts(${srv} s, uint32_t key, uint64_t gen, const char *t, size_t tl, const char *d, size_t l, uint32_t flags)`),
  ws_publish_bytes: lib.func(`int64_t volley_ws_publish_parts(${srv} s, uint32_t key, uint64_t gen, const char *t, size_t tl, ${u8p} d, size_t l, uint32_t flags)`),
  subscribe: lib.func(`uint32_t volley_ws_subscribe(${srv} s, volley_ws ws, const char *t, size_t tl)`),
  unsubscribe: lib.func(`uint32_t volley_ws_unsubscribe(${srv} s, volley_ws ws, const char *t, size_t tl)`),
  close: lib.func(`uint32_t volley_ws_close(${srv} s, volley_ws ws, uint16_t code, const char *r, size_t rl)`),
  terminate: lib.func(`uint32_t volley_ws_terminate(${srv} s, volley_ws ws)`),
  ping: lib.func(`uint32_t volley_ws_ping(${srv} s, volley_ws ws, ${u8p} d, size_t l)`),
  pong: lib.func(`uint32_t volley_ws_pong(${srv} s, volley_ws ws, ${u8p} d, size_t l)`),
  pause: lib.func(`uint32_t volley_ws_pause(${srv} s, volley_ws ws)`),
  resume: lib.func(`uint32_t volley_ws_resume(${srv} s, volley_ws ws)`),
  buffered: lib.func(`size_t volley_ws_buffered_amount(${srv} s, volley_ws ws)`),
  ready_state: lib.func(`uint32_t volley_ws_ready_state(${srv} s, volley_ws ws)`),
  accept: lib.func(`uint32_t volley_upgrade_accept(${srv} s, volley_ws ws, uint64_t user, const char *protocol, volley_header *h, size_t hl)`),
  reject: lib.func(`uint32_t volley_upgrade_reject(${srv} s, volley_ws ws, uint16_t status, volley_header *h, size_t hl, ${u8p} b, size_t bl)`),
  respond: lib.func(`uint32_t volley_respond(${srv} s, volley_ws ws, uint16_t status, volley_header *h, size_t hl, ${u8p} b, size_t bl)`),
  respond_stream: lib.func(`uint32_t volley_respond_stream(${srv} s, volley_ws ws, uint16_t status, volley_header *h, size_t hl)`),
  respond_events: lib.func(`uint32_t volley_respond_events(${srv} s, volley_ws ws, uint16_t status, volley_header *h, size_t hl, volley_bytes *t, size_t tl)`),
  error_message: lib.func('const char *volley_error_message(uint32_t code)'),
  abi_version: lib.func('uint32_t volley_abi_version()'),
};

const libc = koffi.load('libc.so.6');
f.dup = libc.func('int dup(int fd)');

module.exports = { koffi, f, Options, SendStage, ABI_VERSION: require('./wire.cjs').ABI_VERSION };
