// Shared helpers of the camerasrc suites: a `camerasrc ! appsink` pipeline
// with test-friendly timings, stats and state access, and the checks every
// fault test makes (no ERROR/EOS, one stream-start and segment, strictly
// increasing timestamps, DISCONT keyframe first, a valid camerasrc-state
// chain).  Every wait is bounded.
#pragma once

#include <gio/gio.h>
#include <gst/gst.h>
#include <gtest/gtest.h>

#include <dirent.h>
#include <malloc.h>
#include <unistd.h>
#if defined(__SANITIZE_ADDRESS__)
// From AddressSanitizer's runtime (sanitizer/allocator_interface.h, not
// installed with Debian's GCC).
extern "C" size_t __sanitizer_get_current_allocated_bytes (void);
#endif

#include <cstdio>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/element_names.h"
#include "common/enums.h"
#include "common/gstref.h"
#include "fake_camera.h"
#include "test_pipeline.h"

namespace camtest {

// camerasrc's message, field and stats names (plugins/common/element_names.h).
namespace names = camrelay::camerasrc_names;

// Fast timings for tests: backoff 100 ms doubling up to 400 ms (±20%), a
// stall noticed after 1 s, an attempt bounded to 2 s, no fallback frames
// (so every frame downstream comes from the camera).
constexpr GstClockTime kRetryDelay = 100 * GST_MSECOND;
constexpr GstClockTime kRetryDelayMax = 400 * GST_MSECOND;
// The contract: frames resume within the backoff + 2 s of the camera's return.
constexpr double kResumeBound = 1.2 * kRetryDelayMax / double (GST_SECOND) + 2.0;

inline std::chrono::milliseconds
resume_timeout ()
{
  return std::chrono::milliseconds (static_cast<long> (kResumeBound * 1000) + 3000);
}

inline std::string
camerasrc_pipeline (const std::string &extra_properties = "")
{
  return "camerasrc name=cam retry-delay=" + std::to_string (kRetryDelay) +
         " retry-delay-max=" + std::to_string (kRetryDelayMax) +
         " timeout=1000000000 connect-timeout=2000000000 fallback=none latency=100 " +
         extra_properties + " ! appsink name=sink sync=false";
}

// A camerasrc pipeline with `location` set (not through the launch line, so
// that URIs need no quoting).
inline bool
launch_camera (TestPipeline &p, const std::string &location, const std::string &extra = "")
{
  if (!p.launch (camerasrc_pipeline (extra)))
    return false;
  g_object_set (p.by_name ("cam"), "location", location.c_str (), nullptr);
  return true;
}

inline std::string
state_property (GstElement *camerasrc)
{
  GParamSpec *pspec = g_object_class_find_property (G_OBJECT_GET_CLASS (camerasrc), "state");
  if (!pspec) {
    ADD_FAILURE () << "camerasrc has no state property";
    return "";
  }
  GValue value = G_VALUE_INIT;
  g_value_init (&value, pspec->value_type);
  g_object_get_property (G_OBJECT (camerasrc), "state", &value);
  const char *nick = camrelay::enum_nick (&value);
  g_value_unset (&value);
  return nick ? nick : "?";
}

// The stats structure (owned copy).
inline camrelay::StructurePtr
get_stats (GstElement *camerasrc)
{
  GstStructure *stats = nullptr;
  g_object_get (camerasrc, "stats", &stats, nullptr);
  EXPECT_NE (stats, nullptr);
  if (stats) {
    EXPECT_STREQ (gst_structure_get_name (stats), camrelay::camerasrc_names::STATS);
  }
  return camrelay::StructurePtr (stats);
}

inline guint64
stat_u64 (const GstStructure *stats, const char *field)
{
  guint64 value = G_MAXUINT64;
  if (!stats || !gst_structure_get_uint64 (stats, field, &value))
    ADD_FAILURE () << "stats field " << field << " missing or not a guint64";
  return value;
}

inline gint
stat_int (const GstStructure *stats, const char *field)
{
  gint value = -1;
  if (!stats || !gst_structure_get_int (stats, field, &value))
    ADD_FAILURE () << "stats field " << field << " missing or not a gint";
  return value;
}

inline std::string
stat_string (const GstStructure *stats, const char *field)
{
  const gchar *value = stats ? gst_structure_get_string (stats, field) : nullptr;
  if (!value) {
    ADD_FAILURE () << "stats field " << field << " missing or not a string";
    return "";
  }
  return value;
}

inline std::string
stats_string (GstElement *camerasrc)
{
  auto stats = get_stats (camerasrc);
  if (!stats)
    return "";
  camrelay::GCharPtr text{gst_structure_to_string (stats.get ())};
  return text.get ();
}

inline std::string
time_string (GstClockTime time)
{
  camrelay::GCharPtr text{g_strdup_printf ("%" GST_TIME_FORMAT, GST_TIME_ARGS (time))};
  return text.get ();
}

// Allowed camerasrc-state transitions.
inline bool
valid_transition (const std::string &from, const std::string &to)
{
  static const std::set<std::pair<std::string, std::string>> allowed = {
    {"stopped", "connecting"},
    {"connecting", "streaming"},
    {"connecting", "reconnecting"},
    {"connecting", "failed"},
    {"connecting", "connecting"},   // location changed while connecting
    {"streaming", "reconnecting"},
    {"streaming", "connecting"},    // location changed while streaming
    {"reconnecting", "connecting"},
    {"reconnecting", "failed"},
  };
  return to == "stopped" || allowed.count ({from, to}) > 0;
}

// Each message's `previous` is the state of the one before it, the first
// starts from stopped, and every transition is one of the allowed ones.
inline void
expect_valid_state_chain (const TestPipeline &p)
{
  auto messages = p.state_messages ();
  std::string current = "stopped";
  for (size_t i = 0; i < messages.size (); i++) {
    const auto &m = messages[i];
    EXPECT_EQ (m.previous, current) << "camerasrc-state #" << i << ": " << m.text;
    EXPECT_TRUE (valid_transition (m.previous, m.state))
        << "camerasrc-state #" << i << ": " << m.previous << " -> " << m.state;
    if (m.state == "reconnecting") {
      EXPECT_FALSE (m.reason.empty ()) << "reconnecting without a reason: " << m.text;
      EXPECT_GT (m.retry_in, 0u) << m.text;
    } else if (m.state != "failed") {
      EXPECT_EQ (m.retry_in, 0u) << m.text;
    }
    current = m.state;
  }
}

// After a fault from streaming: streaming -> reconnecting -> connecting
// (-> reconnecting -> connecting)* -> streaming, from state message `from`.
inline void
expect_fault_sequence (TestPipeline &p, size_t from)
{
  // Frames reach the sink before the bus delivers the state message that
  // announced them: wait for that message rather than racing it.
  EXPECT_TRUE (p.wait_state ("streaming", std::chrono::seconds (5), from + 1))
      << p.describe_messages ();
  auto messages = p.state_messages ();
  ASSERT_GT (messages.size (), from + 2) << "too few state messages after the fault";
  std::vector<std::string> states;
  for (size_t i = from; i < messages.size (); i++)
    states.push_back (messages[i].state);
  std::string joined;
  for (auto &s : states)
    joined += s + " ";
  EXPECT_EQ (messages[from].previous, "streaming") << joined;
  EXPECT_EQ (states.front (), "reconnecting") << joined;
  EXPECT_EQ (states.back (), "streaming") << joined;
  for (size_t i = 0; i + 1 < states.size (); i++)
    EXPECT_EQ (states[i], i % 2 == 0 ? "reconnecting" : "connecting") << joined;
}

// The stream downstream: no ERROR or EOS, one stream-start per codec the
// camera had (`streams`: a codec change starts a new stream) and one segment,
// PTS valid and strictly increasing, DTS valid and increasing, every DISCONT
// buffer a keyframe, the first buffer a DISCONT keyframe.
inline void
expect_clean_stream (const TestPipeline &p, int streams = 1)
{
  EXPECT_TRUE (p.messages_of (GST_MESSAGE_ERROR).empty ()) << p.describe_messages ();
  EXPECT_TRUE (p.messages_of (GST_MESSAGE_EOS).empty ()) << p.describe_messages ();
  // Sticky events go out with the first buffer: none before it, one ever.
  const int expected_sticky = p.frame_count () > 0 ? 1 : 0;
  EXPECT_LE (p.event_count (GST_EVENT_STREAM_START), streams);
  EXPECT_EQ (p.event_count (GST_EVENT_SEGMENT), expected_sticky);
  EXPECT_EQ (p.event_count (GST_EVENT_EOS), 0);
  auto frames = p.frames ();
  if (!frames.empty ()) {
    EXPECT_TRUE (frames[0].keyframe) << "first frame is not a keyframe";
    EXPECT_TRUE (frames[0].discont) << "first frame is not DISCONT";
  }
  int reported = 0;
  for (size_t i = 0; i < frames.size () && reported < 5; i++) {
    const auto &f = frames[i];
    if (!GST_CLOCK_TIME_IS_VALID (f.pts)) {
      ADD_FAILURE () << "frame " << i << " has no PTS";
      reported++;
      continue;
    }
    if (f.discont && !f.keyframe) {
      ADD_FAILURE () << "frame " << i << " is DISCONT but not a keyframe";
      reported++;
    }
    if (i > 0 && GST_CLOCK_TIME_IS_VALID (frames[i - 1].pts) && f.pts <= frames[i - 1].pts) {
      ADD_FAILURE () << "PTS not strictly increasing at frame " << i << ": "
                     << time_string (frames[i - 1].pts) << " then " << time_string (f.pts);
      reported++;
    }
    if (i > 0 && GST_CLOCK_TIME_IS_VALID (f.dts) && GST_CLOCK_TIME_IS_VALID (frames[i - 1].dts) &&
        f.dts <= frames[i - 1].dts) {
      ADD_FAILURE () << "DTS not strictly increasing at frame " << i;
      reported++;
    }
  }
  expect_valid_state_chain (p);
}

// Waits for the first frame that arrives after `returned` (the camera's
// return), checks it came within the contract's bound and is a DISCONT
// keyframe. Returns its index or -1.  When the camera is back as soon as
// the fault happened (a reset connection), `returned` is the fault and
// `first_frame_after` the moment the fault was reported (frames of the
// broken session may arrive until then).
inline long
expect_resumes (TestPipeline &p, SteadyClock::time_point returned, const char *what,
    std::optional<SteadyClock::time_point> first_frame_after = std::nullopt)
{
  long index = p.wait_frame_after (first_frame_after.value_or (returned), resume_timeout ());
  if (index < 0) {
    ADD_FAILURE () << what << ": no frame within " << resume_timeout ().count ()
                   << " ms of the camera's return\n"
                   << p.describe_messages ();
    return -1;
  }
  auto frames = p.frames ();
  double delay = seconds_between (returned, frames[index].arrival);
  std::fprintf (stderr, "%s: first frame %.3f s after the camera's return\n", what, delay);
  EXPECT_LE (delay, kResumeBound) << what << ": frames resumed late";
  EXPECT_TRUE (frames[index].keyframe) << what << ": first frame after the return is a delta";
  EXPECT_TRUE (frames[index].discont) << what << ": first frame after the return is not DISCONT";
  return index;
}

// `needle` in `text`, ignoring case.
inline bool
contains_nocase (const std::string &text, const std::string &needle)
{
  auto lower = [] (std::string s) {
    for (auto &c : s)
      c = static_cast<char> (g_ascii_tolower (c));
    return s;
  };
  return lower (text).find (lower (needle)) != std::string::npos;
}

// Makes the TLS clients that camerasrc builds inside (rtspsrc, souphttpsrc)
// trust `certificate_file` alone, through their tls-database property.
// camerasrc has no property for it: this is how a test reaches the TLS path
// with a self-signed camera.
inline void
trust_inside (TestPipeline &p, const std::string &certificate_file)
{
  GError *error = nullptr;
  GTlsDatabase *database = g_tls_file_database_new (certificate_file.c_str (), &error);
  if (!database) {
    ADD_FAILURE () << error->message;
    g_error_free (error);
    return;
  }
  g_signal_connect_data (p.pipeline (), "deep-element-added",
      G_CALLBACK (+[] (GstBin *, GstBin *, GstElement *element, gpointer data) {
        if (g_object_class_find_property (G_OBJECT_GET_CLASS (element), "tls-database"))
          g_object_set (element, "tls-database", data, nullptr);
      }),
      database, [] (gpointer data, GClosure *) { g_object_unref (data); }, GConnectFlags (0));
}

// Index of the next camerasrc-state message (to wait for states after now).
inline size_t
next_state_index (const TestPipeline &p)
{
  return p.state_messages ().size ();
}

inline int
count_entries (const char *path)
{
  int count = 0;
  if (DIR *dir = opendir (path)) {
    while (struct dirent *entry = readdir (dir))
      if (entry->d_name[0] != '.')
        count++;
    closedir (dir);
  }
  return count;
}

inline long
rss_kib ()
{
  long pages_total = 0, pages_resident = 0;
  if (FILE *f = std::fopen ("/proc/self/statm", "r")) {
    if (std::fscanf (f, "%ld %ld", &pages_total, &pages_resident) != 2)
      pages_resident = 0;
    std::fclose (f);
  }
  return pages_resident * (sysconf (_SC_PAGESIZE) / 1024);
}

// Memory allocated and not freed yet, in KiB: what a leak makes grow.  RSS
// also counts memory freed but kept by the allocator (glibc's arenas, one
// more for each thread that finds the others busy; AddressSanitizer's
// quarantine), which grows with load and allocation volume, not with leaks.
inline long
heap_in_use_kib ()
{
#if defined(__SANITIZE_ADDRESS__)
  return static_cast<long> (__sanitizer_get_current_allocated_bytes () / 1024);
#else
  const struct mallinfo2 info = mallinfo2 ();  // every arena, and mmapped chunks
  return static_cast<long> ((info.uordblks + info.hblkhd) / 1024);
#endif
}

inline bool
has_factory (const char *name)
{
  camrelay::ObjectPtr<GstPluginFeature> feature{
      gst_registry_lookup_feature (gst_registry_get (), name)};
  return feature != nullptr;
}

}  // namespace camtest
