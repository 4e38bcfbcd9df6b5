// The launcher's HTTP endpoints (libsoup 3): /healthz, /metrics (Prometheus
// text format) and /api/cameras (JSON).  docs/metrics.md describes every
// endpoint and metric.
//
// The server runs in the launcher's GMainContext and answers every request
// from a fresh Status snapshot taken on that context's thread; sockets are
// non-blocking, so a slow client never holds the main loop.
//
// What a peer can make it spend is bounded: it accepts the connections
// itself and hands them to libsoup, at most max_connections at once (more
// are closed at once, logged once per period with a count); one request per
// connection, and a connection still open HTTP_IDLE_TIMEOUT_S after it was
// accepted (idle or stalled: answers take milliseconds) is closed; only
// GET and HEAD are served, and a request announcing a body over
// HTTP_BODY_LIMIT (or a chunked one) is answered 413 and closed without its
// body being read.
#pragma once

#include <glib.h>
#include <gst/gst.h>

#include <cstdint>
#include <string>

#include "http_connections.h"
#include "status.h"

typedef struct _SoupServer SoupServer;
typedef struct _SoupServerMessage SoupServerMessage;

namespace camrelay::launcher {

class HttpServer {
 public:
  // `provider` is called on the context's thread once per request; it must
  // return quickly (it runs on the main loop).
  explicit HttpServer (StatusProvider provider);
  ~HttpServer ();

  HttpServer (const HttpServer &) = delete;
  HttpServer &operator= (const HttpServer &) = delete;

  // Serves on bind:port (`bind` an IPv4 or IPv6 address literal; port 0 picks
  // a free port, read it back with port()).  `context` is the context the
  // launcher's main loop runs (nullptr: the global default context); it must
  // be the thread-default context of the thread that runs it, because
  // libsoup attaches the sources of accepted connections to the
  // thread-default context.  Call start(), stop() and the destructor from
  // that thread (or before the loop runs).  On failure returns false and sets
  // `error` to one line, e.g. "HTTP 127.0.0.1:8080: Address already in use".
  bool start (const std::string &bind, uint16_t port, GMainContext *context, std::string &error);

  // The port actually bound; 0 when not serving.
  uint16_t port () const;

  // Most connections open at once (0 = no limit); applies to the connections
  // accepted from now on.
  void set_max_connections (unsigned max_connections);
  // Connections open now.
  unsigned open_connections () const;

  // Closes the listening socket and every client connection.  Idempotent.
  void stop ();

 private:
  static gboolean on_incoming (GSocketService *service, GSocketConnection *connection,
      GObject *source, gpointer self);
  static void on_request (SoupServer *server, SoupServerMessage *message,
      const char *path, GHashTable *query, gpointer user_data);
  void answer (SoupServerMessage *message, const char *path);

  StatusProvider provider_;
  SoupServer *server_ = nullptr;
  GSocketService *service_ = nullptr;
  HttpConnectionGate gate_;
  uint16_t port_ = 0;
};

// GET /metrics: Prometheus text exposition format 0.0.4.
std::string render_metrics (const Status &status);
// GET /api/cameras: a JSON array, one object per camera.
std::string render_cameras_json (const Status &status);
// GET /healthz: a JSON object.
std::string render_health_json (const Status &status);

// Building blocks, exposed for the tests.
// `text` as a JSON string literal, quotes included; invalid UTF-8 becomes U+FFFD.
std::string json_quote (const std::string &text);
// A GstStructure as a JSON object (field names as they are); null for nullptr.
std::string structure_to_json (const GstStructure *structure);

}  // namespace camrelay::launcher
