/* Lifetime and threading misuse the header allows, each with a defined
 * result (run plain, under valgrind and under ASan by tests/c/run.sh):
 * - free from a callback while main waits in volley_server_join (the
 *   README's own pattern): join returns, the state is freed afterwards;
 * - calls on a freed server, and a second free: STOPPED (0 for a send),
 *   never a touch of freed memory;
 * - free while another thread publishes and sends in a loop;
 * - stop from a signal handler (VOLLEY_STOP_NO_WAIT) while join waits.
 * Exit status 0 when every check holds. */
#define _POSIX_C_SOURCE 200809L
#include "volley.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int failures;

static void nap_ms(long ms) {
  struct timespec t;
  t.tv_sec = ms / 1000;
  t.tv_nsec = (ms % 1000) * 1000000L;
  nanosleep(&t, NULL);
}
#define CHECK(cond)                                                  \
  do {                                                               \
    if (!(cond)) {                                                   \
      fprintf(stderr, "lifetime.c:%d: %s\n", __LINE__, #cond);       \
      failures++;                                                    \
    }                                                                \
  } while (0)

/* A client that connects and asks for a WebSocket (the server's answer is
 * not read: the tests only need the server to see the upgrade). */
static int connect_ws(uint16_t port) {
  static const char req[] =
      "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
  struct sockaddr_in a;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) return -1;
  if (write(fd, req, sizeof req - 1) != (ssize_t)(sizeof req - 1)) return -1;
  return fd;
}

static volley_server *new_server(const volley_handlers *h) {
  volley_options o;
  volley_server *s = NULL;
  VOLLEY_OPTIONS_INIT(&o);
  o.workers = 1;
  CHECK(volley_server_new(&o, h, NULL, &s) == VOLLEY_RESULT_OK);
  return s;
}

/* 1. Free from the open callback while main is in join. */
static void free_in_open(void *ud, volley_server *s, const volley_event *ev) {
  (void)ud;
  (void)ev;
  volley_server_free(s);
  /* Still inside this server's callback: calls are refused, not UB. */
  CHECK(volley_server_publish(s, (const uint8_t *)"t", 1, (const uint8_t *)"x", 1, 0, NULL) ==
        VOLLEY_RESULT_STOPPED);
}

/* 3. A thread that keeps calling while main frees. */
struct hammer {
  volley_server *s;
  volatile int stop;
  long calls, stopped, bad;
};

static void *hammer(void *p) {
  struct hammer *h = p;
  volley_ws nobody = {1, 0, 0};
  while (!h->stop) {
    volley_result r = volley_server_publish(h->s, (const uint8_t *)"t", 1, (const uint8_t *)"x", 1, 0, NULL);
    int64_t n = volley_ws_send(h->s, nobody, (const uint8_t *)"x", 1, VOLLEY_SEND_TEXT);
    h->calls++;
    if (r == VOLLEY_RESULT_STOPPED) h->stopped++;
    else if (r != VOLLEY_RESULT_OK) h->bad++;
    if (n != 0) h->bad++;
    if (h->stopped > 1000) break;
  }
  return NULL;
}

/* 4. Stop from a signal handler. */
static volley_server *signal_target;
static void on_signal(int sig) {
  (void)sig;
  volley_server_stop(signal_target, VOLLEY_STOP_NO_WAIT);
}

static void *send_signal(void *p) {
  nap_ms(200);
  pthread_kill(*(pthread_t *)p, SIGUSR1);
  return NULL;
}

int main(void) {
  volley_handlers h;
  volley_server *s;
  int fd;
  memset(&h, 0, sizeof h);
  h.struct_size = sizeof h;

  /* 1 and 2 */
  h.on_open = free_in_open;
  s = new_server(&h);
  fd = connect_ws(volley_server_port(s));
  CHECK(fd >= 0);
  {
    volley_result r = volley_server_join(s);
    CHECK(r == VOLLEY_RESULT_OK || r == VOLLEY_RESULT_STOPPED);
  }
  CHECK(volley_server_port(s) == 0);
  CHECK(volley_server_stop(s, VOLLEY_STOP_GRACEFUL) == VOLLEY_RESULT_STOPPED);
  CHECK(volley_server_join(s) == VOLLEY_RESULT_STOPPED);
  {
    volley_ws any = {1, 0, 0};
    CHECK(volley_ws_send(s, any, (const uint8_t *)"x", 1, 0) == 0);
    CHECK(volley_ws_close(s, any, 1000, NULL, 0) == VOLLEY_RESULT_STOPPED);
    CHECK(volley_ws_ready_state(s, any) == 3);
  }
  volley_server_free(s); /* a second free: nothing */
  close(fd);

  /* 3 */
  h.on_open = NULL;
  {
    struct hammer hm = {0};
    pthread_t t;
    hm.s = new_server(&h);
    CHECK(pthread_create(&t, NULL, hammer, &hm) == 0);
    nap_ms(50);
    volley_server_free(hm.s);
    nap_ms(50);
    hm.stop = 1;
    pthread_join(t, NULL);
    CHECK(hm.calls > 0 && hm.stopped > 0 && hm.bad == 0);
  }

  /* 4 */
  {
    struct sigaction sa;
    pthread_t me = pthread_self(), t;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGUSR1, &sa, NULL);
    signal_target = new_server(&h);
    CHECK(pthread_create(&t, NULL, send_signal, &me) == 0);
    CHECK(volley_server_join(signal_target) == VOLLEY_RESULT_OK);
    pthread_join(t, NULL);
    volley_server_free(signal_target);
  }

  if (failures) fprintf(stderr, "lifetime.c: %d checks failed\n", failures);
  return failures ? 1 : 0;
}
