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
 * default.  While the camera is away, #GstCameraSrc:fallback keeps a picture
 * going (by default the last keyframe, once per #GstCameraSrc:fallback-interval)
 * so that players and recorders do not time out.
 *
 * A manager thread of the element's own (joined when it stops) owns the state
 * machine: it builds and tears down the inner chain, so no state change ever
 * happens from a streaming thread.
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

#include <gio/gio.h>
#include <gst/app/app.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "camerasrc/camerauri.h"
#include "camerasrc/handshake.h"
#include "common/gstref.h"

GST_DEBUG_CATEGORY_STATIC (camera_src_debug);
#define GST_CAT_DEFAULT camera_src_debug

namespace {

using Clock = std::chrono::steady_clock;
using Lock = std::unique_lock<std::mutex>;
using camrelay::CapsPtr;
using camrelay::ElementPtr;
using camrelay::GCharPtr;
using camrelay::camerasrc::has_supported_scheme;
using camrelay::camerasrc::redact_text;
using camrelay::camerasrc::redact_uri;
using camrelay::camerasrc::split_uri;
using camrelay::camerasrc::UriParts;

constexpr guint DEFAULT_LATENCY_MS = 200;
constexpr guint64 DEFAULT_RETRY_DELAY = GST_SECOND;
constexpr guint64 DEFAULT_RETRY_DELAY_MAX = 30 * GST_SECOND;
constexpr gint DEFAULT_MAX_RETRIES = -1;
constexpr guint64 DEFAULT_TIMEOUT = 5 * GST_SECOND;
constexpr guint64 DEFAULT_CONNECT_TIMEOUT = 10 * GST_SECOND;
constexpr guint64 DEFAULT_FALLBACK_INTERVAL = GST_SECOND;
constexpr GstCameraSrcProtocols DEFAULT_PROTOCOLS = GST_CAMERA_SRC_PROTOCOLS_TCP;
constexpr GstCameraSrcFallback DEFAULT_FALLBACK = GST_CAMERA_SRC_FALLBACK_FREEZE;

// Streaming this long makes the next fault start the backoff from retry-delay.
constexpr guint64 DEFAULT_RETRY_RESET_TIME = 60 * GST_SECOND;
constexpr double JITTER = 0.2;
constexpr auto WARNING_INTERVAL = std::chrono::seconds (5);
constexpr auto BITRATE_WINDOW = std::chrono::seconds (5);
// The manager re-checks its deadlines at least this often.
constexpr auto MANAGER_TICK = std::chrono::milliseconds (100);
// Longest the diagnosis of an HTTP camera that could not be reached may take.
constexpr guint DIAGNOSIS_TIMEOUT_MS = 1000;
// Longest a slate may take to encode; until it is there, the fallback
// repeats the last keyframe.
constexpr auto SLATE_TIMEOUT = std::chrono::seconds (5);
// Longest a teardown waits for the inner chain to stop; a chain stuck on a
// camera that trickles a never-ending answer stops in the background
// (see retire_chain in handshake.h).
constexpr auto RETIRE_BOUND = std::chrono::milliseconds (200);
// No new attempt while this many earlier chains are still stopping.
constexpr guint MAX_RETIRING = 2;
// Beyond this much data waiting in an output appsrc (downstream is not
// reading), drop until the next keyframe instead of growing.
constexpr guint64 MAX_OUTPUT_BACKLOG = 5 * GST_SECOND;

constexpr const char *STATE_MESSAGE = "camerasrc-state";
constexpr const char *STATS_NAME = "application/x-camerasrc-stats";

constexpr const char *VIDEO_CAPS =
    "video/x-h264, stream-format=(string)byte-stream, alignment=(string)au; "
    "video/x-h265, stream-format=(string)byte-stream, alignment=(string)au; "
    "image/jpeg, parsed=(boolean)true";
constexpr const char *AUDIO_CAPS =
    "audio/mpeg, mpegversion=(int)4, framed=(boolean)true; audio/x-alaw; audio/x-mulaw; "
    "audio/x-opus";

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
  PROP_STATE,
  PROP_STATS,
};

GstStaticPadTemplate video_template = GST_STATIC_PAD_TEMPLATE ("video", GST_PAD_SRC,
    GST_PAD_ALWAYS, GST_STATIC_CAPS (VIDEO_CAPS));
GstStaticPadTemplate audio_template = GST_STATIC_PAD_TEMPLATE ("audio", GST_PAD_SRC,
    GST_PAD_SOMETIMES, GST_STATIC_CAPS (AUDIO_CAPS));

enum class StreamKind { Video, Audio };

struct Settings {
  std::string location;
  std::string user_id;
  std::string user_pw;
  GstCameraSrcProtocols protocols = DEFAULT_PROTOCOLS;
  guint latency_ms = DEFAULT_LATENCY_MS;
  bool audio = true;
  guint64 retry_delay = DEFAULT_RETRY_DELAY;
  guint64 retry_delay_max = DEFAULT_RETRY_DELAY_MAX;
  guint64 retry_reset_time = DEFAULT_RETRY_RESET_TIME;
  gint max_retries = DEFAULT_MAX_RETRIES;
  guint64 timeout = DEFAULT_TIMEOUT;
  guint64 connect_timeout = DEFAULT_CONNECT_TIMEOUT;
  GstCameraSrcFallback fallback = DEFAULT_FALLBACK;
  guint64 fallback_interval = DEFAULT_FALLBACK_INTERVAL;
};

// One output: a persistent appsrc ghosted to our pad, and the continuity
// state of what went out through it.
struct Output {
  // Held from the timestamping of a buffer until it is in the appsrc, so
  // that the camera's frames and the fallback pictures go out in the order
  // (and with the timestamps) they were given.  Taken before the element's
  // lock, never while waiting: the appsrc never blocks a push.
  std::mutex push_lock;
  GstElement *appsrc = nullptr;  // a child of the bin; we hold a reference too
  CapsPtr caps;                  // last caps sent
  GstClockTime last_ts = GST_CLOCK_TIME_NONE;
  GstClockTimeDiff session_shift = 0;  // added to this session's timestamps
  bool session_started = false;
  bool need_keyframe = true;
  bool discont = true;
  // The stream going out, a new one for each codec: announced downstream
  // by its stream-start, which carries it, and a stream-collection before
  // its first buffer (see on_output_data).
  GstStream *stream = nullptr;
  guint32 group_id = 0;  // shared by the element's streams
};

struct Stats {
  guint64 connects = 0;
  guint64 reconnects = 0;
  guint64 bytes = 0;
  guint64 frames = 0;
  guint64 keyframes = 0;
  guint64 fallback_frames = 0;
  std::string last_error;
  std::chrono::nanoseconds streaming_time{0};
  std::chrono::nanoseconds down_time{0};
  std::optional<Clock::time_point> last_frame;
  gint width = 0;
  gint height = 0;
  gint fps_n = 0;
  gint fps_d = 1;
  std::string codec;
  std::deque<std::pair<Clock::time_point, gsize>> bitrate_window;
};

// Passed to the appsink callbacks of one session.
struct SinkContext {
  GstCameraSrc *self;
  guint64 generation;
  StreamKind kind;
};

const char *
state_nick (GstCameraSrcState state)
{
  GEnumClass *klass = static_cast<GEnumClass *> (g_type_class_peek (GST_TYPE_CAMERA_SRC_STATE));
  GEnumValue *value = klass ? g_enum_get_value (klass, state) : nullptr;
  return value ? value->value_nick : "unknown";
}

}  // namespace

struct GstCameraSrcPrivate {
  std::mutex lock;
  std::condition_variable wake;  // the manager thread waits on it

  Settings settings;

  GstCameraSrcState state = GST_CAMERA_SRC_STATE_STOPPED;
  guint attempt = 0;
  std::string state_reason;

  // Manager thread and its inbox; guarded by `lock`.
  std::thread manager;
  bool running = false;
  bool location_changed = false;
  std::optional<std::string> fault;  // reported by a child or a callback
  bool fault_generic = false;        // it says only that the stream stopped
  const void *fault_origin = nullptr;  // the session element it came from (compared only)
  std::string session_warning;       // the session's last warning, redacted
  GCancellable *diagnosis = nullptr; // the diagnosis under way (see diagnose_http)
  bool end_of_file = false;          // file:// reached its end: loop
  bool first_frame = false;          // the session delivered its first keyframe
  // The step the current attempt is at (handshake.h); its own lock.
  camrelay::camerasrc::Handshake handshake;
  // Earlier chains still stopping in the background (retire_chain).
  std::shared_ptr<std::atomic<guint>> retiring = std::make_shared<std::atomic<guint>> (0);

  // The current inner chain.  `generation` changes whenever it is torn down,
  // so that late callbacks of an old chain are ignored.
  guint64 generation = 0;
  std::vector<GstElement *> session_elements;  // references we hold
  bool session_is_file = false;
  bool no_more_pads_sent = false;

  Output video;
  Output audio;

  // Fallback material.
  GstBuffer *last_keyframe = nullptr;
  CapsPtr last_keyframe_caps;
  GstSample *slate = nullptr;

  Stats stats;
  std::optional<Clock::time_point> streaming_since;
  std::optional<Clock::time_point> down_since;
  std::optional<Clock::time_point> last_warning;
};

struct _GstCameraSrc {
  GstBin parent;
  GstPad *video_pad;
  GstPad *audio_pad;
  GstCameraSrcPrivate *priv;
};

static void gst_camera_src_uri_handler_init (gpointer g_iface, gpointer iface_data);
static void gst_camera_src_preset_init (gpointer g_iface, gpointer iface_data);

#define gst_camera_src_parent_class parent_class
G_DEFINE_TYPE_WITH_CODE (GstCameraSrc, gst_camera_src, GST_TYPE_BIN,
    G_IMPLEMENT_INTERFACE (GST_TYPE_URI_HANDLER, gst_camera_src_uri_handler_init);
    G_IMPLEMENT_INTERFACE (GST_TYPE_PRESET, gst_camera_src_preset_init);
    GST_DEBUG_CATEGORY_INIT (camera_src_debug, "camerasrc", 0,
        "camerasrc: resilient camera source"));

