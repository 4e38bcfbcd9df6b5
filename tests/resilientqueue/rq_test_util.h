// Shared helpers of the resilientqueue test suites: buffer factory, a probe
// that records everything leaving the src pad, a blocking hold and a gate to
// stall downstream, stats access.  Every wait here is bounded.
#pragma once

#include <gst/check/gstharness.h>
#include <gst/gst.h>
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <future>
#include <memory>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "common/element_names.h"
#include "common/gstref.h"

namespace rqtest {

namespace rq_names = camrelay::resilientqueue_names;
using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

// Longest a test waits for something that should happen at once.
constexpr auto kWaitTimeout = 10s;

struct HarnessDeleter {
  void operator() (GstHarness *h) const noexcept
  {
    if (h)
      gst_harness_teardown (h);
  }
};
using HarnessPtr = std::unique_ptr<GstHarness, HarnessDeleter>;

// A thread stuck in the element cannot be joined nor its objects freed:
// report and abort instead of letting the whole suite hit meson's timeout.
[[noreturn]] inline void
abort_on_hang (const char *what)
{
  ADD_FAILURE () << "hang: " << what;
  std::fprintf (stderr, "resilientqueue test hang: %s, aborting\n", what);
  std::fflush (stderr);
  std::abort ();
}

inline double
seconds_since (SteadyClock::time_point start)
{
  return std::chrono::duration<double> (SteadyClock::now () - start).count ();
}

// Buffers are numbered through GST_BUFFER_OFFSET; GST_BUFFER_OFFSET_END holds
// the generation of the caps current when the buffer was pushed.
inline GstBuffer *
make_buffer (guint64 number, bool keyframe, gsize size = 100,
    GstClockTime pts = GST_CLOCK_TIME_NONE, guint64 caps_generation = 0)
{
  GstBuffer *buffer = gst_buffer_new_allocate (nullptr, size, nullptr);
  gst_buffer_memset (buffer, 0, static_cast<guint8> (number), size);
  GST_BUFFER_OFFSET (buffer) = number;
  GST_BUFFER_OFFSET_END (buffer) = caps_generation;
  GST_BUFFER_PTS (buffer) = pts;
  GST_BUFFER_DTS (buffer) = pts;
  if (!keyframe)
    GST_BUFFER_FLAG_SET (buffer, GST_BUFFER_FLAG_DELTA_UNIT);
  return buffer;
}

inline GstCaps *
make_caps (int generation)
{
  return gst_caps_new_simple ("video/x-rqtest", "gen", G_TYPE_INT, generation, nullptr);
}

inline GstEvent *
make_caps_event (int generation)
{
  camrelay::CapsPtr caps{make_caps (generation)};
  return gst_event_new_caps (caps.get ());  // takes its own reference
}

inline GstEvent *
make_marker_event (int n)
{
  return gst_event_new_custom (GST_EVENT_CUSTOM_DOWNSTREAM,
      gst_structure_new ("rqtest-marker", "n", G_TYPE_INT, n, nullptr));
}

inline GstEvent *
make_tag_event (const char *title)
{
  return gst_event_new_tag (gst_tag_list_new (GST_TAG_TITLE, title, nullptr));
}

inline GstEvent *
make_segment_event (GstClockTime base)
{
  GstSegment segment;
  gst_segment_init (&segment, GST_FORMAT_TIME);
  segment.base = base;
  return gst_event_new_segment (&segment);
}

// Which clock the element measures time on (max-block-time, the drop
// message interval): the system clock, or the harness's GstTestClock, which
// moves only when the test moves it.
enum class TestClock { System, Harness };

// Creates a resilientqueue with the given properties (gst_util_set_object_arg
// strings, so enum nicks work), wraps it in a harness (PLAYING) on `clock`
// and sets caps generation 0 on the harness src pad.
inline HarnessPtr
make_harness (const std::vector<std::pair<const char *, const char *>> &properties,
    TestClock clock = TestClock::System)
{
  GstElement *element = gst_element_factory_make ("resilientqueue", nullptr);
  if (!element)
    return nullptr;
  gst_object_ref_sink (element);
  for (const auto &[name, value] : properties)
    gst_util_set_object_arg (G_OBJECT (element), name, value);
  HarnessPtr h{gst_harness_new_with_element (element, "sink", "src")};
  gst_object_unref (element);
  if (clock == TestClock::System)
    gst_harness_use_systemclock (h.get ());
  gst_harness_set_src_caps (h.get (), make_caps (0));
  return h;
}

using Stats = std::map<std::string, guint64>;

// Reads the stats property; every field must be a G_TYPE_UINT64.
inline Stats
get_stats (GstElement *element)
{
  GstStructure *structure = nullptr;
  g_object_get (element, "stats", &structure, nullptr);
  camrelay::StructurePtr owner{structure};
  Stats stats;
  if (!structure) {
    ADD_FAILURE () << "stats property is NULL";
    return stats;
  }
  EXPECT_STREQ (gst_structure_get_name (structure), rq_names::STATS);
  for (int i = 0; i < gst_structure_n_fields (structure); i++) {
    const gchar *name = gst_structure_nth_field_name (structure, i);
    const GValue *value = gst_structure_get_value (structure, name);
    if (G_VALUE_TYPE (value) != G_TYPE_UINT64) {
      ADD_FAILURE () << "stats field " << name << " is a " << G_VALUE_TYPE_NAME (value);
      continue;
    }
    stats[name] = g_value_get_uint64 (value);
  }
  return stats;
}

// Value of one stats field; a missing field fails the test.
inline guint64
stat (const Stats &stats, const char *field)
{
  auto it = stats.find (field);
  if (it == stats.end ()) {
    ADD_FAILURE () << "stats field " << field << " missing";
    return G_MAXUINT64;
  }
  return it->second;
}

inline guint
level_buffers (GstElement *element)
{
  guint value = 0;
  g_object_get (element, "current-level-buffers", &value, nullptr);
  return value;
}

inline guint
level_bytes (GstElement *element)
{
  guint value = 0;
  g_object_get (element, "current-level-bytes", &value, nullptr);
  return value;
}

inline guint64
level_time (GstElement *element)
{
  guint64 value = 0;
  g_object_get (element, "current-level-time", &value, nullptr);
  return value;
}

// One item seen leaving the src pad.
struct Item {
  enum class Kind { Buffer, Event, Query };
  Kind kind = Kind::Buffer;
  // Buffer
  guint64 offset = 0;
  guint64 caps_generation = 0;
  bool keyframe = false;
  bool discont = false;
  gsize size = 0;
  // Event / query
  GstEventType event_type = GST_EVENT_UNKNOWN;
  GstQueryType query_type = GST_QUERY_UNKNOWN;
  int marker = -1;          // rqtest-marker n
  int caps_gen = -1;        // caps gen field
  std::string tag_title;    // tag event title
  guint64 segment_base = 0; // segment base

