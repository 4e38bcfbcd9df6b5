// resilientqueue: where time is the subject (max-block-time bounds, the drop
// message interval), driven by the harness's GstTestClock: the element waits
// on an entry of the pipeline's clock, and the test moves that clock, so
// every figure is exact.  One test keeps the system clock, where the real
// clock itself matters.
#include <gst/check/gstharness.h>
#include <gst/check/gsttestclock.h>
#include <gst/gst.h>
#include <gtest/gtest.h>

#include <future>
#include <vector>

#include "common/gstref.h"
#include "rq_test_util.h"

using namespace rqtest;

namespace {

using V = std::vector<guint64>;
using TestClockPtr = camrelay::ObjectPtr<GstTestClock>;

constexpr GstClockTime kBound = 300 * GST_MSECOND;  // max-block-time of most tests below

TestClockPtr
test_clock (GstHarness *h)
{
  return TestClockPtr{gst_harness_get_testclock (h)};
}

GstClockTime
now (GstHarness *h)
{
  return gst_clock_get_time (GST_CLOCK (test_clock (h).get ()));
}

// Waits (10 s at most) until the element waits on an entry of the test
// clock; returns the time the entry is due, or GST_CLOCK_TIME_NONE.
GstClockTime
pending_entry_time (GstHarness *h)
{
  if (!gst_harness_wait_for_clock_id_waits (h, 1, 10))
    return GST_CLOCK_TIME_NONE;
  GstClockID id = nullptr;
  if (!gst_test_clock_peek_next_pending_id (test_clock (h).get (), &id))
    return GST_CLOCK_TIME_NONE;
  const GstClockTime time = gst_clock_id_get_time (id);
  gst_clock_id_unref (id);
  return time;
}

bool
has_pending_entry (GstHarness *h)
{
  return gst_test_clock_peek_id_count (test_clock (h).get ()) > 0;
}

// Ends every wait of the element: moves the test clock past any deadline
// and wakes the waiters to look at it (setting a property does).
void
end_waits (GstHarness *h)
{
  TestClockPtr clock = test_clock (h);
  gst_test_clock_set_time (clock.get (),
      gst_clock_get_time (GST_CLOCK (clock.get ())) + 2 * 3600 * GST_SECOND);
  guint64 block_time = 0;
  g_object_get (h->element, "max-block-time", &block_time, nullptr);
  g_object_set (h->element, "max-block-time", block_time, nullptr);
}

// A push or a query made in a thread of its own.  A failed assertion must
// not leave the test waiting for it forever (the test clock does not move by
// itself): on the way out, it ends the element's waits first.
template <typename T>
class AsyncCall {
 public:
  template <typename F>
  AsyncCall (GstHarness *h, F call) : h_ (h), result_ (std::async (std::launch::async, call))
  {
  }
  ~AsyncCall ()
  {
    if (result_.valid () && result_.wait_for (0ms) != std::future_status::ready) {
      end_waits (h_);
      if (result_.wait_for (kWaitTimeout) != std::future_status::ready)
        abort_on_hang ("a push or query the test gave up on");
    }
  }

  bool returned () const { return result_.wait_for (0ms) == std::future_status::ready; }

  // What only the clock ends: waits for it (it must come soon).
  T get (const char *what)
  {
    if (result_.wait_for (kWaitTimeout) != std::future_status::ready)
      abort_on_hang (what);
    return result_.get ();
  }

  // What only a wake-up of the element's own can end (the test clock does
  // not move): without it, fails, then ends the wait so that the test can go
  // on.
  T get_woken (const char *what)
  {
    if (result_.wait_for (kWaitTimeout) != std::future_status::ready) {
      ADD_FAILURE () << what << ": still waiting";
      end_waits (h_);
    }
    return get (what);
  }

