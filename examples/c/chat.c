/* A chat server on the C ABI, event-queue mode: one thread polls the
 * server's descriptor and answers. ws://HOST:PORT/chat/ROOM?name=NAME joins
 * ROOM (a topic); joins, leaves and messages go to everyone in the room.
 * Build: cc chat.c $(pkg-config --cflags --libs --static volley) */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "volley.h"

struct member { char room[64], name[64]; };

static void copy(char *dst, volley_bytes b) {
  size_t n = b.len < 63 ? b.len : 63;
  memcpy(dst, b.data, n);
  dst[n] = 0;
}

static void tell(volley_server *s, struct member *m, const char *what, volley_bytes text) {
  char line[1200];
  int n = snprintf(line, sizeof line, "%s %s%.*s", m->name, what, (int)(text.len > 1024 ? 1024 : text.len),
                   (const char *)text.data);
  volley_server_publish(s, (const uint8_t *)m->room, strlen(m->room), (const uint8_t *)line, (size_t)n, 0, NULL);
}

static void handle(volley_server *s, const volley_event *ev) {
  struct member *m = (struct member *)(uintptr_t)ev->user;
  volley_bytes none = {NULL, 0};
  size_t i;
  switch (ev->kind) {
    case VOLLEY_EVENT_KIND_UPGRADE:
      m = calloc(1, sizeof *m);
      for (i = 0; i < ev->request->params_len; i++) copy(m->room, ev->request->params[i].value);
      if (ev->request->query.len > 5 && !memcmp(ev->request->query.data, "name=", 5)) {
        volley_bytes q = {ev->request->query.data + 5, ev->request->query.len - 5};
        copy(m->name, q);
      } else {
        strcpy(m->name, "someone");
      }
      if (volley_upgrade_accept(s, ev->ws, (uint64_t)(uintptr_t)m, NULL, NULL, 0) != VOLLEY_RESULT_OK) free(m);
      break;
    case VOLLEY_EVENT_KIND_OPEN:
      volley_ws_subscribe(s, ev->ws, (const uint8_t *)m->room, strlen(m->room));
      tell(s, m, "joined", none);
      break;
    case VOLLEY_EVENT_KIND_MESSAGE:
      tell(s, m, "says: ", ev->data);
      break;
    case VOLLEY_EVENT_KIND_CLOSE:
      tell(s, m, "left", none);
      free(m);
      break;
    case VOLLEY_EVENT_KIND_REQUEST:
      volley_respond(s, ev->ws, 404, NULL, 0, (const uint8_t *)"chat at /chat/ROOM\n", 19);
      break;
  }
}

int main(int argc, char **argv) {
  const char *routes[] = {"/chat/:room"};
  volley_options options;
  volley_server *s;
  volley_event events[256];
  struct pollfd pfd = {-1, POLLIN, 0};
  VOLLEY_OPTIONS_INIT(&options);
  options.port = (uint16_t)(argc > 1 ? atoi(argv[1]) : 9001);
  options.routes = routes;
  options.routes_len = 1;
  if (volley_server_new(&options, NULL, NULL, &s) != VOLLEY_RESULT_OK) return 1;
  volley_server_fd(s, &pfd.fd);
  printf("listening %u\n", volley_server_port(s));
  fflush(stdout);
  for (;;) {
    size_t n = 0, i;
    poll(&pfd, 1, -1);
    do {
      volley_server_poll(s, events, 256, &n);
      volley_server_cork(s); /* one wake-up per worker for this batch's answers */
      for (i = 0; i < n; i++) handle(s, &events[i]);
      volley_server_uncork(s);
    } while (n == 256);
  }
}
