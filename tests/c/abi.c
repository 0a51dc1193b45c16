/* The ABI's promises without a client: versions, NULL and bad arguments
 * answered with their result codes, stale ids refused, struct sizes of
 * older callers honoured. Exit status 0 when every check holds. */
#include "volley.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;
/* Does the detail of the last refusal name `what`? */
#define NAMES(what) (strstr(volley_last_error(), (what)) != NULL)
#define CHECK(cond)                                              \
  do {                                                           \
    if (!(cond)) {                                               \
      fprintf(stderr, "abi.c:%d: %s\n", __LINE__, #cond);        \
      failures++;                                                \
    }                                                            \
  } while (0)

/* volley_options as a shorter, older header would have it. */
struct old_options {
  uint32_t struct_size;
  uint16_t port;
  const char *host;
  const char *const *routes;
  size_t routes_len;
  uint32_t workers;
  uint64_t max_payload_length;
  uint32_t idle_timeout_ms;
};

/* Log records through the callback form of volley_set_log. */
static char logged[512];
static unsigned logged_level;
static void on_log(void *ud, uint32_t level, const uint8_t *msg, size_t len) {
  (void)ud;
  if (len >= sizeof logged) len = sizeof logged - 1;
  memcpy(logged, msg, len);
  logged[len] = 0;
  logged_level = level;
}

int main(void) {
  volley_options o;
  volley_server *s = NULL, *q = NULL;
  volley_handlers h;
  volley_ws stale = {42, 7, 0}, zero = {0, 0, 0};
  volley_stats st;
  size_t n = 99;
  int fd = -1;
  bool yes = true;
  char addr[64];

  CHECK(volley_abi_version() == VOLLEY_ABI_VERSION);
  CHECK(strlen(volley_version()) > 0);
  CHECK(strcmp(volley_error_message(VOLLEY_RESULT_CLOSED), volley_error_message(VOLLEY_RESULT_OK)) != 0);
  CHECK(strcmp(volley_error_message(12345), "unknown result") == 0);

  volley_options_init(&o); /* ABI v1: its 208 bytes, whatever this header adds */
  CHECK(o.struct_size == VOLLEY_OPTIONS_V1_SIZE && o.max_payload_length == 16u << 20 && o.send_pings);
  CHECK(sizeof o >= VOLLEY_OPTIONS_V1_SIZE);
  CHECK(volley_server_new(&o, NULL, NULL, NULL) == VOLLEY_RESULT_NULL_PARAMETER);
  o.struct_size = 4;
  CHECK(volley_server_new(&o, NULL, NULL, &s) == VOLLEY_RESULT_ABI_MISMATCH);
  volley_options_init(&o);
  o.deflate_compress = VOLLEY_DEFLATE_MODE_SHARED;
  o.deflate_max_window_bits = 8; /* zlib cannot: refused, never passed on */
  CHECK(volley_server_new(&o, NULL, NULL, &s) == VOLLEY_RESULT_INVALID_ARGUMENT);
  /* The log sink: a refused TLS configuration says why, to the callback,
   * then (queue form) to volley_log_take. */
  CHECK(volley_set_log(on_log, NULL, 9) == VOLLEY_RESULT_INVALID_ARGUMENT);
  CHECK(volley_set_log(on_log, NULL, 2) == VOLLEY_RESULT_OK);
  volley_options_init(&o);
  o.tls_cert_pem = (const uint8_t *)"not a certificate";
  o.tls_cert_pem_len = 17;
  o.tls_key_pem = (const uint8_t *)"nor a key";
  o.tls_key_pem_len = 9;
  CHECK(volley_server_new(&o, NULL, NULL, &s) == VOLLEY_RESULT_TLS);
  CHECK(strstr(logged, "TLS") != NULL && logged_level == 1);
  CHECK(volley_set_log(NULL, NULL, 2) == VOLLEY_RESULT_OK);
  CHECK(volley_server_new(&o, NULL, NULL, &s) == VOLLEY_RESULT_TLS);
  {
    uint32_t level = 0;
    char rec[512];
    size_t len = volley_log_take(&level, (uint8_t *)rec, sizeof rec - 1);
    CHECK(len > 0 && len < sizeof rec && level == 1);
    rec[len < sizeof rec ? len : sizeof rec - 1] = 0;
    CHECK(strstr(rec, "TLS") != NULL);
    CHECK(volley_log_take(&level, (uint8_t *)rec, sizeof rec) == 0); /* none left */
    CHECK(volley_log_take(NULL, (uint8_t *)rec, sizeof rec) == 0);
  }
  CHECK(volley_set_log(NULL, NULL, 0) == VOLLEY_RESULT_OK);
  volley_options_init(&o);
  o.tls_cert_pem = (const uint8_t *)"not a certificate";
  o.tls_cert_pem_len = 17;
  o.tls_key_pem = (const uint8_t *)"nor a key";
  o.tls_key_pem_len = 9;
  CHECK(volley_server_new(&o, NULL, NULL, &s) == VOLLEY_RESULT_TLS);
  volley_options_init(&o);
  o.host = "256.0.0.1";
  CHECK(volley_server_new(&o, NULL, NULL, &s) == VOLLEY_RESULT_IO);

  /* Every field from C is a plain integer, validated, and a refusal names
   * the field (these values crashed or were accepted before). */
  CHECK(VOLLEY_OPTIONS_INIT(&o) == VOLLEY_RESULT_OK && o.struct_size == sizeof o && o.send_timeout_ms == 60000);
  o.slow_consumer = 4;
  CHECK(volley_server_new(&o, NULL, NULL, &s) == VOLLEY_RESULT_INVALID_ARGUMENT && NAMES("slow_consumer"));
  VOLLEY_OPTIONS_INIT(&o);
  o.deflate_decompress = 3;
  CHECK(volley_server_new(&o, NULL, NULL, &s) == VOLLEY_RESULT_INVALID_ARGUMENT && NAMES("deflate_decompress"));
  VOLLEY_OPTIONS_INIT(&o);
  o.send_pings = 2;
  CHECK(volley_server_new(&o, NULL, NULL, &s) == VOLLEY_RESULT_INVALID_ARGUMENT && NAMES("send_pings"));
  VOLLEY_OPTIONS_INIT(&o);
  o.publish_to_self = 0xff;
  CHECK(volley_server_new(&o, NULL, NULL, &s) == VOLLEY_RESULT_INVALID_ARGUMENT && NAMES("publish_to_self"));
  VOLLEY_OPTIONS_INIT(&o);
  o.workers = 100000;
  CHECK(volley_server_new(&o, NULL, NULL, &s) == VOLLEY_RESULT_INVALID_ARGUMENT && NAMES("workers"));
  VOLLEY_OPTIONS_INIT(&o);
  o.max_payload_length = 4ull << 30;
  CHECK(volley_server_new(&o, NULL, NULL, &s) == VOLLEY_RESULT_INVALID_ARGUMENT && NAMES("max_payload_length"));
  /* A Unix socket: no port, no reuse_port; a path that exists is refused
   * and left alone; a v1-sized struct leaves unix_path NULL (TCP). */
  VOLLEY_OPTIONS_INIT(&o);
  o.unix_path = "/tmp/volley-abi-test.sock";
  o.port = 8080;
  CHECK(volley_server_new(&o, NULL, NULL, &s) == VOLLEY_RESULT_INVALID_ARGUMENT && NAMES("port"));
  o.port = 0;
  o.reuse_port = 1;
  CHECK(volley_server_new(&o, NULL, NULL, &s) == VOLLEY_RESULT_INVALID_ARGUMENT && NAMES("reuse_port"));
  o.reuse_port = 0;
  o.unix_path = "/";
  CHECK(volley_server_new(&o, NULL, NULL, &s) == VOLLEY_RESULT_IO);
  {
    const char *path = "/tmp/volley-abi-unix.sock";
    remove(path);
    o.unix_path = path;
    CHECK(volley_server_new(&o, NULL, NULL, &s) == VOLLEY_RESULT_OK && volley_server_port(s) == 0);
    volley_server_free(s);
    s = NULL;
    CHECK(remove(path) == 0); /* left in place by the stop */
  }
  CHECK(volley_options_init_sized(&o, 3) == VOLLEY_RESULT_ABI_MISMATCH);
  CHECK(volley_options_init_sized(NULL, sizeof o) == VOLLEY_RESULT_NULL_PARAMETER);
  {
    /* A caller built against an older, truncated header (struct
     * old_options, below; heap-allocated at its exact size, so valgrind
     * sees any byte read or written past it): init writes only that much,
     * new reads only that much. */
    struct old_options *p = malloc(sizeof *p);
    unsigned char *raw;
    size_t cut;
    uint32_t workers;
    CHECK(offsetof(struct old_options, idle_timeout_ms) == offsetof(volley_options, idle_timeout_ms));
    CHECK(p != NULL && volley_options_init_sized((volley_options *)p, sizeof *p) == VOLLEY_RESULT_OK);
    CHECK(p->struct_size == sizeof *p && p->max_payload_length == 16u << 20 && p->idle_timeout_ms == 120000);
    p->workers = 1;
    CHECK(volley_server_new((const volley_options *)p, NULL, NULL, &s) == VOLLEY_RESULT_OK);
    volley_server_free(s);
    s = NULL;
    free(p);
    /* A size that ends inside a field: that field is left alone. */
    cut = offsetof(volley_options, max_payload_length) + 4;
    raw = malloc(cut);
    CHECK(raw != NULL);
    memset(raw, 0xee, cut);
    CHECK(volley_options_init_sized((volley_options *)raw, cut) == VOLLEY_RESULT_OK);
    memcpy(&workers, raw + offsetof(volley_options, workers), sizeof workers);
    CHECK(workers == 0 && raw[cut - 1] == 0xee);
    free(raw);
    /* A caller built against a newer header: bytes past the library's
     * struct are accepted only when zero (a field it would ignore). */
    unsigned char *big = calloc(1, sizeof o + 16);
    CHECK(big != NULL && volley_options_init_sized((volley_options *)big, sizeof o + 16) == VOLLEY_RESULT_OK);
    CHECK(((volley_options *)big)->struct_size == sizeof o + 16);
    CHECK(volley_server_new((volley_options *)big, NULL, NULL, &s) == VOLLEY_RESULT_OK);
    volley_server_free(s);
    s = NULL;
    big[sizeof o + 3] = 1;
    CHECK(volley_server_new((volley_options *)big, NULL, NULL, &s) == VOLLEY_RESULT_INVALID_ARGUMENT &&
          NAMES("newer header"));
    free(big);
  }
  CHECK(strlen(volley_last_error()) > 0);

  /* An older caller's handler table: only the fields it knew. */
  volley_options_init(&o);
  memset(&h, 0, sizeof h);
  h.struct_size = (uint32_t)((const char *)&h.on_message - (const char *)&h);
  CHECK(volley_server_new(&o, &h, NULL, &s) == VOLLEY_RESULT_OK);
  CHECK(volley_server_port(s) != 0);
  CHECK(volley_server_fd(s, &fd) == VOLLEY_RESULT_WRONG_MODE);
  CHECK(volley_server_poll(s, NULL, 0, &n) == VOLLEY_RESULT_WRONG_MODE);

  CHECK(volley_server_new(&o, NULL, NULL, &q) == VOLLEY_RESULT_OK);
  CHECK(volley_server_fd(q, &fd) == VOLLEY_RESULT_OK && fd >= 0);
  CHECK(volley_server_poll(q, NULL, 0, &n) == VOLLEY_RESULT_OK && n == 0);
  CHECK(volley_server_poll(q, NULL, 4, &n) == VOLLEY_RESULT_NULL_PARAMETER);
  CHECK(volley_server_fd(q, NULL) == VOLLEY_RESULT_NULL_PARAMETER);

  /* Stale and zero ids: refused, never anything else. */
  CHECK(volley_ws_send(s, stale, (const uint8_t *)"x", 1, 0) == 0);
  CHECK(volley_ws_send(s, zero, (const uint8_t *)"x", 1, 0) == 0);
  CHECK(volley_ws_send(s, stale, (const uint8_t *)"\xff", 1, VOLLEY_SEND_TEXT) == -VOLLEY_RESULT_INVALID_ARGUMENT);
  CHECK(volley_ws_send(s, stale, NULL, 3, 0) == -VOLLEY_RESULT_NULL_PARAMETER);
  CHECK(volley_ws_send(NULL, stale, (const uint8_t *)"x", 1, 0) == -VOLLEY_RESULT_NULL_PARAMETER);
  CHECK(volley_ws_send(s, stale, (const uint8_t *)"x", 1, 0xff00) == -VOLLEY_RESULT_INVALID_ARGUMENT);
  CHECK(volley_ws_send(s, stale, (const uint8_t *)"x", 1, VOLLEY_SEND_COMPRESS | VOLLEY_SEND_NO_COMPRESS) ==
        -VOLLEY_RESULT_INVALID_ARGUMENT);
  /* The staged send: the same answers, its arguments read from a header. */
  {
    struct { volley_send_stage head; uint8_t data[4]; } st = { { stale, 0, 1 }, { 'x' } };
    CHECK(volley_ws_send_staged(s, NULL) == -VOLLEY_RESULT_NULL_PARAMETER);
    CHECK(volley_ws_send_staged(NULL, &st.head) == -VOLLEY_RESULT_NULL_PARAMETER);
    CHECK(volley_ws_send_staged(s, &st.head) == 0);
    st.head.flags = 0xff00;
    CHECK(volley_ws_send_staged(s, &st.head) == -VOLLEY_RESULT_INVALID_ARGUMENT);
    CHECK(sizeof(volley_send_stage) == 24 && offsetof(volley_send_stage, len) == 20);
  }
  CHECK(volley_server_publish(s, (const uint8_t *)"t", 1, (const uint8_t *)"x", 1, 0x100, NULL) ==
        VOLLEY_RESULT_INVALID_ARGUMENT);
  CHECK(volley_server_stop(s, 0x100) == VOLLEY_RESULT_INVALID_ARGUMENT && NAMES("flag"));
  CHECK(volley_ws_close(s, stale, 1000, NULL, 0) == VOLLEY_RESULT_CLOSED);
  /* 1005 with no reason is a close frame without a status code; with a
   * reason, or any code a server may not send, it is refused. */
  CHECK(volley_ws_close(s, stale, 1005, NULL, 0) == VOLLEY_RESULT_CLOSED);
  CHECK(volley_ws_close(s, stale, 1005, (const uint8_t *)"x", 1) == VOLLEY_RESULT_INVALID_ARGUMENT);
  CHECK(volley_ws_close(s, stale, 1006, NULL, 0) == VOLLEY_RESULT_INVALID_ARGUMENT);
  CHECK(volley_ws_close(s, stale, 999, NULL, 0) == VOLLEY_RESULT_INVALID_ARGUMENT);
  CHECK(volley_ws_subscribe(s, stale, (const uint8_t *)"t", 1) == VOLLEY_RESULT_CLOSED);
  CHECK(volley_ws_terminate(s, stale) == VOLLEY_RESULT_CLOSED);
  CHECK(volley_ws_pause(s, stale) == VOLLEY_RESULT_CLOSED);
  CHECK(volley_ws_ready_state(s, stale) == 3);
  CHECK(volley_ws_buffered_amount(s, stale) == 0);
  CHECK(volley_ws_is_subscribed(s, stale, (const uint8_t *)"t", 1, &yes) == VOLLEY_RESULT_CLOSED);
  CHECK(volley_ws_remote_address(s, stale, (uint8_t *)addr, sizeof addr, &n) == VOLLEY_RESULT_CLOSED);
  CHECK(volley_upgrade_accept(s, zero, 0, NULL, NULL, 0) == VOLLEY_RESULT_NOT_PENDING);
  {
    /* Header and subprotocol text that would split the response: refused
     * before anything is sent (the client got a 500 and the host no
     * terminal event). */
    volley_header bad_name = {{(const uint8_t *)"X Y", 3}, {(const uint8_t *)"v", 1}};
    volley_header bad_value = {{(const uint8_t *)"X-Y", 3}, {(const uint8_t *)"a\r\nSet-Cookie: x", 17}};
    CHECK(volley_upgrade_accept(s, stale, 0, "chat\r\nX-Evil: 1", NULL, 0) == VOLLEY_RESULT_INVALID_ARGUMENT &&
          NAMES("subprotocol"));
    CHECK(volley_upgrade_accept(s, stale, 0, "", NULL, 0) == VOLLEY_RESULT_INVALID_ARGUMENT);
    CHECK(volley_upgrade_accept(s, stale, 0, NULL, &bad_name, 1) == VOLLEY_RESULT_INVALID_ARGUMENT);
    CHECK(volley_upgrade_accept(s, stale, 0, NULL, &bad_value, 1) == VOLLEY_RESULT_INVALID_ARGUMENT);
    CHECK(volley_upgrade_accept(s, stale, 0, "chat.v2", NULL, 0) != VOLLEY_RESULT_INVALID_ARGUMENT);
  }
  CHECK(volley_respond(s, stale, 99, NULL, 0, NULL, 0) == VOLLEY_RESULT_INVALID_ARGUMENT);
  CHECK(volley_respond_stream(s, stale, 204, NULL, 0) == VOLLEY_RESULT_INVALID_ARGUMENT);
  CHECK(volley_respond_stream(NULL, stale, 200, NULL, 0) == VOLLEY_RESULT_NULL_PARAMETER);
  CHECK(volley_server_set_topic_policy(s, (const uint8_t *)"t", 1, 7, 0) == VOLLEY_RESULT_INVALID_ARGUMENT);
  CHECK(volley_server_set_topic_policy(s, (const uint8_t *)"t", 1, VOLLEY_SLOW_CONSUMER_CLOSE, 1013) ==
        VOLLEY_RESULT_OK);
  CHECK(volley_server_subscriber_count(s, (const uint8_t *)"t", 1, &n) == VOLLEY_RESULT_OK && n == 0);
  CHECK(volley_server_publish(s, (const uint8_t *)"t", 1, (const uint8_t *)"hi", 2, 0, NULL) == VOLLEY_RESULT_OK);
  CHECK(volley_server_cork(NULL) == VOLLEY_RESULT_NULL_PARAMETER);

  /* A stats struct from an older header: only its prefix is written. */
  memset(&st, 0xab, sizeof st);
  st.struct_size = (uint32_t)((const char *)&st.messages_in - (const char *)&st);
  CHECK(volley_server_stats(s, &st) == VOLLEY_RESULT_OK);
  CHECK(st.connections == 0 && st.opened == 0 && st.messages_in == 0xababababababababULL);

  CHECK(volley_server_stop(s, VOLLEY_STOP_NOW | VOLLEY_STOP_NO_WAIT) == VOLLEY_RESULT_OK);
  CHECK(volley_server_join(s) == VOLLEY_RESULT_OK);
  CHECK(volley_server_stop(s, VOLLEY_STOP_GRACEFUL) == VOLLEY_RESULT_OK); /* twice is fine */
  volley_server_free(s);
  volley_server_free(q); /* running: stopped by free */
  volley_server_free(NULL);
  if (failures) fprintf(stderr, "abi.c: %d checks failed\n", failures);
  return failures ? 1 : 0;
}
