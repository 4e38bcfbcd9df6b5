// camerasrc's manager thread: the element's state machine (statemachine.h)
// run on a thread of its own, started in PAUSED->PLAYING and joined in
// PAUSED->READY.  It connects, tears down, backs off (backoff.h), sends the
// fallback pictures and reports every transition.  Its time is the element's
// clock: it sleeps until a single-shot clock entry at its next deadline.
#include <algorithm>

#include "camerasrc/backoff.h"
#include "camerasrc/camerauri.h"
#include "camerasrc/gstcamerasrc-private.h"
#include "camerasrc/readiness.h"
#include "common/enums.h"
#include "common/uri_schemes.h"

namespace camrelay::camerasrc {

constexpr auto WARNING_INTERVAL = std::chrono::seconds (5);

namespace names = camrelay::camerasrc_names;

// ---- time: the element's clock ----------------------------------------------

// What the time source reads: the clock's time, or the steady clock's.
static Clock::time_point
source_time_locked (GstCameraSrcPrivate &p)
{
  if (!p.clock)
    return Clock::now ();
  return Clock::time_point (std::chrono::nanoseconds (gst_clock_get_time (p.clock.get ())));
}

Clock::time_point
now_locked (GstCameraSrcPrivate &p)
{
  return source_time_locked (p) + p.clock_offset;
}

Clock::time_point
element_now (GstCameraSrcPrivate &p)
{
  Lock lock (p.lock);
  return now_locked (p);
}

void
use_clock (GstCameraSrc *self, GstClock *clock)
{
  GstCameraSrcPrivate &p = *self->priv;
  ClockPtr old;  // let go of with the lock released
  Lock lock (p.lock);
  if (p.clock.get () == clock)
    return;
  const auto now = now_locked (p);
  old = std::move (p.clock);
  p.clock = ref_object (clock);
  p.clock_offset = now - source_time_locked (p);
  GST_DEBUG_OBJECT (self, "time follows %" GST_PTR_FORMAT, clock);
  // A wake-up armed on the old clock: armed again on this one.
  p.reconsider = true;
  p.wake.notify_all ();
}

// What the manager's clock entry holds: a weak reference, so that an entry
// the clock lets go of late never keeps the element alive nor dangles.
struct WakeTarget {
  GWeakRef element;
};

static void
free_wake_target (gpointer data)
{
  auto *target = static_cast<WakeTarget *> (data);
  g_weak_ref_clear (&target->element);
  delete target;
}

// In the clock's thread (a test clock's: the thread that cranks it).
static gboolean
on_wake_entry (GstClock *, GstClockTime, GstClockID id, gpointer data)
{
  auto *target = static_cast<WakeTarget *> (data);
  ObjectPtr<GstCameraSrc> self{static_cast<GstCameraSrc *> (g_weak_ref_get (&target->element))};
  if (!self)
    return TRUE;
  GstCameraSrcPrivate &p = *self->priv;
  Lock lock (p.lock);
  if (p.wake_entry.get () == id) {  // else replaced or cancelled
    p.wake_due = true;
    p.wake.notify_all ();
  }
  return TRUE;
}

// Whether the manager has something to look at before its deadline.
static bool
woken_locked (const GstCameraSrcPrivate &p)
{
  return !p.running || p.location_changed || p.fault.reason || p.end_of_file || p.first_frame
      || p.camera_back || p.reconsider || p.wake_due;
}

// Sleeps (lock held) until `wake_at` on the element's time or an event.  On
// a clock, a single-shot entry at `wake_at` wakes the manager, cancelled once
// it is awake; the wait is bounded in real time all the same, at
// MANAGER_IDLE_BOUND past `wake_at` (a clock that stops or runs slow, a test
// clock nobody moves).  Without a clock, the steady clock's time of `wake_at`.
static void
sleep_until (GstCameraSrc *self, Lock &lock, Clock::time_point wake_at)
{
  GstCameraSrcPrivate &p = *self->priv;
  const auto now = now_locked (p);
  if (woken_locked (p) || wake_at <= now)
    return;
  const auto safety_net = (wake_at - now) + MANAGER_IDLE_BOUND;
  const Clock::time_point at = wake_at - p.clock_offset;  // on the source
  if (!p.clock) {
    p.wake.wait_until (lock, at, [&p] { return woken_locked (p); });
    return;
  }
  ClockPtr clock = ref_object (p.clock.get ());
  ClockIdPtr entry{gst_clock_new_single_shot_id (clock.get (),
      static_cast<GstClockTime> (at.time_since_epoch ().count ()))};
  p.wake_entry.reset (gst_clock_id_ref (entry.get ()));
  p.wake_due = false;
  lock.unlock ();
  auto *target = new WakeTarget;
  g_weak_ref_init (&target->element, self);
  const GstClockReturn armed =
      gst_clock_id_wait_async (entry.get (), on_wake_entry, target, free_wake_target);
  lock.lock ();
  if (armed != GST_CLOCK_OK) {
    GST_WARNING_OBJECT (self, "cannot wait on %" GST_PTR_FORMAT ": waiting in real time",
        clock.get ());
    p.wake.wait_until (lock, Clock::now () + (wake_at - now),
        [&p] { return woken_locked (p); });
  } else {
    p.wake.wait_for (lock, safety_net, [&p] { return woken_locked (p); });
  }
  p.wake_entry.reset ();
  p.wake_due = false;
  lock.unlock ();
  gst_clock_id_unschedule (entry.get ());
  lock.lock ();
}

// For the log: the nick of `state`.
static const char *
state_nick (GstCameraSrcState state)
{
  const char *nick = enum_nick (GST_TYPE_CAMERA_SRC_STATE, state);
  return nick ? nick : "unknown";
}

static void
post_state_message (GstCameraSrc *self, GstCameraSrcState state, GstCameraSrcState previous,
    const std::string &reason, guint attempt, guint64 retry_in, const std::string &location)
{
  GstStructure *s = gst_structure_new (names::STATE_MESSAGE,
      names::FIELD_STATE, GST_TYPE_CAMERA_SRC_STATE, state,
      names::FIELD_PREVIOUS, GST_TYPE_CAMERA_SRC_STATE, previous,
      names::FIELD_REASON, G_TYPE_STRING, reason.c_str (),
      names::FIELD_ATTEMPT, G_TYPE_UINT, attempt,
      names::FIELD_RETRY_IN, G_TYPE_UINT64, retry_in,
      names::FIELD_LOCATION, G_TYPE_STRING, location.c_str (), nullptr);
  gst_element_post_message (GST_ELEMENT (self), gst_message_new_element (GST_OBJECT (self), s));
}

// Changes the state (lock held), and returns what to post once unlocked.
struct StateChange {
  GstCameraSrcState state;
  GstCameraSrcState previous;
  std::string reason;
  guint attempt;
  guint64 retry_in;
  std::string location;
};

static StateChange
set_state_locked (GstCameraSrcPrivate &p, GstCameraSrcState state, std::string reason,
    guint64 retry_in = 0)
{
  p.times.transition (p.state, state, now_locked (p));
  StateChange change{state, p.state, reason, p.attempt, retry_in,
      redact_uri (p.settings.location)};
  p.state = state;
  p.state_reason = std::move (reason);
  return change;
}

static void
announce (GstCameraSrc *self, const StateChange &change)
{
  GST_INFO_OBJECT (self, "%s -> %s (attempt %u): %s", state_nick (change.previous),
      state_nick (change.state), change.attempt, change.reason.c_str ());
  post_state_message (self, change.state, change.previous, change.reason, change.attempt,
      change.retry_in, change.location);
  g_object_notify (G_OBJECT (self), "state");
}

static void
warn_fault (GstCameraSrc *self, const std::string &reason, const std::string &location)
{
  GstCameraSrcPrivate &p = *self->priv;
  {
    Lock lock (p.lock);
    const auto now = now_locked (p);
    if (p.last_warning && now - *p.last_warning < WARNING_INTERVAL)
      return;
    p.last_warning = now;
  }
  GST_ELEMENT_WARNING (self, RESOURCE, READ, ("Camera %s: %s", location.c_str (), reason.c_str ()),
      ("reconnecting with backoff"));
}

// The manager thread: owns the state machine and the inner chain.
static void
manager_loop (GstCameraSrc *self)
{
  GstCameraSrcPrivate &p = *self->priv;
  std::mt19937_64 random (std::random_device{}());
  ManagerDeadlines deadlines;
  Clock::time_point &retry_at = deadlines.retry_at;
  Clock::time_point &connect_deadline = deadlines.connect_deadline;
  Clock::time_point &next_fallback = deadlines.next_fallback;
  retry_at = element_now (p);
  next_fallback = retry_at;
  SlateBuild slate;
  // While a backoff step runs, and while an attempt waits for its
  // connection: whether the camera accepts connections again (readiness.h).
  // Ended with no lock held: its callback takes the lock.
  std::unique_ptr<ReadinessCheck> readiness;
  auto check_readiness = [self, &readiness] (const std::string &location,
      std::chrono::milliseconds first_after = std::chrono::milliseconds (0),
      std::function<bool ()> wanted = nullptr) {
    readiness = ReadinessCheck::start (location, [self] {
      GstCameraSrcPrivate &priv = *self->priv;
      Lock lock (priv.lock);
      if (is_down (priv.state)) {
        priv.camera_back = true;
        priv.wake.notify_all ();
      }
    }, first_after, std::move (wanted));
  };
  // What the state machine sees (lock held).
  auto view_locked = [&p] {
    ManagerView view;
    view.state = p.state;
    view.location_changed = p.location_changed;
    view.fault = p.fault.reason.has_value ();
    view.end_of_file = p.end_of_file;
    view.first_frame = p.first_frame;
    view.camera_back = p.camera_back;
    view.attempt_connected = !p.handshake.pending_step ().empty ();
    view.fallback = p.settings.fallback != GST_CAMERA_SRC_FALLBACK_NONE;
    view.timeout = p.settings.timeout;
    view.last_frame = p.last_video_in;
    view.attempt_first_data = p.attempt_first_data;
    view.fallback_after = p.settings.fallback_after;
    view.last_output = p.stats.last_frame;
    return view;
  };

  while (true) {
    ManagerAction action = ManagerAction::None;
    std::string reason;
    bool reason_generic = false;
    std::string warning;
    bool had_video = false;
    bool bridged = false;
    bool cut_short = false;
    std::optional<Clock::time_point> last_output;
    Settings settings;
    guint64 generation = 0;
    {
      Lock lock (p.lock);
      // Sleep until the next deadline or an event; nothing polls.  A slate
      // being made is looked at on every wake-up: at the latest at the next
      // fallback picture, the only one that uses it, or its own deadline.
      const auto wake_at = next_wake (view_locked (), deadlines, slate.deadline, now_locked (p));
      sleep_until (self, lock, wake_at);
      if (!p.running)
        break;
      p.reconsider = false;
      GST_TRACE_OBJECT (self, "manager awake");
      if (slate.pipeline) {
        lock.unlock ();
        poll_slate (self, slate);
        lock.lock ();
      }
      const auto now = now_locked (p);
      settings = p.settings;
      generation = p.generation;
      action = next_action (view_locked (), deadlines, now);
      switch (action) {
        case ManagerAction::Switch:
          p.location_changed = false;
          break;
        case ManagerAction::Fault:
          reason = *p.fault.reason;
          reason_generic = p.fault.generic;
          warning = p.session_warning;
          had_video = p.video.session_started;
          bridged = p.video.bridged;
          last_output = p.stats.last_frame;
          p.fault.reason.reset ();
          break;
        case ManagerAction::Loop:
          p.end_of_file = false;
          break;
        case ManagerAction::Streaming:
          p.first_frame = false;
          break;
        case ManagerAction::ConnectTimeout:
          action = ManagerAction::Fault;
          reason = p.handshake.timeout_reason (settings.connect_timeout);  // names the step
          break;
        case ManagerAction::Stall:
          action = ManagerAction::Fault;
          bridged = p.video.bridged;
          last_output = p.stats.last_frame;
          reason = "stalled: no video for " + std::to_string (settings.timeout / GST_MSECOND)
              + " ms";
          break;
        case ManagerAction::Fallback:
          next_fallback = now + ns (settings.fallback_interval);
          break;
        case ManagerAction::Connect:
          cut_short = p.camera_back && now < retry_at;
          p.camera_back = false;
          break;
        case ManagerAction::Reattempt:
          p.camera_back = false;
          break;
        case ManagerAction::None:
          break;
      }
    }
    // An attempt, another camera or another fault: the check is over, and
    // what it may have said just before is no news.
    if (readiness && (action == ManagerAction::Connect || action == ManagerAction::Switch
        || action == ManagerAction::Fault || action == ManagerAction::Reattempt
        || action == ManagerAction::Streaming)) {
      readiness.reset ();
      Lock lock (p.lock);
      p.camera_back = false;
    }

    switch (action) {
      case ManagerAction::None:
      case ManagerAction::ConnectTimeout:  // made a Fault above
      case ManagerAction::Stall:
        break;
      case ManagerAction::Switch: {
        teardown_session (self);
        drop_slate (slate);
        StateChange change;
        {
          Lock lock (p.lock);
          // Another camera: what the old one looked like is no fallback for
          // it, and no fact about it.
          p.last_keyframe.reset ();
          p.last_keyframe_caps.reset ();
          p.slate.reset ();
          p.stats.width = p.stats.height = 0;
          p.stats.fps_n = 0;
          p.stats.fps_d = 1;
          p.stats.codec.clear ();
          p.stats.bitrate_window.clear ();
          p.attempt = 0;
          change = set_state_locked (p, GST_CAMERA_SRC_STATE_CONNECTING, "location changed");
        }
        announce (self, change);
        retry_at = element_now (p);
        connect_deadline = NEVER;
        break;
      }
      case ManagerAction::Loop:
        GST_DEBUG_OBJECT (self, "end of file: replaying from the start");
        teardown_session (self);
        retry_at = element_now (p);
        break;
      case ManagerAction::Streaming: {
        StateChange change;
        {
          Lock lock (p.lock);
          if (p.state == GST_CAMERA_SRC_STATE_STREAMING)
            break;
          p.stats.connects++;
          change = set_state_locked (p, GST_CAMERA_SRC_STATE_STREAMING, "receiving video");
        }
        connect_deadline = NEVER;
        announce (self, change);
        break;
      }
      case ManagerAction::Fault: {
        GST_INFO_OBJECT (self, "camera fault: %s", reason.c_str ());
        const std::string location = redact_uri (settings.location);
        // The old chain stops during the backoff, so that `reconnecting` is
        // announced as the fault is found.
        teardown_session (self, false, std::chrono::milliseconds (0));
        if (reason_generic)
          reason = explain_generic_fault (self, reason, warning, had_video, settings);
        StateChange change;
        bool give_up = false;
        guint64 delay = 0;
        bool was_streaming;
        {
          Lock lock (p.lock);
          const auto now = now_locked (p);
          was_streaming = p.state == GST_CAMERA_SRC_STATE_STREAMING;
          p.stats.last_error = reason;
          p.attempt = next_attempt (p.attempt, p.times.streamed (p.state, now),
              settings.retry_reset_time);
          p.stats.reconnects++;
          if (retries_exhausted (p.attempt, settings.max_retries)) {
            give_up = true;
            change = set_state_locked (p, GST_CAMERA_SRC_STATE_FAILED, reason);
          } else {
            delay = backoff_delay (settings.retry_delay, settings.retry_delay_max, p.attempt,
                random);
            change = set_state_locked (p, GST_CAMERA_SRC_STATE_RECONNECTING, reason, delay);
          }
        }
        announce (self, change);
        connect_deadline = NEVER;
        if (give_up) {
          retry_at = NEVER;
          GST_ELEMENT_ERROR (self, RESOURCE, FAILED,
              ("Camera %s failed: %s", location.c_str (), reason.c_str ()),
              ("gave up after max-retries=%d", settings.max_retries));
          break;
        }
        warn_fault (self, reason, location);
        retry_at = element_now (p) + ns (delay);
        // A camera that comes back ends the wait at once: the readiness
        // check sees its port refuse (or time out), then accept.  One that
        // accepts TCP all along (failing RTSP, or silent) keeps its backoff.
        if (ns (delay) > READINESS_INTERVAL)
          check_readiness (settings.location);
        // The fallback pictures start one interval after the camera is lost
        // (at most fallback-after after its last frame went out) and keep
        // their pace through failed attempts; those that started while the
        // camera was late go on at theirs.
        if (was_streaming) {
          const auto now = element_now (p);
          if (!bridged) {
            next_fallback = now + ns (settings.fallback_interval);
            if (settings.fallback_after > 0 && last_output)
              next_fallback = std::min (next_fallback,
                  std::max (now, *last_output + ns (settings.fallback_after)));
          }
          start_slate (self, slate);
        }
        break;
      }
      case ManagerAction::Connect: {
        // Earlier chains stuck on this camera hold a thread and a connection
        // each; wait for them rather than add more.
        if (p.retiring->load () >= MAX_RETIRING) {
          GST_INFO_OBJECT (self, "%u earlier connections still closing: attempt postponed",
              p.retiring->load ());
          retry_at = element_now (p) + ns (settings.retry_delay_max);
          break;
        }
        if (cut_short)
          GST_INFO_OBJECT (self, "the camera accepts connections again: attempt now, %"
              G_GINT64_FORMAT " ms before the backoff's end",
              static_cast<gint64> (std::chrono::duration_cast<std::chrono::milliseconds> (
                  retry_at - element_now (p)).count ()));
        retry_at = NEVER;
        StateChange change;
        bool changed = false;
        const bool is_file = is_scheme_of (split_uri (settings.location, "", "").scheme,
            SchemeFamily::File);
        {
          Lock lock (p.lock);
          p.session_is_file = is_file;
          p.attempt_first_data.reset ();
          if (p.state != GST_CAMERA_SRC_STATE_CONNECTING && p.state != GST_CAMERA_SRC_STATE_STREAMING) {
            change = set_state_locked (p, GST_CAMERA_SRC_STATE_CONNECTING,
                p.attempt ? "retrying after: " + p.stats.last_error : "starting");
            changed = true;
          }
        }
        if (changed)
          announce (self, change);
        connect_deadline = element_now (p) + ns (settings.connect_timeout);
        // A new attempt, its steps followed from here.
        p.handshake.start (is_scheme_of (split_uri (settings.location, "", "").scheme,
            SchemeFamily::Rtsp));
        if (auto error = build_session (self, generation, settings))
          report_fault (self, generation, *error);
        // An RTSP attempt whose connection hangs (a network cut: its SYNs
        // are lost, and the kernel sends the next one 1, 2, 4 s later) is
        // replaced as soon as the camera is seen reachable again: tried
        // from a try's timeout on, and only while the attempt has sent no
        // request (a camera that answers sees no try).
        if (is_scheme_of (split_uri (settings.location, "", "").scheme, SchemeFamily::Rtsp))
          check_readiness (settings.location,
              std::chrono::seconds (READINESS_CONNECT_TIMEOUT_S), [self] {
                return self->priv->handshake.pending_step ().empty ();
              });
        break;
      }
      case ManagerAction::Reattempt:
        GST_INFO_OBJECT (self, "the camera accepts connections again while the attempt still "
            "waits for its connection: a new attempt");
        teardown_session (self, false, std::chrono::milliseconds (0));
        retry_at = element_now (p);
        connect_deadline = NEVER;
        break;
      case ManagerAction::Fallback:
        send_fallback (self);
        break;
    }
  }
  // Stopping: a slate still being made is not waited for.
  readiness.reset ();
  drop_slate (slate);
}

void
start_manager (GstCameraSrc *self)
{
  GstCameraSrcPrivate &p = *self->priv;
  StateChange change;
  {
    Lock lock (p.lock);
    if (p.running)
      return;
    p.running = true;
    p.attempt = 0;
    p.fault.reason.reset ();
    p.location_changed = false;
    change = set_state_locked (p, GST_CAMERA_SRC_STATE_CONNECTING, "starting");
  }
  announce (self, change);
  p.manager = std::thread (manager_loop, self);
}

void
stop_manager (GstCameraSrc *self)
{
  GstCameraSrcPrivate &p = *self->priv;
  {
    Lock lock (p.lock);
    if (!p.running && !p.manager.joinable ())
      return;
    p.running = false;
    p.wake.notify_all ();
  }
  cancel_diagnosis (p);
  if (p.manager.joinable ())
    p.manager.join ();
  teardown_session (self, true);
  StateChange change;
  {
    Lock lock (p.lock);
    if (p.state == GST_CAMERA_SRC_STATE_STOPPED)
      return;
    change = set_state_locked (p, GST_CAMERA_SRC_STATE_STOPPED, "stopped");
  }
  announce (self, change);
}

}  // namespace camrelay::camerasrc