GST_ELEMENT_REGISTER_DEFINE (camerasrc, "camerasrc", GST_RANK_NONE, GST_TYPE_CAMERA_SRC);

#define DEFINE_ENUM_TYPE(func, name, ...)                                  \
  GType func (void)                                                      \
  {                                                                      \
    static gsize type_id = 0;                                            \
    static const GEnumValue values[] = {__VA_ARGS__, {0, nullptr, nullptr}}; \
    if (g_once_init_enter (&type_id))                                    \
      g_once_init_leave (&type_id, g_enum_register_static (name, values)); \
    return static_cast<GType> (type_id);                                 \
  }

DEFINE_ENUM_TYPE (gst_camera_src_state_get_type, "GstCameraSrcState",
    {GST_CAMERA_SRC_STATE_STOPPED, "Not running", "stopped"},
    {GST_CAMERA_SRC_STATE_CONNECTING, "Connecting to the camera", "connecting"},
    {GST_CAMERA_SRC_STATE_STREAMING, "Receiving video from the camera", "streaming"},
    {GST_CAMERA_SRC_STATE_RECONNECTING, "Waiting to reconnect after a fault", "reconnecting"},
    {GST_CAMERA_SRC_STATE_FAILED, "Gave up after max-retries", "failed"})

DEFINE_ENUM_TYPE (gst_camera_src_protocols_get_type, "GstCameraSrcProtocols",
    {GST_CAMERA_SRC_PROTOCOLS_TCP, "RTP interleaved in the RTSP TCP connection", "tcp"},
    {GST_CAMERA_SRC_PROTOCOLS_UDP, "RTP over UDP", "udp"},
    {GST_CAMERA_SRC_PROTOCOLS_AUTO, "UDP, falling back to TCP", "auto"})

DEFINE_ENUM_TYPE (gst_camera_src_fallback_get_type, "GstCameraSrcFallback",
    {GST_CAMERA_SRC_FALLBACK_NONE, "Send nothing while the camera is away", "none"},
    {GST_CAMERA_SRC_FALLBACK_FREEZE, "Repeat the last keyframe", "freeze"},
    {GST_CAMERA_SRC_FALLBACK_SLATE, "Send an encoded 'camera offline' picture", "slate"})

namespace {

// ---- time ---------------------------------------------------------------------

// The pipeline's running time now, or NONE without a clock.
GstClockTime
running_time_now (GstElement *element)
{
  GstClock *clock = gst_element_get_clock (element);
  if (!clock)
    return GST_CLOCK_TIME_NONE;
  GstClockTime now = gst_clock_get_time (clock);
  gst_object_unref (clock);
  GstClockTime base = gst_element_get_base_time (element);
  return now > base ? now - base : 0;
}

std::chrono::nanoseconds
ns (guint64 value)
{
  return std::chrono::nanoseconds (static_cast<std::chrono::nanoseconds::rep> (
      std::min<guint64> (value, G_MAXINT64)));
}

}  // namespace

// ---- state and reporting (manager thread) ------------------------------------

static void
post_state_message (GstCameraSrc *self, GstCameraSrcState state, GstCameraSrcState previous,
    const std::string &reason, guint attempt, guint64 retry_in, const std::string &location)
{
  GstStructure *s = gst_structure_new (STATE_MESSAGE,
      "state", GST_TYPE_CAMERA_SRC_STATE, state,
      "previous", GST_TYPE_CAMERA_SRC_STATE, previous,
      "reason", G_TYPE_STRING, reason.c_str (),
      "attempt", G_TYPE_UINT, attempt,
      "retry-in", G_TYPE_UINT64, retry_in,
      "location", G_TYPE_STRING, location.c_str (), nullptr);
  gst_element_post_message (GST_ELEMENT (self), gst_message_new_element (GST_OBJECT (self), s));
}

// Changes the state (lock held), and returns what to post once unlocked.
struct StateChange {
  GstCameraSrcState state;
  GstCameraSrcState previous;
  std::string reason;
  guint attempt;
  guint64 retry_in;
  std::string location;
};

static StateChange
set_state_locked (GstCameraSrcPrivate &p, GstCameraSrcState state, std::string reason,
    guint64 retry_in = 0)
{
  const auto now = Clock::now ();
  if (p.state == GST_CAMERA_SRC_STATE_STREAMING && p.streaming_since) {
    p.stats.streaming_time += now - *p.streaming_since;
    p.streaming_since.reset ();
  }
  const bool was_down = p.state == GST_CAMERA_SRC_STATE_CONNECTING
      || p.state == GST_CAMERA_SRC_STATE_RECONNECTING;
  if (was_down && p.down_since) {
    p.stats.down_time += now - *p.down_since;
    p.down_since.reset ();
  }
  if (state == GST_CAMERA_SRC_STATE_STREAMING)
    p.streaming_since = now;
  else if (state == GST_CAMERA_SRC_STATE_CONNECTING || state == GST_CAMERA_SRC_STATE_RECONNECTING)
    p.down_since = now;

  StateChange change{state, p.state, reason, p.attempt, retry_in,
      redact_uri (p.settings.location)};
  p.state = state;
  p.state_reason = std::move (reason);
  return change;
}

static void
announce (GstCameraSrc *self, const StateChange &change)
{
  GST_INFO_OBJECT (self, "%s -> %s (attempt %u): %s", state_nick (change.previous),
      state_nick (change.state), change.attempt, change.reason.c_str ());
  post_state_message (self, change.state, change.previous, change.reason, change.attempt,
      change.retry_in, change.location);
  g_object_notify (G_OBJECT (self), "state");
}

// ---- output -------------------------------------------------------------------

static Output &
output_for (GstCameraSrcPrivate &p, StreamKind kind)
{
  return kind == StreamKind::Video ? p.video : p.audio;
}

// Maps a timestamp of the current session to the output timeline (lock held).
static GstClockTime
map_timestamp (Output &out, GstClockTime ts)
{
  if (!GST_CLOCK_TIME_IS_VALID (ts))
    return ts;
  GstClockTimeDiff mapped = static_cast<GstClockTimeDiff> (ts) + out.session_shift;
  return mapped > 0 ? static_cast<GstClockTime> (mapped) : 0;
}

static GstEvent *
make_stream_start (GstStream *stream, guint32 group_id)
{
  GstEvent *event = gst_event_new_stream_start (gst_stream_get_stream_id (stream));
  gst_event_set_stream (event, stream);
  gst_event_set_group_id (event, group_id);
  return event;
}

// What goes to an output appsrc, decided under the lock.
struct Outgoing {
  ElementPtr appsrc;
  CapsPtr new_caps;                       // set when the caps changed
  camrelay::ObjectPtr<GstStream> stream;  // with new caps: the stream they are for
  bool new_stream = false;                // another codec: a stream-start first
  guint32 group_id = 0;
  GstBuffer *buffer = nullptr;
};

// Stamps `buffer` (owned) for `out`, with output timestamps derived from the
// running times `pts`/`dts`, and says what to push (lock and the output's
// push lock held).  `from_camera` is false for fallback pictures, which are
// not part of a camera session.  `leader` is the output whose session this
// one follows (the video, for the audio).  False when there is nothing to push.
static bool
prepare_buffer (Output &out, const Output *leader, GstBuffer *buffer, GstCaps *caps,
    GstClockTime pts, GstClockTime dts, bool from_camera, Outgoing &outgoing)
{
  if (!out.appsrc) {
    gst_buffer_unref (buffer);
    return false;
  }
  GstClockTime key = GST_CLOCK_TIME_IS_VALID (dts) ? dts : pts;
  if (from_camera && !out.session_started) {
    // A new session restarts the stream (after a gap or fallback
    // pictures).  One whose clock is behind what went out already (a file
    // that loops, a camera with a reset clock) continues after it.  The
    // audio moves with the video (which started first), so that the two
    // stay aligned, and further only if it must.
    out.session_started = true;
    out.discont = true;
    out.session_shift = leader && leader->session_started ? leader->session_shift : 0;
    if (GST_CLOCK_TIME_IS_VALID (key) && GST_CLOCK_TIME_IS_VALID (out.last_ts)
        && map_timestamp (out, key) <= out.last_ts)
      out.session_shift += static_cast<GstClockTimeDiff> (out.last_ts - map_timestamp (out, key))
          + GST_MSECOND;
  }
  if (from_camera) {
    pts = map_timestamp (out, pts);
    dts = map_timestamp (out, dts);
  }
  key = GST_CLOCK_TIME_IS_VALID (dts) ? dts : pts;
  if (GST_CLOCK_TIME_IS_VALID (key) && GST_CLOCK_TIME_IS_VALID (out.last_ts)
      && key <= out.last_ts) {
    // Strictly increasing, whatever the camera sends.
    const GstClockTime bump = out.last_ts + GST_USECOND - key;
    if (GST_CLOCK_TIME_IS_VALID (pts))
      pts += bump;
    if (GST_CLOCK_TIME_IS_VALID (dts))
      dts += bump;
    key += bump;
  }
  if (GST_CLOCK_TIME_IS_VALID (key))
    out.last_ts = key;
  if (caps && (!out.caps || !gst_caps_is_equal (out.caps.get (), caps))) {
    // Another codec is another stream: decoders downstream are chosen per
    // stream, and a new stream-start lets them choose again.  Other changes
    // (size, profile, parameter sets) stay in the stream: new caps only.
    if (out.caps && !gst_structure_has_name (gst_caps_get_structure (caps, 0),
                        gst_structure_get_name (gst_caps_get_structure (out.caps.get (), 0)))) {
      GstStream *stream = gst_stream_new (nullptr, nullptr,
          gst_stream_get_stream_type (out.stream), GST_STREAM_FLAG_NONE);
      gst_object_unref (out.stream);
      out.stream = stream;  // gst_stream_new () returns it owned, not floating
      outgoing.new_stream = true;
      outgoing.group_id = out.group_id;
    }
    outgoing.stream = camrelay::ref_object (out.stream);
    out.caps.reset (gst_caps_ref (caps));
    outgoing.new_caps.reset (gst_caps_ref (caps));
  }
  buffer = gst_buffer_make_writable (buffer);
  GST_BUFFER_PTS (buffer) = pts;
  GST_BUFFER_DTS (buffer) = dts;
  if (out.discont) {
    GST_BUFFER_FLAG_SET (buffer, GST_BUFFER_FLAG_DISCONT);
    out.discont = false;
  } else {
    GST_BUFFER_FLAG_UNSET (buffer, GST_BUFFER_FLAG_DISCONT);
  }
  outgoing.appsrc = camrelay::ref_object (out.appsrc);
  outgoing.buffer = buffer;
  return true;
}

