/**
 * SECTION:element-resilientqueue
 * @title: resilientqueue
 *
 * A bounded queue, with its own streaming thread on the src pad like `queue`,
 * made for live camera streams: it holds up to 20 s of data by default, never
 * blocks its producer for longer than a bound, and when full drops whole GOPs
 * (a keyframe and the delta units that depend on it) so that a decoder
 * downstream never sees a broken GOP.  After any drop the next buffer out is
 * a keyframe flagged DISCONT.
 *
 * Events are never dropped: serialized events keep their place among the
 * buffers that remain, so caps, segment and tags inside a dropped range still
 * go out before the next buffer.  A serialized query waits at most
 * #GstResilientQueue:max-block-time, then is refused.
 *
 * It posts an element message `resilientqueue-dropped` at most once per
 * second while it drops, with these #G_TYPE_UINT64 fields counting the drops
 * since the previous message: `dropped-buffers`, `dropped-bytes`,
 * `dropped-gops`; and `leaky` (#GstResilientQueueLeaky), the mode that
 * dropped them.
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 videotestsrc is-live=true ! x264enc tune=zerolatency key-int-max=30 ! \
 *     h264parse ! resilientqueue max-size-time=20000000000 ! fakesink sync=true
 * ]|
 * Buffers 20 s of H.264 between the encoder and the sink; when the sink falls
 * behind by more than that, the oldest GOPs are dropped.
 */

#include "resilientqueue/gstresilientqueue.h"

#include "common/gstref.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

GST_DEBUG_CATEGORY_STATIC (resilient_queue_debug);
GST_DEBUG_CATEGORY_STATIC (resilient_queue_dataflow);
#define GST_CAT_DEFAULT resilient_queue_debug

namespace {

using Clock = std::chrono::steady_clock;
using camrelay::ClockPtr;
using camrelay::EventPtr;
using camrelay::MiniObjectPtr;
using camrelay::QueryPtr;
// A clock entry (GstClockID) is neither a GstObject nor a mini object, but is
// reference counted all the same.
using ClockIdPtr = camrelay::UniqueRef<void, gst_clock_id_unref>;

constexpr guint64 DEFAULT_MAX_SIZE_TIME = 20 * GST_SECOND;
// 20 s of a 4K camera at ~25 Mbit/s is ~60 MiB.
constexpr guint DEFAULT_MAX_SIZE_BYTES = 64 * 1024 * 1024;
constexpr guint DEFAULT_MAX_SIZE_BUFFERS = 0;
constexpr GstResilientQueueLeaky DEFAULT_LEAKY = GST_RESILIENT_QUEUE_LEAKY_GOP;
constexpr guint64 DEFAULT_MAX_BLOCK_TIME = 5 * GST_SECOND;
constexpr guint64 MIN_MAX_BLOCK_TIME = GST_MSECOND;
constexpr guint64 MAX_MAX_BLOCK_TIME = 3600 * GST_SECOND;

// At most one drop message per this interval.
constexpr auto DROP_MESSAGE_INTERVAL = std::chrono::seconds (1);
// How long the idle src task sleeps before it re-checks its state; a safety
// net only: every change that matters signals the condition.
constexpr auto IDLE_WAKEUP = std::chrono::seconds (1);

constexpr const char *STATS_NAME = "application/x-resilientqueue-stats";
constexpr const char *DROP_MESSAGE_NAME = "resilientqueue-dropped";

enum {
  PROP_0,
  PROP_MAX_SIZE_TIME,
  PROP_MAX_SIZE_BYTES,
  PROP_MAX_SIZE_BUFFERS,
  PROP_LEAKY,
  PROP_MAX_BLOCK_TIME,
  PROP_CURRENT_LEVEL_TIME,
  PROP_CURRENT_LEVEL_BYTES,
  PROP_CURRENT_LEVEL_BUFFERS,
  PROP_STATS,
};

enum {
  SIGNAL_OVERRUN,
  SIGNAL_UNDERRUN,
  LAST_SIGNAL,
};

guint signals[LAST_SIGNAL];

GstStaticPadTemplate sink_template =
    GST_STATIC_PAD_TEMPLATE ("sink", GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS_ANY);
GstStaticPadTemplate src_template =
    GST_STATIC_PAD_TEMPLATE ("src", GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS_ANY);

// The answer to a serialized query, shared between the thread that asked
// (which may give up waiting) and the src task (which may answer late).
struct QueryWaiter {
  bool answered = false;
  bool abandoned = false;
  gboolean result = FALSE;
  QueryPtr answer;  // set once answered, until taken
};

enum class ItemKind : guint8 { Buffer, Event, Query };

// One entry of the queue.  Owns one reference to `object`.
struct Item {
  MiniObjectPtr<GstMiniObject> object;
  ItemKind kind = ItemKind::Buffer;
  bool keyframe = false;
  bool discont = false;  // set DISCONT when it goes out
  guint size = 0;
  GstClockTime running_time = GST_CLOCK_TIME_NONE;
  std::shared_ptr<QueryWaiter> waiter;

  bool is_buffer () const { return kind == ItemKind::Buffer; }
};

void
release_item (Item &item)
{
  item.object.reset ();
}

struct DropCounts {
  guint64 buffers = 0;
  guint64 bytes = 0;
  guint64 gops = 0;
};

// A drop message decided under the lock and posted once it is released.
struct DropReport {
  DropCounts counts;
  GstResilientQueueLeaky leaky = DEFAULT_LEAKY;
};

struct Stats {
  guint64 received_buffers = 0;
  guint64 dropped_buffers = 0;
  guint64 dropped_bytes = 0;
  guint64 dropped_gops = 0;
  guint64 max_level_time = 0;
  guint64 max_level_bytes = 0;
  guint64 max_level_buffers = 0;
  guint64 time_blocked = 0;
  guint64 overruns = 0;
  guint64 underruns = 0;
};

}  // namespace

// Everything the element's threads share; guarded by `lock` unless noted.
struct GstResilientQueuePrivate {
  std::mutex lock;
  // Serialises starting the src task against deactivating the src pad, so
  // that a task is never started after the deactivation stopped it.  Held
  // while starting the task (which posts a STREAM_STATUS message), never
  // while `lock` is held nor while joining the task; taken before `lock`.
  std::mutex task_lock;
  std::condition_variable item_added;    // src task waits for data
  std::condition_variable item_removed;  // blocked push waits for room
  std::condition_variable query_handled;

  std::deque<Item> items;

  guint64 max_size_time = DEFAULT_MAX_SIZE_TIME;
  guint max_size_bytes = DEFAULT_MAX_SIZE_BYTES;
  guint max_size_buffers = DEFAULT_MAX_SIZE_BUFFERS;
  GstResilientQueueLeaky leaky = DEFAULT_LEAKY;
  guint64 max_block_time = DEFAULT_MAX_BLOCK_TIME;

  guint64 level_bytes = 0;
  guint level_buffers = 0;
  guint timed_buffers = 0;  // buffers in the queue with a running time
  GstClockTime newest_time = GST_CLOCK_TIME_NONE;
  GstClockTime oldest_time = GST_CLOCK_TIME_NONE;

  // FLUSHING while stopped or flushing; the downstream flow result otherwise.
  // Re-checked after every wake-up.
  GstFlowReturn srcresult = GST_FLOW_FLUSHING;
  // Counts flushes and deactivations.  A waiter compares it with the value
  // it started with: FLUSH_STOP may set srcresult back to OK before a waiter
  // woken by FLUSH_START runs again, and the flush still concerns it.
  guint64 flush_generation = 0;
  bool eos = false;              // EOS queued: refuse further data
  bool dropping_deltas = false;  // gop: the current GOP is lost, wait for a keyframe
  bool discont_next_in = false;  // flag the next queued buffer DISCONT
  bool underrun_signalled = false;
  bool src_waiting = false;
  bool sink_waiting = false;

