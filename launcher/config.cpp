// Reads camrelay.toml with toml++ and checks every value.  Every problem is
// collected rather than stopping at the first one, so that a single
// `camrelay --check` shows everything there is to fix, each as
// "FILE:LINE: key: what is wrong".  No message ever quotes a password: values
// are quoted only for keys that cannot hold one, and a location is described,
// never echoed (its user information may carry credentials).
#include "config.h"
#include "config_values.h"

#include <fcntl.h>
#include <net/if.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>
#include <gst/gst.h>
#include <toml++/toml.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <limits>
#include <map>
#include <set>
#include <string_view>
#include <utility>

namespace camrelay::launcher {

namespace {

constexpr uint16_t kDefaultVendorPort = 554;

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

// ---- pipeline fragments -------------------------------------------------------

// "" when `fragment` is a GStreamer pipeline fragment with one input and one
// output (what goes between camerasrc and the payloader); else what is wrong.
// Needs GStreamer initialised (camrelay does before reading its
// configuration); without it, nothing is checked here and the camera reports
// the problem when it starts.
std::string
check_pipeline_fragment (const std::string &fragment)
{
  if (!gst_is_initialized ())
    return "";
  GError *error = nullptr;
  GstElement *bin = gst_parse_bin_from_description (fragment.c_str (), TRUE, &error);
  std::string problem;
  if (error)
    problem = std::string ("not a GStreamer pipeline fragment: ") + error->message;
  else if (!bin)
    problem = "not a GStreamer pipeline fragment";
  if (bin && problem.empty ()) {
    GstPad *sink = gst_element_get_static_pad (bin, "sink");
    GstPad *src = gst_element_get_static_pad (bin, "src");
    // Only the first unlinked pad of each direction is ghosted: any other
    // one left means a second input or output.
    GstPad *other_sink = gst_bin_find_unlinked_pad (GST_BIN (bin), GST_PAD_SINK);
    GstPad *other_src = gst_bin_find_unlinked_pad (GST_BIN (bin), GST_PAD_SRC);
    if (!sink || !src || other_sink || other_src)
      problem = "must have exactly one unlinked input and one unlinked output, such as "
                "\"h264parse ! identity\"";
    for (GstPad *pad : {sink, src, other_sink, other_src})
      if (pad)
        gst_object_unref (pad);
  }
  g_clear_error (&error);
  if (bin)
    gst_object_unref (gst_object_ref_sink (bin));
  return problem;
}

// ---- diagnostics ------------------------------------------------------------

class Diagnostics {
 public:
  explicit Diagnostics (std::string file) : file_ (std::move (file)) {}

  void add (int line, std::string key, std::string message)
  {
    ConfigError error;
    error.file = file_;
    error.line = line;
    error.key = std::move (key);
    error.message = std::move (message);
    errors_.push_back (std::move (error));
  }

  bool empty () const { return errors_.empty (); }

  // In file order; problems found on the same line keep the order in which
  // they were found (the order of the keys in the file, mostly).
  std::vector<ConfigError> take_sorted ()
  {
    std::stable_sort (errors_.begin (), errors_.end (),
        [] (const ConfigError &a, const ConfigError &b) { return a.line < b.line; });
    return std::move (errors_);
  }

 private:
  std::string file_;
  std::vector<ConfigError> errors_;
};

enum class Read { absent, invalid, ok };

// One TOML table being read: typed getters that report type and range
// problems under the table's key path, and remember which keys were read so
// that every other key can be reported as unknown.
class TableReader {
 public:
  TableReader (Diagnostics &diagnostics, const toml::table &table, std::string path)
      : diagnostics_ (diagnostics), table_ (table), path_ (std::move (path))
  {
  }

  int line () const { return line_of (table_); }
  const std::string &path () const { return path_; }

  std::string key_path (std::string_view key) const
  {
    return path_.empty () ? std::string (key) : path_ + "." + std::string (key);
  }