// Hands a prepared buffer to its appsrc (push lock held, lock not held).
// Never blocks: the appsrc queues without limit (on_camera_sample bounds it).
static void
push_outgoing (GstCameraSrc *self, Outgoing &outgoing)
{
  GstAppSrc *appsrc = GST_APP_SRC (outgoing.appsrc.get ());
  GstStream *stream = outgoing.stream.get ();
  if (outgoing.new_stream) {
    // The appsrc queues it in order with the caps and buffers.
    GST_DEBUG_OBJECT (self, "another codec: new stream %s", gst_stream_get_stream_id (stream));
    gst_element_send_event (outgoing.appsrc.get (),
        make_stream_start (stream, outgoing.group_id));
  }
  if (outgoing.new_caps) {
    GST_DEBUG_OBJECT (self, "new caps %" GST_PTR_FORMAT, outgoing.new_caps.get ());
    gst_stream_set_caps (stream, outgoing.new_caps.get ());
    gst_app_src_set_caps (appsrc, outgoing.new_caps.get ());
  }
  gst_app_src_push_buffer (appsrc, outgoing.buffer);
  outgoing.buffer = nullptr;
}

static void
update_video_stats (GstCameraSrcPrivate &p, GstBuffer *buffer, GstCaps *caps, bool keyframe)
{
  const auto now = Clock::now ();
  Stats &s = p.stats;
  const gsize size = gst_buffer_get_size (buffer);
  s.frames++;
  s.bytes += size;
  if (keyframe)
    s.keyframes++;
  s.last_frame = now;
  s.bitrate_window.emplace_back (now, size);
  while (!s.bitrate_window.empty () && now - s.bitrate_window.front ().first > BITRATE_WINDOW)
    s.bitrate_window.pop_front ();
  if (caps && gst_caps_get_size (caps) > 0) {
    const GstStructure *st = gst_caps_get_structure (caps, 0);
    gst_structure_get_int (st, "width", &s.width);
    gst_structure_get_int (st, "height", &s.height);
    gst_structure_get_fraction (st, "framerate", &s.fps_n, &s.fps_d);
    const char *name = gst_structure_get_name (st);
    s.codec = g_str_equal (name, "video/x-h264") ? "h264"
        : g_str_equal (name, "video/x-h265")     ? "h265"
        : g_str_equal (name, "image/jpeg")       ? "jpeg"
                                                 : name;
  }
}

// A sample from the inner chain (streaming thread of the camera).
static void
on_camera_sample (GstCameraSrc *self, const SinkContext &ctx, GstSample *sample)
{
  GstCameraSrcPrivate &p = *self->priv;
  GstBuffer *buffer = gst_sample_get_buffer (sample);
  GstCaps *caps = gst_sample_get_caps (sample);
  const GstSegment *segment = gst_sample_get_segment (sample);
  if (!buffer)
    return;

  GstClockTime pts = GST_BUFFER_PTS (buffer);
  GstClockTime dts = GST_BUFFER_DTS (buffer);
  if (segment && segment->format == GST_FORMAT_TIME) {
    pts = gst_segment_to_running_time (segment, GST_FORMAT_TIME, pts);
    dts = gst_segment_to_running_time (segment, GST_FORMAT_TIME, dts);
  }
  // A frame without any timestamp is stamped with its arrival, as
  // souphttpsrc's do-timestamp stamps the others: multipartdemux gives a
  // timestamp only to the first part that starts in a read, and a reader
  // that fell behind (or a camera that sends in bursts) reads several.
  if (!GST_CLOCK_TIME_IS_VALID (pts) && !GST_CLOCK_TIME_IS_VALID (dts))
    pts = running_time_now (GST_ELEMENT (self));

  // Downstream does not read: drop until the next keyframe rather than grow.
  ElementPtr appsrc;
  {
    Lock lock (p.lock);
    Output &out = output_for (p, ctx.kind);
    if (ctx.generation != p.generation || !out.appsrc)
      return;
    appsrc = camrelay::ref_object (out.appsrc);
  }
  const guint64 backlog = gst_app_src_get_current_level_time (GST_APP_SRC (appsrc.get ()));

  const bool keyframe = !GST_BUFFER_FLAG_IS_SET (buffer, GST_BUFFER_FLAG_DELTA_UNIT);
  Output &out = output_for (p, ctx.kind);
  std::lock_guard<std::mutex> push (out.push_lock);
  Outgoing outgoing;
  {
    Lock lock (p.lock);
    if (ctx.generation != p.generation)
      return;
    if (backlog > MAX_OUTPUT_BACKLOG) {
      if (!out.need_keyframe)
        GST_WARNING_OBJECT (self, "downstream is not reading: dropping until the next keyframe");
      out.need_keyframe = true;
      out.discont = true;
      return;
    }
    if (ctx.kind == StreamKind::Video) {
      if (out.need_keyframe && !keyframe)
        return;
      if (out.need_keyframe) {
        out.need_keyframe = false;
        if (!p.first_frame && p.state != GST_CAMERA_SRC_STATE_STREAMING) {
          p.first_frame = true;
          p.wake.notify_all ();
        }
      }
      update_video_stats (p, buffer, caps, keyframe);
      if (keyframe) {
        gst_buffer_replace (&p.last_keyframe, buffer);
        p.last_keyframe_caps.reset (caps ? gst_caps_ref (caps) : nullptr);
      }
    } else if (p.video.need_keyframe) {
      // Audio starts with the video of the session.
      return;
    }
    const Output *leader = ctx.kind == StreamKind::Audio ? &p.video : nullptr;
    if (!prepare_buffer (out, leader, gst_buffer_ref (buffer), caps, pts, dts, true, outgoing))
      return;
  }
  push_outgoing (self, outgoing);
}

static GstFlowReturn
on_new_sample (GstAppSink *sink, gpointer user_data)
{
  auto *ctx = static_cast<SinkContext *> (user_data);
  GstSample *sample = gst_app_sink_pull_sample (sink);
  if (sample) {
    on_camera_sample (ctx->self, *ctx, sample);
    gst_sample_unref (sample);
  }
  return GST_FLOW_OK;
}

// How an error of the inner chain ranks as the reason of a fault.
struct FaultOrigin {
  const void *element = nullptr;  // the session element it came from
  bool from_source = false;       // that element is the chain's source
  bool generic = false;           // it says only that a stream stopped
};

// Records the session's fault: the first one, unless that one is generic
// ("Internal data stream error") and a specific error, not yet handled,
// follows from the same element or from the source.  Errors of elements
// downstream of a source that stopped are consequences, not reasons.
static void
report_fault (GstCameraSrc *self, guint64 generation, std::string reason,
    const FaultOrigin &origin = FaultOrigin ())
{
  GstCameraSrcPrivate &p = *self->priv;
  Lock lock (p.lock);
  if (generation != p.generation)
    return;
  if (p.fault && !(p.fault_generic && !origin.generic
                     && (origin.from_source || origin.element == p.fault_origin)))
    return;
  p.fault = redact_text (std::move (reason), p.settings.location, p.settings.user_id,
      p.settings.user_pw);
  p.fault_generic = origin.generic;
  p.fault_origin = origin.element;
  p.wake.notify_all ();
}

static void
on_eos (GstAppSink *, gpointer user_data)
{
  auto *ctx = static_cast<SinkContext *> (user_data);
  GstCameraSrcPrivate &p = *ctx->self->priv;
  {
    Lock lock (p.lock);
    // A file that played loops; one that ended before any video is broken,
    // and replaying it at once would spin.
    if (ctx->generation == p.generation && p.session_is_file && ctx->kind == StreamKind::Video
        && p.video.session_started) {
      p.end_of_file = true;
      p.wake.notify_all ();
      return;
    }
  }
  report_fault (ctx->self, ctx->generation, "the camera ended the stream");
}

// ---- building the inner chain -------------------------------------------------

static GstElement *
make (const char *factory)
{
  GstElement *element = gst_element_factory_make (factory, nullptr);
  if (!element)
    GST_ERROR ("missing GStreamer element '%s'", factory);
  return element;
}

// A sink for a stream of the camera we do not deliver (metadata, an
// unsupported codec, audio when audio=false): without one the source fails
// with not-linked.  Not a sink of the bin: it never holds up state changes.
static GstElement *
make_discard_sink ()
{
  GstElement *fakesink = make ("fakesink");
  if (fakesink) {
    g_object_set (fakesink, "async", FALSE, "sync", FALSE, nullptr);
    GST_OBJECT_FLAG_UNSET (fakesink, GST_ELEMENT_FLAG_SINK);
  }
  return fakesink;
}

