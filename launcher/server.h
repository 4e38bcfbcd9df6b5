// The launcher's RTSP server: gst-rtsp-server's GstRTSPServer with what one
// peer can make it spend bounded.
//
// - A listen backlog sized for bursts of clients (the kernel caps it at
//   net.core.somaxconn).
// - A request body limit: a larger Content-Length is answered 413 and the
//   connection closed before the body is read.
#pragma once

#include <gst/rtsp-server/rtsp-server.h>

#include "config.h"

namespace camrelay::launcher {

// The request body limit of RTSP clients, in bytes: SET_PARAMETER and
// ANNOUNCE bodies of a few parameters or an SDP fit easily.
inline constexpr guint RTSP_BODY_LIMIT = 4096;
// The listen backlog asked for (the kernel caps it at net.core.somaxconn).
inline constexpr gint RTSP_LISTEN_BACKLOG = 1024;

// A new server with the bounds above.
GstRTSPServer *make_bounded_server (const ServerConfig &config, GMainContext *context);

}  // namespace camrelay::launcher
