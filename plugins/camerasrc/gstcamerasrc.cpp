/**
 * SECTION:element-camerasrc
 * @title: camerasrc
 *
 * A source bin that connects to an IP camera and delivers its encoded
 * stream, and whose output never ends or errors because of the camera.
 *
 * Inside, a chain for the camera's URI (`rtspsrc ! depay ! parse`,
 * `souphttpsrc ! multipartdemux ! jpegparse`, `filesrc ! parsebin`, or the
 * synthetic `testcamerasrc`) ends in an internal appsink; it is torn down and
 * rebuilt as the camera comes and goes.  Outside, an appsrc per stream sends
 * one continuous live stream: one segment, one stream-start per codec (a
 * camera that comes back with another codec starts a new stream, which
 * decodebin3 follows), new caps only when the camera's parameters change,
 * timestamps in running time that strictly increase across reconnects, and a
 * keyframe flagged DISCONT first after every gap.  Frames are parsed and
 * access-unit aligned, keyframes carry their parameter sets; nothing is
 * re-encoded.
 *
 * Every camera fault (refused, unresolved, timed out, 4xx/5xx, reset, stalled,
 * garbage) is retried with exponential backoff and ±20% jitter, forever by
 * default.  A camera that could not be reached and accepts connections again
 * ends the backoff step (or replaces an attempt still waiting for its
 * connection) at once: meanwhile the element tries the camera's port a few
 * times a second (a TCP connect, nothing sent).  While
 * the camera is away, #GstCameraSrc:fallback keeps a picture
 * going (by default the last keyframe, once per #GstCameraSrc:fallback-interval,
 * from #GstCameraSrc:fallback-after past the last frame, before the stall
 * timeout) so that players and recorders do not time out.
 *
 * A manager thread of the element's own (joined when it stops) owns the state
 * machine: it builds each session's source and tears the inner chain down.
 * The elements for a stream the camera announces (depayloader, parser,
 * appsink) are added, linked and started from the streaming thread that
 * announced its pad, as decodebin does (the stream's data must find them
 * ready), and stopped there again if the manager tore the session down
 * meanwhile.
 *
 * Element message `camerasrc-state` on every transition, with fields `state`
 * and `previous` (#GstCameraSrcState), `reason` (string), `attempt` (guint),
 * `retry-in` (guint64 ns) and `location` (string, credentials removed).
 *
 * ## Example launch lines
 * |[
 * gst-launch-1.0 camerasrc location=rtsp://user:pass@192.0.2.10/stream1 ! decodebin ! autovideosink
 * gst-launch-1.0 -e camerasrc location="test://cam?width=640&height=360" ! h264parse ! mp4mux ! filesink location=cam.mp4
 * ]|
 */

#include "camerasrc/gstcamerasrc.h"

#include <gst/app/app.h>

#include "camerasrc/camerauri.h"
#include "camerasrc/gstcamerasrc-private.h"
#include "common/enums.h"
#include "common/uri_schemes.h"

GST_DEBUG_CATEGORY (camera_src_debug);

using namespace camrelay::camerasrc;
using camrelay::ElementPtr;
using camrelay::ref_object;
namespace names = camrelay::camerasrc_names;

namespace {

enum {
  PROP_0,
  PROP_LOCATION,
  PROP_USER_ID,
  PROP_USER_PW,
  PROP_PROTOCOLS,
  PROP_LATENCY,
  PROP_AUDIO,
  PROP_RETRY_DELAY,
  PROP_RETRY_DELAY_MAX,
  PROP_RETRY_RESET_TIME,
  PROP_MAX_RETRIES,
  PROP_TIMEOUT,
  PROP_CONNECT_TIMEOUT,
  PROP_FALLBACK,
  PROP_FALLBACK_INTERVAL,
  PROP_FALLBACK_AFTER,
  PROP_STATE,
  PROP_STATS,
};

}  // namespace

static void gst_camera_src_uri_handler_init (gpointer g_iface, gpointer iface_data);
static void gst_camera_src_preset_init (gpointer g_iface, gpointer iface_data);

