// resilientqueue's internals shared by its two halves: the instance and its
// private state, read by gstresilientqueue.cpp (the GObject: properties,
// stats, drop messages) and dataflow.cpp (the pads and the src task).
#pragma once

#include <gst/gst.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <optional>

#include "common/gstref.h"
#include "resilientqueue/gstresilientqueue.h"
#include "resilientqueue/itemstore.h"

GST_DEBUG_CATEGORY_EXTERN (resilient_queue_debug);
GST_DEBUG_CATEGORY_EXTERN (resilient_queue_dataflow);

namespace camrelay::resilientqueue {

using Lock = std::unique_lock<std::mutex>;
// A clock entry (GstClockID) is neither a GstObject nor a mini object, but is
// reference counted all the same.
using ClockIdPtr = UniqueRef<void, gst_clock_id_unref>;

// The element's own counters; the store keeps those of drops and levels.
struct ElementStats {
  guint64 received_buffers = 0;
  guint64 time_blocked = 0;
  guint64 overruns = 0;
  guint64 underruns = 0;
};

// A drop message decided under the lock and posted once it is released.
struct DropReport {
  DropCounts counts;
  GstResilientQueueLeaky leaky = GST_RESILIENT_QUEUE_LEAKY_GOP;
};

// What to do about drops not yet reported, decided under the lock and carried
// out once it is released: post a message now, or start the timer that posts
// it when it is due.
struct DropNotice {
  std::optional<DropReport> report;
  ClockIdPtr start_timer;
};

}  // namespace camrelay::resilientqueue

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

  // The items, the limits, the leaky mode and what they drop.
  camrelay::resilientqueue::ItemStore store;
  guint64 max_block_time = 0;

  // FLUSHING while stopped or flushing; the downstream flow result otherwise.
  // Re-checked after every wake-up.
  GstFlowReturn srcresult = GST_FLOW_FLUSHING;
  // Counts flushes and deactivations.  A waiter compares it with the value
  // it started with: FLUSH_STOP may set srcresult back to OK before a waiter
  // woken by FLUSH_START runs again, and the flush still concerns it.
  guint64 flush_generation = 0;
  bool eos = false;  // EOS queued: refuse further data
  bool underrun_signalled = false;
  bool src_waiting = false;
  bool sink_waiting = false;

  camrelay::resilientqueue::ElementStats stats;
  std::atomic<guint64> pushed_buffers{0};  // updated by the src task unlocked

  // Time is measured on the pipeline's clock (set_clock), or on the system
  // clock while the element has none: max-block-time, the drop message
  // interval.  A test drives them with a GstTestClock.
  camrelay::ClockPtr pipeline_clock;
  camrelay::ClockPtr system_clock{gst_system_clock_obtain ()};

  // When the last drop message went out, on the clock of the time.
  std::optional<GstClockTime> last_drop_message;
  // Posts pending drops once they are due when no thread of ours runs: the
  // src task may be held downstream while upstream has stopped pushing.
  camrelay::resilientqueue::ClockIdPtr drop_timer;

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

namespace camrelay::resilientqueue {

// ---- gstresilientqueue.cpp ---------------------------------------------------

// The clock time is measured on (see GstResilientQueuePrivate); lock held.
ClockPtr element_clock (GstResilientQueuePrivate &p);

// Calls `fired (self, id)` once `id` is due, in the clock's thread (for a
// test clock: the thread that cranks it), unless the element is gone by
// then.  Call without the lock: `fired` takes it.  Returns what
// gst_clock_id_wait_async() did: GST_CLOCK_OK if the entry is scheduled.
using ClockFired = void (*) (GstResilientQueue *self, GstClockID id);
GstClockReturn wait_async (GstResilientQueue *self, GstClockID id, ClockFired fired);

// The signals, emitted with no lock held.
void emit_overrun (GstResilientQueue *self);
void emit_underrun (GstResilientQueue *self);

// Drop messages: decided under the lock, delivered without it.
DropNotice collect_drop_notice (GstResilientQueuePrivate &p);
void deliver_drop_notice (GstResilientQueue *self, DropNotice &notice);
// Called without the lock.
void cancel_drop_timer (GstResilientQueuePrivate &p);

// ---- dataflow.cpp --------------------------------------------------------------

void add_pad_templates (GstElementClass *element_class);
// Creates the sink and src pads and adds them to the element.
void create_pads (GstResilientQueue *self);

}  // namespace camrelay::resilientqueue