  Stats stats;
  std::atomic<guint64> pushed_buffers{0};  // updated by the src task unlocked

  DropCounts pending_drops;  // not yet reported in a message
  std::optional<Clock::time_point> last_drop_message;
  // Posts pending drops once they are due when no thread of ours runs: the
  // src task may be held downstream while upstream has stopped pushing.
  ClockPtr system_clock{gst_system_clock_obtain ()};
  ClockIdPtr drop_timer;

  // Only touched by the upstream streaming thread.
  GstSegment sink_segment;
};

struct _GstResilientQueue {
  GstElement parent;

  // Borrowed: the element owns its pads.
  GstPad *sinkpad;
  GstPad *srcpad;
  GstResilientQueuePrivate *priv;
};

#define gst_resilient_queue_parent_class parent_class
G_DEFINE_TYPE_WITH_CODE (GstResilientQueue, gst_resilient_queue, GST_TYPE_ELEMENT,
    G_IMPLEMENT_INTERFACE (GST_TYPE_PRESET, nullptr);
    GST_DEBUG_CATEGORY_INIT (resilient_queue_debug, "resilientqueue", 0,
        "resilientqueue: bounded GOP-aware queue");
    GST_DEBUG_CATEGORY_INIT (resilient_queue_dataflow, "resilientqueue_dataflow", 0,
        "resilientqueue: per-buffer data flow"));

GST_ELEMENT_REGISTER_DEFINE (resilientqueue, "resilientqueue", GST_RANK_NONE,
    GST_TYPE_RESILIENT_QUEUE);

GType
gst_resilient_queue_leaky_get_type (void)
{
  static gsize type_id = 0;
  static const GEnumValue values[] = {
    {GST_RESILIENT_QUEUE_LEAKY_NONE,
        "Not leaky: block upstream up to max-block-time, then drop as gop", "none"},
    {GST_RESILIENT_QUEUE_LEAKY_UPSTREAM, "Leaky on upstream: drop the incoming buffer",
        "upstream"},
    {GST_RESILIENT_QUEUE_LEAKY_DOWNSTREAM, "Leaky on downstream: drop the oldest buffers",
        "downstream"},
    {GST_RESILIENT_QUEUE_LEAKY_GOP, "Drop the oldest whole GOPs", "gop"},
    {0, nullptr, nullptr},
  };
  if (g_once_init_enter (&type_id)) {
    GType type = g_enum_register_static ("GstResilientQueueLeaky", values);
    g_once_init_leave (&type_id, type);
  }
  return static_cast<GType> (type_id);
}

