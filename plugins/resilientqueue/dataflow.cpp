// resilientqueue's data flow: the sink pad (chain, serialized events and
// queries, the leaky=none wait for room) and the src pad with its task
// (pushing, downstream failures, EOS, reconfigure, latency).
#include <vector>

#include "resilientqueue/gstresilientqueueprivate.h"

#define GST_CAT_DEFAULT resilient_queue_debug

namespace camrelay::resilientqueue {

namespace {

// How long the idle src task sleeps before it re-checks its state; a safety
// net only: every change that matters signals the condition.
constexpr auto IDLE_WAKEUP = std::chrono::seconds (1);

GstStaticPadTemplate sink_template =
    GST_STATIC_PAD_TEMPLATE ("sink", GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS_ANY);
GstStaticPadTemplate src_template =
    GST_STATIC_PAD_TEMPLATE ("src", GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS_ANY);

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

// ---- upstream side --------------------------------------------------------

void
wake_blocked_waiters (GstResilientQueue *self, GstClockID)
{
  GstResilientQueuePrivate &p = *self->priv;
  Lock lock (p.lock);
  p.item_removed.notify_all ();
  p.query_handled.notify_all ();
}

// Waits on `cond` until `done ()` or until max-block-time has passed since
// `start` on `clock`; returns the time waited, on `clock`.  The deadline
// follows max-block-time as it is now, so lowering it shortens a wait under
// way (setting it signals the condition).  A single-shot entry on `clock`
// ends the wait when the deadline comes, so that the clock decides, a test
// clock included: nothing polls.  Whatever else ends the wait (room, an
// answer, a flush, a deactivation, a failure downstream, a new limit)
// signals `cond`.  Entries are made and cancelled with the lock released.
template <typename Done>
GstClockTime
wait_within_max_block_time (GstResilientQueue *self, Lock &lock, std::condition_variable &cond,
    bool *waiting, GstClock *clock, GstClockTime start, Done done)
{
  GstResilientQueuePrivate &p = *self->priv;
  ClockIdPtr timer;
  GstClockTime timer_time = GST_CLOCK_TIME_NONE;
  bool timer_armed = false;
  while (!done ()) {
    const GstClockTime deadline = start + p.max_block_time;
    const GstClockTime now = gst_clock_get_time (clock);
    if (now >= deadline)
      break;
    if (deadline != timer_time) {
      ClockIdPtr old = std::move (timer);
      timer.reset (gst_clock_new_single_shot_id (clock, deadline));
      timer_time = deadline;
      lock.unlock ();
      if (old)
        gst_clock_id_unschedule (old.get ());
      timer_armed = wait_async (self, timer.get (), wake_blocked_waiters) == GST_CLOCK_OK;
      lock.lock ();
      continue;  // look again: things may have changed meanwhile
    }
    if (waiting)
      *waiting = true;
    if (timer_armed)
      cond.wait (lock);
    else  // a clock that cannot wake us: count its nanoseconds as real ones
      cond.wait_for (lock, std::chrono::nanoseconds (deadline - now));
    if (waiting)
      *waiting = false;
  }
  const GstClockTime now = gst_clock_get_time (clock);
  if (timer) {
    lock.unlock ();
    gst_clock_id_unschedule (timer.get ());
    lock.lock ();
  }
  return now > start ? now - start : 0;
}

// leaky=none: waits for room until max-block-time has passed or a flush.
void
wait_for_room (GstResilientQueue *self, Lock &lock, const Item &item, guint64 generation)
{
  GstResilientQueuePrivate &p = *self->priv;
  ClockPtr clock = element_clock (p);
  const GstClockTime start = gst_clock_get_time (clock.get ());
  p.stats.time_blocked += wait_within_max_block_time (self, lock, p.item_removed,
      &p.sink_waiting, clock.get (), start,
      [&] { return flushed_since (p, generation) || !p.store.overflows_with (item); });
}

GstFlowReturn
gst_resilient_queue_chain (GstPad *, GstObject *parent, GstBuffer *buffer)
{
  GstResilientQueue *self = GST_RESILIENT_QUEUE (parent);
  GstResilientQueuePrivate &p = *self->priv;
  Item item = make_buffer_item (buffer, p.sink_segment);
  DropNotice notice;

  {
    Lock lock (p.lock);
    if (p.srcresult != GST_FLOW_OK || p.eos) {
      const GstFlowReturn ret = p.eos ? GST_FLOW_EOS : p.srcresult;
      GST_CAT_LOG_OBJECT (resilient_queue_dataflow, self, "refusing buffer: %s",
          gst_flow_get_name (ret));
      return ret;  // `item` goes with the lock released
    }
    const guint64 generation = p.flush_generation;
    p.stats.received_buffers++;

    if (p.store.overflows_with (item)) {
      p.stats.overruns++;
      GST_CAT_DEBUG_OBJECT (resilient_queue_dataflow, self,
          "overrun: %u buffers, %" G_GUINT64_FORMAT " bytes, %" GST_TIME_FORMAT,
          p.store.level_buffers (), p.store.level_bytes (),
          GST_TIME_ARGS (p.store.level_time ()));
      lock.unlock ();
      emit_overrun (self);
      lock.lock ();
      if (flushed_since (p, generation))
        return flushed_result (p, generation);
    }

    Admission admission = p.store.admit (item);
    if (admission == Admission::Wait) {
      wait_for_room (self, lock, item, generation);
      if (flushed_since (p, generation))
        return flushed_result (p, generation);
      admission = p.store.admit_after_wait (item);
    }

    if (admission == Admission::Queue) {
      GST_CAT_LOG_OBJECT (resilient_queue_dataflow, self,
          "queued buffer %" GST_TIME_FORMAT " of %u bytes%s", GST_TIME_ARGS (item.running_time),
          item.size, item.keyframe ? " (keyframe)" : "");
      p.store.enqueue (std::move (item));
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

    p.store.enqueue_serialized (make_event_item (event.release ()));
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
        sticky = p.store.flush_keeping_sticky_events ();
        p.underrun_signalled = false;
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
    item.object.reset ();
    return FALSE;
  }
  p.store.enqueue_serialized (std::move (item));
  p.underrun_signalled = false;
  if (p.src_waiting)
    p.item_added.notify_one ();

  const guint64 generation = p.flush_generation;
  ClockPtr clock = element_clock (p);
  const GstClockTime start = gst_clock_get_time (clock.get ());
  wait_within_max_block_time (self, lock, p.query_handled, nullptr, clock.get (), start,
      [&] { return waiter->answered || flushed_since (p, generation); });
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
    emit_underrun (self);
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
  if (!p.store.empty () || p.srcresult != GST_FLOW_OK)
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
    while (p.store.empty () && p.srcresult == GST_FLOW_OK)
      wait_for_data (self, lock);
    if (p.srcresult != GST_FLOW_OK) {
      pause_task (self, p.srcresult);
      return;
    }
    item = p.store.pop_front ();
    if (item.is_buffer () && p.sink_waiting)
      p.item_removed.notify_one ();
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
  p.store.flush ();
  p.underrun_signalled = false;
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
    max_size_time = p.store.max_size_time;
  }
  // We add no latency of our own, but can hold data for up to max-size-time.
  if (max_size_time == 0)
    max = GST_CLOCK_TIME_NONE;
  else if (GST_CLOCK_TIME_IS_VALID (max))
    max += max_size_time;
  gst_query_set_latency (query, live, min, max);
  return TRUE;
}


}  // namespace

void
add_pad_templates (GstElementClass *element_class)
{
  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);
}

void
create_pads (GstResilientQueue *self)
{
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

}  // namespace camrelay::resilientqueue
