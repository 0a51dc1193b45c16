/* Echo on the C ABI in event-queue mode, for benches/compare: the host
 * thread polls the server's descriptor, drains events in batches and
 * answers each message, corked so each worker is woken once per batch.
 * Prints "listening PORT", then once a second "stats polls=N events=M". */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "volley.h"

int main(int argc, char **argv) {
  volley_options o;
  volley_server *s;
  volley_event ev[1024];
  volley_stats st = {0};
  struct pollfd pfd = {-1, POLLIN, 0};
  const char *port = getenv("PORT");
  volley_options_init(&o);
  o.port = (uint16_t)(argc > 1 ? atoi(argv[1]) : port ? atoi(port) : 9001);
  o.workers = 1;
  if (volley_server_new(&o, NULL, NULL, &s) != VOLLEY_RESULT_OK) return 1;
  volley_server_fd(s, &pfd.fd);
  printf("listening %u\n", volley_server_port(s));
  fflush(stdout);
  st.struct_size = sizeof st;
  for (;;) {
    size_t n = 0, i;
    static time_t last;
    struct timespec now;
    poll(&pfd, 1, 1000);
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec != last) {
      last = now.tv_sec;
      volley_server_stats(s, &st);
      printf("stats polls=%llu events=%llu\n", (unsigned long long)st.polls, (unsigned long long)st.polled_events);
      fflush(stdout);
    }
    do {
      volley_server_poll(s, ev, 1024, &n);
      volley_server_cork(s);
      for (i = 0; i < n; i++) {
        const volley_event *e = &ev[i];
        if (e->kind == VOLLEY_EVENT_KIND_UPGRADE)
          volley_upgrade_accept(s, e->ws, 0, NULL, NULL, 0);
        else if (e->kind == VOLLEY_EVENT_KIND_MESSAGE)
          volley_ws_send(s, e->ws, e->data.data, e->data.len, e->flags & VOLLEY_EVENT_BINARY ? VOLLEY_SEND_BINARY : 0);
        else if (e->kind == VOLLEY_EVENT_KIND_REQUEST)
          volley_respond(s, e->ws, 404, NULL, 0, NULL, 0);
      }
      volley_server_uncork(s);
    } while (n == 1024);
  }
}