namespace {

using Lock = std::unique_lock<std::mutex>;

// ---- levels (lock held) ---------------------------------------------------

guint64
level_time (const GstResilientQueuePrivate &p)
{
  if (p.timed_buffers == 0 || !GST_CLOCK_TIME_IS_VALID (p.newest_time)
      || !GST_CLOCK_TIME_IS_VALID (p.oldest_time) || p.newest_time <= p.oldest_time)
    return 0;
  return p.newest_time - p.oldest_time;
}

// The running time of the oldest timed buffer, found again after the head of
// the queue changed.  Usually the first item, so this is cheap.
void
refresh_oldest_time (GstResilientQueuePrivate &p)
{
  p.oldest_time = GST_CLOCK_TIME_NONE;
  if (p.timed_buffers == 0) {
    p.newest_time = GST_CLOCK_TIME_NONE;
    return;
  }
  for (const Item &item : p.items) {
    if (item.is_buffer () && GST_CLOCK_TIME_IS_VALID (item.running_time)) {
      p.oldest_time = item.running_time;
      return;
    }
  }
}

// The running time of the newest timed buffer, found again after the tail
// of the queue changed.
void
refresh_newest_time (GstResilientQueuePrivate &p)
{
  p.newest_time = GST_CLOCK_TIME_NONE;
  for (auto it = p.items.rbegin (); it != p.items.rend (); ++it) {
    if (it->is_buffer () && GST_CLOCK_TIME_IS_VALID (it->running_time)) {
      p.newest_time = it->running_time;
      return;
    }
  }
}

// Whether the queue would exceed a limit with `incoming` added.
bool
overflows_with (const GstResilientQueuePrivate &p, const Item &incoming)
{
  if (p.max_size_buffers > 0 && p.level_buffers + 1 > p.max_size_buffers)
    return true;
  if (p.max_size_bytes > 0 && p.level_bytes + incoming.size > p.max_size_bytes)
    return true;
  if (p.max_size_time > 0 && p.timed_buffers > 0
      && GST_CLOCK_TIME_IS_VALID (incoming.running_time)
      && GST_CLOCK_TIME_IS_VALID (p.oldest_time) && incoming.running_time > p.oldest_time
      && incoming.running_time - p.oldest_time > p.max_size_time)
    return true;
  return false;
}

// Whether the queue is over a limit as it is (after the limits shrank).
bool
over_limits (const GstResilientQueuePrivate &p)
{
  return (p.max_size_buffers > 0 && p.level_buffers > p.max_size_buffers)
      || (p.max_size_bytes > 0 && p.level_bytes > p.max_size_bytes)
      || (p.max_size_time > 0 && level_time (p) > p.max_size_time);
}

void
account_added (GstResilientQueuePrivate &p, const Item &item)
{
  p.level_buffers++;
  p.level_bytes += item.size;
  if (GST_CLOCK_TIME_IS_VALID (item.running_time)) {
    if (p.timed_buffers++ == 0)
      p.oldest_time = item.running_time;
    p.newest_time = item.running_time;
  }
  p.stats.max_level_buffers = MAX (p.stats.max_level_buffers, p.level_buffers);
  p.stats.max_level_bytes = MAX (p.stats.max_level_bytes, p.level_bytes);
  p.stats.max_level_time = MAX (p.stats.max_level_time, level_time (p));
}

// Removes a buffer's share of the levels; the caller refreshes the oldest
// time once it has finished changing the head of the queue.
void
account_removed (GstResilientQueuePrivate &p, const Item &item)
{
  p.level_buffers--;
  p.level_bytes -= item.size;
  if (GST_CLOCK_TIME_IS_VALID (item.running_time))
    p.timed_buffers--;
}

void
count_dropped (GstResilientQueuePrivate &p, const Item &item)
{
  p.stats.dropped_buffers++;
  p.stats.dropped_bytes += item.size;
  p.pending_drops.buffers++;
  p.pending_drops.bytes += item.size;
}

void
count_dropped_gop (GstResilientQueuePrivate &p)
{
  p.stats.dropped_gops++;
  p.pending_drops.gops++;
}

// The next buffer to go out restarts the stream after a gap.
void
mark_next_buffer_discont (GstResilientQueuePrivate &p)
{
  for (Item &item : p.items) {
    if (item.is_buffer ()) {
      item.discont = true;
      return;
    }
  }
  p.discont_next_in = true;
}

// ---- dropping (lock held) -------------------------------------------------

// Drops the buffers of items [first, last), keeping every event and query in
// its place.  Returns the number of buffers dropped.
guint
drop_buffers_in_range (GstResilientQueuePrivate &p, size_t first, size_t last)
{
  guint dropped = 0;
  size_t kept = first;
  for (size_t i = first; i < last; ++i) {
    Item &item = p.items[i];
    if (item.is_buffer ()) {
      GST_CAT_LOG (resilient_queue_dataflow, "dropping buffer of %u bytes%s", item.size,
          item.keyframe ? " (keyframe)" : "");
      account_removed (p, item);
      count_dropped (p, item);
      release_item (item);
      dropped++;
    } else {
      if (kept != i)
        p.items[kept] = std::move (item);
      kept++;
    }
  }
  p.items.erase (p.items.begin () + kept, p.items.begin () + last);
  refresh_oldest_time (p);
  return dropped;
}

// Drops the GOP at the head of the queue: its first buffer and every delta
// unit after it, up to the next keyframe.  The last GOP in the queue may still
// be receiving delta units; it is only dropped when `allow_last`.
bool
drop_head_gop (GstResilientQueuePrivate &p, bool allow_last)
{
  size_t first = 0;
  while (first < p.items.size () && !p.items[first].is_buffer ())
    first++;
  if (first == p.items.size ())
    return false;

  size_t end = first + 1;
  while (end < p.items.size () && !(p.items[end].is_buffer () && p.items[end].keyframe))
    end++;
  if (end == p.items.size () && !allow_last)
    return false;

  guint dropped = drop_buffers_in_range (p, first, end);
  count_dropped_gop (p);
  mark_next_buffer_discont (p);
  GST_DEBUG ("dropped a GOP of %u buffers, %u buffers left", dropped, p.level_buffers);
  return true;
}

// Drops the oldest buffer, GOP or not.
bool
drop_head_buffer (GstResilientQueuePrivate &p)
{
  for (size_t i = 0; i < p.items.size (); ++i) {
    if (p.items[i].is_buffer ()) {
      drop_buffers_in_range (p, i, i + 1);
      mark_next_buffer_discont (p);
      return true;
    }
  }
  return false;
}

// Drops the newest buffer, as if it had been refused on arrival: the next
// buffer to arrive is flagged DISCONT.
bool
drop_tail_buffer (GstResilientQueuePrivate &p)
{
  for (size_t i = p.items.size (); i-- > 0;) {
    if (p.items[i].is_buffer ()) {
      drop_buffers_in_range (p, i, i + 1);
      refresh_newest_time (p);
      p.discont_next_in = true;
      return true;
    }
  }
  return false;
}

// The incoming buffer is not queued.
void
drop_incoming (GstResilientQueuePrivate &p, Item &item)
{
  GST_CAT_LOG (resilient_queue_dataflow, "dropping incoming buffer of %u bytes", item.size);
  count_dropped (p, item);
  release_item (item);
  p.discont_next_in = true;
}

// gop: make room for `item` by dropping the oldest complete GOPs; when the GOP
// being received does not fit on its own, drop it from here on.  Returns
// whether `item` is to be queued.
bool
leak_gops (GstResilientQueuePrivate &p, Item &item)
{
  while (overflows_with (p, item) && drop_head_gop (p, item.keyframe))
    ;
  if (!overflows_with (p, item))
    return true;
  GST_DEBUG ("the current GOP alone exceeds the limits: dropping until the next keyframe");
  drop_incoming (p, item);
  p.dropping_deltas = true;
  count_dropped_gop (p);
  return false;
}

bool
leak_downstream (GstResilientQueuePrivate &p, Item &item)
{
  while (overflows_with (p, item) && drop_head_buffer (p))
    ;
  if (!overflows_with (p, item))
    return true;
  drop_incoming (p, item);
  return false;
}

// Brings the queue back within limits that were just lowered, at once and
// in every mode, dropping what the mode would have dropped had the limits
// been in force all along: whole GOPs from the head in gop and none (a none
// push cannot wait for room that is already owed), the oldest buffers in
// downstream, the newest ones in upstream.
void
trim_to_limits (GstResilientQueuePrivate &p)
{
  switch (p.leaky) {
    case GST_RESILIENT_QUEUE_LEAKY_NONE:
    case GST_RESILIENT_QUEUE_LEAKY_GOP:
      while (over_limits (p)) {
        if (drop_head_gop (p, false))
          continue;
        // Only the GOP being received is left and it is too big: drop it and
        // the rest of it as it arrives.
        if (!drop_head_gop (p, true))
          break;
        p.dropping_deltas = true;
      }
      break;
    case GST_RESILIENT_QUEUE_LEAKY_DOWNSTREAM:
      while (over_limits (p) && drop_head_buffer (p))
        ;
      break;
    case GST_RESILIENT_QUEUE_LEAKY_UPSTREAM:
      while (over_limits (p) && drop_tail_buffer (p))
        ;
      break;
  }
}

// What to do about drops not yet reported, decided under the lock and carried
// out once it is released: post a message now, or start the timer that posts
// it when it is due.
struct DropNotice {
  std::optional<DropReport> report;
  ClockIdPtr start_timer;
};

DropNotice
collect_drop_notice (GstResilientQueuePrivate &p)
{
  DropNotice notice;
  if (p.pending_drops.buffers == 0)
    return notice;
  const auto now = Clock::now ();
  if (!p.last_drop_message || now - *p.last_drop_message >= DROP_MESSAGE_INTERVAL) {
    notice.report = DropReport{p.pending_drops, p.leaky};
    p.pending_drops = DropCounts{};
    p.last_drop_message = now;
  } else if (!p.drop_timer && p.srcresult == GST_FLOW_OK) {
    const auto wait = std::chrono::duration_cast<std::chrono::nanoseconds> (
        *p.last_drop_message + DROP_MESSAGE_INTERVAL - now);
    p.drop_timer.reset (gst_clock_new_single_shot_id (p.system_clock.get (),
        gst_clock_get_time (p.system_clock.get ()) + static_cast<GstClockTime> (wait.count ())));
    notice.start_timer.reset (gst_clock_id_ref (p.drop_timer.get ()));
  }
  return notice;
}

void
flush_items (GstResilientQueuePrivate &p)
{
  for (Item &item : p.items)
    release_item (item);
  p.items.clear ();
  p.level_bytes = 0;
  p.level_buffers = 0;
  p.timed_buffers = 0;
  p.newest_time = GST_CLOCK_TIME_NONE;
  p.oldest_time = GST_CLOCK_TIME_NONE;
  p.dropping_deltas = false;
  p.discont_next_in = false;
  p.underrun_signalled = false;
}

// Empties the queue for FLUSH_STOP.  Sticky events other than SEGMENT and
// EOS still describe the stream after the flush, and upstream does not send
// them again: they are handed back, oldest first, for the caller to store on
// the src pad once the lock is released, as queue does.
std::vector<EventPtr>
flush_items_keeping_sticky_events (GstResilientQueuePrivate &p)
{
  std::vector<EventPtr> sticky;
  for (Item &item : p.items) {
    if (item.kind != ItemKind::Event)
      continue;
    GstEvent *event = GST_EVENT_CAST (item.object.get ());
    if (GST_EVENT_IS_STICKY (event) && GST_EVENT_TYPE (event) != GST_EVENT_SEGMENT
        && GST_EVENT_TYPE (event) != GST_EVENT_EOS) {
      sticky.emplace_back (event);
      item.object.release ();  // now owned by `sticky`
    }
  }
  flush_items (p);
  return sticky;
}

void
wake_everyone (GstResilientQueuePrivate &p)
{
  p.item_added.notify_all ();
  p.item_removed.notify_all ();
  p.query_handled.notify_all ();
}

// Flush start or deactivation: every wait ends, now and until srcresult is
// OK again; a wait that began before ends even if it is OK again by then.
void
set_flushing (GstResilientQueuePrivate &p)
{
  p.srcresult = GST_FLOW_FLUSHING;
  p.flush_generation++;
  wake_everyone (p);
}

// Whether a waiter that started at `generation` is to give up.
bool
flushed_since (const GstResilientQueuePrivate &p, guint64 generation)
{
  return p.srcresult != GST_FLOW_OK || p.flush_generation != generation;
}

// What a push that started at `generation` returns once flushed_since().
GstFlowReturn
flushed_result (const GstResilientQueuePrivate &p, guint64 generation)
{
  return p.flush_generation != generation ? GST_FLOW_FLUSHING : p.srcresult;
}

// ---- posting (no lock held) -----------------------------------------------

void post_drop_report (GstResilientQueue *self, const DropReport &report);
gboolean on_drop_timer (GstClock *, GstClockTime, GstClockID id, gpointer user_data);

// What the drop timer holds: a weak reference.  The system clock lets go of a
// cancelled timer in its own thread, some time after cancel_drop_timer(); a
// strong reference would keep the element alive past its owner's last
// unref until then.
struct DropTimerTarget {
  GWeakRef element;
};

void
free_drop_timer_target (gpointer data)
{
  auto *target = static_cast<DropTimerTarget *> (data);
  g_weak_ref_clear (&target->element);
  delete target;
}

void
deliver_drop_notice (GstResilientQueue *self, DropNotice &notice)
{
  if (notice.report)
    post_drop_report (self, *notice.report);
  if (notice.start_timer) {
    auto *target = new DropTimerTarget;
    g_weak_ref_init (&target->element, self);
    gst_clock_id_wait_async (notice.start_timer.get (), on_drop_timer, target,
        free_drop_timer_target);
    notice.start_timer.reset ();
  }
}

gboolean
on_drop_timer (GstClock *, GstClockTime, GstClockID id, gpointer user_data)
{
  auto *target = static_cast<DropTimerTarget *> (user_data);
  camrelay::ObjectPtr<GstResilientQueue> self{
      static_cast<GstResilientQueue *> (g_weak_ref_get (&target->element))};
  if (!self)
    return TRUE;  // gone
  GstResilientQueuePrivate &p = *self->priv;
  DropNotice notice;
  {
    Lock lock (p.lock);
    if (p.drop_timer.get () == id) {
      p.drop_timer.reset ();
      notice = collect_drop_notice (p);
    }  // else cancelled
  }
  deliver_drop_notice (self.get (), notice);
  return TRUE;
}

void
cancel_drop_timer (GstResilientQueuePrivate &p)
{
  ClockIdPtr timer;
  {
    Lock lock (p.lock);
    timer = std::move (p.drop_timer);
  }
  if (timer)
    gst_clock_id_unschedule (timer.get ());
}

void
post_drop_report (GstResilientQueue *self, const DropReport &report)
{
  GST_INFO_OBJECT (self,
      "dropped %" G_GUINT64_FORMAT " buffers (%" G_GUINT64_FORMAT " bytes, %" G_GUINT64_FORMAT
      " GOPs)",
      report.counts.buffers, report.counts.bytes, report.counts.gops);
  GstStructure *s = gst_structure_new (DROP_MESSAGE_NAME,
      "dropped-buffers", G_TYPE_UINT64, report.counts.buffers,
      "dropped-bytes", G_TYPE_UINT64, report.counts.bytes,
      "dropped-gops", G_TYPE_UINT64, report.counts.gops,
      "leaky", GST_TYPE_RESILIENT_QUEUE_LEAKY, report.leaky, nullptr);
  gst_element_post_message (GST_ELEMENT (self), gst_message_new_element (GST_OBJECT (self), s));
}

Item
make_buffer_item (GstResilientQueue *self, GstBuffer *buffer)
{
  GstResilientQueuePrivate &p = *self->priv;
  Item item;
  item.object.reset (GST_MINI_OBJECT_CAST (buffer));
  item.kind = ItemKind::Buffer;
  item.keyframe = !GST_BUFFER_FLAG_IS_SET (buffer, GST_BUFFER_FLAG_DELTA_UNIT);
  item.size = static_cast<guint> (MIN (gst_buffer_get_size (buffer), G_MAXUINT));
  GstClockTime ts = GST_BUFFER_DTS_OR_PTS (buffer);
  if (p.sink_segment.format == GST_FORMAT_TIME && GST_CLOCK_TIME_IS_VALID (ts))
    item.running_time = gst_segment_to_running_time (&p.sink_segment, GST_FORMAT_TIME, ts);
  return item;
}

// ---- upstream side --------------------------------------------------------

// leaky=none: waits for room until max-block-time has passed or a flush.
// The deadline follows max-block-time as it is now, so lowering it shortens a
// wait under way (setting it signals the condition).
void
wait_for_room (GstResilientQueuePrivate &p, Lock &lock, const Item &item, guint64 generation)
{
  const auto start = Clock::now ();
  while (!flushed_since (p, generation) && overflows_with (p, item)) {
    const auto deadline = start + std::chrono::nanoseconds (p.max_block_time);
    if (Clock::now () >= deadline)
      break;
    p.sink_waiting = true;
    p.item_removed.wait_until (lock, deadline);
    p.sink_waiting = false;
  }
  p.stats.time_blocked += static_cast<guint64> (
      std::chrono::duration_cast<std::chrono::nanoseconds> (Clock::now () - start).count ());
}

// Makes room for `item` according to the leaky mode.  Returns whether it is
// to be queued; otherwise it has been dropped.
bool
make_room (GstResilientQueuePrivate &p, Lock &lock, Item &item, guint64 generation)
{
  switch (p.leaky) {
    case GST_RESILIENT_QUEUE_LEAKY_NONE:
      wait_for_room (p, lock, item, generation);
      if (flushed_since (p, generation))
        return true;
      // Lowered limits may have dropped the GOP being received meanwhile.
      if (item.keyframe) {
        p.dropping_deltas = false;
      } else if (p.dropping_deltas) {
        drop_incoming (p, item);
        return false;
      }
      if (!overflows_with (p, item))
        return true;
      GST_DEBUG ("blocked for max-block-time, dropping as gop");
      return leak_gops (p, item);
    case GST_RESILIENT_QUEUE_LEAKY_UPSTREAM:
      drop_incoming (p, item);
      return false;
    case GST_RESILIENT_QUEUE_LEAKY_DOWNSTREAM:
      return leak_downstream (p, item);
    case GST_RESILIENT_QUEUE_LEAKY_GOP:
    default:
      return leak_gops (p, item);
  }
}

// A buffer bigger than max-size-bytes can never be queued: drop it at once,
// without emptying the queue for it or blocking.  In gop and none modes the
// delta units that depend on it go too.
bool
drop_if_oversized (GstResilientQueuePrivate &p, Item &item)
{
  if (p.max_size_bytes == 0 || item.size <= p.max_size_bytes)
    return false;
  GST_DEBUG ("buffer of %u bytes exceeds max-size-bytes=%u on its own", item.size,
      p.max_size_bytes);
  drop_incoming (p, item);
  if (p.leaky == GST_RESILIENT_QUEUE_LEAKY_GOP || p.leaky == GST_RESILIENT_QUEUE_LEAKY_NONE) {
    p.dropping_deltas = true;
    count_dropped_gop (p);
  }
  return true;
}

GstFlowReturn
gst_resilient_queue_chain (GstPad *, GstObject *parent, GstBuffer *buffer)
{
  GstResilientQueue *self = GST_RESILIENT_QUEUE (parent);
  GstResilientQueuePrivate &p = *self->priv;
  Item item = make_buffer_item (self, buffer);
  DropNotice notice;

  {
    Lock lock (p.lock);
    if (p.srcresult != GST_FLOW_OK || p.eos) {
      const GstFlowReturn ret = p.eos ? GST_FLOW_EOS : p.srcresult;
      GST_CAT_LOG_OBJECT (resilient_queue_dataflow, self, "refusing buffer: %s",
          gst_flow_get_name (ret));
      release_item (item);
      return ret;
    }
    const guint64 generation = p.flush_generation;
    p.stats.received_buffers++;

    if (overflows_with (p, item)) {
      p.stats.overruns++;
      GST_CAT_DEBUG_OBJECT (resilient_queue_dataflow, self,
          "overrun: %u buffers, %" G_GUINT64_FORMAT " bytes, %" GST_TIME_FORMAT,
          p.level_buffers, p.level_bytes, GST_TIME_ARGS (level_time (p)));
      lock.unlock ();
      g_signal_emit (self, signals[SIGNAL_OVERRUN], 0);
      lock.lock ();
      if (flushed_since (p, generation)) {
        release_item (item);
        return flushed_result (p, generation);
      }
    }

    bool queue_it = true;
    if (p.dropping_deltas && !item.keyframe) {
      drop_incoming (p, item);
      queue_it = false;
    } else {
      p.dropping_deltas = false;
      if (drop_if_oversized (p, item)) {
        queue_it = false;
      } else if (overflows_with (p, item)) {
        queue_it = make_room (p, lock, item, generation);
        if (flushed_since (p, generation)) {
          if (queue_it)
            release_item (item);
          return flushed_result (p, generation);
        }
      }
    }

    if (queue_it) {
      if (p.discont_next_in) {
        item.discont = true;
        p.discont_next_in = false;
      }
      GST_CAT_LOG_OBJECT (resilient_queue_dataflow, self,
          "queued buffer %" GST_TIME_FORMAT " of %u bytes%s", GST_TIME_ARGS (item.running_time),
          item.size, item.keyframe ? " (keyframe)" : "");
      account_added (p, item);
      p.items.push_back (std::move (item));
      p.underrun_signalled = false;
      if (p.src_waiting)
        p.item_added.notify_one ();
    }
    notice = collect_drop_notice (p);
  }

  deliver_drop_notice (self, notice);
  return GST_FLOW_OK;
}

void src_loop (gpointer data);

// Starts the src task, unless a flush or a deactivation came after the
// caller set srcresult to OK.  Called without `lock`: starting a task posts a
// STREAM_STATUS message, and a synchronous bus handler may read our
// properties.
gboolean
start_src_task (GstResilientQueue *self)
{
  GstResilientQueuePrivate &p = *self->priv;
  std::lock_guard<std::mutex> task_guard (p.task_lock);
  {
    Lock lock (p.lock);
    if (p.srcresult != GST_FLOW_OK) {
      GST_DEBUG_OBJECT (self, "not starting the task: %s", gst_flow_get_name (p.srcresult));
      return TRUE;
    }
  }
  return gst_pad_start_task (self->srcpad, src_loop, self, nullptr);
}

// Queues a serialized event.  A refused event returns the reason as a flow
// return, so that upstream sees FLUSHING or EOS rather than a failure.
GstFlowReturn
queue_event (GstResilientQueue *self, GstEvent *event_in)
{
  EventPtr event{event_in};
  GstResilientQueuePrivate &p = *self->priv;
  const GstEventType type = GST_EVENT_TYPE (event.get ());
  const bool starts_stream = type == GST_EVENT_STREAM_START || type == GST_EVENT_SEGMENT;
  bool restart_task = false;

  {
    Lock lock (p.lock);
    // A new stream after EOS is welcome again.
    if (starts_stream && (p.eos || p.srcresult == GST_FLOW_EOS)) {
      p.eos = false;
      if (p.srcresult == GST_FLOW_EOS) {
        p.srcresult = GST_FLOW_OK;
        restart_task = true;
      }
    }
    if (p.srcresult != GST_FLOW_OK || p.eos) {
      const GstFlowReturn reason = p.eos ? GST_FLOW_EOS : p.srcresult;
      // Downstream failed (not linked, an error) but may come back: a sticky
      // event still belongs to the stream and is queued in its place, to go
      // out after the data queued before it once the task runs again, as in
      // queue.  (Stored on the src pad it would go out ahead of that data.)
      const bool keep = GST_EVENT_IS_STICKY (event.get ()) && type != GST_EVENT_EOS
          && reason != GST_FLOW_FLUSHING && reason != GST_FLOW_EOS;
      if (!keep) {
        GST_DEBUG_OBJECT (self, "refusing %s event: %s", GST_EVENT_TYPE_NAME (event.get ()),
            gst_flow_get_name (reason));
        lock.unlock ();
        event.reset ();
        // An EOS that cannot go out is the end of the data flow: nobody else
        // will report why it never arrives, so post the flow error, as queue
        // does.
        if (type == GST_EVENT_EOS && (reason == GST_FLOW_NOT_LINKED || reason < GST_FLOW_EOS))
          GST_ELEMENT_FLOW_ERROR (self, reason);
        return reason;
      }
      GST_DEBUG_OBJECT (self, "downstream %s: queueing %s event for later",
          gst_flow_get_name (reason), GST_EVENT_TYPE_NAME (event.get ()));
    }
    if (type == GST_EVENT_EOS)
      p.eos = true;

    Item item;
    item.object.reset (GST_MINI_OBJECT_CAST (event.release ()));
    item.kind = ItemKind::Event;
    p.items.push_back (std::move (item));
    p.underrun_signalled = false;
    if (p.src_waiting)
      p.item_added.notify_one ();
  }

  if (restart_task)
    start_src_task (self);
  return GST_FLOW_OK;
}

GstFlowReturn
forward_event (GstResilientQueue *self, GstEvent *event)
{
  return gst_pad_push_event (self->srcpad, event) ? GST_FLOW_OK : GST_FLOW_ERROR;
}

GstFlowReturn
gst_resilient_queue_sink_event (GstPad *, GstObject *parent, GstEvent *event)
{
  GstResilientQueue *self = GST_RESILIENT_QUEUE (parent);
  GstResilientQueuePrivate &p = *self->priv;

  switch (GST_EVENT_TYPE (event)) {
    case GST_EVENT_FLUSH_START: {
      GST_DEBUG_OBJECT (self, "flush start");
      // Downstream first, so that a push blocked there returns.
      const GstFlowReturn ret = forward_event (self, event);
      {
        Lock lock (p.lock);
        set_flushing (p);
      }
      gst_pad_pause_task (self->srcpad);
      return ret;
    }
    case GST_EVENT_FLUSH_STOP: {
      GST_DEBUG_OBJECT (self, "flush stop");
      const GstFlowReturn ret = forward_event (self, event);
      gst_segment_init (&p.sink_segment, GST_FORMAT_UNDEFINED);
      bool restart = false;
      std::vector<EventPtr> sticky;
      {
        Lock lock (p.lock);
        sticky = flush_items_keeping_sticky_events (p);
        p.eos = false;
        if (gst_pad_is_active (self->srcpad)) {
          p.srcresult = GST_FLOW_OK;
          restart = true;
        }
      }
      // The task is paused (FLUSH_START) and restarts after this: nothing
      // else sets sticky events on the src pad meanwhile.
      for (const EventPtr &sticky_event : sticky)
        gst_pad_store_sticky_event (self->srcpad, sticky_event.get ());
      if (restart)
        start_src_task (self);
      return ret;
    }
    case GST_EVENT_SEGMENT:
      gst_event_copy_segment (event, &p.sink_segment);
      break;
    default:
      break;
  }

  if (!GST_EVENT_IS_SERIALIZED (event))
    return forward_event (self, event);
  return queue_event (self, event);
}

// Copies the answer to a query made on our copy back into the original.
void
copy_query_answer (GstQuery *original, GstQuery *answer)
{
  const GstStructure *from = gst_query_get_structure (answer);
  if (!from)
    return;
  GstStructure *to = gst_query_writable_structure (original);
  gst_structure_foreach (
      from,
      [] (GQuark field, const GValue *value, gpointer user_data) -> gboolean {
        gst_structure_id_set_value (static_cast<GstStructure *> (user_data), field, value);
        return TRUE;
      },
      to);
}

// A serialized query travels through the queue as a copy, so that the thread
// that asked can give up after max-block-time while the src task may still be
// holding the copy downstream.
gboolean
queue_query (GstResilientQueue *self, GstQuery *query)
{
  GstResilientQueuePrivate &p = *self->priv;
  if (!gst_query_is_writable (query)) {
    GST_WARNING_OBJECT (self, "refusing %s query: not writable", GST_QUERY_TYPE_NAME (query));
    return FALSE;
  }

  auto waiter = std::make_shared<QueryWaiter> ();
  Item item;
  item.object.reset (GST_MINI_OBJECT_CAST (gst_query_copy (query)));
  item.kind = ItemKind::Query;
  item.waiter = waiter;

  Lock lock (p.lock);
  if (p.srcresult != GST_FLOW_OK || p.eos) {
    GST_DEBUG_OBJECT (self, "refusing %s query: %s", GST_QUERY_TYPE_NAME (query),
        p.eos ? "after EOS" : gst_flow_get_name (p.srcresult));
    release_item (item);
    return FALSE;
  }
  p.items.push_back (std::move (item));
  p.underrun_signalled = false;
  if (p.src_waiting)
    p.item_added.notify_one ();

  // As for a push, the deadline follows max-block-time as it is now.
  const guint64 generation = p.flush_generation;
  const auto start = Clock::now ();
  while (!waiter->answered && !flushed_since (p, generation)) {
    const auto deadline = start + std::chrono::nanoseconds (p.max_block_time);
    if (Clock::now () >= deadline)
      break;
    p.query_handled.wait_until (lock, deadline);
  }
  if (!waiter->answered) {
    waiter->abandoned = true;
    GST_DEBUG_OBJECT (self, "refusing %s query: %s", GST_QUERY_TYPE_NAME (query),
        !flushed_since (p, generation) ? "not answered within max-block-time"
                                       : gst_flow_get_name (flushed_result (p, generation)));
    return FALSE;
  }
  QueryPtr answer = std::move (waiter->answer);
  const gboolean result = waiter->result;
  lock.unlock ();

  if (result)
    copy_query_answer (query, answer.get ());
  return result;
}

gboolean
gst_resilient_queue_sink_query (GstPad *pad, GstObject *parent, GstQuery *query)
{
  GstResilientQueue *self = GST_RESILIENT_QUEUE (parent);
  if (GST_QUERY_IS_SERIALIZED (query))
    return queue_query (self, query);
  return gst_pad_query_default (pad, parent, query);
}

gboolean
gst_resilient_queue_sink_activate_mode (GstPad *, GstObject *parent, GstPadMode mode,
    gboolean active)
{
  GstResilientQueue *self = GST_RESILIENT_QUEUE (parent);
  GstResilientQueuePrivate &p = *self->priv;
  if (mode != GST_PAD_MODE_PUSH)
    return FALSE;
  if (!active) {
    // Release a push or query waiting for room; the pad's stream lock is
    // taken right after this returns.
    Lock lock (p.lock);
    set_flushing (p);
  }
  return TRUE;
}

// ---- downstream side ------------------------------------------------------

// Called with the lock held once the task has found nothing to do: announces
// the underrun once, then waits for data (timed, flush-aware).
void
wait_for_data (GstResilientQueue *self, Lock &lock)
{
  GstResilientQueuePrivate &p = *self->priv;
  if (!p.underrun_signalled) {
    p.underrun_signalled = true;
    p.stats.underruns++;
    GST_CAT_LOG_OBJECT (resilient_queue_dataflow, self, "underrun");
    lock.unlock ();
    g_signal_emit (self, signals[SIGNAL_UNDERRUN], 0);
    lock.lock ();
    return;  // the caller re-checks the state
  }
  p.src_waiting = true;
  p.item_added.wait_for (lock, IDLE_WAKEUP);
  p.src_waiting = false;
}

// Called by the task itself, with the lock held: whoever sets srcresult back
// to OK and restarts the task does so under the lock too, so the restart
// cannot fall between our check of srcresult and the pause and be undone by
// it.  Pausing posts no message, and the stream lock it takes is ours already.
void
pause_task (GstResilientQueue *self, GstFlowReturn reason)
{
  GST_DEBUG_OBJECT (self, "pausing task: %s", gst_flow_get_name (reason));
  gst_pad_pause_task (self->srcpad);
}

// Records a downstream flow error; returns with the task to be paused.
void
on_push_failed (GstResilientQueue *self, GstFlowReturn ret)
{
  GstResilientQueuePrivate &p = *self->priv;
  bool eos_queued;
  {
    Lock lock (p.lock);
    if (p.srcresult == GST_FLOW_OK)
      p.srcresult = ret;
    eos_queued = p.eos;
    // A push waiting for room must not wait for a task that stopped.
    wake_everyone (p);
    pause_task (self, ret);
  }
  // Upstream learns of the failure from its next push, unless it already sent
  // EOS: then nobody else will report it.
  if (eos_queued && (ret == GST_FLOW_NOT_LINKED || ret < GST_FLOW_EOS)) {
    GST_ELEMENT_FLOW_ERROR (self, ret);
    gst_pad_push_event (self->srcpad, gst_event_new_eos ());
  }
}

void
push_buffer (GstResilientQueue *self, Item &item)
{
  // gst_pad_push() takes the reference.
  GstBuffer *buffer = GST_BUFFER_CAST (item.object.release ());
  if (item.discont && !GST_BUFFER_FLAG_IS_SET (buffer, GST_BUFFER_FLAG_DISCONT)) {
    buffer = gst_buffer_make_writable (buffer);
    GST_BUFFER_FLAG_SET (buffer, GST_BUFFER_FLAG_DISCONT);
  }
  GST_CAT_LOG_OBJECT (resilient_queue_dataflow, self, "pushing buffer %" GST_TIME_FORMAT "%s",
      GST_TIME_ARGS (GST_BUFFER_PTS (buffer)), item.discont ? " (discont)" : "");
  GstFlowReturn ret = gst_pad_push (self->srcpad, buffer);
  if (ret == GST_FLOW_OK)
    self->priv->pushed_buffers.fetch_add (1, std::memory_order_relaxed);
  else
    on_push_failed (self, ret);
}

void
push_event (GstResilientQueue *self, Item &item)
{
  GstResilientQueuePrivate &p = *self->priv;
  // gst_pad_push_event() takes the reference.
  GstEvent *event = GST_EVENT_CAST (item.object.release ());
  const bool is_eos = GST_EVENT_TYPE (event) == GST_EVENT_EOS;
  GST_CAT_LOG_OBJECT (resilient_queue_dataflow, self, "pushing %s event",
      GST_EVENT_TYPE_NAME (event));
  gst_pad_push_event (self->srcpad, event);
  if (!is_eos)
    return;

  Lock lock (p.lock);
  // A new stream may already be queued behind the EOS.
  if (!p.items.empty () || p.srcresult != GST_FLOW_OK)
    return;
  p.srcresult = GST_FLOW_EOS;
  wake_everyone (p);
  pause_task (self, GST_FLOW_EOS);
}

void
push_query (GstResilientQueue *self, Item &item)
{
  GstResilientQueuePrivate &p = *self->priv;
  QueryPtr query{GST_QUERY_CAST (item.object.release ())};
  {
    Lock lock (p.lock);
    if (item.waiter->abandoned) {
      lock.unlock ();
      return;  // the query goes with `query`, unlocked
    }
  }
  const gboolean result = gst_pad_peer_query (self->srcpad, query.get ());
  Lock lock (p.lock);
  if (item.waiter->abandoned) {
    lock.unlock ();
    return;
  }
  item.waiter->answered = true;
  item.waiter->result = result;
  item.waiter->answer = std::move (query);
  p.query_handled.notify_all ();
}

void
src_loop (gpointer data)
{
  GstResilientQueue *self = GST_RESILIENT_QUEUE (data);
  GstResilientQueuePrivate &p = *self->priv;
  Item item;

  {
    Lock lock (p.lock);
    while (p.items.empty () && p.srcresult == GST_FLOW_OK)
      wait_for_data (self, lock);
    if (p.srcresult != GST_FLOW_OK) {
      pause_task (self, p.srcresult);
      return;
    }
    item = std::move (p.items.front ());
    p.items.pop_front ();
    if (item.is_buffer ()) {
      account_removed (p, item);
      refresh_oldest_time (p);
      if (p.sink_waiting)
        p.item_removed.notify_one ();
    }
  }

  switch (item.kind) {
    case ItemKind::Buffer:
      push_buffer (self, item);
      break;
    case ItemKind::Event:
      push_event (self, item);
      break;
    case ItemKind::Query:
      push_query (self, item);
      break;
  }
}

gboolean
gst_resilient_queue_src_activate_mode (GstPad *pad, GstObject *parent, GstPadMode mode,
    gboolean active)
{
  GstResilientQueue *self = GST_RESILIENT_QUEUE (parent);
  GstResilientQueuePrivate &p = *self->priv;
  if (mode != GST_PAD_MODE_PUSH)
    return FALSE;

  if (active) {
    {
      Lock lock (p.lock);
      p.srcresult = GST_FLOW_OK;
      p.eos = false;
    }
    return start_src_task (self);
  }

  {
    // Once this is done no start_src_task() can start the task again, and
    // one under way has finished: the task stopped below stays stopped.
    std::lock_guard<std::mutex> task_guard (p.task_lock);
    Lock lock (p.lock);
    set_flushing (p);
  }
  // The task is waiting on a condition we just signalled or pushing into a
  // downstream element that is already flushing, so this join is short
  // (unless downstream ignores flushing: then it lasts until it returns; the
  // waits upstream were released above all the same).
  gboolean stopped = gst_pad_stop_task (pad);
  cancel_drop_timer (p);
  Lock lock (p.lock);
  flush_items (p);
  return stopped;
}

gboolean
gst_resilient_queue_src_event (GstPad *pad, GstObject *parent, GstEvent *event)
{
  GstResilientQueue *self = GST_RESILIENT_QUEUE (parent);
  GstResilientQueuePrivate &p = *self->priv;

  if (GST_EVENT_TYPE (event) == GST_EVENT_RECONFIGURE) {
    // Downstream may be linked again: try pushing once more.
    bool restart = false;
    {
      Lock lock (p.lock);
      if (p.srcresult == GST_FLOW_NOT_LINKED) {
        GST_DEBUG_OBJECT (self, "reconfigured, restarting the task");
        p.srcresult = GST_FLOW_OK;
        restart = true;
      }
    }
    if (restart)
      start_src_task (self);
  }
  return gst_pad_event_default (pad, parent, event);
}

gboolean
gst_resilient_queue_src_query (GstPad *pad, GstObject *parent, GstQuery *query)
{
  GstResilientQueue *self = GST_RESILIENT_QUEUE (parent);
  GstResilientQueuePrivate &p = *self->priv;

  if (GST_QUERY_TYPE (query) != GST_QUERY_LATENCY)
    return gst_pad_query_default (pad, parent, query);

  if (!gst_pad_peer_query (self->sinkpad, query))
    return FALSE;
  gboolean live;
  GstClockTime min, max;
  gst_query_parse_latency (query, &live, &min, &max);
  guint64 max_size_time;
  {
    Lock lock (p.lock);
    max_size_time = p.max_size_time;
  }
  // We add no latency of our own, but can hold data for up to max-size-time.
  if (max_size_time == 0)
    max = GST_CLOCK_TIME_NONE;
  else if (GST_CLOCK_TIME_IS_VALID (max))
    max += max_size_time;
  gst_query_set_latency (query, live, min, max);
  return TRUE;
}

GstStructure *
build_stats (GstResilientQueuePrivate &p)
{
  Lock lock (p.lock);
  const Stats &s = p.stats;
  return gst_structure_new (STATS_NAME,
      "received-buffers", G_TYPE_UINT64, s.received_buffers,
      "pushed-buffers", G_TYPE_UINT64, p.pushed_buffers.load (std::memory_order_relaxed),
      "dropped-buffers", G_TYPE_UINT64, s.dropped_buffers,
      "dropped-bytes", G_TYPE_UINT64, s.dropped_bytes,
      "dropped-gops", G_TYPE_UINT64, s.dropped_gops,
      "max-level-time", G_TYPE_UINT64, s.max_level_time,
      "max-level-bytes", G_TYPE_UINT64, s.max_level_bytes,
      "max-level-buffers", G_TYPE_UINT64, s.max_level_buffers,
      "time-blocked", G_TYPE_UINT64, s.time_blocked,
      "overruns", G_TYPE_UINT64, s.overruns,
      "underruns", G_TYPE_UINT64, s.underruns,
      "current-level-time", G_TYPE_UINT64, level_time (p),
      "current-level-bytes", G_TYPE_UINT64, p.level_bytes,
      "current-level-buffers", G_TYPE_UINT64, static_cast<guint64> (p.level_buffers),
      nullptr);
}

}  // namespace

