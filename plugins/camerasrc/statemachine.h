// camerasrc's state machine as plain logic: what the manager thread does
// next, when it wakes up, and the time spent streaming and down.  No element:
// tests/camerasrc/test_camerasrc_logic.cpp.  The manager (manager.cpp) applies it.
#pragma once

#include <gst/gst.h>

#include <chrono>
#include <optional>

#include "camerasrc/gstcamerasrc.h"

namespace camrelay::camerasrc {

using Clock = std::chrono::steady_clock;
// A deadline that is not set (std::optional trips GCC 12's
// maybe-uninitialized warning in the manager's loop).
constexpr Clock::time_point NEVER = Clock::time_point::max ();
// The manager wakes for its deadlines and when notified, never to poll.
// This bounds its wait only when it has no deadline at all (streaming
// without a stall timeout, failed): a safety net, not a tick.  (Waiting on
// the element's clock, it also bounds in real time how late past its
// deadline the manager wakes: manager.cpp, sleep_until.)
constexpr auto MANAGER_IDLE_BOUND = std::chrono::seconds (5);

enum class ManagerAction {
  None,
  Switch,          // the location changed: another camera
  Fault,           // a child or a callback reported a fault
  Loop,            // file:// reached its end: replay it
  Streaming,       // the session delivered its first keyframe
  ConnectTimeout,  // no video within connect-timeout
  Stall,           // no video for `timeout` while streaming
  Connect,         // time to (re)connect
  Reattempt,       // the camera is back while the attempt still waits for a connection
  Fallback,        // time for a fallback picture
};

// What the manager sees when it wakes up (read under the element's lock).
struct ManagerView {
  GstCameraSrcState state = GST_CAMERA_SRC_STATE_STOPPED;
  bool location_changed = false;
  bool fault = false;
  bool end_of_file = false;
  bool first_frame = false;
  // The readiness check saw the camera accept connections again while a
  // backoff step runs (readiness.h): the attempt is due now.
  bool camera_back = false;
  // The attempt under way has its connection to the camera (an RTSP
  // request went out): it is no longer waiting for the network.
  bool attempt_connected = false;
  bool fallback = false;  // a fallback other than none is set
  guint64 timeout = 0;    // the stall timeout, ns (0 = never)
  // The last video frame the camera delivered (the stall timeout counts from it).
  std::optional<Clock::time_point> last_frame;
  // While connecting: when the attempt's video data began to come (RTP
  // packets of frames before the first keyframe, which the parser drops
  // until it has the parameter sets).  The camera delivers: the attempt is
  // given `timeout` from then for its keyframe, past connect-timeout if
  // need be.
  std::optional<Clock::time_point> attempt_first_data;
  // While streaming: fallback pictures once no camera frame went out for
  // this long, ns (0 = only after a fault), and when the last one went out.
  guint64 fallback_after = 0;
  std::optional<Clock::time_point> last_output;
};

struct ManagerDeadlines {
  Clock::time_point retry_at = NEVER;
  Clock::time_point connect_deadline = NEVER;
  Clock::time_point next_fallback = NEVER;
};

// The one thing to do now, by priority: a new location first; nothing once
// failed; then a reported fault, the end of a file, the first keyframe, the
// timeouts, a camera back (while reconnecting: the attempt is due; while an
// attempt still waits for its connection: a new one), a due attempt, and
// last a due fallback picture.
ManagerAction next_action (const ManagerView &view, const ManagerDeadlines &deadlines,
    Clock::time_point now);

// While streaming, when the next fallback picture is due because no camera
// frame went out for `fallback_after` (the camera is late, not yet stalled):
// at that instant, then at the fallback pace.  NEVER when it does not apply.
Clock::time_point early_fallback_at (const ManagerView &view, const ManagerDeadlines &deadlines);

// When to wake up at the latest: the first instant next_action () would act
// on a deadline (a due attempt, the connect deadline while connecting, the
// stall deadline of the last frame while streaming, the next fallback
// picture while away or while a streaming camera is late) or `other` (one more, such as a slate's).  Without any,
// MANAGER_IDLE_BOUND from `now`.  Events (a fault, the first keyframe, the
// end of a file, a new location or setting, stopping) notify the manager.
Clock::time_point next_wake (const ManagerView &view, const ManagerDeadlines &deadlines,
    Clock::time_point other, Clock::time_point now);

// While connecting: when the attempt times out.  The connect deadline, or
// `timeout` past the attempt's first video data when that is later.
Clock::time_point connect_deadline_of (const ManagerView &view, const ManagerDeadlines &deadlines);

// Whether the camera is being waited for (connecting or reconnecting).
bool is_down (GstCameraSrcState state);

// Time spent streaming and down (connecting or reconnecting), across
// transitions.
struct StateTimes {
  std::chrono::nanoseconds streaming_time{0};  // finished runs
  std::chrono::nanoseconds down_time{0};
  std::optional<Clock::time_point> streaming_since;
  std::optional<Clock::time_point> down_since;

  // Accounts for a transition from `from` to `to` at `now`.
  void transition (GstCameraSrcState from, GstCameraSrcState to, Clock::time_point now);
  // Totals up to `now`, in state `state`.
  std::chrono::nanoseconds streaming (GstCameraSrcState state, Clock::time_point now) const;
  std::chrono::nanoseconds down (Clock::time_point now) const;
  // How long the current run of streaming has lasted, unset when not streaming.
  std::optional<std::chrono::nanoseconds> streamed (GstCameraSrcState state,
      Clock::time_point now) const;
};

}  // namespace camrelay::camerasrc
