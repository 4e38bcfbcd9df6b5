// testcamerasrc's settings and its test:// URIs: what a URI may say, its
// limits and defaults, parsing with errors that name the key, and the
// canonical form.  No element involved: unit-testable on its own.
#pragma once

#include <gst/gst.h>

#include <string>

#include "common/uri_schemes.h"
#include "testcamerasrc/gsttestcamerasrc.h"

namespace camrelay::testcamera {

inline constexpr guint MIN_DIMENSION = 16;
inline constexpr guint MAX_DIMENSION = 8192;
inline constexpr guint DEFAULT_WIDTH = 1280;
inline constexpr guint DEFAULT_HEIGHT = 720;
inline constexpr gint DEFAULT_FPS_N = 30;
inline constexpr gint DEFAULT_FPS_D = 1;
inline constexpr double MIN_FRAMERATE = 0.1;
inline constexpr double MAX_FRAMERATE = 240.0;
inline constexpr guint MAX_GOP = 3000;
inline constexpr guint DEFAULT_GOP = 30;
inline constexpr guint MIN_BITRATE = 16;
inline constexpr guint MAX_BITRATE = 100000;
inline constexpr guint DEFAULT_BITRATE = 2000;
inline constexpr GstTestCameraSrcCodec DEFAULT_CODEC = GST_TEST_CAMERA_SRC_CODEC_H264;
inline constexpr GstTestCameraSrcAudio DEFAULT_AUDIO = GST_TEST_CAMERA_SRC_AUDIO_NONE;
// Fault times, in whole seconds at most: a bit over eleven days.
inline constexpr guint64 MAX_FAULT_SECONDS = 1000000;
inline constexpr guint64 MAX_FAULT_TIME = MAX_FAULT_SECONDS * GST_SECOND;

// The scheme of test:// URIs, as camerasrc's list of schemes names it.
inline constexpr const char *SCHEME = camera_uri_scheme_name (SchemeFamily::Test);

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

// Parses a test:// URI into `out`; false with `error` (GST_URI_ERROR) set,
// naming the key at fault, if it is refused.
bool parse_uri (const char *uri, Settings &out, GError **error);
// The canonical URI: non-default keys only, in a fixed order.
std::string build_uri (const Settings &s);
// Nanoseconds as a decimal number of seconds, as URIs write them ("0.5").
std::string format_seconds (guint64 ns);

}  // namespace camrelay::testcamera