  std::string token () const;
};

inline std::string
Item::token () const
{
  switch (kind) {
    case Kind::Buffer:
      return "B" + std::to_string (offset);
    case Kind::Query:
      return std::string ("Q:") + gst_query_type_get_name (query_type);
    case Kind::Event:
      switch (event_type) {
        case GST_EVENT_CAPS:
          return "caps:" + std::to_string (caps_gen);
        case GST_EVENT_TAG:
          return "tag:" + tag_title;
        case GST_EVENT_SEGMENT:
          return "segment:" + std::to_string (segment_base);
        case GST_EVENT_CUSTOM_DOWNSTREAM:
          return "marker:" + std::to_string (marker);
        default:
          return gst_event_type_get_name (event_type);
      }
  }
  return "?";
}

// Records buffers, downstream events and serialized queries leaving the
// element's src pad, in order.
class Recorder {
 public:
  explicit Recorder (GstElement *element)
      : pad_ (gst_element_get_static_pad (element, "src"))
  {
    probe_id_ = gst_pad_add_probe (pad_.get (),
        static_cast<GstPadProbeType> (GST_PAD_PROBE_TYPE_DATA_DOWNSTREAM |
            GST_PAD_PROBE_TYPE_QUERY_DOWNSTREAM | GST_PAD_PROBE_TYPE_PUSH),
        on_probe, this, nullptr);
  }
  ~Recorder ()
  {
    gst_pad_remove_probe (pad_.get (), probe_id_);
  }
  Recorder (const Recorder &) = delete;
  Recorder &operator= (const Recorder &) = delete;

