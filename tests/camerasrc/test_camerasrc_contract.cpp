// camerasrc's finer promises: an application may read the element from any
// signal it emits, one output stream keeps its order and timeline whatever
// the fallback does, a codec change starts a new stream downstream, and what
// the element reports (reasons, backoff) is precise.  Every wait is bounded;
// a call that would hang aborts the test binary instead.
#include <gst/gst.h>
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <cstdlib>
#include <future>
#include <memory>
#include <mutex>
#include <thread>

#include "camerasrc_test_util.h"

using namespace camtest;

namespace {

// Runs `action` in a thread of its own and waits at most `timeout` for it;
// returns how long it took.  A hang cannot be recovered from (the stuck
// threads hold the pipeline), so it fails the test and aborts the binary
// rather than hanging it.
template <typename Action>
double
run_bounded (const std::string &what, std::chrono::milliseconds timeout, Action action)
{
  auto done = std::make_shared<std::promise<void>> ();
  std::future<void> finished = done->get_future ();
  const auto start = SteadyClock::now ();
  std::thread worker ([action, done] () mutable {
    action ();
    done->set_value ();
  });
  if (finished.wait_for (timeout) != std::future_status::ready) {
    ADD_FAILURE () << what << " did not return within " << timeout.count () << " ms";
    std::fprintf (stderr, "%s is stuck (deadlock?): aborting\n", what.c_str ());
    std::fflush (stderr);
    std::abort ();
  }
  worker.join ();
  return seconds_between (start, SteadyClock::now ());
}

// To NULL, bounded.
double
stop_bounded (TestPipeline &p, std::chrono::milliseconds timeout = 5s)
{
  return run_bounded ("the state change to NULL", timeout, [&p] { p.stop (); });
}

}  // namespace

// ---- signals are emitted without the element's lock ---------------------------

namespace {

struct ReadBack {
  GstElement *camerasrc = nullptr;
  std::atomic<int> reads{0};
};

void
read_state_and_stats (ReadBack *read_back)
{
  gint state = -1;
  GstStructure *stats = nullptr;
  g_object_get (read_back->camerasrc, "state", &state, "stats", &stats, nullptr);
  if (stats)
    gst_structure_free (stats);
  read_back->reads++;
}

void
on_deep_element_added (GstBin *, GstBin *, GstElement *, gpointer user_data)
{
  read_state_and_stats (static_cast<ReadBack *> (user_data));
}

void
on_deep_notify (GstObject *, GstObject *, GParamSpec *, gpointer user_data)
{
  read_state_and_stats (static_cast<ReadBack *> (user_data));
}

}  // namespace

// GStreamer emits element-added, deep-element-added and deep-notify in the
// thread that adds the element or sets the property: a handler that reads
// the element must find its lock free.
TEST (CameraSrcContract, SignalHandlersMayReadTheElement)
{
  TestPipeline p;
  ASSERT_TRUE (launch_camera (p, "test://cam?width=320&height=240&gop=10"));
  ReadBack read_back;
  read_back.camerasrc = p.by_name ("cam");
  g_signal_connect (p.pipeline (), "deep-element-added", G_CALLBACK (on_deep_element_added),
      &read_back);
  ASSERT_TRUE (p.play ());
  EXPECT_TRUE (p.wait_frames (10, 5s)) << p.describe_messages ();
  EXPECT_GT (read_back.reads.load (), 0) << "the inner chain was built without signals?";

  // A property of the element that it passes on to its output appsrc.
  const int before = read_back.reads.load ();
  g_signal_connect (p.pipeline (), "deep-notify::min-latency", G_CALLBACK (on_deep_notify),
      &read_back);
  GstElement *camerasrc = read_back.camerasrc;
  run_bounded ("setting latency", 5s, [camerasrc] {
    g_object_set (camerasrc, "latency", 150u, nullptr);
  });
  EXPECT_GT (read_back.reads.load (), before) << "no deep-notify from the output appsrc";
  const size_t frames = p.frame_count ();
  EXPECT_TRUE (p.wait_frames (frames + 5, 5s)) << p.describe_messages ();

  EXPECT_LT (stop_bounded (p), 1.0);
}

