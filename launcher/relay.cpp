#include "relay.h"

#include <gst/app/app.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>

#include "auth.h"
#include "common/gstref.h"

namespace camrelay::launcher {

namespace {

using Lock = std::unique_lock<std::mutex>;

// How long a client's DESCRIBE waits for a camera that has not sent video yet.
constexpr auto DESCRIBE_WAIT = std::chrono::seconds (10);
constexpr guint SESSION_CLEANUP_INTERVAL_S = 2;
// Enough RTSP worker threads for hundreds of clients (the server's default is 1).
constexpr gint DEFAULT_RTSP_THREADS = 16;

const char *
payloader_for (const GstCaps *caps)
{
  if (!caps || gst_caps_is_empty (caps))
    return nullptr;
  const char *name = gst_structure_get_name (gst_caps_get_structure (caps, 0));
  if (g_str_equal (name, "video/x-h264"))
    return "rtph264pay";
  if (g_str_equal (name, "video/x-h265"))
    return "rtph265pay";
  if (g_str_equal (name, "image/jpeg"))
    return "rtpjpegpay";
  return nullptr;
}

void
log_line (const char *format, ...) G_GNUC_PRINTF (1, 2);

// One line on stderr: journald adds the time and the unit.
void
log_line (const char *format, ...)
{
  va_list args;
  va_start (args, format);
  std::vfprintf (stderr, format, args);
  va_end (args);
  std::fputc ('\n', stderr);
  std::fflush (stderr);
}

}  // namespace

// A camera: its ingest pipeline, and the appsrc of the RTSP media it feeds.
struct CameraRuntime {
  CameraConfig config;
  ElementPtr pipeline;
  ElementPtr camerasrc;
  ElementPtr queue;
  guint bus_watch = 0;

  mutable std::mutex lock;
  std::condition_variable caps_changed;
  CapsPtr caps;                   // the camera's current video caps
  ElementPtr media_src;           // appsrc of the current shared media
  bool media_needs_caps = true;
  bool media_needs_keyframe = true;  // a new media starts on a keyframe
  uint64_t bytes_out = 0;
  std::string state = "stopped";

  ~CameraRuntime ()
  {
    if (pipeline)
      gst_element_set_state (pipeline.get (), GST_STATE_NULL);
    if (bus_watch)
      g_source_remove (bus_watch);
  }

  // The camera's caps, waiting up to DESCRIBE_WAIT for the first ones.
  CapsPtr wait_caps ()
  {
    Lock l (lock);
    caps_changed.wait_for (l, DESCRIBE_WAIT, [this] { return caps != nullptr; });
    return CapsPtr (caps ? gst_caps_ref (caps.get ()) : nullptr);
  }

  // A frame from the camera (ingest streaming thread): hand it to the media.
  void on_sample (GstSample *sample)
  {
    GstBuffer *buffer = gst_sample_get_buffer (sample);
    GstCaps *sample_caps = gst_sample_get_caps (sample);
    if (!buffer)
      return;
    ElementPtr src;
    CapsPtr new_caps;
    {
      Lock l (lock);
      if (sample_caps && (!caps || !gst_caps_is_equal (caps.get (), sample_caps))) {
        caps.reset (gst_caps_ref (sample_caps));
        media_needs_caps = true;
        caps_changed.notify_all ();
      }
      if (!media_src)
        return;
      if (media_needs_keyframe) {
        if (GST_BUFFER_FLAG_IS_SET (buffer, GST_BUFFER_FLAG_DELTA_UNIT))
          return;
        media_needs_keyframe = false;
      }
      src = camrelay::ref_object (media_src.get ());
      if (media_needs_caps) {
        new_caps.reset (gst_caps_ref (caps.get ()));
        media_needs_caps = false;
      }
      bytes_out += gst_buffer_get_size (buffer);
    }
    // The media runs on the same (system) clock but with its own base time:
    // move the timestamps from the ingest's running time to the media's.
    const GstClockTime ingest_base = gst_element_get_base_time (pipeline.get ());
    const GstClockTime media_base = gst_element_get_base_time (src.get ());
    GstBuffer *out = gst_buffer_copy (buffer);  // metadata only; memory shared
    auto rebase = [&] (GstClockTime ts) -> GstClockTime {
      if (!GST_CLOCK_TIME_IS_VALID (ts))
        return ts;
      const gint64 moved = static_cast<gint64> (ts + ingest_base) - static_cast<gint64> (media_base);
      return moved > 0 ? static_cast<GstClockTime> (moved) : 0;
    };
    GST_BUFFER_PTS (out) = rebase (GST_BUFFER_PTS (buffer));
    GST_BUFFER_DTS (out) = rebase (GST_BUFFER_DTS (buffer));
    if (new_caps) {
      // A new codec needs a new payloader: a new media for the next client.
      g_object_set (src.get (), "caps", new_caps.get (), nullptr);
    }
    gst_app_src_push_buffer (GST_APP_SRC (src.get ()), out);
  }