  const toml::node *find (std::string_view key)
  {
    known_.emplace (key);
    return table_.get (key);
  }

  // The line of `key` if present, else of the table (for missing keys).
  int line_of_key (std::string_view key) const
  {
    const toml::node *node = table_.get (key);
    return node ? line_of (*node) : line ();
  }

  void error (std::string_view key, std::string message)
  {
    diagnostics_.add (line_of_key (key), key_path (key), std::move (message));
  }

  void error_at (int line, std::string key_path, std::string message)
  {
    diagnostics_.add (line, std::move (key_path), std::move (message));
  }

  void missing (std::string_view key, std::string_view why)
  {
    diagnostics_.add (line (), key_path (key), "missing (" + std::string (why) + ")");
  }

  Read read_string (std::string_view key, std::string &out)
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

  // A string that must not be empty; `secret` ones are never quoted anyway.
  Read read_nonempty_string (std::string_view key, std::string &out)
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

  Read read_bool (std::string_view key, bool &out)
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

  template <typename T>
  Read read_integer (std::string_view key, T &out, int64_t min, int64_t max)
  {
    const toml::node *node = find (key);
    if (!node)
      return Read::absent;
    if (!node->is_integer ()) {
      error (key, std::string ("must be an integer (got ") + type_name (*node) + ")");
      return Read::invalid;
    }
    int64_t value = node->as_integer ()->get ();
    if (value < min || value > max) {
      error (key, "must be between " + std::to_string (min) + " and " + std::to_string (max) +
          " (got " + std::to_string (value) + ")");
      return Read::invalid;
    }
    out = static_cast<T> (value);
    return Read::ok;
  }

  Read read_choice (std::string_view key, std::string &out,
      std::initializer_list<const char *> choices)
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

  // A duration: an integer in `integer_unit_ms` (1 = milliseconds, 1000 =
  // seconds), or a string with a unit.  Kept in milliseconds; with seconds as
  // the unit, only whole seconds are accepted.
  Read read_duration_ms (std::string_view key, uint64_t &out_ms, uint64_t integer_unit_ms,
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

  // Every key not read so far is a mistake: a typo must not pass silently.
  // `hints` explains keys that users of other tools (neolink) will try.
  void check_unknown_keys (const std::map<std::string, std::string> &hints = {})
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

 private:
  Diagnostics &diagnostics_;
  const toml::table &table_;
  std::string path_;
  std::set<std::string> known_;
};

// How many multicast groups (addresses) server.multicast_range holds.
uint64_t
multicast_group_count (const ServerConfig &server)
{
  std::optional<uint32_t> first = parse_ipv4_multicast (server.multicast_first);
  std::optional<uint32_t> last = parse_ipv4_multicast (server.multicast_last);
  return first && last && *first <= *last ? uint64_t (*last) - *first + 1 : 0;
}

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

// A relative certificate path is taken from the config file's folder, so
// that the same file works whatever the service's working directory.
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

// Parses TOML text; a syntax error becomes the only ConfigError.
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

// ---- vendor URL templates (gst-presets/vendors.toml) ------------------------

struct VendorPreset {
  std::string main;
  std::string sub;
  uint16_t port = kDefaultVendorPort;
};

class VendorLibrary {
 public:
  explicit VendorLibrary (std::string path) : path_ (std::move (path)) {}

  // Loads the file on first use.  False when it cannot be used; its problems
  // are then in errors() (reported once, whatever the number of cameras).
  bool ensure_loaded ()
  {
    if (!loaded_) {
      loaded_ = true;
      std::string text;
      std::string why;
      if (read_whole_file (path_, text, why)) {
        usable_ = load (text);
      } else {
        ConfigError error;
        error.file = path_;
        error.message = "cannot read the vendor URL templates: " + why;
        errors_.push_back (std::move (error));
      }
    }
    return usable_;
  }