#define gst_camera_src_parent_class parent_class
G_DEFINE_TYPE_WITH_CODE (GstCameraSrc, gst_camera_src, GST_TYPE_BIN,
    G_IMPLEMENT_INTERFACE (GST_TYPE_URI_HANDLER, gst_camera_src_uri_handler_init);
    G_IMPLEMENT_INTERFACE (GST_TYPE_PRESET, gst_camera_src_preset_init);
    GST_DEBUG_CATEGORY_INIT (camera_src_debug, "camerasrc", 0,
        "camerasrc: resilient camera source"));

GST_ELEMENT_REGISTER_DEFINE (camerasrc, "camerasrc", GST_RANK_NONE, GST_TYPE_CAMERA_SRC);

CAMRELAY_DEFINE_ENUM_TYPE (gst_camera_src_state_get_type, "GstCameraSrcState",
    {GST_CAMERA_SRC_STATE_STOPPED, "Not running", names::STATE_STOPPED},
    {GST_CAMERA_SRC_STATE_CONNECTING, "Connecting to the camera", names::STATE_CONNECTING},
    {GST_CAMERA_SRC_STATE_STREAMING, "Receiving video from the camera", names::STATE_STREAMING},
    {GST_CAMERA_SRC_STATE_RECONNECTING, "Waiting to reconnect after a fault",
        names::STATE_RECONNECTING},
    {GST_CAMERA_SRC_STATE_FAILED, "Gave up after max-retries", names::STATE_FAILED})

CAMRELAY_DEFINE_ENUM_TYPE (gst_camera_src_protocols_get_type, "GstCameraSrcProtocols",
    {GST_CAMERA_SRC_PROTOCOLS_TCP, "RTP interleaved in the RTSP TCP connection", names::PROTOCOLS_TCP},
    {GST_CAMERA_SRC_PROTOCOLS_UDP, "RTP over UDP", names::PROTOCOLS_UDP},
    {GST_CAMERA_SRC_PROTOCOLS_AUTO, "UDP, falling back to TCP", names::PROTOCOLS_AUTO})

CAMRELAY_DEFINE_ENUM_TYPE (gst_camera_src_fallback_get_type, "GstCameraSrcFallback",
    {GST_CAMERA_SRC_FALLBACK_NONE, "Send nothing while the camera is away", names::FALLBACK_NONE},
    {GST_CAMERA_SRC_FALLBACK_FREEZE, "Repeat the last keyframe", names::FALLBACK_FREEZE},
    {GST_CAMERA_SRC_FALLBACK_SLATE, "Send an encoded 'camera offline' picture", names::FALLBACK_SLATE})

// ---- GstBin / GstElement ---------------------------------------------------------

// The element of `elements` that is `src` or holds it, or nullptr.
static GstElement *
find_holder (GstObject *src, const std::vector<ElementPtr> &elements)
{
  for (const ElementPtr &e : elements)
    if (src == GST_OBJECT (e.get ()) || gst_object_has_as_ancestor (src, GST_OBJECT (e.get ())))
      return e.get ();
  return nullptr;
}

