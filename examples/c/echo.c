/* An echo server on the C ABI, callback mode: every message comes back
 * with its type. Build: cc echo.c $(pkg-config --cflags --libs --static volley) */
#include <stdio.h>
#include <stdlib.h>

#include "volley.h"

static void on_message(void *userdata, volley_server *server, const volley_event *ev) {
  uint32_t flags = (ev->flags & VOLLEY_EVENT_BINARY) ? VOLLEY_SEND_BINARY : VOLLEY_SEND_TEXT;
  (void)userdata;
  /* Bun's answer: bytes sent, -1 (queued behind a backlog) or 0 (dropped). */
  volley_ws_send(server, ev->ws, ev->data.data, ev->data.len, flags);
}

int main(int argc, char **argv) {
  volley_options options;
  volley_handlers handlers = {0};
  volley_server *server;
  VOLLEY_OPTIONS_INIT(&options); /* Bun's defaults, for this header's struct size */
  options.port = (uint16_t)(argc > 1 ? atoi(argv[1]) : 9001);
  options.workers = (uint32_t)(argc > 2 ? atoi(argv[2]) : 0); /* 0: one per core */
  handlers.struct_size = sizeof handlers;
  handlers.on_message = on_message;
  if (volley_server_new(&options, &handlers, NULL, &server) != VOLLEY_RESULT_OK) return 1;
  printf("listening %u\n", volley_server_port(server));
  fflush(stdout);
  volley_server_join(server); /* until something stops it */
  volley_server_free(server);
  return 0;
}
