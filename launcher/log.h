// The launcher's log: lines on stderr (journald adds the time and the unit),
// each written whole, and client-supplied values made safe to show in them.
#pragma once

#include <glib.h>

#include <cstddef>
#include <string>
#include <string_view>

namespace camrelay::launcher {

// One line on stderr, formatted first and written by one write(2), so that
// lines of different threads never merge.  Control characters in it are
// shown as \xNN (nothing in it can start a line of its own), and a line
// longer than LOG_LINE_MAX bytes is cut there.
void log_line (const char *format, ...) G_GNUC_PRINTF (1, 2);
inline constexpr size_t LOG_LINE_MAX = 4000;  // below PIPE_BUF: a pipe takes it whole

// A value that comes from a client (a user name, a path...) as the log
// shows it: as it is when it is made of letters, digits and ._-/@:+=~
// only; otherwise in double quotes, with " and \ escaped and every byte
// outside printable ASCII as \xNN.  Only its first LOG_VALUE_MAX bytes are
// shown, followed by a note of its full length.
std::string log_value (std::string_view value);
inline constexpr size_t LOG_VALUE_MAX = 100;

}  // namespace camrelay::launcher