  std::vector<Item> items () const
  {
    std::lock_guard<std::mutex> lock (mutex_);
    return items_;
  }
  std::vector<Item> buffers () const
  {
    std::lock_guard<std::mutex> lock (mutex_);
    std::vector<Item> out;
    for (const auto &item : items_)
      if (item.kind == Item::Kind::Buffer)
        out.push_back (item);
    return out;
  }
  std::vector<guint64> offsets () const
  {
    std::vector<guint64> out;
    for (const auto &item : buffers ())
      out.push_back (item.offset);
    return out;
  }
  std::vector<std::string> tokens () const
  {
    std::vector<std::string> out;
    for (const auto &item : items ())
      out.push_back (item.token ());
    return out;
  }
  size_t buffer_count () const
  {
    std::lock_guard<std::mutex> lock (mutex_);
    return buffer_count_;
  }
  bool wait_buffers (size_t count, std::chrono::milliseconds timeout = kWaitTimeout)
  {
    std::unique_lock<std::mutex> lock (mutex_);
    return cond_.wait_for (lock, timeout, [&] { return buffer_count_ >= count; });
  }
  // Waits for the custom marker event `n`: everything queued before it has
  // been pushed and accounted for once it shows up.
  bool wait_marker (int n, std::chrono::milliseconds timeout = kWaitTimeout)
  {
    std::unique_lock<std::mutex> lock (mutex_);
    return cond_.wait_for (lock, timeout, [&] {
      for (const auto &item : items_)
        if (item.kind == Item::Kind::Event && item.marker == n)
          return true;
      return false;
    });
  }
  bool wait_eos (std::chrono::milliseconds timeout = kWaitTimeout)
  {
    std::unique_lock<std::mutex> lock (mutex_);
    return cond_.wait_for (lock, timeout, [&] { return eos_; });
  }

 private:
  static GstPadProbeReturn on_probe (GstPad *, GstPadProbeInfo *info, gpointer user_data)
  {
    auto *self = static_cast<Recorder *> (user_data);
    std::vector<Item> new_items;
    bool eos = false;
    if (GST_PAD_PROBE_INFO_TYPE (info) & GST_PAD_PROBE_TYPE_BUFFER) {
      new_items.push_back (buffer_item (GST_PAD_PROBE_INFO_BUFFER (info)));
    } else if (GST_PAD_PROBE_INFO_TYPE (info) & GST_PAD_PROBE_TYPE_BUFFER_LIST) {
      GstBufferList *list = GST_PAD_PROBE_INFO_BUFFER_LIST (info);
      for (guint i = 0; i < gst_buffer_list_length (list); i++)
        new_items.push_back (buffer_item (gst_buffer_list_get (list, i)));
    } else if (GST_PAD_PROBE_INFO_TYPE (info) & GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM) {
      GstEvent *event = GST_PAD_PROBE_INFO_EVENT (info);
      Item item;
      item.kind = Item::Kind::Event;
      item.event_type = GST_EVENT_TYPE (event);
      switch (GST_EVENT_TYPE (event)) {
        case GST_EVENT_CAPS: {
          GstCaps *caps = nullptr;
          gst_event_parse_caps (event, &caps);
          gst_structure_get_int (gst_caps_get_structure (caps, 0), "gen", &item.caps_gen);
          break;
        }
        case GST_EVENT_TAG: {
          GstTagList *tags = nullptr;
          gst_event_parse_tag (event, &tags);
          gchar *title = nullptr;
          if (gst_tag_list_get_string (tags, GST_TAG_TITLE, &title)) {
            item.tag_title = title;
            g_free (title);
          }
          break;
        }
        case GST_EVENT_SEGMENT: {
          const GstSegment *segment = nullptr;
          gst_event_parse_segment (event, &segment);
          item.segment_base = segment->base;
          break;
        }
        case GST_EVENT_CUSTOM_DOWNSTREAM: {
          const GstStructure *s = gst_event_get_structure (event);
          if (s && gst_structure_has_name (s, "rqtest-marker"))
            gst_structure_get_int (s, "n", &item.marker);
          break;
        }
        case GST_EVENT_EOS:
          eos = true;
          break;
        default:
          break;
      }
      new_items.push_back (item);
    } else if (GST_PAD_PROBE_INFO_TYPE (info) & GST_PAD_PROBE_TYPE_QUERY_DOWNSTREAM) {
      GstQuery *query = GST_PAD_PROBE_INFO_QUERY (info);
      // Non-serialized queries (caps, accept-caps) pass straight through and
      // have no place in the stream.
      if (GST_QUERY_IS_SERIALIZED (query)) {
        Item item;
      item.kind = Item::Kind::Query;
        item.query_type = GST_QUERY_TYPE (query);
        new_items.push_back (item);
      }
    }
    {
      std::lock_guard<std::mutex> lock (self->mutex_);
      for (auto &item : new_items) {
        if (item.kind == Item::Kind::Buffer)
          self->buffer_count_++;
        self->items_.push_back (std::move (item));
      }
      self->eos_ = self->eos_ || eos;
    }
    self->cond_.notify_all ();
    return GST_PAD_PROBE_OK;
  }

