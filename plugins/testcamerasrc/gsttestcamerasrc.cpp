/**
 * SECTION:element-testcamerasrc
 * @title: testcamerasrc
 *
 * A live synthetic IP camera, for `test://` URIs: the embedded default
 * camera of camrelay and the basis of its tests.  It needs no network.
 *
 * Inside, a moving test pattern (`videotestsrc is-live=true pattern=ball`)
 * with the wall-clock time and the camera name burnt in (`clockoverlay`) is
 * encoded the way a camera would (`x264enc`, `x265enc` or `jpegenc`) and
 * parsed (`h264parse`/`h265parse config-interval=-1`, `jpegparse`).  The
 * always `video` pad carries byte-stream, access-unit aligned H.264 or H.265
 * whose keyframes carry their parameter sets, or parsed JPEG, with live
 * timestamps.  With audio requested, a sometimes `audio` pad is added when
 * the element starts (READY to PAUSED) and removed when it stops, followed
 * by `no-more-pads`: `audiotestsrc is-live=true` encoded as AAC, G.711 or
 * Opus.
 *
 * ## URI
 *
 * `test://NAME?key=value&key=value...`: NAME is only shown in the picture.
 * Every key is also a property of the same name; setting `location` sets
 * every property (absent keys take their defaults) and reading it back gives
 * the canonical URI of the current properties (non-default keys only, in a
 * fixed order).  An unknown key, a repeated key or a bad value refuses the
 * URI with a #GST_URI_ERROR_BAD_URI error that names the key.
 *
 * - `width`, `height`: picture size in pixels, even, 16 to 8192 (1280x720)
 * - `framerate`: frames per second, `N` or `N/D`, 0.1 to 240 (30)
 * - `gop`: frames from one keyframe to the next, 1 to 3000 (30)
 * - `bitrate`: kbit/s, 16 to 100000 (2000); ignored by `jpeg`
 * - `codec`: `h264`, `h265` or `jpeg` (h264)
 * - `audio`: `none`, `aac`, `alaw`, `mulaw` or `opus` (none)
 *
 * Faults, in seconds (a decimal number such as `2` or `0.5`) of running
 * time counted from the first buffer of the stream (video or audio); 0 or
 * absent means off:
 * - `drop-after=N`: after N s, post one GST_ELEMENT_ERROR (RESOURCE, READ,
 *   "connection dropped (simulated)") and send nothing more, like a camera
 *   whose connection dropped.
 * - `stall-after=N`, `stall-duration=M`: send nothing from N s for M s
 *   (0 or absent: forever), without any error, like a connection that stays
 *   open but carries no data.
 * - `resize-every=N`: switch between `width`x`height` and
 *   `resize-width`x`resize-height` every N s (a new keyframe, parameter sets
 *   and caps each time).  `resize-width`/`resize-height` default to half the
 *   size (0), rounded down to even.
 * - `garbage-after=N`, `garbage-duration=M`: from N s for M s (0 or absent:
 *   forever), random bytes replace the encoder's output in front of the
 *   parser, which finds no frames in them.  The bytes never contain a zero
 *   or 0xFF byte, so that no H.264/H.265 start code nor JPEG marker can
 *   appear by chance.
 *
 * All faults stop the audio too (garbage included: random bytes would only
 * teach an audio parser to post errors, which real cameras do not provoke).
 * When a stall or garbage ends, the first buffer that goes out again is
 * flagged DISCONT and a keyframe is requested from the encoder, so that the
 * picture recovers within a frame or two; the buffers until that keyframe
 * are the delta units a real camera would send.
 *
 * Faults are driven by the timestamps of the stream itself, in the streaming
 * threads that carry it: no timer, no thread of our own, nothing to cancel
 * when the element stops.  Properties can only be changed in the NULL and
 * READY states; they take effect when the element next starts, and every
 * start is a new stream whose fault times count from its first buffer.
 *
 * ## Example launch lines
 * |[
 * gst-launch-1.0 testcamerasrc location="test://cam1?width=640&height=360&gop=15" ! \
 *     avdec_h264 ! videoconvert ! autovideosink
 * ]| Shows a 640x360 camera with a keyframe every half second.
 * |[
 * gst-launch-1.0 testcamerasrc location="test://door?codec=h265&audio=aac" name=cam \
 *     cam.video ! queue ! avdec_h265 ! videoconvert ! autovideosink \
 *     cam.audio ! queue ! avdec_aac ! audioconvert ! autoaudiosink
 * ]| An H.265 camera with AAC sound.
 * |[
 * gst-launch-1.0 testcamerasrc location="test://flaky?resize-every=2&drop-after=7" ! \
 *     avdec_h264 ! videoconvert ! autovideosink
 * ]| Switches between 1280x720 and 640x360 every 2 s, and fails after 7 s.
 */

#include "testcamerasrc/gsttestcamerasrc.h"

#include <atomic>
#include <cstring>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "common/gstref.h"

GST_DEBUG_CATEGORY_STATIC (test_camera_src_debug);
GST_DEBUG_CATEGORY_STATIC (test_camera_src_dataflow);
#define GST_CAT_DEFAULT test_camera_src_debug

namespace {

constexpr guint MIN_DIMENSION = 16;
constexpr guint MAX_DIMENSION = 8192;
constexpr guint DEFAULT_WIDTH = 1280;
constexpr guint DEFAULT_HEIGHT = 720;
constexpr gint DEFAULT_FPS_N = 30;
constexpr gint DEFAULT_FPS_D = 1;
constexpr double MIN_FRAMERATE = 0.1;
constexpr double MAX_FRAMERATE = 240.0;
constexpr guint MAX_GOP = 3000;
constexpr guint DEFAULT_GOP = 30;
constexpr guint MIN_BITRATE = 16;
constexpr guint MAX_BITRATE = 100000;
constexpr guint DEFAULT_BITRATE = 2000;
constexpr GstTestCameraSrcCodec DEFAULT_CODEC = GST_TEST_CAMERA_SRC_CODEC_H264;
constexpr GstTestCameraSrcAudio DEFAULT_AUDIO = GST_TEST_CAMERA_SRC_AUDIO_NONE;
// Fault times, in whole seconds at most: a bit over eleven days.
constexpr guint64 MAX_FAULT_SECONDS = 1000000;
constexpr guint64 MAX_FAULT_TIME = MAX_FAULT_SECONDS * GST_SECOND;

constexpr const char *SCHEME = "test";

enum {
  PROP_0,
  PROP_LOCATION,
  PROP_WIDTH,
  PROP_HEIGHT,
  PROP_FRAMERATE,
  PROP_GOP,
  PROP_BITRATE,
  PROP_CODEC,
  PROP_AUDIO,
  PROP_DROP_AFTER,
  PROP_STALL_AFTER,
  PROP_STALL_DURATION,
  PROP_RESIZE_EVERY,
  PROP_RESIZE_WIDTH,
  PROP_RESIZE_HEIGHT,
  PROP_GARBAGE_AFTER,
  PROP_GARBAGE_DURATION,
};

GstStaticPadTemplate video_template = GST_STATIC_PAD_TEMPLATE ("video", GST_PAD_SRC,
    GST_PAD_ALWAYS,
    GST_STATIC_CAPS ("video/x-h264, stream-format = (string) byte-stream, "
                     "alignment = (string) au; "
                     "video/x-h265, stream-format = (string) byte-stream, "
                     "alignment = (string) au; "
                     "image/jpeg"));
GstStaticPadTemplate audio_template = GST_STATIC_PAD_TEMPLATE ("audio", GST_PAD_SRC,
    GST_PAD_SOMETIMES,
    GST_STATIC_CAPS ("audio/mpeg, mpegversion = (int) 4; audio/x-alaw; audio/x-mulaw; "
                     "audio/x-opus"));

// Everything a test:// URI says.  Times in nanoseconds, 0 = off (or, for a
// duration, forever).
struct Settings {
  std::string name;  // NAME of the URI, as written (percent-encoded)
  guint width = DEFAULT_WIDTH;
  guint height = DEFAULT_HEIGHT;
  gint fps_n = DEFAULT_FPS_N;
  gint fps_d = DEFAULT_FPS_D;
  guint gop = DEFAULT_GOP;
  guint bitrate = DEFAULT_BITRATE;  // kbit/s
  GstTestCameraSrcCodec codec = DEFAULT_CODEC;
  GstTestCameraSrcAudio audio = DEFAULT_AUDIO;
  guint64 drop_after = 0;
  guint64 stall_after = 0;
  guint64 stall_duration = 0;
  guint64 resize_every = 0;
  guint resize_width = 0;   // 0 = half of width
  guint resize_height = 0;  // 0 = half of height
  guint64 garbage_after = 0;
  guint64 garbage_duration = 0;

