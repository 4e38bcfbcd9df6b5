// resilientqueue, the GObject: type, properties, stats, signals and drop
// messages.  The pads and the src task are in dataflow.cpp; what the queue
// holds and what it drops, in itemstore.cpp.
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

#include "resilientqueue/gstresilientqueueprivate.h"
#include "common/element_names.h"
#include "common/enums.h"

GST_DEBUG_CATEGORY (resilient_queue_debug);
GST_DEBUG_CATEGORY (resilient_queue_dataflow);
#define GST_CAT_DEFAULT resilient_queue_debug

using namespace camrelay::resilientqueue;

namespace {

constexpr guint64 DEFAULT_MAX_SIZE_TIME = 20 * GST_SECOND;
// 20 s of a 4K camera at ~25 Mbit/s is ~60 MiB.
constexpr guint DEFAULT_MAX_SIZE_BYTES = 64 * 1024 * 1024;
constexpr guint DEFAULT_MAX_SIZE_BUFFERS = 0;
constexpr GstResilientQueueLeaky DEFAULT_LEAKY = GST_RESILIENT_QUEUE_LEAKY_GOP;
constexpr guint64 DEFAULT_MAX_BLOCK_TIME = 5 * GST_SECOND;
constexpr guint64 MIN_MAX_BLOCK_TIME = GST_MSECOND;
constexpr guint64 MAX_MAX_BLOCK_TIME = 3600 * GST_SECOND;

// At most one drop message per this interval, on the element's clock.
constexpr GstClockTime DROP_MESSAGE_INTERVAL = GST_SECOND;

namespace names = camrelay::resilientqueue_names;

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

}  // namespace

#define gst_resilient_queue_parent_class parent_class
G_DEFINE_TYPE_WITH_CODE (GstResilientQueue, gst_resilient_queue, GST_TYPE_ELEMENT,
    G_IMPLEMENT_INTERFACE (GST_TYPE_PRESET, nullptr);
    GST_DEBUG_CATEGORY_INIT (resilient_queue_debug, "resilientqueue", 0,
        "resilientqueue: bounded GOP-aware queue");
    GST_DEBUG_CATEGORY_INIT (resilient_queue_dataflow, "resilientqueue_dataflow", 0,
        "resilientqueue: per-buffer data flow"));

GST_ELEMENT_REGISTER_DEFINE (resilientqueue, "resilientqueue", GST_RANK_NONE,
    GST_TYPE_RESILIENT_QUEUE);

CAMRELAY_DEFINE_ENUM_TYPE (gst_resilient_queue_leaky_get_type, "GstResilientQueueLeaky",
    {GST_RESILIENT_QUEUE_LEAKY_NONE,
        "Not leaky: block upstream up to max-block-time, then drop as gop", "none"},
    {GST_RESILIENT_QUEUE_LEAKY_UPSTREAM, "Leaky on upstream: drop the incoming buffer",
        "upstream"},
    {GST_RESILIENT_QUEUE_LEAKY_DOWNSTREAM, "Leaky on downstream: drop the oldest buffers",
        "downstream"},
    {GST_RESILIENT_QUEUE_LEAKY_GOP, "Drop the oldest whole GOPs", "gop"})