// The inner chain's errors, warnings and EOS are the camera's faults: they
// are handled here and never reach the pipeline.  The output appsrcs' are
// not: an error there says that downstream refused what we send (most often
// not-negotiated: it cannot take the camera's codec, or a codec change),
// which no reconnect can cure and which the application must see, so it goes
// on to the pipeline as it is.  Only an audio pad nobody linked is no error.
static void
gst_camera_src_handle_message (GstBin *bin, GstMessage *message)
{
  GstCameraSrc *self = GST_CAMERA_SRC (bin);
  GstCameraSrcPrivate &p = *self->priv;
  const GstMessageType type = GST_MESSAGE_TYPE (message);
  GstObject *src = GST_MESSAGE_SRC (message);

  // rtspsrc says which command completed (handshake.h).
  if (type == GST_MESSAGE_PROGRESS) {
    GstProgressType progress_type;
    gchar *code = nullptr, *text = nullptr;
    gst_message_parse_progress (message, &progress_type, &code, &text);
    p.handshake.progress (progress_type, code ? code : "", text ? text : "");
    g_free (code);
    g_free (text);
  }

  // Nobody linked the audio pad: its appsrc stops with not-linked, which is
  // no reason to fail the pipeline.
  if (type == GST_MESSAGE_ERROR) {
    GstPad *audio_pad;
    bool from_audio;
    {
      Lock lock (p.lock);
      audio_pad = self->audio_pad;
      from_audio = p.audio.appsrc && src == GST_OBJECT (p.audio.appsrc.get ());
    }
    if (from_audio && audio_pad && !gst_pad_is_linked (audio_pad)) {
      GST_INFO_OBJECT (self, "the audio pad is not linked: audio is not delivered");
      gst_message_unref (message);
      return;
    }
  }

  if ((type == GST_MESSAGE_ERROR || type == GST_MESSAGE_WARNING || type == GST_MESSAGE_EOS)
      && src != GST_OBJECT (self)) {
    // Copied under the lock, looked through without it: the ancestry walk
    // takes the object locks of the message's source and its parents.
    std::vector<ElementPtr> outputs;
    std::vector<ElementPtr> session;
    guint64 current;
    {
      Lock lock (p.lock);
      for (const ElementPtr *appsrc : {&p.video.appsrc, &p.audio.appsrc})
        if (*appsrc)
          outputs.push_back (ref_object (appsrc->get ()));
      for (const ElementPtr &e : p.session_elements)
        session.push_back (ref_object (e.get ()));
      current = p.generation;
    }
    std::optional<guint64> generation;
    FaultOrigin origin;
    if (!find_holder (src, outputs)) {
      // An old session's element unless it is one of the current session,
      // whose first element is its source.
      GstElement *holder = find_holder (src, session);
      generation = holder ? current : G_MAXUINT64;
      origin.element = holder;
      origin.from_source = holder && holder == session.front ().get ();
    }
    if (generation) {
      if (type == GST_MESSAGE_ERROR || type == GST_MESSAGE_WARNING) {
        GError *error = nullptr;
        gchar *debug = nullptr;
        if (type == GST_MESSAGE_ERROR)
          gst_message_parse_error (message, &error, &debug);
        else
          gst_message_parse_warning (message, &error, &debug);
        std::string reason = error_reason (error, debug);
        origin.generic = is_generic_error (error);
        g_clear_error (&error);
        g_free (debug);
        {
          // Credentials out before anything (our log included) sees it.
          Lock lock (p.lock);
          reason = redact_text (std::move (reason), p.settings.location, p.settings.user_id,
              p.settings.user_pw);
          if (type == GST_MESSAGE_WARNING && *generation == p.generation)
            p.session_warning = reason;
        }
        GST_DEBUG_OBJECT (self, "%s from %s: %s", type == GST_MESSAGE_ERROR ? "error" : "warning",
            GST_OBJECT_NAME (src), reason.c_str ());
        if (type == GST_MESSAGE_ERROR)
          report_fault (self, *generation, reason, origin);
      }
      gst_message_unref (message);
      return;
    }
  }
  GST_BIN_CLASS (parent_class)->handle_message (bin, message);
}

// The manager's time follows the pipeline's clock (see GstCameraSrcPrivate).
static gboolean
gst_camera_src_set_clock (GstElement *element, GstClock *clock)
{
  use_clock (GST_CAMERA_SRC (element), clock);
  return GST_ELEMENT_CLASS (parent_class)->set_clock (element, clock);
}

static GstStateChangeReturn
gst_camera_src_change_state (GstElement *element, GstStateChange transition)
{
  GstCameraSrc *self = GST_CAMERA_SRC (element);
  if (transition == GST_STATE_CHANGE_NULL_TO_READY) {
    bool has_location;
    {
      Lock lock (self->priv->lock);
      has_location = !self->priv->settings.location.empty ();
    }
    // A configuration error, not a camera fault: say so and do not start.
    if (!has_location) {
      GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND, ("No camera location set"),
          ("set the location property to a URI with the scheme %s",
              camrelay::camera_uri_scheme_list ().c_str ()));
      return GST_STATE_CHANGE_FAILURE;
    }
  }
  if (transition == GST_STATE_CHANGE_PAUSED_TO_READY)
    stop_manager (self);

  GstStateChangeReturn ret = GST_ELEMENT_CLASS (parent_class)->change_state (element, transition);
  if (ret == GST_STATE_CHANGE_FAILURE)
    return ret;

  switch (transition) {
    case GST_STATE_CHANGE_READY_TO_PAUSED: {
      Lock lock (self->priv->lock);
      self->priv->no_more_pads_sent = false;
      for (Output *out : {&self->priv->video, &self->priv->audio}) {
        out->caps.reset ();
        out->last_ts = GST_CLOCK_TIME_NONE;
      }
      ret = GST_STATE_CHANGE_NO_PREROLL;
      break;
    }
    case GST_STATE_CHANGE_PAUSED_TO_PLAYING:
      start_manager (self);
      break;
    case GST_STATE_CHANGE_PLAYING_TO_PAUSED:
      ret = GST_STATE_CHANGE_NO_PREROLL;
      break;
    default:
      break;
  }
  return ret;
}