  guint resized_width () const { return resize_width ? resize_width : (width / 2) & ~1u; }
  guint resized_height () const { return resize_height ? resize_height : (height / 2) & ~1u; }
};

// The segment of one encoder's output, to turn its PTS into running time:
// x264enc shifts its timestamps by 1000 hours (and its segment with them), so
// the PTS of two streams cannot be compared.
struct StreamSegment {
  GstSegment segment;
  StreamSegment () { gst_segment_init (&segment, GST_FORMAT_TIME); }
};

// What the video streaming thread remembers between buffers.
struct VideoFaultState {
  StreamSegment segment;
  bool resized = false;
  bool interrupted = false;  // inside a stall or garbage: resume with DISCONT + keyframe
  bool garbage_logged = false;
  std::minstd_rand random{0x7e57ca3u};
};

// What the audio streaming thread remembers between buffers.
struct AudioFaultState {
  StreamSegment segment;
  bool interrupted = false;
};

const char *
enum_nick (GType type, gint value)
{
  GEnumClass *klass = static_cast<GEnumClass *> (g_type_class_ref (type));
  GEnumValue *enum_value = g_enum_get_value (klass, value);
  const char *nick = enum_value ? enum_value->value_nick : "?";
  g_type_class_unref (klass);  // the class of a static enum type is never freed
  return nick;
}

}  // namespace

// Shared between the application, the state-change thread and the
// streaming threads.
struct GstTestCameraSrcPrivate {
  // Guards `settings`, `location_error` and `running`.
  std::mutex lock;
  Settings settings;
  std::string location_error;  // why the last `location` set was refused; "" if it was not
  bool running = false;        // between READY->PAUSED and PAUSED->READY

  // The session: written by the state-change thread while no streaming
  // thread of ours exists (start, before the children run; stop, after
  // they reached READY), only read by the streaming threads in between.
  Settings active;
  std::vector<GstElement *> children;  // owned by the bin
  GstElement *video_size = nullptr;    // the raw-video capsfilter that resizing changes
  GstPad *audio_pad = nullptr;         // our ghost pad, owned by the element

  // Faults: the origin of fault times is the running time of the first
  // buffer of either stream; `dropped` once drop-after fired, in any stream.
  std::atomic<GstClockTime> origin{GST_CLOCK_TIME_NONE};
  std::atomic<bool> dropped{false};
  VideoFaultState video;  // video streaming thread only
  AudioFaultState audio;  // audio streaming thread only
};

struct _GstTestCameraSrc {
  GstBin parent;

  GstPad *video_pad;  // always ghost pad; its target is set while started
  GstTestCameraSrcPrivate *priv;
};

static void gst_test_camera_src_uri_handler_init (gpointer g_iface, gpointer iface_data);

#define gst_test_camera_src_parent_class parent_class
G_DEFINE_TYPE_WITH_CODE (GstTestCameraSrc, gst_test_camera_src, GST_TYPE_BIN,
    G_IMPLEMENT_INTERFACE (GST_TYPE_URI_HANDLER, gst_test_camera_src_uri_handler_init);
    GST_DEBUG_CATEGORY_INIT (test_camera_src_debug, "testcamerasrc", 0,
        "testcamerasrc: synthetic live camera");
    GST_DEBUG_CATEGORY_INIT (test_camera_src_dataflow, "testcamerasrc_dataflow", 0,
        "testcamerasrc: per-buffer fault decisions"));

GST_ELEMENT_REGISTER_DEFINE (testcamerasrc, "testcamerasrc", GST_RANK_NONE,
    GST_TYPE_TEST_CAMERA_SRC);

GType
gst_test_camera_src_codec_get_type (void)
{
  static gsize type_id = 0;
  static const GEnumValue values[] = {
    {GST_TEST_CAMERA_SRC_CODEC_H264, "H.264", "h264"},
    {GST_TEST_CAMERA_SRC_CODEC_H265, "H.265", "h265"},
    {GST_TEST_CAMERA_SRC_CODEC_JPEG, "Motion JPEG", "jpeg"},
    {0, nullptr, nullptr},
  };
  if (g_once_init_enter (&type_id)) {
    GType type = g_enum_register_static ("GstTestCameraSrcCodec", values);
    g_once_init_leave (&type_id, type);
  }
  return static_cast<GType> (type_id);
}

GType
gst_test_camera_src_audio_get_type (void)
{
  static gsize type_id = 0;
  static const GEnumValue values[] = {
    {GST_TEST_CAMERA_SRC_AUDIO_NONE, "No audio", "none"},
    {GST_TEST_CAMERA_SRC_AUDIO_AAC, "AAC-LC, 16 kHz mono", "aac"},
    {GST_TEST_CAMERA_SRC_AUDIO_ALAW, "G.711 A-law, 8 kHz mono", "alaw"},
    {GST_TEST_CAMERA_SRC_AUDIO_MULAW, "G.711 mu-law, 8 kHz mono", "mulaw"},
    {GST_TEST_CAMERA_SRC_AUDIO_OPUS, "Opus, 48 kHz mono", "opus"},
    {0, nullptr, nullptr},
  };
  if (g_once_init_enter (&type_id)) {
    GType type = g_enum_register_static ("GstTestCameraSrcAudio", values);
    g_once_init_leave (&type_id, type);
  }
  return static_cast<GType> (type_id);
}

