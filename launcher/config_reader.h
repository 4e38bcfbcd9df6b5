// The machinery config.cpp reads camrelay.toml with: TOML parsing, typed
// reads of a table that report every problem as "FILE:LINE: key: what is
// wrong" (unknown keys with a "did you mean" hint), and file helpers.
#pragma once

#include <glib.h>
#include <toml++/toml.h>

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "config.h"

namespace camrelay::launcher::config_reader {

// ---- small text helpers ------------------------------------------------------

std::string ascii_lower (std::string_view text);
std::string join (const std::vector<std::string> &items, std::string_view separator);
// A letter, a digit, '_' or '-': what camera and user names are made of.
bool is_name_char (char c);
// "a string", "an integer"...: what a node is, for messages.
const char *type_name (const toml::node &node);
int line_of (const toml::node &node);

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

  const toml::node *find (std::string_view key);

  // The line of `key` if present, else of the table (for missing keys).
  int line_of_key (std::string_view key) const;

  void error (std::string_view key, std::string message);

  void error_at (int line, std::string key_path, std::string message);

  void missing (std::string_view key, std::string_view why);

  Read read_string (std::string_view key, std::string &out);

  // A string that must not be empty; `secret` ones are never quoted anyway.
  Read read_nonempty_string (std::string_view key, std::string &out);

  Read read_bool (std::string_view key, bool &out);

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
      const std::vector<const char *> &choices);

  // A duration: an integer in `integer_unit_ms` (1 = milliseconds, 1000 =
  // seconds), or a string with a unit.  Kept in milliseconds; with seconds as
  // the unit, only whole seconds are accepted.
  Read read_duration_ms (std::string_view key, uint64_t &out_ms, uint64_t integer_unit_ms,
      uint64_t min_ms, uint64_t max_ms, std::string_view range_text);

  // Every key not read so far is a mistake: a typo must not pass silently.
  // `hints` explains keys that users of other tools (neolink) will try.
  void check_unknown_keys (const std::map<std::string, std::string> &hints = {});

 private:
  Diagnostics &diagnostics_;
  const toml::table &table_;
  std::string path_;
  std::set<std::string> known_;
};


// ---- files ---------------------------------------------------------------------

// Whether `path` can be opened and is a regular file; else `why` says why not.
bool is_readable_file (const std::string &path, std::string &why);
bool read_whole_file (const std::string &path, std::string &contents, std::string &why);
// A relative certificate path is taken from the config file's folder, so
// that the same file works whatever the service's working directory.
std::string resolve_beside (const std::string &config_path, const std::string &file);
// Parses TOML text; a syntax error becomes the only ConfigError.
std::optional<toml::table> parse_toml (const std::string &text, const std::string &file,
    std::vector<ConfigError> &errors);

}  // namespace camrelay::launcher::config_reader