  static Item buffer_item (GstBuffer *buffer)
  {
    Item item;
      item.kind = Item::Kind::Buffer;
    item.offset = GST_BUFFER_OFFSET (buffer);
    item.caps_generation = GST_BUFFER_OFFSET_END (buffer);
    item.keyframe = !GST_BUFFER_FLAG_IS_SET (buffer, GST_BUFFER_FLAG_DELTA_UNIT);
    item.discont = GST_BUFFER_FLAG_IS_SET (buffer, GST_BUFFER_FLAG_DISCONT);
    item.size = gst_buffer_get_size (buffer);
    return item;
  }

  camrelay::PadPtr pad_;
  gulong probe_id_ = 0;
  mutable std::mutex mutex_;
  std::condition_variable cond_;
  std::vector<Item> items_;
  size_t buffer_count_ = 0;
  bool eos_ = false;
};

// Holds downstream: a BLOCK probe on the element's src pad parks the src task
// on the first buffer it pushes (that buffer is then out of the queue).
// Deactivating the pad (flush, NULL) releases it, as a real stuck sink would be.
class DownstreamHold {
 public:
  explicit DownstreamHold (GstElement *element)
      : pad_ (gst_element_get_static_pad (element, "src"))
  {
    probe_id_ = gst_pad_add_probe (pad_.get (),
        static_cast<GstPadProbeType> (GST_PAD_PROBE_TYPE_BLOCK | GST_PAD_PROBE_TYPE_BUFFER),
        on_block, this, nullptr);
  }
  ~DownstreamHold () { release (); }
  DownstreamHold (const DownstreamHold &) = delete;
  DownstreamHold &operator= (const DownstreamHold &) = delete;

  // Waits until the src task is parked in the probe; returns the number of
  // the parked buffer, or -1 on timeout.
  gint64 wait_parked (std::chrono::milliseconds timeout = kWaitTimeout)
  {
    std::unique_lock<std::mutex> lock (mutex_);
    if (!cond_.wait_for (lock, timeout, [&] { return parked_ >= 0; }))
      return -1;
    return parked_;
  }
  void release ()
  {
    if (probe_id_) {
      gst_pad_remove_probe (pad_.get (), probe_id_);
      probe_id_ = 0;
    }
  }

 private:
  static GstPadProbeReturn on_block (GstPad *, GstPadProbeInfo *info, gpointer user_data)
  {
    auto *self = static_cast<DownstreamHold *> (user_data);
    {
      std::lock_guard<std::mutex> lock (self->mutex_);
      if (self->parked_ < 0)
        self->parked_ = static_cast<gint64> (GST_BUFFER_OFFSET (GST_PAD_PROBE_INFO_BUFFER (info)));
    }
    self->cond_.notify_all ();
    return GST_PAD_PROBE_OK;
  }

