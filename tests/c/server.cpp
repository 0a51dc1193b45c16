// The C++ test server: the same routes as server.c, in event-queue mode
// (the host thread polls the server's descriptor, drains events in
// batches and answers), on volley.hpp. One more route: /slow, whose
// upgrade is never answered (for stopping with a pending upgrade).
#include "volley.hpp"

#include <poll.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>

namespace {

volatile sig_atomic_t stop_signal = 0;
void on_signal(int sig) { stop_signal = sig; }

struct Peer {
  std::string room, name;
};

}  // namespace

int main(int argc, char **argv) {
  const char *routes[] = {"/echo", "/room/:name", "/reject", "/health", "/slow"};
  volley::Options o;
  o.port = static_cast<uint16_t>(argc > 1 ? std::atoi(argv[1]) : 0);
  o.routes = routes;
  o.routes_len = 5;
  o.workers = 2;
  volley::Server s(o);
  std::signal(SIGTERM, on_signal);
  std::signal(SIGINT, on_signal);
  std::printf("listening %u\n", s.port());
  std::fflush(stdout);

  std::map<uint64_t, Peer> peers;  // by user value
  uint64_t next_user = 1;
  volley_ws last_closed{};
  volley_event events[256];
  pollfd pfd{s.fd(), POLLIN, 0};
  while (!stop_signal) {
    // Blocks on the descriptor alone (a lost wake-up would show as a stall
    // of the whole timeout); the timeout only bounds how late a signal that
    // lands just before poll is seen.
    if (::poll(&pfd, 1, 5000) <= 0) continue;
    size_t n;
    do {
      n = s.poll(events, 256);
      volley::Cork cork(s);  // one wake-up per worker for this batch's answers
      for (size_t i = 0; i < n; i++) {
        const volley_event &ev = events[i];
        switch (ev.kind) {
          case VOLLEY_EVENT_KIND_UPGRADE: {
            const volley_request &r = *ev.request;
            std::string_view path = volley::view(r.path);
            if (path == "/reject") {
              s.reject(ev.ws, 403, "go away");
              break;
            }
            if (path == "/slow") break;  // never answered
            Peer p;
            for (size_t k = 0; k < r.params_len; k++)
              if (volley::view(r.params[k].name) == "name") p.room = std::string(volley::view(r.params[k].value));
            std::string_view q = volley::view(r.query);
            p.name = q.substr(0, 5) == "user=" ? std::string(q.substr(5)) : "anon";
            peers[next_user] = p;
            s.accept(ev.ws, next_user++);
            break;
          }
          case VOLLEY_EVENT_KIND_REQUEST:
            if (volley::view(ev.request->path) == "/health")
              s.respond(ev.ws, 200, "ok");
            else
              s.respond(ev.ws, 404, "no");
            break;
          case VOLLEY_EVENT_KIND_OPEN: {
            Peer &p = peers[ev.user];
            if (!p.room.empty()) {
              s.subscribe(ev.ws, p.room);
              s.publish(ev.ws, p.room, p.name + " joined");
            }
            break;
          }
          case VOLLEY_EVENT_KIND_MESSAGE: {
            Peer &p = peers[ev.user];
            std::string_view d = volley::view(ev.data);
            if (!p.room.empty()) {
              s.publish(ev.ws, p.room, p.name + ": " + std::string(d));
            } else if (d.substr(0, 6) == "close:") {
              std::string rest(d.substr(6));
              size_t colon = rest.find(':');
              s.close(ev.ws, static_cast<uint16_t>(std::atoi(rest.c_str())),
                      colon == std::string::npos ? std::string_view() : std::string_view(rest).substr(colon + 1));
            } else if (d == "stale?") {
              if (last_closed.generation == 0) {
                s.send(ev.ws, "stale:none");
              } else {
                bool ok = s.send(last_closed, "x") == 0 && s.close(last_closed, 1000) == VOLLEY_RESULT_CLOSED &&
                          volley_ws_ready_state(s.get(), last_closed) == 3 &&
                          s.subscribe(last_closed, "t") == VOLLEY_RESULT_CLOSED;
                s.send(ev.ws, ok ? "stale:ok" : "stale:BAD");
              }
            } else {
              s.send(ev.ws, d, ev.flags & VOLLEY_EVENT_BINARY ? VOLLEY_SEND_BINARY : VOLLEY_SEND_TEXT);
            }
            break;
          }
          case VOLLEY_EVENT_KIND_CLOSE: {
            auto it = peers.find(ev.user);
            if (it != peers.end()) {
              if (!it->second.room.empty()) s.publish(it->second.room, it->second.name + " left");
              peers.erase(it);
            }
            last_closed = ev.ws;
            break;
          }
          default:
            break;
        }
      }
    } while (n == 256);
  }
  if (stop_signal == SIGTERM) s.stop(VOLLEY_STOP_GRACEFUL);
  return 0;  // ~Server frees (at once: live connections, pending upgrades, undrained events)
}
