// camrelay: serves every configured camera as one steady RTSP URL.
//
//   camrelay                    the synthetic test camera at rtsp://127.0.0.1:8554/test
//   camrelay -c camrelay.toml   the cameras of a configuration file
//   camrelay --check -c FILE    validate a configuration and exit (2 when invalid)
#include <glib-unix.h>
#include <gst/gst.h>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "camera.h"
#include "common/rtsp_guard.h"
#include "common/upstream_criticals.h"
#include "config.h"
#include "heap.h"
#include "http.h"
#include "relay.h"

namespace {

using namespace camrelay::launcher;

// Where the vendor URL templates are: installed, or in the source tree.
std::string
vendor_templates_path ()
{
  if (const char *env = g_getenv ("CAMRELAY_VENDORS"))
    return env;
  if (g_file_test (CAMRELAY_VENDORS_INSTALLED, G_FILE_TEST_EXISTS))
    return CAMRELAY_VENDORS_INSTALLED;
  return CAMRELAY_VENDORS_SOURCE;
}

// Run from the build tree (not installed): use the plugin built beside us.
void
ensure_plugin ()
{
  GstPluginFeature *feature = gst_registry_lookup_feature (gst_registry_get (), "camerasrc");
  if (feature) {
    gst_object_unref (feature);
    return;
  }
  gst_registry_scan_path (gst_registry_get (), CAMRELAY_BUILD_PLUGIN_DIR);
}

// The cameras' pipeline fragments against the video they get and must give
// (needs the elements, so it is checked here rather than with the syntax);
// false, with a line each, when one does not fit.
bool
pipelines_fit (const Config &config)
{
  bool fit = true;
  for (const CameraConfig &camera : config.cameras) {
    const std::string problem = pipeline_problem (camera);
    if (!problem.empty ()) {
      std::fprintf (stderr, "%s: camera %s: pipeline: %s\n",
          config.path.empty () ? "default" : config.path.c_str (), camera.name.c_str (),
          problem.c_str ());
      fit = false;
    }
  }
  return fit;
}

struct Loop {
  GMainLoop *loop;
  const char *reason = nullptr;
};

gboolean
on_stop_signal (gpointer data)
{
  auto *loop = static_cast<Loop *> (data);
  loop->reason = "signal";
  g_main_loop_quit (loop->loop);
  return G_SOURCE_CONTINUE;
}

// How long stopping may take before the watchdog ends the process.
constexpr int STOP_BOUND_MS = 4000;
// How often free heap memory goes back to the system (heap.h).
constexpr unsigned HEAP_TRIM_INTERVAL_S = 10;

// A service stops within 5 s: should closing the clients or the cameras
// ever hang (a bug: one such, in gst-rtsp-server's latency handling, is
// worked around in camera.cpp), the watchdog says where it was stuck and
// ends the process anyway.  The launcher's timers are GLib sources on the
// main context; this one cannot be, since it watches the main thread
// itself.  Its thread lives from construction to destruction (joined, never
// detached) and waits at most STOP_BOUND_MS.
class StopWatchdog {
 public:
  StopWatchdog ()
      : thread_ ([this] {
          std::unique_lock<std::mutex> l (lock_);
          if (!done_cond_.wait_for (l, std::chrono::milliseconds (STOP_BOUND_MS),
                  [this] { return done_; })) {
            std::fprintf (stderr, "camrelay: stopping took over %d ms (stuck stopping %s); exiting\n",
                STOP_BOUND_MS, stage.load ());
            std::fflush (stderr);
            _exit (0);
          }
        })
  {
  }
  ~StopWatchdog ()
  {
    {
      std::lock_guard<std::mutex> l (lock_);
      done_ = true;
    }
    done_cond_.notify_all ();
    thread_.join ();
  }
  StopWatchdog (const StopWatchdog &) = delete;
  StopWatchdog &operator= (const StopWatchdog &) = delete;

  std::atomic<const char *> stage{"HTTP"};  // what is being stopped, for the message

