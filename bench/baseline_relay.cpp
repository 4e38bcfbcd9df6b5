// The relay a GStreamer user would write instead of camrelay, for the
// benchmarks to measure both on the same camera in the same run: gst-rtsp-
// server with one shared media per mount built from a launch line, as in
// gst-rtsp-server's examples/test-launch.c, and nothing else (default thread
// pool, no session cleanup, no reconnection).
//
//   baseline-relay --port 18555 rtsp://127.0.0.1:18554/cam
//   -> rtsp://127.0.0.1:18555/cam
#include <glib-unix.h>
#include <gst/gst.h>
#include <gst/rtsp-server/rtsp-server.h>

#include <cstdio>
#include <string>

namespace {

gboolean
quit (gpointer loop)
{
  g_main_loop_quit (static_cast<GMainLoop *> (loop));
  return G_SOURCE_REMOVE;
}

}  // namespace

int
main (int argc, char **argv)
{
  gint port = 18555;
  gchar *mount = nullptr;
  GOptionEntry entries[] = {
    {"port", 'p', 0, G_OPTION_ARG_INT, &port, "RTSP port (0: pick one)", "PORT"},
    {"mount", 'm', 0, G_OPTION_ARG_STRING, &mount, "Mount path (default /cam)", "PATH"},
    {nullptr, 0, 0, G_OPTION_ARG_NONE, nullptr, nullptr, nullptr},
  };
  GOptionContext *options = g_option_context_new ("CAMERA-URL - the baseline relay");
  g_option_context_add_main_entries (options, entries, nullptr);
  g_option_context_add_group (options, gst_init_get_option_group ());
  GError *error = nullptr;
  if (!g_option_context_parse (options, &argc, &argv, &error) || argc != 2) {
    std::fprintf (stderr, "baseline-relay: %s\n", error ? error->message : "give one camera URL");
    g_clear_error (&error);
    g_option_context_free (options);
    return 2;
  }
  g_option_context_free (options);

  GMainLoop *loop = g_main_loop_new (nullptr, FALSE);
  GstRTSPServer *server = gst_rtsp_server_new ();
  gst_rtsp_server_set_service (server, std::to_string (port).c_str ());
  GstRTSPMediaFactory *factory = gst_rtsp_media_factory_new ();
  const std::string launch = std::string ("( rtspsrc location=") + argv[1]
      + " latency=0 protocols=tcp ! rtph264depay ! h264parse ! rtph264pay name=pay0 pt=96 "
        "config-interval=-1 )";
  gst_rtsp_media_factory_set_launch (factory, launch.c_str ());
  gst_rtsp_media_factory_set_shared (factory, TRUE);
  GstRTSPMountPoints *mounts = gst_rtsp_server_get_mount_points (server);
  gst_rtsp_mount_points_add_factory (mounts, mount ? mount : "/cam", factory);
  g_object_unref (mounts);
  if (gst_rtsp_server_attach (server, nullptr) == 0) {
    std::fprintf (stderr, "baseline-relay: cannot listen on port %d\n", port);
    return 1;
  }
  std::fprintf (stderr, "baseline-relay: rtsp://127.0.0.1:%d%s relays %s\n",
      gst_rtsp_server_get_bound_port (server), mount ? mount : "/cam", argv[1]);
  g_unix_signal_add (SIGINT, quit, loop);
  g_unix_signal_add (SIGTERM, quit, loop);
  g_main_loop_run (loop);
  g_object_unref (server);
  g_main_loop_unref (loop);
  g_free (mount);
  return 0;
}
