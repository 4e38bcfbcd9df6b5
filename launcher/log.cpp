// The launcher's log (log.h): whole lines on stderr, client values escaped.
#include "log.h"

#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>

namespace camrelay::launcher {

namespace {

void
append_escaped (std::string &out, unsigned char c)
{
  char escaped[5];
  std::snprintf (escaped, sizeof (escaped), "\\x%02x", c);
  out += escaped;
}

}  // namespace

void
log_line (const char *format, ...)
{
  va_list args;
  va_start (args, format);
  gchar *text = g_strdup_vprintf (format, args);
  va_end (args);
  std::string line;
  for (const char *p = text; *p && line.size () < LOG_LINE_MAX; p++) {
    const auto c = static_cast<unsigned char> (*p);
    if (c < 0x20 || c == 0x7f)
      append_escaped (line, c);
    else
      line += static_cast<char> (c);
  }
  g_free (text);
  if (line.size () > LOG_LINE_MAX)
    line.resize (LOG_LINE_MAX);
  line += '\n';
  size_t done = 0;
  while (done < line.size ()) {
    const ssize_t n = write (STDERR_FILENO, line.data () + done, line.size () - done);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return;
    done += static_cast<size_t> (n);
  }
}

std::string
log_value (std::string_view value)
{
  const std::string_view shown = value.substr (0, LOG_VALUE_MAX);
  bool plain = !value.empty () && value.size () <= LOG_VALUE_MAX;
  const std::string_view punctuation = "._-/@:+=~";
  for (const char c : shown)
    plain = plain && (g_ascii_isalnum (c) || punctuation.find (c) != std::string_view::npos);
  if (plain)
    return std::string (value);
  std::string out = "\"";
  for (const char ch : shown) {
    const auto c = static_cast<unsigned char> (ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20 || c >= 0x7f) {
      append_escaped (out, c);
    } else {
      out += ch;
    }
  }
  out += '"';
  if (value.size () > LOG_VALUE_MAX)
    out += "...(" + std::to_string (value.size ()) + " bytes)";
  return out;
}

}  // namespace camrelay::launcher