namespace {

using Lock = std::lock_guard<std::mutex>;

// ---- the URI ---------------------------------------------------------------

const char *const KNOWN_KEYS = "width, height, framerate, gop, bitrate, codec, audio, "
                               "drop-after, stall-after, stall-duration, resize-every, "
                               "resize-width, resize-height, garbage-after, garbage-duration";

G_GNUC_PRINTF (4, 5) bool
refuse (GError **error, const char *key, const char *value, const char *expected, ...)
{
  va_list args;
  va_start (args, expected);
  camrelay::GCharPtr what{g_strdup_vprintf (expected, args)};
  va_end (args);
  g_set_error (error, GST_URI_ERROR, GST_URI_ERROR_BAD_URI,
      "Invalid test:// URI: bad value '%s' for key '%s': expected %s", value, key, what.get ());
  return false;
}

bool
parse_dimension (const char *value, bool zero_allowed, guint &out)
{
  guint64 number = 0;
  if (!g_ascii_string_to_unsigned (value, 10, 0, MAX_DIMENSION, &number, nullptr))
    return false;
  if (number == 0)
    return zero_allowed ? (out = 0, true) : false;
  if (number < MIN_DIMENSION || number % 2 != 0)
    return false;
  out = static_cast<guint> (number);
  return true;
}

bool
parse_uint (const char *value, guint min, guint max, guint &out)
{
  guint64 number = 0;
  if (!g_ascii_string_to_unsigned (value, 10, min, max, &number, nullptr))
    return false;
  out = static_cast<guint> (number);
  return true;
}

// `N` or `N/D`, within MIN_FRAMERATE..MAX_FRAMERATE.
bool
parse_framerate (const char *value, gint &fps_n, gint &fps_d)
{
  const char *slash = std::strchr (value, '/');
  std::string numerator = slash ? std::string (value, slash - value) : std::string (value);
  guint64 n = 0, d = 1;
  if (!g_ascii_string_to_unsigned (numerator.c_str (), 10, 1, G_MAXINT, &n, nullptr))
    return false;
  if (slash && !g_ascii_string_to_unsigned (slash + 1, 10, 1, G_MAXINT, &d, nullptr))
    return false;
  double rate = static_cast<double> (n) / static_cast<double> (d);
  if (rate < MIN_FRAMERATE || rate > MAX_FRAMERATE)
    return false;
  fps_n = static_cast<gint> (n);
  fps_d = static_cast<gint> (d);
  return true;
}

// A decimal number of seconds (`2`, `0.5`, `1.25`; no sign nor exponent),
// converted exactly to nanoseconds.
bool
parse_seconds (const char *value, guint64 &out)
{
  const char *dot = std::strchr (value, '.');
  std::string whole = dot ? std::string (value, dot - value) : std::string (value);
  guint64 seconds = 0;
  if (!g_ascii_string_to_unsigned (whole.c_str (), 10, 0, MAX_FAULT_SECONDS, &seconds, nullptr))
    return false;
  guint64 nanoseconds = 0;
  if (dot) {
    const char *digits = dot + 1;
    size_t count = std::strlen (digits);
    if (count == 0 || count > 9)
      return false;
    for (size_t i = 0; i < 9; ++i) {
      char c = i < count ? digits[i] : '0';
      if (!g_ascii_isdigit (c))
        return false;
      nanoseconds = nanoseconds * 10 + static_cast<guint64> (c - '0');
    }
  }
  guint64 total = seconds * GST_SECOND + nanoseconds;
  if (total > MAX_FAULT_TIME)
    return false;
  out = total;
  return true;
}

bool
parse_enum (GType type, const char *value, gint &out)
{
  GEnumClass *klass = static_cast<GEnumClass *> (g_type_class_ref (type));
  GEnumValue *enum_value = g_enum_get_value_by_nick (klass, value);
  if (enum_value)
    out = enum_value->value;
  g_type_class_unref (klass);
  return enum_value != nullptr;
}

std::string
enum_choices (GType type)
{
  GEnumClass *klass = static_cast<GEnumClass *> (g_type_class_ref (type));
  std::string choices;
  for (guint i = 0; i < klass->n_values; ++i) {
    if (!choices.empty ())
      choices += i + 1 == klass->n_values ? " or " : ", ";
    choices += klass->values[i].value_nick;
  }
  g_type_class_unref (klass);
  return choices;
}

// Applies one key=value to `s`; false with `error` set if either is bad.
bool
apply_key (Settings &s, const char *key, const char *value, GError **error)
{
  const char *seconds_expected = "a number of seconds from 0 to 1000000 (e.g. 2 or 0.5)";
  if (!std::strcmp (key, "width") || !std::strcmp (key, "height")) {
    guint &field = key[0] == 'w' ? s.width : s.height;
    if (!parse_dimension (value, false, field))
      return refuse (error, key, value, "an even number of pixels from %u to %u",
          MIN_DIMENSION, MAX_DIMENSION);
  } else if (!std::strcmp (key, "resize-width") || !std::strcmp (key, "resize-height")) {
    guint &field = key[7] == 'w' ? s.resize_width : s.resize_height;
    if (!parse_dimension (value, true, field))
      return refuse (error, key, value, "0 (half the size) or an even number of pixels "
          "from %u to %u", MIN_DIMENSION, MAX_DIMENSION);
  } else if (!std::strcmp (key, "framerate")) {
    if (!parse_framerate (value, s.fps_n, s.fps_d))
      return refuse (error, key, value, "frames per second as N or N/D, from %g to %g",
          MIN_FRAMERATE, MAX_FRAMERATE);
  } else if (!std::strcmp (key, "gop")) {
    if (!parse_uint (value, 1, MAX_GOP, s.gop))
      return refuse (error, key, value, "a number of frames from 1 to %u", MAX_GOP);
  } else if (!std::strcmp (key, "bitrate")) {
    if (!parse_uint (value, MIN_BITRATE, MAX_BITRATE, s.bitrate))
      return refuse (error, key, value, "kbit/s from %u to %u", MIN_BITRATE, MAX_BITRATE);
  } else if (!std::strcmp (key, "codec")) {
    gint codec = 0;
    if (!parse_enum (GST_TYPE_TEST_CAMERA_SRC_CODEC, value, codec))
      return refuse (error, key, value, "%s",
          enum_choices (GST_TYPE_TEST_CAMERA_SRC_CODEC).c_str ());
    s.codec = static_cast<GstTestCameraSrcCodec> (codec);
  } else if (!std::strcmp (key, "audio")) {
    gint audio = 0;
    if (!parse_enum (GST_TYPE_TEST_CAMERA_SRC_AUDIO, value, audio))
      return refuse (error, key, value, "%s",
          enum_choices (GST_TYPE_TEST_CAMERA_SRC_AUDIO).c_str ());
    s.audio = static_cast<GstTestCameraSrcAudio> (audio);
  } else {
    struct TimeKey {
      const char *name;
      guint64 Settings::*field;
    };
    static const TimeKey time_keys[] = {
      {"drop-after", &Settings::drop_after},
      {"stall-after", &Settings::stall_after},
      {"stall-duration", &Settings::stall_duration},
      {"resize-every", &Settings::resize_every},
      {"garbage-after", &Settings::garbage_after},
      {"garbage-duration", &Settings::garbage_duration},
    };
    for (const TimeKey &time_key : time_keys) {
      if (!std::strcmp (key, time_key.name)) {
        if (!parse_seconds (value, s.*time_key.field))
          return refuse (error, key, value, "%s", seconds_expected);
        return true;
      }
    }
    g_set_error (error, GST_URI_ERROR, GST_URI_ERROR_BAD_URI,
        "Invalid test:// URI: unknown key '%s' (known keys: %s)", key, KNOWN_KEYS);
    return false;
  }
  return true;
}

bool
parse_uri (const char *uri, Settings &out, GError **error)
{
  if (!uri) {
    g_set_error (error, GST_URI_ERROR, GST_URI_ERROR_BAD_URI, "Invalid test:// URI: none given");
    return false;
  }
  // The query is split off and decoded here, item by item, so that a bad
  // escape is reported with its key rather than as a bad URI.
  const char *question = std::strchr (uri, '?');
  std::string base = question ? std::string (uri, question - uri) : std::string (uri);
  const char *raw_query = question ? question + 1 : "";
  if (std::strchr (raw_query, '#')) {
    g_set_error (error, GST_URI_ERROR, GST_URI_ERROR_BAD_URI,
        "Invalid test:// URI '%s': a test:// URI has no fragment", uri);
    return false;
  }

  gchar *scheme = nullptr, *userinfo = nullptr, *host = nullptr, *path = nullptr;
  gchar *query = nullptr, *fragment = nullptr;
  gint port = -1;
  camrelay::GErrorPtr split_error;
  GError *raw_split_error = nullptr;
  gboolean split = g_uri_split (base.c_str (), G_URI_FLAGS_ENCODED, &scheme, &userinfo, &host,
      &port, &path, &query, &fragment, &raw_split_error);
  split_error.reset (raw_split_error);
  camrelay::GCharPtr owned[] = {camrelay::GCharPtr{scheme}, camrelay::GCharPtr{userinfo},
      camrelay::GCharPtr{host}, camrelay::GCharPtr{path}, camrelay::GCharPtr{query},
      camrelay::GCharPtr{fragment}};

  if (!split) {
    g_set_error (error, GST_URI_ERROR, GST_URI_ERROR_BAD_URI, "Invalid test:// URI '%s': %s",
        uri, split_error->message);
    return false;
  }
  if (!scheme || g_ascii_strcasecmp (scheme, SCHEME) != 0) {
    g_set_error (error, GST_URI_ERROR, GST_URI_ERROR_UNSUPPORTED_PROTOCOL,
        "Invalid test:// URI '%s': the scheme is not test", uri);
    return false;
  }
  if (userinfo || port != -1 || (path && *path && std::strcmp (path, "/") != 0) || fragment) {
    g_set_error (error, GST_URI_ERROR, GST_URI_ERROR_BAD_URI,
        "Invalid test:// URI '%s': expected test://NAME?key=value&... with no user, port, "
        "path or fragment", uri);
    return false;
  }

  Settings s;
  // NAME as written, not g_uri_split's host: that one is percent-decoded
  // ("a%40b" gives "a@b") and loses the brackets of an IP literal, and
  // build_uri() writes the name back as it is, so that the canonical URI
  // would not parse again.
  if (host) {
    s.name = base.substr (std::strlen (SCHEME) + 3);
    if (path && *path)
      s.name.pop_back ();  // the "/" of "test://NAME/"
  }
  std::vector<std::string> seen;
  camrelay::UniqueRef<gchar *, g_strfreev> items{g_strsplit (raw_query, "&", -1)};
  for (gchar **item = items.get (); *item; ++item) {
    if (**item == '\0')
      continue;  // "a=1&&b=2" or a trailing '&'
    const char *equals = std::strchr (*item, '=');
    std::string raw_key = equals ? std::string (*item, equals - *item) : std::string (*item);
    camrelay::GCharPtr key{g_uri_unescape_string (raw_key.c_str (), nullptr)};
    if (!key || !*key) {
      g_set_error (error, GST_URI_ERROR, GST_URI_ERROR_BAD_URI,
          "Invalid test:// URI: bad query item '%s'", *item);
      return false;
    }
    if (!equals) {
      g_set_error (error, GST_URI_ERROR, GST_URI_ERROR_BAD_URI,
          "Invalid test:// URI: key '%s' has no value (expected %s=VALUE)", key.get (),
          key.get ());
      return false;
    }
    for (const std::string &previous : seen) {
      if (previous == key.get ()) {
        g_set_error (error, GST_URI_ERROR, GST_URI_ERROR_BAD_URI,
            "Invalid test:// URI: key '%s' given twice", key.get ());
        return false;
      }
    }
    seen.emplace_back (key.get ());
    camrelay::GCharPtr value{g_uri_unescape_string (equals + 1, nullptr)};
    if (!value)
      return refuse (error, key.get (), equals + 1, "a correctly percent-encoded value");
    if (!apply_key (s, key.get (), value.get (), error))
      return false;
  }
  out = std::move (s);
  return true;
}

std::string
format_seconds (guint64 ns)
{
  std::string text = std::to_string (ns / GST_SECOND);
  guint64 fraction = ns % GST_SECOND;
  if (fraction) {
    char digits[16];
    g_snprintf (digits, sizeof digits, "%09" G_GUINT64_FORMAT, fraction);
    std::string tail (digits);
    tail.erase (tail.find_last_not_of ('0') + 1);
    text += "." + tail;
  }
  return text;
}

// The canonical URI: non-default keys only, in a fixed order.
std::string
build_uri (const Settings &s)
{
  const Settings defaults;
  std::string query;
  auto add = [&query] (const char *key, const std::string &value) {
    query += query.empty () ? "?" : "&";
    query += key;
    query += "=";
    query += value;
  };
  if (s.width != defaults.width)
    add ("width", std::to_string (s.width));
  if (s.height != defaults.height)
    add ("height", std::to_string (s.height));
  if (s.fps_n != defaults.fps_n || s.fps_d != defaults.fps_d)
    add ("framerate", s.fps_d == 1 ? std::to_string (s.fps_n)
                                   : std::to_string (s.fps_n) + "/" + std::to_string (s.fps_d));
  if (s.gop != defaults.gop)
    add ("gop", std::to_string (s.gop));
  if (s.bitrate != defaults.bitrate)
    add ("bitrate", std::to_string (s.bitrate));
  if (s.codec != defaults.codec)
    add ("codec", enum_nick (GST_TYPE_TEST_CAMERA_SRC_CODEC, s.codec));
  if (s.audio != defaults.audio)
    add ("audio", enum_nick (GST_TYPE_TEST_CAMERA_SRC_AUDIO, s.audio));
  if (s.drop_after)
    add ("drop-after", format_seconds (s.drop_after));
  if (s.stall_after)
    add ("stall-after", format_seconds (s.stall_after));
  if (s.stall_duration)
    add ("stall-duration", format_seconds (s.stall_duration));
  if (s.resize_every)
    add ("resize-every", format_seconds (s.resize_every));
  if (s.resize_width)
    add ("resize-width", std::to_string (s.resize_width));
  if (s.resize_height)
    add ("resize-height", std::to_string (s.resize_height));
  if (s.garbage_after)
    add ("garbage-after", format_seconds (s.garbage_after));
  if (s.garbage_duration)
    add ("garbage-duration", format_seconds (s.garbage_duration));
  return std::string (SCHEME) + "://" + s.name + query;
}

// A dimension set as a property: even, and 0 only where it means "half".
guint
sanitize_dimension (GstTestCameraSrc *self, const char *name, guint value, bool zero_allowed)
{
  if (value == 0 && zero_allowed)
    return 0;
  guint sane = CLAMP (value, MIN_DIMENSION, MAX_DIMENSION) & ~1u;
  if (sane != value)
    GST_WARNING_OBJECT (self, "%s %u is not an even number from %u to %u: using %u", name,
        value, MIN_DIMENSION, MAX_DIMENSION, sane);
  return sane;
}

// ---- faults, in the streaming threads --------------------------------------

// Time since the first buffer of the stream, from a buffer's running time.
GstClockTime
fault_time (GstTestCameraSrcPrivate &p, const StreamSegment &stream, GstBuffer *buffer)
{
  GstClockTime running_time = gst_segment_to_running_time (&stream.segment, GST_FORMAT_TIME,
      GST_BUFFER_PTS (buffer));
  if (!GST_CLOCK_TIME_IS_VALID (running_time))
    return GST_CLOCK_TIME_NONE;
  GstClockTime origin = GST_CLOCK_TIME_NONE;
  if (p.origin.compare_exchange_strong (origin, running_time))
    return 0;
  return running_time > origin ? running_time - origin : 0;
}

// Keeps a stream's segment; true if the probe saw an event, which passes.
bool
track_segment (GstPadProbeInfo *info, StreamSegment &stream)
{
  if (!(GST_PAD_PROBE_INFO_TYPE (info) & GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM))
    return false;
  GstEvent *event = GST_PAD_PROBE_INFO_EVENT (info);
  if (GST_EVENT_TYPE (event) == GST_EVENT_SEGMENT) {
    const GstSegment *segment;
    gst_event_parse_segment (event, &segment);
    if (segment->format == GST_FORMAT_TIME)
      gst_segment_copy_into (segment, &stream.segment);
  }
  return true;
}

bool
in_window (GstClockTime t, guint64 after, guint64 duration)
{
  return after > 0 && t >= after && (duration == 0 || t - after < duration);
}

// drop-after: true once the connection is "dropped"; the first stream to
// get there posts the one error.
bool
connection_dropped (GstTestCameraSrc *self, GstClockTime t)
{
  GstTestCameraSrcPrivate &p = *self->priv;
  if (p.dropped.load ())
    return true;
  if (p.active.drop_after == 0 || t < p.active.drop_after)
    return false;
  if (!p.dropped.exchange (true)) {
    GST_INFO_OBJECT (self, "drop-after reached at %" GST_TIME_FORMAT ": dropping the connection",
        GST_TIME_ARGS (t));
    GST_ELEMENT_ERROR (self, RESOURCE, READ, ("connection dropped (simulated)"),
        ("drop-after=%s s reached", format_seconds (p.active.drop_after).c_str ()));
  }
  return true;
}

GstCaps *
raw_video_caps (const Settings &s, bool resized)
{
  return gst_caps_new_simple ("video/x-raw", "format", G_TYPE_STRING, "I420", "width",
      G_TYPE_INT, static_cast<gint> (resized ? s.resized_width () : s.width), "height",
      G_TYPE_INT, static_cast<gint> (resized ? s.resized_height () : s.height), "framerate",
      GST_TYPE_FRACTION, s.fps_n, s.fps_d, "pixel-aspect-ratio", GST_TYPE_FRACTION, 1, 1,
      nullptr);
}

// Asks the encoder for a keyframe with its headers, as
// gst_video_event_new_upstream_force_key_unit() would, without linking
// gstreamer-video for one event.
void
request_keyframe (GstPad *encoder_src)
{
  GstStructure *s = gst_structure_new ("GstForceKeyUnit", "running-time", GST_TYPE_CLOCK_TIME,
      GST_CLOCK_TIME_NONE, "all-headers", G_TYPE_BOOLEAN, TRUE, "count", G_TYPE_UINT, 0,
      nullptr);
  gst_pad_send_event (encoder_src, gst_event_new_custom (GST_EVENT_CUSTOM_UPSTREAM, s));
}

GstBuffer *
make_garbage (std::minstd_rand &random, GstBuffer *like)
{
  gsize size = MAX (gst_buffer_get_size (like), 1);
  GstBuffer *garbage = gst_buffer_new_allocate (nullptr, size, nullptr);
  gst_buffer_copy_into (garbage, like, GST_BUFFER_COPY_TIMESTAMPS, 0, -1);
  GstMapInfo map;
  if (gst_buffer_map (garbage, &map, GST_MAP_WRITE)) {
    // 1..254: never 0x00 (start codes) nor 0xFF (JPEG markers).
    for (gsize i = 0; i < map.size; ++i)
      map.data[i] = static_cast<guint8> (1 + random () % 254);
    gst_buffer_unmap (garbage, &map);
  }
  return garbage;
}

GstPadProbeReturn
video_fault_probe (GstPad *pad, GstPadProbeInfo *info, gpointer user_data)
{
  GstTestCameraSrc *self = GST_TEST_CAMERA_SRC (user_data);
  GstTestCameraSrcPrivate &p = *self->priv;
  const Settings &s = p.active;
  VideoFaultState &v = p.video;
  if (track_segment (info, v.segment))
    return GST_PAD_PROBE_OK;
  GstBuffer *buffer = GST_PAD_PROBE_INFO_BUFFER (info);
  GstClockTime t = fault_time (p, v.segment, buffer);
  if (!GST_CLOCK_TIME_IS_VALID (t))
    return GST_PAD_PROBE_OK;
  GST_CAT_LOG_OBJECT (test_camera_src_dataflow, self, "video buffer at %" GST_TIME_FORMAT "%s",
      GST_TIME_ARGS (t),
      GST_BUFFER_FLAG_IS_SET (buffer, GST_BUFFER_FLAG_DELTA_UNIT) ? "" : " (keyframe)");

  if (connection_dropped (self, t))
    return GST_PAD_PROBE_DROP;

  if (s.resize_every) {
    bool resized = (t / s.resize_every) % 2 == 1;
    if (resized != v.resized) {
      v.resized = resized;
      GST_INFO_OBJECT (self, "resize-every: switching to %ux%u at %" GST_TIME_FORMAT,
          resized ? s.resized_width () : s.width, resized ? s.resized_height () : s.height,
          GST_TIME_ARGS (t));
      // Takes effect a frame or two later: the capsfilter asks the source
      // to renegotiate, and the encoder restarts with new parameter sets.
      camrelay::CapsPtr caps{raw_video_caps (s, resized)};
      g_object_set (p.video_size, "caps", caps.get (), nullptr);
    }
  }

  if (in_window (t, s.stall_after, s.stall_duration)) {
    if (!v.interrupted)
      GST_INFO_OBJECT (self, "stall: sending nothing from %" GST_TIME_FORMAT, GST_TIME_ARGS (t));
    v.interrupted = true;
    GST_CAT_LOG_OBJECT (test_camera_src_dataflow, self, "stall: dropping %" GST_TIME_FORMAT,
        GST_TIME_ARGS (t));
    return GST_PAD_PROBE_DROP;
  }

  if (in_window (t, s.garbage_after, s.garbage_duration)) {
    if (!v.garbage_logged)
      GST_INFO_OBJECT (self, "garbage: sending random bytes from %" GST_TIME_FORMAT,
          GST_TIME_ARGS (t));
    v.garbage_logged = true;
    v.interrupted = true;
    GST_PAD_PROBE_INFO_DATA (info) = make_garbage (v.random, buffer);
    gst_buffer_unref (buffer);
    return GST_PAD_PROBE_OK;
  }

  if (v.interrupted) {
    GST_INFO_OBJECT (self, "fault over at %" GST_TIME_FORMAT ": sending again",
        GST_TIME_ARGS (t));
    v.interrupted = false;
    v.garbage_logged = false;
    request_keyframe (pad);
    buffer = gst_buffer_make_writable (buffer);
    GST_BUFFER_FLAG_SET (buffer, GST_BUFFER_FLAG_DISCONT);
    GST_PAD_PROBE_INFO_DATA (info) = buffer;
  }
  return GST_PAD_PROBE_OK;
}

GstPadProbeReturn
audio_fault_probe (GstPad *, GstPadProbeInfo *info, gpointer user_data)
{
  GstTestCameraSrc *self = GST_TEST_CAMERA_SRC (user_data);
  GstTestCameraSrcPrivate &p = *self->priv;
  const Settings &s = p.active;
  if (track_segment (info, p.audio.segment))
    return GST_PAD_PROBE_OK;
  GstBuffer *buffer = GST_PAD_PROBE_INFO_BUFFER (info);
  GstClockTime t = fault_time (p, p.audio.segment, buffer);
  if (!GST_CLOCK_TIME_IS_VALID (t))
    return GST_PAD_PROBE_OK;

  if (connection_dropped (self, t))
    return GST_PAD_PROBE_DROP;
  if (in_window (t, s.stall_after, s.stall_duration)
      || in_window (t, s.garbage_after, s.garbage_duration)) {
    p.audio.interrupted = true;
    return GST_PAD_PROBE_DROP;
  }
  if (p.audio.interrupted) {
    p.audio.interrupted = false;
    buffer = gst_buffer_make_writable (buffer);
    GST_BUFFER_FLAG_SET (buffer, GST_BUFFER_FLAG_DISCONT);
    GST_PAD_PROBE_INFO_DATA (info) = buffer;
  }
  return GST_PAD_PROBE_OK;
}

// ---- building and tearing down the inside ----------------------------------

GstElement *
make_child (GstTestCameraSrc *self, const char *factory, const char *name)
{
  GstElement *element = gst_element_factory_make (factory, name);
  if (!element) {
    GST_ELEMENT_ERROR (self, CORE, MISSING_PLUGIN,
        ("Missing element '%s': check your GStreamer installation", factory), (nullptr));
    return nullptr;
  }
  gst_bin_add (GST_BIN (self), element);
  self->priv->children.push_back (element);
  return element;
}

bool
link_children (GstTestCameraSrc *self, const std::vector<GstElement *> &chain)
{
  for (size_t i = 0; i + 1 < chain.size (); ++i) {
    if (!gst_element_link (chain[i], chain[i + 1])) {
      GST_ELEMENT_ERROR (self, CORE, NEGOTIATION, (nullptr),
          ("could not link %s to %s", GST_ELEMENT_NAME (chain[i]),
              GST_ELEMENT_NAME (chain[i + 1])));
      return false;
    }
  }
  return true;
}

void
add_probe (GstTestCameraSrc *self, GstElement *encoder, GstPadProbeCallback probe)
{
  camrelay::PadPtr src{gst_element_get_static_pad (encoder, "src")};
  gst_pad_add_probe (src.get (),
      static_cast<GstPadProbeType> (GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM),
      probe, self, nullptr);
}

bool
build_video (GstTestCameraSrc *self, const Settings &s)
{
  GstElement *source = make_child (self, "videotestsrc", "video-source");
  GstElement *size = make_child (self, "capsfilter", "video-size");
  GstElement *overlay = make_child (self, "clockoverlay", "video-clock");
  const char *encoder_name = s.codec == GST_TEST_CAMERA_SRC_CODEC_H264 ? "x264enc"
      : s.codec == GST_TEST_CAMERA_SRC_CODEC_H265                     ? "x265enc"
                                                                      : "jpegenc";
  const char *parser_name = s.codec == GST_TEST_CAMERA_SRC_CODEC_H264 ? "h264parse"
      : s.codec == GST_TEST_CAMERA_SRC_CODEC_H265                    ? "h265parse"
                                                                     : "jpegparse";
  GstElement *encoder = source && size && overlay
      ? make_child (self, encoder_name, "video-encoder") : nullptr;
  GstElement *parser = encoder ? make_child (self, parser_name, "video-parser") : nullptr;
  GstElement *output = parser ? make_child (self, "capsfilter", "video-output") : nullptr;
  if (!output)
    return false;

  g_object_set (source, "is-live", TRUE, nullptr);
  gst_util_set_object_arg (G_OBJECT (source), "pattern", "ball");
  camrelay::CapsPtr raw_caps{raw_video_caps (s, false)};
  g_object_set (size, "caps", raw_caps.get (), nullptr);
  self->priv->video_size = size;

  camrelay::GCharPtr name{g_uri_unescape_string (s.name.c_str (), nullptr)};
  g_object_set (overlay, "time-format", "%Y-%m-%d %H:%M:%S", "text",
      name ? name.get () : s.name.c_str (), "shaded-background", TRUE, nullptr);
  gst_util_set_object_arg (G_OBJECT (overlay), "halignment", "left");
  gst_util_set_object_arg (G_OBJECT (overlay), "valignment", "top");

  const char *output_caps = nullptr;
  switch (s.codec) {
    case GST_TEST_CAMERA_SRC_CODEC_H264:
      gst_util_set_object_arg (G_OBJECT (encoder), "tune", "zerolatency");
      gst_util_set_object_arg (G_OBJECT (encoder), "speed-preset", "ultrafast");
      // Keyframes exactly every `gop` frames, like a camera, not at scene cuts.
      g_object_set (encoder, "key-int-max", s.gop, "bitrate", s.bitrate, "option-string",
          "scenecut=0", nullptr);
      g_object_set (parser, "config-interval", -1, nullptr);
      output_caps = "video/x-h264, stream-format=byte-stream, alignment=au";
      break;
    case GST_TEST_CAMERA_SRC_CODEC_H265:
      gst_util_set_object_arg (G_OBJECT (encoder), "tune", "zerolatency");
      gst_util_set_object_arg (G_OBJECT (encoder), "speed-preset", "ultrafast");
      // IDR (closed GOP) keyframes every `gop` frames, as cameras send.
      g_object_set (encoder, "key-int-max", static_cast<gint> (s.gop), "bitrate", s.bitrate,
          "option-string", "scenecut=0:open-gop=0:sao=0", nullptr);
      g_object_set (parser, "config-interval", -1, nullptr);
      output_caps = "video/x-h265, stream-format=byte-stream, alignment=au";
      break;
    case GST_TEST_CAMERA_SRC_CODEC_JPEG:
      output_caps = "image/jpeg";
      break;
  }
  camrelay::CapsPtr caps{gst_caps_from_string (output_caps)};
  g_object_set (output, "caps", caps.get (), nullptr);

  if (!link_children (self, {source, size, overlay, encoder, parser, output}))
    return false;
  add_probe (self, encoder, video_fault_probe);

  camrelay::PadPtr target{gst_element_get_static_pad (output, "src")};
  gst_ghost_pad_set_target (GST_GHOST_PAD (self->video_pad), target.get ());
  return true;
}

bool
build_audio (GstTestCameraSrc *self, const Settings &s)
{
  const char *encoder_name = nullptr;
  const char *parser_name = nullptr;
  gint rate = 8000;
  switch (s.audio) {
    case GST_TEST_CAMERA_SRC_AUDIO_NONE:
      return true;
    case GST_TEST_CAMERA_SRC_AUDIO_AAC:
      // voaacenc rather than avenc_aac: loading gst-libav registers hundreds
      // of types, enough to make GLib leak its first quark table on purpose
      // (past 2048 quarks), which LeakSanitizer cannot tell from our leaks.
      encoder_name = "voaacenc";
      parser_name = "aacparse";
      rate = 16000;
      break;
    case GST_TEST_CAMERA_SRC_AUDIO_ALAW:
      encoder_name = "alawenc";
      break;
    case GST_TEST_CAMERA_SRC_AUDIO_MULAW:
      encoder_name = "mulawenc";
      break;
    case GST_TEST_CAMERA_SRC_AUDIO_OPUS:
      encoder_name = "opusenc";
      parser_name = "opusparse";
      rate = 48000;
      break;
  }

  std::vector<GstElement *> chain;
  for (const char *factory : {"audiotestsrc", "audioconvert", "capsfilter", encoder_name,
           parser_name}) {
    if (!factory)
      continue;
    GstElement *element = make_child (self, factory, nullptr);
    if (!element)
      return false;
    chain.push_back (element);
  }
  GstElement *source = chain[0];
  GstElement *format = chain[2];
  GstElement *encoder = chain[3];

  // 20 ms per buffer, as cameras packetize their audio.
  g_object_set (source, "is-live", TRUE, "samplesperbuffer", rate / 50, "volume", 0.3, nullptr);
  camrelay::CapsPtr caps{gst_caps_new_simple ("audio/x-raw", "rate", G_TYPE_INT, rate,
      "channels", G_TYPE_INT, 1, nullptr)};
  g_object_set (format, "caps", caps.get (), nullptr);
  if (s.audio == GST_TEST_CAMERA_SRC_AUDIO_AAC || s.audio == GST_TEST_CAMERA_SRC_AUDIO_OPUS)
    g_object_set (encoder, "bitrate", 32000, nullptr);

  if (!link_children (self, chain))
    return false;
  add_probe (self, encoder, audio_fault_probe);

  camrelay::PadPtr target{gst_element_get_static_pad (chain.back (), "src")};
  GstPadTemplate *templ = gst_element_class_get_pad_template (GST_ELEMENT_GET_CLASS (self),
      "audio");
  GstPad *pad = gst_ghost_pad_new_from_template ("audio", target.get (), templ);
  self->priv->audio_pad = pad;
  gst_element_add_pad (GST_ELEMENT (self), pad);
  return true;
}

// Undoes start_session(): called with every child in READY or below, so no
// streaming thread of ours runs.
void
stop_session (GstTestCameraSrc *self)
{
  GstTestCameraSrcPrivate &p = *self->priv;
  gst_ghost_pad_set_target (GST_GHOST_PAD (self->video_pad), nullptr);
  if (p.audio_pad) {
    gst_pad_set_active (p.audio_pad, FALSE);
    gst_element_remove_pad (GST_ELEMENT (self), p.audio_pad);
    p.audio_pad = nullptr;
  }
  for (GstElement *child : p.children) {
    gst_element_set_state (child, GST_STATE_NULL);
    gst_bin_remove (GST_BIN (self), child);
  }
  p.children.clear ();
  p.video_size = nullptr;

  Lock lock (p.lock);
  p.running = false;
}

bool
start_session (GstTestCameraSrc *self)
{
  GstTestCameraSrcPrivate &p = *self->priv;
  std::string location_error;
  {
    Lock lock (p.lock);
    location_error = p.location_error;
    p.active = p.settings;
    p.running = true;
  }
  if (!location_error.empty ()) {
    GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS, ("%s", location_error.c_str ()), (nullptr));
    return false;
  }
  GST_INFO_OBJECT (self, "starting %s", build_uri (p.active).c_str ());
  p.origin = GST_CLOCK_TIME_NONE;
  p.dropped = false;
  p.video = VideoFaultState ();
  p.audio = AudioFaultState ();

