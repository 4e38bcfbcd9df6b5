// Caps on what an RTSP peer may send in one message, on every TCP connection
// of the process (GstRTSPConnection's, so gst-rtsp-server's and rtspsrc's).
#pragma once

#include <gio/gio.h>

#include "common/rtsp_framing.h"

namespace camrelay {

// Receives one line per connection closed for going over a cap, naming the
// peer's address and the cap.  Called from the thread that was reading.
using RtspGuardReport = void (*) (const char *line);

// Installs the caps process-wide, once (later calls change nothing and
// return false).  From then on the input stream of every GTcpConnection
// follows RTSP framing when its first bytes are RTSP (HTTP: its first
// header block, and a tunnel's base64 RTSP; see RtspFraming) and fails the
// read with G_IO_ERROR_MESSAGE_TOO_LARGE when a message goes over a cap;
// anything else (TLS...) passes through untouched.
// Call it at start-up, before any connection exists: a process-wide choice,
// which belongs to the application, not to a plugin.
bool rtsp_guard_install (const RtspCaps &caps, RtspGuardReport report);

// The filtering stream itself, for tests: reads `base` (pollable), follows
// its framing with `caps`, names `socket`'s peer (nullable) in reports.
// Transfer full.
GInputStream *rtsp_guard_wrap (GInputStream *base, GSocket *socket, const RtspCaps &caps,
                               RtspGuardReport report);

}  // namespace camrelay
