// camerasrc's state machine as plain logic (see statemachine.h).
#include "camerasrc/statemachine.h"

#include <algorithm>

#include "camerasrc/backoff.h"

namespace camrelay::camerasrc {

ManagerAction
next_action (const ManagerView &view, const ManagerDeadlines &deadlines, Clock::time_point now)
{
  if (view.location_changed)
    return ManagerAction::Switch;
  if (view.state == GST_CAMERA_SRC_STATE_FAILED)
    return ManagerAction::None;
  if (view.fault)
    return ManagerAction::Fault;
  if (view.end_of_file)
    return ManagerAction::Loop;
  if (view.first_frame)
    return ManagerAction::Streaming;
  if (view.state == GST_CAMERA_SRC_STATE_CONNECTING && now > connect_deadline_of (view, deadlines))
    return ManagerAction::ConnectTimeout;
  if (view.state == GST_CAMERA_SRC_STATE_STREAMING && view.timeout > 0 && view.last_frame
      && now - *view.last_frame > ns (view.timeout))
    return ManagerAction::Stall;
  if (view.camera_back && view.state == GST_CAMERA_SRC_STATE_CONNECTING
      && !view.attempt_connected)
    return ManagerAction::Reattempt;
  if (now >= deadlines.retry_at)
    return ManagerAction::Connect;
  if (view.camera_back && view.state == GST_CAMERA_SRC_STATE_RECONNECTING
      && deadlines.retry_at != NEVER)
    return ManagerAction::Connect;
  if (view.state != GST_CAMERA_SRC_STATE_STREAMING && view.fallback
      && now >= deadlines.next_fallback)
    return ManagerAction::Fallback;
  if (now >= early_fallback_at (view, deadlines))
    return ManagerAction::Fallback;
  return ManagerAction::None;
}

Clock::time_point
early_fallback_at (const ManagerView &view, const ManagerDeadlines &deadlines)
{
  if (view.state != GST_CAMERA_SRC_STATE_STREAMING || !view.fallback || view.fallback_after == 0
      || !view.last_output)
    return NEVER;
  return std::max (deadlines.next_fallback, *view.last_output + ns (view.fallback_after));
}

Clock::time_point
next_wake (const ManagerView &view, const ManagerDeadlines &deadlines, Clock::time_point other,
    Clock::time_point now)
{
  // The connect and stall timeouts fire once strictly past their deadline.
  constexpr auto past = std::chrono::nanoseconds (1);
  Clock::time_point wake_at = other;
  if (view.state != GST_CAMERA_SRC_STATE_FAILED) {
    wake_at = std::min (wake_at, deadlines.retry_at);
    if (view.state == GST_CAMERA_SRC_STATE_CONNECTING && deadlines.connect_deadline != NEVER)
      wake_at = std::min (wake_at, connect_deadline_of (view, deadlines) + past);
    if (view.state == GST_CAMERA_SRC_STATE_STREAMING && view.timeout > 0 && view.last_frame)
      wake_at = std::min (wake_at, *view.last_frame + ns (view.timeout) + past);
    if (view.state != GST_CAMERA_SRC_STATE_STREAMING && view.fallback)
      wake_at = std::min (wake_at, deadlines.next_fallback);
    wake_at = std::min (wake_at, early_fallback_at (view, deadlines));
  }
  if (wake_at == NEVER)
    return now + MANAGER_IDLE_BOUND;
  return wake_at;
}

Clock::time_point
connect_deadline_of (const ManagerView &view, const ManagerDeadlines &deadlines)
{
  if (deadlines.connect_deadline == NEVER || !view.attempt_first_data || view.timeout == 0)
    return deadlines.connect_deadline;
  return std::max (deadlines.connect_deadline, *view.attempt_first_data + ns (view.timeout));
}

bool
is_down (GstCameraSrcState state)
{
  return state == GST_CAMERA_SRC_STATE_CONNECTING || state == GST_CAMERA_SRC_STATE_RECONNECTING;
}

void
StateTimes::transition (GstCameraSrcState from, GstCameraSrcState to, Clock::time_point now)
{
  if (from == GST_CAMERA_SRC_STATE_STREAMING && streaming_since) {
    streaming_time += now - *streaming_since;
    streaming_since.reset ();
  }
  if (is_down (from) && down_since) {
    down_time += now - *down_since;
    down_since.reset ();
  }
  if (to == GST_CAMERA_SRC_STATE_STREAMING)
    streaming_since = now;
  else if (is_down (to))
    down_since = now;
}

std::chrono::nanoseconds
StateTimes::streaming (GstCameraSrcState state, Clock::time_point now) const
{
  auto total = streaming_time;
  if (state == GST_CAMERA_SRC_STATE_STREAMING && streaming_since)
    total += now - *streaming_since;
  return total;
}

std::chrono::nanoseconds
StateTimes::down (Clock::time_point now) const
{
  auto total = down_time;
  if (down_since)
    total += now - *down_since;
  return total;
}

std::optional<std::chrono::nanoseconds>
StateTimes::streamed (GstCameraSrcState state, Clock::time_point now) const
{
  if (state != GST_CAMERA_SRC_STATE_STREAMING || !streaming_since)
    return std::nullopt;
  return now - *streaming_since;
}

}  // namespace camrelay::camerasrc