  void attach_media (GstElement *appsrc)
  {
    Lock l (lock);
    media_src = camrelay::ref_object (appsrc);
    media_needs_caps = false;  // built with the current caps
    media_needs_keyframe = true;
  }

  void detach_media (GstElement *appsrc)
  {
    Lock l (lock);
    if (media_src.get () == appsrc)
      media_src.reset ();
  }
};

}  // namespace camrelay::launcher

// ---- the media factory: one per camera ------------------------------------------

using camrelay::launcher::CameraRuntime;
using camrelay::launcher::log_line;
using camrelay::launcher::payloader_for;

#define CAMRELAY_TYPE_MEDIA_FACTORY (camrelay_media_factory_get_type ())
G_DECLARE_FINAL_TYPE (CamrelayMediaFactory, camrelay_media_factory, CAMRELAY, MEDIA_FACTORY,
    GstRTSPMediaFactory)

struct _CamrelayMediaFactory {
  GstRTSPMediaFactory parent;
  std::shared_ptr<CameraRuntime> *runtime;
};

G_DEFINE_TYPE (CamrelayMediaFactory, camrelay_media_factory, GST_TYPE_RTSP_MEDIA_FACTORY)

// The media's element: appsrc (fed by the camera's ingest) ! payloader (pay0),
// built once the camera's codec is known.
static GstElement *
camrelay_media_factory_create_element (GstRTSPMediaFactory *factory, const GstRTSPUrl *)
{
  CameraRuntime &camera = **CAMRELAY_MEDIA_FACTORY (factory)->runtime;
  camrelay::CapsPtr caps = camera.wait_caps ();
  const char *payloader = payloader_for (caps.get ());
  if (!payloader) {
    log_line ("camera %s: no video from the camera yet, refusing the client",
        camera.config.name.c_str ());
    return nullptr;
  }
  GstElement *bin = gst_bin_new (nullptr);
  GstElement *src = gst_element_factory_make ("appsrc", "src");
  GstElement *pay = gst_element_factory_make (payloader, "pay0");
  if (!src || !pay) {
    log_line ("camera %s: missing GStreamer element %s", camera.config.name.c_str (),
        src ? payloader : "appsrc");
    if (src)
      gst_object_unref (gst_object_ref_sink (src));
    if (pay)
      gst_object_unref (gst_object_ref_sink (pay));
    gst_object_unref (gst_object_ref_sink (bin));
    return nullptr;
  }
  g_object_set (src, "is-live", TRUE, "format", GST_FORMAT_TIME, "do-timestamp", FALSE,
      "caps", caps.get (), "max-bytes", static_cast<guint64> (0), "max-time",
      static_cast<guint64> (2 * GST_SECOND), nullptr);
  gst_util_set_object_arg (G_OBJECT (src), "leaky-type", "downstream");
  g_object_set (pay, "pt", 96, nullptr);
  if (g_object_class_find_property (G_OBJECT_GET_CLASS (pay), "config-interval"))
    g_object_set (pay, "config-interval", -1, nullptr);
  gst_bin_add_many (GST_BIN (bin), src, pay, nullptr);
  gst_element_link (src, pay);
  return bin;
}

static void
on_media_unprepared (GstRTSPMedia *media, gpointer user_data)
{
  auto *runtime = static_cast<std::shared_ptr<CameraRuntime> *> (user_data);
  camrelay::ElementPtr element{gst_rtsp_media_get_element (media)};
  camrelay::ElementPtr src{gst_bin_get_by_name (GST_BIN (element.get ()), "src")};
  if (src)
    (*runtime)->detach_media (src.get ());
}