// ---- fallback pictures and the camera's frames --------------------------------

namespace {

// Every buffer that reached the sink, in order.  Fallback pictures are the
// only buffers without a duration (the camera's parsers set one).
struct BufferEntry {
  GstClockTime pts = GST_CLOCK_TIME_NONE;
  GstClockTime dts = GST_CLOCK_TIME_NONE;
  GstClockTime running_time_at_arrival = GST_CLOCK_TIME_NONE;
  bool keyframe = false;
  bool discont = false;
  bool fallback = false;
};

class BufferLog {
 public:
  // Watches the buffers entering `sink` of pipeline `pipeline`.
  void attach (GstElement *pipeline, GstElement *sink)
  {
    pipeline_ = pipeline;
    camrelay::PadPtr pad{gst_element_get_static_pad (sink, "sink")};
    gst_pad_add_probe (pad.get (), GST_PAD_PROBE_TYPE_BUFFER, on_buffer, this, nullptr);
  }
  std::vector<BufferEntry> entries () const
  {
    std::lock_guard<std::mutex> lock (mutex_);
    return entries_;
  }

 private:
  static GstPadProbeReturn on_buffer (GstPad *, GstPadProbeInfo *info, gpointer user_data)
  {
    auto *self = static_cast<BufferLog *> (user_data);
    GstBuffer *buffer = GST_PAD_PROBE_INFO_BUFFER (info);
    BufferEntry entry;
    entry.pts = GST_BUFFER_PTS (buffer);
    entry.dts = GST_BUFFER_DTS (buffer);
    entry.keyframe = !GST_BUFFER_FLAG_IS_SET (buffer, GST_BUFFER_FLAG_DELTA_UNIT);
    entry.discont = GST_BUFFER_FLAG_IS_SET (buffer, GST_BUFFER_FLAG_DISCONT);
    entry.fallback = !GST_BUFFER_DURATION_IS_VALID (buffer);
    if (camrelay::ClockPtr clock{gst_element_get_clock (self->pipeline_)}) {
      const GstClockTime now = gst_clock_get_time (clock.get ());
      const GstClockTime base = gst_element_get_base_time (self->pipeline_);
      entry.running_time_at_arrival = now > base ? now - base : 0;
    }
    std::lock_guard<std::mutex> lock (self->mutex_);
    self->entries_.push_back (entry);
    return GST_PAD_PROBE_OK;
  }

  GstElement *pipeline_ = nullptr;
  mutable std::mutex mutex_;
  std::vector<BufferEntry> entries_;
};

// The order of one output: timestamps strictly increase, and a fallback
// picture never follows the camera's frames except to start a gap (flagged
// DISCONT): none slips in between a camera's keyframe and its deltas.
void
expect_fallback_only_in_gaps (const std::vector<BufferEntry> &entries)
{
  int reported = 0;
  for (size_t i = 1; i < entries.size () && reported < 5; i++) {
    const BufferEntry &previous = entries[i - 1];
    const BufferEntry &entry = entries[i];
    if (entry.pts <= previous.pts) {
      ADD_FAILURE () << "PTS not strictly increasing at buffer " << i << ": "
                     << time_string (previous.pts) << (previous.fallback ? " (fallback)" : "")
                     << " then " << time_string (entry.pts)
                     << (entry.fallback ? " (fallback)" : "");
      reported++;
    }
    if (entry.fallback && !previous.fallback && !entry.discont) {
      ADD_FAILURE () << "fallback picture at buffer " << i << " amid the camera's frames";
      reported++;
    }
  }
}

// Holds the manager thread where its first fallback picture of an outage
// races the camera's return, until another thread logs new caps (the
// camera's first keyframe of the next connection, after a slate) or at most
// `hold`.  Odd outages hold it as it starts to send the picture ("sending a
// fallback picture"), even ones once the picture is stamped, as it logs the
// slate's "new caps".  Held there, an element that pushes fallback pictures
// and camera frames without one order between them, or sends a picture once
// the camera is back, mixes them up every time.
class ManagerHold {
 public:
  ManagerHold (GstElement *camerasrc, std::chrono::milliseconds hold)
      : camerasrc_ (camerasrc), hold_ (hold)
  {
    g_signal_connect (camerasrc, "notify::state", G_CALLBACK (on_state), this);
    gst_debug_set_active (TRUE);
    gst_debug_set_threshold_for_name ("camerasrc", GST_LEVEL_LOG);
    gst_debug_remove_log_function (gst_debug_log_default);
    gst_debug_add_log_function (on_log, this, nullptr);
  }
  ~ManagerHold ()
  {
    g_signal_handlers_disconnect_by_data (camerasrc_, this);
    gst_debug_remove_log_function (on_log);
    gst_debug_add_log_function (gst_debug_log_default, nullptr, nullptr);
    gst_debug_unset_threshold_for_name ("camerasrc");
  }
  int holds () const { return holds_; }