static void
gst_resilient_queue_set_property (GObject *object, guint prop_id, const GValue *value,
    GParamSpec *pspec)
{
  GstResilientQueue *self = GST_RESILIENT_QUEUE (object);
  GstResilientQueuePrivate &p = *self->priv;
  DropNotice notice;

  {
    Lock lock (p.lock);
    switch (prop_id) {
      case PROP_MAX_SIZE_TIME:
        p.max_size_time = g_value_get_uint64 (value);
        break;
      case PROP_MAX_SIZE_BYTES:
        p.max_size_bytes = g_value_get_uint (value);
        break;
      case PROP_MAX_SIZE_BUFFERS:
        p.max_size_buffers = g_value_get_uint (value);
        break;
      case PROP_LEAKY:
        p.leaky = static_cast<GstResilientQueueLeaky> (g_value_get_enum (value));
        break;
      case PROP_MAX_BLOCK_TIME:
        p.max_block_time = g_value_get_uint64 (value);
        break;
      default:
        G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
        return;
    }
    // New limits apply at once: lower ones trim the queue, and a push
    // waiting for room or a query waiting for its answer re-checks (also
    // its deadline, when max-block-time changed).
    trim_to_limits (p);
    p.item_removed.notify_all ();
    if (prop_id == PROP_MAX_BLOCK_TIME)
      p.query_handled.notify_all ();
    notice = collect_drop_notice (p);
  }
  deliver_drop_notice (self, notice);
}

