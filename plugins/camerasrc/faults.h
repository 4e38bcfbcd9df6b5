// camerasrc's fault reasons: which of a session's errors names its fault,
// how a child's error reads, and where an HTTP camera that said nothing is
// probed.  Plain logic, no element: tests/camerasrc/test_camerasrc_logic.cpp.
#pragma once

#include <gst/gst.h>

#include <optional>
#include <string>

namespace camrelay::camerasrc {

// Where an error of the inner chain came from, as far as ranking goes.
struct FaultOrigin {
  const void *element = nullptr;  // the session element it came from (compared only)
  bool from_source = false;       // that element is the chain's source
  bool generic = false;           // it says only that a stream stopped
};

// The fault of the current session, as reported by its children and
// callbacks: the first one, unless that one is generic ("Internal data stream
// error") and a specific error, not yet handled, follows from the same
// element or from the source.  Errors of elements downstream of a source
// that stopped are consequences, not reasons.
struct FaultSlot {
  std::optional<std::string> reason;  // set until the manager takes it
  bool generic = false;
  const void *origin = nullptr;

  // Whether an error from `from` is to replace what is recorded.
  bool accepts (const FaultOrigin &from) const;
  void record (std::string text, const FaultOrigin &from);
};

// The reason a child's error or warning gives: its message, and the last
// line of its debug text (which often says what really happened:
// "Connection refused", "Unauthorized") in parentheses.
std::string error_reason (const GError *error, const char *debug);

// "Internal data stream error": a loop that stopped, whose cause (if anyone
// said it) is in another message.
bool is_generic_error (const GError *error);

// The reason of a generic fault that followed a warning of the session.
std::string explain_with_warning (const std::string &warning, const std::string &reason);

// The port to probe an http(s) camera on when its URI names none.
guint16 default_http_port (const std::string &scheme);

}  // namespace camrelay::camerasrc
