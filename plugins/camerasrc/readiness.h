// camerasrc's readiness check: while the manager waits out a backoff step (or
// an attempt waits for its connection), a non-blocking TCP connect to the
// camera's host and port a few times a second tells it the moment a camera
// that could not be reached accepts again.
#pragma once

#include <gst/gst.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>

namespace camrelay::camerasrc {

// How often a camera's port is tried while a backoff step runs.
constexpr auto READINESS_INTERVAL = std::chrono::milliseconds (200);
// How often a camera that accepts TCP is tried (it may go away, then come back).
constexpr auto READINESS_QUIET_INTERVAL = std::chrono::seconds (1);
// Longest one try may take (a host that drops SYNs): then it counts as down.
constexpr guint READINESS_CONNECT_TIMEOUT_S = 1;

// One readiness check, from start () to its destruction, which cancels it.
//
// Threads: every check of the process runs on one thread of its own (a
// GMainContext with GSocketClient's async connects and the checks' timers),
// started with the first check and joined once the last one is gone: no
// thread per camera.  `ready` runs on that thread, at most once, never after
// the destructor returned; it must not wait for whoever destroys the check
// (the manager destroys it with no lock of the element held).
class ReadinessCheck {
 public:
  using Ready = std::function<void ()>;

  // Tries `location`'s host and port (its scheme's default port when it
  // names none) every READINESS_INTERVAL (a new try even while earlier ones
  // wait for an answer, up to a timeout's worth), and calls `ready` on the
  // first try that connects after one that did not (refused, unreachable,
  // timed out): the camera is back.  A camera that accepts TCP all along (it fails in
  // RTSP, or it is silent) is no camera back: its backoff runs on, and it
  // is tried only every READINESS_QUIET_INTERVAL while it accepts.
  // `first_after`: no try before that long.  `wanted`, if set, is asked
  // (on the check's thread) before each try: none while it says false.
  // Returns nullptr for a location without a host (file://, test://).
  static std::unique_ptr<ReadinessCheck> start (const std::string &location, Ready ready,
      std::chrono::milliseconds first_after = std::chrono::milliseconds (0),
      std::function<bool ()> wanted = nullptr);

  ~ReadinessCheck ();
  ReadinessCheck (const ReadinessCheck &) = delete;
  ReadinessCheck &operator= (const ReadinessCheck &) = delete;

  struct Probe;

 private:
  explicit ReadinessCheck (std::shared_ptr<Probe> probe) : probe_ (std::move (probe)) {}
  std::shared_ptr<Probe> probe_;
};

}  // namespace camrelay::camerasrc