 private:
  // Every camerasrc-state after the first is announced by the manager thread.
  static void on_state (GObject *, GParamSpec *, gpointer user_data)
  {
    auto *self = static_cast<ManagerHold *> (user_data);
    if (state_property (self->camerasrc_) != "reconnecting")
      return;
    std::lock_guard<std::mutex> lock (self->mutex_);
    self->manager_ = g_thread_self ();
    self->outages_++;
    self->armed_ = true;
  }
  static void on_log (GstDebugCategory *category, GstDebugLevel, const gchar *, const gchar *,
      gint, GObject *, GstDebugMessage *message, gpointer user_data)
  {
    auto *self = static_cast<ManagerHold *> (user_data);
    if (std::strcmp (gst_debug_category_get_name (category), "camerasrc") != 0)
      return;
    const gchar *text = gst_debug_message_get (message);
    const bool sending = text && g_str_has_prefix (text, "sending a fallback picture");
    const bool new_caps = text && g_str_has_prefix (text, "new caps");
    if (!sending && !new_caps)
      return;
    std::unique_lock<std::mutex> lock (self->mutex_);
    if (g_thread_self () != self->manager_) {
      if (new_caps) {
        self->others_++;
        self->cond_.notify_all ();
      }
      return;
    }
    if (!self->armed_ || (self->outages_ % 2 == 1 ? !sending : !new_caps))
      return;
    self->armed_ = false;
    self->holds_++;
    const int others = self->others_;
    self->cond_.wait_for (lock, self->hold_, [self, others] { return self->others_ != others; });
  }

  GstElement *camerasrc_;
  std::chrono::milliseconds hold_;
  std::mutex mutex_;
  std::condition_variable cond_;
  GThread *manager_ = nullptr;
  int outages_ = 0;
  bool armed_ = false;
  int others_ = 0;
  std::atomic<int> holds_{0};
};

}  // namespace

// A camera that drops every 0.3 s and comes back at once, with a slate every
// 10 ms while it is away.  The first slate of each outage is held where it
// races the camera's return (see ManagerHold).
TEST (CameraSrcContract, FallbackNeverInterleavesWithTheCamera)
{
  TestPipeline p;
  ASSERT_TRUE (launch_camera (p, "test://cam?width=160&height=120&gop=5&drop-after=0.3",
      "fallback=slate fallback-interval=10000000 retry-delay=1000000 retry-delay-max=2000000"));
  BufferLog log;
  log.attach (p.pipeline (), p.sink ());
  {
    ManagerHold hold (p.by_name ("cam"), 300ms);
    ASSERT_TRUE (p.play ());
    // Connections that delivered video, each after fallback pictures.
    EXPECT_TRUE (p.wait_state ("streaming", 20s, 0, 7)) << p.describe_messages ();
    EXPECT_LT (stop_bounded (p), 1.0);
    std::fprintf (stderr, "the manager was held %d times\n", hold.holds ());
    EXPECT_GT (hold.holds (), 0);
  }
  const auto entries = log.entries ();
  size_t fallback = 0;
  for (const auto &e : entries)
    fallback += e.fallback;
  std::fprintf (stderr, "%zu buffers, %zu fallback pictures\n", entries.size (), fallback);
  EXPECT_GT (fallback, 0u);
  expect_fallback_only_in_gaps (entries);
  EXPECT_TRUE (p.messages_of (GST_MESSAGE_ERROR).empty ()) << p.describe_messages ();
}
