// resilientqueue: randomized streams (GOP invariant, byte limit) and
// concurrent state-change / push stress.  Seeds are fixed and printed on
// failure.
#include <gst/check/gstharness.h>
#include <gst/gst.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <future>
#include <map>
#include <random>
#include <sstream>
#include <thread>
#include <vector>

#include "common/gstref.h"
#include "rq_test_util.h"

using namespace rqtest;

namespace {

void
push_stream_start (GstHarness *h, int caps_generation)
{
  gst_harness_push_event (h, gst_event_new_stream_start ("rqtest"));
  gst_harness_push_event (h, make_caps_event ((caps_generation)));
  gst_harness_push_event (h, make_segment_event (0));
}

// ---------------------------------------------------------------------------
// The GOP invariant on long randomized streams

struct RandomCase {
  unsigned seed;
  const char *leaky;
  int buffers;
};

std::ostream &
operator<< (std::ostream &os, const RandomCase &c)
{
  return os << "seed=" << c.seed << " leaky=" << c.leaky << " buffers=" << c.buffers;
}

class GopInvariantTest : public ::testing::TestWithParam<RandomCase> {};

// The stream alternates between phases where the consumer keeps up and
// stalls where it is held.  While flowing, the producer waits for the queue
// to drain every few buffers, fewer than the limits hold, so nothing is
// dropped for lack of room; during a stall a Gate holds the src task and the
// queue overflows unless the stall is short.  Both depend only on the seed.
TEST_P (GopInvariantTest, GapsRestartOnDiscontKeyframesUnderTheRightCaps)
{
  const RandomCase param = GetParam ();
  SCOPED_TRACE (::testing::Message () << param);
  std::mt19937 rng (param.seed);
  auto uniform = [&] (int lo, int hi) { return std::uniform_int_distribution<int> (lo, hi) (rng); };
  auto chance = [&] (double p) { return std::bernoulli_distribution (p) (rng); };

  constexpr guint64 kSpacing = 20 * GST_MSECOND;  // between buffers
  const int max_buffers = uniform (4, 30);
  const guint64 max_time = chance (0.5) ? 0 : guint64 (uniform (100, 800)) * GST_MSECOND;
  // Buffers the queue holds before it overflows.
  const int capacity = max_time ? std::min (max_buffers, int (max_time / kSpacing) + 1) : max_buffers;
  HarnessPtr h = make_harness ({{"leaky", param.leaky},
      {"max-size-buffers", std::to_string (max_buffers).c_str ()},
      {"max-size-time", std::to_string (max_time).c_str ()}, {"max-size-bytes", "0"},
      {"max-block-time", "1000000"}});
  ASSERT_NE (h, nullptr);
  SCOPED_TRACE (::testing::Message () << "max-size-buffers=" << max_buffers << " max-size-time=" << max_time);
  gst_harness_set_drop_buffers (h.get (), TRUE);
  Gate gate (h->element);
  Recorder recorder (h->element);

  // Returns once everything pushed so far has gone out (or was dropped).
  int marker = 0;
  auto drain = [&] {
    gst_harness_push_event (h.get (), make_marker_event (++marker));
    return recorder.wait_marker (marker);
  };

  int caps_generation = 0;
  int gop_left = 0;
  bool stalled = false;
  bool stall_starts = false;
  int phase_left = 0;
  int until_drain = 0;
  int stalls = 0;
  for (int n = 0; n < param.buffers; n++) {
    if (phase_left == 0) {
      if (stalled)
        gate.open ();
      ASSERT_TRUE (drain ()) << "queue did not drain before buffer " << n;
      stalled = !stalled;
      if (stalled) {
        gate.close ();  // the next buffer is held in it, the following ones queue
        stall_starts = true;
        stalls++;
        phase_left = uniform (capacity / 2, 3 * capacity + 10);
      } else {
        phase_left = uniform (20, 120);
      }
    }
    phase_left--;
    bool keyframe = gop_left == 0;
    if (keyframe)
      gop_left = uniform (1, 60);
    gop_left--;
    // Caps changes anywhere, mid-GOP included.
    if (chance (0.02)) {
      caps_generation++;
      gst_harness_push_event (h.get (), make_caps_event ((caps_generation)));
    }
    if (chance (0.01))
      gst_harness_push_event (h.get (), make_tag_event (("t" + std::to_string (n)).c_str ()));
    const guint64 dropped_before = stall_starts ? stat (get_stats (h->element), rq_names::FIELD_DROPPED_BUFFERS) : 0;
    GstFlowReturn ret = gst_harness_push (h.get (), make_buffer (n, keyframe, uniform (10, 500),
                                                         guint64 (n) * kSpacing, caps_generation));
    ASSERT_EQ (ret, GST_FLOW_OK) << "buffer " << n;
    if (HasFailure ())
      return;
    // The first buffer of a stall that is queued (a delta unit of a GOP
    // broken earlier is not) is held in the gate before the next one comes,
    // so that what the queue holds when it overflows does not depend on the
    // scheduling.
    if (stall_starts && stat (get_stats (h->element), rq_names::FIELD_DROPPED_BUFFERS) == dropped_before) {
      ASSERT_EQ (gate.wait_holding (), n) << "the src task did not take the buffer into the gate";
      stall_starts = false;
    }
    if (!stalled && --until_drain <= 0) {
      ASSERT_TRUE (drain ()) << "queue did not drain after buffer " << n;
      until_drain = uniform (1, std::min (4, capacity));
    }
  }
  gate.open ();
  ASSERT_TRUE (gst_harness_push_event (h.get (), gst_event_new_eos ()));
  ASSERT_TRUE (recorder.wait_eos (std::chrono::seconds (20))) << "EOS never came out";
  EXPECT_FALSE (gate.timed_out ());

  // Walk the output: caps in force, gaps, DISCONT.
  int current_caps = 0;  // set by make_harness, possibly before the recorder
  gint64 previous = -1;
  int violations = 0;
  std::ostringstream report;
  auto violation = [&] (const std::string &what) {
    if (violations++ < 10)
      report << "  " << what << "\n";
  };
  size_t out_buffers = 0;
  for (const auto &item : recorder.items ()) {
    if (item.kind == Item::Kind::Event && item.event_type == GST_EVENT_CAPS) {
      current_caps = item.caps_gen;
      continue;
    }
    if (item.kind != Item::Kind::Buffer)
      continue;
    out_buffers++;
    const gint64 offset = static_cast<gint64> (item.offset);
    const std::string where = "buffer " + std::to_string (offset) + " after " + std::to_string (previous);
    if (offset <= previous)
      violation (where + ": out of order or duplicated");
    const bool gap = offset != previous + 1;
    if (gap && !item.keyframe)
      violation (where + ": delta unit after a gap");
    if (gap && !item.discont)
      violation (where + ": gap without DISCONT");
    if (!gap && item.discont)
      violation (where + ": DISCONT without a gap");
    if (static_cast<gint64> (item.caps_generation) != current_caps)
      violation (where + ": pushed under caps " + std::to_string (item.caps_generation) +
          ", went out under caps " + std::to_string (current_caps));
    previous = offset;
  }
  EXPECT_EQ (violations, 0) << "seed " << param.seed << ":\n" << report.str ();
  EXPECT_EQ (current_caps, caps_generation) << "last caps change lost";

  Stats stats = get_stats (h->element);
  EXPECT_EQ (stat (stats, rq_names::STAT_RECEIVED_BUFFERS), guint64 (param.buffers));
  EXPECT_EQ (stat (stats, rq_names::STAT_PUSHED_BUFFERS), out_buffers);
  EXPECT_EQ (stat (stats, rq_names::FIELD_DROPPED_BUFFERS), guint64 (param.buffers) - out_buffers);
  EXPECT_LE (stat (stats, rq_names::STAT_MAX_LEVEL_BUFFERS), guint64 (max_buffers));
  if (max_time) {
    EXPECT_LE (stat (stats, rq_names::STAT_MAX_LEVEL_TIME), max_time);
  }
  // Both phases happened: GOPs were dropped, and most of the stream (all of
  // the flowing phases but the delta units of GOPs broken by a stall) came
  // through.
  EXPECT_GT (stat (stats, rq_names::FIELD_DROPPED_GOPS), 0u) << "the stalls never made the queue drop";
  EXPECT_GE (out_buffers * 2, size_t (param.buffers)) << "less than half the stream came out";
  std::printf ("[ seed %u leaky=%s ] %zu of %d buffers out, %" G_GUINT64_FORMAT
               " GOPs dropped in %d stalls (capacity %d buffers)\n",
      param.seed, param.leaky, out_buffers, param.buffers, stat (stats, rq_names::FIELD_DROPPED_GOPS), stalls,
      capacity);
}

INSTANTIATE_TEST_SUITE_P (Seeds, GopInvariantTest,
    ::testing::Values (RandomCase{1, "gop", 3000}, RandomCase{7, "gop", 3000},
        RandomCase{42, "gop", 3000}, RandomCase{20240611, "gop", 3000},
        RandomCase{3, "none", 1500}, RandomCase{99, "none", 1500}));

// ---------------------------------------------------------------------------
// The byte limit

constexpr guint kByteLimit = 10000;

class ByteLimitTest : public ::testing::TestWithParam<const char *> {};

TEST_P (ByteLimitTest, NeverExceeded)
{
  const unsigned seed = 5150;
  SCOPED_TRACE (::testing::Message () << "seed=" << seed << " leaky=" << GetParam ());
  std::mt19937 rng (seed);
  auto uniform = [&] (int lo, int hi) { return std::uniform_int_distribution<int> (lo, hi) (rng); };

  HarnessPtr h = make_harness ({{"leaky", GetParam ()}, {"max-size-bytes", std::to_string (kByteLimit).c_str ()},
      {"max-size-buffers", "0"}, {"max-size-time", "0"}, {"max-block-time", "1000000"}});
  ASSERT_NE (h, nullptr);
  gst_harness_set_drop_buffers (h.get (), TRUE);
  Recorder recorder (h->element);
  auto hold = std::make_unique<DownstreamHold> (h->element);
  ASSERT_EQ (gst_harness_push (h.get (), make_buffer (0, true, 10)), GST_FLOW_OK);
  ASSERT_EQ (hold->wait_parked (), 0);

  guint worst = 0;
  int n = 1;
  // Held, then flowing.
  for (int phase = 0; phase < 2; phase++) {
    for (int i = 0; i < 300; i++, n++) {
      ASSERT_EQ (gst_harness_push (h.get (), make_buffer (n, uniform (0, 4) == 0, uniform (1, 3000))), GST_FLOW_OK);
      worst = std::max (worst, level_bytes (h->element));
    }
    hold.reset ();
  }
  EXPECT_LE (worst, kByteLimit);
  ASSERT_TRUE (gst_harness_push_event (h.get (), gst_event_new_eos ()));
  ASSERT_TRUE (recorder.wait_eos ());
  Stats stats = get_stats (h->element);
  EXPECT_LE (stat (stats, rq_names::STAT_MAX_LEVEL_BYTES), kByteLimit);
  EXPECT_GE (stat (stats, rq_names::STAT_MAX_LEVEL_BYTES), kByteLimit - 3000) << "the queue never filled up";
  EXPECT_GT (stat (stats, rq_names::FIELD_DROPPED_BUFFERS), 0u);
  EXPECT_EQ (stat (stats, rq_names::STAT_RECEIVED_BUFFERS), guint64 (n));
  EXPECT_EQ (stat (stats, rq_names::STAT_PUSHED_BUFFERS) + stat (stats, rq_names::FIELD_DROPPED_BUFFERS), guint64 (n));
}

TEST_P (ByteLimitTest, BufferBiggerThanTheLimitAloneIsDropped)
{
  HarnessPtr h = make_harness ({{"leaky", GetParam ()}, {"max-size-bytes", "1000"},
      {"max-size-buffers", "0"}, {"max-size-time", "0"}, {"max-block-time", "1000000"}});
  ASSERT_NE (h, nullptr);
  Recorder recorder (h->element);
  ASSERT_EQ (gst_harness_push (h.get (), make_buffer (0, true, 100)), GST_FLOW_OK);
  ASSERT_TRUE (recorder.wait_buffers (1));
  ASSERT_EQ (gst_harness_push (h.get (), make_buffer (1, true, 1001)), GST_FLOW_OK);
  EXPECT_EQ (level_bytes (h->element), 0u);
  ASSERT_EQ (gst_harness_push (h.get (), make_buffer (2, true, 100)), GST_FLOW_OK);
  ASSERT_TRUE (gst_harness_push_event (h.get (), gst_event_new_eos ()));
  ASSERT_TRUE (recorder.wait_eos ());
  EXPECT_EQ (recorder.offsets (), (std::vector<guint64>{0, 2}));
  auto buffers = recorder.buffers ();
  ASSERT_EQ (buffers.size (), 2u);
  EXPECT_TRUE (buffers[1].discont) << "next buffer after the drop must be DISCONT";
  Stats stats = get_stats (h->element);
  EXPECT_EQ (stat (stats, rq_names::FIELD_DROPPED_BUFFERS), 1u);
  EXPECT_EQ (stat (stats, rq_names::FIELD_DROPPED_BYTES), 1001u);
  EXPECT_LE (stat (stats, rq_names::STAT_MAX_LEVEL_BYTES), 1000u);
}

INSTANTIATE_TEST_SUITE_P (Leaky, ByteLimitTest, ::testing::Values ("gop", "upstream", "downstream", "none"));

// ---------------------------------------------------------------------------
// Concurrent state changes and pushes

TEST (ResilientQueueStress, StateChangesAndPropertyChangesWhilePushing)
{
  HarnessPtr h = make_harness ({{"leaky", "gop"}, {"max-size-buffers", "16"},
      {"max-size-time", "0"}, {"max-size-bytes", "0"}});
  ASSERT_NE (h, nullptr);
  gst_harness_set_drop_buffers (h.get (), TRUE);
  Recorder recorder (h->element);
  GstHarness *harness = h.get ();

  GValue buffers_limit = G_VALUE_INIT;
  g_value_init (&buffers_limit, G_TYPE_UINT);
  g_value_set_uint (&buffers_limit, 4);
  GstHarnessThread *property =
      gst_harness_stress_property_start_full (harness, "max-size-buffers", &buffers_limit, 500);
  g_value_unset (&buffers_limit);

  // Bounded: 150 NULL/PLAYING cycles; the pusher and the reader run until
  // the cycles are done (and at most 10^6 pushes).
  std::atomic<bool> cycling{true};
  auto state_changes = std::async (std::launch::async, [harness, &cycling] {
    int failures = 0;
    for (int cycle = 0; cycle < 150; cycle++) {
      failures += gst_element_set_state (harness->element, GST_STATE_NULL) != GST_STATE_CHANGE_SUCCESS;
      failures += gst_element_set_state (harness->element, GST_STATE_PLAYING) != GST_STATE_CHANGE_SUCCESS;
    }
    cycling = false;
    return failures;
  });
  std::thread reader ([&] {
    while (cycling.load ()) {
      Stats stats = get_stats (harness->element);
      (void) level_buffers (harness->element);
    }
  });
  std::map<GstFlowReturn, int> results;
  for (int n = 0; cycling.load () && n < 1000000; n++) {
    GstFlowReturn ret = gst_harness_push (harness, make_buffer (n, n % 8 == 0, 64, guint64 (n) * GST_MSECOND));
    results[ret]++;
    // After NULL the sink pad lost its sticky events: send them again.
    if (ret != GST_FLOW_OK)
      push_stream_start (harness, 0);
  }
  if (state_changes.wait_for (30s) != std::future_status::ready)
    abort_on_hang ("state changes stuck");
  EXPECT_EQ (state_changes.get (), 0) << "a state change did not succeed";
  reader.join ();
  gst_harness_stress_thread_stop (property);
  std::printf ("[ stress ] pushes:");
  for (const auto &[ret, count] : results)
    std::printf (" %s %d", gst_flow_get_name (ret), count);
  std::printf ("\n");
  // While the pads (de)activate a push may only be refused as FLUSHING:
  // never an error that would make an upstream source fail.  Also: no crash,
  // no leak, no hang, and the queue works again afterwards.  (How many pushes
  // succeed depends on the scheduling, so it is not asserted.)
  for (const auto &[ret, count] : results)
    EXPECT_TRUE (ret == GST_FLOW_OK || ret == GST_FLOW_FLUSHING)
        << count << " pushes returned " << gst_flow_get_name (ret);

  // Still working afterwards.
  push_stream_start (harness, 0);
  size_t before = recorder.buffer_count ();
  ASSERT_EQ (gst_harness_push (harness, make_buffer (100000, true)), GST_FLOW_OK);
  ASSERT_TRUE (recorder.wait_buffers (before + 1));
}

// Counts what the stress threads below do: buffers made for the pusher,
// and src tasks created (one per NULL -> PLAYING cycle), seen as
// STREAM_STATUS CREATE in a sync bus handler.
struct StressCounters {
  GstElement *element;
  std::mutex mutex;
  std::condition_variable cond;
  guint64 buffers = 0;
  guint tasks_created = 0;

