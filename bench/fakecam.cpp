// The benchmarks' camera: a pre-encoded H.264 clip served live over RTSP, in
// a loop, as a camera sends it (camerasrc's file:// input paces it in real
// time), so that the camera costs next to nothing and is the same for every
// relay measured.
//
//   fakecam --port 18554 clip.mp4        -> rtsp://127.0.0.1:18554/cam
//   fakecam --port 18554 clip.mp4 --mount /cam-g4=clip-g4.mp4 --fresh /cam-new=clip.mp4
//
// Each mount is one shared media (clients join the running stream), except
// --fresh ones: a media per session, from the clip's first keyframe, like a
// camera that starts every session with a keyframe.  SIGUSR1 stops serving
// (the camera reboots: clients are cut, new ones are refused until SIGUSR2);
// SIGUSR2 serves again; SIGHUP stalls the camera (connections stay open, no
// more video) or ends the stall.  Signals act on every mount.
#include <glib-unix.h>
#include <gst/gst.h>
#include <gst/rtsp-server/rtsp-server.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace {

struct Mount {
  std::string path;
  GstRTSPMediaFactory *factory = nullptr;
};

struct Camera {
  GstRTSPServer *server = nullptr;
  std::vector<Mount> mounts;
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
  for (const Mount &mount : camera->mounts)
    gst_rtsp_mount_points_remove_factory (mounts, mount.path.c_str ());
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
  for (const Mount &mount : camera->mounts)
    gst_rtsp_mount_points_add_factory (mounts, mount.path.c_str (),
        GST_RTSP_MEDIA_FACTORY (g_object_ref (mount.factory)));
  g_object_unref (mounts);
  std::fprintf (stderr, "fakecam: back\n");
  return G_SOURCE_CONTINUE;
}

// A factory serving `clip` live; false (and a message) when it is not a file.
bool
add_mount (Camera &camera, const std::string &path, const char *clip, bool shared)
{
  GError *error = nullptr;
  gchar *uri = gst_filename_to_uri (clip, &error);
  if (!uri) {
    std::fprintf (stderr, "fakecam: %s: %s\n", clip, error->message);
    g_clear_error (&error);
    return false;
  }
  Mount mount;
  mount.path = path;
  mount.factory = gst_rtsp_media_factory_new ();
  const std::string launch = std::string ("( camerasrc location=") + uri
      + " ! rtph264pay name=pay0 pt=96 config-interval=-1 )";
  g_free (uri);
  gst_rtsp_media_factory_set_launch (mount.factory, launch.c_str ());
  gst_rtsp_media_factory_set_shared (mount.factory, shared);
  g_signal_connect (mount.factory, "media-configure", G_CALLBACK (on_media_configure), nullptr);
  camera.mounts.push_back (mount);
  return true;
}

// "PATH=CLIP" -> a mount; false when malformed or the clip is not a file.
bool
add_mount_spec (Camera &camera, const char *spec, bool shared)
{
  const char *equals = spec ? std::strchr (spec, '=') : nullptr;
  if (!equals || spec[0] != '/' || equals == spec + 1) {
    std::fprintf (stderr, "fakecam: expected /PATH=CLIP, got %s\n", spec ? spec : "nothing");
    return false;
  }
  return add_mount (camera, std::string (spec, equals - spec), equals + 1, shared);
}

}  // namespace

int
main (int argc, char **argv)
{
  gint port = 18554;
  gchar **shared_specs = nullptr, **fresh_specs = nullptr;
  GOptionEntry entries[] = {
    {"port", 'p', 0, G_OPTION_ARG_INT, &port, "RTSP port (0: pick one)", "PORT"},
    {"mount", 'm', 0, G_OPTION_ARG_STRING_ARRAY, &shared_specs,
     "Also serve CLIP at PATH, one shared media (repeatable)", "/PATH=CLIP"},
    {"fresh", 'f', 0, G_OPTION_ARG_STRING_ARRAY, &fresh_specs,
     "Also serve CLIP at PATH, a media per session from its first keyframe (repeatable)",
     "/PATH=CLIP"},
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
    g_strfreev (shared_specs);
    g_strfreev (fresh_specs);
    return 2;
  }
  g_option_context_free (options);
  GstElementFactory *camerasrc = gst_element_factory_find ("camerasrc");
  if (!camerasrc) {
    std::fprintf (stderr, "fakecam: camerasrc not found (set GST_PLUGIN_PATH to the build's plugins)\n");
    g_strfreev (shared_specs);
    g_strfreev (fresh_specs);
    return 1;
  }
  gst_object_unref (camerasrc);
  Camera camera;
  bool ok = add_mount (camera, "/cam", argv[1], true);
  for (gchar **spec = shared_specs; ok && spec && *spec; spec++)
    ok = add_mount_spec (camera, *spec, true);
  for (gchar **spec = fresh_specs; ok && spec && *spec; spec++)
    ok = add_mount_spec (camera, *spec, false);
  g_strfreev (shared_specs);
  g_strfreev (fresh_specs);
  if (!ok) {
    for (Mount &mount : camera.mounts)
      g_object_unref (mount.factory);
    return 2;
  }

  GMainLoop *loop = g_main_loop_new (nullptr, FALSE);
  camera.server = gst_rtsp_server_new ();
  gst_rtsp_server_set_service (camera.server, std::to_string (port).c_str ());
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
  for (Mount &mount : camera.mounts)
    g_object_unref (mount.factory);
  g_object_unref (camera.server);
  g_main_loop_unref (loop);
  return 0;
}