 private:
  std::mutex lock_;
  std::condition_variable done_cond_;
  bool done_ = false;
  std::thread thread_;  // last: starts once the members above exist
};

struct Reload {
  Relay *relay;
  HttpServer *http;
  std::string path;  // empty: running the embedded default
  HttpConfig running_http;
  GMainContext *context;
};

// [http] changed: the HTTP server moves (or stops, or starts).  When the new
// address cannot be used, the old one is taken back.
void
reload_http (Reload &reload, const HttpConfig &next)
{
  const HttpConfig &now = reload.running_http;
  reload.http->set_max_connections (next.max_connections);
  if (next.enabled == now.enabled && next.bind == now.bind && next.port == now.port)
    return;
  reload.http->stop ();
  std::string failure;
  if (next.enabled && !reload.http->start (next.bind, next.port, reload.context, failure)) {
    std::fprintf (stderr, "reload: HTTP: %s; keeping %s\n", failure.c_str (),
        now.enabled ? (now.bind + ":" + std::to_string (now.port)).c_str () : "it off");
    if (now.enabled && !reload.http->start (now.bind, now.port, reload.context, failure))
      std::fprintf (stderr, "reload: HTTP: %s; HTTP is off\n", failure.c_str ());
    return;
  }
  if (next.enabled)
    std::fprintf (stderr, "reload: HTTP on %s:%u\n", next.bind.c_str (), reload.http->port ());
  else
    std::fprintf (stderr, "reload: HTTP off\n");
  reload.running_http = next;
}

// SIGHUP: read the configuration again; an invalid one is refused and the
// running one keeps serving.
gboolean
on_hangup (gpointer data)
{
  auto *reload = static_cast<Reload *> (data);
  if (reload->path.empty ()) {
    std::fprintf (stderr, "reload: no configuration file (running the embedded default)\n");
    return G_SOURCE_CONTINUE;
  }
  ConfigResult result = load_config (reload->path, vendor_templates_path ());
  if (!result.config || !pipelines_fit (*result.config)) {
    for (const ConfigError &e : result.errors)
      std::fprintf (stderr, "%s\n", e.to_string ().c_str ());
    std::fprintf (stderr, "reload: refused, %s is invalid; the running configuration stays\n",
        reload->path.c_str ());
    return G_SOURCE_CONTINUE;
  }
  reload->relay->reload (*result.config);
  reload_http (*reload, result.config->http);
  return G_SOURCE_CONTINUE;
}

}  // namespace