  template <typename Predicate>
  bool wait (Predicate done)
  {
    std::unique_lock<std::mutex> lock (mutex);
    return cond.wait_for (lock, kWaitTimeout, [&] { return done (*this); });
  }
};

GstBuffer *
make_stress_buffer (GstHarness *, gpointer data)
{
  auto *counters = static_cast<StressCounters *> (data);
  guint64 n;
  {
    std::lock_guard<std::mutex> lock (counters->mutex);
    n = counters->buffers++;
  }
  counters->cond.notify_all ();
  return make_buffer (n, n % 8 == 0, 64, n * GST_MSECOND);
}

GstBusSyncReply
count_task_creations (GstBus *, GstMessage *message, gpointer data)
{
  auto *counters = static_cast<StressCounters *> (data);
  if (GST_MESSAGE_TYPE (message) == GST_MESSAGE_STREAM_STATUS) {
    GstStreamStatusType type;
    GstElement *owner = nullptr;
    gst_message_parse_stream_status (message, &type, &owner);
    if (type == GST_STREAM_STATUS_TYPE_CREATE && owner == counters->element) {
      {
        std::lock_guard<std::mutex> lock (counters->mutex);
        counters->tasks_created++;
      }
      counters->cond.notify_all ();
    }
  }
  gst_message_unref (message);  // dropped: ours to release
  return GST_BUS_DROP;
}

// Swallows GStreamer's "Got data flow before segment/stream-start event"
// warnings while it lives, counting them, and passes on every other message.
// The stress below provokes them on purpose, upstream of the element: the
// pusher may get a buffer in between a flush's FLUSH_STOP, which removes the
// segment, and the new segment; and the pusher and the flushing thread push
// on the same harness pad at once, which GStreamer's resending of sticky
// events after a relink does not serialise (a src pad has one streaming
// thread, normally).  What the element itself must not lose is tested in
// test_resilientqueue_blocking (FlushKeepsQueuedStickyEvents).
class QuietStickyOrderWarnings {
 public:
  QuietStickyOrderWarnings ()
  {
    id_ = g_log_set_handler ("GStreamer", G_LOG_LEVEL_WARNING, on_message, &swallowed_);
  }
  ~QuietStickyOrderWarnings () { g_log_remove_handler ("GStreamer", id_); }
  QuietStickyOrderWarnings (const QuietStickyOrderWarnings &) = delete;
  QuietStickyOrderWarnings &operator= (const QuietStickyOrderWarnings &) = delete;