  if (!build_video (self, p.active) || !build_audio (self, p.active))
    return false;
  gst_element_no_more_pads (GST_ELEMENT (self));
  return true;
}

// ---- properties --------------------------------------------------------------

// Applies a property to `s`; false for `location`, handled by the caller.
bool
set_setting (GstTestCameraSrc *self, Settings &s, guint prop_id, const GValue *value)
{
  switch (prop_id) {
    case PROP_WIDTH:
      s.width = sanitize_dimension (self, "width", g_value_get_uint (value), false);
      break;
    case PROP_HEIGHT:
      s.height = sanitize_dimension (self, "height", g_value_get_uint (value), false);
      break;
    case PROP_FRAMERATE:
      s.fps_n = gst_value_get_fraction_numerator (value);
      s.fps_d = gst_value_get_fraction_denominator (value);
      break;
    case PROP_GOP:
      s.gop = g_value_get_uint (value);
      break;
    case PROP_BITRATE:
      s.bitrate = g_value_get_uint (value);
      break;
    case PROP_CODEC:
      s.codec = static_cast<GstTestCameraSrcCodec> (g_value_get_enum (value));
      break;
    case PROP_AUDIO:
      s.audio = static_cast<GstTestCameraSrcAudio> (g_value_get_enum (value));
      break;
    case PROP_DROP_AFTER:
      s.drop_after = g_value_get_uint64 (value);
      break;
    case PROP_STALL_AFTER:
      s.stall_after = g_value_get_uint64 (value);
      break;
    case PROP_STALL_DURATION:
      s.stall_duration = g_value_get_uint64 (value);
      break;
    case PROP_RESIZE_EVERY:
      s.resize_every = g_value_get_uint64 (value);
      break;
    case PROP_RESIZE_WIDTH:
      s.resize_width = sanitize_dimension (self, "resize-width", g_value_get_uint (value), true);
      break;
    case PROP_RESIZE_HEIGHT:
      s.resize_height =
          sanitize_dimension (self, "resize-height", g_value_get_uint (value), true);
      break;
    case PROP_GARBAGE_AFTER:
      s.garbage_after = g_value_get_uint64 (value);
      break;
    case PROP_GARBAGE_DURATION:
      s.garbage_duration = g_value_get_uint64 (value);
      break;
    default:
      return false;
  }
  return true;
}

