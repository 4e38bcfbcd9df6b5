// resilientqueue: every wait is bounded and flush-aware: max-block-time,
// serialized queries on a full queue, FLUSH_START and NULL while blocked.
#include <gst/app/gstappsrc.h>
#include <gst/check/gstharness.h>
#include <gst/gst.h>
#include <gtest/gtest.h>

#include <future>
#include <vector>

#include "common/gstref.h"
#include "rq_test_util.h"

using namespace rqtest;

namespace {

using V = std::vector<guint64>;

// Harness with downstream held on buffer 0 and buffers 1..fill queued
// (1 a keyframe, the rest delta units).
struct HeldQueue {
  HarnessPtr h;
  std::unique_ptr<Recorder> recorder;
  std::unique_ptr<DownstreamHold> hold;

  ~HeldQueue ()
  {
    hold.reset ();
    recorder.reset ();
    h.reset ();
  }
};

void
make_held_queue (HeldQueue &q, const char *leaky, const char *block_time, guint64 fill)
{
  q.h = make_harness ({{"leaky", leaky}, {"max-size-buffers", std::to_string (fill).c_str ()},
      {"max-size-time", "0"}, {"max-size-bytes", "0"}, {"max-block-time", block_time}});
  ASSERT_NE (q.h, nullptr);
  q.recorder = std::make_unique<Recorder> (q.h->element);
  q.hold = std::make_unique<DownstreamHold> (q.h->element);
  ASSERT_EQ (gst_harness_push (q.h.get (), make_buffer (0, true)), GST_FLOW_OK);
  ASSERT_EQ (q.hold->wait_parked (), 0);
  for (guint64 n = 1; n <= fill; n++)
    ASSERT_EQ (gst_harness_push (q.h.get (), make_buffer (n, n == 1)), GST_FLOW_OK);
  ASSERT_EQ (level_buffers (q.h->element), fill);
}

// Pushes in another thread and returns (flow, seconds taken); aborts on hang.
std::pair<GstFlowReturn, double>
timed_push (GstHarness *h, GstBuffer *buffer, std::chrono::seconds limit = 10s)
{
  auto start = SteadyClock::now ();
  auto pushed = std::async (std::launch::async, [h, buffer] { return gst_harness_push (h, buffer); });
  if (pushed.wait_for (limit) != std::future_status::ready)
    abort_on_hang ("push did not return");
  GstFlowReturn ret = pushed.get ();
  return {ret, seconds_since (start)};
}

constexpr double kBound = 0.3;  // max-block-time used below, seconds
// How late a bounded wait may return on a loaded two-core machine.
constexpr double kSlack = 0.25;

TEST (ResilientQueueBlocking, MaxBlockTimeBoundsAPushThenDropsAsGop)
{
  HeldQueue q;
  make_held_queue (q, "none", "300000000", 3);  // [1K 2D 3D]
  if (HasFatalFailure ())
    return;

  // A delta unit cannot make room (its GOP is still being received): after
  // the bound it is dropped.
  auto [ret4, took4] = timed_push (q.h.get (), make_buffer (4, false));
  EXPECT_EQ (ret4, GST_FLOW_OK);
  EXPECT_GE (took4, kBound - 0.005) << "returned before max-block-time";
  EXPECT_LT (took4, kBound + 2.0);
  Stats stats = get_stats (q.h->element);
  EXPECT_GE (stat (stats, "time-blocked"), guint64 ((kBound - 0.005) * GST_SECOND));
  EXPECT_EQ (stat (stats, "dropped-buffers"), 1u);
  guint64 blocked_after_first = stat (stats, "time-blocked");

  // A keyframe: after the bound the complete GOP [1 2 3] goes instead.
  auto [ret5, took5] = timed_push (q.h.get (), make_buffer (5, true));
  EXPECT_EQ (ret5, GST_FLOW_OK);
  EXPECT_GE (took5, kBound - 0.005);
  EXPECT_LT (took5, kBound + 2.0);
  EXPECT_EQ (level_buffers (q.h->element), 1u);
  stats = get_stats (q.h->element);
  EXPECT_GE (stat (stats, "time-blocked"), blocked_after_first + guint64 ((kBound - 0.005) * GST_SECOND))
      << "time-blocked did not grow";
  EXPECT_EQ (stat (stats, "dropped-buffers"), 4u);
  EXPECT_EQ (stat (stats, "dropped-bytes"), 400u);
  EXPECT_GE (stat (stats, "dropped-gops"), 1u);
  EXPECT_EQ (stat (stats, "overruns"), 2u);

  q.hold->release ();
  ASSERT_TRUE (q.recorder->wait_buffers (2));
  EXPECT_EQ (q.recorder->offsets (), (V{0, 5}));
  auto buffers = q.recorder->buffers ();
  EXPECT_TRUE (buffers[1].discont);
  EXPECT_TRUE (buffers[1].keyframe);
}

TEST (ResilientQueueBlocking, SerializedQueryOnFullQueueIsRefusedInTime)
{
  HeldQueue q;
  make_held_queue (q, "gop", "300000000", 3);
  if (HasFatalFailure ())
    return;
  GstPad *harness_src = q.h->srcpad;
  auto start = SteadyClock::now ();
  auto answered = std::async (std::launch::async, [harness_src] {
    camrelay::CapsPtr caps{make_caps (0)};
    camrelay::QueryPtr query{gst_query_new_allocation (caps.get (), FALSE)};
    return gst_pad_peer_query (harness_src, query.get ());
  });
  if (answered.wait_for (10s) != std::future_status::ready)
    abort_on_hang ("serialized query on a full queue never returned");
  double took = seconds_since (start);
  EXPECT_FALSE (answered.get ()) << "query answered although downstream is held";
  EXPECT_GE (took, kBound - 0.005);
  EXPECT_LT (took, kBound + 2.0);

  // The queue still works afterwards.
  q.hold->release ();
  ASSERT_TRUE (q.recorder->wait_buffers (4));
  ASSERT_EQ (gst_harness_push (q.h.get (), make_buffer (4, true)), GST_FLOW_OK);
  ASSERT_TRUE (q.recorder->wait_buffers (5));
  EXPECT_EQ (q.recorder->offsets (), (V{0, 1, 2, 3, 4}));
}

// max-block-time lowered while a push waits: the push's deadline follows.
TEST (ResilientQueueBlocking, LoweringMaxBlockTimeShortensABlockedPush)
{
  HeldQueue q;
  make_held_queue (q, "none", "30000000000", 3);  // [1K 2D 3D]
  if (HasFatalFailure ())
    return;
  SignalCounter overruns (q.h->element, "overrun");
  GstHarness *h = q.h.get ();
  auto start = SteadyClock::now ();
  auto pushed = std::async (std::launch::async, [h] { return gst_harness_push (h, make_buffer (4, true)); });
  ASSERT_TRUE (overruns.wait_count (1));
  ASSERT_EQ (pushed.wait_for (200ms), std::future_status::timeout) << "the push did not wait for room";

  // Lowered below the time already waited: the push gives up at once.
  g_object_set (q.h->element, "max-block-time", guint64 (kBound * GST_SECOND), nullptr);
  if (pushed.wait_for (2s) != std::future_status::ready) {
    ADD_FAILURE () << "the blocked push kept its old deadline";
    q.hold->release ();
    if (pushed.wait_for (kWaitTimeout) != std::future_status::ready)
      abort_on_hang ("blocked push never returned");
  }
  const double took = seconds_since (start);
  EXPECT_EQ (pushed.get (), GST_FLOW_OK);
  EXPECT_LT (took, 0.2 + kSlack) << "blocked for " << took << " s";
  // Then it dropped as gop: [1 2 3] went, 4 is queued.
  EXPECT_EQ (level_buffers (q.h->element), 1u);
  EXPECT_EQ (stat (get_stats (q.h->element), "dropped-buffers"), 3u);
}

// The same for a serialized query waiting for its answer.
TEST (ResilientQueueBlocking, LoweringMaxBlockTimeShortensAWaitingQuery)
{
  HeldQueue q;
  make_held_queue (q, "gop", "30000000000", 3);
  if (HasFatalFailure ())
    return;
  GstPad *harness_src = q.h->srcpad;
  auto start = SteadyClock::now ();
  auto answered = std::async (std::launch::async, [harness_src] {
    camrelay::CapsPtr caps{make_caps (0)};
    camrelay::QueryPtr query{gst_query_new_allocation (caps.get (), FALSE)};
    return gst_pad_peer_query (harness_src, query.get ());
  });
  ASSERT_EQ (answered.wait_for (200ms), std::future_status::timeout) << "the query did not wait";
  g_object_set (q.h->element, "max-block-time", guint64 (kBound * GST_SECOND), nullptr);
  if (answered.wait_for (2s) != std::future_status::ready) {
    ADD_FAILURE () << "the waiting query kept its old deadline";
    q.hold->release ();
    if (answered.wait_for (kWaitTimeout) != std::future_status::ready)
      abort_on_hang ("waiting query never returned");
  }
  const double took = seconds_since (start);
  EXPECT_FALSE (answered.get ());
  EXPECT_LT (took, 0.2 + kSlack) << "waited for " << took << " s";
}

TEST (ResilientQueueBlocking, FlushStartReleasesABlockedPush)
{
  HeldQueue q;
  make_held_queue (q, "none", "60000000000", 3);
  if (HasFatalFailure ())
    return;
  SignalCounter overruns (q.h->element, "overrun");
  GstHarness *h = q.h.get ();
  auto pushed = std::async (std::launch::async, [h] { return gst_harness_push (h, make_buffer (4, true)); });
  ASSERT_TRUE (overruns.wait_count (1));

  auto start = SteadyClock::now ();
  EXPECT_TRUE (gst_harness_push_event (h, gst_event_new_flush_start ()));
  if (pushed.wait_for (10s) != std::future_status::ready)
    abort_on_hang ("FLUSH_START did not release the blocked push");
  double took = seconds_since (start);
  EXPECT_EQ (pushed.get (), GST_FLOW_FLUSHING);
  EXPECT_LT (took, 1.0) << "blocked push released only after " << took << " s";

  q.hold->release ();
  EXPECT_TRUE (gst_harness_push_event (h, gst_event_new_flush_stop (TRUE)));
  EXPECT_EQ (level_buffers (q.h->element), 0u) << "FLUSH_STOP must empty the queue";
  gst_harness_push_event (h, make_segment_event (0));
  ASSERT_EQ (gst_harness_push (h, make_buffer (10, true)), GST_FLOW_OK);
  // Buffer 0 was flushed inside the blocking probe: it never left.
  ASSERT_TRUE (q.recorder->wait_buffers (1)) << "seen: " << ::testing::PrintToString (q.recorder->tokens ());
  EXPECT_EQ (q.recorder->offsets (), (V{10})) << "flushed buffers came out";
}

TEST (ResilientQueueBlocking, NullWhileBlockedBothWaysHarness)
{
  HeldQueue q;
  make_held_queue (q, "none", "60000000000", 2);
  if (HasFatalFailure ())
    return;
  SignalCounter overruns (q.h->element, "overrun");
  GstHarness *h = q.h.get ();
  auto pushed = std::async (std::launch::async, [h] { return gst_harness_push (h, make_buffer (3, true)); });
  ASSERT_TRUE (overruns.wait_count (1));

  auto start = SteadyClock::now ();
  EXPECT_EQ (gst_element_set_state (h->element, GST_STATE_NULL), GST_STATE_CHANGE_SUCCESS);
  double took = seconds_since (start);
  EXPECT_LT (took, 1.0) << "NULL took " << took << " s";
  if (pushed.wait_for (2s) != std::future_status::ready)
    abort_on_hang ("NULL did not release the blocked push");
  EXPECT_EQ (pushed.get (), GST_FLOW_FLUSHING);
}

TEST (ResilientQueueBlocking, NullWhileBlockedBothWaysPipeline)
{
  GError *error = nullptr;
  camrelay::ElementPtr pipeline{gst_parse_launch (
      "appsrc name=src format=time caps=\"video/x-rqtest,gen=(int)0\" "
      "! resilientqueue name=q leaky=none max-block-time=60000000000 max-size-buffers=2 "
      "max-size-time=0 max-size-bytes=0 ! fakesink sync=true",
      &error)};
  camrelay::GErrorPtr error_owner{error};
  ASSERT_NE (pipeline, nullptr) << (error ? error->message : "");
  ASSERT_EQ (error, nullptr) << error->message;
  gst_object_ref_sink (pipeline.get ());
  camrelay::ElementPtr src{gst_bin_get_by_name (GST_BIN (pipeline.get ()), "src")};
  camrelay::ElementPtr queue{gst_bin_get_by_name (GST_BIN (pipeline.get ()), "q")};
  ASSERT_NE (src, nullptr);
  ASSERT_NE (queue, nullptr);
  SignalCounter overruns (queue.get (), "overrun");

  // Timestamps far ahead: fakesink waits on the clock (or in preroll), so
  // downstream is stuck; the queue fills and appsrc's thread blocks in it.
  for (guint64 n = 0; n < 6; n++)
    ASSERT_EQ (gst_app_src_push_buffer (GST_APP_SRC (src.get ()),
                   make_buffer (n, true, 100, (100 + n) * GST_SECOND)),
        GST_FLOW_OK);
  ASSERT_NE (gst_element_set_state (pipeline.get (), GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
  ASSERT_TRUE (overruns.wait_count (1)) << "upstream never blocked on the full queue";

  auto start = SteadyClock::now ();
  auto stopped = std::async (std::launch::async,
      [&] { return gst_element_set_state (pipeline.get (), GST_STATE_NULL); });
  if (stopped.wait_for (10s) != std::future_status::ready)
    abort_on_hang ("pipeline state change to NULL hung");
  double took = seconds_since (start);
  EXPECT_EQ (stopped.get (), GST_STATE_CHANGE_SUCCESS);
  EXPECT_LT (took, 1.0) << "NULL took " << took << " s";
}

}  // namespace