  // Reads the templates from `text` instead of the file (which is then only
  // named in messages).  False when they cannot be used, as above.
  bool load_text (const std::string &text)
  {
    loaded_ = true;
    usable_ = load (text);
    return usable_;
  }

  std::vector<ConfigError> take_errors () { return std::move (errors_); }

  const VendorPreset *find (const std::string &name) const
  {
    auto found = presets_.find (ascii_lower (name));
    return found == presets_.end () ? nullptr : &found->second;
  }

  std::string names () const
  {
    std::vector<std::string> names;
    for (const auto &[name, preset] : presets_)
      names.push_back (name);
    return join (names, ", ");
  }

 private:
  bool load (const std::string &text)
  {
    std::optional<toml::table> root = parse_toml (text, path_, errors_);
    if (!root)
      return false;

    Diagnostics diagnostics (path_);
    std::map<std::string, std::pair<std::string, int>> aliases;  // name -> (target, line)
    for (auto &&[key, node] : *root) {
      std::string name (key.str ());
      int line = static_cast<int> (key.source ().begin.line);
      if (name.empty () || !std::all_of (name.begin (), name.end (), [] (char c) {
            return is_name_char (c) && !g_ascii_isupper (c);
          })) {
        diagnostics.add (line, name, "vendor names must be lower-case letters, digits, - and _");
        continue;
      }
      const toml::table *table = node.as_table ();
      if (!table) {
        diagnostics.add (line, name, std::string ("must be a table (got ") + type_name (node) + ")");
        continue;
      }
      TableReader reader (diagnostics, *table, name);
      std::string description;
      reader.read_string ("description", description);
      std::string alias;
      if (reader.read_nonempty_string ("alias", alias) == Read::ok) {
        for (const char *other : {"main", "sub", "port"}) {
          if (reader.find (other))
            reader.error (other, "an alias takes its URLs from " + quote (alias));
        }
        aliases[name] = {ascii_lower (alias), reader.line_of_key ("alias")};
        reader.check_unknown_keys ();
        continue;
      }
      VendorPreset preset;
      reader.read_integer ("port", preset.port, 1, 65535);
      bool complete = true;
      for (auto [stream, target] : {std::pair<const char *, std::string *> {"main", &preset.main},
               {"sub", &preset.sub}}) {
        Read read = reader.read_nonempty_string (stream, *target);
        if (read == Read::absent)
          reader.missing (stream, "the URL template of the stream");
        if (read != Read::ok || !check_template (reader, stream, *target, preset.port))
          complete = false;
      }
      reader.check_unknown_keys ();
      if (complete)
        presets_[name] = preset;
    }
    for (const auto &[name, target] : aliases) {
      auto found = presets_.find (target.first);
      if (found == presets_.end ())
        diagnostics.add (target.second, name + ".alias",
            "no vendor " + quote (target.first) + " with URLs of its own in this file");
      else
        presets_[name] = found->second;
    }
    std::vector<ConfigError> problems = diagnostics.take_sorted ();
    errors_.insert (errors_.end (), problems.begin (), problems.end ());
    return errors_.empty ();
  }

  static bool check_template (TableReader &reader, const char *stream, const std::string &text,
      uint16_t port)
  {
    std::string sample;
    std::string bad;
    if (text.find ("{address}") == std::string::npos) {
      reader.error (stream, "must contain {address}");
      return false;
    }
    if (!expand_template (text, "192.0.2.10", std::to_string (port), sample, bad)) {
      reader.error (stream, bad == "{" || bad == "}"
          ? "unbalanced " + quote (bad) + " (placeholders are {address} and {port})"
          : "unknown placeholder " + bad + " (placeholders are {address} and {port})");
      return false;
    }
    std::string problem = check_location (sample);
    if (problem.empty () && sample.compare (0, 4, "rtsp") != 0 && sample.compare (0, 4, "http") != 0)
      problem = "must be an rtsp, rtsps, http or https URL";
    if (problem.empty () && sample.find ('@') != std::string::npos)
      problem = "must not hold credentials: they go in each camera's username and password";
    if (!problem.empty ()) {
      reader.error (stream, problem);
      return false;
    }
    return true;
  }