static void
gst_resilient_queue_get_property (GObject *object, guint prop_id, GValue *value,
    GParamSpec *pspec)
{
  GstResilientQueue *self = GST_RESILIENT_QUEUE (object);
  GstResilientQueuePrivate &p = *self->priv;

  if (prop_id == PROP_STATS) {
    g_value_take_boxed (value, build_stats (p));
    return;
  }

  Lock lock (p.lock);
  switch (prop_id) {
    case PROP_MAX_SIZE_TIME:
      g_value_set_uint64 (value, p.max_size_time);
      break;
    case PROP_MAX_SIZE_BYTES:
      g_value_set_uint (value, p.max_size_bytes);
      break;
    case PROP_MAX_SIZE_BUFFERS:
      g_value_set_uint (value, p.max_size_buffers);
      break;
    case PROP_LEAKY:
      g_value_set_enum (value, p.leaky);
      break;
    case PROP_MAX_BLOCK_TIME:
      g_value_set_uint64 (value, p.max_block_time);
      break;
    case PROP_CURRENT_LEVEL_TIME:
      g_value_set_uint64 (value, level_time (p));
      break;
    case PROP_CURRENT_LEVEL_BYTES:
      g_value_set_uint (value, static_cast<guint> (MIN (p.level_bytes, G_MAXUINT)));
      break;
    case PROP_CURRENT_LEVEL_BUFFERS:
      g_value_set_uint (value, p.level_buffers);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
}

static void
gst_resilient_queue_finalize (GObject *object)
{
  GstResilientQueue *self = GST_RESILIENT_QUEUE (object);
  flush_items (*self->priv);
  delete self->priv;
  self->priv = nullptr;
  G_OBJECT_CLASS (parent_class)->finalize (object);
}

static void
gst_resilient_queue_class_init (GstResilientQueueClass *klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);

  gobject_class->set_property = gst_resilient_queue_set_property;
  gobject_class->get_property = gst_resilient_queue_get_property;
  gobject_class->finalize = gst_resilient_queue_finalize;

  constexpr auto rw = static_cast<GParamFlags> (
      G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING);
  constexpr auto ro = static_cast<GParamFlags> (G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  g_object_class_install_property (gobject_class, PROP_MAX_SIZE_TIME,
      g_param_spec_uint64 ("max-size-time", "Max. size (ns)",
          "Most data held, as the running-time span from the oldest to the newest buffer, "
          "in nanoseconds (0 = no limit)",
          0, G_MAXUINT64, DEFAULT_MAX_SIZE_TIME, rw));
  g_object_class_install_property (gobject_class, PROP_MAX_SIZE_BYTES,
      g_param_spec_uint ("max-size-bytes", "Max. size (bytes)",
          "Most data held, in bytes; never exceeded (0 = no limit)",
          0, G_MAXUINT, DEFAULT_MAX_SIZE_BYTES, rw));
  g_object_class_install_property (gobject_class, PROP_MAX_SIZE_BUFFERS,
      g_param_spec_uint ("max-size-buffers", "Max. size (buffers)",
          "Most buffers held (0 = no limit)", 0, G_MAXUINT, DEFAULT_MAX_SIZE_BUFFERS, rw));
  g_object_class_install_property (gobject_class, PROP_LEAKY,
      g_param_spec_enum ("leaky", "Leaky",
          "What to drop when full: with none, block upstream up to max-block-time, then "
          "drop as gop",
          GST_TYPE_RESILIENT_QUEUE_LEAKY, DEFAULT_LEAKY, rw));
  g_object_class_install_property (gobject_class, PROP_MAX_BLOCK_TIME,
      g_param_spec_uint64 ("max-block-time", "Max. block time (ns)",
          "Longest a push may wait on a full queue (leaky=none) and a serialized query may "
          "wait for its answer, in nanoseconds (1 ms to 1 hour)",
          MIN_MAX_BLOCK_TIME, MAX_MAX_BLOCK_TIME, DEFAULT_MAX_BLOCK_TIME, rw));
  g_object_class_install_property (gobject_class, PROP_CURRENT_LEVEL_TIME,
      g_param_spec_uint64 ("current-level-time", "Current level (ns)",
          "Running-time span of the data held, in nanoseconds", 0, G_MAXUINT64, 0, ro));
  g_object_class_install_property (gobject_class, PROP_CURRENT_LEVEL_BYTES,
      g_param_spec_uint ("current-level-bytes", "Current level (bytes)",
          "Bytes of data held", 0, G_MAXUINT, 0, ro));
  g_object_class_install_property (gobject_class, PROP_CURRENT_LEVEL_BUFFERS,
      g_param_spec_uint ("current-level-buffers", "Current level (buffers)",
          "Buffers held", 0, G_MAXUINT, 0, ro));
  /**
   * GstResilientQueue:stats:
   *
   * A `application/x-resilientqueue-stats` structure; every field is a
   * #G_TYPE_UINT64:
   * - `received-buffers`: buffers that arrived on the sink pad
   * - `pushed-buffers`: buffers pushed out of the src pad
   * - `dropped-buffers`, `dropped-bytes`: buffers dropped by the leaky mode
   * - `dropped-gops`: GOPs dropped in full or in part
   * - `max-level-time` (ns), `max-level-bytes`, `max-level-buffers`: high-water marks
   * - `time-blocked` (ns): total time pushes waited for room (leaky=none)
   * - `overruns`: buffers that found the queue full
   * - `underruns`: times the queue ran empty
   * - `current-level-time` (ns), `current-level-bytes`, `current-level-buffers`
   */
  g_object_class_install_property (gobject_class, PROP_STATS,
      g_param_spec_boxed ("stats", "Statistics",
          "Counters and levels (application/x-resilientqueue-stats)", GST_TYPE_STRUCTURE, ro));

  /**
   * GstResilientQueue::overrun:
   *
   * An incoming buffer found the queue full.  Emitted from the upstream
   * streaming thread with no lock held.
   */
  signals[SIGNAL_OVERRUN] = g_signal_new ("overrun", G_TYPE_FROM_CLASS (klass),
      G_SIGNAL_RUN_FIRST, 0, nullptr, nullptr, nullptr, G_TYPE_NONE, 0);
  /**
   * GstResilientQueue::underrun:
   *
   * The queue ran empty.  Emitted from the src pad's streaming thread with no
   * lock held, once each time the queue runs empty.
   */
  signals[SIGNAL_UNDERRUN] = g_signal_new ("underrun", G_TYPE_FROM_CLASS (klass),
      G_SIGNAL_RUN_FIRST, 0, nullptr, nullptr, nullptr, G_TYPE_NONE, 0);

  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);
  gst_element_class_set_static_metadata (element_class, "Resilient queue", "Generic",
      "Bounded queue that never blocks upstream for long and drops whole GOPs when full",
      "camrelay developers");

  gst_type_mark_as_plugin_api (GST_TYPE_RESILIENT_QUEUE_LEAKY, static_cast<GstPluginAPIFlags> (0));
}