// Replaces every setting from a URI.  Refused while running.
bool
set_location (GstTestCameraSrc *self, const char *uri, GError **error)
{
  GstTestCameraSrcPrivate &p = *self->priv;
  Settings parsed;
  bool ok = parse_uri (uri, parsed, error);
  Lock lock (p.lock);
  if (p.running) {
    g_clear_error (error);
    g_set_error (error, GST_URI_ERROR, GST_URI_ERROR_BAD_STATE,
        "testcamerasrc: the location cannot change while the element is running");
    return false;
  }
  if (!ok) {
    p.location_error = (error && *error) ? (*error)->message : "Invalid test:// URI";
    return false;
  }
  p.settings = std::move (parsed);
  p.location_error.clear ();
  return true;
}

}  // namespace

static void
gst_test_camera_src_set_property (GObject *object, guint prop_id, const GValue *value,
    GParamSpec *pspec)
{
  GstTestCameraSrc *self = GST_TEST_CAMERA_SRC (object);
  GstTestCameraSrcPrivate &p = *self->priv;

  if (prop_id == PROP_LOCATION) {
    GError *raw_error = nullptr;
    if (!set_location (self, g_value_get_string (value), &raw_error)) {
      camrelay::GErrorPtr error{raw_error};
      // The element refuses to start until a good location is set.
      GST_WARNING_OBJECT (self, "location refused: %s", error ? error->message : "?");
    }
    return;
  }

  Lock lock (p.lock);
  if (p.running) {
    GST_WARNING_OBJECT (self, "'%s' cannot change while the element is running: ignored",
        pspec->name);
    return;
  }
  if (!set_setting (self, p.settings, prop_id, value))
    G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
}