namespace camrelay::resilientqueue {

void
emit_overrun (GstResilientQueue *self)
{
  g_signal_emit (self, signals[SIGNAL_OVERRUN], 0);
}

void
emit_underrun (GstResilientQueue *self)
{
  g_signal_emit (self, signals[SIGNAL_UNDERRUN], 0);
}

// ---- time ------------------------------------------------------------------------

ClockPtr
element_clock (GstResilientQueuePrivate &p)
{
  return ref_object (p.pipeline_clock ? p.pipeline_clock.get () : p.system_clock.get ());
}

namespace {

// What a clock entry of ours holds: a weak reference.  The system clock lets
// go of a cancelled entry in its own thread, some time after
// gst_clock_id_unschedule(); a strong reference would keep the element alive
// past its owner's last unref until then.
struct ClockTarget {
  GWeakRef element;
  ClockFired fired;
};

void
free_clock_target (gpointer data)
{
  auto *target = static_cast<ClockTarget *> (data);
  g_weak_ref_clear (&target->element);
  delete target;
}

gboolean
on_clock_entry (GstClock *, GstClockTime, GstClockID id, gpointer user_data)
{
  auto *target = static_cast<ClockTarget *> (user_data);
  ObjectPtr<GstResilientQueue> self{
      static_cast<GstResilientQueue *> (g_weak_ref_get (&target->element))};
  if (self)
    target->fired (self.get (), id);
  return TRUE;
}

}  // namespace

GstClockReturn
wait_async (GstResilientQueue *self, GstClockID id, ClockFired fired)
{
  auto *target = new ClockTarget;
  g_weak_ref_init (&target->element, self);
  target->fired = fired;
  return gst_clock_id_wait_async (id, on_clock_entry, target, free_clock_target);
}

// ---- drop messages -----------------------------------------------------------

namespace {

void
post_drop_report (GstResilientQueue *self, const DropReport &report)
{
  GST_INFO_OBJECT (self,
      "dropped %" G_GUINT64_FORMAT " buffers (%" G_GUINT64_FORMAT " bytes, %" G_GUINT64_FORMAT
      " GOPs)",
      report.counts.buffers, report.counts.bytes, report.counts.gops);
  GstStructure *s = gst_structure_new (names::DROP_MESSAGE,
      names::FIELD_DROPPED_BUFFERS, G_TYPE_UINT64, report.counts.buffers,
      names::FIELD_DROPPED_BYTES, G_TYPE_UINT64, report.counts.bytes,
      names::FIELD_DROPPED_GOPS, G_TYPE_UINT64, report.counts.gops,
      names::FIELD_LEAKY, GST_TYPE_RESILIENT_QUEUE_LEAKY, report.leaky, nullptr);
  gst_element_post_message (GST_ELEMENT (self), gst_message_new_element (GST_OBJECT (self), s));
}

void
on_drop_timer (GstResilientQueue *self, GstClockID id)
{
  GstResilientQueuePrivate &p = *self->priv;
  DropNotice notice;
  {
    Lock lock (p.lock);
    if (p.drop_timer.get () == id) {
      p.drop_timer.reset ();
      notice = collect_drop_notice (p);
    }  // else cancelled
  }
  deliver_drop_notice (self, notice);
}

}  // namespace

DropNotice
collect_drop_notice (GstResilientQueuePrivate &p)
{
  DropNotice notice;
  if (!p.store.has_pending_drops ())
    return notice;
  ClockPtr clock = element_clock (p);
  const GstClockTime now = gst_clock_get_time (clock.get ());
  // (A last message later than now was timed on another clock.)
  if (!p.last_drop_message || now < *p.last_drop_message
      || now - *p.last_drop_message >= DROP_MESSAGE_INTERVAL) {
    notice.report = DropReport{p.store.take_pending_drops (), p.store.leaky};
    p.last_drop_message = now;
  } else if (!p.drop_timer && p.srcresult == GST_FLOW_OK) {
    p.drop_timer.reset (gst_clock_new_single_shot_id (clock.get (),
        *p.last_drop_message + DROP_MESSAGE_INTERVAL));
    notice.start_timer.reset (gst_clock_id_ref (p.drop_timer.get ()));
  }
  return notice;
}

void
deliver_drop_notice (GstResilientQueue *self, DropNotice &notice)
{
  if (notice.report)
    post_drop_report (self, *notice.report);
  if (notice.start_timer) {
    wait_async (self, notice.start_timer.get (), on_drop_timer);
    notice.start_timer.reset ();
  }
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

}  // namespace camrelay::resilientqueue

// ---- properties --------------------------------------------------------------

namespace {

GstStructure *
build_stats (GstResilientQueuePrivate &p)
{
  Lock lock (p.lock);
  const ElementStats &s = p.stats;
  const StoreStats &store = p.store.stats ();
  return gst_structure_new (names::STATS,
      names::STAT_RECEIVED_BUFFERS, G_TYPE_UINT64, s.received_buffers,
      names::STAT_PUSHED_BUFFERS, G_TYPE_UINT64, p.pushed_buffers.load (std::memory_order_relaxed),
      names::FIELD_DROPPED_BUFFERS, G_TYPE_UINT64, store.dropped_buffers,
      names::FIELD_DROPPED_BYTES, G_TYPE_UINT64, store.dropped_bytes,
      names::FIELD_DROPPED_GOPS, G_TYPE_UINT64, store.dropped_gops,
      names::STAT_MAX_LEVEL_TIME, G_TYPE_UINT64, store.max_level_time,
      names::STAT_MAX_LEVEL_BYTES, G_TYPE_UINT64, store.max_level_bytes,
      names::STAT_MAX_LEVEL_BUFFERS, G_TYPE_UINT64, store.max_level_buffers,
      names::STAT_TIME_BLOCKED, G_TYPE_UINT64, s.time_blocked,
      names::STAT_OVERRUNS, G_TYPE_UINT64, s.overruns,
      names::STAT_UNDERRUNS, G_TYPE_UINT64, s.underruns,
      names::STAT_CURRENT_LEVEL_TIME, G_TYPE_UINT64, p.store.level_time (),
      names::STAT_CURRENT_LEVEL_BYTES, G_TYPE_UINT64, p.store.level_bytes (),
      names::STAT_CURRENT_LEVEL_BUFFERS, G_TYPE_UINT64, static_cast<guint64> (p.store.level_buffers ()),
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
        p.store.max_size_time = g_value_get_uint64 (value);
        break;
      case PROP_MAX_SIZE_BYTES:
        p.store.max_size_bytes = g_value_get_uint (value);
        break;
      case PROP_MAX_SIZE_BUFFERS:
        p.store.max_size_buffers = g_value_get_uint (value);
        break;
      case PROP_LEAKY:
        p.store.leaky = static_cast<GstResilientQueueLeaky> (g_value_get_enum (value));
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
    p.store.trim_to_limits ();
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
      g_value_set_uint64 (value, p.store.max_size_time);
      break;
    case PROP_MAX_SIZE_BYTES:
      g_value_set_uint (value, p.store.max_size_bytes);
      break;
    case PROP_MAX_SIZE_BUFFERS:
      g_value_set_uint (value, p.store.max_size_buffers);
      break;
    case PROP_LEAKY:
      g_value_set_enum (value, p.store.leaky);
      break;
    case PROP_MAX_BLOCK_TIME:
      g_value_set_uint64 (value, p.max_block_time);
      break;
    case PROP_CURRENT_LEVEL_TIME:
      g_value_set_uint64 (value, p.store.level_time ());
      break;
    case PROP_CURRENT_LEVEL_BYTES:
      g_value_set_uint (value, static_cast<guint> (MIN (p.store.level_bytes (), G_MAXUINT)));
      break;
    case PROP_CURRENT_LEVEL_BUFFERS:
      g_value_set_uint (value, p.store.level_buffers ());
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
}

// Time follows the pipeline's clock; a wait under way keeps the clock it
// started with.
static gboolean
gst_resilient_queue_set_clock (GstElement *element, GstClock *clock)
{
  GstResilientQueuePrivate &p = *GST_RESILIENT_QUEUE (element)->priv;
  camrelay::ClockPtr old;  // let go of with the lock released
  {
    Lock lock (p.lock);
    old = std::move (p.pipeline_clock);
    p.pipeline_clock = camrelay::ref_object (clock);
  }
  return GST_ELEMENT_CLASS (parent_class)->set_clock (element, clock);
}

static void
gst_resilient_queue_finalize (GObject *object)
{
  GstResilientQueue *self = GST_RESILIENT_QUEUE (object);
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
  element_class->set_clock = gst_resilient_queue_set_clock;

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

  add_pad_templates (element_class);
  gst_element_class_set_static_metadata (element_class, "Resilient queue", "Generic",
      "Bounded queue that never blocks upstream for long and drops whole GOPs when full",
      "camrelay developers");

  gst_type_mark_as_plugin_api (GST_TYPE_RESILIENT_QUEUE_LEAKY, static_cast<GstPluginAPIFlags> (0));
}

static void
gst_resilient_queue_init (GstResilientQueue *self)
{
  self->priv = new GstResilientQueuePrivate ();
  GstResilientQueuePrivate &p = *self->priv;
  p.store.max_size_time = DEFAULT_MAX_SIZE_TIME;
  p.store.max_size_bytes = DEFAULT_MAX_SIZE_BYTES;
  p.store.max_size_buffers = DEFAULT_MAX_SIZE_BUFFERS;
  p.store.leaky = DEFAULT_LEAKY;
  p.max_block_time = DEFAULT_MAX_BLOCK_TIME;
  gst_segment_init (&p.sink_segment, GST_FORMAT_UNDEFINED);

  create_pads (self);
}
