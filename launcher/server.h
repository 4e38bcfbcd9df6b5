// The launcher's RTSP server: gst-rtsp-server's GstRTSPServer with what one
// peer can make it spend bounded before it has proved who it is.
//
// - A listen backlog sized for bursts of clients (the kernel caps it at
//   net.core.somaxconn).
// - A request body limit: a larger Content-Length is answered 413 and the
//   connection closed before the body is read.
// - Connections in all (server.max_connections) and from one address
//   (server.max_connections_per_ip): over either limit a new connection is
//   closed as soon as it is accepted, before gst-rtsp-server makes a client
//   object or a worker thread for it; refusals are logged once per period
//   and address, with a count.
// - A connection that has had no successful answer (2xx) to a request other
//   than OPTIONS within server.login_timeout is closed: one that only
//   connects, or only asks OPTIONS, or fails to log in.  A client that plays
//   has had several.  The time a DESCRIBE waits for its camera is not
//   counted: it is the server's.
//
// Thread model: the counts and the list of connections live in a
// ConnectionTable, shared (shared_ptr) by the server, each client and the
// housekeeping, and guarded by its own lock, which is never held while
// calling into gst-rtsp-server or logging.  Connections are accepted and the
// housekeeping runs on the main context; a connection is released from its
// client's thread ("closed") or wherever its client is finalized, exactly
// once.
#pragma once

#include <gst/rtsp-server/rtsp-server.h>

#include "config.h"

namespace camrelay::launcher {

// The request body limit of RTSP clients, in bytes: SET_PARAMETER and
// ANNOUNCE bodies of a few parameters or an SDP fit easily.
inline constexpr guint RTSP_BODY_LIMIT = 4096;
// The listen backlog asked for (the kernel caps it at net.core.somaxconn).
inline constexpr gint RTSP_LISTEN_BACKLOG = 1024;

// A new server with the bounds of `config` (max_connections,
// max_connections_per_ip, login_timeout), whose housekeeping (the login
// check) runs every second on
// `context` from when the server is made until it is finalized.
GstRTSPServer *make_bounded_server (const ServerConfig &config, GMainContext *context);

// Applies the connection limits and login_timeout of `config` (on reload).
// Connections already open stay, even over a lower limit.
void update_bounds (GstRTSPServer *server, const ServerConfig &config);

// Connections open now, as counted for the limits.
unsigned open_connections (GstRTSPServer *server);

}  // namespace camrelay::launcher