static void
camrelay_media_factory_configure (GstRTSPMediaFactory *factory, GstRTSPMedia *media)
{
  GST_RTSP_MEDIA_FACTORY_CLASS (camrelay_media_factory_parent_class)->configure (factory, media);
  auto *self = CAMRELAY_MEDIA_FACTORY (factory);
  camrelay::ElementPtr element{gst_rtsp_media_get_element (media)};
  camrelay::ElementPtr src{gst_bin_get_by_name (GST_BIN (element.get ()), "src")};
  if (!src)
    return;
  (*self->runtime)->attach_media (src.get ());
  g_signal_connect_data (media, "unprepared", G_CALLBACK (on_media_unprepared),
      new std::shared_ptr<CameraRuntime> (*self->runtime),
      [] (gpointer data, GClosure *) { delete static_cast<std::shared_ptr<CameraRuntime> *> (data); },
      GConnectFlags (0));
}

static void
camrelay_media_factory_finalize (GObject *object)
{
  delete CAMRELAY_MEDIA_FACTORY (object)->runtime;
  G_OBJECT_CLASS (camrelay_media_factory_parent_class)->finalize (object);
}

static void
camrelay_media_factory_class_init (CamrelayMediaFactoryClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = camrelay_media_factory_finalize;
  GST_RTSP_MEDIA_FACTORY_CLASS (klass)->create_element = camrelay_media_factory_create_element;
  GST_RTSP_MEDIA_FACTORY_CLASS (klass)->configure = camrelay_media_factory_configure;
}

static void
camrelay_media_factory_init (CamrelayMediaFactory *self)
{
  self->runtime = nullptr;
}