// ---- properties ---------------------------------------------------------------

static gboolean
set_location (GstCameraSrc *self, const gchar *uri, GError **error)
{
  if (uri) {
    if (!has_supported_scheme (uri)) {
      g_set_error (error, GST_URI_ERROR, GST_URI_ERROR_UNSUPPORTED_PROTOCOL,
          "camerasrc: unsupported URI '%s' (expected %s)", redact_uri (uri).c_str (),
          camrelay::camera_uri_scheme_list ().c_str ());
      return FALSE;
    }
  }
  GstCameraSrcPrivate &p = *self->priv;
  {
    Lock lock (p.lock);
    p.settings.location = uri ? uri : "";
    if (!p.running)
      return TRUE;
    p.location_changed = true;
    p.wake.notify_all ();
  }
  // The old camera's diagnosis is no longer of interest.
  cancel_diagnosis (p);
  return TRUE;
}

static void
gst_camera_src_set_property (GObject *object, guint prop_id, const GValue *value,
    GParamSpec *pspec)
{
  GstCameraSrc *self = GST_CAMERA_SRC (object);
  GstCameraSrcPrivate &p = *self->priv;

  if (prop_id == PROP_LOCATION) {
    GError *error = nullptr;
    if (!set_location (self, g_value_get_string (value), &error)) {
      GST_WARNING_OBJECT (self, "%s", error->message);
      g_clear_error (&error);
    }
    return;
  }

  // The output appsrcs to pass the latency on to, once unlocked: setting
  // their property notifies, and deep-notify handlers may read ours.
  std::vector<ElementPtr> latency_targets;
  gint64 latency = 0;
  Lock lock (p.lock);
  Settings &s = p.settings;
  switch (prop_id) {
    case PROP_USER_ID:
      s.user_id = g_value_get_string (value) ? g_value_get_string (value) : "";
      break;
    case PROP_USER_PW:
      s.user_pw = g_value_get_string (value) ? g_value_get_string (value) : "";
      break;
    case PROP_PROTOCOLS:
      s.protocols = static_cast<GstCameraSrcProtocols> (g_value_get_enum (value));
      break;
    case PROP_LATENCY:
      s.latency_ms = g_value_get_uint (value);
      latency = static_cast<gint64> (s.latency_ms) * GST_MSECOND;
      for (const ElementPtr *appsrc : {&p.video.appsrc, &p.audio.appsrc})
        if (*appsrc)
          latency_targets.push_back (ref_object (appsrc->get ()));
      break;
    case PROP_AUDIO:
      s.audio = g_value_get_boolean (value);
      break;
    case PROP_RETRY_DELAY:
      s.retry_delay = g_value_get_uint64 (value);
      break;
    case PROP_RETRY_DELAY_MAX:
      s.retry_delay_max = g_value_get_uint64 (value);
      break;
    case PROP_RETRY_RESET_TIME:
      s.retry_reset_time = g_value_get_uint64 (value);
      break;
    case PROP_MAX_RETRIES:
      s.max_retries = g_value_get_int (value);
      break;
    case PROP_TIMEOUT:
      s.timeout = g_value_get_uint64 (value);
      p.reconsider = true;  // another stall deadline
      p.wake.notify_all ();
      break;
    case PROP_CONNECT_TIMEOUT:
      s.connect_timeout = g_value_get_uint64 (value);
      break;
    case PROP_FALLBACK:
      s.fallback = static_cast<GstCameraSrcFallback> (g_value_get_enum (value));
      p.reconsider = true;  // fallback pictures start or stop
      p.wake.notify_all ();
      break;
    case PROP_FALLBACK_AFTER:
      s.fallback_after = g_value_get_uint64 (value);
      p.reconsider = true;  // the early fallback's deadline moves
      break;
    case PROP_FALLBACK_INTERVAL:
      s.fallback_interval = g_value_get_uint64 (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  lock.unlock ();
  for (const ElementPtr &appsrc : latency_targets)
    g_object_set (appsrc.get (), "min-latency", latency, nullptr);
}

static GstStructure *
build_stats (GstCameraSrcPrivate &p)
{
  Lock lock (p.lock);
  const Stats &s = p.stats;
  const auto now = now_locked (p);
  const auto streaming = p.times.streaming (p.state, now);
  const auto down = p.times.down (now);
  guint64 age = G_MAXUINT64;
  if (s.last_frame)
    age = static_cast<guint64> (
        std::chrono::duration_cast<std::chrono::nanoseconds> (now - *s.last_frame).count ());
  guint64 window_bytes = 0;
  for (const auto &[when, bytes] : s.bitrate_window)
    window_bytes += bytes;
  guint64 bitrate = 0;
  if (s.bitrate_window.size () > 1) {
    const double span = std::chrono::duration<double> (
        s.bitrate_window.back ().first - s.bitrate_window.front ().first).count ();
    if (span > 0)
      bitrate = static_cast<guint64> (
          (window_bytes - s.bitrate_window.back ().second) * 8 / span);
  }
  return gst_structure_new (names::STATS,
      names::STAT_CONNECTS, G_TYPE_UINT64, s.connects,
      names::STAT_RECONNECTS, G_TYPE_UINT64, s.reconnects,
      names::STAT_ATTEMPT, G_TYPE_UINT, p.attempt,
      names::STAT_BYTES, G_TYPE_UINT64, s.bytes,
      names::STAT_FRAMES, G_TYPE_UINT64, s.frames,
      names::STAT_KEYFRAMES, G_TYPE_UINT64, s.keyframes,
      names::STAT_FALLBACK_FRAMES, G_TYPE_UINT64, s.fallback_frames,
      names::STAT_LAST_ERROR, G_TYPE_STRING, s.last_error.c_str (),
      names::STAT_STREAMING_TIME, G_TYPE_UINT64, static_cast<guint64> (streaming.count ()),
      names::STAT_DOWN_TIME, G_TYPE_UINT64, static_cast<guint64> (down.count ()),
      names::STAT_LAST_FRAME_AGE, G_TYPE_UINT64, age,
      names::STAT_WIDTH, G_TYPE_INT, s.width,
      names::STAT_HEIGHT, G_TYPE_INT, s.height,
      names::STAT_FRAMERATE, GST_TYPE_FRACTION, s.fps_n, s.fps_d,
      names::STAT_BITRATE, G_TYPE_UINT64, bitrate,
      names::STAT_CODEC, G_TYPE_STRING, s.codec.c_str (), nullptr);
}

static void
gst_camera_src_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  GstCameraSrc *self = GST_CAMERA_SRC (object);
  GstCameraSrcPrivate &p = *self->priv;
  if (prop_id == PROP_STATS) {
    g_value_take_boxed (value, build_stats (p));
    return;
  }
  Lock lock (p.lock);
  const Settings &s = p.settings;
  switch (prop_id) {
    case PROP_LOCATION:
      g_value_set_string (value, s.location.empty () ? nullptr : s.location.c_str ());
      break;
    case PROP_USER_ID:
      g_value_set_string (value, s.user_id.empty () ? nullptr : s.user_id.c_str ());
      break;
    case PROP_USER_PW:
      g_value_set_string (value, s.user_pw.empty () ? nullptr : s.user_pw.c_str ());
      break;
    case PROP_PROTOCOLS:
      g_value_set_enum (value, s.protocols);
      break;
    case PROP_LATENCY:
      g_value_set_uint (value, s.latency_ms);
      break;
    case PROP_AUDIO:
      g_value_set_boolean (value, s.audio);
      break;
    case PROP_RETRY_DELAY:
      g_value_set_uint64 (value, s.retry_delay);
      break;
    case PROP_RETRY_DELAY_MAX:
      g_value_set_uint64 (value, s.retry_delay_max);
      break;
    case PROP_RETRY_RESET_TIME:
      g_value_set_uint64 (value, s.retry_reset_time);
      break;
    case PROP_MAX_RETRIES:
      g_value_set_int (value, s.max_retries);
      break;
    case PROP_TIMEOUT:
      g_value_set_uint64 (value, s.timeout);
      break;
    case PROP_CONNECT_TIMEOUT:
      g_value_set_uint64 (value, s.connect_timeout);
      break;
    case PROP_FALLBACK:
      g_value_set_enum (value, s.fallback);
      break;
    case PROP_FALLBACK_AFTER:
      g_value_set_uint64 (value, s.fallback_after);
      break;
    case PROP_FALLBACK_INTERVAL:
      g_value_set_uint64 (value, s.fallback_interval);
      break;
    case PROP_STATE:
      g_value_set_enum (value, p.state);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
}

// ---- GstURIHandler ------------------------------------------------------------

static GstURIType
gst_camera_src_uri_get_type (GType)
{
  return GST_URI_SRC;
}

static const gchar *const *
gst_camera_src_uri_get_protocols (GType)
{
  return camrelay::camera_uri_protocols ();
}

static gchar *
gst_camera_src_uri_get_uri (GstURIHandler *handler)
{
  GstCameraSrc *self = GST_CAMERA_SRC (handler);
  Lock lock (self->priv->lock);
  const std::string &location = self->priv->settings.location;
  return location.empty () ? nullptr : g_strdup (location.c_str ());
}

static gboolean
gst_camera_src_uri_set_uri (GstURIHandler *handler, const gchar *uri, GError **error)
{
  GstCameraSrc *self = GST_CAMERA_SRC (handler);
  if (!set_location (self, uri, error))
    return FALSE;
  g_object_notify (G_OBJECT (self), "location");
  return TRUE;
}

static void
gst_camera_src_uri_handler_init (gpointer g_iface, gpointer)
{
  auto *iface = static_cast<GstURIHandlerInterface *> (g_iface);
  iface->get_type = gst_camera_src_uri_get_type;
  iface->get_protocols = gst_camera_src_uri_get_protocols;
  iface->get_uri = gst_camera_src_uri_get_uri;
  iface->set_uri = gst_camera_src_uri_set_uri;
}

// ---- GstPreset ------------------------------------------------------------------

// Presets hold tuning only: never the camera's address or its credentials.
static gchar **
gst_camera_src_preset_get_property_names (GstPreset *)
{
  static const char *names[] = {"protocols", "latency", "audio", "retry-delay",
      "retry-delay-max", "retry-reset-time", "max-retries", "timeout", "connect-timeout",
      "fallback", "fallback-interval", "fallback-after", nullptr};
  return g_strdupv (const_cast<gchar **> (names));
}

static void
gst_camera_src_preset_init (gpointer g_iface, gpointer)
{
  auto *iface = static_cast<GstPresetInterface *> (g_iface);
  iface->get_property_names = gst_camera_src_preset_get_property_names;
}

// ---- GObject --------------------------------------------------------------------

// An application that drops its last reference without going to NULL (a
// bug GStreamer reports with a CRITICAL) must not leave the manager thread
// running on a freed element, nor destroy it joinable: it is stopped here,
// while the element is whole, and the outputs go to NULL before GstBin
// removes them.  Nothing to do after a normal stop.
static void
gst_camera_src_dispose (GObject *object)
{
  GstCameraSrc *self = GST_CAMERA_SRC (object);
  GstCameraSrcPrivate &p = *self->priv;
  stop_manager (self);
  std::vector<ElementPtr> outputs;
  {
    Lock lock (p.lock);
    for (const ElementPtr *appsrc : {&p.video.appsrc, &p.audio.appsrc})
      if (*appsrc)
        outputs.push_back (ref_object (appsrc->get ()));
  }
  for (const ElementPtr &appsrc : outputs)
    gst_element_set_state (appsrc.get (), GST_STATE_NULL);
  G_OBJECT_CLASS (parent_class)->dispose (object);
}

static void
gst_camera_src_finalize (GObject *object)
{
  GstCameraSrc *self = GST_CAMERA_SRC (object);
  // The private struct's owners release what it holds.
  delete self->priv;
  self->priv = nullptr;
  G_OBJECT_CLASS (parent_class)->finalize (object);
}

static void
gst_camera_src_class_init (GstCameraSrcClass *klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstBinClass *bin_class = GST_BIN_CLASS (klass);

  gobject_class->set_property = gst_camera_src_set_property;
  gobject_class->get_property = gst_camera_src_get_property;
  gobject_class->dispose = gst_camera_src_dispose;
  gobject_class->finalize = gst_camera_src_finalize;

  constexpr auto rw = static_cast<GParamFlags> (
      G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING);
  constexpr auto ro = static_cast<GParamFlags> (G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  g_object_class_install_property (gobject_class, PROP_LOCATION,
      g_param_spec_string ("location", "Location",
          "Camera URI: rtsp://, rtsps://, http(s):// (MJPEG), file:// (replayed live, looped) "
          "or test:// (synthetic camera); changing it in PLAYING switches camera",
          nullptr, rw));
  g_object_class_install_property (gobject_class, PROP_USER_ID,
      g_param_spec_string ("user-id", "User ID",
          "User name for the camera (overrides the one in the URI)", nullptr, rw));
  g_object_class_install_property (gobject_class, PROP_USER_PW,
      g_param_spec_string ("user-pw", "User password",
          "Password for the camera (overrides the one in the URI); never logged", nullptr, rw));
  g_object_class_install_property (gobject_class, PROP_PROTOCOLS,
      g_param_spec_enum ("protocols", "Protocols", "RTSP lower transport",
          GST_TYPE_CAMERA_SRC_PROTOCOLS, DEFAULT_PROTOCOLS, rw));
  g_object_class_install_property (gobject_class, PROP_LATENCY,
      g_param_spec_uint ("latency", "Latency (ms)",
          "RTSP jitter buffer latency (over UDP; none over TCP), and the latency camerasrc "
          "reports, in milliseconds",
          0, 60000, DEFAULT_LATENCY_MS, rw));
  g_object_class_install_property (gobject_class, PROP_AUDIO,
      g_param_spec_boolean ("audio", "Audio",
          "Expose the camera's audio on the audio pad", TRUE, rw));
  g_object_class_install_property (gobject_class, PROP_RETRY_DELAY,
      g_param_spec_uint64 ("retry-delay", "Retry delay (ns)",
          "Delay before the first reconnect attempt after a fault, in nanoseconds; doubles "
          "per failed attempt (±20% jitter)",
          GST_MSECOND, 3600 * GST_SECOND, DEFAULT_RETRY_DELAY, rw));
  g_object_class_install_property (gobject_class, PROP_RETRY_DELAY_MAX,
      g_param_spec_uint64 ("retry-delay-max", "Max. retry delay (ns)",
          "Longest delay between reconnect attempts, in nanoseconds",
          GST_MSECOND, 3600 * GST_SECOND, DEFAULT_RETRY_DELAY_MAX, rw));
  g_object_class_install_property (gobject_class, PROP_RETRY_RESET_TIME,
      g_param_spec_uint64 ("retry-reset-time", "Retry reset time (ns)",
          "A fault after streaming this long counts as the first: the backoff starts again "
          "from retry-delay and max-retries counts from zero, in nanoseconds (0 = after any "
          "streaming, 18446744073709551615 = never)",
          0, G_MAXUINT64, DEFAULT_RETRY_RESET_TIME, rw));
  g_object_class_install_property (gobject_class, PROP_MAX_RETRIES,
      g_param_spec_int ("max-retries", "Max. retries",
          "Reconnect attempts after a fault before giving up with an error (-1 = forever); "
          "counted again from zero after retry-reset-time of streaming",
          -1, G_MAXINT, DEFAULT_MAX_RETRIES, rw));
  g_object_class_install_property (gobject_class, PROP_TIMEOUT,
      g_param_spec_uint64 ("timeout", "Stall timeout (ns)",
          "Reconnect when no video arrives for this long while streaming, in nanoseconds "
          "(0 = never)",
          0, 3600 * GST_SECOND, DEFAULT_TIMEOUT, rw));
  g_object_class_install_property (gobject_class, PROP_CONNECT_TIMEOUT,
      g_param_spec_uint64 ("connect-timeout", "Connect timeout (ns)",
          "Longest one connection attempt may take to deliver its first keyframe, in "
          "nanoseconds",
          GST_MSECOND, 3600 * GST_SECOND, DEFAULT_CONNECT_TIMEOUT, rw));
  g_object_class_install_property (gobject_class, PROP_FALLBACK,
      g_param_spec_enum ("fallback", "Fallback",
          "What to send while the camera is away, so that clients do not time out",
          GST_TYPE_CAMERA_SRC_FALLBACK, DEFAULT_FALLBACK, rw));
  g_object_class_install_property (gobject_class, PROP_FALLBACK_INTERVAL,
      g_param_spec_uint64 ("fallback-interval", "Fallback interval (ns)",
          "Period of the fallback pictures while the camera is away, in nanoseconds",
          10 * GST_MSECOND, 60 * GST_SECOND, DEFAULT_FALLBACK_INTERVAL, rw));
  g_object_class_install_property (gobject_class, PROP_FALLBACK_AFTER,
      g_param_spec_uint64 ("fallback-after", "Fallback after (ns)",
          "Start the fallback pictures once no video frame went out for this long while "
          "streaming, before the stall timeout, in nanoseconds (0 = only after a fault)",
          0, 3600 * GST_SECOND, DEFAULT_FALLBACK_AFTER, rw));
  g_object_class_install_property (gobject_class, PROP_STATE,
      g_param_spec_enum ("state", "State", "Connection state", GST_TYPE_CAMERA_SRC_STATE,
          GST_CAMERA_SRC_STATE_STOPPED, ro));
  /**
   * GstCameraSrc:stats:
   *
   * A `application/x-camerasrc-stats` structure: `connects`, `reconnects`,
   * `bytes`, `frames`, `keyframes`, `fallback-frames`, `streaming-time` (ns),
   * `down-time` (ns), `last-frame-age` (ns, G_MAXUINT64 before the first
   * frame), `bitrate` (bit/s over the last 5 s) as #G_TYPE_UINT64;
   * `attempt` (#G_TYPE_UINT); `last-error`, `codec` (strings); `width`,
   * `height` (#G_TYPE_INT) and `framerate` (#GST_TYPE_FRACTION).
   */
  g_object_class_install_property (gobject_class, PROP_STATS,
      g_param_spec_boxed ("stats", "Statistics",
          "Counters and stream facts (application/x-camerasrc-stats)", GST_TYPE_STRUCTURE, ro));

  for (StreamKind kind : {StreamKind::Video, StreamKind::Audio}) {
    camrelay::CapsPtr caps{output_caps (kind)};
    gst_element_class_add_pad_template (element_class,
        gst_pad_template_new (kind == StreamKind::Video ? "video" : "audio", GST_PAD_SRC,
            kind == StreamKind::Video ? GST_PAD_ALWAYS : GST_PAD_SOMETIMES, caps.get ()));
  }
  gst_element_class_set_static_metadata (element_class, "Resilient camera source",
      "Source/Video/Network",
      "Connects to an IP camera and delivers its encoded stream, reconnecting on every fault",
      "camrelay developers");

  element_class->change_state = gst_camera_src_change_state;
  element_class->set_clock = gst_camera_src_set_clock;
  bin_class->handle_message = gst_camera_src_handle_message;

  gst_type_mark_as_plugin_api (GST_TYPE_CAMERA_SRC_STATE, static_cast<GstPluginAPIFlags> (0));
  gst_type_mark_as_plugin_api (GST_TYPE_CAMERA_SRC_PROTOCOLS, static_cast<GstPluginAPIFlags> (0));
  gst_type_mark_as_plugin_api (GST_TYPE_CAMERA_SRC_FALLBACK, static_cast<GstPluginAPIFlags> (0));
}

static void
gst_camera_src_init (GstCameraSrc *self)
{
  self->priv = new GstCameraSrcPrivate ();
  GST_OBJECT_FLAG_SET (self, GST_ELEMENT_FLAG_SOURCE);
  self->priv->video.appsrc = make_output_appsrc ("video_output", DEFAULT_LATENCY_MS);
  GstElement *appsrc = self->priv->video.appsrc.get ();
  self->priv->video.stream = init_output_stream (self, appsrc, StreamKind::Video);
  self->priv->video.group_id = gst_util_group_id_next ();
  gst_bin_add (GST_BIN (self), appsrc);
  self->video_pad = ghost_output (self, appsrc, "video");
  self->audio_pad = nullptr;
}