static void
gst_test_camera_src_get_property (GObject *object, guint prop_id, GValue *value,
    GParamSpec *pspec)
{
  GstTestCameraSrc *self = GST_TEST_CAMERA_SRC (object);
  GstTestCameraSrcPrivate &p = *self->priv;
  Lock lock (p.lock);
  const Settings &s = p.settings;

  switch (prop_id) {
    case PROP_LOCATION:
      g_value_set_string (value, build_uri (s).c_str ());
      break;
    case PROP_WIDTH:
      g_value_set_uint (value, s.width);
      break;
    case PROP_HEIGHT:
      g_value_set_uint (value, s.height);
      break;
    case PROP_FRAMERATE:
      gst_value_set_fraction (value, s.fps_n, s.fps_d);
      break;
    case PROP_GOP:
      g_value_set_uint (value, s.gop);
      break;
    case PROP_BITRATE:
      g_value_set_uint (value, s.bitrate);
      break;
    case PROP_CODEC:
      g_value_set_enum (value, s.codec);
      break;
    case PROP_AUDIO:
      g_value_set_enum (value, s.audio);
      break;
    case PROP_DROP_AFTER:
      g_value_set_uint64 (value, s.drop_after);
      break;
    case PROP_STALL_AFTER:
      g_value_set_uint64 (value, s.stall_after);
      break;
    case PROP_STALL_DURATION:
      g_value_set_uint64 (value, s.stall_duration);
      break;
    case PROP_RESIZE_EVERY:
      g_value_set_uint64 (value, s.resize_every);
      break;
    case PROP_RESIZE_WIDTH:
      g_value_set_uint (value, s.resize_width);
      break;
    case PROP_RESIZE_HEIGHT:
      g_value_set_uint (value, s.resize_height);
      break;
    case PROP_GARBAGE_AFTER:
      g_value_set_uint64 (value, s.garbage_after);
      break;
    case PROP_GARBAGE_DURATION:
      g_value_set_uint64 (value, s.garbage_duration);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
}

static GstStateChangeReturn
gst_test_camera_src_change_state (GstElement *element, GstStateChange transition)
{
  GstTestCameraSrc *self = GST_TEST_CAMERA_SRC (element);

  if (transition == GST_STATE_CHANGE_READY_TO_PAUSED && !start_session (self)) {
    stop_session (self);
    return GST_STATE_CHANGE_FAILURE;
  }

  GstStateChangeReturn ret = GST_ELEMENT_CLASS (parent_class)->change_state (element, transition);

  if (transition == GST_STATE_CHANGE_PAUSED_TO_READY
      || (transition == GST_STATE_CHANGE_READY_TO_PAUSED && ret == GST_STATE_CHANGE_FAILURE))
    stop_session (self);
  return ret;
}

static void
gst_test_camera_src_finalize (GObject *object)
{
  GstTestCameraSrc *self = GST_TEST_CAMERA_SRC (object);
  delete self->priv;
  self->priv = nullptr;
  G_OBJECT_CLASS (parent_class)->finalize (object);
}

static void
gst_test_camera_src_class_init (GstTestCameraSrcClass *klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);

  gobject_class->set_property = gst_test_camera_src_set_property;
  gobject_class->get_property = gst_test_camera_src_get_property;
  gobject_class->finalize = gst_test_camera_src_finalize;
  element_class->change_state = gst_test_camera_src_change_state;

  constexpr auto rw = static_cast<GParamFlags> (
      G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY);

  g_object_class_install_property (gobject_class, PROP_LOCATION,
      g_param_spec_string ("location", "Location",
          "test://NAME?key=value&... URI; sets every other property (absent keys: their "
          "defaults); reads back as the canonical URI of the current properties",
          "test://", rw));
  g_object_class_install_property (gobject_class, PROP_WIDTH,
      g_param_spec_uint ("width", "Width", "Picture width in pixels (even)", MIN_DIMENSION,
          MAX_DIMENSION, DEFAULT_WIDTH, rw));
  g_object_class_install_property (gobject_class, PROP_HEIGHT,
      g_param_spec_uint ("height", "Height", "Picture height in pixels (even)", MIN_DIMENSION,
          MAX_DIMENSION, DEFAULT_HEIGHT, rw));
  g_object_class_install_property (gobject_class, PROP_FRAMERATE,
      gst_param_spec_fraction ("framerate", "Frame rate", "Frames per second (1/10 to 240)",
          1, 10, 240, 1, DEFAULT_FPS_N, DEFAULT_FPS_D, rw));
  g_object_class_install_property (gobject_class, PROP_GOP,
      g_param_spec_uint ("gop", "GOP length",
          "Frames from one keyframe to the next (1 = every frame a keyframe)", 1, MAX_GOP,
          DEFAULT_GOP, rw));
  g_object_class_install_property (gobject_class, PROP_BITRATE,
      g_param_spec_uint ("bitrate", "Bitrate",
          "Video bitrate in kbit/s (ignored by codec=jpeg)", MIN_BITRATE, MAX_BITRATE,
          DEFAULT_BITRATE, rw));
  g_object_class_install_property (gobject_class, PROP_CODEC,
      g_param_spec_enum ("codec", "Codec", "Video codec", GST_TYPE_TEST_CAMERA_SRC_CODEC,
          DEFAULT_CODEC, rw));
  g_object_class_install_property (gobject_class, PROP_AUDIO,
      g_param_spec_enum ("audio", "Audio", "Audio codec of the audio pad (none: no audio pad)",
          GST_TYPE_TEST_CAMERA_SRC_AUDIO, DEFAULT_AUDIO, rw));
  g_object_class_install_property (gobject_class, PROP_DROP_AFTER,
      g_param_spec_uint64 ("drop-after", "Drop after",
          "Post an error and send nothing more this long after the first buffer, in "
          "nanoseconds (0 = never)", 0, MAX_FAULT_TIME, 0, rw));
  g_object_class_install_property (gobject_class, PROP_STALL_AFTER,
      g_param_spec_uint64 ("stall-after", "Stall after",
          "Stop sending, without error, this long after the first buffer, in nanoseconds "
          "(0 = never)", 0, MAX_FAULT_TIME, 0, rw));
  g_object_class_install_property (gobject_class, PROP_STALL_DURATION,
      g_param_spec_uint64 ("stall-duration", "Stall duration",
          "How long a stall lasts, in nanoseconds (0 = forever)", 0, MAX_FAULT_TIME, 0, rw));
  g_object_class_install_property (gobject_class, PROP_RESIZE_EVERY,
      g_param_spec_uint64 ("resize-every", "Resize every",
          "Switch between width x height and resize-width x resize-height this often, in "
          "nanoseconds (0 = never)", 0, MAX_FAULT_TIME, 0, rw));
  g_object_class_install_property (gobject_class, PROP_RESIZE_WIDTH,
      g_param_spec_uint ("resize-width", "Resize width",
          "Width in pixels of the other size (even; 0 = half of width)", 0, MAX_DIMENSION, 0,
          rw));
  g_object_class_install_property (gobject_class, PROP_RESIZE_HEIGHT,
      g_param_spec_uint ("resize-height", "Resize height",
          "Height in pixels of the other size (even; 0 = half of height)", 0, MAX_DIMENSION,
          0, rw));
  g_object_class_install_property (gobject_class, PROP_GARBAGE_AFTER,
      g_param_spec_uint64 ("garbage-after", "Garbage after",
          "Send random bytes instead of the encoded stream from this long after the first "
          "buffer, in nanoseconds (0 = never)", 0, MAX_FAULT_TIME, 0, rw));
  g_object_class_install_property (gobject_class, PROP_GARBAGE_DURATION,
      g_param_spec_uint64 ("garbage-duration", "Garbage duration",
          "How long garbage lasts, in nanoseconds (0 = forever)", 0, MAX_FAULT_TIME, 0, rw));

  gst_element_class_add_static_pad_template (element_class, &video_template);
  gst_element_class_add_static_pad_template (element_class, &audio_template);
  gst_element_class_set_static_metadata (element_class, "Test camera source", "Source/Video",
      "A live synthetic IP camera for test:// URIs, which can be told to fail",
      "camrelay developers");

  gst_type_mark_as_plugin_api (GST_TYPE_TEST_CAMERA_SRC_CODEC,
      static_cast<GstPluginAPIFlags> (0));
  gst_type_mark_as_plugin_api (GST_TYPE_TEST_CAMERA_SRC_AUDIO,
      static_cast<GstPluginAPIFlags> (0));
}

