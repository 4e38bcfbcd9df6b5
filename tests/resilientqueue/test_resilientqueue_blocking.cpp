// resilientqueue: every wait is bounded and flush-aware: max-block-time,
// serialized queries on a full queue, FLUSH_START and NULL while blocked.
//
// Where a test checks that a flush or a deactivation releases a wait, the
// consumer is stalled by a Gate, which ignores flushing: with a consumer
// that returns on flushing (DownstreamHold), the src task's failed push would
// wake every waiter by itself, and the element's own wake-up would go
// untested.
#include <gst/check/gstharness.h>
#include <gst/gst.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <future>
#include <vector>

#include "common/gstref.h"
#include "rq_test_util.h"

using namespace rqtest;

namespace {

using V = std::vector<guint64>;

// Harness with downstream stalled on buffer 0 and buffers 1..fill queued
// (1 a keyframe, the rest delta units): by a DownstreamHold, released by a
// flush, or by a Gate, which only the test opens.
struct HeldQueue {
  HarnessPtr h;
  std::unique_ptr<Gate> gate;
  std::unique_ptr<Recorder> recorder;
  std::unique_ptr<DownstreamHold> hold;

  ~HeldQueue ()
  {
    hold.reset ();
    gate.reset ();
    recorder.reset ();
    h.reset ();
  }
};

enum class Stall { Hold, Gate };

void
make_held_queue (HeldQueue &q, const char *leaky, const char *block_time, guint64 fill,
    Stall stall = Stall::Hold)
{
  q.h = make_harness ({{"leaky", leaky}, {"max-size-buffers", std::to_string (fill).c_str ()},
      {"max-size-time", "0"}, {"max-size-bytes", "0"}, {"max-block-time", block_time}});
  ASSERT_NE (q.h, nullptr);
  if (stall == Stall::Gate) {
    q.gate = std::make_unique<Gate> (q.h->element);
    q.gate->close ();
  }
  q.recorder = std::make_unique<Recorder> (q.h->element);
  if (stall == Stall::Hold)
    q.hold = std::make_unique<DownstreamHold> (q.h->element);
  ASSERT_EQ (gst_harness_push (q.h.get (), make_buffer (0, true)), GST_FLOW_OK);
  if (stall == Stall::Hold)
    ASSERT_EQ (q.hold->wait_parked (), 0);
  else
    ASSERT_EQ (q.gate->wait_holding (), 0);
  for (guint64 n = 1; n <= fill; n++)
    ASSERT_EQ (gst_harness_push (q.h.get (), make_buffer (n, n == 1)), GST_FLOW_OK);
  ASSERT_EQ (level_buffers (q.h->element), fill);
}

// Waits for `result` (a push or query waiting in `queue`) for up to
// `within`.  Past that, fails, then lets downstream go and ends every wait
// of the element under way (max-block-time applies to those too), so that
// the test can end; aborts if even that does not help.
template <typename T>
void
expect_ready_within (std::future<T> &result, std::chrono::milliseconds within, const char *what,
    GstElement *queue, Gate *gate)
{
  if (result.wait_for (within) == std::future_status::ready)
    return;
  ADD_FAILURE () << what << " not within " << within.count () << " ms";
  if (gate)
    gate->open ();
  g_object_set (queue, "max-block-time", guint64 (GST_MSECOND), nullptr);
  if (result.wait_for (kWaitTimeout) != std::future_status::ready)
    abort_on_hang (what);
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
  EXPECT_LT (took4, kBound + kSlack);
  Stats stats = get_stats (q.h->element);
  EXPECT_GE (stat (stats, "time-blocked"), guint64 ((kBound - 0.005) * GST_SECOND));
  EXPECT_EQ (stat (stats, "dropped-buffers"), 1u);
  guint64 blocked_after_first = stat (stats, "time-blocked");

  // A keyframe: after the bound the complete GOP [1 2 3] goes instead.
  auto [ret5, took5] = timed_push (q.h.get (), make_buffer (5, true));
  EXPECT_EQ (ret5, GST_FLOW_OK);
  EXPECT_GE (took5, kBound - 0.005);
  EXPECT_LT (took5, kBound + kSlack);
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
  EXPECT_LT (took, kBound + kSlack);

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
  make_held_queue (q, "none", "60000000000", 3, Stall::Gate);
  if (HasFatalFailure ())
    return;
  SignalCounter overruns (q.h->element, "overrun");
  GstHarness *h = q.h.get ();
  auto pushed = std::async (std::launch::async, [h] { return gst_harness_push (h, make_buffer (4, true)); });
  ASSERT_TRUE (overruns.wait_count (1));
  ASSERT_EQ (pushed.wait_for (100ms), std::future_status::timeout) << "the push did not wait for room";

  // FLUSH_START returns once the src task has paused, which it cannot do
  // before the gate opens: send it from another thread.  The blocked push
  // must not wait for that.
  auto start = SteadyClock::now ();
  auto flushed = std::async (std::launch::async,
      [h] { return gst_harness_push_event (h, gst_event_new_flush_start ()); });
  expect_ready_within (pushed, 2s, "FLUSH_START releasing the blocked push", h->element, q.gate.get ());
  const double took = seconds_since (start);
  EXPECT_EQ (pushed.get (), GST_FLOW_FLUSHING);
  EXPECT_LT (took, kSlack) << "blocked push released only after " << took << " s";

  q.gate->open ();
  if (flushed.wait_for (kWaitTimeout) != std::future_status::ready)
    abort_on_hang ("FLUSH_START did not return once downstream let go");
  EXPECT_TRUE (flushed.get ());
  EXPECT_TRUE (gst_harness_push_event (h, gst_event_new_flush_stop (TRUE)));
  EXPECT_EQ (level_buffers (q.h->element), 0u) << "FLUSH_STOP must empty the queue";
  gst_harness_push_event (h, make_segment_event (0));
  ASSERT_EQ (gst_harness_push (h, make_buffer (10, true)), GST_FLOW_OK);
  gst_harness_push_event (h, make_marker_event (1));
  ASSERT_TRUE (q.recorder->wait_marker (1)) << "seen: " << ::testing::PrintToString (q.recorder->tokens ());
  // Buffer 0 was in the gate when the flush came (the recorder, after the
  // gate, may see it before the flushing pad refuses it); what was queued
  // is gone.
  V out;
  for (guint64 offset : q.recorder->offsets ())
    if (offset != 0)
      out.push_back (offset);
  EXPECT_EQ (out, (V{10})) << "flushed buffers came out";
}

// Sticky events still queued when a flush comes describe the stream after
// it too: upstream does not send them again (the sink pad has them), so they
// must not be lost with the flushed data, as in queue.  SEGMENT is not kept:
// a new one follows the flush.
TEST (ResilientQueueBlocking, FlushKeepsQueuedStickyEvents)
{
  HeldQueue q;
  make_held_queue (q, "gop", "5000000000", 2);
  if (HasFatalFailure ())
    return;
  GstHarness *h = q.h.get ();
  gst_harness_push_event (h, make_caps_event (1));
  gst_harness_push_event (h, make_tag_event ("kept"));
  ASSERT_EQ (gst_harness_push (h, make_buffer (3, false)), GST_FLOW_OK);
  // FLUSH_START releases the held buffer 0 (DownstreamHold gives way to it).
  EXPECT_TRUE (gst_harness_push_event (h, gst_event_new_flush_start ()));
  q.hold->release ();
  EXPECT_TRUE (gst_harness_push_event (h, gst_event_new_flush_stop (TRUE)));
  Recorder after_flush (h->element);
  gst_harness_push_event (h, make_segment_event (0));
  ASSERT_EQ (gst_harness_push (h, make_buffer (10, true)), GST_FLOW_OK);
  gst_harness_push_event (h, make_marker_event (1));
  ASSERT_TRUE (after_flush.wait_marker (1));
  std::vector<std::string> seen = after_flush.tokens ();
  const auto at = [&] (const char *token) { return std::find (seen.begin (), seen.end (), token) - seen.begin (); };
  EXPECT_LT (at ("caps:1"), at ("B10")) << "caps lost in the flush: " << ::testing::PrintToString (seen);
  EXPECT_LT (at ("tag:kept"), at ("B10")) << "tags lost in the flush: " << ::testing::PrintToString (seen);
  EXPECT_EQ (after_flush.offsets (), (V{10}));
  camrelay::PadPtr srcpad{gst_element_get_static_pad (h->element, "src")};
  camrelay::CapsPtr caps{gst_pad_get_current_caps (srcpad.get ())};
  ASSERT_NE (caps, nullptr);
  int gen = -1;
  gst_structure_get_int (gst_caps_get_structure (caps.get (), 0), "gen", &gen);
  EXPECT_EQ (gen, 1);
}

// A serialized query waiting on a full queue is refused at once when the
// queue flushes, stops or fails downstream, not after max-block-time (30 s).
enum class QueryRelease { FlushStart, Null, NotLinked };

class QueryReleaseTest : public ::testing::TestWithParam<QueryRelease> {};

TEST_P (QueryReleaseTest, WaitingQueryIsRefusedAtOnce)
{
  HeldQueue q;
  make_held_queue (q, "gop", "30000000000", 3, Stall::Gate);
  if (HasFatalFailure ())
    return;
  GstHarness *h = q.h.get ();
  auto answered = std::async (std::launch::async, [h] {
    camrelay::CapsPtr caps{make_caps (0)};
    camrelay::QueryPtr query{gst_query_new_allocation (caps.get (), FALSE)};
    return gst_pad_peer_query (h->srcpad, query.get ());
  });
  ASSERT_EQ (answered.wait_for (100ms), std::future_status::timeout) << "the query did not wait";

  auto start = SteadyClock::now ();
  std::future<bool> released;
  switch (GetParam ()) {
    case QueryRelease::FlushStart:
      // Returns once downstream lets go: see FlushStartReleasesABlockedPush.
      released = std::async (std::launch::async,
          [h] { return bool (gst_harness_push_event (h, gst_event_new_flush_start ())); });
      break;
    case QueryRelease::Null:
      // Likewise: the state change joins the src task.
      released = std::async (std::launch::async, [h] {
        return gst_element_set_state (h->element, GST_STATE_NULL) == GST_STATE_CHANGE_SUCCESS;
      });
      break;
    case QueryRelease::NotLinked: {
      // Buffer 0 leaves the gate for an unlinked pad: the push fails.
      camrelay::PadPtr srcpad{gst_element_get_static_pad (h->element, "src")};
      gst_pad_unlink (srcpad.get (), h->sinkpad);
      q.gate->open ();
      released = std::async (std::launch::deferred, [] { return true; });
      break;
    }
  }
  expect_ready_within (answered, 2s, "the waiting query's release", h->element, q.gate.get ());
  const double took = seconds_since (start);
  EXPECT_FALSE (answered.get ()) << "query answered although it was never passed on";
  EXPECT_LT (took, kSlack) << "query refused only after " << took << " s";

  q.gate->open ();
  if (released.wait_for (kWaitTimeout) == std::future_status::timeout)
    abort_on_hang ("flush or state change did not return once downstream let go");
  EXPECT_TRUE (released.get ());
}

INSTANTIATE_TEST_SUITE_P (By, QueryReleaseTest,
    ::testing::Values (QueryRelease::FlushStart, QueryRelease::Null, QueryRelease::NotLinked),
    [] (const ::testing::TestParamInfo<QueryRelease> &info) {
      switch (info.param) {
        case QueryRelease::FlushStart:
          return "FlushStart";
        case QueryRelease::Null:
          return "Null";
        case QueryRelease::NotLinked:
          return "NotLinked";
      }
      return "";
    });

// NULL with upstream blocked on a full queue and the src task stuck
// downstream in a call that ignores flushing: the blocked push is released
// at once; NULL itself completes as soon as downstream lets go.
void
null_while_blocked_both_ways (GstHarness *h, GstElement *queue, Gate &gate)
{
  SignalCounter overruns (queue, "overrun");
  ASSERT_EQ (gate.wait_holding (), 0);
  auto pushed = std::async (std::launch::async, [h] { return gst_harness_push (h, make_buffer (3, true)); });
  ASSERT_TRUE (overruns.wait_count (1));
  ASSERT_EQ (pushed.wait_for (100ms), std::future_status::timeout) << "the push did not wait for room";

  auto start = SteadyClock::now ();
  auto stopped = std::async (std::launch::async,
      [h] { return gst_element_set_state (h->element, GST_STATE_NULL); });
  expect_ready_within (pushed, 2s, "NULL releasing the blocked push", queue, &gate);
  const double took = seconds_since (start);
  EXPECT_EQ (pushed.get (), GST_FLOW_FLUSHING);
  EXPECT_LT (took, kSlack) << "blocked push released only after " << took << " s";

  auto opened = SteadyClock::now ();
  gate.open ();
  if (stopped.wait_for (kWaitTimeout) != std::future_status::ready)
    abort_on_hang ("state change to NULL hung after downstream let go");
  EXPECT_EQ (stopped.get (), GST_STATE_CHANGE_SUCCESS);
  EXPECT_LT (seconds_since (opened), kSlack) << "NULL took long after downstream let go";
}

TEST (ResilientQueueBlocking, NullWhileBlockedBothWaysHarness)
{
  HeldQueue q;
  make_held_queue (q, "none", "60000000000", 2, Stall::Gate);
  if (HasFatalFailure ())
    return;
  null_while_blocked_both_ways (q.h.get (), q.h->element, *q.gate);
}

// The same in a bin with a real sink after the queue: the bin stops the sink
// first, then the queue.
TEST (ResilientQueueBlocking, NullWhileBlockedBothWaysInABin)
{
  HarnessPtr h{gst_harness_new_parse ("resilientqueue name=q leaky=none max-block-time=60000000000 "
                                      "max-size-buffers=2 max-size-time=0 max-size-bytes=0 "
                                      "! fakesink sync=true")};
  ASSERT_NE (h, nullptr);
  gst_harness_set_src_caps (h.get (), make_caps (0));
  camrelay::ElementPtr queue{gst_bin_get_by_name (GST_BIN (h->element), "q")};
  ASSERT_NE (queue, nullptr);
  Gate gate (queue.get ());
  gate.close ();
  for (guint64 n = 0; n < 3; n++)
    ASSERT_EQ (gst_harness_push (h.get (), make_buffer (n, true)), GST_FLOW_OK);
  null_while_blocked_both_ways (h.get (), queue.get (), gate);
}

}  // namespace
