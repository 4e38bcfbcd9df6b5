// testcamerasrc's test:// URIs (see testuri.h), and the codec and audio
// enums whose nicks they use.
#include "testcamerasrc/testuri.h"

#include <cstring>
#include <string>
#include <vector>

#include "common/enums.h"
#include "common/gstref.h"

CAMRELAY_DEFINE_ENUM_TYPE (gst_test_camera_src_codec_get_type, "GstTestCameraSrcCodec",
    {GST_TEST_CAMERA_SRC_CODEC_H264, "H.264", "h264"},
    {GST_TEST_CAMERA_SRC_CODEC_H265, "H.265", "h265"},
    {GST_TEST_CAMERA_SRC_CODEC_JPEG, "Motion JPEG", "jpeg"})

CAMRELAY_DEFINE_ENUM_TYPE (gst_test_camera_src_audio_get_type, "GstTestCameraSrcAudio",
    {GST_TEST_CAMERA_SRC_AUDIO_NONE, "No audio", "none"},
    {GST_TEST_CAMERA_SRC_AUDIO_AAC, "AAC-LC, 16 kHz mono", "aac"},
    {GST_TEST_CAMERA_SRC_AUDIO_ALAW, "G.711 A-law, 8 kHz mono", "alaw"},
    {GST_TEST_CAMERA_SRC_AUDIO_MULAW, "G.711 mu-law, 8 kHz mono", "mulaw"},
    {GST_TEST_CAMERA_SRC_AUDIO_OPUS, "Opus, 48 kHz mono", "opus"})

namespace camrelay::testcamera {

namespace {

using EnumClassPtr = UniqueRef<GEnumClass, g_type_class_unref>;

EnumClassPtr
enum_class (GType type)
{
  return EnumClassPtr{static_cast<GEnumClass *> (g_type_class_ref (type))};
}

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
  const GEnumValue *v = g_enum_get_value_by_nick (enum_class (type).get (), value);
  if (!v)
    return false;
  out = v->value;
  return true;
}

// "h264, h265 or jpeg": the nicks of `type`, for messages.
std::string
enum_choices (GType type)
{
  EnumClassPtr klass = enum_class (type);
  std::string choices;
  for (guint i = 0; i < klass->n_values; ++i) {
    if (i > 0)
      choices += i + 1 == klass->n_values ? " or " : ", ";
    choices += klass->values[i].value_nick;
  }
  return choices;
}

// The nick of `value`, or "?" for a value `type` does not have.
const char *
nick (GType type, gint value)
{
  const char *n = camrelay::enum_nick (type, value);
  return n ? n : "?";
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

}  // namespace

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
    add ("codec", nick (GST_TYPE_TEST_CAMERA_SRC_CODEC, s.codec));
  if (s.audio != defaults.audio)
    add ("audio", nick (GST_TYPE_TEST_CAMERA_SRC_AUDIO, s.audio));
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

}  // namespace camrelay::testcamera
