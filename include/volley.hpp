// volley.hpp: a small RAII layer over volley.h for C++17. Header-only;
// everything here is inline over the C functions, which stay available.
// Errors throw volley::Error, except where the C call answers Bun-style
// (send returns n / -1 / 0). Never throw out of a callback: callbacks are
// called from C and must not unwind into it.
#ifndef VOLLEY_HPP
#define VOLLEY_HPP

#include "volley.h"

#include <stdexcept>
#include <string>
#include <string_view>

namespace volley {

/// A failed call, with its result code.
class Error : public std::runtime_error {
 public:
  explicit Error(uint32_t code) : std::runtime_error(volley_error_message(code)), code_(code) {}
  uint32_t code() const noexcept { return code_; }

 private:
  uint32_t code_;
};

inline void check(uint32_t r) {
  if (r != VOLLEY_RESULT_OK) throw Error(r);
}

inline std::string_view view(volley_bytes b) {
  return std::string_view(reinterpret_cast<const char *>(b.data), b.len);
}

inline const uint8_t *bytes(std::string_view s) { return reinterpret_cast<const uint8_t *>(s.data()); }

inline bool operator==(volley_ws a, volley_ws b) { return a.generation == b.generation && a.key == b.key; }

/// Options with Bun's defaults.
struct Options : volley_options {
  Options() { volley_options_init_sized(this, sizeof(volley_options)); }
};

/// A server; freed (stopping at once) when it goes out of scope.
class Server {
 public:
  /// Callback mode with `handlers`, event-queue mode without.
  explicit Server(const volley_options &o, const volley_handlers *handlers = nullptr, void *userdata = nullptr) {
    if (volley_abi_version() != VOLLEY_ABI_VERSION) throw Error(VOLLEY_RESULT_ABI_MISMATCH);
    check(volley_server_new(&o, handlers, userdata, &s_));
  }
  ~Server() { volley_server_free(s_); }
  Server(const Server &) = delete;
  Server &operator=(const Server &) = delete;
  Server(Server &&o) noexcept : s_(o.s_) { o.s_ = nullptr; }

  volley_server *get() const noexcept { return s_; }
  uint16_t port() const noexcept { return volley_server_port(s_); }
  int fd() const {
    int fd = -1;
    check(volley_server_fd(s_, &fd));
    return fd;
  }
  size_t poll(volley_event *events, size_t max) const {
    size_t n = 0;
    check(volley_server_poll(s_, events, max, &n));
    return n;
  }
  void stop(uint32_t flags = VOLLEY_STOP_GRACEFUL) const { check(volley_server_stop(s_, flags)); }

  /// Bun's ws.send: bytes, -1 (backpressure) or 0 (dropped).
  int64_t send(volley_ws ws, std::string_view data, uint32_t flags = VOLLEY_SEND_TEXT) const {
    int64_t r = volley_ws_send(s_, ws, bytes(data), data.size(), flags);
    if (r <= -100) throw Error(static_cast<uint32_t>(-r));
    return r;
  }
  void publish(std::string_view topic, std::string_view data, uint32_t flags = VOLLEY_SEND_TEXT) const {
    check(volley_server_publish(s_, bytes(topic), topic.size(), bytes(data), data.size(), flags, nullptr));
  }
  void publish(volley_ws from, std::string_view topic, std::string_view data, uint32_t flags = VOLLEY_SEND_TEXT) const {
    check(volley_ws_publish(s_, from, bytes(topic), topic.size(), bytes(data), data.size(), flags, nullptr));
  }
  /// VOLLEY_RESULT_OK or CLOSED (no throw for a connection that has gone).
  uint32_t subscribe(volley_ws ws, std::string_view topic) const {
    return volley_ws_subscribe(s_, ws, bytes(topic), topic.size());
  }
  uint32_t close(volley_ws ws, uint16_t code, std::string_view reason = {}) const {
    return volley_ws_close(s_, ws, code, bytes(reason), reason.size());
  }
  void accept(volley_ws ws, uint64_t user, const char *protocol = nullptr) const {
    check(volley_upgrade_accept(s_, ws, user, protocol, nullptr, 0));
  }
  void reject(volley_ws ws, uint16_t status, std::string_view body) const {
    check(volley_upgrade_reject(s_, ws, status, nullptr, 0, bytes(body), body.size()));
  }
  void respond(volley_ws ws, uint16_t status, std::string_view body) const {
    check(volley_respond(s_, ws, status, nullptr, 0, bytes(body), body.size()));
  }

 private:
  volley_server *s_ = nullptr;
};

/// Batch this thread's sends until the end of the scope (one wake-up per worker).
class Cork {
 public:
  explicit Cork(const Server &s) : s_(s.get()) { volley_server_cork(s_); }
  ~Cork() { volley_server_uncork(s_); }
  Cork(const Cork &) = delete;
  Cork &operator=(const Cork &) = delete;

 private:
  volley_server *s_;
};

}  // namespace volley

#endif