// Adds `elements` to the bin and to the current session (if still current),
// links them in a row and brings them to the bin's state.  Returns false and
// cleans up when the session is gone or something failed.
static bool
add_to_session (GstCameraSrc *self, guint64 generation, const std::vector<GstElement *> &elements)
{
  GstCameraSrcPrivate &p = *self->priv;
  for (GstElement *e : elements) {
    if (!e) {
      for (GstElement *other : elements)
        if (other)
          gst_object_unref (gst_object_ref_sink (other));
      return false;
    }
  }
  bool current;
  {
    Lock lock (p.lock);
    current = generation == p.generation;
  }
  if (!current) {
    for (GstElement *e : elements)
      gst_object_unref (gst_object_ref_sink (e));
    return false;
  }
  // Our own references: the manager may tear the session down while this
  // (streaming) thread is still linking and starting the elements.
  std::vector<ElementPtr> held;
  for (GstElement *e : elements) {
    // The inner chain lives by our state machine, not the bin's state
    // changes: a bin going to PAUSED would otherwise park the camera's
    // streaming thread in the appsink's preroll while we tear it down.
    gst_element_set_locked_state (e, TRUE);
    held.emplace_back (GST_ELEMENT (gst_object_ref_sink (e)));
    // Unlocked: element-added and deep-element-added are emitted from here,
    // and their handlers may read our properties.
    gst_bin_add (GST_BIN (self), e);
  }
  {
    Lock lock (p.lock);
    current = generation == p.generation;
    if (current) {
      for (GstElement *e : elements)
        p.session_elements.push_back (GST_ELEMENT (gst_object_ref (e)));
    }
  }
  if (!current) {
    // Torn down while they were being added: teardown_session did not see
    // them, so they are ours to remove.
    for (GstElement *e : elements)
      gst_bin_remove (GST_BIN (self), e);
    return false;
  }
  bool ok = true;
  for (size_t i = 1; ok && i < elements.size (); i++) {
    ok = gst_element_link (elements[i - 1], elements[i]);
    if (!ok)
      report_fault (self, generation, std::string ("cannot link ") + GST_ELEMENT_NAME (elements[i - 1])
          + " to " + GST_ELEMENT_NAME (elements[i]));
  }
  // Downstream first, so that nothing is pushed into an element not ready.
  for (auto it = elements.rbegin (); ok && it != elements.rend (); ++it) {
    ok = gst_element_set_state (*it, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE;
    if (!ok)
      report_fault (self, generation, std::string ("cannot start ") + GST_ELEMENT_NAME (*it));
  }
  bool torn_down;
  {
    Lock lock (p.lock);
    torn_down = generation != p.generation;
  }
  if (torn_down) {
    // The manager removed them meanwhile, maybe before we started them.
    for (auto it = elements.rbegin (); it != elements.rend (); ++it)
      gst_element_set_state (*it, GST_STATE_NULL);
    return false;
  }
  return ok;
}

static GstElement *
make_appsink (GstCameraSrc *self, guint64 generation, StreamKind kind, bool sync)
{
  GstElement *sink = make ("appsink");
  if (!sink)
    return nullptr;
  GstCaps *caps = gst_caps_from_string (kind == StreamKind::Video ? VIDEO_CAPS : AUDIO_CAPS);
  g_object_set (sink, "caps", caps, "sync", sync, "async", FALSE, "enable-last-sample", FALSE,
      "max-buffers", 4u, "emit-signals", FALSE, nullptr);
  gst_caps_unref (caps);
  // Not a sink of the pipeline: its EOS must not count, and it must not
  // hold up preroll.
  GST_OBJECT_FLAG_UNSET (sink, GST_ELEMENT_FLAG_SINK);
  GstAppSinkCallbacks callbacks = {};
  callbacks.eos = on_eos;
  callbacks.new_sample = on_new_sample;
  gst_app_sink_set_callbacks (GST_APP_SINK (sink), &callbacks,
      new SinkContext{self, generation, kind},
      [] (gpointer data) { delete static_cast<SinkContext *> (data); });
  return sink;
}

static void ensure_audio_output (GstCameraSrc *self);

// Links `pad` (a stream of the camera with `caps`) to a parser chain and an
// appsink.  `depay` names the depayloader for RTP streams, or nullptr.
static void
link_camera_stream (GstCameraSrc *self, guint64 generation, GstPad *pad, GstCaps *caps)
{
  GstCameraSrcPrivate &p = *self->priv;
  if (!caps || gst_caps_is_empty (caps))
    return;
  const GstStructure *s = gst_caps_get_structure (caps, 0);
  const char *name = gst_structure_get_name (s);
  std::vector<const char *> chain;
  StreamKind kind = StreamKind::Video;
  bool is_file;
  bool want_audio;
  {
    Lock lock (p.lock);
    is_file = p.session_is_file;
    want_audio = p.settings.audio;
  }

  if (g_str_equal (name, "application/x-rtp")) {
    const char *media = gst_structure_get_string (s, "media");
    const char *encoding = gst_structure_get_string (s, "encoding-name");
    const std::string enc = encoding ? encoding : "";
    if (media && g_str_equal (media, "video")) {
      if (enc == "H264")
        chain = {"rtph264depay", "h264parse"};
      else if (enc == "H265")
        chain = {"rtph265depay", "h265parse"};
      else if (enc == "JPEG")
        chain = {"rtpjpegdepay", "jpegparse"};
    } else if (media && g_str_equal (media, "audio") && want_audio) {
      kind = StreamKind::Audio;
      if (enc == "MPEG4-GENERIC")
        chain = {"rtpmp4gdepay", "aacparse"};
      else if (enc == "MP4A-LATM")
        chain = {"rtpmp4adepay", "aacparse"};
      else if (enc == "PCMA")
        chain = {"rtppcmadepay"};
      else if (enc == "PCMU")
        chain = {"rtppcmudepay"};
      else if (enc == "OPUS")
        chain = {"rtpopusdepay", "opusparse"};
    }
  } else if (g_str_equal (name, "video/x-h264")) {
    chain = {"h264parse"};
  } else if (g_str_equal (name, "video/x-h265")) {
    chain = {"h265parse"};
  } else if (g_str_equal (name, "image/jpeg")) {
    chain = {"jpegparse"};
  } else if (want_audio && g_str_equal (name, "audio/mpeg")) {
    kind = StreamKind::Audio;
    chain = {"aacparse"};
  } else if (want_audio && (g_str_equal (name, "audio/x-alaw") || g_str_equal (name, "audio/x-mulaw"))) {
    kind = StreamKind::Audio;
    chain = {"identity"};
  } else if (want_audio && g_str_equal (name, "audio/x-opus")) {
    kind = StreamKind::Audio;
    chain = {"opusparse"};
  }

  std::vector<GstElement *> elements;
  if (chain.empty ()) {
    // A stream we do not deliver (metadata, an unsupported codec, audio
    // when audio=false): it still needs a sink, or the source fails.
    GST_INFO_OBJECT (self, "ignoring stream %" GST_PTR_FORMAT, caps);
    elements = {make_discard_sink ()};
  } else {
    for (const char *factory : chain) {
      GstElement *e = make (factory);
      if (e && g_str_has_suffix (factory, "parse") && g_object_class_find_property (
              G_OBJECT_GET_CLASS (e), "config-interval"))
        g_object_set (e, "config-interval", -1, nullptr);
      elements.push_back (e);
    }
    elements.push_back (make_appsink (self, generation, kind, is_file));
    if (kind == StreamKind::Audio)
      ensure_audio_output (self);
  }
  if (!add_to_session (self, generation, elements))
    return;
  GstPad *sinkpad = gst_element_get_static_pad (elements.front (), "sink");
  GstPadLinkReturn linked = gst_pad_link (pad, sinkpad);
  if (linked == GST_PAD_LINK_OK && is_file && kind == StreamKind::Video) {
    // Replay in real time from now on: the file's timestamps start at 0.
    GstClockTime now = running_time_now (GST_ELEMENT (self));
    if (GST_CLOCK_TIME_IS_VALID (now))
      gst_pad_set_offset (pad, static_cast<gint64> (now));
  }
  gst_object_unref (sinkpad);
  if (linked != GST_PAD_LINK_OK)
    report_fault (self, generation,
        std::string ("cannot handle the camera's stream: ") + gst_pad_link_get_name (linked));
}

// Links a stream that is already parsed (testcamerasrc) straight to an appsink.
static void
link_parsed_stream (GstCameraSrc *self, guint64 generation, GstPad *pad, StreamKind kind)
{
  bool want_audio;
  {
    Lock lock (self->priv->lock);
    want_audio = self->priv->settings.audio;
  }
  // Already linked when the pad appeared while the source started.
  if (gst_pad_is_linked (pad))
    return;
  GstElement *sink = nullptr;
  if (kind == StreamKind::Audio && !want_audio) {
    sink = make_discard_sink ();
  } else {
    if (kind == StreamKind::Audio)
      ensure_audio_output (self);
    sink = make_appsink (self, generation, kind, false);
  }
  if (!sink || !add_to_session (self, generation, {sink}))
    return;
  GstPad *sinkpad = gst_element_get_static_pad (sink, "sink");
  GstPadLinkReturn linked = gst_pad_link (pad, sinkpad);
  gst_object_unref (sinkpad);
  if (linked != GST_PAD_LINK_OK)
    report_fault (self, generation,
        std::string ("cannot link the camera's stream: ") + gst_pad_link_get_name (linked));
}

static void
on_pad_added (GstElement *element, GstPad *pad, gpointer user_data)
{
  auto *ctx = static_cast<SinkContext *> (user_data);
  if (GST_PAD_DIRECTION (pad) != GST_PAD_SRC)
    return;
  if (GST_IS_URI_HANDLER (element) && g_str_equal (G_OBJECT_TYPE_NAME (element), "GstTestCameraSrc")) {
    // testcamerasrc: the audio pad appears when the camera has audio.
    if (g_str_equal (GST_PAD_NAME (pad), "audio"))
      link_parsed_stream (ctx->self, ctx->generation, pad, StreamKind::Audio);
    return;
  }
  GstCaps *caps = gst_pad_get_current_caps (pad);
  if (!caps)
    caps = gst_pad_query_caps (pad, nullptr);
  link_camera_stream (ctx->self, ctx->generation, pad, caps);
  if (caps)
    gst_caps_unref (caps);
}

// Once the first session's streams are known, the set of pads is final.
static void
signal_no_more_pads (GstCameraSrc *self, guint64 generation)
{
  GstCameraSrcPrivate &p = *self->priv;
  {
    Lock lock (p.lock);
    if (p.no_more_pads_sent || generation != p.generation)
      return;
    p.no_more_pads_sent = true;
  }
  gst_element_no_more_pads (GST_ELEMENT (self));
}

static void
on_no_more_pads (GstElement *, gpointer user_data)
{
  auto *ctx = static_cast<SinkContext *> (user_data);
  signal_no_more_pads (ctx->self, ctx->generation);
}

static void
connect_dynamic_pads (GstCameraSrc *self, guint64 generation, GstElement *element)
{
  auto destroy = [] (gpointer data, GClosure *) { delete static_cast<SinkContext *> (data); };
  g_signal_connect_data (element, "pad-added", G_CALLBACK (on_pad_added),
      new SinkContext{self, generation, StreamKind::Video}, destroy, GConnectFlags (0));
  g_signal_connect_data (element, "no-more-pads", G_CALLBACK (on_no_more_pads),
      new SinkContext{self, generation, StreamKind::Video}, destroy, GConnectFlags (0));
}

// rtspsrc's select-stream: only set up what we deliver.
static gboolean
on_select_stream (GstElement *, guint, GstCaps *caps, gpointer user_data)
{
  auto *self = static_cast<GstCameraSrc *> (user_data);
  const GstStructure *s = gst_caps_get_structure (caps, 0);
  const char *media = gst_structure_get_string (s, "media");
  if (media && g_str_equal (media, "audio")) {
    Lock lock (self->priv->lock);
    return self->priv->settings.audio;
  }
  return media && g_str_equal (media, "video");
}

// Builds the chain for the current location; returns an error text on failure.
static std::optional<std::string>
build_session (GstCameraSrc *self, guint64 generation, const Settings &settings)
{
  const UriParts uri = split_uri (settings.location, settings.user_id, settings.user_pw);
  std::vector<GstElement *> head;
  GstElement *dynamic = nullptr;  // the element whose pads appear later

  if (uri.scheme == "rtsp" || uri.scheme == "rtsps") {
    GstElement *src = make ("rtspsrc");
    if (!src)
      return std::string ("rtspsrc is not installed");
    guint protocols = settings.protocols == GST_CAMERA_SRC_PROTOCOLS_TCP ? 0x4  // TCP
        : settings.protocols == GST_CAMERA_SRC_PROTOCOLS_UDP ? 0x1                // UDP
                                                             : 0x1 | 0x4;
    // Hook (handshake.h): tcp-timeout twice connect-timeout, so that an
    // unanswered request is ended by connect-timeout, whose reason names it.
    g_object_set (src, "location", uri.without_userinfo.c_str (), "latency", settings.latency_ms,
        "tcp-timeout", static_cast<guint64> (2 * settings.connect_timeout / GST_USECOND),
        "do-rtsp-keep-alive", TRUE, nullptr);
    self->priv->handshake.follow (src);  // hook: the requests it sends
    gst_util_set_object_arg (G_OBJECT (src), "protocols",
        protocols == 0x4 ? "tcp" : protocols == 0x1 ? "udp" : "udp+tcp");
    if (!uri.user.empty ())
      g_object_set (src, "user-id", uri.user.c_str (), "user-pw", uri.password.c_str (), nullptr);
    g_signal_connect (src, "select-stream", G_CALLBACK (on_select_stream), self);
    head = {src};
    dynamic = src;
  } else if (uri.scheme == "http" || uri.scheme == "https") {
    GstElement *src = make ("souphttpsrc");
    GstElement *demux = make ("multipartdemux");
    if (src) {
      g_object_set (src, "location", uri.without_userinfo.c_str (), "is-live", TRUE,
          "do-timestamp", TRUE, "timeout", static_cast<guint> (
              std::max<guint64> (1, settings.connect_timeout / GST_SECOND)), nullptr);
      if (!uri.user.empty ())
        g_object_set (src, "user-id", uri.user.c_str (), "user-pw", uri.password.c_str (), nullptr);
    }
    if (demux)
      g_object_set (demux, "single-stream", TRUE, nullptr);
    head = {src, demux};
    dynamic = demux;
  } else if (uri.scheme == "file") {
    GError *error = nullptr;
    GCharPtr path{g_filename_from_uri (settings.location.c_str (), nullptr, &error)};
    if (!path) {
      std::string text = error ? error->message : "bad file URI";
      g_clear_error (&error);
      return text;
    }
    GstElement *src = make ("filesrc");
    GstElement *parse = make ("parsebin");
    if (src)
      g_object_set (src, "location", path.get (), nullptr);
    head = {src, parse};
    dynamic = parse;
  } else if (uri.scheme == "test") {
    GstElement *src = make ("testcamerasrc");
    if (!src)
      return std::string ("testcamerasrc is not available");
    GError *error = nullptr;
    if (!GST_IS_URI_HANDLER (src)) {
      g_object_set (src, "location", settings.location.c_str (), nullptr);
    } else if (!gst_uri_handler_set_uri (GST_URI_HANDLER (src), settings.location.c_str (),
                   &error)) {
      std::string text = error ? error->message : "bad test URI";
      g_clear_error (&error);
      gst_object_unref (gst_object_ref_sink (src));
      return text;
    }
    head = {src};
    dynamic = src;
  } else {
    return "unsupported URI scheme '" + uri.scheme + "'";
  }

  if (dynamic)
    connect_dynamic_pads (self, generation, dynamic);
  if (!add_to_session (self, generation, head))
    return std::string ("could not build the camera chain");
  // testcamerasrc's pads exist from the start, already parsed.
  if (uri.scheme == "test") {
    for (StreamKind kind : {StreamKind::Video, StreamKind::Audio}) {
      GstPad *pad = gst_element_get_static_pad (head.front (),
          kind == StreamKind::Video ? "video" : "audio");
      if (pad) {
        link_parsed_stream (self, generation, pad, kind);
        gst_object_unref (pad);
      }
    }
    signal_no_more_pads (self, generation);
  }
  return std::nullopt;
}

// ---- outputs -----------------------------------------------------------------

static GstElement *
make_output_appsrc (const char *name, guint latency_ms)
{
  GstElement *appsrc = gst_element_factory_make ("appsrc", name);
  if (!appsrc)
    return nullptr;
  // Live, in running time; unbounded and never blocking a push (pushes
  // happen under an output's push lock) because on_camera_sample bounds the
  // backlog itself, GOP by GOP.
  g_object_set (appsrc, "is-live", TRUE, "format", GST_FORMAT_TIME, "do-timestamp", FALSE,
      "max-bytes", static_cast<guint64> (0), "block", FALSE, "emit-signals", FALSE,
      "min-latency", static_cast<gint64> (latency_ms) * GST_MSECOND, nullptr);
  gst_util_set_object_arg (G_OBJECT (appsrc), "stream-type", "stream");
  return appsrc;
}

// Announces the streams of an output on its appsrc's source pad.  Each run
// of the appsrc starts with a stream-start of basesrc's own: it is replaced
// by the output's, which carries the output's GstStream.  Each stream's
// collection goes out just before its first buffer, after its stream-start,
// caps and segment (queued in the appsrc with the caps, it would make the
// appsrc send a segment of its own first, and basesrc then another).
struct OutputAnnouncer {
  GstCameraSrc *self;
  StreamKind kind;
  GstStream *pending = nullptr;  // streaming thread only: to announce
};

static GstPadProbeReturn
on_output_data (GstPad *pad, GstPadProbeInfo *info, gpointer user_data)
{
  auto *announcer = static_cast<OutputAnnouncer *> (user_data);
  if (GST_PAD_PROBE_INFO_TYPE (info) & GST_PAD_PROBE_TYPE_BUFFER) {
    if (GstStream *stream = announcer->pending) {
      announcer->pending = nullptr;
      GstStreamCollection *collection = gst_stream_collection_new (nullptr);
      gst_stream_collection_add_stream (collection, stream);
      gst_pad_push_event (pad, gst_event_new_stream_collection (collection));
      gst_object_unref (collection);
    }
    return GST_PAD_PROBE_OK;
  }
  GstEvent *event = GST_PAD_PROBE_INFO_EVENT (info);
  if (GST_EVENT_TYPE (event) != GST_EVENT_STREAM_START)
    return GST_PAD_PROBE_OK;
  GstStream *stream = nullptr;
  gst_event_parse_stream (event, &stream);
  if (!stream) {
    GstCameraSrcPrivate &p = *announcer->self->priv;
    guint32 group_id;
    {
      Lock lock (p.lock);
      const Output &out = output_for (p, announcer->kind);
      stream = GST_STREAM (gst_object_ref (out.stream));
      group_id = out.group_id;
    }
    gst_event_unref (event);
    GST_PAD_PROBE_INFO_DATA (info) = make_stream_start (stream, group_id);
  }
  gst_clear_object (&announcer->pending);
  announcer->pending = stream;  // takes the reference
  return GST_PAD_PROBE_OK;
}

// The first stream of an output's `appsrc` (returned), and the probe that
// announces its streams.
static GstStream *
init_output_stream (GstCameraSrc *self, GstElement *appsrc, StreamKind kind)
{
  GstPad *pad = gst_element_get_static_pad (appsrc, "src");
  GCharPtr stream_id{gst_pad_create_stream_id (pad, appsrc,
      kind == StreamKind::Video ? "video" : "audio")};
  // gst_stream_new () returns the stream owned, not floating.
  GstStream *stream = gst_stream_new (stream_id.get (), nullptr,
      kind == StreamKind::Video ? GST_STREAM_TYPE_VIDEO : GST_STREAM_TYPE_AUDIO,
      GST_STREAM_FLAG_NONE);
  gst_pad_add_probe (pad,
      static_cast<GstPadProbeType> (GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM | GST_PAD_PROBE_TYPE_BUFFER),
      on_output_data, new OutputAnnouncer{self, kind}, [] (gpointer data) {
        auto *announcer = static_cast<OutputAnnouncer *> (data);
        gst_clear_object (&announcer->pending);
        delete announcer;
      });
  gst_object_unref (pad);
  return stream;
}

static GstPad *
ghost_output (GstCameraSrc *self, GstElement *appsrc, GstStaticPadTemplate *templ)
{
  GstPad *target = gst_element_get_static_pad (appsrc, "src");
  GstPadTemplate *pad_template = gst_static_pad_template_get (templ);
  GstPad *ghost = gst_ghost_pad_new_from_template (templ->name_template, target, pad_template);
  gst_object_unref (pad_template);
  gst_object_unref (target);
  gst_pad_set_active (ghost, TRUE);
  gst_element_add_pad (GST_ELEMENT (self), ghost);
  return ghost;
}

// Creates the audio output the first time the camera has audio.
static void
ensure_audio_output (GstCameraSrc *self)
{
  GstCameraSrcPrivate &p = *self->priv;
  guint latency_ms;
  {
    Lock lock (p.lock);
    if (p.audio.appsrc)
      return;
    latency_ms = p.settings.latency_ms;
  }
  GstElement *appsrc = make_output_appsrc ("audio_output", latency_ms);
  if (!appsrc)
    return;
  GstStream *stream = init_output_stream (self, appsrc, StreamKind::Audio);
  {
    Lock lock (p.lock);
    if (p.audio.appsrc) {  // raced with another stream of the camera
      gst_object_unref (stream);
      gst_object_unref (gst_object_ref_sink (appsrc));
      return;
    }
    p.audio.appsrc = GST_ELEMENT (gst_object_ref (appsrc));
    p.audio.stream = stream;
    p.audio.group_id = p.video.group_id;
  }
  gst_bin_add (GST_BIN (self), appsrc);
  gst_element_sync_state_with_parent (appsrc);
  GstPad *pad = ghost_output (self, appsrc, &audio_template);
  {
    Lock lock (p.lock);
    self->audio_pad = pad;
  }
  GST_INFO_OBJECT (self, "the camera has audio: added the audio pad");
}

// ---- session lifecycle (manager thread) ----------------------------------------

// `in_state_change`: called from the element's own state change, not from
// the manager thread.  `wait`: how long to wait for the chain to stop.
static void
teardown_session (GstCameraSrc *self, bool in_state_change = false,
    std::chrono::milliseconds wait = RETIRE_BOUND)
{
  GstCameraSrcPrivate &p = *self->priv;
  std::vector<GstElement *> elements;
  {
    Lock lock (p.lock);
    p.generation++;
    elements.swap (p.session_elements);
    p.session_is_file = false;
    p.fault.reset ();
    p.fault_generic = false;
    p.fault_origin = nullptr;
    p.session_warning.clear ();
    p.end_of_file = false;
    p.first_frame = false;
    for (Output *out : {&p.video, &p.audio}) {
      // What comes next (fallback or camera) follows a gap, unless this
      // session never sent anything.
      if (out->session_started)
        out->discont = true;
      out->need_keyframe = true;
      out->session_started = false;
    }
  }
  // Hook (handshake.h): out of the bin, then to NULL without waiting for
  // more than `wait`; never under our lock.
  if (!camrelay::camerasrc::retire_chain (GST_BIN (self), std::move (elements),
          !in_state_change, wait, p.retiring) && wait.count () > 0)
    GST_WARNING_OBJECT (self, "the camera's previous chain is still stopping after %d ms: "
        "it stops in the background", static_cast<int> (wait.count ()));
}

// A slate being made: a small pipeline of its own that encodes one "camera
// offline" picture in the background, while the manager goes on.  It knows
// nothing of the element (no callback, no bus handler): the manager looks for
// its picture on every wake-up, and nobody ever waits for it to stop, since
// an encoder cannot be interrupted (x265 at 1080p takes a second on a busy
// machine).  Its state change to NULL runs from GStreamer's thread pool
// (gst_deinit waits for that pool).
struct SlateBuild {
  ElementPtr pipeline;
  ElementPtr sink;
  std::string codec;
  gint width = 0;
  gint height = 0;
  Clock::time_point deadline = Clock::time_point::max ();
};

// Lets go of the slate pipeline: to NULL from GStreamer's thread pool.
static void
drop_slate (SlateBuild &build)
{
  if (build.pipeline)
    gst_element_call_async (build.pipeline.get (), [] (GstElement *pipeline, gpointer) {
      gst_element_set_state (pipeline, GST_STATE_NULL);
    }, nullptr, nullptr);
  build = SlateBuild ();
}

// Takes the slate's picture when it is there, or gives up on a slate that
// failed or is late (manager thread).
static void
poll_slate (GstCameraSrc *self, SlateBuild &build)
{
  GstCameraSrcPrivate &p = *self->priv;
  if (!build.pipeline)
    return;
  if (GstSample *slate = gst_app_sink_try_pull_sample (GST_APP_SINK (build.sink.get ()), 0)) {
    GST_DEBUG_OBJECT (self, "slate made");
    drop_slate (build);
    Lock lock (p.lock);
    if (p.slate)
      gst_sample_unref (p.slate);
    p.slate = slate;
    return;
  }
  camrelay::BusPtr bus{gst_element_get_bus (build.pipeline.get ())};
  camrelay::MessagePtr error{gst_bus_pop_filtered (bus.get (), GST_MESSAGE_ERROR)};
  if (error || Clock::now () >= build.deadline) {
    GError *gerror = nullptr;
    if (error)
      gst_message_parse_error (error.get (), &gerror, nullptr);
    GST_WARNING_OBJECT (self, "no slate (%s): the fallback repeats the last keyframe",
        gerror ? gerror->message : "too slow");
    g_clear_error (&gerror);
    drop_slate (build);
  }
}

// Starts making a slate in the camera's codec and size, unless the current
// one (or the one being made) already is (manager thread).
static void
start_slate (GstCameraSrc *self, SlateBuild &build)
{
  GstCameraSrcPrivate &p = *self->priv;
  std::string codec;
  gint width, height;
  {
    Lock lock (p.lock);
    if (p.settings.fallback != GST_CAMERA_SRC_FALLBACK_SLATE || p.stats.codec.empty ())
      return;
    codec = p.stats.codec;
    width = p.stats.width;
    height = p.stats.height;
    if (p.slate) {
      const GstStructure *s = gst_caps_get_structure (gst_sample_get_caps (p.slate), 0);
      gint w = 0, h = 0;
      gst_structure_get_int (s, "width", &w);
      gst_structure_get_int (s, "height", &h);
      if (w == width && h == height && gst_structure_has_name (s,
              codec == "h265" ? "video/x-h265" : codec == "jpeg" ? "image/jpeg" : "video/x-h264"))
        return;
    }
  }
  if (build.pipeline) {
    if (build.codec == codec && build.width == width && build.height == height)
      return;
    drop_slate (build);
  }
  const char *encoder = codec == "h265"
      ? "x265enc speed-preset=ultrafast tune=zerolatency key-int-max=1 ! h265parse "
        "config-interval=-1 ! video/x-h265,stream-format=byte-stream,alignment=au"
      : codec == "jpeg" ? "jpegenc ! jpegparse"
                        : "x264enc speed-preset=ultrafast tune=zerolatency key-int-max=1 ! "
                          "h264parse config-interval=-1 ! "
                          "video/x-h264,stream-format=byte-stream,alignment=au";
  GCharPtr description{g_strdup_printf ("videotestsrc num-buffers=1 pattern=black ! "
                                        "video/x-raw,format=I420,width=%d,height=%d,framerate=1/1 ! "
                                        "textoverlay text=\"camera offline\" valignment=center "
                                        "halignment=center font-desc=\"Sans Bold 32\" ! %s ! "
                                        "appsink name=sink sync=false",
      width > 0 ? width : 1280, height > 0 ? height : 720, encoder)};
  GError *error = nullptr;
  ElementPtr pipeline{gst_parse_launch (description.get (), &error)};
  if (!pipeline || error) {
    GST_WARNING_OBJECT (self, "cannot make the slate: %s", error ? error->message : "unknown error");
    g_clear_error (&error);
    return;
  }
  build.sink.reset (gst_bin_get_by_name (GST_BIN (pipeline.get ()), "sink"));
  build.pipeline = std::move (pipeline);
  build.codec = codec;
  build.width = width;
  build.height = height;
  build.deadline = Clock::now () + SLATE_TIMEOUT;
  GST_DEBUG_OBJECT (self, "making a %s slate of %dx%d", codec.c_str (), width, height);
  gst_element_set_state (build.pipeline.get (), GST_STATE_PLAYING);
}

// Sends one fallback picture while the camera is away.
static void
send_fallback (GstCameraSrc *self)
{
  GstCameraSrcPrivate &p = *self->priv;
  const GstClockTime now = running_time_now (GST_ELEMENT (self));
  if (!GST_CLOCK_TIME_IS_VALID (now))
    return;
  GST_LOG_OBJECT (self, "sending a fallback picture");
  Output &out = p.video;
  std::lock_guard<std::mutex> push (out.push_lock);
  Outgoing outgoing;
  {
    Lock lock (p.lock);
    // The camera is back (its first keyframe went out since the manager
    // decided to send this): a picture now would land amid its frames.
    if (out.session_started)
      return;
    GstBuffer *frame = nullptr;
    GstCaps *caps = nullptr;
    if (p.settings.fallback == GST_CAMERA_SRC_FALLBACK_FREEZE && p.last_keyframe) {
      frame = gst_buffer_copy (p.last_keyframe);
      caps = p.last_keyframe_caps.get ();
    } else if (p.settings.fallback == GST_CAMERA_SRC_FALLBACK_SLATE) {
      if (p.slate && gst_sample_get_buffer (p.slate)) {
        frame = gst_buffer_copy (gst_sample_get_buffer (p.slate));
        caps = gst_sample_get_caps (p.slate);
      } else if (p.last_keyframe) {
        frame = gst_buffer_copy (p.last_keyframe);
        caps = p.last_keyframe_caps.get ();
      }
    }
    if (!frame)
      return;
    GST_BUFFER_FLAG_UNSET (frame, GST_BUFFER_FLAG_DELTA_UNIT);
    GST_BUFFER_DURATION (frame) = GST_CLOCK_TIME_NONE;
    // Stamped `latency` behind the clock, as late as the element says its
    // buffers may be: the camera's frames come out at most that far behind,
    // so a returning camera's first frames follow the last picture without
    // moving the session's timeline (and the video away from the audio).
    const GstClockTime latency = p.settings.latency_ms * GST_MSECOND;
    const GstClockTime ts = now > latency ? now - latency : 0;
    if (!prepare_buffer (out, nullptr, frame, caps, ts, ts, false, outgoing))
      return;
    p.stats.fallback_frames++;
  }
  push_outgoing (self, outgoing);
}

static void
warn_fault (GstCameraSrc *self, const std::string &reason, const std::string &location)
{
  GstCameraSrcPrivate &p = *self->priv;
  {
    Lock lock (p.lock);
    const auto now = Clock::now ();
    if (p.last_warning && now - *p.last_warning < WARNING_INTERVAL)
      return;
    p.last_warning = now;
  }
  GST_ELEMENT_WARNING (self, RESOURCE, READ, ("Camera %s: %s", location.c_str (), reason.c_str ()),
      ("reconnecting with backoff"));
}

// souphttpsrc 1.22 with libsoup 3 says only "Internal data stream error"
// when it cannot reach the server: why is in its debug log.  To tell the
// user, connect to the camera's host and port the way libsoup does (GIO's
// resolver and proxy settings), for at most DIAGNOSIS_TIMEOUT_MS, and
// return GIO's reason ("Error resolving ...", "Could not connect to ...:
// Connection refused").  Manager thread; `cancellable` also stops it.
static std::optional<std::string>
diagnose_http (const std::string &uri, GCancellable *cancellable)
{
  // An explicit proxy (souphttpsrc's default one) is not where we would go.
  for (const char *variable : {"http_proxy", "HTTP_PROXY"}) {
    const gchar *proxy = g_getenv (variable);
    if (proxy && *proxy)
      return std::nullopt;
  }
  GMainContext *context = g_main_context_new ();
  g_main_context_push_thread_default (context);
  struct Outcome {
    bool done = false;
    GError *error = nullptr;
  } outcome;
  camrelay::GObjectPtr<GSocketClient> client{g_socket_client_new ()};
  g_socket_client_connect_to_uri_async (client.get (), uri.c_str (), 80, cancellable,
      [] (GObject *source, GAsyncResult *result, gpointer data) {
        auto *outcome = static_cast<Outcome *> (data);
        GSocketConnection *connection = g_socket_client_connect_to_uri_finish (
            G_SOCKET_CLIENT (source), result, &outcome->error);
        if (connection)
          g_object_unref (connection);
        outcome->done = true;
      }, &outcome);
  GSource *timeout = g_timeout_source_new (DIAGNOSIS_TIMEOUT_MS);
  g_source_set_callback (timeout, [] (gpointer data) {
    g_cancellable_cancel (G_CANCELLABLE (data));
    return G_SOURCE_REMOVE;
  }, g_object_ref (cancellable), g_object_unref);
  g_source_attach (timeout, context);
  while (!outcome.done)
    g_main_context_iteration (context, TRUE);
  g_source_destroy (timeout);
  g_source_unref (timeout);
  g_main_context_pop_thread_default (context);
  g_main_context_unref (context);
  std::optional<std::string> reason;
  if (outcome.error && !g_error_matches (outcome.error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    reason = outcome.error->message;
  g_clear_error (&outcome.error);
  return reason;
}

// The best reason for a fault whose error said only that the stream stopped
// (manager thread): the warning the session gave before it, or for an HTTP
// camera that never sent video, why it cannot be reached.
static std::string
explain_generic_fault (GstCameraSrc *self, const std::string &reason, const std::string &warning,
    bool had_video, const Settings &settings)
{
  GstCameraSrcPrivate &p = *self->priv;
  if (!warning.empty ())
    return warning + " (then: " + reason + ")";
  const UriParts uri = split_uri (settings.location, settings.user_id, settings.user_pw);
  if (had_video || (uri.scheme != "http" && uri.scheme != "https"))
    return reason;
  GCancellable *cancellable = g_cancellable_new ();
  {
    Lock lock (p.lock);
    if (!p.running) {
      g_object_unref (cancellable);
      return reason;
    }
    p.diagnosis = G_CANCELLABLE (g_object_ref (cancellable));
  }
  std::optional<std::string> diagnosis = diagnose_http (uri.without_userinfo, cancellable);
  {
    Lock lock (p.lock);
    g_clear_object (&p.diagnosis);
  }
  g_object_unref (cancellable);
  if (!diagnosis)
    return reason;
  GST_DEBUG_OBJECT (self, "the camera cannot be reached: %s", diagnosis->c_str ());
  Lock lock (p.lock);
  return redact_text ("cannot reach the camera: " + *diagnosis, settings.location,
      settings.user_id, settings.user_pw);
}

// Cancels a diagnosis under way, if any (lock not held).
static void
cancel_diagnosis (GstCameraSrcPrivate &p)
{
  GCancellable *diagnosis = nullptr;
  {
    Lock lock (p.lock);
    if (p.diagnosis)
      diagnosis = G_CANCELLABLE (g_object_ref (p.diagnosis));
  }
  if (diagnosis) {
    g_cancellable_cancel (diagnosis);
    g_object_unref (diagnosis);
  }
}

// Backoff before attempt `attempt` (1-based): doubling, capped, ±20% jitter.
static guint64
backoff_delay (const Settings &settings, guint attempt, std::mt19937_64 &random)
{
  double delay = static_cast<double> (settings.retry_delay);
  for (guint i = 1; i < attempt && delay < static_cast<double> (settings.retry_delay_max); i++)
    delay *= 2;
  delay = std::min (delay, static_cast<double> (settings.retry_delay_max));
  std::uniform_real_distribution<double> jitter (1.0 - JITTER, 1.0 + JITTER);
  return static_cast<guint64> (
      std::min (delay * jitter (random), static_cast<double> (settings.retry_delay_max)));
}

// The manager thread: owns the state machine and the inner chain.
static void
manager_loop (GstCameraSrc *self)
{
  GstCameraSrcPrivate &p = *self->priv;
  std::mt19937_64 random (std::random_device{}());
  // Deadlines of the manager; NEVER when not set (std::optional trips
  // GCC 12's maybe-uninitialized warning here).
  constexpr Clock::time_point NEVER = Clock::time_point::max ();
  Clock::time_point retry_at = Clock::now ();
  Clock::time_point connect_deadline = NEVER;
  Clock::time_point next_fallback = Clock::now ();
  SlateBuild slate;

  while (true) {
    enum class Action { None, Connect, Fault, Loop, Switch, Streaming, Fallback } action =
        Action::None;
    std::string reason;
    bool reason_generic = false;
    std::string warning;
    bool had_video = false;
    Settings settings;
    guint64 generation = 0;
    {
      Lock lock (p.lock);
      // Sleep until the next deadline (at most a tick), or an event.
      auto wake_at = std::min ({Clock::now () + MANAGER_TICK, retry_at, connect_deadline,
          slate.deadline});
      if (p.state != GST_CAMERA_SRC_STATE_STREAMING
          && p.settings.fallback != GST_CAMERA_SRC_FALLBACK_NONE)
        wake_at = std::min (wake_at, next_fallback);
      p.wake.wait_until (lock, wake_at, [&p] {
        return !p.running || p.location_changed || p.fault || p.end_of_file || p.first_frame;
      });
      if (!p.running)
        break;
      if (slate.pipeline) {
        lock.unlock ();
        poll_slate (self, slate);
        lock.lock ();
      }
      const auto now = Clock::now ();
      settings = p.settings;
      generation = p.generation;
      const bool failed = p.state == GST_CAMERA_SRC_STATE_FAILED;
      if (p.location_changed) {
        p.location_changed = false;
        action = Action::Switch;
      } else if (failed) {
        action = Action::None;
      } else if (p.fault) {
        action = Action::Fault;
        reason = *p.fault;
        reason_generic = p.fault_generic;
        warning = p.session_warning;
        had_video = p.video.session_started;
        p.fault.reset ();
      } else if (p.end_of_file) {
        p.end_of_file = false;
        action = Action::Loop;
      } else if (p.first_frame) {
        p.first_frame = false;
        action = Action::Streaming;
      } else if (p.state == GST_CAMERA_SRC_STATE_CONNECTING && now > connect_deadline) {
        action = Action::Fault;
        reason = p.handshake.timeout_reason (settings.connect_timeout);  // hook: names the step
      } else if (p.state == GST_CAMERA_SRC_STATE_STREAMING && settings.timeout > 0
          && p.stats.last_frame && now - *p.stats.last_frame > ns (settings.timeout)) {
        action = Action::Fault;
        reason = "stalled: no video for " + std::to_string (settings.timeout / GST_MSECOND) + " ms";
      } else if (now >= retry_at) {
        action = Action::Connect;
      } else if (p.state != GST_CAMERA_SRC_STATE_STREAMING
          && settings.fallback != GST_CAMERA_SRC_FALLBACK_NONE && now >= next_fallback) {
        action = Action::Fallback;
        next_fallback = now + ns (settings.fallback_interval);
      }
    }

    switch (action) {
      case Action::None:
        break;
      case Action::Switch: {
        teardown_session (self);
        drop_slate (slate);
        StateChange change;
        {
          Lock lock (p.lock);
          // Another camera: what the old one looked like is no fallback for
          // it, and no fact about it.
          gst_clear_buffer (&p.last_keyframe);
          p.last_keyframe_caps.reset ();
          if (p.slate) {
            gst_sample_unref (p.slate);
            p.slate = nullptr;
          }
          p.stats.width = p.stats.height = 0;
          p.stats.fps_n = 0;
          p.stats.fps_d = 1;
          p.stats.codec.clear ();
          p.stats.bitrate_window.clear ();
          p.attempt = 0;
          change = set_state_locked (p, GST_CAMERA_SRC_STATE_CONNECTING, "location changed");
        }
        announce (self, change);
        retry_at = Clock::now ();
        connect_deadline = NEVER;
        break;
      }
      case Action::Loop:
        GST_DEBUG_OBJECT (self, "end of file: replaying from the start");
        teardown_session (self);
        retry_at = Clock::now ();
        break;
      case Action::Streaming: {
        StateChange change;
        {
          Lock lock (p.lock);
          if (p.state == GST_CAMERA_SRC_STATE_STREAMING)
            break;
          p.stats.connects++;
          change = set_state_locked (p, GST_CAMERA_SRC_STATE_STREAMING, "receiving video");
        }
        connect_deadline = NEVER;
        announce (self, change);
        break;
      }
      case Action::Fault: {
        GST_INFO_OBJECT (self, "camera fault: %s", reason.c_str ());
        const std::string location = redact_uri (settings.location);
        // Hook (handshake.h): the old chain stops during the backoff, so that
        // `reconnecting` is announced as the fault is found.
        teardown_session (self, false, std::chrono::milliseconds (0));
        if (reason_generic)
          reason = explain_generic_fault (self, reason, warning, had_video, settings);
        StateChange change;
        bool give_up = false;
        guint64 delay = 0;
        bool was_streaming;
        {
          Lock lock (p.lock);
          const auto now = Clock::now ();
          was_streaming = p.state == GST_CAMERA_SRC_STATE_STREAMING;
          p.stats.last_error = reason;
          if (p.state == GST_CAMERA_SRC_STATE_STREAMING && p.streaming_since
              && now - *p.streaming_since >= ns (settings.retry_reset_time))
            p.attempt = 0;
          p.attempt++;
          p.stats.reconnects++;
          if (settings.max_retries >= 0 && p.attempt > static_cast<guint> (settings.max_retries)) {
            give_up = true;
            change = set_state_locked (p, GST_CAMERA_SRC_STATE_FAILED, reason);
          } else {
            delay = backoff_delay (settings, p.attempt, random);
            change = set_state_locked (p, GST_CAMERA_SRC_STATE_RECONNECTING, reason, delay);
          }
        }
        announce (self, change);
        connect_deadline = NEVER;
        if (give_up) {
          retry_at = NEVER;
          GST_ELEMENT_ERROR (self, RESOURCE, FAILED,
              ("Camera %s failed: %s", location.c_str (), reason.c_str ()),
              ("gave up after max-retries=%d", settings.max_retries));
          break;
        }
        warn_fault (self, reason, location);
        retry_at = Clock::now () + ns (delay);
        // The fallback pictures start one interval after the camera is lost
        // and keep their pace through failed attempts.
        if (was_streaming) {
          next_fallback = Clock::now () + ns (settings.fallback_interval);
          start_slate (self, slate);
        }
        break;
      }
      case Action::Connect: {
        // Hook (handshake.h): earlier chains stuck on this camera hold a
        // thread and a connection each; wait for them rather than add more.
        if (p.retiring->load () >= MAX_RETIRING) {
          GST_INFO_OBJECT (self, "%u earlier connections still closing: attempt postponed",
              p.retiring->load ());
          retry_at = Clock::now () + ns (settings.retry_delay_max);
          break;
        }
        retry_at = NEVER;
        StateChange change;
        bool changed = false;
        {
          Lock lock (p.lock);
          p.session_is_file = g_str_has_prefix (settings.location.c_str (), "file:");
          if (p.state != GST_CAMERA_SRC_STATE_CONNECTING && p.state != GST_CAMERA_SRC_STATE_STREAMING) {
            change = set_state_locked (p, GST_CAMERA_SRC_STATE_CONNECTING,
                p.attempt ? "retrying after: " + p.stats.last_error : "starting");
            changed = true;
          }
        }
        if (changed)
          announce (self, change);
        connect_deadline = Clock::now () + ns (settings.connect_timeout);
        // Hook (handshake.h): a new attempt, its steps followed from here.
        p.handshake.start (g_ascii_strncasecmp (settings.location.c_str (), "rtsp", 4) == 0);
        if (auto error = build_session (self, generation, settings))
          report_fault (self, generation, *error);
        break;
      }
      case Action::Fallback:
        send_fallback (self);
        break;
    }
  }
  // Stopping: a slate still being made is not waited for.
  drop_slate (slate);
}

static void
start_manager (GstCameraSrc *self)
{
  GstCameraSrcPrivate &p = *self->priv;
  StateChange change;
  {
    Lock lock (p.lock);
    if (p.running)
      return;
    p.running = true;
    p.attempt = 0;
    p.fault.reset ();
    p.location_changed = false;
    change = set_state_locked (p, GST_CAMERA_SRC_STATE_CONNECTING, "starting");
  }
  announce (self, change);
  p.manager = std::thread (manager_loop, self);
}

static void
stop_manager (GstCameraSrc *self)
{
  GstCameraSrcPrivate &p = *self->priv;
  {
    Lock lock (p.lock);
    if (!p.running && !p.manager.joinable ())
      return;
    p.running = false;
    p.wake.notify_all ();
  }
  cancel_diagnosis (p);
  if (p.manager.joinable ())
    p.manager.join ();
  teardown_session (self, true);
  StateChange change;
  {
    Lock lock (p.lock);
    if (p.state == GST_CAMERA_SRC_STATE_STOPPED)
      return;
    change = set_state_locked (p, GST_CAMERA_SRC_STATE_STOPPED, "stopped");
  }
  announce (self, change);
}

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

  // Hook (handshake.h): rtspsrc says which command completed.
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
      from_audio = p.audio.appsrc && src == GST_OBJECT (p.audio.appsrc);
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
      for (GstElement *appsrc : {p.video.appsrc, p.audio.appsrc})
        if (appsrc)
          outputs.push_back (camrelay::ref_object (appsrc));
      for (GstElement *e : p.session_elements)
        session.push_back (camrelay::ref_object (e));
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
        std::string reason = error ? error->message : "unknown error";
        // The debug text often says what really happened ("Connection
        // refused", "Unauthorized"): keep its last line.
        if (debug) {
          std::string detail = debug;
          size_t at = detail.find_last_of ('\n');
          if (at != std::string::npos)
            detail = detail.substr (at + 1);
          if (!detail.empty ())
            reason += " (" + detail + ")";
        }
        // "Internal data stream error": a loop that stopped, whose cause (if
        // anyone said it) is in another message.
        origin.generic = error && error->domain == GST_STREAM_ERROR
            && error->code == GST_STREAM_ERROR_FAILED;
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
          ("set the location property to an rtsp://, rtsps://, http(s)://, file:// or "
           "test:// URI"));
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
          "camerasrc: unsupported URI '%s' (expected rtsp, rtsps, http, https, file or test)",
          redact_uri (uri).c_str ());
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
      for (GstElement *appsrc : {p.video.appsrc, p.audio.appsrc})
        if (appsrc)
          latency_targets.push_back (camrelay::ref_object (appsrc));
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
      break;
    case PROP_CONNECT_TIMEOUT:
      s.connect_timeout = g_value_get_uint64 (value);
      break;
    case PROP_FALLBACK:
      s.fallback = static_cast<GstCameraSrcFallback> (g_value_get_enum (value));
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
  const auto now = Clock::now ();
  auto streaming = s.streaming_time;
  if (p.state == GST_CAMERA_SRC_STATE_STREAMING && p.streaming_since)
    streaming += now - *p.streaming_since;
  auto down = s.down_time;
  if (p.down_since)
    down += now - *p.down_since;
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
  return gst_structure_new (STATS_NAME,
      "connects", G_TYPE_UINT64, s.connects,
      "reconnects", G_TYPE_UINT64, s.reconnects,
      "attempt", G_TYPE_UINT, p.attempt,
      "bytes", G_TYPE_UINT64, s.bytes,
      "frames", G_TYPE_UINT64, s.frames,
      "keyframes", G_TYPE_UINT64, s.keyframes,
      "fallback-frames", G_TYPE_UINT64, s.fallback_frames,
      "last-error", G_TYPE_STRING, s.last_error.c_str (),
      "streaming-time", G_TYPE_UINT64, static_cast<guint64> (streaming.count ()),
      "down-time", G_TYPE_UINT64, static_cast<guint64> (down.count ()),
      "last-frame-age", G_TYPE_UINT64, age,
      "width", G_TYPE_INT, s.width,
      "height", G_TYPE_INT, s.height,
      "framerate", GST_TYPE_FRACTION, s.fps_n, s.fps_d,
      "bitrate", G_TYPE_UINT64, bitrate,
      "codec", G_TYPE_STRING, s.codec.c_str (), nullptr);
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
  static const gchar *protocols[] = {"rtsp", "rtsps", "http", "https", "file", "test", nullptr};
  return protocols;
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
      "fallback", "fallback-interval", nullptr};
  return g_strdupv (const_cast<gchar **> (names));
}