static void
gst_resilient_queue_init (GstResilientQueue *self)
{
  self->priv = new GstResilientQueuePrivate ();
  gst_segment_init (&self->priv->sink_segment, GST_FORMAT_UNDEFINED);

  self->sinkpad = gst_pad_new_from_static_template (&sink_template, "sink");
  gst_pad_set_chain_function (self->sinkpad, gst_resilient_queue_chain);
  gst_pad_set_event_full_function (self->sinkpad, gst_resilient_queue_sink_event);
  gst_pad_set_query_function (self->sinkpad, gst_resilient_queue_sink_query);
  gst_pad_set_activatemode_function (self->sinkpad, gst_resilient_queue_sink_activate_mode);
  GST_PAD_SET_PROXY_CAPS (self->sinkpad);
  gst_element_add_pad (GST_ELEMENT (self), self->sinkpad);

  self->srcpad = gst_pad_new_from_static_template (&src_template, "src");
  gst_pad_set_event_function (self->srcpad, gst_resilient_queue_src_event);
  gst_pad_set_query_function (self->srcpad, gst_resilient_queue_src_query);
  gst_pad_set_activatemode_function (self->srcpad, gst_resilient_queue_src_activate_mode);
  GST_PAD_SET_PROXY_CAPS (self->srcpad);
  gst_element_add_pad (GST_ELEMENT (self), self->srcpad);
}