  guint swallowed () const { return swallowed_.load (); }

 private:
  static void on_message (const gchar *domain, GLogLevelFlags level, const gchar *message, gpointer data)
  {
    if (message && (std::strstr (message, "Got data flow before segment event")
                       || std::strstr (message, "Got data flow before stream-start event"))) {
      static_cast<std::atomic<guint> *> (data)->fetch_add (1);
      return;
    }
    g_log_default_handler (domain, level, message, nullptr);
  }

  guint id_ = 0;
  std::atomic<guint> swallowed_{0};
};

// A flush as a seek does it: FLUSH_START, FLUSH_STOP, then a new segment
// (FLUSH_STOP removes the old one).
void
flush_like_a_seek (gpointer, gpointer data)
{
  auto *h = static_cast<GstHarness *> (data);
  gst_harness_push_event (h, gst_event_new_flush_start ());
  gst_harness_push_event (h, gst_event_new_flush_stop (TRUE));
  gst_harness_push_event (h, make_segment_event (0));
}

// Harness stress threads, stopped in reverse order of start when the test
// is done or fails (gst_harness_teardown() frees them without stopping them).
class StressThreads {
 public:
  StressThreads () = default;
  ~StressThreads () { stop (); }
  StressThreads (const StressThreads &) = delete;
  StressThreads &operator= (const StressThreads &) = delete;

