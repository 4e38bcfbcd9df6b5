// Reading camrelay.toml (see config_reader.h): typed table reads that
// collect every problem, TOML syntax errors, and file helpers.
#include "config_reader.h"
#include "config_values.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>

namespace camrelay::launcher::config_reader {

namespace {

// Levenshtein distance, for "did you mean" hints on misspelt keys.
size_t
edit_distance (std::string_view a, std::string_view b)
{
  std::vector<size_t> row (b.size () + 1);
  for (size_t j = 0; j <= b.size (); j++)
    row[j] = j;
  for (size_t i = 1; i <= a.size (); i++) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size (); j++) {
      size_t above = row[j];
      row[j] = std::min ({row[j] + 1, row[j - 1] + 1,
          diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size ()];
}

}  // namespace

// ---- small text helpers ------------------------------------------------------

std::string
ascii_lower (std::string_view text)
{
  std::string out (text);
  for (char &c : out)
    c = g_ascii_tolower (c);
  return out;
}

std::string
join (const std::vector<std::string> &items, std::string_view separator)
{
  std::string out;
  for (const std::string &item : items) {
    if (!out.empty ())
      out += separator;
    out += item;
  }
  return out;
}

bool
is_name_char (char c)
{
  return g_ascii_isalnum (c) || c == '_' || c == '-';
}

const char *
type_name (const toml::node &node)
{
  switch (node.type ()) {
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a floating-point number";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
    default: return "nothing";
  }
}

int
line_of (const toml::node &node)
{
  return static_cast<int> (node.source ().begin.line);
}

// ---- reading a table -------------------------------------------------------------

const toml::node *
TableReader::find (std::string_view key)
{
  known_.emplace (key);
  return table_.get (key);
}

int
TableReader::line_of_key (std::string_view key) const
{
  const toml::node *node = table_.get (key);
  return node ? line_of (*node) : line ();
}

void
TableReader::error (std::string_view key, std::string message)
{
  diagnostics_.add (line_of_key (key), key_path (key), std::move (message));
}

void
TableReader::error_at (int line, std::string key_path, std::string message)
{
  diagnostics_.add (line, std::move (key_path), std::move (message));
}

void
TableReader::missing (std::string_view key, std::string_view why)
{
  diagnostics_.add (line (), key_path (key), "missing (" + std::string (why) + ")");
}

Read
TableReader::read_string (std::string_view key, std::string &out)
{
  const toml::node *node = find (key);
  if (!node)
    return Read::absent;
  if (!node->is_string ()) {
    error (key, std::string ("must be a string (got ") + type_name (*node) + ")");
    return Read::invalid;
  }
  const std::string &value = node->as_string ()->get ();
  // Every value ends up in a C string (GStreamer, GLib, the RTSP server):
  // a NUL would silently cut it short.
  if (value.find ('\0') != std::string::npos) {
    error (key, "must not contain a NUL character (\\u0000)");
    return Read::invalid;
  }
  out = value;
  return Read::ok;
}

Read
TableReader::read_nonempty_string (std::string_view key, std::string &out)
{
  std::string value;
  Read read = read_string (key, value);
  if (read != Read::ok)
    return read;
  if (value.empty ()) {
    error (key, "must not be empty");
    return Read::invalid;
  }
  out = std::move (value);
  return Read::ok;
}

Read
TableReader::read_bool (std::string_view key, bool &out)
{
  const toml::node *node = find (key);
  if (!node)
    return Read::absent;
  if (!node->is_boolean ()) {
    error (key, std::string ("must be true or false (got ") + type_name (*node) + ")");
    return Read::invalid;
  }
  out = node->as_boolean ()->get ();
  return Read::ok;
}

Read
TableReader::read_choice (std::string_view key, std::string &out,
    const std::vector<const char *> &choices)
{
  std::string value;
  Read read = read_string (key, value);
  if (read != Read::ok)
    return read;
  for (const char *choice : choices) {
    if (value == choice) {
      out = value;
      return Read::ok;
    }
  }
  std::vector<std::string> names (choices.begin (), choices.end ());
  error (key, "must be one of " + join (names, ", ") + " (got " + quote (value) + ")");
  return Read::invalid;
}

Read
TableReader::read_duration_ms (std::string_view key, uint64_t &out_ms, uint64_t integer_unit_ms,
    uint64_t min_ms, uint64_t max_ms, std::string_view range_text)
{
  const toml::node *node = find (key);
  if (!node)
    return Read::absent;
  const bool in_seconds = integer_unit_ms == 1000;
  const std::string expected = in_seconds
      ? "must be a number of seconds, or a duration such as \"30s\" or \"5m\""
      : "must be a number of milliseconds, or a duration such as \"2s\" or \"500ms\"";
  uint64_t ms;
  std::string shown;
  if (const auto *integer = node->as_integer ()) {
    int64_t value = integer->get ();
    shown = std::to_string (value);
    if (value < 0 || static_cast<uint64_t> (value) > max_ms / integer_unit_ms + 1) {
      error (key, "must be " + std::string (range_text) + " (got " + shown + ")");
      return Read::invalid;
    }
    ms = static_cast<uint64_t> (value) * integer_unit_ms;
  } else if (const auto *string = node->as_string ()) {
    shown = quote (string->get ());
    std::optional<uint64_t> parsed = parse_duration_ms (string->get ());
    if (!parsed) {
      error (key, expected + " (got " + shown + ")");
      return Read::invalid;
    }
    ms = *parsed;
  } else {
    error (key, expected + " (got " + type_name (*node) + ")");
    return Read::invalid;
  }
  if (ms < min_ms || ms > max_ms) {
    error (key, "must be " + std::string (range_text) + " (got " + shown + ")");
    return Read::invalid;
  }
  if (in_seconds && ms % 1000 != 0) {
    error (key, "must be a whole number of seconds (got " + shown + ")");
    return Read::invalid;
  }
  out_ms = ms;
  return Read::ok;
}

void
TableReader::check_unknown_keys (const std::map<std::string, std::string> &hints)
{
  for (auto &&[key, node] : table_) {
    std::string name (key.str ());
    if (known_.count (name))
      continue;
    std::string message = "unknown key";
    auto hint = hints.find (name);
    if (hint != hints.end ()) {
      message += " (" + hint->second + ")";
    } else {
      std::string best;
      size_t best_distance = std::numeric_limits<size_t>::max ();
      for (const std::string &candidate : known_) {
        size_t distance = edit_distance (name, candidate);
        if (distance < best_distance) {
          best_distance = distance;
          best = candidate;
        }
      }
      if (!best.empty () && best_distance <= 2 && best_distance < name.size () / 2 + 1)
        message += " (did you mean " + quote (best) + "?)";
    }
    diagnostics_.add (static_cast<int> (key.source ().begin.line), key_path (name), message);
    (void) node;
  }
}

// ---- files ---------------------------------------------------------------------

bool
is_readable_file (const std::string &path, std::string &why)
{
  int fd = open (path.c_str (), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    why = std::strerror (errno);
    return false;
  }
  struct stat info;
  bool regular = fstat (fd, &info) == 0 && S_ISREG (info.st_mode);
  close (fd);
  if (!regular)
    why = "not a regular file";
  return regular;
}

bool
read_whole_file (const std::string &path, std::string &contents, std::string &why)
{
  int fd = open (path.c_str (), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    why = std::strerror (errno);
    return false;
  }
  contents.clear ();
  char buffer[16384];
  for (;;) {
    ssize_t got = read (fd, buffer, sizeof buffer);
    if (got < 0 && errno == EINTR)
      continue;
    if (got < 0) {
      why = std::strerror (errno);
      close (fd);
      return false;
    }
    if (got == 0)
      break;
    contents.append (buffer, static_cast<size_t> (got));
  }
  close (fd);
  return true;
}

std::string
resolve_beside (const std::string &config_path, const std::string &file)
{
  if (file.empty () || g_path_is_absolute (file.c_str ()) || config_path.empty ())
    return file;
  char *folder = g_path_get_dirname (config_path.c_str ());
  char *joined = g_build_filename (folder, file.c_str (), nullptr);
  std::string resolved = joined;
  g_free (joined);
  g_free (folder);
  return resolved;
}

std::optional<toml::table>
parse_toml (const std::string &text, const std::string &file, std::vector<ConfigError> &errors)
{
  try {
    return toml::parse (std::string_view (text), std::string_view (file));
  } catch (const toml::parse_error &e) {
    std::string description (e.description ());
    const std::string_view prefix = "Error while parsing ";
    ConfigError error;
    error.file = file;
    error.line = static_cast<int> (e.source ().begin.line);
    error.column = static_cast<int> (e.source ().begin.column);
    if (description.compare (0, prefix.size (), prefix) == 0)
      error.message = "TOML syntax error while parsing " + description.substr (prefix.size ());
    else
      error.message = "TOML syntax error: " + description;
    errors.push_back (std::move (error));
    return std::nullopt;
  }
}

}  // namespace camrelay::launcher::config_reader