  std::string path_;
  bool loaded_ = false;
  bool usable_ = false;
  std::map<std::string, VendorPreset> presets_;
  std::vector<ConfigError> errors_;
};

// ---- sections ----------------------------------------------------------------

// Calls `read` with the table at `key` of `parent`, or reports that it is not
// a table.  `expected` shows how to write it.
void
with_table (Diagnostics &diagnostics, TableReader &parent, std::string_view key,
    std::string_view expected, const std::function<void (TableReader &)> &read)
{
  const toml::node *node = parent.find (key);
  if (!node)
    return;
  if (const toml::table *table = node->as_table ()) {
    TableReader reader (diagnostics, *table, parent.key_path (key));
    read (reader);
    reader.check_unknown_keys ();
  } else {
    parent.error (key, "must be a table, written " + std::string (expected) + " (got " +
        type_name (*node) + ")");
  }
}

// Calls `read` for each table of the array of tables at `key`.
void
with_array_of_tables (Diagnostics &diagnostics, TableReader &parent, std::string_view key,
    const std::function<void (TableReader &, size_t)> &read)
{
  const toml::node *node = parent.find (key);
  if (!node)
    return;
  const toml::array *array = node->as_array ();
  if (!array) {
    parent.error (key, "must be an array of tables, written [[" + std::string (key) +
        "]] (got " + type_name (*node) + ")");
    return;
  }
  for (size_t i = 0; i < array->size (); i++) {
    const toml::node &element = *array->get (i);
    std::string path = parent.key_path (key) + "[" + std::to_string (i) + "]";
    if (const toml::table *table = element.as_table ()) {
      TableReader reader (diagnostics, *table, path);
      read (reader, i);
    } else {
      diagnostics.add (line_of (element), path,
          std::string ("must be a table (got ") + type_name (element) + ")");
    }
  }
}

// The groups and ports given to cameras with multicast = true.
void
read_multicast (TableReader &reader, ServerConfig &server)
{
  std::string range;
  if (reader.read_nonempty_string ("multicast_range", range) == Read::ok) {
    std::string first, last;
    std::optional<uint32_t> first_address, last_address;
    if (split_range (range, first, last)) {
      first_address = parse_ipv4_multicast (first);
      last_address = parse_ipv4_multicast (last);
    }
    if (!first_address || !last_address)
      reader.error ("multicast_range", "must be IPv4 multicast addresses (224.0.0.0 to "
          "239.255.255.255) written \"FIRST-LAST\", such as \"239.255.42.0-239.255.42.255\" "
          "(got " + quote (range) + ")");
    else if (*first_address > *last_address)
      reader.error ("multicast_range", "the first address must not come after the last (got " +
          quote (range) + ")");
    else {
      server.multicast_first = first;
      server.multicast_last = last;
    }
  }

  std::string ports;
  if (reader.read_nonempty_string ("multicast_ports", ports) == Read::ok) {
    std::string first, last;
    std::optional<uint16_t> first_port, last_port;
    if (split_range (ports, first, last)) {
      first_port = parse_port (first);
      last_port = parse_port (last);
    }
    if (!first_port || !last_port)
      reader.error ("multicast_ports", "must be ports (1 to 65535) written \"FIRST-LAST\", "
          "such as \"5000-5999\" (got " + quote (ports) + ")");
    else if (*first_port % 2 != 0)
      reader.error ("multicast_ports", "must start on an even port: RTP goes to even ports, "
          "RTCP to the next one (got " + quote (ports) + ")");
    else if (*last_port <= *first_port)
      reader.error ("multicast_ports", "must hold at least two ports, for RTP and RTCP, the "
          "first one lower (got " + quote (ports) + ")");
    else {
      server.multicast_port_first = *first_port;
      server.multicast_port_last = *last_port;
    }
  }

  reader.read_integer ("multicast_ttl", server.multicast_ttl, 1, 255);

  if (reader.read_nonempty_string ("multicast_iface", server.multicast_iface) == Read::ok &&
      if_nametoindex (server.multicast_iface.c_str ()) == 0) {
    reader.error ("multicast_iface", "no network interface " + quote (server.multicast_iface) +
        " on this machine");
    server.multicast_iface.clear ();
  }
}

void
read_server (TableReader &reader, ServerConfig &server, const std::string &config_path)
{
  if (reader.read_nonempty_string ("bind", server.bind) == Read::ok &&
      !is_ip_or_host_name (server.bind))
    reader.error ("bind", "must be an IP address or a host name (got " + quote (server.bind) + ")");
  reader.read_integer ("port", server.port, 0, 65535);
  reader.read_integer ("max_clients", server.max_clients, 0, std::numeric_limits<unsigned>::max ());
  uint64_t timeout_ms;
  if (reader.read_duration_ms ("session_timeout", timeout_ms, 1000, 1000, 86400 * 1000ull,
          "between 1s and 24h") == Read::ok)
    server.session_timeout = static_cast<unsigned> (timeout_ms / 1000);
  uint64_t slow_ms;
  if (reader.read_duration_ms ("slow_client_timeout", slow_ms, 1000, 0, 86400 * 1000ull,
          "between 0s (never) and 24h") == Read::ok)
    server.slow_client_timeout = static_cast<unsigned> (slow_ms / 1000);
  reader.read_integer ("threads", server.threads, 0, 1024);

  read_multicast (reader, server);

  Read cert = reader.read_nonempty_string ("tls_cert", server.tls_cert);
  Read key = reader.read_nonempty_string ("tls_key", server.tls_key);
  if (cert == Read::ok && key == Read::absent)
    reader.missing ("tls_key", "tls_cert and tls_key go together");
  if (key == Read::ok && cert == Read::absent)
    reader.missing ("tls_cert", "tls_cert and tls_key go together");
  for (auto [name, file] : {std::pair<const char *, std::string *> {"tls_cert", &server.tls_cert},
           {"tls_key", &server.tls_key}}) {
    if (file->empty ())
      continue;
    *file = resolve_beside (config_path, *file);
    std::string why;
    if (!is_readable_file (*file, why))
      reader.error (name, "cannot read " + quote (*file) + ": " + why);
  }
}

void
read_http (TableReader &reader, HttpConfig &http)
{
  reader.read_bool ("enabled", http.enabled);
  // The HTTP server listens on an address, not a name (it does not resolve).
  if (reader.read_nonempty_string ("bind", http.bind) == Read::ok
      && !is_ip_address (http.bind))
    reader.error ("bind", "must be an IP address, such as \"127.0.0.1\" or \"0.0.0.0\" (got "
        + quote (http.bind) + ")");
  reader.read_integer ("port", http.port, 0, 65535);
}

const std::map<std::string, std::string> kUserHints = {
  {"pass", "camrelay calls it password"},
};

void
read_user (TableReader &reader, UserConfig &user, std::map<std::string, int> &seen)
{
  if (reader.read_nonempty_string ("name", user.name) == Read::absent) {
    reader.missing ("name", "every user needs a name");
  } else if (!user.name.empty ()) {
    if (user.name.find (':') != std::string::npos ||
        std::any_of (user.name.begin (), user.name.end (), [] (char c) {
          return g_ascii_isspace (c) || static_cast<unsigned char> (c) < 0x20;
        })) {
      reader.error ("name", "must not contain ':', spaces or control characters (got " +
          quote (user.name) + ")");
    } else {
      auto [previous, inserted] = seen.emplace (user.name, reader.line_of_key ("name"));
      if (!inserted)
        reader.error ("name", quote (user.name) + " is already defined at line " +
            std::to_string (previous->second));
    }
  }

  Read password = reader.read_nonempty_string ("password", user.password);
  Read hash = reader.read_nonempty_string ("password_hash", user.password_hash);
  if (password == Read::absent && hash == Read::absent)
    reader.missing ("password", "give password or password_hash");
  if (password == Read::ok && hash == Read::ok)
    reader.error ("password_hash", "give password or password_hash, not both");
  if (hash == Read::ok) {
    const std::string prefix = "sha256:";
    std::string digest = user.password_hash.substr (std::min (prefix.size (), user.password_hash.size ()));
    if (user.password_hash.compare (0, prefix.size (), prefix) != 0 || digest.size () != 64 ||
        !std::all_of (digest.begin (), digest.end (), [] (char c) { return g_ascii_isxdigit (c); })) {
      reader.error ("password_hash",
          "must be \"sha256:\" followed by the 64 hexadecimal digits of the password's SHA-256");
      user.password_hash.clear ();
    } else {
      user.password_hash = prefix + ascii_lower (digest);
    }
  }
  reader.check_unknown_keys (kUserHints);
}

// What neolink users will write, and what camrelay calls it.
const std::map<std::string, std::string> kRootHints = {
  {"bind", "camrelay has it as [server] bind"},
  {"bind_port", "camrelay has it as [server] port"},
  {"certificate", "camrelay has it as [server] tls_cert and tls_key"},
  {"tls_client_auth", "camrelay does not check client certificates; use [[users]]"},
};

const std::map<std::string, std::string> kCameraHints = {
  {"permitted_users", "camrelay calls it users"},
  {"uid", "camrelay connects over RTSP: give location, or vendor and address"},
  {"channel_id", "give the channel in location"},
  {"idle_disconnect", "camrelay has on_demand and idle_timeout"},
  {"port", "write the camera's RTSP port in address, as \"192.0.2.10:8554\""},
};

void
read_camera (TableReader &reader, CameraConfig &camera, VendorLibrary &vendors,
    const std::map<std::string, int> &user_lines, std::map<std::string, std::pair<size_t, int>> &names,
    size_t index, bool &vendor_errors_reported)
{
  camera.line = reader.line ();

  if (reader.read_nonempty_string ("name", camera.name) == Read::absent) {
    reader.missing ("name", "every camera needs a name: it is served as rtsp://HOST:PORT/NAME");
  } else if (!camera.name.empty ()) {
    if (!std::all_of (camera.name.begin (), camera.name.end (), is_name_char)) {
      reader.error ("name", "may only contain letters, digits, '-' and '_', as it becomes the "
          "mount path (got " + quote (camera.name) + ")");
    } else {
      auto [previous, inserted] = names.emplace (camera.name,
          std::make_pair (index, reader.line_of_key ("name")));
      if (!inserted)
        reader.error ("name", quote (camera.name) + " is already used by cameras[" +
            std::to_string (previous->second.first) + "] at line " +
            std::to_string (previous->second.second));
    }
  }

  Read location = reader.read_nonempty_string ("location", camera.location);
  Read vendor = reader.read_nonempty_string ("vendor", camera.vendor);
  Read address = reader.read_nonempty_string ("address", camera.address);
  std::string stream;
  Read stream_read = reader.read_choice ("stream", stream, {"main", "sub"});
  if (location == Read::ok && vendor != Read::absent)
    reader.error ("vendor", "give location or vendor, not both");
  if (location == Read::absent && vendor == Read::absent)
    reader.missing ("location", "give location, or vendor and address");
  if (vendor == Read::absent) {
    if (address != Read::absent)
      reader.error ("address", "is only used with vendor (for other cameras, give location)");
    if (stream_read != Read::absent)
      reader.error ("stream", "is only used with vendor (for other cameras, give location)");
  }
  if (location == Read::ok) {
    std::string problem = check_location (camera.location);
    if (!problem.empty ())
      reader.error ("location", problem);
  } else if (vendor == Read::ok && location == Read::absent) {
    camera.stream = stream_read == Read::ok ? stream : "main";
    std::optional<Address> parsed;
    if (address == Read::absent) {
      reader.missing ("address", "vendor " + quote (camera.vendor) + " needs the camera's "
          "IP address or host name");
    } else if (address == Read::ok) {
      parsed = parse_address (camera.address);
      if (!parsed)
        reader.error ("address", "must be an IP address or host name, optionally with "
            ":port (got " + quote (camera.address) + ")");
    }
    if (!vendors.ensure_loaded ()) {
      if (!vendor_errors_reported)
        reader.error ("vendor", "the vendor URL templates cannot be used (see above); "
            "give location instead");
      vendor_errors_reported = true;
    } else if (const VendorPreset *preset = vendors.find (camera.vendor)) {
      if (parsed) {
        std::string bad;
        uint16_t port = parsed->port ? parsed->port : preset->port;
        expand_template (camera.stream == "sub" ? preset->sub : preset->main, parsed->host,
            std::to_string (port), camera.location, bad);
      }
    } else {
      reader.error ("vendor", "unknown vendor " + quote (camera.vendor) + " (known: " +
          vendors.names () + "; for another camera, give location)");
    }
  }

  Read username = reader.read_nonempty_string ("username", camera.username);
  if (reader.read_nonempty_string ("password", camera.password) == Read::ok &&
      username == Read::absent)
    reader.error ("password", "needs username");

  reader.read_choice ("transport", camera.transport, {"tcp", "udp", "auto"});
  reader.read_bool ("audio", camera.audio);
  reader.read_duration_ms ("buffer_time", camera.buffer_time_ms, 1, 1, 600 * 1000,
      "between 1ms and 10m");
  reader.read_choice ("fallback", camera.fallback, {"none", "freeze", "slate"});
  reader.read_bool ("on_demand", camera.on_demand);
  uint64_t idle_ms;
  if (reader.read_duration_ms ("idle_timeout", idle_ms, 1000, 0, 86400 * 1000ull,
          "between 0s and 24h") == Read::ok)
    camera.idle_timeout = static_cast<unsigned> (idle_ms / 1000);
  reader.read_integer ("max_clients", camera.max_clients, 0, std::numeric_limits<unsigned>::max ());
  reader.read_bool ("enabled", camera.enabled);
  reader.read_bool ("multicast", camera.multicast);
  if (reader.read_nonempty_string ("pipeline", camera.pipeline) == Read::ok) {
    std::string problem = check_pipeline_fragment (camera.pipeline);
    if (!problem.empty ())
      reader.error ("pipeline", problem);
  }

  if (const toml::node *node = reader.find ("users")) {
    const toml::array *array = node->as_array ();
    if (!array) {
      reader.error ("users", std::string ("must be an array of user names, such as "
          "[\"alice\"] (got ") + type_name (*node) + ")");
    } else {
      for (size_t i = 0; i < array->size (); i++) {
        const toml::node &element = *array->get (i);
        std::string path = reader.key_path ("users") + "[" + std::to_string (i) + "]";
        const auto *name = element.as_string ();
        if (!name) {
          reader.error_at (line_of (element), path,
              std::string ("must be a user name (got ") + type_name (element) + ")");
          continue;
        }
        if (!user_lines.count (name->get ()))
          reader.error_at (line_of (element), path,
              "no user " + quote (name->get ()) + " in [[users]]");
        camera.users.push_back (name->get ());
      }
    }
  }
  reader.check_unknown_keys (kCameraHints);
}

}  // namespace

ConfigResult
parse_config (const std::string &text, const std::string &path, const std::string &vendor_templates)
{
  ConfigResult result;
  const std::string file = path.empty () ? "(config)" : path;
  std::optional<toml::table> root = parse_toml (text, file, result.errors);
  if (!root)
    return result;

  Config config;
  config.path = path;
  Diagnostics diagnostics (file);
  TableReader reader (diagnostics, *root, "");

  with_table (diagnostics, reader, "server", "[server]", [&] (TableReader &server) {
    read_server (server, config.server, path);
  });

  if (const toml::node *node = reader.find ("http")) {
    if (node->is_boolean ())
      config.http.enabled = node->as_boolean ()->get ();
    else
      with_table (diagnostics, reader, "http", "[http], or http = false", [&] (TableReader &http) {
        read_http (http, config.http);
      });
  }
  if (config.http.enabled && config.http.port != 0 && config.http.port == config.server.port &&
      (config.http.bind == config.server.bind || config.server.bind == "0.0.0.0" ||
          config.server.bind == "::" || config.http.bind == "0.0.0.0" || config.http.bind == "::"))
    diagnostics.add (reader.line_of_key ("http"), "http.port",
        "is the RTSP port too (server.port = " + std::to_string (config.server.port) + ")");

  std::map<std::string, int> user_lines;
  with_array_of_tables (diagnostics, reader, "users", [&] (TableReader &user, size_t) {
    config.users.emplace_back ();
    read_user (user, config.users.back (), user_lines);
  });

  VendorLibrary vendors (vendor_templates);
  bool vendor_errors_reported = false;
  std::map<std::string, std::pair<size_t, int>> camera_names;
  // Each camera with multicast gets a group of its own (see relay.cpp).
  const uint64_t multicast_groups = multicast_group_count (config.server);
  uint64_t multicast_cameras = 0;
  with_array_of_tables (diagnostics, reader, "cameras", [&] (TableReader &camera, size_t index) {
    config.cameras.emplace_back ();
    read_camera (camera, config.cameras.back (), vendors, user_lines, camera_names, index,
        vendor_errors_reported);
    if (config.cameras.back ().multicast && config.cameras.back ().enabled &&
        ++multicast_cameras > multicast_groups)
      camera.error ("multicast", "no multicast group left for this camera: server.multicast_range "
          "holds " + std::to_string (multicast_groups) + ", one for each camera with "
          "multicast = true");
  });
  const toml::node *cameras = root->get ("cameras");
  if (!cameras || (cameras->is_array () && cameras->as_array ()->empty ()))
    diagnostics.add (cameras ? line_of (*cameras) : 1, "cameras",
        "missing (at least one [[cameras]] entry: nothing to serve)");

  reader.check_unknown_keys (kRootHints);

  // Problems of the vendor file first: the camera errors they cause follow.
  result.errors = vendors.take_errors ();
  std::vector<ConfigError> problems = diagnostics.take_sorted ();
  result.errors.insert (result.errors.end (), problems.begin (), problems.end ());
  if (result.errors.empty ())
    result.config = std::move (config);
  return result;
}

ConfigResult
load_config (const std::string &path, const std::string &vendor_templates)
{
  std::string text;
  std::string why;
  if (!read_whole_file (path, text, why)) {
    ConfigResult result;
    ConfigError error;
    error.file = path;
    error.message = "cannot read the configuration: " + why;
    result.errors.push_back (std::move (error));
    return result;
  }
  return parse_config (text, path, vendor_templates);
}

std::vector<ConfigError>
check_vendor_templates (const std::string &text, const std::string &path)
{
  VendorLibrary vendors (path.empty () ? "(vendors)" : path);
  vendors.load_text (text);
  return vendors.take_errors ();
}

Config
default_config ()
{
  Config config;
  config.server.bind = "127.0.0.1";
  config.http.bind = "127.0.0.1";
  CameraConfig camera;
  camera.name = "test";
  camera.location = "test://test";
  config.cameras.push_back (std::move (camera));
  return config;
}

std::string
ConfigError::to_string () const
{
  std::string text = file.empty () ? "(config)" : file;
  if (line > 0) {
    text += ":" + std::to_string (line);
    if (column > 0)
      text += ":" + std::to_string (column);
  }
  text += ": ";
  if (!key.empty ())
    text += key + ": ";
  return text + message;
}

}  // namespace camrelay::launcher