namespace camrelay::launcher {

namespace {

GstFlowReturn
on_ingest_sample (GstAppSink *sink, gpointer user_data)
{
  auto *camera = static_cast<CameraRuntime *> (user_data);
  GstSample *sample = gst_app_sink_pull_sample (sink);
  if (sample) {
    camera->on_sample (sample);
    gst_sample_unref (sample);
  }
  return GST_FLOW_OK;
}

// Logs the camera's state changes, with their reason; and errors.
gboolean
on_ingest_message (GstBus *, GstMessage *message, gpointer user_data)
{
  auto *camera = static_cast<CameraRuntime *> (user_data);
  const GstStructure *s = gst_message_get_structure (message);
  if (GST_MESSAGE_TYPE (message) == GST_MESSAGE_ELEMENT && s
      && gst_structure_has_name (s, "camerasrc-state")) {
    GEnumClass *klass = static_cast<GEnumClass *> (
        g_type_class_ref (G_VALUE_TYPE (gst_structure_get_value (s, "state"))));
    gint state = 0, previous = 0;
    gst_structure_get_enum (s, "state", G_VALUE_TYPE (gst_structure_get_value (s, "state")), &state);
    gst_structure_get_enum (s, "previous", G_VALUE_TYPE (gst_structure_get_value (s, "state")),
        &previous);
    const char *now = g_enum_get_value (klass, state)->value_nick;
    const char *before = g_enum_get_value (klass, previous)->value_nick;
    guint64 retry_in = 0;
    gst_structure_get_uint64 (s, "retry-in", &retry_in);
    {
      Lock l (camera->lock);
      camera->state = now;
    }
    if (retry_in)
      log_line ("camera %s: %s -> %s: %s (retry in %.1f s)", camera->config.name.c_str (), before,
          now, gst_structure_get_string (s, "reason"), static_cast<double> (retry_in) / GST_SECOND);
    else
      log_line ("camera %s: %s -> %s: %s", camera->config.name.c_str (), before, now,
          gst_structure_get_string (s, "reason"));
    g_type_class_unref (klass);
  } else if (GST_MESSAGE_TYPE (message) == GST_MESSAGE_ELEMENT && s
      && gst_structure_has_name (s, "resilientqueue-dropped")) {
    guint64 buffers = 0;
    gst_structure_get_uint64 (s, "dropped-buffers", &buffers);
    log_line ("camera %s: dropped %" G_GUINT64_FORMAT " frames (relay falling behind)",
        camera->config.name.c_str (), buffers);
  } else if (GST_MESSAGE_TYPE (message) == GST_MESSAGE_ERROR) {
    GError *error = nullptr;
    gst_message_parse_error (message, &error, nullptr);
    log_line ("camera %s: error: %s", camera->config.name.c_str (),
        error ? error->message : "unknown");
    g_clear_error (&error);
  }
  return G_SOURCE_CONTINUE;
}

}  // namespace

Relay::Relay (std::string version) : version_ (std::move (version)) {}

Relay::~Relay ()
{
  stop ();
}

void
Relay::add_camera (const CameraConfig &config)
{
  auto camera = std::make_shared<CameraRuntime> ();
  camera->config = config;
  camera->pipeline.reset (gst_pipeline_new (config.name.c_str ()));
  camera->camerasrc.reset (gst_element_factory_make ("camerasrc", "cam"));
  camera->queue.reset (gst_element_factory_make ("resilientqueue", "queue"));
  GstElement *sink = gst_element_factory_make ("appsink", "out");
  // Refs for our owners; the pipeline takes the floating ones.
  gst_object_ref_sink (camera->camerasrc.get ());
  gst_object_ref_sink (camera->queue.get ());
  g_object_set (camera->camerasrc.get (), "location", config.location.c_str (), "audio",
      config.audio, nullptr);
  if (!config.username.empty ())
    g_object_set (camera->camerasrc.get (), "user-id", config.username.c_str (), "user-pw",
        config.password.c_str (), nullptr);
  gst_util_set_object_arg (G_OBJECT (camera->camerasrc.get ()), "protocols",
      config.transport.c_str ());
  gst_util_set_object_arg (G_OBJECT (camera->camerasrc.get ()), "fallback",
      config.fallback.c_str ());
  g_object_set (camera->queue.get (), "max-size-time",
      static_cast<guint64> (config.buffer_time_ms) * GST_MSECOND, nullptr);
  g_object_set (sink, "sync", FALSE, "async", FALSE, "emit-signals", FALSE, "max-buffers", 0u,
      nullptr);
  GstAppSinkCallbacks callbacks = {};
  callbacks.new_sample = on_ingest_sample;
  gst_app_sink_set_callbacks (GST_APP_SINK (sink), &callbacks, camera.get (), nullptr);
  gst_bin_add_many (GST_BIN (camera->pipeline.get ()), camera->camerasrc.get (),
      camera->queue.get (), sink, nullptr);
  gst_element_link_many (camera->camerasrc.get (), camera->queue.get (), sink, nullptr);
  // Both the ingest and the medias run on the system clock, so that their
  // running times convert into each other.
  GstClock *clock = gst_system_clock_obtain ();
  gst_pipeline_use_clock (GST_PIPELINE (camera->pipeline.get ()), clock);
  gst_object_unref (clock);

  BusPtr bus{gst_element_get_bus (camera->pipeline.get ())};
  GSource *watch = gst_bus_create_watch (bus.get ());
  g_source_set_callback (watch, G_SOURCE_FUNC (on_ingest_message),
      camera.get (), nullptr);
  camera->bus_watch = g_source_attach (watch, context_);
  g_source_unref (watch);

  auto *factory = CAMRELAY_MEDIA_FACTORY (g_object_new (CAMRELAY_TYPE_MEDIA_FACTORY, nullptr));
  factory->runtime = new std::shared_ptr<CameraRuntime> (camera);
  gst_rtsp_media_factory_set_shared (GST_RTSP_MEDIA_FACTORY (factory), TRUE);
  if (!users_.empty ())
    permit_users (GST_RTSP_MEDIA_FACTORY (factory), config, users_);
  GstRTSPMountPoints *mounts = gst_rtsp_server_get_mount_points (server_);
  gst_rtsp_mount_points_add_factory (mounts, ("/" + config.name).c_str (),
      GST_RTSP_MEDIA_FACTORY (factory));
  g_object_unref (mounts);

  gst_element_set_state (camera->pipeline.get (), GST_STATE_PLAYING);
  cameras_[config.name] = camera;
}

bool
Relay::start (const Config &config, GMainContext *context, std::string &error)
{
  started_us_ = g_get_monotonic_time ();
  context_ = context;
  server_ = gst_rtsp_server_new ();
  gst_rtsp_server_set_address (server_, config.server.bind.c_str ());
  gst_rtsp_server_set_service (server_, std::to_string (config.server.port).c_str ());
  GstRTSPThreadPool *pool = gst_rtsp_server_get_thread_pool (server_);
  gst_rtsp_thread_pool_set_max_threads (pool,
      config.server.threads ? static_cast<gint> (config.server.threads) : DEFAULT_RTSP_THREADS);
  g_object_unref (pool);
  config_ = config;
  users_ = config.users;
  max_clients_ = config.server.max_clients;
  session_timeout_ = config.server.session_timeout;
  guard_.set_timeout (config.server.slow_client_timeout);
  // Settings this version reads but does not act on yet: say so rather than
  // let them pass silently.
  if (!config.server.tls_cert.empty ())
    log_line ("warning: server.tls_cert/tls_key: RTSPS is not supported by this version; serving plain RTSP");
  for (const CameraConfig &camera : config.cameras) {
    if (camera.on_demand)
      log_line ("warning: camera %s: on_demand is not supported by this version; the camera stays connected",
          camera.name.c_str ());
    if (camera.multicast)
      log_line ("warning: camera %s: multicast is not supported by this version; unicast only",
          camera.name.c_str ());
    if (!camera.pipeline.empty ())
      log_line ("warning: camera %s: pipeline is not supported by this version; ignored",
          camera.name.c_str ());
  }
  if (GstRTSPAuth *auth = make_auth (config.users)) {
    gst_rtsp_server_set_auth (server_, auth);
    g_object_unref (auth);
  }
  g_signal_connect (server_, "client-connected", G_CALLBACK (on_client_connected), this);

  GError *gerror = nullptr;
  GSource *source = gst_rtsp_server_create_source (server_, nullptr, &gerror);
  if (!source) {
    error = "RTSP " + config.server.bind + ":" + std::to_string (config.server.port) + ": "
        + (gerror ? gerror->message : "cannot listen");
    g_clear_error (&gerror);
    return false;
  }
  server_source_ = g_source_attach (source, context);
  g_source_unref (source);
  port_ = static_cast<uint16_t> (gst_rtsp_server_get_bound_port (server_));

  // Sessions of clients that vanished without TEARDOWN are only removed when
  // the application asks.
  GSource *cleanup = g_timeout_source_new_seconds (SESSION_CLEANUP_INTERVAL_S);
  g_source_set_callback (cleanup, cleanup_sessions, this, nullptr);
  cleanup_source_ = g_source_attach (cleanup, context);
  g_source_unref (cleanup);

  for (const CameraConfig &camera : config.cameras)
    if (camera.enabled)
      add_camera (camera);
  return true;
}

gboolean
Relay::cleanup_sessions (gpointer data)
{
  auto *self = static_cast<Relay *> (data);
  GstRTSPSessionPool *sessions = gst_rtsp_server_get_session_pool (self->server_);
  gst_rtsp_session_pool_cleanup (sessions);
  g_object_unref (sessions);
  self->guard_.check ();
  return G_SOURCE_CONTINUE;
}

void
Relay::stop ()
{
  if (!server_)
    return;
  auto remove_source = [this] (guint &id) {
    if (id) {
      if (GSource *s = g_main_context_find_source_by_id (context_, id))
        g_source_destroy (s);
      id = 0;
    }
  };
  remove_source (server_source_);
  remove_source (cleanup_source_);
  // Close every client: their medias stop with them.
  gst_rtsp_server_client_filter (server_,
      [] (GstRTSPServer *, GstRTSPClient *, gpointer) { return GST_RTSP_FILTER_REMOVE; }, nullptr);
  for (auto &[name, camera] : cameras_) {
    gst_element_set_state (camera->pipeline.get (), GST_STATE_NULL);
    if (camera->bus_watch) {
      if (GSource *s = g_main_context_find_source_by_id (context_, camera->bus_watch))
        g_source_destroy (s);
      camera->bus_watch = 0;
    }
  }
  GstRTSPMountPoints *mounts = gst_rtsp_server_get_mount_points (server_);
  for (auto &[name, camera] : cameras_)
    gst_rtsp_mount_points_remove_factory (mounts, ("/" + name).c_str ());
  g_object_unref (mounts);
  cameras_.clear ();
  g_object_unref (server_);
  server_ = nullptr;
}

Status
Relay::status () const
{
  Status status;
  status.version = version_;
  status.clients = 0;
  status.uptime_seconds = static_cast<double> (g_get_monotonic_time () - started_us_) / 1e6;

  uint64_t total = 0;
  std::map<std::string, uint64_t> clients = clients_per_camera (total);
  status.clients = total;
  status.clients_cut = guard_.cut_total ();
  for (const auto &[name, camera] : cameras_) {
    CameraStatus c;
    c.name = name;
    c.mount = "/" + name;
    GstStructure *cam_stats = nullptr;
    GstStructure *queue_stats = nullptr;
    g_object_get (camera->camerasrc.get (), "stats", &cam_stats, nullptr);
    g_object_get (camera->queue.get (), "stats", &queue_stats, nullptr);
    c.camerasrc_stats.reset (cam_stats);
    c.resilientqueue_stats.reset (queue_stats);
    if (cam_stats) {
      gst_structure_get_uint64 (cam_stats, "reconnects", &c.reconnects);
      gst_structure_get_uint64 (cam_stats, "bytes", &c.bytes_in);
      gst_structure_get_uint64 (cam_stats, "frames", &c.frames_in);
    }
    if (queue_stats)
      gst_structure_get_uint64 (queue_stats, "dropped-buffers", &c.frames_dropped);
    {
      Lock l (camera->lock);
      c.state = camera->state;
      c.bytes_out = camera->bytes_out;
    }
    c.up = c.state == "streaming";
    c.clients = clients[name];
    status.cameras.push_back (std::move (c));
  }
  return status;
}

namespace {

bool
same_camera (const CameraConfig &a, const CameraConfig &b)
{
  return a.name == b.name && a.location == b.location && a.username == b.username
      && a.password == b.password && a.transport == b.transport && a.audio == b.audio
      && a.buffer_time_ms == b.buffer_time_ms && a.fallback == b.fallback
      && a.on_demand == b.on_demand && a.idle_timeout == b.idle_timeout
      && a.max_clients == b.max_clients && a.users == b.users && a.enabled == b.enabled
      && a.multicast == b.multicast && a.pipeline == b.pipeline;
}

bool
same_users (const std::vector<UserConfig> &a, const std::vector<UserConfig> &b)
{
  if (a.size () != b.size ())
    return false;
  for (size_t i = 0; i < a.size (); i++)
    if (a[i].name != b[i].name || a[i].password != b[i].password
        || a[i].password_hash != b[i].password_hash)
      return false;
  return true;
}

}  // namespace

void
Relay::remove_camera (const std::string &name)
{
  auto it = cameras_.find (name);
  if (it == cameras_.end ())
    return;
  const std::string mount = "/" + name;
  GstRTSPMountPoints *mounts = gst_rtsp_server_get_mount_points (server_);
  gst_rtsp_mount_points_remove_factory (mounts, mount.c_str ());
  g_object_unref (mounts);
  // End the sessions playing it: their clients see the stream end.
  gst_rtsp_server_client_filter (server_,
      [] (GstRTSPServer *, GstRTSPClient *client, gpointer mount) {
        gst_rtsp_client_session_filter (client,
            [] (GstRTSPClient *, GstRTSPSession *session, gpointer mount) {
              gint matched = 0;
              return gst_rtsp_session_get_media (session, static_cast<const gchar *> (mount), &matched)
                  ? GST_RTSP_FILTER_REMOVE
                  : GST_RTSP_FILTER_KEEP;
            },
            mount);
        return GST_RTSP_FILTER_KEEP;
      },
      const_cast<gchar *> (mount.c_str ()));
  CameraRuntime &camera = *it->second;
  gst_element_set_state (camera.pipeline.get (), GST_STATE_NULL);
  if (camera.bus_watch) {
    if (GSource *s = g_main_context_find_source_by_id (context_, camera.bus_watch))
      g_source_destroy (s);
    camera.bus_watch = 0;
  }
  cameras_.erase (it);
}

void
Relay::reload (const Config &config)
{
  if (config.server.bind != config_.server.bind || config.server.port != config_.server.port
      || config.http.enabled != config_.http.enabled || config.http.bind != config_.http.bind
      || config.http.port != config_.http.port || config.server.tls_cert != config_.server.tls_cert
      || config.server.tls_key != config_.server.tls_key || config.server.threads != config_.server.threads)
    log_line ("reload: [server] and [http] addresses, threads and TLS apply at the next restart");
  if (!same_users (config.users, config_.users))
    log_line ("reload: [[users]] changes apply at the next restart");
  max_clients_ = config.server.max_clients;
  session_timeout_ = config.server.session_timeout;
  guard_.set_timeout (config.server.slow_client_timeout);

  auto find = [] (const std::vector<CameraConfig> &cameras, const std::string &name)
      -> const CameraConfig * {
    for (const CameraConfig &c : cameras)
      if (c.name == name)
        return &c;
    return nullptr;
  };
  unsigned added = 0, removed = 0, changed = 0, kept = 0;
  for (const CameraConfig &old : config_.cameras) {
    const CameraConfig *now = find (config.cameras, old.name);
    if (!now || !now->enabled || !same_camera (old, *now)) {
      if (cameras_.count (old.name)) {
        remove_camera (old.name);
        if (now && now->enabled)
          changed++;
        else
          removed++;
        log_line ("camera %s: %s", old.name.c_str (),
            now && now->enabled ? "changed: restarting it" : "removed");
      }
    } else if (cameras_.count (old.name)) {
      kept++;
    }
  }
  for (const CameraConfig &camera : config.cameras) {
    if (!camera.enabled || cameras_.count (camera.name))
      continue;
    if (!find (config_.cameras, camera.name)) {
      added++;
      log_line ("camera %s: added", camera.name.c_str ());
    }
    add_camera (camera);
  }
  Config next = config;
  next.server = config_.server;  // what actually runs
  next.http = config_.http;
  next.users = config_.users;
  next.server.max_clients = config.server.max_clients;
  next.server.session_timeout = config.server.session_timeout;
  next.server.slow_client_timeout = config.server.slow_client_timeout;
  config_ = next;
  log_line ("reload: %u camera(s) added, %u removed, %u changed, %u untouched", added, removed,
      changed, kept);
}

std::map<std::string, uint64_t>
Relay::clients_per_camera (uint64_t &total) const
{
  std::map<std::string, uint64_t> clients;
  total = 0;
  if (!server_)
    return clients;
  GstRTSPSessionPool *pool = gst_rtsp_server_get_session_pool (server_);
  GList *all = gst_rtsp_session_pool_filter (pool, nullptr, nullptr);
  for (GList *l = all; l; l = l->next) {
    GList *medias = gst_rtsp_session_filter (GST_RTSP_SESSION (l->data), nullptr, nullptr);
    for (GList *m = medias; m; m = m->next) {
      for (const auto &[name, camera] : cameras_) {
        gint matched = 0;
        if (gst_rtsp_session_media_matches (GST_RTSP_SESSION_MEDIA (m->data),
                ("/" + name).c_str (), &matched)) {
          clients[name]++;
          total++;
        }
      }
    }
    g_list_free_full (medias, g_object_unref);
  }
  g_list_free_full (all, g_object_unref);
  g_object_unref (pool);
  return clients;
}

namespace {

std::string
client_ip (GstRTSPClient *client)
{
  GstRTSPConnection *connection = gst_rtsp_client_get_connection (client);
  const gchar *ip = connection ? gst_rtsp_connection_get_ip (connection) : nullptr;
  return ip ? ip : "?";
}

// "user NAME " when the request carries a known user, else "".
std::string
client_user (GstRTSPContext *ctx)
{
  const gchar *user = ctx && ctx->token
      ? gst_rtsp_token_get_string (ctx->token, GST_RTSP_TOKEN_MEDIA_FACTORY_ROLE)
      : nullptr;
  return user ? std::string ("user ") + user + " " : "";
}

}  // namespace

void
Relay::on_client_connected (GstRTSPServer *, GstRTSPClient *client, gpointer data)
{
  const std::string ip = client_ip (client);
  log_line ("client %s: connected", ip.c_str ());
  static_cast<Relay *> (data)->guard_.watch (client);
  g_signal_connect_data (client, "closed",
      G_CALLBACK (+[] (GstRTSPClient *, gpointer ip) {
        log_line ("client %s: disconnected", static_cast<gchar *> (ip));
      }),
      g_strdup (ip.c_str ()), [] (gpointer ip, GClosure *) { g_free (ip); }, GConnectFlags (0));
  g_signal_connect (client, "pre-setup-request", G_CALLBACK (on_pre_setup), data);
  g_signal_connect (client, "pre-describe-request", G_CALLBACK (on_pre_describe), data);
  // A client that vanishes without TEARDOWN is dropped after session_timeout
  // (by the periodic session-pool cleanup).
  g_signal_connect (client, "new-session",
      G_CALLBACK (+[] (GstRTSPClient *, GstRTSPSession *session, gpointer data) {
        gst_rtsp_session_set_timeout (session,
            static_cast<guint> (static_cast<Relay *> (data)->session_timeout_));
      }),
      data);
  g_signal_connect (client, "play-request",
      G_CALLBACK (+[] (GstRTSPClient *client, GstRTSPContext *ctx, gpointer data) {
        log_line ("client %s: %splays %s", client_ip (client).c_str (), client_user (ctx).c_str (),
            ctx->uri ? ctx->uri->abspath : "?");
        static_cast<Relay *> (data)->guard_.playing (client, client_user (ctx),
            ctx->uri ? ctx->uri->abspath : "?");
      }),
      data);
}

// A client that arrives before the camera's first video waits a bounded
// time for it, then gets a clean 503 Service Unavailable.
GstRTSPStatusCode
Relay::on_pre_describe (GstRTSPClient *client, GstRTSPContext *ctx, gpointer data)
{
  auto *self = static_cast<Relay *> (data);
  const std::string path = ctx->uri && ctx->uri->abspath ? ctx->uri->abspath : "";
  for (const auto &[name, camera] : self->cameras_) {
    if (path != "/" + name)
      continue;
    if (!camera->wait_caps ()) {
      log_line ("client %s: refused %s: no video from camera %s yet", client_ip (client).c_str (),
          path.c_str (), name.c_str ());
      return GST_RTSP_STS_SERVICE_UNAVAILABLE;
    }
  }
  return GST_RTSP_STS_OK;
}

// Client limits, answered before a new session is set up: 453 Not Enough
// Bandwidth when the camera has its maximum of clients, 503 Service
// Unavailable when the relay as a whole has.
GstRTSPStatusCode
Relay::on_pre_setup (GstRTSPClient *client, GstRTSPContext *ctx, gpointer data)
{
  auto *self = static_cast<Relay *> (data);
  if (ctx->session)
    return GST_RTSP_STS_OK;  // another stream of a session already counted
  const std::string path = ctx->uri && ctx->uri->abspath ? ctx->uri->abspath : "";
  uint64_t total = 0;
  std::map<std::string, uint64_t> clients = self->clients_per_camera (total);
  if (self->max_clients_ && total >= self->max_clients_) {
    log_line ("client %s: refused %s: %u clients already (server.max_clients)",
        client_ip (client).c_str (), path.c_str (), self->max_clients_);
    return GST_RTSP_STS_SERVICE_UNAVAILABLE;
  }
  for (const auto &[name, camera] : self->cameras_) {
    const std::string mount = "/" + name;
    const bool this_camera = path == mount || path.rfind (mount + "/", 0) == 0;
    if (this_camera && camera->config.max_clients && clients[name] >= camera->config.max_clients) {
      log_line ("client %s: refused %s: %u clients already (max_clients of camera %s)",
          client_ip (client).c_str (), path.c_str (), camera->config.max_clients, name.c_str ());
      return GST_RTSP_STS_NOT_ENOUGH_BANDWIDTH;
    }
  }
  return GST_RTSP_STS_OK;
}

}  // namespace camrelay::launcher