int
main (int argc, char **argv)
{
  tune_heap ();
  gchar *config_path = nullptr;
  gboolean check = FALSE;
  gboolean version = FALSE;
  const GOptionEntry entries[] = {
    {"config", 'c', 0, G_OPTION_ARG_FILENAME, &config_path,
        "Configuration file (default: serve the synthetic test camera)", "FILE"},
    {"check", 0, 0, G_OPTION_ARG_NONE, &check, "Validate the configuration and exit", nullptr},
    {"version", 0, 0, G_OPTION_ARG_NONE, &version, "Print the version and exit", nullptr},
    {nullptr, 0, 0, G_OPTION_ARG_NONE, nullptr, nullptr, nullptr},
  };
  GOptionContext *options = g_option_context_new ("- one steady RTSP URL per IP camera");
  g_option_context_add_main_entries (options, entries, nullptr);
  g_option_context_add_group (options, gst_init_get_option_group ());
  GError *error = nullptr;
  if (!g_option_context_parse (options, &argc, &argv, &error)) {
    std::fprintf (stderr, "camrelay: %s (see --help)\n", error->message);
    g_clear_error (&error);
    g_option_context_free (options);
    return 2;
  }
  g_option_context_free (options);

  if (version) {
    std::printf ("camrelay %s (GStreamer %s)\n", VERSION, gst_version_string ());
    return 0;
  }

  // Before the configuration: pipeline fragments in it are checked against
  // the elements there are.
  gst_init (nullptr, nullptr);
  camrelay::install_upstream_critical_filter ();
  // Before any connection: caps on what one RTSP message of a client or of a
  // camera may hold (docs/security.md).
  camrelay::rtsp_guard_install (camrelay::RtspCaps{},
      [] (const char *line) { log_line ("%s", line); });
  ensure_plugin ();

  Config config;
  const std::string path = config_path ? config_path : "";
  if (config_path) {
    ConfigResult result = load_config (config_path, vendor_templates_path ());
    g_free (config_path);
    if (!result.config) {
      for (const ConfigError &e : result.errors)
        std::fprintf (stderr, "%s\n", e.to_string ().c_str ());
      return 2;
    }
    config = *result.config;
  } else {
    config = default_config ();
  }
  if (!pipelines_fit (config))
    return 2;
  if (check) {
    std::printf ("%s: OK (%zu cameras)\n", config.path.empty () ? "default" : config.path.c_str (),
        config.cameras.size ());
    return 0;
  }

  GMainContext *context = g_main_context_default ();
  std::unique_ptr<GSource, void (*) (GSource *)> heap_trim (
      start_heap_trim (context, HEAP_TRIM_INTERVAL_S), [] (GSource *source) {
        g_source_destroy (source);
        g_source_unref (source);
      });
  Loop loop{g_main_loop_new (context, FALSE)};
  Relay relay (VERSION);
  std::string failure;
  if (!relay.start (config, context, failure)) {
    std::fprintf (stderr, "camrelay: %s\n", failure.c_str ());
    g_main_loop_unref (loop.loop);
    return 1;
  }
  HttpServer http ([&relay] {
    Status status = relay.status ();
    const HeapFigures heap = heap_figures ();
    status.resident_bytes = heap.resident_bytes;
    status.heap_in_use_bytes = heap.in_use_bytes;
    status.heap_free_bytes = heap.free_bytes;
    return status;
  });
  http.set_max_connections (config.http.max_connections);
  if (config.http.enabled && !http.start (config.http.bind, config.http.port, context, failure)) {
    std::fprintf (stderr, "camrelay: %s\n", failure.c_str ());
    relay.stop ();
    g_main_loop_unref (loop.loop);
    return 1;
  }

  // The signals are ours before the summary below says that camrelay is up:
  // a SIGHUP sent as soon as the summary appears is a reload, never the
  // default action (the end of the process).
  g_unix_signal_add (SIGINT, on_stop_signal, &loop);
  g_unix_signal_add (SIGTERM, on_stop_signal, &loop);
  Reload reload{&relay, &http, path, config.http, context};
  g_unix_signal_add (SIGHUP, on_hangup, &reload);

  const std::string host = config.server.bind == "0.0.0.0" ? "127.0.0.1" : config.server.bind;
  const bool tls = !config.server.tls_cert.empty ();
  std::fprintf (stderr, "camrelay %s: %zu camera(s) on %s %s:%u%s\n", VERSION,
      config.cameras.size (), tls ? "RTSPS" : "RTSP", config.server.bind.c_str (), relay.port (),
      config.http.enabled ? (", HTTP on " + config.http.bind + ":" + std::to_string (http.port ())).c_str () : "");
  for (const CameraConfig &camera : config.cameras)
    if (camera.enabled)
      std::fprintf (stderr, "  %s://%s:%u/%s\n", tls ? "rtsps" : "rtsp", host.c_str (), relay.port (),
          camera.name.c_str ());
  if (config.users.empty () && config.server.bind != "127.0.0.1" && config.server.bind != "::1")
    std::fprintf (stderr, "warning: no [[users]]: anyone who reaches %s:%u can watch every camera\n",
        config.server.bind.c_str (), relay.port ());

  g_main_loop_run (loop.loop);

  std::fprintf (stderr, "camrelay: stopping\n");
  {
    StopWatchdog watchdog;
    http.stop ();
    watchdog.stage = "the RTSP clients and cameras";
    relay.stop ();
  }
  g_main_loop_unref (loop.loop);
  return 0;
}
