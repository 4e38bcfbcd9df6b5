// resilientqueue: every wait is bounded and flush-aware: FLUSH_START, NULL
// and a downstream failure release what waits, and an EOS that can no longer
// go out is reported.  (max-block-time itself: test_resilientqueue_time.cpp.)
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

// How late a wait released by a flush or a state change may return on a
// loaded two-core machine: the element's own wake-up, not its once-a-second
// safety net, must release it.
constexpr double kSlack = 0.25;

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

// EOS after downstream failed (not linked, or an error): nothing will ever
// carry it downstream, so, as queue does, the element posts a flow error;
// otherwise a pipeline waiting for EOS would wait forever.
enum class Failure { NotLinked, Error };

class EosAfterDownstreamFailureTest : public ::testing::TestWithParam<Failure> {};

GstFlowReturn
refuse_buffer (GstPad *, GstObject *, GstBuffer *buffer)
{
  gst_buffer_unref (buffer);
  return GST_FLOW_ERROR;
}

TEST_P (EosAfterDownstreamFailureTest, PostsAFlowError)
{
  HarnessPtr h = make_harness ({{"leaky", "gop"}});
  ASSERT_NE (h, nullptr);
  camrelay::BusPtr bus{gst_bus_new ()};
  gst_element_set_bus (h->element, bus.get ());
  camrelay::PadPtr srcpad{gst_element_get_static_pad (h->element, "src")};
  const GstFlowReturn expected = GetParam () == Failure::NotLinked ? GST_FLOW_NOT_LINKED : GST_FLOW_ERROR;
  if (GetParam () == Failure::NotLinked)
    ASSERT_TRUE (gst_pad_unlink (srcpad.get (), h->sinkpad));
  else
    gst_pad_set_chain_function (h->sinkpad, refuse_buffer);

  ASSERT_EQ (gst_harness_push (h.get (), make_buffer (0, true)), GST_FLOW_OK);
  // A serialized query returns once the src task has failed on buffer 0.
  {
    camrelay::CapsPtr caps{make_caps (0)};
    camrelay::QueryPtr query{gst_query_new_allocation (caps.get (), FALSE)};
    EXPECT_FALSE (gst_pad_peer_query (h->srcpad, query.get ()));
  }
  EXPECT_EQ (gst_harness_push (h.get (), make_buffer (1, true)), expected);
  camrelay::MessagePtr early{gst_bus_pop_filtered (bus.get (), GST_MESSAGE_ERROR)};
  EXPECT_EQ (early, nullptr) << "a failed push alone is upstream's to report";

  EXPECT_FALSE (gst_pad_push_event (h->srcpad, gst_event_new_eos ()));
  camrelay::MessagePtr error{gst_bus_timed_pop_filtered (bus.get (), 5 * GST_SECOND, GST_MESSAGE_ERROR)};
  ASSERT_NE (error, nullptr) << "EOS after a downstream failure vanished without an error";
  EXPECT_EQ (GST_MESSAGE_SRC (error.get ()), GST_OBJECT (h->element));
  GError *gerror = nullptr;
  gst_message_parse_error (error.get (), &gerror, nullptr);
  camrelay::GErrorPtr gerror_owner{gerror};
  EXPECT_TRUE (g_error_matches (gerror, GST_STREAM_ERROR, GST_STREAM_ERROR_FAILED))
      << gerror->message;
  const GstStructure *details = nullptr;
  gst_message_parse_error_details (error.get (), &details);
  gint flow = 0;
  ASSERT_TRUE (details && gst_structure_get_int (details, "flow-return", &flow));
  EXPECT_EQ (flow, expected);
  gst_element_set_bus (h->element, nullptr);
}

INSTANTIATE_TEST_SUITE_P (Downstream, EosAfterDownstreamFailureTest,
    ::testing::Values (Failure::NotLinked, Failure::Error),
    [] (const ::testing::TestParamInfo<Failure> &info) {
      return info.param == Failure::NotLinked ? "NotLinked" : "Error";
    });

}  // namespace
