// resilientqueue's contents and drop policy: the buffers, events and queries
// in order, their levels (buffers, bytes, running time) against the limits,
// and what each leaky mode drops.  Plain C++ with no lock or thread of its
// own: the element calls it under its lock, and tests call it directly.
#pragma once

#include <gst/gst.h>

#include <deque>
#include <memory>
#include <vector>

#include "common/gstref.h"
#include "resilientqueue/gstresilientqueue.h"

namespace camrelay::resilientqueue {

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

// An item for `buffer` (its reference taken over), timed in the running time
// of `segment` when that is a time segment.
Item make_buffer_item (GstBuffer *buffer, const GstSegment &segment);
// An item for a serialized event (its reference taken over).
Item make_event_item (GstEvent *event);

struct DropCounts {
  guint64 buffers = 0;
  guint64 bytes = 0;
  guint64 gops = 0;
};

// What the store counts for the element's stats.
struct StoreStats {
  guint64 dropped_buffers = 0;
  guint64 dropped_bytes = 0;
  guint64 dropped_gops = 0;
  guint64 max_level_time = 0;
  guint64 max_level_bytes = 0;
  guint64 max_level_buffers = 0;
};

// What to do with an incoming buffer.
enum class Admission {
  Queue,    // there is room (made, if need be): enqueue() it
  Dropped,  // dropped (and released) by the leaky mode
  Wait,     // leaky=none: wait for room, then ask admit_after_wait()
};

class ItemStore {
 public:
  ItemStore ();

  // Limits and mode; after changing them, trim_to_limits().  0 = no limit.
  guint64 max_size_time = 0;
  guint max_size_bytes = 0;
  guint max_size_buffers = 0;
  GstResilientQueueLeaky leaky = GST_RESILIENT_QUEUE_LEAKY_GOP;

  bool empty () const { return items_.empty (); }
  const std::deque<Item> &items () const { return items_; }
  guint64 level_bytes () const { return level_bytes_; }
  guint level_buffers () const { return level_buffers_; }
  // The running-time span from the oldest to the newest timed buffer.
  guint64 level_time () const;
  const StoreStats &stats () const { return stats_; }

  // Whether the queue would exceed a limit with `incoming` added.
  bool overflows_with (const Item &incoming) const;
  // Whether the queue is over a limit as it is (after the limits shrank).
  bool over_limits () const;

  // Decides about an incoming buffer: drops it, or the data it must make
  // room for, as the leaky mode says.
  Admission admit (Item &item);
  // leaky=none, after the wait for room ended without a flush: queue if
  // there is room now, else drop as gop.
  Admission admit_after_wait (Item &item);
  // Queues an admitted buffer.
  void enqueue (Item item);
  // Queues an event or a query: never dropped, never counted in the levels.
  void enqueue_serialized (Item item);
  // Takes the oldest item out.  Not empty().
  Item pop_front ();

  // Brings the queue back within limits that were just lowered, at once and
  // in every mode, dropping what the mode would have dropped had the limits
  // been in force all along.
  void trim_to_limits ();

  // Drops that no drop message reported yet; taking them resets the count.
  bool has_pending_drops () const { return pending_drops_.buffers > 0; }
  DropCounts take_pending_drops ();

  // Empties the queue and forgets any drop in progress.
  void flush ();
  // Empties the queue for FLUSH_STOP.  Sticky events other than SEGMENT and
  // EOS still describe the stream after the flush, and upstream does not
  // send them again: they are handed back, oldest first, for the caller to
  // store on the src pad once its lock is released, as queue does.
  std::vector<EventPtr> flush_keeping_sticky_events ();

  // Visible for tests: the individual drop steps the modes are made of.
  bool drop_head_gop (bool allow_last);
  bool drop_head_buffer ();
  bool drop_tail_buffer ();
  bool dropping_deltas () const { return dropping_deltas_; }

 private:
  void refresh_oldest_time ();
  void refresh_newest_time ();
  void account_added (const Item &item);
  void account_removed (const Item &item);
  void count_dropped (const Item &item);
  void count_dropped_gop ();
  void mark_next_buffer_discont ();
  guint drop_buffers_in_range (size_t first, size_t last);
  void drop_incoming (Item &item);
  bool drop_if_oversized (Item &item);
  bool leak_gops (Item &item);
  bool leak_downstream (Item &item);

  std::deque<Item> items_;
  guint64 level_bytes_ = 0;
  guint level_buffers_ = 0;
  guint timed_buffers_ = 0;  // buffers in the queue with a running time
  GstClockTime newest_time_ = GST_CLOCK_TIME_NONE;
  GstClockTime oldest_time_ = GST_CLOCK_TIME_NONE;
  bool dropping_deltas_ = false;  // gop: the current GOP is lost, wait for a keyframe
  bool discont_next_in_ = false;  // flag the next queued buffer DISCONT
  StoreStats stats_;
  DropCounts pending_drops_;
};

}  // namespace camrelay::resilientqueue
