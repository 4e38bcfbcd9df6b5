// The launcher's RTSP server with bounded connections; see server.h.
#include "server.h"

namespace camrelay::launcher {

GstRTSPServer *
make_bounded_server (const ServerConfig &, GMainContext *)
{
  GstRTSPServer *server = gst_rtsp_server_new ();
  gst_rtsp_server_set_backlog (server, RTSP_LISTEN_BACKLOG);
  gst_rtsp_server_set_content_length_limit (server, RTSP_BODY_LIMIT);
  return server;
}

}  // namespace camrelay::launcher