static void
gst_test_camera_src_init (GstTestCameraSrc *self)
{
  self->priv = new GstTestCameraSrcPrivate ();
  GstPadTemplate *templ = gst_static_pad_template_get (&video_template);
  self->video_pad = gst_ghost_pad_new_no_target_from_template ("video", templ);
  gst_object_unref (templ);
  gst_element_add_pad (GST_ELEMENT (self), self->video_pad);
}

// ---- GstURIHandler -------------------------------------------------------------

static GstURIType
gst_test_camera_src_uri_get_type (GType)
{
  return GST_URI_SRC;
}

static const gchar *const *
gst_test_camera_src_uri_get_protocols (GType)
{
  static const gchar *protocols[] = {SCHEME, nullptr};
  return protocols;
}

static gchar *
gst_test_camera_src_uri_get_uri (GstURIHandler *handler)
{
  GstTestCameraSrc *self = GST_TEST_CAMERA_SRC (handler);
  Lock lock (self->priv->lock);
  return g_strdup (build_uri (self->priv->settings).c_str ());
}

static gboolean
gst_test_camera_src_uri_set_uri (GstURIHandler *handler, const gchar *uri, GError **error)
{
  GstTestCameraSrc *self = GST_TEST_CAMERA_SRC (handler);
  if (!set_location (self, uri, error))
    return FALSE;
  g_object_notify (G_OBJECT (self), "location");
  return TRUE;
}

static void
gst_test_camera_src_uri_handler_init (gpointer g_iface, gpointer)
{
  GstURIHandlerInterface *iface = static_cast<GstURIHandlerInterface *> (g_iface);
  iface->get_type = gst_test_camera_src_uri_get_type;
  iface->get_protocols = gst_test_camera_src_uri_get_protocols;
  iface->get_uri = gst_test_camera_src_uri_get_uri;
  iface->set_uri = gst_test_camera_src_uri_set_uri;
}