  camrelay::PadPtr pad_;
  gulong probe_id_ = 0;
  std::mutex mutex_;
  std::condition_variable cond_;
  gint64 parked_ = -1;
};

// A gate on the src pad the test opens and closes: while closed, the src task
// waits in the probe (bounded: after kWaitTimeout it gives up and notes it).
// Unlike DownstreamHold it ignores flushing, as a sink stuck in a call that
// knows nothing of flushes would: only opening it lets the buffer go on.
// Add it before a Recorder on the same pad, so that the recorder sees what
// passed the gate.
class Gate {
 public:
  explicit Gate (GstElement *element) : pad_ (gst_element_get_static_pad (element, "src"))
  {
    probe_id_ = gst_pad_add_probe (pad_.get (), GST_PAD_PROBE_TYPE_BUFFER, on_buffer, this, nullptr);
  }
  ~Gate ()
  {
    open ();
    gst_pad_remove_probe (pad_.get (), probe_id_);
  }
  Gate (const Gate &) = delete;
  Gate &operator= (const Gate &) = delete;

  void close ()
  {
    std::lock_guard<std::mutex> lock (mutex_);
    closed_ = true;
  }
  void open ()
  {
    {
      std::lock_guard<std::mutex> lock (mutex_);
      closed_ = false;
    }
    cond_.notify_all ();
  }
  bool timed_out () const
  {
    std::lock_guard<std::mutex> lock (mutex_);
    return timed_out_;
  }
  // Waits until the src task is held in the closed gate; returns the number
  // of the buffer it holds, or -1 on timeout.
  gint64 wait_holding (std::chrono::milliseconds timeout = kWaitTimeout)
  {
    std::unique_lock<std::mutex> lock (mutex_);
    if (!cond_.wait_for (lock, timeout, [&] { return holding_ >= 0; }))
      return -1;
    return holding_;
  }

 private:
  static GstPadProbeReturn on_buffer (GstPad *, GstPadProbeInfo *info, gpointer user_data)
  {
    auto *self = static_cast<Gate *> (user_data);
    std::unique_lock<std::mutex> lock (self->mutex_);
    if (self->closed_) {
      self->holding_ = static_cast<gint64> (GST_BUFFER_OFFSET (GST_PAD_PROBE_INFO_BUFFER (info)));
      self->cond_.notify_all ();
      if (!self->cond_.wait_for (lock, kWaitTimeout, [&] { return !self->closed_; }))
        self->timed_out_ = true;
      self->holding_ = -1;
    }
    return GST_PAD_PROBE_OK;
  }

  camrelay::PadPtr pad_;
  gulong probe_id_ = 0;
  mutable std::mutex mutex_;
  std::condition_variable cond_;
  bool closed_ = false;
  bool timed_out_ = false;
  gint64 holding_ = -1;
};

// Counts emissions of a signal and lets the test wait for them.
class SignalCounter {
 public:
  SignalCounter (GstElement *element, const char *signal) : element_ (element)
  {
    handler_ = g_signal_connect (element, signal, G_CALLBACK (on_signal), this);
  }
  ~SignalCounter () { g_signal_handler_disconnect (element_, handler_); }
  SignalCounter (const SignalCounter &) = delete;
  SignalCounter &operator= (const SignalCounter &) = delete;

  guint count () const
  {
    std::lock_guard<std::mutex> lock (mutex_);
    return count_;
  }
  bool wait_count (guint count, std::chrono::milliseconds timeout = kWaitTimeout)
  {
    std::unique_lock<std::mutex> lock (mutex_);
    return cond_.wait_for (lock, timeout, [&] { return count_ >= count; });
  }

 private:
  static void on_signal (GstElement *, gpointer user_data)
  {
    auto *self = static_cast<SignalCounter *> (user_data);
    {
      std::lock_guard<std::mutex> lock (self->mutex_);
      self->count_++;
    }
    self->cond_.notify_all ();
  }

  GstElement *element_;
  gulong handler_ = 0;
  mutable std::mutex mutex_;
  std::condition_variable cond_;
  guint count_ = 0;
};

// ---------------------------------------------------------------------------
// A queue held full

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

inline void
make_held_queue (HeldQueue &q, const char *leaky, const char *block_time, guint64 fill,
    Stall stall = Stall::Hold, TestClock clock = TestClock::System)
{
  q.h = make_harness ({{"leaky", leaky}, {"max-size-buffers", std::to_string (fill).c_str ()},
      {"max-size-time", "0"}, {"max-size-bytes", "0"}, {"max-block-time", block_time}}, clock);
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
inline void
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

}  // namespace rqtest
