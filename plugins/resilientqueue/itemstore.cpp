// resilientqueue's contents and drop policy (see itemstore.h): levels,
// limits, and the GOP-aware drops of each leaky mode.
#include "resilientqueue/itemstore.h"

#include <mutex>

// The element's per-buffer category: the same name, so the same category.
GST_DEBUG_CATEGORY_STATIC (resilient_queue_dataflow);
#define GST_CAT_DEFAULT resilient_queue_dataflow

namespace camrelay::resilientqueue {

namespace {

void
init_debug_category ()
{
  static std::once_flag once;
  std::call_once (once, [] {
    GST_DEBUG_CATEGORY_INIT (resilient_queue_dataflow, "resilientqueue_dataflow", 0,
        "resilientqueue: per-buffer data flow");
  });
}

}  // namespace

Item
make_buffer_item (GstBuffer *buffer, const GstSegment &segment)
{
  Item item;
  item.object.reset (GST_MINI_OBJECT_CAST (buffer));
  item.kind = ItemKind::Buffer;
  item.keyframe = !GST_BUFFER_FLAG_IS_SET (buffer, GST_BUFFER_FLAG_DELTA_UNIT);
  item.size = static_cast<guint> (MIN (gst_buffer_get_size (buffer), G_MAXUINT));
  GstClockTime ts = GST_BUFFER_DTS_OR_PTS (buffer);
  if (segment.format == GST_FORMAT_TIME && GST_CLOCK_TIME_IS_VALID (ts))
    item.running_time = gst_segment_to_running_time (&segment, GST_FORMAT_TIME, ts);
  return item;
}

Item
make_event_item (GstEvent *event)
{
  Item item;
  item.object.reset (GST_MINI_OBJECT_CAST (event));
  item.kind = ItemKind::Event;
  return item;
}

ItemStore::ItemStore ()
{
  init_debug_category ();
}

// ---- levels ----------------------------------------------------------------

guint64
ItemStore::level_time () const
{
  if (timed_buffers_ == 0 || !GST_CLOCK_TIME_IS_VALID (newest_time_)
      || !GST_CLOCK_TIME_IS_VALID (oldest_time_) || newest_time_ <= oldest_time_)
    return 0;
  return newest_time_ - oldest_time_;
}

// The running time of the oldest timed buffer, found again after the head of
// the queue changed.  Usually the first item, so this is cheap.
void
ItemStore::refresh_oldest_time ()
{
  oldest_time_ = GST_CLOCK_TIME_NONE;
  if (timed_buffers_ == 0) {
    newest_time_ = GST_CLOCK_TIME_NONE;
    return;
  }
  for (const Item &item : items_) {
    if (item.is_buffer () && GST_CLOCK_TIME_IS_VALID (item.running_time)) {
      oldest_time_ = item.running_time;
      return;
    }
  }
}

// The running time of the newest timed buffer, found again after the tail
// of the queue changed.
void
ItemStore::refresh_newest_time ()
{
  newest_time_ = GST_CLOCK_TIME_NONE;
  for (auto it = items_.rbegin (); it != items_.rend (); ++it) {
    if (it->is_buffer () && GST_CLOCK_TIME_IS_VALID (it->running_time)) {
      newest_time_ = it->running_time;
      return;
    }
  }
}

bool
ItemStore::overflows_with (const Item &incoming) const
{
  if (max_size_buffers > 0 && level_buffers_ + 1 > max_size_buffers)
    return true;
  if (max_size_bytes > 0 && level_bytes_ + incoming.size > max_size_bytes)
    return true;
  if (max_size_time > 0 && timed_buffers_ > 0 && GST_CLOCK_TIME_IS_VALID (incoming.running_time)
      && GST_CLOCK_TIME_IS_VALID (oldest_time_) && incoming.running_time > oldest_time_
      && incoming.running_time - oldest_time_ > max_size_time)
    return true;
  return false;
}

bool
ItemStore::over_limits () const
{
  return (max_size_buffers > 0 && level_buffers_ > max_size_buffers)
      || (max_size_bytes > 0 && level_bytes_ > max_size_bytes)
      || (max_size_time > 0 && level_time () > max_size_time);
}

void
ItemStore::account_added (const Item &item)
{
  level_buffers_++;
  level_bytes_ += item.size;
  if (GST_CLOCK_TIME_IS_VALID (item.running_time)) {
    if (timed_buffers_++ == 0)
      oldest_time_ = item.running_time;
    newest_time_ = item.running_time;
  }
  stats_.max_level_buffers = MAX (stats_.max_level_buffers, level_buffers_);
  stats_.max_level_bytes = MAX (stats_.max_level_bytes, level_bytes_);
  stats_.max_level_time = MAX (stats_.max_level_time, level_time ());
}

// Removes a buffer's share of the levels; the caller refreshes the oldest
// time once it has finished changing the head of the queue.
void
ItemStore::account_removed (const Item &item)
{
  level_buffers_--;
  level_bytes_ -= item.size;
  if (GST_CLOCK_TIME_IS_VALID (item.running_time))
    timed_buffers_--;
}

void
ItemStore::count_dropped (const Item &item)
{
  stats_.dropped_buffers++;
  stats_.dropped_bytes += item.size;
  pending_drops_.buffers++;
  pending_drops_.bytes += item.size;
}

void
ItemStore::count_dropped_gop ()
{
  stats_.dropped_gops++;
  pending_drops_.gops++;
}

DropCounts
ItemStore::take_pending_drops ()
{
  DropCounts counts = pending_drops_;
  pending_drops_ = DropCounts{};
  return counts;
}

// The next buffer to go out restarts the stream after a gap.
void
ItemStore::mark_next_buffer_discont ()
{
  for (Item &item : items_) {
    if (item.is_buffer ()) {
      item.discont = true;
      return;
    }
  }
  discont_next_in_ = true;
}

// ---- queueing ----------------------------------------------------------------

void
ItemStore::enqueue (Item item)
{
  if (discont_next_in_) {
    item.discont = true;
    discont_next_in_ = false;
  }
  account_added (item);
  items_.push_back (std::move (item));
}

void
ItemStore::enqueue_serialized (Item item)
{
  items_.push_back (std::move (item));
}

Item
ItemStore::pop_front ()
{
  Item item = std::move (items_.front ());
  items_.pop_front ();
  if (item.is_buffer ()) {
    account_removed (item);
    refresh_oldest_time ();
  }
  return item;
}

// ---- dropping ----------------------------------------------------------------

// Drops the buffers of items [first, last), keeping every event and query in
// its place.  Returns the number of buffers dropped.
guint
ItemStore::drop_buffers_in_range (size_t first, size_t last)
{
  guint dropped = 0;
  size_t kept = first;
  for (size_t i = first; i < last; ++i) {
    Item &item = items_[i];
    if (item.is_buffer ()) {
      GST_LOG ("dropping buffer of %u bytes%s", item.size, item.keyframe ? " (keyframe)" : "");
      account_removed (item);
      count_dropped (item);
      item.object.reset ();
      dropped++;
    } else {
      if (kept != i)
        items_[kept] = std::move (item);
      kept++;
    }
  }
  items_.erase (items_.begin () + kept, items_.begin () + last);
  refresh_oldest_time ();
  return dropped;
}

// Drops the GOP at the head of the queue: its first buffer and every delta
// unit after it, up to the next keyframe.  The last GOP in the queue may still
// be receiving delta units; it is only dropped when `allow_last`.
bool
ItemStore::drop_head_gop (bool allow_last)
{
  size_t first = 0;
  while (first < items_.size () && !items_[first].is_buffer ())
    first++;
  if (first == items_.size ())
    return false;

  size_t end = first + 1;
  while (end < items_.size () && !(items_[end].is_buffer () && items_[end].keyframe))
    end++;
  if (end == items_.size () && !allow_last)
    return false;

  guint dropped = drop_buffers_in_range (first, end);
  count_dropped_gop ();
  mark_next_buffer_discont ();
  GST_DEBUG ("dropped a GOP of %u buffers, %u buffers left", dropped, level_buffers_);
  return true;
}

// Drops the oldest buffer, GOP or not.
bool
ItemStore::drop_head_buffer ()
{
  for (size_t i = 0; i < items_.size (); ++i) {
    if (items_[i].is_buffer ()) {
      drop_buffers_in_range (i, i + 1);
      mark_next_buffer_discont ();
      return true;
    }
  }
  return false;
}

// Drops the newest buffer, as if it had been refused on arrival: the next
// buffer to arrive is flagged DISCONT.
bool
ItemStore::drop_tail_buffer ()
{
  for (size_t i = items_.size (); i-- > 0;) {
    if (items_[i].is_buffer ()) {
      drop_buffers_in_range (i, i + 1);
      refresh_newest_time ();
      discont_next_in_ = true;
      return true;
    }
  }
  return false;
}

// The incoming buffer is not queued.
void
ItemStore::drop_incoming (Item &item)
{
  GST_LOG ("dropping incoming buffer of %u bytes", item.size);
  count_dropped (item);
  item.object.reset ();
  discont_next_in_ = true;
}

// gop: make room for `item` by dropping the oldest complete GOPs; when the GOP
// being received does not fit on its own, drop it from here on.  Returns
// whether `item` is to be queued.
bool
ItemStore::leak_gops (Item &item)
{
  while (overflows_with (item) && drop_head_gop (item.keyframe))
    ;
  if (!overflows_with (item))
    return true;
  GST_DEBUG ("the current GOP alone exceeds the limits: dropping until the next keyframe");
  drop_incoming (item);
  dropping_deltas_ = true;
  count_dropped_gop ();
  return false;
}

bool
ItemStore::leak_downstream (Item &item)
{
  while (overflows_with (item) && drop_head_buffer ())
    ;
  if (!overflows_with (item))
    return true;
  drop_incoming (item);
  return false;
}

// A buffer bigger than max-size-bytes can never be queued: drop it at once,
// without emptying the queue for it or blocking.  In gop and none modes the
// delta units that depend on it go too.
bool
ItemStore::drop_if_oversized (Item &item)
{
  if (max_size_bytes == 0 || item.size <= max_size_bytes)
    return false;
  GST_DEBUG ("buffer of %u bytes exceeds max-size-bytes=%u on its own", item.size,
      max_size_bytes);
  drop_incoming (item);
  if (leaky == GST_RESILIENT_QUEUE_LEAKY_GOP || leaky == GST_RESILIENT_QUEUE_LEAKY_NONE) {
    dropping_deltas_ = true;
    count_dropped_gop ();
  }
  return true;
}

Admission
ItemStore::admit (Item &item)
{
  if (dropping_deltas_ && !item.keyframe) {
    drop_incoming (item);
    return Admission::Dropped;
  }
  dropping_deltas_ = false;
  if (drop_if_oversized (item))
    return Admission::Dropped;
  if (!overflows_with (item))
    return Admission::Queue;
  switch (leaky) {
    case GST_RESILIENT_QUEUE_LEAKY_NONE:
      return Admission::Wait;
    case GST_RESILIENT_QUEUE_LEAKY_UPSTREAM:
      drop_incoming (item);
      return Admission::Dropped;
    case GST_RESILIENT_QUEUE_LEAKY_DOWNSTREAM:
      return leak_downstream (item) ? Admission::Queue : Admission::Dropped;
    case GST_RESILIENT_QUEUE_LEAKY_GOP:
    default:
      return leak_gops (item) ? Admission::Queue : Admission::Dropped;
  }
}

Admission
ItemStore::admit_after_wait (Item &item)
{
  // Lowered limits may have dropped the GOP being received meanwhile.
  if (item.keyframe) {
    dropping_deltas_ = false;
  } else if (dropping_deltas_) {
    drop_incoming (item);
    return Admission::Dropped;
  }
  if (!overflows_with (item))
    return Admission::Queue;
  GST_DEBUG ("blocked for max-block-time, dropping as gop");
  return leak_gops (item) ? Admission::Queue : Admission::Dropped;
}

// Whole GOPs from the head in gop and none (a none push cannot wait for room
// that is already owed), the oldest buffers in downstream, the newest ones in
// upstream.
void
ItemStore::trim_to_limits ()
{
  switch (leaky) {
    case GST_RESILIENT_QUEUE_LEAKY_NONE:
    case GST_RESILIENT_QUEUE_LEAKY_GOP:
      while (over_limits ()) {
        if (drop_head_gop (false))
          continue;
        // Only the GOP being received is left and it is too big: drop it and
        // the rest of it as it arrives.
        if (!drop_head_gop (true))
          break;
        dropping_deltas_ = true;
      }
      break;
    case GST_RESILIENT_QUEUE_LEAKY_DOWNSTREAM:
      while (over_limits () && drop_head_buffer ())
        ;
      break;
    case GST_RESILIENT_QUEUE_LEAKY_UPSTREAM:
      while (over_limits () && drop_tail_buffer ())
        ;
      break;
  }
}

// ---- flushing ----------------------------------------------------------------

void
ItemStore::flush ()
{
  items_.clear ();
  level_bytes_ = 0;
  level_buffers_ = 0;
  timed_buffers_ = 0;
  newest_time_ = GST_CLOCK_TIME_NONE;
  oldest_time_ = GST_CLOCK_TIME_NONE;
  dropping_deltas_ = false;
  discont_next_in_ = false;
}

std::vector<EventPtr>
ItemStore::flush_keeping_sticky_events ()
{
  std::vector<EventPtr> sticky;
  for (Item &item : items_) {
    if (item.kind != ItemKind::Event)
      continue;
    GstEvent *event = GST_EVENT_CAST (item.object.get ());
    if (GST_EVENT_IS_STICKY (event) && GST_EVENT_TYPE (event) != GST_EVENT_SEGMENT
        && GST_EVENT_TYPE (event) != GST_EVENT_EOS) {
      sticky.emplace_back (event);
      item.object.release ();  // now owned by `sticky`
    }
  }
  flush ();
  return sticky;
}

}  // namespace camrelay::resilientqueue