 private:
  GstHarness *h_;
  std::future<T> result_;
};

AsyncCall<GstFlowReturn>
push_async (GstHarness *h, guint64 n, bool keyframe)
{
  return AsyncCall<GstFlowReturn> (h, [h, n, keyframe] {
    return gst_harness_push (h, make_buffer (n, keyframe));
  });
}

AsyncCall<bool>
allocation_query_async (GstHarness *h)
{
  return AsyncCall<bool> (h, [h] {
    camrelay::CapsPtr caps{make_caps (0)};
    camrelay::QueryPtr query{gst_query_new_allocation (caps.get (), FALSE)};
    return bool (gst_pad_peer_query (h->srcpad, query.get ()));
  });
}

// ---------------------------------------------------------------------------
// max-block-time

TEST (ResilientQueueTime, MaxBlockTimeBoundsAPushThenDropsAsGop)
{
  HeldQueue q;
  make_held_queue (q, "none", "300000000", 3, Stall::Hold, TestClock::Harness);  // [1K 2D 3D]
  if (HasFatalFailure ())
    return;
  GstHarness *h = q.h.get ();
  const GstClockTime start = now (h);

  // A delta unit cannot make room (its GOP is still being received): the
  // push waits for exactly max-block-time, then drops it.
  auto pushed4 = push_async (h, 4, false);
  ASSERT_EQ (pending_entry_time (h), start + kBound) << "the push waits on no deadline";
  EXPECT_FALSE (pushed4.returned ()) << "returned before its deadline";
  ASSERT_TRUE (gst_harness_crank_single_clock_wait (h));
  EXPECT_EQ (pushed4.get ("push after its deadline"), GST_FLOW_OK);
  Stats stats = get_stats (h->element);
  EXPECT_EQ (stat (stats, rq_names::STAT_TIME_BLOCKED), kBound);
  EXPECT_EQ (stat (stats, rq_names::FIELD_DROPPED_BUFFERS), 1u);
  EXPECT_FALSE (has_pending_entry (h));

  // A keyframe: after the bound the complete GOP [1 2 3] goes instead.
  auto pushed5 = push_async (h, 5, true);
  ASSERT_EQ (pending_entry_time (h), start + 2 * kBound);
  EXPECT_FALSE (pushed5.returned ());
  ASSERT_TRUE (gst_harness_crank_single_clock_wait (h));
  EXPECT_EQ (pushed5.get ("push after its deadline"), GST_FLOW_OK);
  EXPECT_EQ (level_buffers (h->element), 1u);
  stats = get_stats (h->element);
  EXPECT_EQ (stat (stats, rq_names::STAT_TIME_BLOCKED), 2 * kBound);
  EXPECT_EQ (stat (stats, rq_names::FIELD_DROPPED_BUFFERS), 4u);
  EXPECT_EQ (stat (stats, rq_names::FIELD_DROPPED_BYTES), 400u);
  EXPECT_GE (stat (stats, rq_names::FIELD_DROPPED_GOPS), 1u);
  EXPECT_EQ (stat (stats, rq_names::STAT_OVERRUNS), 2u);

  q.hold->release ();
  ASSERT_TRUE (q.recorder->wait_buffers (2));
  EXPECT_EQ (q.recorder->offsets (), (V{0, 5}));
  auto buffers = q.recorder->buffers ();
  EXPECT_TRUE (buffers[1].discont);
  EXPECT_TRUE (buffers[1].keyframe);
}

// Room made before the deadline: the push goes in, having waited only until
// then, and its clock entry is cancelled.
TEST (ResilientQueueTime, RoomBeforeTheDeadlineEndsTheWait)
{
  HeldQueue q;
  make_held_queue (q, "none", "300000000", 3, Stall::Hold, TestClock::Harness);
  if (HasFatalFailure ())
    return;
  GstHarness *h = q.h.get ();
  const GstClockTime start = now (h);
  auto pushed = push_async (h, 4, true);
  ASSERT_EQ (pending_entry_time (h), start + kBound);
  gst_test_clock_set_time (test_clock (h).get (), start + 100 * GST_MSECOND);
  q.hold->release ();
  EXPECT_EQ (pushed.get_woken ("push once there is room"), GST_FLOW_OK);
  EXPECT_FALSE (has_pending_entry (h)) << "the deadline's entry outlived the wait";
  Stats stats = get_stats (h->element);
  EXPECT_EQ (stat (stats, rq_names::STAT_TIME_BLOCKED), 100 * GST_MSECOND);
  EXPECT_EQ (stat (stats, rq_names::FIELD_DROPPED_BUFFERS), 0u);
  gst_harness_push_event (h, make_marker_event (1));
  ASSERT_TRUE (q.recorder->wait_marker (1));
  EXPECT_EQ (q.recorder->offsets (), (V{0, 1, 2, 3, 4}));
}

TEST (ResilientQueueTime, SerializedQueryOnFullQueueIsRefusedAtTheDeadline)
{
  HeldQueue q;
  make_held_queue (q, "gop", "300000000", 3, Stall::Hold, TestClock::Harness);
  if (HasFatalFailure ())
    return;
  GstHarness *h = q.h.get ();
  const GstClockTime start = now (h);
  auto answered = allocation_query_async (h);
  ASSERT_EQ (pending_entry_time (h), start + kBound) << "the query waits on no deadline";
  EXPECT_FALSE (answered.returned ()) << "refused before its deadline";
  ASSERT_TRUE (gst_harness_crank_single_clock_wait (h));
  EXPECT_FALSE (answered.get ("query after its deadline"))
      << "query answered although downstream is held";
  EXPECT_FALSE (has_pending_entry (h));

  // The queue still works afterwards.
  q.hold->release ();
  ASSERT_TRUE (q.recorder->wait_buffers (4));
  ASSERT_EQ (gst_harness_push (h, make_buffer (4, true)), GST_FLOW_OK);
  ASSERT_TRUE (q.recorder->wait_buffers (5));
  EXPECT_EQ (q.recorder->offsets (), (V{0, 1, 2, 3, 4}));
}

// max-block-time lowered below the time a push has waited already: the push
// gives up at once, without waiting for its old deadline.
TEST (ResilientQueueTime, LoweringMaxBlockTimeShortensABlockedPush)
{
  HeldQueue q;
  make_held_queue (q, "none", "30000000000", 3, Stall::Hold, TestClock::Harness);  // [1K 2D 3D]
  if (HasFatalFailure ())
    return;
  GstHarness *h = q.h.get ();
  const GstClockTime start = now (h);
  auto pushed = push_async (h, 4, true);
  ASSERT_EQ (pending_entry_time (h), start + 30 * GST_SECOND);

  // The clock moves on without reaching the entry; nothing fires.
  gst_test_clock_set_time (test_clock (h).get (), start + 200 * GST_MSECOND);
  g_object_set (h->element, "max-block-time", guint64 (100 * GST_MSECOND), nullptr);
  EXPECT_EQ (pushed.get_woken ("blocked push after max-block-time was lowered"),
      GST_FLOW_OK);
  EXPECT_FALSE (has_pending_entry (h)) << "the old deadline's entry outlived the wait";
  Stats stats = get_stats (h->element);
  EXPECT_EQ (stat (stats, rq_names::STAT_TIME_BLOCKED), 200 * GST_MSECOND);
  // Then it dropped as gop: [1 2 3] went, 4 is queued.
  EXPECT_EQ (level_buffers (h->element), 1u);
  EXPECT_EQ (stat (stats, rq_names::FIELD_DROPPED_BUFFERS), 3u);
}

// The same for a serialized query waiting for its answer.
TEST (ResilientQueueTime, LoweringMaxBlockTimeShortensAWaitingQuery)
{
  HeldQueue q;
  make_held_queue (q, "gop", "30000000000", 3, Stall::Hold, TestClock::Harness);
  if (HasFatalFailure ())
    return;
  GstHarness *h = q.h.get ();
  const GstClockTime start = now (h);
  auto answered = allocation_query_async (h);
  ASSERT_EQ (pending_entry_time (h), start + 30 * GST_SECOND);
  gst_test_clock_set_time (test_clock (h).get (), start + 200 * GST_MSECOND);
  g_object_set (h->element, "max-block-time", guint64 (100 * GST_MSECOND), nullptr);
  EXPECT_FALSE (answered.get_woken ("waiting query after max-block-time was lowered"));
  EXPECT_FALSE (has_pending_entry (h));
}

// Without a clock from a pipeline, time is the system clock's: the one test
// where the real clock itself is the subject.  Only the lower bound is
// exact; the upper one allows for a loaded machine.
TEST (ResilientQueueTime, WithoutAPipelineClockTheSystemClockBoundsAPush)
{
  HeldQueue q;
  make_held_queue (q, "none", "300000000", 3, Stall::Hold, TestClock::System);
  if (HasFatalFailure ())
    return;
  gst_element_set_clock (q.h->element, nullptr);
  const auto start = SteadyClock::now ();
  auto pushed = push_async (q.h.get (), 4, false);
  EXPECT_EQ (pushed.get ("push on the system clock"), GST_FLOW_OK);
  const double took = seconds_since (start);
  EXPECT_GE (took, 0.3 - 0.002) << "returned before max-block-time";
  EXPECT_LT (took, 5.0);
  EXPECT_GE (stat (get_stats (q.h->element), rq_names::STAT_TIME_BLOCKED), kBound);
}

// ---------------------------------------------------------------------------
// The resilientqueue-dropped element message

void
check_dropped_message (GstMessage *message, guint64 buffers, guint64 bytes, int leaky)
{
  ASSERT_NE (message, nullptr);
  const GstStructure *s = gst_message_get_structure (message);
  ASSERT_NE (s, nullptr);
  EXPECT_STREQ (gst_structure_get_name (s), rq_names::DROP_MESSAGE);
  guint64 value = 0;
  EXPECT_TRUE (gst_structure_get_uint64 (s, rq_names::FIELD_DROPPED_BUFFERS, &value));
  EXPECT_EQ (value, buffers);
  EXPECT_TRUE (gst_structure_get_uint64 (s, rq_names::FIELD_DROPPED_BYTES, &value));
  EXPECT_EQ (value, bytes);
  EXPECT_TRUE (gst_structure_get_uint64 (s, rq_names::FIELD_DROPPED_GOPS, &value));
  const GValue *leaky_value = gst_structure_get_value (s, rq_names::FIELD_LEAKY);
  ASSERT_NE (leaky_value, nullptr);
  EXPECT_STREQ (G_VALUE_TYPE_NAME (leaky_value), "GstResilientQueueLeaky");
  if (G_VALUE_HOLDS_ENUM (leaky_value)) {
    EXPECT_EQ (g_value_get_enum (leaky_value), leaky);
  }
}

TEST (ResilientQueueTime, DroppedMessageIsRateLimited)
{
  HarnessPtr h = make_harness ({{"leaky", "upstream"}, {"max-size-buffers", "1"},
      {"max-size-time", "0"}, {"max-size-bytes", "0"}}, TestClock::Harness);
  ASSERT_NE (h, nullptr);
  camrelay::BusPtr bus{gst_bus_new ()};
  gst_element_set_bus (h->element, bus.get ());
  DownstreamHold hold (h->element);
  ASSERT_EQ (gst_harness_push (h.get (), make_buffer (0, true)), GST_FLOW_OK);
  ASSERT_EQ (hold.wait_parked (), 0);
  ASSERT_EQ (gst_harness_push (h.get (), make_buffer (1, true)), GST_FLOW_OK);  // fills
  const GstClockTime start = now (h.get ());

  // First drop: posted at once (the push posts it before it returns).
  ASSERT_EQ (gst_harness_push (h.get (), make_buffer (2, true, 10)), GST_FLOW_OK);
  camrelay::MessagePtr first{gst_bus_pop_filtered (bus.get (), GST_MESSAGE_ELEMENT)};
  ASSERT_NE (first, nullptr) << "first drop posted no message";
  check_dropped_message (first.get (), 1, 10, 1);
  EXPECT_FALSE (has_pending_entry (h.get ()));

  // More drops within the second: no message, but a timer for the rest,
  // due exactly a second after the first message.
  for (guint64 n = 3; n <= 5; n++)
    ASSERT_EQ (gst_harness_push (h.get (), make_buffer (n, true, 20)), GST_FLOW_OK);
  camrelay::MessagePtr early{gst_bus_pop_filtered (bus.get (), GST_MESSAGE_ELEMENT)};
  EXPECT_EQ (early, nullptr) << "second message within the same second";
  ASSERT_EQ (pending_entry_time (h.get ()), start + GST_SECOND);

  // The second passes, with no further drop: the remainder is posted (from
  // the thread that moves the clock).
  ASSERT_TRUE (gst_harness_crank_single_clock_wait (h.get ()));
  camrelay::MessagePtr second{gst_bus_pop_filtered (bus.get (), GST_MESSAGE_ELEMENT)};
  ASSERT_NE (second, nullptr) << "accumulated drops never reported";
  check_dropped_message (second.get (), 3, 60, 1);
  EXPECT_FALSE (has_pending_entry (h.get ())) << "a timer with nothing to report";

  // A drop within the second after that one waits again; one after it is
  // posted at once.
  ASSERT_EQ (gst_harness_push (h.get (), make_buffer (6, true, 30)), GST_FLOW_OK);
  EXPECT_EQ (camrelay::MessagePtr (gst_bus_pop_filtered (bus.get (), GST_MESSAGE_ELEMENT)), nullptr);
  ASSERT_EQ (pending_entry_time (h.get ()), start + 2 * GST_SECOND);
  gst_test_clock_set_time (test_clock (h.get ()).get (), start + 3 * GST_SECOND);
  ASSERT_EQ (gst_harness_push (h.get (), make_buffer (7, true, 40)), GST_FLOW_OK);
  camrelay::MessagePtr third{gst_bus_pop_filtered (bus.get (), GST_MESSAGE_ELEMENT)};
  ASSERT_NE (third, nullptr) << "a drop more than a second after the last message waited";
  check_dropped_message (third.get (), 2, 70, 1);

  Stats stats = get_stats (h->element);
  EXPECT_EQ (stat (stats, rq_names::FIELD_DROPPED_BUFFERS), 6u);
  EXPECT_EQ (stat (stats, rq_names::FIELD_DROPPED_BYTES), 140u);
  hold.release ();
  gst_element_set_bus (h->element, nullptr);
}

// An element whose drop message is still pending (its timer armed on the
// system clock) is finalized when its owner lets go of it, not later when
// the clock's thread gets round to the cancelled timer: the real clock's
// thread is the subject.
TEST (ResilientQueueTime, PendingDropMessageDoesNotKeepTheElementAlive)
{
  int alive = 0;
  for (int round = 0; round < 200; round++) {
    HarnessPtr h = make_harness ({{"leaky", "upstream"}, {"max-size-buffers", "1"},
        {"max-size-time", "0"}, {"max-size-bytes", "0"}});
    ASSERT_NE (h, nullptr);
    auto hold = std::make_unique<DownstreamHold> (h->element);
    ASSERT_EQ (gst_harness_push (h.get (), make_buffer (0, true)), GST_FLOW_OK);
    ASSERT_EQ (hold->wait_parked (), 0);
    // 1 fills the queue; 2 is dropped and reported at once, 3 and 4 are
    // dropped within the second: their report waits on the timer.
    for (guint64 n = 1; n <= 4; n++)
      ASSERT_EQ (gst_harness_push (h.get (), make_buffer (n, true)), GST_FLOW_OK);
    GWeakRef element;
    g_weak_ref_init (&element, h->element);
    hold.reset ();
    h.reset ();
    if (GObject *still = static_cast<GObject *> (g_weak_ref_get (&element))) {
      alive++;
      g_object_unref (still);
    }
    g_weak_ref_clear (&element);
  }
  EXPECT_EQ (alive, 0) << "elements outlived their owner in " << alive << " of 200 rounds";
}

}  // namespace
