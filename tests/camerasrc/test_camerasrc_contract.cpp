// camerasrc's finer promises: an application may read the element from any
// signal it emits, one output stream keeps its order and timeline whatever
// the fallback does, a codec change starts a new stream downstream, and what
// the element reports (reasons, backoff) is precise.  Every wait is bounded;
// a call that would hang aborts the test binary instead.
#include <gst/gst.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <future>
#include <memory>
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