static void
gst_camera_src_preset_init (gpointer g_iface, gpointer)
{
  auto *iface = static_cast<GstPresetInterface *> (g_iface);
  iface->get_property_names = gst_camera_src_preset_get_property_names;
}

// ---- GObject --------------------------------------------------------------------

static void
gst_camera_src_finalize (GObject *object)
{
  GstCameraSrc *self = GST_CAMERA_SRC (object);
  GstCameraSrcPrivate *p = self->priv;
  for (GstElement *e : p->session_elements)
    gst_object_unref (e);
  gst_clear_object (&p->video.appsrc);
  gst_clear_object (&p->audio.appsrc);
  gst_clear_object (&p->video.stream);
  gst_clear_object (&p->audio.stream);
  gst_clear_buffer (&p->last_keyframe);
  if (p->slate)
    gst_sample_unref (p->slate);
  delete p;
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
          "RTSP jitter buffer latency, and the latency camerasrc reports, in milliseconds",
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

  gst_element_class_add_static_pad_template (element_class, &video_template);
  gst_element_class_add_static_pad_template (element_class, &audio_template);
  gst_element_class_set_static_metadata (element_class, "Resilient camera source",
      "Source/Video/Network",
      "Connects to an IP camera and delivers its encoded stream, reconnecting on every fault",
      "camrelay developers");

  element_class->change_state = gst_camera_src_change_state;
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
  GstElement *appsrc = make_output_appsrc ("video_output", DEFAULT_LATENCY_MS);
  self->priv->video.appsrc = GST_ELEMENT (gst_object_ref (appsrc));
  self->priv->video.stream = init_output_stream (self, appsrc, StreamKind::Video);
  self->priv->video.group_id = gst_util_group_id_next ();
  gst_bin_add (GST_BIN (self), appsrc);
  self->video_pad = ghost_output (self, appsrc, &video_template);
  self->audio_pad = nullptr;
}