  GstHarnessThread *add (GstHarnessThread *thread)
  {
    threads_.push_back (thread);
    return thread;
  }
  void stop ()
  {
    for (auto it = threads_.rbegin (); it != threads_.rend (); ++it)
      iterations_[*it] = gst_harness_stress_thread_stop (*it);
    threads_.clear ();
  }
  // How many times a stopped thread went round.
  guint iterations (GstHarnessThread *thread) const
  {
    auto it = iterations_.find (thread);
    return it == iterations_.end () ? 0 : it->second;
  }

 private:
  std::vector<GstHarnessThread *> threads_;
  std::map<GstHarnessThread *, guint> iterations_;  // keys: stopped, freed
};

// Sets a bus on an element for as long as it lives.
class BusOn {
 public:
  BusOn (GstElement *element, GstBus *bus) : element_ (element) { gst_element_set_bus (element, bus); }
  ~BusOn () { gst_element_set_bus (element_, nullptr); }
  BusOn (const BusOn &) = delete;
  BusOn &operator= (const BusOn &) = delete;

 private:
  GstElement *element_;
};

// GstHarness's stress threads all at once: NULL <-> PLAYING cycles (which
// also unlink and relink the sink pad), a pusher, flushes, RECONFIGURE from
// downstream, and the leaky mode and a limit flipping.  What is asserted: no
// crash (the harness's threads assert that every state change succeeds), no
// leak (the leaks tracer), and the queue works afterwards.
TEST (ResilientQueueStress, HarnessStressThreads)
{
  HarnessPtr h = make_harness ({{"leaky", "gop"}, {"max-size-buffers", "16"},
      {"max-size-time", "0"}, {"max-size-bytes", "0"}, {"max-block-time", "10000000"}});
  ASSERT_NE (h, nullptr);
  gst_harness_set_drop_buffers (h.get (), TRUE);
  GstHarness *harness = h.get ();
  QuietStickyOrderWarnings quiet;
  StressCounters counters{h->element, {}, {}, 0, 0};
  camrelay::BusPtr bus{gst_bus_new ()};
  gst_bus_set_sync_handler (bus.get (), count_task_creations, &counters, nullptr);
  BusOn bus_on (h->element, bus.get ());

  // Values for the property threads.  The enum type as the element declares
  // it (its header is not included).
  GValue limit = G_VALUE_INIT;
  g_value_init (&limit, G_TYPE_UINT);
  g_value_set_uint (&limit, 4);
  const GType leaky_type =
      G_PARAM_SPEC_VALUE_TYPE (g_object_class_find_property (G_OBJECT_GET_CLASS (h->element), "leaky"));
  GValue leaky_none = G_VALUE_INIT;
  GValue leaky_gop = G_VALUE_INIT;
  g_value_init (&leaky_none, leaky_type);
  g_value_init (&leaky_gop, leaky_type);
  ASSERT_TRUE (gst_value_deserialize (&leaky_none, "none"));
  ASSERT_TRUE (gst_value_deserialize (&leaky_gop, "gop"));
  camrelay::CapsPtr caps{make_caps (0)};
  GstSegment segment;
  gst_segment_init (&segment, GST_FORMAT_TIME);
  camrelay::EventPtr reconfigure{gst_event_new_reconfigure ()};

  StressThreads threads;
  // The pusher first: it asserts that its stream-start, caps and segment are
  // accepted, so the element must stay PLAYING until it asks for a buffer.
  GstHarnessThread *pusher = threads.add (gst_harness_stress_push_buffer_with_cb_start (
      harness, caps.get (), &segment, make_stress_buffer, &counters, nullptr));
  const bool pushing = counters.wait ([] (const StressCounters &c) { return c.buffers > 0; });
  EXPECT_TRUE (pushing) << "the pusher never asked for a buffer";
  GstHarnessThread *state_changes = nullptr;
  if (pushing) {
    threads.add (gst_harness_stress_property_start_full (harness, "max-size-buffers", &limit, 500));
    threads.add (gst_harness_stress_property_start_full (harness, "leaky", &leaky_none, 700));
    threads.add (gst_harness_stress_property_start_full (harness, "leaky", &leaky_gop, 1100));
    threads.add (gst_harness_stress_custom_start (harness, nullptr, flush_like_a_seek, harness, 2000));
    threads.add (gst_harness_stress_push_upstream_event_start_full (harness, reconfigure.get (), 1000));
    state_changes = threads.add (gst_harness_stress_statechange_start (harness));

    // Bounded by counting, not by time: 40 NULL -> PLAYING cycles.
    const guint tasks_before = [&] {
      std::lock_guard<std::mutex> lock (counters.mutex);
      return counters.tasks_created;
    }();
    const bool cycled =
        counters.wait ([&] (const StressCounters &c) { return c.tasks_created >= tasks_before + 40; });
    EXPECT_TRUE (cycled) << "fewer than 40 state-change cycles in " << kWaitTimeout.count () << " ms";
  }
  threads.stop ();
  const guint cycles = state_changes ? threads.iterations (state_changes) : 0;
  const guint pushes = threads.iterations (pusher);
  EXPECT_GT (pushes, 0u);
  g_value_unset (&leaky_gop);
  g_value_unset (&leaky_none);
  g_value_unset (&limit);
  std::printf ("[ stress ] %u state-change cycles, %u pushes, %u data-before-sticky-event warnings\n",
      cycles, pushes, quiet.swallowed ());

  // The state-change thread left it PLAYING.
  gst_util_set_object_arg (G_OBJECT (h->element), "leaky", "gop");
  g_object_set (h->element, "max-size-buffers", 16u, nullptr);
  Recorder recorder (h->element);
  push_stream_start (harness, 0);
  ASSERT_EQ (gst_harness_push (harness, make_buffer (100000, true)), GST_FLOW_OK);
  EXPECT_TRUE (recorder.wait_buffers (1)) << "the queue did not work after the stress";
}

TEST (ResilientQueueStress, RepeatedNullWhileBlockedBothWays)
{
  HarnessPtr h = make_harness ({{"leaky", "none"}, {"max-size-buffers", "2"},
      {"max-size-time", "0"}, {"max-size-bytes", "0"}, {"max-block-time", "60000000000"}});
  ASSERT_NE (h, nullptr);
  SignalCounter overruns (h->element, "overrun");
  // Downstream stuck for good; only deactivation (flushing) releases it.
  DownstreamHold hold (h->element);
  GstHarness *harness = h.get ();

  std::atomic<bool> reading{true};
  std::thread reader ([&] {
    while (reading.load ()) {
      Stats stats = get_stats (harness->element);
    }
  });

  double worst = 0;
  for (int cycle = 0; cycle < 30 && !HasFailure (); cycle++) {
    if (cycle > 0) {
      ASSERT_EQ (gst_element_set_state (harness->element, GST_STATE_PLAYING), GST_STATE_CHANGE_SUCCESS);
      push_stream_start (harness, 0);
    }
    guint overruns_before = overruns.count ();
    auto pusher = std::async (std::launch::async, [harness] {
      // The first goes downstream, two fill the queue, the fourth blocks.
      for (guint64 n = 0; n < 100; n++) {
        GstFlowReturn ret = gst_harness_push (harness, make_buffer (n, true));
        if (ret != GST_FLOW_OK)
          return ret;
      }
      return GST_FLOW_OK;
    });
    if (!overruns.wait_count (overruns_before + 1)) {
      ADD_FAILURE () << "cycle " << cycle << ": push never blocked";
    }
    auto start = SteadyClock::now ();
    EXPECT_EQ (gst_element_set_state (harness->element, GST_STATE_NULL), GST_STATE_CHANGE_SUCCESS);
    double took = seconds_since (start);
    worst = std::max (worst, took);
    EXPECT_LT (took, 1.0) << "cycle " << cycle;
    if (pusher.wait_for (5s) != std::future_status::ready)
      abort_on_hang ("NULL did not release the blocked push");
    EXPECT_EQ (pusher.get (), GST_FLOW_FLUSHING) << "cycle " << cycle;
  }
  reading = false;
  reader.join ();
  std::printf ("[ stress ] worst NULL while blocked: %.3f s\n", worst);
  hold.release ();
}

}  // namespace
