/* The C test server, callback mode, on the static library. Routes:
 *   /echo            echoes; "close:CODE:REASON" closes with them; "stale?"
 *                    checks that the last closed connection's id is refused
 *   /room/:name?user=U  a chat room: joins and leaves announced, messages
 *                    published to the room as "U: text"
 *   /reject          refused with 403 "go away"
 *   GET /health      200 "ok"
 * Prints "listening PORT" once serving; SIGTERM stops gracefully, SIGINT
 * frees at once (with whatever is still connected).  */
#include "volley.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct peer {
  char room[64];
  char name[64];
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static volley_ws last_closed;

static int is(volley_bytes b, const char *s) {
  return b.len == strlen(s) && memcmp(b.data, s, b.len) == 0;
}

static void copy(char *dst, const uint8_t *src, size_t len) {
  if (len > 63) len = 63;
  memcpy(dst, src, len);
  dst[len] = 0;
}

static void say(volley_server *s, volley_ws ws, const char *text) {
  volley_ws_send_text(s, ws, (const uint8_t *)text, strlen(text), 0);
}

static void on_upgrade(void *ud, volley_server *s, const volley_event *ev) {
  const volley_request *r = ev->request;
  struct peer *p;
  size_t i;
  (void)ud;
  if (is(r->path, "/reject")) {
    volley_upgrade_reject(s, ev->ws, 403, NULL, 0, (const uint8_t *)"go away", 7);
    return;
  }
  p = calloc(1, sizeof *p);
  for (i = 0; i < r->params_len; i++)
    if (is(r->params[i].name, "name")) copy(p->room, r->params[i].value.data, r->params[i].value.len);
  if (r->query.len > 5 && memcmp(r->query.data, "user=", 5) == 0)
    copy(p->name, r->query.data + 5, r->query.len - 5);
  else
    strcpy(p->name, "anon");
  if (volley_upgrade_accept(s, ev->ws, (uint64_t)(uintptr_t)p, NULL, NULL, 0) != VOLLEY_RESULT_OK) free(p);
}

static void announce(volley_server *s, volley_ws ws, struct peer *p, const char *what) {
  char line[160];
  snprintf(line, sizeof line, "%s %s", p->name, what);
  volley_ws_publish(s, ws, (const uint8_t *)p->room, strlen(p->room), (const uint8_t *)line, strlen(line), 0, NULL);
}

static void on_open(void *ud, volley_server *s, const volley_event *ev) {
  struct peer *p = (struct peer *)(uintptr_t)ev->user;
  (void)ud;
  if (p->room[0]) {
    volley_ws_subscribe(s, ev->ws, (const uint8_t *)p->room, strlen(p->room));
    announce(s, ev->ws, p, "joined");
  }
}

static void check_stale(volley_server *s, volley_ws ws) {
  volley_ws old;
  int ok;
  pthread_mutex_lock(&lock);
  old = last_closed;
  pthread_mutex_unlock(&lock);
  if (old.generation == 0) {
    say(s, ws, "stale:none");
    return;
  }
  ok = volley_ws_send_text(s, old, (const uint8_t *)"x", 1, 0) == 0 &&
       volley_ws_close(s, old, 1000, NULL, 0) == VOLLEY_RESULT_CLOSED &&
       volley_ws_ready_state(s, old) == 3 &&
       volley_ws_subscribe(s, old, (const uint8_t *)"t", 1) == VOLLEY_RESULT_CLOSED;
  say(s, ws, ok ? "stale:ok" : "stale:BAD");
}

static void on_message(void *ud, volley_server *s, const volley_event *ev) {
  struct peer *p = (struct peer *)(uintptr_t)ev->user;
  char line[1024];
  (void)ud;
  if (p->room[0]) {
    int n = snprintf(line, sizeof line, "%s: %.*s", p->name, (int)ev->data.len, (const char *)ev->data.data);
    volley_ws_publish(s, ev->ws, (const uint8_t *)p->room, strlen(p->room), (const uint8_t *)line, (size_t)n, 0, NULL);
  } else if (ev->data.len > 6 && memcmp(ev->data.data, "close:", 6) == 0) {
    int code = atoi((const char *)ev->data.data + 6);
    const char *reason = memchr(ev->data.data + 6, ':', ev->data.len - 6);
    size_t rlen = reason ? ev->data.len - (size_t)(reason + 1 - (const char *)ev->data.data) : 0;
    volley_ws_close(s, ev->ws, (uint16_t)code, reason ? (const uint8_t *)reason + 1 : NULL, rlen);
  } else if (is(ev->data, "stale?")) {
    check_stale(s, ev->ws);
  } else {
    volley_ws_send(s, ev->ws, ev->data.data, ev->data.len, ev->flags & VOLLEY_EVENT_BINARY ? VOLLEY_SEND_BINARY : 0);
  }
}

static void on_close(void *ud, volley_server *s, const volley_event *ev) {
  struct peer *p = (struct peer *)(uintptr_t)ev->user;
  (void)ud;
  if (p->room[0]) announce(s, ev->ws, p, "left");
  pthread_mutex_lock(&lock);
  last_closed = ev->ws;
  pthread_mutex_unlock(&lock);
  free(p);
}

static void on_request(void *ud, volley_server *s, const volley_event *ev) {
  (void)ud;
  if (is(ev->request->path, "/health"))
    volley_respond(s, ev->ws, 200, NULL, 0, (const uint8_t *)"ok", 2);
  else
    volley_respond(s, ev->ws, 404, NULL, 0, (const uint8_t *)"no", 2);
}

int main(int argc, char **argv) {
  const char *routes[] = {"/echo", "/room/:name", "/reject", "/health"};
  volley_options o;
  volley_handlers h = {0};
  volley_server *s = NULL;
  sigset_t set;
  int sig = 0;
  if (volley_abi_version() != VOLLEY_ABI_VERSION) return 2;
  VOLLEY_OPTIONS_INIT(&o);
  o.port = (uint16_t)(argc > 1 ? atoi(argv[1]) : 0);
  o.routes = routes;
  o.routes_len = 4;
  o.workers = 2;
  h.struct_size = sizeof h;
  h.on_upgrade = on_upgrade;
  h.on_open = on_open;
  h.on_message = on_message;
  h.on_close = on_close;
  h.on_request = on_request;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, NULL); /* the workers inherit the mask */
  if (volley_server_new(&o, &h, NULL, &s) != VOLLEY_RESULT_OK) return 1;
  printf("listening %u\n", volley_server_port(s));
  fflush(stdout);
  sigwait(&set, &sig);
  if (sig == SIGTERM) volley_server_stop(s, VOLLEY_STOP_GRACEFUL);
  volley_server_free(s);
  return 0;
}
