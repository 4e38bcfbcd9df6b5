// The benchmarks' camera: a pre-encoded H.264 clip served live over RTSP, in
// a loop, as a camera sends it (camerasrc's file:// input paces it in real
// time), so that the camera costs next to nothing and is the same for every
// relay measured.
//
//   fakecam --port 18554 clip.mp4        -> rtsp://127.0.0.1:18554/cam
//
// SIGUSR1 stops serving (the camera reboots: clients are cut, new ones are
// refused until SIGUSR2); SIGUSR2 serves again; SIGHUP stalls the camera
// (connections stay open, no more video) or ends the stall.
#include <glib-unix.h>
#include <gst/gst.h>
#include <gst/rtsp-server/rtsp-server.h>

#include <atomic>
#include <cstdio>
#include <string>

namespace {

struct Camera {
  GstRTSPServer *server = nullptr;
  GstRTSPMediaFactory *factory = nullptr;
  std::string mount = "/cam";
  bool serving = false;
};

std::atomic<bool> stalled{false};

gboolean
toggle_stall (gpointer)
{
  stalled = !stalled;
  std::fprintf (stderr, "fakecam: %s\n", stalled ? "stalled" : "streaming again");
  return G_SOURCE_CONTINUE;
}

// Each media's payloader output is dropped while the camera is stalled.
// rtph264pay pushes the packets of a fragmented frame (FU-A) as one buffer
// list, so lists are dropped too, not only single buffers.
void
on_media_configure (GstRTSPMediaFactory *, GstRTSPMedia *media, gpointer)
{
  GstElement *element = gst_rtsp_media_get_element (media);
  GstElement *pay = gst_bin_get_by_name (GST_BIN (element), "pay0");
  GstPad *src = gst_element_get_static_pad (pay, "src");
  gst_pad_add_probe (src,
      static_cast<GstPadProbeType> (GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST),
      [] (GstPad *, GstPadProbeInfo *, gpointer) {
        return stalled ? GST_PAD_PROBE_DROP : GST_PAD_PROBE_OK;
      },
      nullptr, nullptr);
  gst_object_unref (src);
  gst_object_unref (pay);
  gst_object_unref (element);
}

gboolean
quit (gpointer loop)
{
  g_main_loop_quit (static_cast<GMainLoop *> (loop));
  return G_SOURCE_REMOVE;
}

// The camera goes away: mount removed, every client closed.
gboolean
go_away (gpointer data)
{
  auto *camera = static_cast<Camera *> (data);
  if (!camera->serving)
    return G_SOURCE_CONTINUE;
  camera->serving = false;
  GstRTSPMountPoints *mounts = gst_rtsp_server_get_mount_points (camera->server);
  gst_rtsp_mount_points_remove_factory (mounts, camera->mount.c_str ());
  g_object_unref (mounts);
  gst_rtsp_server_client_filter (camera->server,
      [] (GstRTSPServer *, GstRTSPClient *, gpointer) { return GST_RTSP_FILTER_REMOVE; }, nullptr);
  std::fprintf (stderr, "fakecam: away\n");
  return G_SOURCE_CONTINUE;
}

gboolean
come_back (gpointer data)
{
  auto *camera = static_cast<Camera *> (data);
  if (camera->serving)
    return G_SOURCE_CONTINUE;
  camera->serving = true;
  GstRTSPMountPoints *mounts = gst_rtsp_server_get_mount_points (camera->server);
  gst_rtsp_mount_points_add_factory (mounts, camera->mount.c_str (),
      GST_RTSP_MEDIA_FACTORY (g_object_ref (camera->factory)));
  g_object_unref (mounts);
  std::fprintf (stderr, "fakecam: back\n");
  return G_SOURCE_CONTINUE;
}

}  // namespace

int
main (int argc, char **argv)
{
  gint port = 18554;
  GOptionEntry entries[] = {
    {"port", 'p', 0, G_OPTION_ARG_INT, &port, "RTSP port (0: pick one)", "PORT"},
    {nullptr, 0, 0, G_OPTION_ARG_NONE, nullptr, nullptr, nullptr},
  };
  GOptionContext *options = g_option_context_new ("CLIP.mp4 - a live RTSP camera from a clip");
  g_option_context_add_main_entries (options, entries, nullptr);
  g_option_context_add_group (options, gst_init_get_option_group ());
  GError *error = nullptr;
  if (!g_option_context_parse (options, &argc, &argv, &error) || argc != 2) {
    std::fprintf (stderr, "fakecam: %s\n", error ? error->message : "give one clip");
    g_clear_error (&error);
    g_option_context_free (options);
    return 2;
  }
  g_option_context_free (options);
  if (!gst_element_factory_find ("camerasrc")) {
    std::fprintf (stderr, "fakecam: camerasrc not found (set GST_PLUGIN_PATH to the build's plugins)\n");
    return 1;
  }
  gchar *uri = gst_filename_to_uri (argv[1], &error);
  if (!uri) {
    std::fprintf (stderr, "fakecam: %s: %s\n", argv[1], error->message);
    return 1;
  }

  GMainLoop *loop = g_main_loop_new (nullptr, FALSE);
  Camera camera;
  camera.server = gst_rtsp_server_new ();
  gst_rtsp_server_set_service (camera.server, std::to_string (port).c_str ());
  camera.factory = gst_rtsp_media_factory_new ();
  const std::string launch = std::string ("( camerasrc location=") + uri
      + " ! rtph264pay name=pay0 pt=96 config-interval=-1 )";
  g_free (uri);
  gst_rtsp_media_factory_set_launch (camera.factory, launch.c_str ());
  gst_rtsp_media_factory_set_shared (camera.factory, TRUE);
  g_signal_connect (camera.factory, "media-configure", G_CALLBACK (on_media_configure), nullptr);
  come_back (&camera);
  if (gst_rtsp_server_attach (camera.server, nullptr) == 0) {
    std::fprintf (stderr, "fakecam: cannot listen on port %d\n", port);
    return 1;
  }
  std::fprintf (stderr, "fakecam: rtsp://127.0.0.1:%d/cam\n",
      gst_rtsp_server_get_bound_port (camera.server));
  g_unix_signal_add (SIGINT, quit, loop);
  g_unix_signal_add (SIGTERM, quit, loop);
  g_unix_signal_add (SIGUSR1, go_away, &camera);
  g_unix_signal_add (SIGUSR2, come_back, &camera);
  g_unix_signal_add (SIGHUP, toggle_stall, nullptr);
  g_main_loop_run (loop);
  g_object_unref (camera.factory);
  g_object_unref (camera.server);
  g_main_loop_unref (loop);
  return 0;
}
