// The launcher's configuration: what camrelay.toml says, with defaults
// filled in and every value validated.  Parsed by config.cpp (toml++).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/element_names.h"
#include "common/gstref.h"

namespace camrelay::launcher {

struct ServerConfig {
  std::string bind = "0.0.0.0";
  uint16_t port = 8554;
  unsigned max_clients = 0;        // all cameras together; 0 = no limit
  unsigned session_timeout = 60;   // s, RTSP session timeout
  unsigned slow_client_timeout = 10;  // s a client may stop reading before it is cut; 0 = never
  unsigned threads = 0;            // RTSP worker threads; 0 = a default for hundreds of clients
  unsigned max_connections = 5000;        // RTSP connections open at once; 0 = no limit
  unsigned max_connections_per_ip = 256;  // of them from one client address; 0 = no limit
  unsigned login_timeout = 10;  // s a connection may go without a 2xx answer (but to OPTIONS); 0 = never
  // Instant start (docs/instant-start.md): a joining client gets the
  // camera's current GOP at once.  Cameras may override `instant_start`.
  bool instant_start = true;
  uint64_t gop_cache_max_bytes = 8u << 20;  // per camera: a bigger GOP is not kept
  uint64_t burst_max_bytes = 8u << 20;      // per client: a bigger GOP is not sent
  std::string tls_cert;            // PEM files; both set = RTSPS
  std::string tls_key;
  // Multicast, for cameras with multicast = true: each such camera gets one
  // group (address) of this IPv4 range of its own, with every port of
  // multicast_port_first..last, sent with this TTL.
  std::string multicast_first = "239.255.42.0";
  std::string multicast_last = "239.255.42.255";
  uint16_t multicast_port_first = 5000;  // even: RTP on even ports, RTCP on the next
  uint16_t multicast_port_last = 5999;
  unsigned multicast_ttl = 1;            // 1 = the local network only
  std::string multicast_iface;           // "" = the interface of the system's route
};

struct HttpConfig {
  bool enabled = true;
  std::string bind = "127.0.0.1";
  uint16_t port = 8080;
  unsigned max_connections = 1000;  // open at once; 0 = no limit
};

struct UserConfig {
  std::string name;
  std::string password;        // plain text, or
  std::string password_hash;   // "sha256:<hex>" of the password
};

struct CameraConfig {
  std::string name;              // mount is "/" + name
  std::string location;          // full URI (or expanded from vendor/address/stream)
  std::string vendor;            // as given, for messages
  std::string address;           // with vendor: host or IP, optionally ":port"
  std::string stream;            // with vendor: "main" or "sub"; "" with location
  std::string username;
  std::string password;
  std::string transport = camerasrc_names::PROTOCOLS_TCP;  // camerasrc `protocols`
  bool audio = true;
  uint64_t buffer_time_ms = 2000;    // resilientqueue max-size-time
  std::string fallback = camerasrc_names::FALLBACK_FREEZE;  // camerasrc `fallback`
  uint64_t fallback_after_ms = 500;  // camerasrc `fallback-after`; 0 = once the stall is declared
  bool on_demand = false;
  unsigned idle_timeout = 30;        // s, with on_demand
  unsigned max_clients = 0;          // 0 = no limit
  std::vector<std::string> users;    // permitted users; empty = every user
  bool enabled = true;
  bool multicast = false;
  std::string pipeline;              // optional custom fragment between camerasrc and the payloader
  std::optional<bool> instant_start; // unset = server.instant_start
  int line = 0;                      // where the [[cameras]] entry starts, for messages
};

struct Config {
  std::string path;  // the file it came from, "" for the embedded default
  ServerConfig server;
  HttpConfig http;
  std::vector<UserConfig> users;
  std::vector<CameraConfig> cameras;
};

// One problem, as "FILE:LINE: key: what is wrong".
struct ConfigError {
  std::string file;
  int line = 0;                // 0 = the whole file (e.g. it cannot be read)
  int column = 0;              // TOML syntax errors only
  std::string key;
  std::string message;
  std::string to_string () const;
};

struct ConfigResult {
  std::optional<Config> config;      // set when there are no errors
  std::vector<ConfigError> errors;   // every problem found, in file order
};

// Parses and validates a configuration file.  `vendor_templates` is the path
// of the vendor URL templates (gst-presets/vendors.toml).
ConfigResult load_config (const std::string &path, const std::string &vendor_templates);
ConfigResult parse_config (const std::string &text, const std::string &path,
    const std::string &vendor_templates);

// Checks vendor URL templates given as text (what the file at
// `vendor_templates` holds; `path` only names it in messages) the way
// parse_config checks the file when a camera names a vendor: every problem,
// in file order; empty when they can be used.
std::vector<ConfigError> check_vendor_templates (const std::string &text,
    const std::string &path);

// A camera's `pipeline` fragment (what goes between camerasrc and the
// payloader) built as a bin with one ghosted input and one ghosted output;
// nullptr, with what is wrong in `problem`, when it is not one.  Needs
// GStreamer initialised.
ElementPtr parse_pipeline_fragment (const std::string &fragment, std::string &problem);

// The configuration camrelay runs with no arguments: the synthetic test
// camera at rtsp://127.0.0.1:8554/test, no users, HTTP on 127.0.0.1:8080.
Config default_config ();

}  // namespace camrelay::launcher
