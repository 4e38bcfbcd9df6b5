// resilientqueue: properties, ordering, leaky modes, sticky events, EOS,
// limits changed in PLAYING, signals and latency.  (Time: _time.cpp.)
#include <gst/check/gstharness.h>
#include <gst/gst.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "common/gstref.h"
#include "rq_test_util.h"

using namespace rqtest;
using camrelay::ElementPtr;
using camrelay::PadPtr;

namespace {

constexpr guint64 kSecond = GST_SECOND;

std::string
join (const std::vector<std::string> &tokens)
{
  std::string out;
  for (const auto &token : tokens)
    out += (out.empty () ? "" : " ") + token;
  return out;
}

std::vector<guint64>
discont_offsets (const Recorder &recorder)
{
  std::vector<guint64> out;
  for (const auto &item : recorder.buffers ())
    if (item.discont)
      out.push_back (item.offset);
  return out;
}

// ---------------------------------------------------------------------------
// Properties, presets

TEST (ResilientQueueProperties, DefaultsRangesAndNicks)
{
  ElementPtr element{gst_element_factory_make ("resilientqueue", nullptr)};
  ASSERT_NE (element, nullptr) << "resilientqueue not found: is the plugin built?";
  gst_object_ref_sink (element.get ());  // floating ref becomes ours
  GObjectClass *klass = G_OBJECT_GET_CLASS (element.get ());

  EXPECT_STREQ (G_OBJECT_TYPE_NAME (element.get ()), "GstResilientQueue");
  EXPECT_STREQ (gst_element_get_metadata (element.get (), GST_ELEMENT_METADATA_KLASS), "Generic");
  PadPtr sink{gst_element_get_static_pad (element.get (), "sink")};
  PadPtr src{gst_element_get_static_pad (element.get (), "src")};
  EXPECT_NE (sink, nullptr);
  EXPECT_NE (src, nullptr);

  auto uint64_spec = [&] (const char *name) -> GParamSpecUInt64 * {
    GParamSpec *pspec = g_object_class_find_property (klass, name);
    EXPECT_NE (pspec, nullptr) << name;
    if (!pspec)
      return nullptr;
    EXPECT_EQ (G_PARAM_SPEC_VALUE_TYPE (pspec), G_TYPE_UINT64) << name;
    return G_IS_PARAM_SPEC_UINT64 (pspec) ? G_PARAM_SPEC_UINT64 (pspec) : nullptr;
  };
  auto uint_spec = [&] (const char *name) -> GParamSpecUInt * {
    GParamSpec *pspec = g_object_class_find_property (klass, name);
    EXPECT_NE (pspec, nullptr) << name;
    if (!pspec)
      return nullptr;
    EXPECT_EQ (G_PARAM_SPEC_VALUE_TYPE (pspec), G_TYPE_UINT) << name;
    return G_IS_PARAM_SPEC_UINT (pspec) ? G_PARAM_SPEC_UINT (pspec) : nullptr;
  };

  if (auto *p = uint64_spec ("max-size-time")) {
    EXPECT_EQ (p->default_value, 20 * kSecond);
    EXPECT_EQ (p->minimum, 0u);
    EXPECT_TRUE (p->parent_instance.flags & G_PARAM_WRITABLE);
  }
  if (auto *p = uint_spec ("max-size-bytes")) {
    EXPECT_EQ (p->default_value, 67108864u);
    EXPECT_EQ (p->minimum, 0u);
  }
  if (auto *p = uint_spec ("max-size-buffers")) {
    EXPECT_EQ (p->default_value, 0u);
    EXPECT_EQ (p->minimum, 0u);
  }
  if (auto *p = uint64_spec ("max-block-time")) {
    EXPECT_EQ (p->default_value, 5 * kSecond);
    EXPECT_EQ (p->minimum, GST_MSECOND);
    EXPECT_EQ (p->maximum, 3600 * kSecond);
  }
  for (const char *name : {"current-level-time"}) {
    if (auto *p = uint64_spec (name)) {
      EXPECT_TRUE (p->parent_instance.flags & G_PARAM_READABLE) << name;
      EXPECT_FALSE (p->parent_instance.flags & G_PARAM_WRITABLE) << name;
    }
  }
  for (const char *name : {"current-level-bytes", "current-level-buffers"}) {
    if (auto *p = uint_spec (name)) {
      EXPECT_TRUE (p->parent_instance.flags & G_PARAM_READABLE) << name;
      EXPECT_FALSE (p->parent_instance.flags & G_PARAM_WRITABLE) << name;
    }
  }
  GParamSpec *stats_spec = g_object_class_find_property (klass, "stats");
  ASSERT_NE (stats_spec, nullptr);
  EXPECT_EQ (G_PARAM_SPEC_VALUE_TYPE (stats_spec), GST_TYPE_STRUCTURE);
  EXPECT_FALSE (stats_spec->flags & G_PARAM_WRITABLE);

  // leaky: enum GstResilientQueueLeaky, default gop, nicks and values.
  GParamSpec *leaky_spec = g_object_class_find_property (klass, "leaky");
  ASSERT_NE (leaky_spec, nullptr);
  ASSERT_TRUE (G_IS_PARAM_SPEC_ENUM (leaky_spec));
  EXPECT_STREQ (g_type_name (G_PARAM_SPEC_VALUE_TYPE (leaky_spec)), "GstResilientQueueLeaky");
  GParamSpecEnum *enum_spec = G_PARAM_SPEC_ENUM (leaky_spec);
  EXPECT_EQ (enum_spec->default_value, 3);
  const std::pair<int, const char *> nicks[] = {
      {0, "none"}, {1, "upstream"}, {2, "downstream"}, {3, "gop"}};
  EXPECT_EQ (enum_spec->enum_class->n_values, 4u);
  for (const auto &[value, nick] : nicks) {
    GEnumValue *enum_value = g_enum_get_value (enum_spec->enum_class, value);
    ASSERT_NE (enum_value, nullptr) << value;
    EXPECT_STREQ (enum_value->value_nick, nick);
  }

  // Defaults as read back, and an out-of-range max-block-time is refused.
  guint64 max_time = 0, block_time = 0;
  guint max_bytes = 0, max_buffers = 1;
  gint leaky = -1;
  g_object_get (element.get (), "max-size-time", &max_time, "max-size-bytes", &max_bytes,
      "max-size-buffers", &max_buffers, "max-block-time", &block_time, "leaky", &leaky, nullptr);
  EXPECT_EQ (max_time, 20 * kSecond);
  EXPECT_EQ (max_bytes, 67108864u);
  EXPECT_EQ (max_buffers, 0u);
  EXPECT_EQ (block_time, 5 * kSecond);
  EXPECT_EQ (leaky, 3);

  // Fresh element: stats all present and zero.
  Stats stats = get_stats (element.get ());
  EXPECT_EQ (stats.size (), G_N_ELEMENTS (rq_names::STATS_FIELDS));
  for (const char *field : rq_names::STATS_FIELDS) {
    EXPECT_EQ (stat (stats, field), 0u) << field;
  }
}

TEST (ResilientQueueProperties, PresetLowLatency)
{
  ElementPtr element{gst_element_factory_make ("resilientqueue", nullptr)};
  ASSERT_NE (element, nullptr);
  gst_object_ref_sink (element.get ());
  ASSERT_TRUE (GST_IS_PRESET (element.get ()));

  gchar **names = gst_preset_get_preset_names (GST_PRESET (element.get ()));
  ASSERT_NE (names, nullptr) << "no presets found; GST_PRESET_PATH=" << g_getenv ("GST_PRESET_PATH");
  for (const char *expected : {"low-latency", "default", "archive"})
    EXPECT_TRUE (g_strv_contains (names, expected)) << expected;
  g_strfreev (names);

  ASSERT_TRUE (gst_preset_load_preset (GST_PRESET (element.get ()), "low-latency"));
  guint64 max_time = 0;
  g_object_get (element.get (), "max-size-time", &max_time, nullptr);
  EXPECT_EQ (max_time, 2 * kSecond);

  ASSERT_TRUE (gst_preset_load_preset (GST_PRESET (element.get ()), "archive"));
  g_object_get (element.get (), "max-size-time", &max_time, nullptr);
  EXPECT_EQ (max_time, 60 * kSecond);
}

// ---------------------------------------------------------------------------
// Ordering

TEST (ResilientQueueOrdering, BuffersEventsQueriesKeepTheirOrder)
{
  HarnessPtr h = make_harness ({{"leaky", "gop"}, {"max-size-buffers", "0"},
      {"max-size-time", "0"}, {"max-size-bytes", "0"}});
  ASSERT_NE (h, nullptr);
  Recorder recorder (h->element);
  std::vector<std::string> expected;

  gst_harness_push_event (h.get (), make_marker_event (0));
  expected.push_back ("marker:0");

  // Phase 1, downstream held: everything is queued together.
  auto hold = std::make_unique<DownstreamHold> (h->element);
  ASSERT_EQ (gst_harness_push (h.get (), make_buffer (0, true)), GST_FLOW_OK);
  expected.push_back ("B0");
  ASSERT_EQ (hold->wait_parked (), 0);

  guint64 n = 1;
  auto push_buffer = [&] (bool key) {
    ASSERT_EQ (gst_harness_push (h.get (), make_buffer (n, key)), GST_FLOW_OK);
    expected.push_back ("B" + std::to_string (n));
    n++;
  };
  push_buffer (false);
  gst_harness_push_event (h.get (), make_marker_event (1));
  expected.push_back ("marker:1");
  push_buffer (false);
  gst_harness_push_event (h.get (), make_tag_event ("first"));
  expected.push_back ("tag:first");
  gst_harness_push_event (h.get (), make_marker_event (2));
  expected.push_back ("marker:2");
  push_buffer (true);
  gst_harness_push_event (h.get (), make_caps_event ((1)));
  expected.push_back ("caps:1");
  gst_harness_push_event (h.get (), make_segment_event (5 * kSecond));
  expected.push_back ("segment:" + std::to_string (5 * kSecond));
  push_buffer (false);
  EXPECT_EQ (level_buffers (h->element), 4u);

  // A serialized query from another thread must wait its turn behind the
  // held buffers: a queue answering it at once would let it overtake them.
  PadPtr element_sink{gst_element_get_static_pad (h->element, "sink")};
  std::mutex arrived_mutex;
  std::condition_variable arrived_cond;
  bool arrived = false;
  gulong arrive_probe = gst_pad_add_probe (element_sink.get (),
      static_cast<GstPadProbeType> (GST_PAD_PROBE_TYPE_QUERY_DOWNSTREAM | GST_PAD_PROBE_TYPE_PUSH),
      [] (GstPad *, GstPadProbeInfo *info, gpointer data) -> GstPadProbeReturn {
        auto *state = static_cast<std::tuple<std::mutex *, std::condition_variable *, bool *> *> (data);
        if (GST_QUERY_TYPE (GST_PAD_PROBE_INFO_QUERY (info)) == GST_QUERY_ALLOCATION) {
          std::lock_guard<std::mutex> lock (*std::get<0> (*state));
          *std::get<2> (*state) = true;
          std::get<1> (*state)->notify_all ();
        }
        return GST_PAD_PROBE_OK;
      },
      new std::tuple<std::mutex *, std::condition_variable *, bool *> (&arrived_mutex, &arrived_cond, &arrived),
      [] (gpointer data) {
        delete static_cast<std::tuple<std::mutex *, std::condition_variable *, bool *> *> (data);
      });
  GstPad *harness_src = h->srcpad;
  auto query_done = std::async (std::launch::async, [harness_src] {
    camrelay::CapsPtr caps{make_caps (1)};
    camrelay::QueryPtr query{gst_query_new_allocation (caps.get (), FALSE)};
    return gst_pad_peer_query (harness_src, query.get ());
  });
  expected.push_back ("Q:allocation");
  {
    std::unique_lock<std::mutex> lock (arrived_mutex);
    ASSERT_TRUE (arrived_cond.wait_for (lock, kWaitTimeout, [&] { return arrived; }))
        << "allocation query never reached the sink pad";
  }
  gst_pad_remove_probe (element_sink.get (), arrive_probe);
  hold.reset ();
  if (query_done.wait_for (kWaitTimeout) != std::future_status::ready)
    abort_on_hang ("serialized allocation query never answered after release");
  EXPECT_TRUE (query_done.get ()) << "the harness answers allocation queries";

  // Phase 2, flowing: a drain query and more events, then EOS.
  push_buffer (true);
  gst_harness_push_event (h.get (), make_marker_event (3));
  expected.push_back ("marker:3");
  {
    camrelay::QueryPtr drain{gst_query_new_drain ()};
    gst_pad_peer_query (h->srcpad, drain.get ());
    expected.push_back ("Q:drain");
  }
  push_buffer (false);
  gst_harness_push_event (h.get (), make_tag_event ("second"));
  expected.push_back ("tag:second");
  push_buffer (false);
  gst_harness_push_event (h.get (), gst_event_new_eos ());
  expected.push_back ("eos");
  ASSERT_TRUE (recorder.wait_eos ());

  // Compare from the first marker on (the harness' own stream-start, caps
  // and segment come before it).
  std::vector<std::string> tokens = recorder.tokens ();
  auto start = std::find (tokens.begin (), tokens.end (), "marker:0");
  ASSERT_NE (start, tokens.end ()) << join (tokens);
  std::vector<std::string> seen (start, tokens.end ());
  EXPECT_EQ (join (seen), join (expected));
  EXPECT_TRUE (discont_offsets (recorder).empty ());

  Stats stats = get_stats (h->element);
  EXPECT_EQ (stat (stats, rq_names::STAT_RECEIVED_BUFFERS), n);
  EXPECT_EQ (stat (stats, rq_names::STAT_PUSHED_BUFFERS), n);
  EXPECT_EQ (stat (stats, rq_names::FIELD_DROPPED_BUFFERS), 0u);
  EXPECT_EQ (stat (stats, rq_names::STAT_OVERRUNS), 0u);
}

// ---------------------------------------------------------------------------
// Leaky modes under overrun, downstream held on buffer 0 (out of the queue).

class LeakyModeTest : public ::testing::Test {
 protected:
  void start (const char *leaky, const char *max_buffers, const char *block_time = "5000000000")
  {
    h_ = make_harness ({{"leaky", leaky}, {"max-size-buffers", max_buffers},
        {"max-size-time", "0"}, {"max-size-bytes", "0"}, {"max-block-time", block_time}});
    ASSERT_NE (h_, nullptr);
    recorder_ = std::make_unique<Recorder> (h_->element);
    hold_ = std::make_unique<DownstreamHold> (h_->element);
    ASSERT_EQ (gst_harness_push (h_.get (), make_buffer (0, true)), GST_FLOW_OK);
    ASSERT_EQ (hold_->wait_parked (), 0);
    EXPECT_EQ (level_buffers (h_->element), 0u) << "the parked buffer still counts";
  }
  void push (guint64 n, bool key)
  {
    EXPECT_EQ (gst_harness_push (h_.get (), make_buffer (n, key)), GST_FLOW_OK) << "buffer " << n;
  }
  // Releases downstream and waits until `count` buffers went out in total.
  void release_and_wait (size_t count)
  {
    hold_->release ();
    ASSERT_TRUE (recorder_->wait_buffers (count))
        << "only " << recorder_->buffer_count () << " of " << count << " buffers came out";
  }
  // Returns once every buffer pushed so far left and was accounted for: the
  // probe sees a buffer before the push returns and the stats are updated.
  void settle ()
  {
    gst_harness_push_event (h_.get (), make_marker_event (++marker_));
    ASSERT_TRUE (recorder_->wait_marker (marker_)) << "queue did not drain";
  }
  void TearDown () override
  {
    if (hold_)
      hold_->release ();
    hold_.reset ();
    recorder_.reset ();
    h_.reset ();
  }

