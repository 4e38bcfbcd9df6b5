// Reads camrelay.toml with toml++ and checks every value.  Every problem is
// collected rather than stopping at the first one, so that a single
// `camrelay --check` shows everything there is to fix, each as
// "FILE:LINE: key: what is wrong".  No message ever quotes a password: values
// are quoted only for keys that cannot hold one, and a location is described,
// never echoed (its user information may carry credentials).  The reading
// machinery (typed table reads, diagnostics) is in config_reader.cpp; this
// file holds what camrelay.toml means: its sections, vendors and checks.
#include "config.h"
#include "config_reader.h"
#include "config_values.h"

#include "common/element_names.h"
#include "common/uri_schemes.h"

#include <net/if.h>

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
#include <string_view>
#include <utility>

namespace camrelay::launcher {

using namespace config_reader;

namespace {

// A vendor's port when neither it nor the camera's address names one: RTSP's.
const uint16_t kDefaultVendorPort = camera_uri_scheme ("rtsp")->default_port;

// The nicks of a camerasrc enum, as the choices of a configuration key.
template <size_t N>
std::vector<const char *>
nicks (const char *const (&names)[N])
{
  return std::vector<const char *> (std::begin (names), std::end (names));
}

}  // namespace

// ---- pipeline fragments -------------------------------------------------------

ElementPtr
parse_pipeline_fragment (const std::string &fragment, std::string &problem)
{
  GError *error = nullptr;
  GstElement *parsed = gst_parse_bin_from_description (fragment.c_str (), TRUE, &error);
  ElementPtr bin{parsed ? GST_ELEMENT (gst_object_ref_sink (parsed)) : nullptr};
  if (error || !bin) {
    problem = std::string ("not a GStreamer pipeline fragment")
        + (error ? std::string (": ") + error->message : "");
    g_clear_error (&error);
    return nullptr;
  }
  PadPtr sink{gst_element_get_static_pad (bin.get (), "sink")};
  PadPtr src{gst_element_get_static_pad (bin.get (), "src")};
  // Only the first unlinked pad of each direction is ghosted: any other
  // one left means a second input or output.
  PadPtr other_sink{gst_bin_find_unlinked_pad (GST_BIN (bin.get ()), GST_PAD_SINK)};
  PadPtr other_src{gst_bin_find_unlinked_pad (GST_BIN (bin.get ()), GST_PAD_SRC)};
  if (!sink || !src || other_sink || other_src) {
    problem = "must have exactly one unlinked input and one unlinked output, such as "
              "\"h264parse ! identity\"";
    return nullptr;
  }
  problem.clear ();
  return bin;
}

namespace {

// How many multicast groups (addresses) server.multicast_range holds.
uint64_t
multicast_group_count (const ServerConfig &server)
{
  std::optional<uint32_t> first = parse_ipv4_multicast (server.multicast_first);
  std::optional<uint32_t> last = parse_ipv4_multicast (server.multicast_last);
  return first && last && *first <= *last ? uint64_t (*last) - *first + 1 : 0;
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
    if (problem.empty ()) {
      const UriSchemeRow *row = camera_uri_scheme (g_uri_peek_scheme (sample.c_str ()));
      if (!row || !is_network_scheme (*row))
        problem = "must be an " + camera_uri_scheme_list (true) + " URL";
    }
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
  reader.read_integer ("max_connections", server.max_connections, 0,
      std::numeric_limits<unsigned>::max ());
  reader.read_integer ("max_connections_per_ip", server.max_connections_per_ip, 0,
      std::numeric_limits<unsigned>::max ());
  uint64_t login_ms;
  if (reader.read_duration_ms ("login_timeout", login_ms, 1000, 0, 3600 * 1000ull,
          "between 0s (never) and 1h") == Read::ok)
    server.login_timeout = static_cast<unsigned> (login_ms / 1000);
  reader.read_bool ("instant_start", server.instant_start);
  reader.read_integer ("gop_cache_max_bytes", server.gop_cache_max_bytes, 0, 1ll << 32);
  reader.read_integer ("burst_max_bytes", server.burst_max_bytes, 0, 1ll << 32);

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
  reader.read_integer ("max_connections", http.max_connections, 0,
      std::numeric_limits<unsigned>::max ());
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

  reader.read_choice ("transport", camera.transport, nicks (camerasrc_names::PROTOCOLS));
  reader.read_bool ("audio", camera.audio);
  reader.read_duration_ms ("buffer_time", camera.buffer_time_ms, 1, 1, 600 * 1000,
      "between 1ms and 10m");
  reader.read_choice ("fallback", camera.fallback, nicks (camerasrc_names::FALLBACKS));
  reader.read_duration_ms ("fallback_after", camera.fallback_after_ms, 1, 0, 60 * 1000,
      "between 0s (only once the camera is declared stalled) and 1m");
  reader.read_bool ("on_demand", camera.on_demand);
  uint64_t idle_ms;
  if (reader.read_duration_ms ("idle_timeout", idle_ms, 1000, 0, 86400 * 1000ull,
          "between 0s and 24h") == Read::ok)
    camera.idle_timeout = static_cast<unsigned> (idle_ms / 1000);
  reader.read_integer ("max_clients", camera.max_clients, 0, std::numeric_limits<unsigned>::max ());
  reader.read_bool ("enabled", camera.enabled);
  reader.read_bool ("multicast", camera.multicast);
  bool instant_start = true;
  if (reader.read_bool ("instant_start", instant_start) == Read::ok)
    camera.instant_start = instant_start;
  // Needs GStreamer initialised (camrelay does before reading its
  // configuration); without it, nothing is checked here and the camera
  // reports the problem when it starts.
  if (reader.read_nonempty_string ("pipeline", camera.pipeline) == Read::ok
      && gst_is_initialized ()) {
    std::string problem;
    if (!parse_pipeline_fragment (camera.pipeline, problem))
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
