// What a peer can make the HTTP server spend (see http.h): how many
// connections are open, how long each lives, and request bodies refused
// before they are read.  Everything here runs on the thread of the HTTP
// server's main context.
#pragma once

#include <gio/gio.h>

#include <cstdint>
#include <memory>
#include <string>

typedef struct _SoupServer SoupServer;

namespace camrelay::launcher {

// Seconds an HTTP connection may stay open (one request, answered at once).
inline constexpr guint HTTP_IDLE_TIMEOUT_S = 10;
// The largest request body taken, in bytes (the endpoints take none).
inline constexpr int64_t HTTP_BODY_LIMIT = 4096;
// Connections waiting to be accepted: a burst of clients is queued, not
// dropped and retried seconds later (the kernel caps it at somaxconn).
inline constexpr int HTTP_LISTEN_BACKLOG = 1024;

// Counts the connections open, and lets no more than its maximum in.
class HttpConnectionGate {
 public:
  HttpConnectionGate ();

  // Most connections open at once (0 = no limit), for those admitted from now on.
  void set_max (unsigned max);
  unsigned open () const;

  // A connection just accepted, from `remote`.  False when the maximum is
  // open already (logged once per address and period, with a count): the
  // caller drops it, which closes it.  True: it is counted until it is
  // finalized, shut down HTTP_IDLE_TIMEOUT_S from now if still open, and
  // known to refuse_large_bodies() through `remote`, which the caller hands
  // to libsoup with it.
  bool admit (GSocketConnection *connection, GSocketAddress *remote);

 private:
  struct State;
  std::shared_ptr<State> state_;  // shared with the connections' weak references
};

// Has `server` answer 413 to a request that announces a body over
// HTTP_BODY_LIMIT, or a chunked one, and close its connection without
// reading the body (for connections admitted by a gate).
void refuse_large_bodies (SoupServer *server);

// The IP address of `address`, or "?".
std::string http_client_ip (GSocketAddress *address);

}  // namespace camrelay::launcher