  HarnessPtr h_;
  std::unique_ptr<Recorder> recorder_;
  std::unique_ptr<DownstreamHold> hold_;
  int marker_ = 1000;
};

using V = std::vector<guint64>;

TEST_F (LeakyModeTest, UpstreamDropsIncoming)
{
  start ("upstream", "3");
  SignalCounter overruns (h_->element, "overrun");
  for (guint64 n = 1; n <= 6; n++)
    push (n, true);
  EXPECT_EQ (level_buffers (h_->element), 3u);
  EXPECT_EQ (overruns.count (), 3u);
  release_and_wait (4);
  push (7, true);
  ASSERT_TRUE (recorder_->wait_buffers (5));
  settle ();
  EXPECT_EQ (recorder_->offsets (), (V{0, 1, 2, 3, 7}));
  EXPECT_EQ (discont_offsets (*recorder_), (V{7})) << "next accepted buffer must be DISCONT";

  Stats stats = get_stats (h_->element);
  EXPECT_EQ (stat (stats, rq_names::STAT_RECEIVED_BUFFERS), 8u);
  EXPECT_EQ (stat (stats, rq_names::STAT_PUSHED_BUFFERS), 5u);
  EXPECT_EQ (stat (stats, rq_names::FIELD_DROPPED_BUFFERS), 3u);
  EXPECT_EQ (stat (stats, rq_names::FIELD_DROPPED_BYTES), 300u);
  EXPECT_EQ (stat (stats, rq_names::STAT_OVERRUNS), 3u);
  EXPECT_EQ (stat (stats, rq_names::STAT_MAX_LEVEL_BUFFERS), 3u);
  EXPECT_EQ (stat (stats, rq_names::STAT_TIME_BLOCKED), 0u);
}

TEST_F (LeakyModeTest, DownstreamDropsOldest)
{
  start ("downstream", "3");
  for (guint64 n = 1; n <= 6; n++)
    push (n, true);
  EXPECT_EQ (level_buffers (h_->element), 3u);
  EXPECT_EQ (level_bytes (h_->element), 300u);
  release_and_wait (4);
  push (7, true);
  ASSERT_TRUE (recorder_->wait_buffers (5));
  settle ();
  EXPECT_EQ (recorder_->offsets (), (V{0, 4, 5, 6, 7}));
  EXPECT_EQ (discont_offsets (*recorder_), (V{4}));

  Stats stats = get_stats (h_->element);
  EXPECT_EQ (stat (stats, rq_names::STAT_RECEIVED_BUFFERS), 8u);
  EXPECT_EQ (stat (stats, rq_names::STAT_PUSHED_BUFFERS), 5u);
  EXPECT_EQ (stat (stats, rq_names::FIELD_DROPPED_BUFFERS), 3u);
  EXPECT_EQ (stat (stats, rq_names::FIELD_DROPPED_BYTES), 300u);
  EXPECT_EQ (stat (stats, rq_names::STAT_OVERRUNS), 3u);
  EXPECT_EQ (stat (stats, rq_names::STAT_MAX_LEVEL_BUFFERS), 3u);
  EXPECT_EQ (stat (stats, rq_names::STAT_MAX_LEVEL_BYTES), 300u);
}

TEST_F (LeakyModeTest, GopDropsOldestCompleteGops)
{
  start ("gop", "4");
  // 1K 2D 3D 4K fill the queue; 5D drops GOP [1,2,3]; 6D 7K fill it again;
  // 8D drops GOP [4,5,6].
  const bool keys[] = {false, true, false, false, true, false, false, true, false};
  for (guint64 n = 1; n <= 8; n++)
    push (n, keys[n]);
  EXPECT_EQ (level_buffers (h_->element), 2u);
  release_and_wait (3);
  push (9, false);
  ASSERT_TRUE (recorder_->wait_buffers (4));
  settle ();
  EXPECT_EQ (recorder_->offsets (), (V{0, 7, 8, 9}));
  EXPECT_EQ (discont_offsets (*recorder_), (V{7}));
  for (const auto &item : recorder_->buffers ()) {
    if (item.offset == 7) {
      EXPECT_TRUE (item.keyframe);
    }
  }

  Stats stats = get_stats (h_->element);
  EXPECT_EQ (stat (stats, rq_names::STAT_RECEIVED_BUFFERS), 10u);
  EXPECT_EQ (stat (stats, rq_names::STAT_PUSHED_BUFFERS), 4u);
  EXPECT_EQ (stat (stats, rq_names::FIELD_DROPPED_BUFFERS), 6u);
  EXPECT_EQ (stat (stats, rq_names::FIELD_DROPPED_BYTES), 600u);
  EXPECT_EQ (stat (stats, rq_names::FIELD_DROPPED_GOPS), 2u);
  EXPECT_EQ (stat (stats, rq_names::STAT_OVERRUNS), 2u);
  EXPECT_EQ (stat (stats, rq_names::STAT_MAX_LEVEL_BUFFERS), 4u);
  EXPECT_EQ (stat (stats, rq_names::STAT_CURRENT_LEVEL_BUFFERS), 0u);
}

TEST_F (LeakyModeTest, GopLargerThanLimitDropsDeltasUntilKeyframe)
{
  start ("gop", "3");
  // [1K 2D 3D] is the GOP being received: 4D 5D 6D cannot make room and go.
  push (1, true);
  push (2, false);
  push (3, false);
  push (4, false);
  push (5, false);
  push (6, false);
  EXPECT_EQ (level_buffers (h_->element), 3u);
  release_and_wait (4);
  // Room again, but 7D still belongs to the broken GOP.
  push (7, false);
  push (8, true);
  push (9, false);
  ASSERT_TRUE (recorder_->wait_buffers (6));
  settle ();
  EXPECT_EQ (recorder_->offsets (), (V{0, 1, 2, 3, 8, 9}));
  EXPECT_EQ (discont_offsets (*recorder_), (V{8}));

  Stats stats = get_stats (h_->element);
  EXPECT_EQ (stat (stats, rq_names::STAT_RECEIVED_BUFFERS), 10u);
  EXPECT_EQ (stat (stats, rq_names::STAT_PUSHED_BUFFERS), 6u);
  EXPECT_EQ (stat (stats, rq_names::FIELD_DROPPED_BUFFERS), 4u);
  EXPECT_EQ (stat (stats, rq_names::FIELD_DROPPED_BYTES), 400u);
  EXPECT_EQ (stat (stats, rq_names::FIELD_DROPPED_GOPS), 1u) << "one GOP dropped in part";
  EXPECT_EQ (stat (stats, rq_names::STAT_OVERRUNS), 3u) << "4D 5D 6D found the queue full";
}

TEST_F (LeakyModeTest, NoneBlocksUntilRoomWithoutDropping)
{
  start ("none", "3", "60000000000");
  push (1, true);
  push (2, false);
  push (3, false);
  SignalCounter overruns (h_->element, "overrun");
  GstHarness *h = h_.get ();
  auto pushed = std::async (std::launch::async,
      [h] { return gst_harness_push (h, make_buffer (4, true)); });
  ASSERT_TRUE (overruns.wait_count (1)) << "push on a full queue emitted no overrun";
  EXPECT_EQ (pushed.wait_for (0ms), std::future_status::timeout)
      << "leaky=none returned at once on a full queue";
  hold_->release ();
  if (pushed.wait_for (kWaitTimeout) != std::future_status::ready)
    abort_on_hang ("blocked push not released when downstream drained");
  EXPECT_EQ (pushed.get (), GST_FLOW_OK);
  ASSERT_TRUE (recorder_->wait_buffers (5));
  settle ();
  EXPECT_EQ (recorder_->offsets (), (V{0, 1, 2, 3, 4}));
  EXPECT_TRUE (discont_offsets (*recorder_).empty ());
  Stats stats = get_stats (h_->element);
  EXPECT_EQ (stat (stats, rq_names::FIELD_DROPPED_BUFFERS), 0u);
  EXPECT_EQ (stat (stats, rq_names::STAT_OVERRUNS), 1u);
  // time-blocked is checked where the wait has a known length
  // (test_resilientqueue_blocking): here the release may come before the push
  // starts waiting.
}

// ---------------------------------------------------------------------------
// Sticky events inside a dropped range

TEST_F (LeakyModeTest, StickyEventsInDroppedRangeSurvive)
{
  start ("gop", "3");
  push (1, true);
  gst_harness_push_event (h_.get (), make_caps_event ((1)));
  gst_harness_push_event (h_.get (), make_tag_event ("dropped-1"));
  push (2, false);
  gst_harness_push_event (h_.get (), make_caps_event ((2)));
  gst_harness_push_event (h_.get (), make_segment_event (7 * kSecond));
  gst_harness_push_event (h_.get (), make_tag_event ("dropped-2"));
  gst_harness_push_event (h_.get (), make_marker_event (42));
  push (3, false);
  // Keyframe 4 drops GOP [1,2,3] and every event stays.
  push (4, true);
  EXPECT_EQ (level_buffers (h_->element), 1u);
  release_and_wait (2);
  EXPECT_EQ (recorder_->offsets (), (V{0, 4}));
  EXPECT_EQ (discont_offsets (*recorder_), (V{4}));

  // The latest of each sticky kind went out before buffer 4.
  int caps_gen = -1;
  std::string title;
  guint64 segment_base = 0;
  bool marker = false;
  for (const auto &item : recorder_->items ()) {
    if (item.kind == Item::Kind::Buffer && item.offset == 4)
      break;
    if (item.kind != Item::Kind::Event)
      continue;
    if (item.event_type == GST_EVENT_CAPS)
      caps_gen = item.caps_gen;
    else if (item.event_type == GST_EVENT_TAG)
      title = item.tag_title;
    else if (item.event_type == GST_EVENT_SEGMENT)
      segment_base = item.segment_base;
    else if (item.marker == 42)
      marker = true;
  }
  EXPECT_EQ (caps_gen, 2);
  EXPECT_EQ (title, "dropped-2");
  EXPECT_EQ (segment_base, 7 * kSecond);
  EXPECT_TRUE (marker) << "serialized custom event in the dropped range was lost";

  camrelay::CapsPtr caps{gst_pad_get_current_caps (h_->sinkpad)};
  ASSERT_NE (caps, nullptr);
  int gen = -1;
  gst_structure_get_int (gst_caps_get_structure (caps.get (), 0), "gen", &gen);
  EXPECT_EQ (gen, 2);
}

// Downstream unlinked: a caps event is kept in its place and goes out, after
// the buffers queued before it, once downstream is linked again.  Setting
// the caps on the src pad notifies ::caps; a handler reading a property of
// the element must not deadlock.
TEST_F (LeakyModeTest, StickyEventWhileNotLinkedKeepsItsPlace)
{
  start ("gop", "0");
  push (1, true);
  push (2, false);
  PadPtr srcpad{gst_element_get_static_pad (h_->element, "src")};
  ASSERT_TRUE (gst_pad_unlink (srcpad.get (), h_->sinkpad));
  hold_->release ();  // buffer 0 now meets an unlinked pad
  // A serialized query returns once the task has failed: refused at once if
  // it already has, else woken by the failure.  1 and 2 stay queued.
  {
    camrelay::CapsPtr caps{make_caps (0)};
    camrelay::QueryPtr query{gst_query_new_allocation (caps.get (), FALSE)};
    EXPECT_FALSE (gst_pad_peer_query (h_->srcpad, query.get ()));
  }
  EXPECT_EQ (gst_harness_push (h_.get (), make_buffer (3, true)), GST_FLOW_NOT_LINKED);

  auto on_caps = +[] (GObject *, GParamSpec *, gpointer element) {
    guint level = 0;
    g_object_get (element, "current-level-buffers", &level, nullptr);
  };
  gulong notify_id = g_signal_connect (srcpad.get (), "notify::caps", G_CALLBACK (on_caps), h_->element);
  GstHarness *h = h_.get ();
  auto sent = std::async (std::launch::async, [h] { return gst_harness_push_event (h, make_caps_event (1)); });
  if (sent.wait_for (5s) != std::future_status::ready)
    abort_on_hang ("a notify::caps handler reading a property deadlocked the caps event");
  EXPECT_TRUE (sent.get ()) << "caps event refused while downstream is not linked";

  // Linking sends RECONFIGURE: the task runs again.
  ASSERT_EQ (gst_pad_link (srcpad.get (), h_->sinkpad), GST_PAD_LINK_OK);
  push (4, true);
  ASSERT_TRUE (recorder_->wait_buffers (4)) << join (recorder_->tokens ());
  settle ();
  // (caps:0, from make_harness, may have gone out before the recorder.)
  std::vector<std::string> tail;
  for (const auto &token : recorder_->tokens ())
    if (token[0] == 'B' || (token.rfind ("caps:", 0) == 0 && token != "caps:0"))
      tail.push_back (token);
  EXPECT_EQ (join (tail), "B0 B1 B2 caps:1 B4");
  g_signal_handler_disconnect (srcpad.get (), notify_id);
}

// ---------------------------------------------------------------------------
// EOS

TEST_F (LeakyModeTest, EosDrainsThenRefusesBuffers)
{
  start ("gop", "0");
  for (guint64 n = 1; n <= 5; n++)
    push (n, n == 3);
  ASSERT_TRUE (gst_harness_push_event (h_.get (), gst_event_new_eos ()));
  hold_->release ();
  ASSERT_TRUE (recorder_->wait_eos ());
  std::vector<std::string> tokens = recorder_->tokens ();
  std::vector<std::string> tail;
  for (const auto &token : tokens)
    if (token[0] == 'B' || token == "eos")
      tail.push_back (token);
  EXPECT_EQ (join (tail), "B0 B1 B2 B3 B4 B5 eos");
  EXPECT_EQ (gst_harness_push (h_.get (), make_buffer (6, true)), GST_FLOW_EOS);
  Stats stats = get_stats (h_->element);
  EXPECT_EQ (stat (stats, rq_names::STAT_PUSHED_BUFFERS), 6u);
  EXPECT_EQ (stat (stats, rq_names::STAT_CURRENT_LEVEL_BUFFERS), 0u);
}

// ---------------------------------------------------------------------------
// Limits changed in PLAYING

TEST_F (LeakyModeTest, ShrinkingMaxSizeBuffersTrimsAtOnce)
{
  start ("gop", "0");
  for (guint64 n = 1; n <= 6; n++)
    push (n, n % 2 == 1);  // GOPs [1,2] [3,4] [5,6]
  EXPECT_EQ (level_buffers (h_->element), 6u);
  g_object_set (h_->element, "max-size-buffers", 2u, nullptr);
  EXPECT_EQ (level_buffers (h_->element), 2u) << "limit not applied at once";
  release_and_wait (3);
  settle ();
  EXPECT_EQ (recorder_->offsets (), (V{0, 5, 6}));
  EXPECT_EQ (discont_offsets (*recorder_), (V{5}));
  Stats stats = get_stats (h_->element);
  EXPECT_EQ (stat (stats, rq_names::FIELD_DROPPED_BUFFERS), 4u);
  EXPECT_EQ (stat (stats, rq_names::FIELD_DROPPED_GOPS), 2u);
}

// A push waiting for room (leaky=none) whose GOP is trimmed away meanwhile:
// the delta unit goes too, and the next keyframe restarts the stream.
TEST_F (LeakyModeTest, NoneDropsAWaitingDeltaWhoseGopWasTrimmed)
{
  start ("none", "3", "30000000000");
  push (1, true);
  push (2, false);
  push (3, false);
  SignalCounter overruns (h_->element, "overrun");
  GstHarness *h = h_.get ();
  auto pushed = std::async (std::launch::async, [h] { return gst_harness_push (h, make_buffer (4, false)); });
  ASSERT_TRUE (overruns.wait_count (1));
  ASSERT_EQ (pushed.wait_for (100ms), std::future_status::timeout) << "the push did not wait for room";
  // Only the GOP being received is queued: it all goes, with what follows.
  g_object_set (h_->element, "max-size-buffers", 2u, nullptr);
  EXPECT_EQ (level_buffers (h_->element), 0u) << "limit not applied at once";
  if (pushed.wait_for (5s) != std::future_status::ready) {
    ADD_FAILURE () << "the waiting push was not woken by the lowered limit";
    hold_->release ();
    if (pushed.wait_for (kWaitTimeout) != std::future_status::ready)
      abort_on_hang ("blocked push never returned");
  }
  EXPECT_EQ (pushed.get (), GST_FLOW_OK);
  EXPECT_EQ (level_buffers (h_->element), 0u) << "a delta unit of a dropped GOP was queued";
  push (5, true);
  release_and_wait (2);
  settle ();
  EXPECT_EQ (recorder_->offsets (), (V{0, 5}));
  EXPECT_EQ (discont_offsets (*recorder_), (V{5}));
  Stats stats = get_stats (h_->element);
  EXPECT_EQ (stat (stats, rq_names::FIELD_DROPPED_BUFFERS), 4u);
}

// Lowering max-size-bytes in PLAYING brings the level within the new limit
// at once in every mode, dropping what the mode drops: whole GOPs from the
// head (gop, none), the oldest buffers (downstream), the newest (upstream).
struct LoweredLimitCase {
  const char *leaky;
  guint level_after;       // bytes left at once
  V out;                   // buffers out, 9 pushed after the queue drained
  V discont;
  guint64 dropped_buffers;
  guint64 dropped_gops;
};

std::ostream &
operator<< (std::ostream &os, const LoweredLimitCase &c)
{
  return os << "leaky=" << c.leaky;
}

class LoweredByteLimitTest : public ::testing::TestWithParam<LoweredLimitCase> {};

TEST_P (LoweredByteLimitTest, AppliesAtOnce)
{
  const LoweredLimitCase &c = GetParam ();
  HarnessPtr h = make_harness ({{"leaky", c.leaky}, {"max-size-bytes", "10000"},
      {"max-size-buffers", "0"}, {"max-size-time", "0"}, {"max-block-time", "30000000000"}});
  ASSERT_NE (h, nullptr);
  Recorder recorder (h->element);
  DownstreamHold hold (h->element);
  ASSERT_EQ (gst_harness_push (h.get (), make_buffer (0, true)), GST_FLOW_OK);
  ASSERT_EQ (hold.wait_parked (), 0);
  // GOPs [1 2 3] [4 5 6] [7 8], 100 bytes each.
  for (guint64 n = 1; n <= 8; n++)
    ASSERT_EQ (gst_harness_push (h.get (), make_buffer (n, n % 3 == 1)), GST_FLOW_OK);
  ASSERT_EQ (level_bytes (h->element), 800u);

  g_object_set (h->element, "max-size-bytes", 300u, nullptr);
  EXPECT_EQ (level_bytes (h->element), c.level_after) << "limit not applied at once";
  EXPECT_LE (level_bytes (h->element), 300u);

  hold.release ();
  ASSERT_TRUE (recorder.wait_buffers (c.out.size () - 1));
  ASSERT_EQ (gst_harness_push (h.get (), make_buffer (9, true)), GST_FLOW_OK);
  gst_harness_push_event (h.get (), make_marker_event (1));
  ASSERT_TRUE (recorder.wait_marker (1));
  EXPECT_EQ (recorder.offsets (), c.out);
  EXPECT_EQ (discont_offsets (recorder), c.discont);
  for (const auto &item : recorder.buffers ()) {
    if (item.discont && c.dropped_gops > 0) {
      EXPECT_TRUE (item.keyframe) << "buffer " << item.offset;
    }
  }
  Stats stats = get_stats (h->element);
  EXPECT_EQ (stat (stats, rq_names::FIELD_DROPPED_BUFFERS), c.dropped_buffers);
  EXPECT_EQ (stat (stats, rq_names::FIELD_DROPPED_BYTES), c.dropped_buffers * 100);
  EXPECT_EQ (stat (stats, rq_names::FIELD_DROPPED_GOPS), c.dropped_gops);
}

INSTANTIATE_TEST_SUITE_P (Leaky, LoweredByteLimitTest,
    ::testing::Values (LoweredLimitCase{"gop", 200, {0, 7, 8, 9}, {7}, 6, 2},
        LoweredLimitCase{"none", 200, {0, 7, 8, 9}, {7}, 6, 2},
        LoweredLimitCase{"downstream", 300, {0, 6, 7, 8, 9}, {6}, 5, 0},
        LoweredLimitCase{"upstream", 300, {0, 1, 2, 3, 9}, {9}, 5, 0}),
    [] (const ::testing::TestParamInfo<LoweredLimitCase> &info) { return std::string (info.param.leaky); });

TEST (ResilientQueueLimits, ShrinkingMaxSizeTimeTrimsAtOnce)
{
  HarnessPtr h = make_harness ({{"leaky", "gop"}, {"max-size-buffers", "0"},
      {"max-size-time", "0"}, {"max-size-bytes", "0"}});
  ASSERT_NE (h, nullptr);
  Recorder recorder (h->element);
  DownstreamHold hold (h->element);
  ASSERT_EQ (gst_harness_push (h.get (), make_buffer (0, true, 100, 0)), GST_FLOW_OK);
  ASSERT_EQ (hold.wait_parked (), 0);
  for (guint64 n = 1; n <= 6; n++)
    ASSERT_EQ (gst_harness_push (h.get (), make_buffer (n, n % 2 == 1, 100, n * kSecond)), GST_FLOW_OK);
  EXPECT_EQ (level_time (h->element), 5 * kSecond);
  g_object_set (h->element, "max-size-time", guint64 (1500 * GST_MSECOND), nullptr);
  EXPECT_EQ (level_buffers (h->element), 2u) << "limit not applied at once";
  EXPECT_EQ (level_time (h->element), 1 * kSecond);
  hold.release ();
  ASSERT_TRUE (recorder.wait_buffers (3));
  EXPECT_EQ (recorder.offsets (), (V{0, 5, 6}));
  EXPECT_EQ (discont_offsets (recorder), (V{5}));
  Stats stats = get_stats (h->element);
  EXPECT_EQ (stat (stats, rq_names::STAT_MAX_LEVEL_TIME), 5 * kSecond);
  EXPECT_EQ (stat (stats, rq_names::FIELD_DROPPED_GOPS), 2u);
}

TEST (ResilientQueueLimits, TimeLevelUsesRunningTime)
{
  HarnessPtr h = make_harness ({{"leaky", "gop"}, {"max-size-buffers", "0"},
      {"max-size-time", "3000000000"}, {"max-size-bytes", "0"}});
  ASSERT_NE (h, nullptr);
  Recorder recorder (h->element);
  DownstreamHold hold (h->element);
  ASSERT_EQ (gst_harness_push (h.get (), make_buffer (0, true, 100, 0)), GST_FLOW_OK);
  ASSERT_EQ (hold.wait_parked (), 0);
  // Keyframes 1 s apart: 1..4 span 3 s (fits), 5 makes 4 s -> drop GOP 1.
  for (guint64 n = 1; n <= 5; n++)
    ASSERT_EQ (gst_harness_push (h.get (), make_buffer (n, true, 100, n * kSecond)), GST_FLOW_OK);
  EXPECT_EQ (level_time (h->element), 3 * kSecond);
  EXPECT_EQ (level_buffers (h->element), 4u);
  hold.release ();
  ASSERT_TRUE (recorder.wait_buffers (5));
  EXPECT_EQ (recorder.offsets (), (V{0, 2, 3, 4, 5}));
}

// ---------------------------------------------------------------------------
// Signals with no lock held

struct LevelReader {
  GstElement *element;
  std::mutex mutex;
  std::condition_variable cond;
  std::vector<guint> overrun_levels;
  guint underruns_done = 0;
};

TEST (ResilientQueueSignals, HandlersMayReadPropertiesAndAreCounted)
{
  HarnessPtr h = make_harness ({{"leaky", "upstream"}, {"max-size-buffers", "2"},
      {"max-size-time", "0"}, {"max-size-bytes", "0"}});
  ASSERT_NE (h, nullptr);
  LevelReader reader{h->element, {}, {}, {}, 0};
  auto on_overrun = +[] (GstElement *element, gpointer data) {
    auto *r = static_cast<LevelReader *> (data);
    guint level = 0;
    // Deadlocks if the element emits with its lock held.
    g_object_get (element, "current-level-buffers", &level, nullptr);
    Stats stats = get_stats (element);
    std::lock_guard<std::mutex> lock (r->mutex);
    r->overrun_levels.push_back (level);
    r->cond.notify_all ();
  };
  auto on_underrun = +[] (GstElement *element, gpointer data) {
    auto *r = static_cast<LevelReader *> (data);
    guint level = 0;
    g_object_get (element, "current-level-buffers", &level, nullptr);
    std::lock_guard<std::mutex> lock (r->mutex);
    r->underruns_done++;
    r->cond.notify_all ();
  };
  gulong overrun_id = g_signal_connect (h->element, "overrun", G_CALLBACK (on_overrun), &reader);
  gulong underrun_id = g_signal_connect (h->element, "underrun", G_CALLBACK (on_underrun), &reader);

  Recorder recorder (h->element);
  auto hold = std::make_unique<DownstreamHold> (h->element);
  GstHarness *harness = h.get ();
  auto pushes = std::async (std::launch::async, [harness, &hold] {
    GstFlowReturn ret = gst_harness_push (harness, make_buffer (0, true));
    if (hold->wait_parked () != 0)
      return GST_FLOW_ERROR;
    for (guint64 n = 1; n <= 4 && ret == GST_FLOW_OK; n++)
      ret = gst_harness_push (harness, make_buffer (n, true));
    return ret;
  });
  if (pushes.wait_for (kWaitTimeout) != std::future_status::ready)
    abort_on_hang ("overrun handler reading a property deadlocked the push");
  EXPECT_EQ (pushes.get (), GST_FLOW_OK);
  {
    std::lock_guard<std::mutex> lock (reader.mutex);
    EXPECT_EQ (reader.overrun_levels, (std::vector<guint>{2, 2}));
  }
  // Underruns before the handler was connected (harness set-up) are in the
  // stats too: compare increments from here on.
  guint underruns_before;
  {
    std::lock_guard<std::mutex> lock (reader.mutex);
    underruns_before = reader.underruns_done;
  }
  const guint64 underrun_stat_before = stat (get_stats (h->element), rq_names::STAT_UNDERRUNS);
  hold->release ();
  ASSERT_TRUE (recorder.wait_buffers (3));
  {
    std::unique_lock<std::mutex> lock (reader.mutex);
    if (!reader.cond.wait_for (lock, kWaitTimeout,
            [&] { return reader.underruns_done > underruns_before; }))
      abort_on_hang ("no underrun after the queue drained (or its handler deadlocked)");
  }
  Stats stats = get_stats (h->element);
  EXPECT_EQ (stat (stats, rq_names::STAT_OVERRUNS), 2u);
  {
    std::lock_guard<std::mutex> lock (reader.mutex);
    EXPECT_EQ (stat (stats, rq_names::STAT_UNDERRUNS) - underrun_stat_before, reader.underruns_done - underruns_before);
  }
  g_signal_handler_disconnect (h->element, overrun_id);
  g_signal_handler_disconnect (h->element, underrun_id);
}

// ---------------------------------------------------------------------------
// Synchronous bus handlers

// Reads the element's properties from a synchronous bus handler, as an
// application setting thread priorities on STREAM_STATUS would, and notes
// the stream status types posted by the element's src pad.
struct StreamStatusReader {
  GstElement *element;
  std::mutex mutex;
  std::vector<GstStreamStatusType> types;
};

GstBusSyncReply
read_properties_on_stream_status (GstBus *, GstMessage *message, gpointer data)
{
  auto *reader = static_cast<StreamStatusReader *> (data);
  if (GST_MESSAGE_TYPE (message) != GST_MESSAGE_STREAM_STATUS) {
    gst_message_unref (message);
    return GST_BUS_DROP;
  }
  GstStreamStatusType type;
  GstElement *owner = nullptr;
  gst_message_parse_stream_status (message, &type, &owner);
  // Deadlocks if the message is posted with the element's lock held.
  guint level = 0;
  g_object_get (reader->element, "current-level-buffers", &level, nullptr);
  Stats stats = get_stats (reader->element);
  PadPtr srcpad{gst_element_get_static_pad (reader->element, "src")};
  if (owner == reader->element && GST_MESSAGE_SRC (message) == GST_OBJECT (srcpad.get ())) {
    std::lock_guard<std::mutex> lock (reader->mutex);
    reader->types.push_back (type);
  }
  gst_message_unref (message);  // dropped: ours to release
  return GST_BUS_DROP;
}

TEST (ResilientQueueBus, SyncHandlerMayReadPropertiesOnStreamStatus)
{
  HarnessPtr h = make_harness ({{"leaky", "gop"}});
  ASSERT_NE (h, nullptr);
  StreamStatusReader reader{h->element, {}, {}};
  camrelay::BusPtr bus{gst_bus_new ()};
  gst_bus_set_sync_handler (bus.get (), read_properties_on_stream_status, &reader, nullptr);
  gst_element_set_bus (h->element, bus.get ());

  // NULL stops the src task; PLAYING creates a new one, and CREATE is posted
  // by the thread that activates the pad.
  ASSERT_EQ (gst_element_set_state (h->element, GST_STATE_NULL), GST_STATE_CHANGE_SUCCESS);
  {
    std::lock_guard<std::mutex> lock (reader.mutex);
    reader.types.clear ();
  }
  GstElement *element = h->element;
  auto playing = std::async (std::launch::async,
      [element] { return gst_element_set_state (element, GST_STATE_PLAYING); });
  if (playing.wait_for (5s) != std::future_status::ready)
    abort_on_hang ("a sync handler reading a property on STREAM_STATUS deadlocked");
  EXPECT_EQ (playing.get (), GST_STATE_CHANGE_SUCCESS);
  {
    std::lock_guard<std::mutex> lock (reader.mutex);
    EXPECT_NE (std::find (reader.types.begin (), reader.types.end (), GST_STREAM_STATUS_TYPE_CREATE),
        reader.types.end ())
        << "the src task was not created (no STREAM_STATUS CREATE)";
  }

  // The queue works with the task started that way.
  Recorder recorder (h->element);
  gst_harness_push_event (h.get (), gst_event_new_stream_start ("rqtest"));
  gst_harness_push_event (h.get (), make_caps_event (0));
  gst_harness_push_event (h.get (), make_segment_event (0));
  ASSERT_EQ (gst_harness_push (h.get (), make_buffer (1, true)), GST_FLOW_OK);
  EXPECT_TRUE (recorder.wait_buffers (1));

  ASSERT_EQ (gst_element_set_state (h->element, GST_STATE_NULL), GST_STATE_CHANGE_SUCCESS);
  gst_element_set_bus (h->element, nullptr);
}

// ---------------------------------------------------------------------------
// Latency

gboolean
answer_latency (GstPad *pad, GstObject *parent, GstQuery *query)
{
  if (GST_QUERY_TYPE (query) == GST_QUERY_LATENCY) {
    gst_query_set_latency (query, TRUE, 10 * GST_MSECOND, 50 * GST_MSECOND);
    return TRUE;
  }
  return gst_pad_query_default (pad, parent, query);
}

struct LatencyAnswer {
  gboolean ok = FALSE;
  gboolean live = FALSE;
  GstClockTime min = 0, max = 0;
};

LatencyAnswer
query_latency (GstHarness *h)
{
  LatencyAnswer answer;
  camrelay::QueryPtr query{gst_query_new_latency ()};
  answer.ok = gst_pad_peer_query (h->sinkpad, query.get ());
  if (answer.ok)
    gst_query_parse_latency (query.get (), &answer.live, &answer.min, &answer.max);
  return answer;
}

TEST (ResilientQueueLatency, MaxGrowsByMaxSizeTime)
{
  HarnessPtr h = make_harness ({{"max-size-time", "2000000000"}});
  ASSERT_NE (h, nullptr);
  gst_pad_set_query_function (h->srcpad, answer_latency);

  LatencyAnswer answer = query_latency (h.get ());
  ASSERT_TRUE (answer.ok);
  EXPECT_TRUE (answer.live);
  EXPECT_EQ (answer.min, 10 * GST_MSECOND);
  EXPECT_EQ (answer.max, 50 * GST_MSECOND + 2 * GST_SECOND);

  // Changed in PLAYING: the next query sees it.
  g_object_set (h->element, "max-size-time", guint64 (5 * GST_SECOND), nullptr);
  answer = query_latency (h.get ());
  ASSERT_TRUE (answer.ok);
  EXPECT_EQ (answer.min, 10 * GST_MSECOND);
  EXPECT_EQ (answer.max, 50 * GST_MSECOND + 5 * GST_SECOND);

  // No time limit: unbounded max.
  g_object_set (h->element, "max-size-time", guint64 (0), nullptr);
  answer = query_latency (h.get ());
  ASSERT_TRUE (answer.ok);
  EXPECT_EQ (answer.min, 10 * GST_MSECOND);
  EXPECT_EQ (answer.max, GST_CLOCK_TIME_NONE);
}

}  // namespace
