// The launcher's configuration: parsing, defaults, vendor presets and every
// validation message, checked word for word with its line.
#include "config.h"

#include "common/element_names.h"
#include "common/gstref.h"
#include "common/uri_schemes.h"

#include <gtest/gtest.h>

#include <glib.h>
#include <glib/gstdio.h>
#include <gst/gst.h>

#include <fstream>
#include <string>
#include <vector>

#ifndef CAMRELAY_PRESETS_DIR
#error "CAMRELAY_PRESETS_DIR must name the source tree's gst-presets folder"
#endif

namespace camrelay::launcher {
namespace {

const std::string kPresets = CAMRELAY_PRESETS_DIR;
const std::string kVendors = kPresets + "/vendors.toml";

ConfigResult
parse (const std::string &text, const std::string &vendors = kVendors)
{
  return parse_config (text, "cams.toml", vendors);
}

std::vector<std::string>
messages (const ConfigResult &result)
{
  std::vector<std::string> out;
  for (const ConfigError &error : result.errors)
    out.push_back (error.to_string ());
  return out;
}

// The one camera of `camera_keys` (after a [[cameras]] header on line 1).
CameraConfig
parse_camera (const std::string &camera_keys)
{
  ConfigResult result = parse ("[[cameras]]\n" + camera_keys);
  EXPECT_TRUE (result.errors.empty ()) << testing::PrintToString (messages (result));
  if (!result.config || result.config->cameras.size () != 1)
    return {};
  return result.config->cameras[0];
}

// A folder of its own, removed with everything in it.
class TempDir {
 public:
  TempDir ()
  {
    GError *error = nullptr;
    char *made = g_dir_make_tmp ("camrelay-config-XXXXXX", &error);
    EXPECT_NE (made, nullptr);
    path_ = made ? made : "/nonexistent";
    g_free (made);
    g_clear_error (&error);
  }
  ~TempDir ()
  {
    for (const std::string &file : files_)
      g_remove (file.c_str ());
    g_rmdir (path_.c_str ());
  }
  std::string write (const std::string &name, const std::string &contents)
  {
    std::string file = path_ + "/" + name;
    std::ofstream (file) << contents;
    files_.push_back (file);
    return file;
  }
  const std::string &path () const { return path_; }

 private:
  std::string path_;
  std::vector<std::string> files_;
};

// ---- a full configuration -------------------------------------------------------

TEST (Config, EveryKeyIsRead)
{
  TempDir dir;
  std::string cert = dir.write ("cert.pem", "-----BEGIN CERTIFICATE-----\n");
  std::string key = dir.write ("key.pem", "-----BEGIN PRIVATE KEY-----\n");
  std::string text =
      "[server]\n"
      "bind = \"::\"\n"
      "port = 10554\n"
      "max_clients = 500\n"
      "session_timeout = \"2m\"\n"
      "slow_client_timeout = \"30s\"\n"
      "threads = 16\n"
      "tls_cert = \"" + cert + "\"\n"
      "tls_key = \"key.pem\"\n"  // relative: beside the config file
      "multicast_range = \"239.1.2.3 - 239.1.2.10\"\n"
      "multicast_ports = \"6000-6001\"\n"
      "multicast_ttl = 16\n"
      "multicast_iface = \"lo\"\n"
      "\n"
      "[http]\n"
      "enabled = true\n"
      "bind = \"0.0.0.0\"\n"
      "port = 9090\n"
      "\n"
      "[[users]]\n"
      "name = \"alice\"\n"
      "password = \"wonderland\"\n"
      "\n"
      "[[users]]\n"
      "name = \"nvr\"\n"
      "password_hash = \"sha256:5E884898DA28047151D0E56F8DC6292773603D0D6AABBDD62A11EF721D1542D8\"\n"
      "\n"
      "[[cameras]]\n"
      "name = \"front-door_1\"\n"
      "vendor = \"Hikvision\"\n"
      "address = \"192.0.2.10:10554\"\n"
      "stream = \"sub\"\n"
      "username = \"admin\"\n"
      "password = \"p@ss:word\"\n"
      "transport = \"udp\"\n"
      "audio = false\n"
      "buffer_time = \"1.5s\"\n"
      "fallback = \"slate\"\n"
      "on_demand = true\n"
      "idle_timeout = 45\n"
      "max_clients = 7\n"
      "users = [\"alice\", \"nvr\"]\n"
      "enabled = false\n"
      "multicast = true\n"
      "pipeline = \"videorate\"\n"
      "\n"
      "[[cameras]]\n"
      "name = \"yard\"\n"
      "location = \"rtsps://192.0.2.11:322/live\"\n";
  std::string file = dir.write ("camrelay.toml", text);

  ConfigResult result = load_config (file, kVendors);
  ASSERT_TRUE (result.errors.empty ()) << testing::PrintToString (messages (result));
  ASSERT_TRUE (result.config);
  const Config &config = *result.config;
  EXPECT_EQ (config.path, file);

  EXPECT_EQ (config.server.bind, "::");
  EXPECT_EQ (config.server.port, 10554);
  EXPECT_EQ (config.server.max_clients, 500u);
  EXPECT_EQ (config.server.session_timeout, 120u);
  EXPECT_EQ (config.server.slow_client_timeout, 30u);
  EXPECT_EQ (config.server.threads, 16u);
  EXPECT_EQ (config.server.tls_cert, cert);
  EXPECT_EQ (config.server.tls_key, dir.path () + "/key.pem");
  EXPECT_EQ (config.server.multicast_first, "239.1.2.3");
  EXPECT_EQ (config.server.multicast_last, "239.1.2.10");
  EXPECT_EQ (config.server.multicast_port_first, 6000);
  EXPECT_EQ (config.server.multicast_port_last, 6001);
  EXPECT_EQ (config.server.multicast_ttl, 16u);
  EXPECT_EQ (config.server.multicast_iface, "lo");

  EXPECT_TRUE (config.http.enabled);
  EXPECT_EQ (config.http.bind, "0.0.0.0");
  EXPECT_EQ (config.http.port, 9090);

  ASSERT_EQ (config.users.size (), 2u);
  EXPECT_EQ (config.users[0].name, "alice");
  EXPECT_EQ (config.users[0].password, "wonderland");
  EXPECT_EQ (config.users[0].password_hash, "");
  EXPECT_EQ (config.users[1].name, "nvr");
  EXPECT_EQ (config.users[1].password, "");
  // Hex digits are kept in lower case, whatever the case written.
  EXPECT_EQ (config.users[1].password_hash,
      "sha256:5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8");

  ASSERT_EQ (config.cameras.size (), 2u);
  const CameraConfig &camera = config.cameras[0];
  EXPECT_EQ (camera.name, "front-door_1");
  EXPECT_EQ (camera.location, "rtsp://192.0.2.10:10554/Streaming/Channels/102");
  EXPECT_EQ (camera.vendor, "Hikvision");
  EXPECT_EQ (camera.address, "192.0.2.10:10554");
  EXPECT_EQ (camera.stream, "sub");
  EXPECT_EQ (camera.username, "admin");
  EXPECT_EQ (camera.password, "p@ss:word");
  EXPECT_EQ (camera.transport, "udp");
  EXPECT_FALSE (camera.audio);
  EXPECT_EQ (camera.buffer_time_ms, 1500u);
  EXPECT_EQ (camera.fallback, "slate");
  EXPECT_TRUE (camera.on_demand);
  EXPECT_EQ (camera.idle_timeout, 45u);
  EXPECT_EQ (camera.max_clients, 7u);
  EXPECT_EQ (camera.users, (std::vector<std::string>{"alice", "nvr"}));
  EXPECT_FALSE (camera.enabled);
  EXPECT_TRUE (camera.multicast);
  EXPECT_EQ (camera.pipeline, "videorate");
  EXPECT_EQ (camera.line, 28);

  EXPECT_EQ (config.cameras[1].name, "yard");
  EXPECT_EQ (config.cameras[1].location, "rtsps://192.0.2.11:322/live");
  EXPECT_EQ (config.cameras[1].vendor, "");
  EXPECT_EQ (config.cameras[1].stream, "");
  EXPECT_EQ (config.cameras[1].line, 47);
}

// The bounds on what clients may cost (docs/security.md).
TEST (Config, ConnectionBoundsAreRead)
{
  ConfigResult result = parse ("[server]\n"
                               "max_connections = 2000\n"
                               "max_connections_per_ip = 0\n"
                               "login_timeout = \"30s\"\n"
                               "\n"
                               "[http]\n"
                               "max_connections = 20\n"
                               "\n"
                               "[[cameras]]\nname = \"cam\"\nlocation = \"test://cam\"\n");
  ASSERT_TRUE (result.config) << testing::PrintToString (messages (result));
  EXPECT_EQ (result.config->server.max_connections, 2000u);
  EXPECT_EQ (result.config->server.max_connections_per_ip, 0u);
  EXPECT_EQ (result.config->server.login_timeout, 30u);
  EXPECT_EQ (result.config->http.max_connections, 20u);
}

TEST (Config, InstantStartAndFallbackKeysAreRead)
{
  ConfigResult result = parse ("[server]\n"
                               "instant_start = false\n"
                               "gop_cache_max_bytes = 1000000\n"
                               "burst_max_bytes = 200000\n"
                               "\n"
                               "[[cameras]]\nname = \"a\"\nlocation = \"test://a\"\n"
                               "instant_start = true\nfallback_after = \"250ms\"\n"
                               "[[cameras]]\nname = \"b\"\nlocation = \"test://b\"\n"
                               "fallback_after = 0\n");
  ASSERT_TRUE (result.config) << testing::PrintToString (messages (result));
  const Config &config = *result.config;
  EXPECT_FALSE (config.server.instant_start);
  EXPECT_EQ (config.server.gop_cache_max_bytes, 1000000u);
  EXPECT_EQ (config.server.burst_max_bytes, 200000u);
  ASSERT_EQ (config.cameras.size (), 2u);
  EXPECT_EQ (config.cameras[0].instant_start, std::optional<bool> (true));
  EXPECT_EQ (config.cameras[0].fallback_after_ms, 250u);
  EXPECT_EQ (config.cameras[1].instant_start, std::nullopt);  // the server's
  EXPECT_EQ (config.cameras[1].fallback_after_ms, 0u);

  ConfigResult bad = parse ("[server]\ninstant_start = \"yes\"\nburst_max_bytes = -1\n"
                            "[[cameras]]\nname = \"a\"\nlocation = \"test://a\"\n"
                            "fallback_after = \"2m\"\n");
  ASSERT_FALSE (bad.config);
  const std::string all = testing::PrintToString (messages (bad));
  EXPECT_NE (all.find ("server.instant_start"), std::string::npos) << all;
  EXPECT_NE (all.find ("server.burst_max_bytes"), std::string::npos) << all;
  EXPECT_NE (all.find ("fallback_after"), std::string::npos) << all;
}

TEST (Config, DefaultsOfAMinimalFile)
{
  ConfigResult result = parse ("[[cameras]]\nname = \"cam\"\nlocation = \"rtsp://192.0.2.1/s\"\n");
  ASSERT_TRUE (result.config) << testing::PrintToString (messages (result));
  const Config &config = *result.config;
  EXPECT_EQ (config.path, "cams.toml");
  EXPECT_EQ (config.server.bind, "0.0.0.0");
  EXPECT_EQ (config.server.port, 8554);
  EXPECT_EQ (config.server.max_clients, 0u);
  EXPECT_EQ (config.server.session_timeout, 60u);
  EXPECT_EQ (config.server.slow_client_timeout, 10u);
  EXPECT_EQ (config.server.threads, 0u);
  EXPECT_EQ (config.server.max_connections, 5000u);
  EXPECT_EQ (config.server.max_connections_per_ip, 256u);
  EXPECT_EQ (config.server.login_timeout, 10u);
  EXPECT_TRUE (config.server.instant_start);
  EXPECT_EQ (config.server.gop_cache_max_bytes, 8u << 20);
  EXPECT_EQ (config.server.burst_max_bytes, 8u << 20);
  EXPECT_EQ (config.http.max_connections, 1000u);
  EXPECT_EQ (config.server.tls_cert, "");
  EXPECT_EQ (config.server.tls_key, "");
  EXPECT_EQ (config.server.multicast_first, "239.255.42.0");
  EXPECT_EQ (config.server.multicast_last, "239.255.42.255");
  EXPECT_EQ (config.server.multicast_port_first, 5000);
  EXPECT_EQ (config.server.multicast_port_last, 5999);
  EXPECT_EQ (config.server.multicast_ttl, 1u);
  EXPECT_EQ (config.server.multicast_iface, "");
  EXPECT_TRUE (config.http.enabled);
  EXPECT_EQ (config.http.bind, "127.0.0.1");
  EXPECT_EQ (config.http.port, 8080);
  EXPECT_TRUE (config.users.empty ());
  ASSERT_EQ (config.cameras.size (), 1u);
  const CameraConfig &camera = config.cameras[0];
  EXPECT_EQ (camera.name, "cam");
  EXPECT_EQ (camera.location, "rtsp://192.0.2.1/s");
  EXPECT_EQ (camera.username, "");
  EXPECT_EQ (camera.password, "");
  EXPECT_EQ (camera.transport, "tcp");
  EXPECT_TRUE (camera.audio);
  EXPECT_EQ (camera.buffer_time_ms, 2000u);
  EXPECT_EQ (camera.fallback, "freeze");
  EXPECT_EQ (camera.fallback_after_ms, 500u);
  EXPECT_EQ (camera.instant_start, std::nullopt);
  EXPECT_FALSE (camera.on_demand);
  EXPECT_EQ (camera.idle_timeout, 30u);
  EXPECT_EQ (camera.max_clients, 0u);
  EXPECT_TRUE (camera.users.empty ());
  EXPECT_TRUE (camera.enabled);
  EXPECT_FALSE (camera.multicast);
  EXPECT_EQ (camera.pipeline, "");
  EXPECT_EQ (camera.line, 1);
}

TEST (Config, ExampleFileIsValid)
{
  ConfigResult result = load_config (kPresets + "/camrelay.example.toml", kVendors);
  ASSERT_TRUE (result.config) << testing::PrintToString (messages (result));
  ASSERT_EQ (result.config->cameras.size (), 3u);
  EXPECT_EQ (result.config->cameras[0].location, "rtsp://192.168.1.20:554/Preview_01_main");
  EXPECT_EQ (result.config->cameras[1].idle_timeout, 120u);
  EXPECT_EQ (result.config->cameras[2].location, "test://test");
}

TEST (Config, DefaultConfig)
{
  Config config = default_config ();
  EXPECT_EQ (config.path, "");
  EXPECT_EQ (config.server.bind, "127.0.0.1");
  EXPECT_EQ (config.server.port, 8554);
  EXPECT_TRUE (config.server.tls_cert.empty ());
  EXPECT_TRUE (config.http.enabled);
  EXPECT_EQ (config.http.bind, "127.0.0.1");
  EXPECT_EQ (config.http.port, 8080);
  EXPECT_TRUE (config.users.empty ());
  ASSERT_EQ (config.cameras.size (), 1u);
  EXPECT_EQ (config.cameras[0].name, "test");
  EXPECT_EQ (config.cameras[0].location, "test://test");
  EXPECT_TRUE (config.cameras[0].enabled);
  EXPECT_FALSE (config.cameras[0].on_demand);
}

// ---- http -------------------------------------------------------------------------

TEST (Config, HttpCanBeTurnedOff)
{
  ConfigResult result = parse ("http = false\n[[cameras]]\nname = \"a\"\nlocation = \"test://a\"\n");
  ASSERT_TRUE (result.config) << testing::PrintToString (messages (result));
  EXPECT_FALSE (result.config->http.enabled);

  result = parse ("[http]\nenabled = false\n[[cameras]]\nname = \"a\"\nlocation = \"test://a\"\n");
  ASSERT_TRUE (result.config) << testing::PrintToString (messages (result));
  EXPECT_FALSE (result.config->http.enabled);
}

// ---- vendors ----------------------------------------------------------------------

struct VendorCase {
  const char *vendor;
  const char *main;
  const char *sub;
};

TEST (Config, EveryVendorAndStream)
{
  const VendorCase cases[] = {
    {"reolink", "rtsp://192.0.2.5:554/Preview_01_main", "rtsp://192.0.2.5:554/Preview_01_sub"},
    {"hikvision", "rtsp://192.0.2.5:554/Streaming/Channels/101",
        "rtsp://192.0.2.5:554/Streaming/Channels/102"},
    {"hilook", "rtsp://192.0.2.5:554/Streaming/Channels/101",
        "rtsp://192.0.2.5:554/Streaming/Channels/102"},
    {"dahua", "rtsp://192.0.2.5:554/cam/realmonitor?channel=1&subtype=0",
        "rtsp://192.0.2.5:554/cam/realmonitor?channel=1&subtype=1"},
    {"amcrest", "rtsp://192.0.2.5:554/cam/realmonitor?channel=1&subtype=0",
        "rtsp://192.0.2.5:554/cam/realmonitor?channel=1&subtype=1"},
    {"axis", "rtsp://192.0.2.5:554/axis-media/media.amp?videocodec=h264",
        "rtsp://192.0.2.5:554/axis-media/media.amp?videocodec=h264&resolution=640x360"},
    {"uniview", "rtsp://192.0.2.5:554/unicast/c1/s0/live", "rtsp://192.0.2.5:554/unicast/c1/s1/live"},
    {"tapo", "rtsp://192.0.2.5:554/stream1", "rtsp://192.0.2.5:554/stream2"},
  };
  for (const VendorCase &c : cases) {
    SCOPED_TRACE (c.vendor);
    std::string keys = "name = \"c\"\nvendor = \"" + std::string (c.vendor) +
        "\"\naddress = \"192.0.2.5\"\nusername = \"admin\"\npassword = \"secret\"\n";
    CameraConfig main = parse_camera (keys);
    EXPECT_EQ (main.location, c.main);
    EXPECT_EQ (main.stream, "main");
    EXPECT_EQ (main.vendor, c.vendor);
    // Credentials go to user-id/user-pw, never into the URL.
    EXPECT_EQ (main.location.find ("secret"), std::string::npos);
    EXPECT_EQ (main.username, "admin");
    EXPECT_EQ (main.password, "secret");
    EXPECT_EQ (parse_camera (keys + "stream = \"main\"\n").location, c.main);
    CameraConfig sub = parse_camera (keys + "stream = \"sub\"\n");
    EXPECT_EQ (sub.location, c.sub);
    EXPECT_EQ (sub.stream, "sub");
  }
}

TEST (Config, VendorAddressForms)
{
  auto location = [] (const std::string &address) {
    return parse_camera ("name = \"c\"\nvendor = \"tapo\"\naddress = \"" + address + "\"\n").location;
  };
  EXPECT_EQ (location ("cam.lan"), "rtsp://cam.lan:554/stream1");
  EXPECT_EQ (location ("cam.lan:8554"), "rtsp://cam.lan:8554/stream1");
  EXPECT_EQ (location ("fd00::5"), "rtsp://[fd00::5]:554/stream1");
  EXPECT_EQ (location ("[fd00::5]"), "rtsp://[fd00::5]:554/stream1");
  EXPECT_EQ (location ("[fd00::5]:10554"), "rtsp://[fd00::5]:10554/stream1");
  // A NUL ends the address for the C functions, not for TOML: refused, not cut short.
  EXPECT_EQ (messages (parse ("[[cameras]]\nname = \"c\"\nvendor = \"tapo\"\n"
                              "address = \"fd00::5\\u0000x\"\n")),
      (std::vector<std::string>{"cams.toml:4: cameras[0].address: must not contain a NUL "
          "character (\\u0000)"}));
  EXPECT_EQ (messages (parse ("[http]\nbind = \"127.0.0.1\\u0000x\"\n[[cameras]]\nname = \"c\"\n"
                              "location = \"test://c\"\n")),
      (std::vector<std::string>{"cams.toml:2: http.bind: must not contain a NUL character "
          "(\\u0000)"}));
  // An IPv6 zone would need %25 in the location: refused.
  EXPECT_FALSE (parse ("[[cameras]]\nname = \"c\"\nvendor = \"tapo\"\n"
                       "address = \"fe80::1%eth0\"\n").config);
  // Vendor names are matched without regard to case.
  EXPECT_EQ (parse_camera ("name = \"c\"\nvendor = \"TAPO\"\naddress = \"h\"\n").location,
      "rtsp://h:554/stream1");
}

TEST (Config, VendorErrors)
{
  EXPECT_EQ (messages (parse ("[[cameras]]\nname = \"c\"\nvendor = \"foscam\"\naddress = \"h\"\n")),
      (std::vector<std::string>{"cams.toml:3: cameras[0].vendor: unknown vendor \"foscam\" "
          "(known: amcrest, axis, dahua, hikvision, hilook, reolink, tapo, uniview; "
          "for another camera, give location)"}));
  EXPECT_EQ (messages (parse ("[[cameras]]\nname = \"c\"\nvendor = \"tapo\"\n")),
      (std::vector<std::string>{"cams.toml:1: cameras[0].address: missing (vendor \"tapo\" "
          "needs the camera's IP address or host name)"}));
  EXPECT_EQ (messages (parse ("[[cameras]]\nname = \"c\"\nvendor = \"tapo\"\naddress = \"h:0\"\n"
                              "stream = \"mainStream\"\n")),
      (std::vector<std::string>{
          "cams.toml:4: cameras[0].address: must be an IP address or host name, optionally "
          "with :port (got \"h:0\")",
          "cams.toml:5: cameras[0].stream: must be one of main, sub (got \"mainStream\")"}));
  EXPECT_EQ (messages (parse ("[[cameras]]\nname = \"c\"\nlocation = \"test://c\"\n"
                              "vendor = \"tapo\"\naddress = \"h\"\n")),
      (std::vector<std::string>{"cams.toml:4: cameras[0].vendor: give location or vendor, not both"}));
  EXPECT_EQ (messages (parse ("[[cameras]]\nname = \"c\"\nlocation = \"test://c\"\n"
                              "address = \"h\"\nstream = \"sub\"\n")),
      (std::vector<std::string>{
          "cams.toml:4: cameras[0].address: is only used with vendor (for other cameras, give location)",
          "cams.toml:5: cameras[0].stream: is only used with vendor (for other cameras, give location)"}));
}

TEST (Config, VendorFileProblems)
{
  const std::string camera = "[[cameras]]\nname = \"c\"\nvendor = \"tapo\"\naddress = \"h\"\n";
  // Not needed, not read: a config without vendor cameras does not care.
  EXPECT_TRUE (parse ("[[cameras]]\nname = \"c\"\nlocation = \"test://c\"\n", "/nonexistent.toml").config);

  EXPECT_EQ (messages (parse (camera + camera, "/nonexistent.toml")),
      (std::vector<std::string>{
          "/nonexistent.toml: cannot read the vendor URL templates: No such file or directory",
          "cams.toml:3: cameras[0].vendor: the vendor URL templates cannot be used (see above); "
          "give location instead",
          "cams.toml:6: cameras[1].name: \"c\" is already used by cameras[0] at line 2"}));

  const std::string schemes = camrelay::camera_uri_scheme_list ();
  TempDir dir;
  std::string vendors = dir.write ("vendors.toml",
      "[tapo]\n"
      "main = \"rtsp://{address}:{port}/{channel}\"\n"
      "sub = \"rtsp://admin:pw@{address}/x\"\n"
      "[acme]\n"
      "main = \"ftp://{address}/x\"\n"
      "sub = \"rtsp://host/x\"\n"
      "colour = 1\n"
      "[oem]\n"
      "alias = \"nobody\"\n"
      "[Bad]\n"
      "alias = \"tapo\"\n");
  EXPECT_EQ (messages (parse (camera, vendors)),
      (std::vector<std::string>{
          vendors + ":2: tapo.main: unknown placeholder {channel} (placeholders are {address} and {port})",
          vendors + ":3: tapo.sub: must not hold credentials: they go in each camera's username and password",
          vendors + ":5: acme.main: scheme \"ftp\" is not supported (use " + schemes + ")",
          vendors + ":6: acme.sub: must contain {address}",
          vendors + ":7: acme.colour: unknown key",
          vendors + ":9: oem.alias: no vendor \"nobody\" with URLs of its own in this file",
          vendors + ":10: Bad: vendor names must be lower-case letters, digits, - and _",
          "cams.toml:3: cameras[0].vendor: the vendor URL templates cannot be used (see above); "
          "give location instead"}));
}

// The same checks on templates given as text, as the fuzz target uses them.
TEST (Config, VendorTemplatesFromText)
{
  gchar *contents = nullptr;
  ASSERT_TRUE (g_file_get_contents (kVendors.c_str (), &contents, nullptr, nullptr));
  const std::string shipped = contents;
  g_free (contents);
  EXPECT_TRUE (check_vendor_templates (shipped, kVendors).empty ());

  std::vector<std::string> out;
  for (const ConfigError &error : check_vendor_templates (
           "[tapo]\nmain = \"rtsp://{address}/a\"\nsub = \"rtsp://{address}/{b\"\n", "v.toml"))
    out.push_back (error.to_string ());
  EXPECT_EQ (out, (std::vector<std::string>{
      "v.toml:3: tapo.sub: unbalanced \"{\" (placeholders are {address} and {port})"}));

  ASSERT_EQ (check_vendor_templates ("[tapo\n", "").size (), 1u);
  EXPECT_EQ (check_vendor_templates ("[tapo\n", "")[0].file, "(vendors)");
}

// A template reaches a camera over the network, whatever the case of its
// scheme: the schemes are the ones of common/uri_schemes.h.
TEST (Config, VendorTemplateSchemes)
{
  EXPECT_EQ (camrelay::camera_uri_scheme_list (true), "rtsp, rtsps, http or https");
  EXPECT_TRUE (check_vendor_templates (
      "[cam]\nmain = \"RTSP://{address}/a\"\nsub = \"Https://{address}:{port}/b\"\n", "v.toml")
                   .empty ());

  std::vector<std::string> out;
  for (const ConfigError &error : check_vendor_templates (
           "[cam]\nmain = \"file:///{address}/a\"\nsub = \"test://{address}\"\n", "v.toml"))
    out.push_back (error.to_string ());
  const std::string network = "must be an " + camrelay::camera_uri_scheme_list (true) + " URL";
  EXPECT_EQ (out, (std::vector<std::string>{"v.toml:2: cam.main: " + network,
                      "v.toml:3: cam.sub: " + network}));
}

// ---- one message per problem ----------------------------------------------------

struct ErrorCase {
  const char *text;
  std::string expected;
};

// Each text holds one problem; the expected message is the whole line printed.
TEST (Config, EachValidationMessage)
{
  const ErrorCase cases[] = {
    // Structure and types.
    {"server = 1\n", "cams.toml:1: server: must be a table, written [server] (got an integer)"},
    {"http = \"off\"\n", "cams.toml:1: http: must be a table, written [http], or http = false (got a string)"},
    {"[cameras]\nname = \"x\"\n",
        "cams.toml:1: cameras: must be an array of tables, written [[cameras]] (got a table)"},
    {"cameras = [1]\n", "cams.toml:1: cameras[0]: must be a table (got an integer)"},
    {"[server]\nport = \"8554\"\n", "cams.toml:2: server.port: must be an integer (got a string)"},
    {"[server]\nport = 70000\n", "cams.toml:2: server.port: must be between 0 and 65535 (got 70000)"},
    {"[server]\nbind = \"my host\"\n",
        "cams.toml:2: server.bind: must be an IP address or a host name (got \"my host\")"},
    {"[server]\nbind = \"\"\n", "cams.toml:2: server.bind: must not be empty"},
    {"[server]\nmax_clients = -1\n",
        "cams.toml:2: server.max_clients: must be between 0 and 4294967295 (got -1)"},
    {"[server]\nthreads = 5000\n", "cams.toml:2: server.threads: must be between 0 and 1024 (got 5000)"},
    {"[server]\nmax_connections = -1\n",
        "cams.toml:2: server.max_connections: must be between 0 and 4294967295 (got -1)"},
    {"[server]\nmax_connections_per_ip = \"many\"\n",
        "cams.toml:2: server.max_connections_per_ip: must be an integer (got a string)"},
    {"[http]\nmax_connections = -2\n",
        "cams.toml:2: http.max_connections: must be between 0 and 4294967295 (got -2)"},
    {"[server]\nlogin_timeout = \"2h\"\n",
        "cams.toml:2: server.login_timeout: must be between 0s (never) and 1h (got \"2h\")"},
    {"[server]\nlogin_timeout = \"2.5s\"\n",
        "cams.toml:2: server.login_timeout: must be a whole number of seconds (got \"2.5s\")"},
    {"[server]\nsession_timeout = 0\n",
        "cams.toml:2: server.session_timeout: must be between 1s and 24h (got 0)"},
    {"[server]\nsession_timeout = \"1.5s\"\n",
        "cams.toml:2: server.session_timeout: must be a whole number of seconds (got \"1.5s\")"},
    {"[server]\nsession_timeout = 1.5\n",
        "cams.toml:2: server.session_timeout: must be a number of seconds, or a duration such as "
        "\"30s\" or \"5m\" (got a floating-point number)"},
    // Multicast.
    {"[server]\nmulticast_range = \"10.0.0.1-10.0.0.9\"\n",
        "cams.toml:2: server.multicast_range: must be IPv4 multicast addresses (224.0.0.0 to "
        "239.255.255.255) written \"FIRST-LAST\", such as \"239.255.42.0-239.255.42.255\" "
        "(got \"10.0.0.1-10.0.0.9\")"},
    {"[server]\nmulticast_range = \"ff15::1-ff15::9\"\n",
        "cams.toml:2: server.multicast_range: must be IPv4 multicast addresses (224.0.0.0 to "
        "239.255.255.255) written \"FIRST-LAST\", such as \"239.255.42.0-239.255.42.255\" "
        "(got \"ff15::1-ff15::9\")"},
    {"[server]\nmulticast_range = \"239.0.0.1-239.0.0.2-239.0.0.3\"\n",
        "cams.toml:2: server.multicast_range: must be IPv4 multicast addresses (224.0.0.0 to "
        "239.255.255.255) written \"FIRST-LAST\", such as \"239.255.42.0-239.255.42.255\" "
        "(got \"239.0.0.1-239.0.0.2-239.0.0.3\")"},
    {"[server]\nmulticast_range = \"239.0.0.9-239.0.0.1\"\n",
        "cams.toml:2: server.multicast_range: the first address must not come after the last "
        "(got \"239.0.0.9-239.0.0.1\")"},
    {"[server]\nmulticast_range = 239\n",
        "cams.toml:2: server.multicast_range: must be a string (got an integer)"},
    {"[server]\nmulticast_ports = \"5000\"\n",
        "cams.toml:2: server.multicast_ports: must hold at least two ports, for RTP and RTCP, "
        "the first one lower (got \"5000\")"},
    {"[server]\nmulticast_ports = \"6000-5000\"\n",
        "cams.toml:2: server.multicast_ports: must hold at least two ports, for RTP and RTCP, "
        "the first one lower (got \"6000-5000\")"},
    {"[server]\nmulticast_ports = \"5001-5999\"\n",
        "cams.toml:2: server.multicast_ports: must start on an even port: RTP goes to even "
        "ports, RTCP to the next one (got \"5001-5999\")"},
    {"[server]\nmulticast_ports = \"5000-70000\"\n",
        "cams.toml:2: server.multicast_ports: must be ports (1 to 65535) written "
        "\"FIRST-LAST\", such as \"5000-5999\" (got \"5000-70000\")"},
    {"[server]\nmulticast_ports = \"0-100\"\n",
        "cams.toml:2: server.multicast_ports: must be ports (1 to 65535) written "
        "\"FIRST-LAST\", such as \"5000-5999\" (got \"0-100\")"},
    {"[server]\nmulticast_ttl = 0\n",
        "cams.toml:2: server.multicast_ttl: must be between 1 and 255 (got 0)"},
    {"[server]\nmulticast_ttl = 256\n",
        "cams.toml:2: server.multicast_ttl: must be between 1 and 255 (got 256)"},
    {"[server]\nmulticast_iface = \"no-such-if0\"\n",
        "cams.toml:2: server.multicast_iface: no network interface \"no-such-if0\" on this "
        "machine"},
    {"[server]\nslow_client_timeout = -1\n",
        "cams.toml:2: server.slow_client_timeout: must be between 0s (never) and 24h (got -1)"},
    {"[server]\nslow_client_timeout = \"25h\"\n",
        "cams.toml:2: server.slow_client_timeout: must be between 0s (never) and 24h (got \"25h\")"},
    {"[server]\nslow_client_timeout = \"500ms\"\n",
        "cams.toml:2: server.slow_client_timeout: must be a whole number of seconds (got \"500ms\")"},
    {"[http]\nport = -5\n", "cams.toml:2: http.port: must be between 0 and 65535 (got -5)"},
    {"[http]\nenabled = \"yes\"\n", "cams.toml:2: http.enabled: must be true or false (got a string)"},
    {"[http]\nport = 8554\n", "cams.toml:1: http.port: is the RTSP port too (server.port = 8554)"},
    // Unknown keys, with hints.
    {"[server]\nprot = 1\n", "cams.toml:2: server.prot: unknown key (did you mean \"port\"?)"},
    {"colour = 1\n", "cams.toml:1: colour: unknown key"},
    {"bind = \"0.0.0.0\"\n", "cams.toml:1: bind: unknown key (camrelay has it as [server] bind)"},
    {"[server.tls]\ncert = 1\n", "cams.toml:1: server.tls: unknown key"},
    // Users.
    {"[[users]]\npassword = \"x\"\n", "cams.toml:1: users[0].name: missing (every user needs a name)"},
    {"[[users]]\nname = \"a:b\"\npassword = \"x\"\n",
        "cams.toml:2: users[0].name: must not contain ':', spaces or control characters (got \"a:b\")"},
    {"[[users]]\nname = \"bob\"\n",
        "cams.toml:1: users[0].password: missing (give password or password_hash)"},
    {"[[users]]\nname = \"bob\"\npassword = \"\"\n", "cams.toml:3: users[0].password: must not be empty"},
    {"[[users]]\nname = \"bob\"\npassword = \"x\"\npassword_hash = \"sha256:"
        "0000000000000000000000000000000000000000000000000000000000000000\"\n",
        "cams.toml:4: users[0].password_hash: give password or password_hash, not both"},
    {"[[users]]\nname = \"bob\"\npassword_hash = \"md5:abc\"\n",
        "cams.toml:3: users[0].password_hash: must be \"sha256:\" followed by the 64 hexadecimal "
        "digits of the password's SHA-256"},
    {"[[users]]\nname = \"bob\"\npassword = \"x\"\n[[users]]\nname = \"bob\"\npassword = \"y\"\n",
        "cams.toml:5: users[1].name: \"bob\" is already defined at line 2"},
    {"[[users]]\nname = \"bob\"\npasswd = \"x\"\npassword = \"y\"\n",
        "cams.toml:3: users[0].passwd: unknown key (did you mean \"password\"?)"},
    {"[[users]]\nname = \"bob\"\npass = \"x\"\npassword = \"y\"\n",
        "cams.toml:3: users[0].pass: unknown key (camrelay calls it password)"},
  };
  for (const ErrorCase &c : cases) {
    SCOPED_TRACE (c.text);
    std::string text = c.text;
    // A valid camera after the case's text, so that the case's problem is the
    // only one (except where the case is about cameras).
    if (text.find ("cameras") == std::string::npos)
      text += "\n[[cameras]]\nname = \"ok\"\nlocation = \"test://ok\"\n";
    EXPECT_EQ (messages (parse (text)), (std::vector<std::string>{c.expected}));
  }
}

TEST (Config, EachCameraMessage)
{
  const std::string schemes = camrelay::camera_uri_scheme_list ();
  const ErrorCase cases[] = {
    {"location = \"test://x\"\n",
        "cams.toml:1: cameras[0].name: missing (every camera needs a name: it is served as "
        "rtsp://HOST:PORT/NAME)"},
    {"name = \"front door\"\nlocation = \"test://x\"\n",
        "cams.toml:2: cameras[0].name: may only contain letters, digits, '-' and '_', as it becomes "
        "the mount path (got \"front door\")"},
    {"name = \"a/b\"\nlocation = \"test://x\"\n",
        "cams.toml:2: cameras[0].name: may only contain letters, digits, '-' and '_', as it becomes "
        "the mount path (got \"a/b\")"},
    {"name = 5\nlocation = \"test://x\"\n", "cams.toml:2: cameras[0].name: must be a string (got an integer)"},
    {"name = \"x\"\n", "cams.toml:1: cameras[0].location: missing (give location, or vendor and address)"},
    {"name = \"x\"\nlocation = \"ftp://h/x\"\n",
        "cams.toml:3: cameras[0].location: scheme \"ftp\" is not supported (use " + schemes + ")"},
    {"name = \"x\"\nlocation = \"rtsp//h/x\"\n",
        "cams.toml:3: cameras[0].location: must be a URI with the scheme " + schemes +
            ", such as rtsp://192.0.2.10/stream1"},
    {"name = \"x\"\nlocation = \"rtsp:///x\"\n", "cams.toml:3: cameras[0].location: has no host"},
    {"name = \"x\"\nlocation = \"rtsp://h/a b\"\n",
        "cams.toml:3: cameras[0].location: must not contain spaces or control characters (write %20 for a space)"},
    {"name = \"x\"\nlocation = \"file://relative.mp4\"\n",
        "cams.toml:3: cameras[0].location: must be file:///absolute/path"},
    {"name = \"x\"\nlocation = \"test://x\"\ntransport = \"tpc\"\n",
        "cams.toml:4: cameras[0].transport: must be one of tcp, udp, auto (got \"tpc\")"},
    {"name = \"x\"\nlocation = \"test://x\"\nfallback = \"black\"\n",
        "cams.toml:4: cameras[0].fallback: must be one of none, freeze, slate (got \"black\")"},
    {"name = \"x\"\nlocation = \"test://x\"\naudio = 1\n",
        "cams.toml:4: cameras[0].audio: must be true or false (got an integer)"},
    {"name = \"x\"\nlocation = \"test://x\"\nbuffer_time = \"2 seconds\"\n",
        "cams.toml:4: cameras[0].buffer_time: must be a number of milliseconds, or a duration such as "
        "\"2s\" or \"500ms\" (got \"2 seconds\")"},
    {"name = \"x\"\nlocation = \"test://x\"\nbuffer_time = 0\n",
        "cams.toml:4: cameras[0].buffer_time: must be between 1ms and 10m (got 0)"},
    {"name = \"x\"\nlocation = \"test://x\"\nbuffer_time = \"11m\"\n",
        "cams.toml:4: cameras[0].buffer_time: must be between 1ms and 10m (got \"11m\")"},
    {"name = \"x\"\nlocation = \"test://x\"\nidle_timeout = -1\n",
        "cams.toml:4: cameras[0].idle_timeout: must be between 0s and 24h (got -1)"},
    {"name = \"x\"\nlocation = \"test://x\"\nmax_clients = 1.0\n",
        "cams.toml:4: cameras[0].max_clients: must be an integer (got a floating-point number)"},
    {"name = \"x\"\nlocation = \"test://x\"\nusers = \"alice\"\n",
        "cams.toml:4: cameras[0].users: must be an array of user names, such as [\"alice\"] (got a string)"},
    {"name = \"x\"\nlocation = \"test://x\"\nusers = [\n  \"alice\",\n]\n",
        "cams.toml:5: cameras[0].users[0]: no user \"alice\" in [[users]]"},
    {"name = \"x\"\nlocation = \"test://x\"\nusers = [1]\n",
        "cams.toml:4: cameras[0].users[0]: must be a user name (got an integer)"},
    {"name = \"x\"\nlocation = \"test://x\"\npipeline = \"\"\n",
        "cams.toml:4: cameras[0].pipeline: must not be empty"},
    {"name = \"x\"\nlocation = \"test://x\"\npassword = \"secret\"\n",
        "cams.toml:4: cameras[0].password: needs username"},
    {"name = \"x\"\nlocation = \"test://x\"\ntransprot = \"tcp\"\n",
        "cams.toml:4: cameras[0].transprot: unknown key (did you mean \"transport\"?)"},
    {"name = \"x\"\nlocation = \"test://x\"\npermitted_users = [\"a\"]\n",
        "cams.toml:4: cameras[0].permitted_users: unknown key (camrelay calls it users)"},
    {"name = \"x\"\nlocation = \"test://x\"\nmulticast = \"yes\"\n",
        "cams.toml:4: cameras[0].multicast: must be true or false (got a string)"},
    {"name = \"x\"\nlocation = \"test://x\"\nenabled = 0\n",
        "cams.toml:4: cameras[0].enabled: must be true or false (got an integer)"},
    {"name = \"x\"\nlocation = \"test://x\"\non_demand = \"true\"\n",
        "cams.toml:4: cameras[0].on_demand: must be true or false (got a string)"},
  };
  for (const ErrorCase &c : cases) {
    SCOPED_TRACE (c.text);
    // The camera's [[cameras]] header is line 1; the case's text starts on line 2.
    EXPECT_EQ (messages (parse (std::string ("[[cameras]]\n") + c.text)),
        (std::vector<std::string>{c.expected}));
  }
}

TEST (Config, CamerasAreRequired)
{
  EXPECT_EQ (messages (parse ("")),
      (std::vector<std::string>{"cams.toml:1: cameras: missing (at least one [[cameras]] entry: "
          "nothing to serve)"}));
  EXPECT_EQ (messages (parse ("\n\ncameras = []\n")),
      (std::vector<std::string>{"cams.toml:3: cameras: missing (at least one [[cameras]] entry: "
          "nothing to serve)"}));
}

TEST (Config, Durations)
{
  EXPECT_EQ (parse_camera ("name = \"c\"\nlocation = \"test://c\"\nbuffer_time = 500\n").buffer_time_ms, 500u);
  EXPECT_EQ (parse_camera ("name = \"c\"\nlocation = \"test://c\"\nbuffer_time = \"500ms\"\n").buffer_time_ms, 500u);
  EXPECT_EQ (parse_camera ("name = \"c\"\nlocation = \"test://c\"\nbuffer_time = \"2s\"\n").buffer_time_ms, 2000u);
  EXPECT_EQ (parse_camera ("name = \"c\"\nlocation = \"test://c\"\nbuffer_time = \"0.25s\"\n").buffer_time_ms, 250u);
  EXPECT_EQ (parse_camera ("name = \"c\"\nlocation = \"test://c\"\nbuffer_time = \"1m\"\n").buffer_time_ms, 60000u);
  EXPECT_EQ (parse_camera ("name = \"c\"\nlocation = \"test://c\"\nidle_timeout = 0\n").idle_timeout, 0u);
  EXPECT_EQ (parse_camera ("name = \"c\"\nlocation = \"test://c\"\nidle_timeout = \"1h\"\n").idle_timeout, 3600u);
  EXPECT_EQ (parse_camera ("name = \"c\"\nlocation = \"test://c\"\nidle_timeout = \"1.5m\"\n").idle_timeout, 90u);
  EXPECT_EQ (parse_camera ("name = \"c\"\nlocation = \"test://c\"\nidle_timeout = \"3000ms\"\n").idle_timeout, 3u);
  for (const char *bad : {"\"\"", "\"s\"", "\"1.s\"", "\"1.2345s\"", "\"0.5ms\"", "\"1 s\"", "\"-1s\"",
           "\"1sec\"", "\"99999999999h\""}) {
    SCOPED_TRACE (bad);
    EXPECT_FALSE (parse (std::string ("[[cameras]]\nname = \"c\"\nlocation = \"test://c\"\nbuffer_time = ") +
        bad + "\n").config);
  }
}

TEST (Config, LocationsCamerasrcOpens)
{
  for (const char *location : {"rtsp://192.0.2.1/s", "rtsp://user:p%40ss@192.0.2.1:8554/s?x=1&y=2",
           "rtsps://cam.lan/s", "http://192.0.2.1/mjpg/video.mjpg", "https://cam.lan/video",
           "file:///srv/video/loop.mkv", "test://cam?width=640&height=360", "RTSP://[fd00::1]/s"}) {
    SCOPED_TRACE (location);
    EXPECT_EQ (parse_camera (std::string ("name = \"c\"\nlocation = \"") + location + "\"\n").location,
        location);
  }
}

// ---- relations between entries ---------------------------------------------------

// One multicast group per camera with multicast = true: a range with fewer
// groups is refused at the first camera left without one; disabled cameras
// and cameras without multicast take none.
TEST (Config, MulticastGroupsPerCamera)
{
  auto camera = [] (const std::string &name, const std::string &extra) {
    return "[[cameras]]\nname = \"" + name + "\"\nlocation = \"test://" + name + "\"\n" + extra;
  };
  const std::string server = "[server]\nmulticast_range = \"239.255.42.7 - 239.255.42.8\"\n";
  ConfigResult fits = parse (server + camera ("a", "multicast = true\n")
      + camera ("b", "multicast = true\n") + camera ("c", "")
      + camera ("d", "multicast = true\nenabled = false\n"));
  ASSERT_TRUE (fits.config) << testing::PrintToString (messages (fits));
  EXPECT_EQ (fits.config->server.multicast_first, "239.255.42.7");
  EXPECT_EQ (fits.config->server.multicast_last, "239.255.42.8");

  ConfigResult one_too_many = parse (server + camera ("a", "multicast = true\n")
      + camera ("b", "multicast = true\n") + camera ("c", "multicast = true\n"));
  EXPECT_EQ (messages (one_too_many), (std::vector<std::string>{
      "cams.toml:14: cameras[2].multicast: no multicast group left for this camera: "
      "server.multicast_range holds 2, one for each camera with multicast = true"}));

  // A single address is a range of one group.
  ConfigResult single = parse ("[server]\nmulticast_range = \"239.255.42.9\"\n"
      + camera ("a", "multicast = true\n"));
  ASSERT_TRUE (single.config) << testing::PrintToString (messages (single));
  EXPECT_EQ (single.config->server.multicast_first, "239.255.42.9");
  EXPECT_EQ (single.config->server.multicast_last, "239.255.42.9");
}

TEST (Config, DuplicateCameraNames)
{
  EXPECT_EQ (messages (parse ("[[cameras]]\nname = \"a\"\nlocation = \"test://a\"\n"
                              "[[cameras]]\nname = \"b\"\nlocation = \"test://b\"\n"
                              "[[cameras]]\nname = \"a\"\nlocation = \"test://c\"\n")),
      (std::vector<std::string>{"cams.toml:8: cameras[2].name: \"a\" is already used by cameras[0] at line 2"}));
  // Mount paths are case-sensitive: these are two cameras.
  EXPECT_TRUE (parse ("[[cameras]]\nname = \"a\"\nlocation = \"test://a\"\n"
                      "[[cameras]]\nname = \"A\"\nlocation = \"test://b\"\n").config);
}

TEST (Config, CameraUsersMustExist)
{
  const std::string users = "[[users]]\nname = \"alice\"\npassword = \"x\"\n"
                            "[[users]]\nname = \"bob\"\npassword = \"y\"\n";
  ConfigResult result = parse (users + "[[cameras]]\nname = \"c\"\nlocation = \"test://c\"\n"
                                       "users = [\"bob\"]\n");
  ASSERT_TRUE (result.config) << testing::PrintToString (messages (result));
  EXPECT_EQ (result.config->cameras[0].users, std::vector<std::string>{"bob"});

  // Users defined after the cameras that name them are fine too.
  EXPECT_TRUE (parse ("[[cameras]]\nname = \"c\"\nlocation = \"test://c\"\nusers = [\"bob\"]\n" + users).config);

  // An empty list: every user.
  result = parse (users + "[[cameras]]\nname = \"c\"\nlocation = \"test://c\"\nusers = []\n");
  ASSERT_TRUE (result.config);
  EXPECT_TRUE (result.config->cameras[0].users.empty ());

  EXPECT_EQ (messages (parse (users + "[[cameras]]\nname = \"c\"\nlocation = \"test://c\"\n"
                                      "users = [\"bob\", \"carol\", \"Alice\"]\n")),
      (std::vector<std::string>{"cams.toml:10: cameras[0].users[1]: no user \"carol\" in [[users]]",
          "cams.toml:10: cameras[0].users[2]: no user \"Alice\" in [[users]]"}));
}

TEST (Config, TlsFiles)
{
  TempDir dir;
  std::string cert = dir.write ("cert.pem", "x");
  const std::string camera = "[[cameras]]\nname = \"c\"\nlocation = \"test://c\"\n";

  EXPECT_EQ (messages (parse ("[server]\ntls_cert = \"" + cert + "\"\n" + camera)),
      (std::vector<std::string>{"cams.toml:1: server.tls_key: missing (tls_cert and tls_key go together)"}));
  EXPECT_EQ (messages (parse ("[server]\ntls_key = \"" + cert + "\"\n" + camera)),
      (std::vector<std::string>{"cams.toml:1: server.tls_cert: missing (tls_cert and tls_key go together)"}));
  EXPECT_EQ (messages (parse ("[server]\ntls_cert = \"" + cert + "\"\ntls_key = \"/nonexistent/key.pem\"\n" + camera)),
      (std::vector<std::string>{"cams.toml:3: server.tls_key: cannot read \"/nonexistent/key.pem\": "
          "No such file or directory"}));
  EXPECT_EQ (messages (parse ("[server]\ntls_cert = \"" + dir.path () + "\"\ntls_key = \"" + cert + "\"\n" + camera)),
      (std::vector<std::string>{"cams.toml:2: server.tls_cert: cannot read \"" + dir.path () +
          "\": not a regular file"}));
  // A relative path is looked for beside the config file.
  std::string file = dir.write ("tls.toml", "[server]\ntls_cert = \"cert.pem\"\ntls_key = \"missing.pem\"\n" + camera);
  EXPECT_EQ (messages (load_config (file, kVendors)),
      (std::vector<std::string>{file + ":3: server.tls_key: cannot read \"" + dir.path () +
          "/missing.pem\": No such file or directory"}));

  ConfigResult result = parse ("[server]\ntls_cert = \"" + cert + "\"\ntls_key = \"" + cert + "\"\n" + camera);
  ASSERT_TRUE (result.config) << testing::PrintToString (messages (result));
  EXPECT_EQ (result.config->server.tls_cert, cert);
}

// ---- several problems at once, and files ------------------------------------------

TEST (Config, EveryProblemIsReportedInFileOrder)
{
  const std::string text =
      "[server]\n"                        // 1
      "port = 99999\n"                    // 2
      "\n"                                // 3
      "[[users]]\n"                       // 4
      "name = \"alice\"\n"                // 5
      "\n"                                // 6
      "[[cameras]]\n"                     // 7
      "name = \"porch\"\n"                // 8
      "location = \"test://porch\"\n"     // 9
      "transport = \"tpc\"\n"             // 10
      "\n"                                // 11
      "[[cameras]]\n"                     // 12
      "name = \"porch\"\n"                // 13
      "vendor = \"reolink\"\n"            // 14
      "adress = \"192.0.2.3\"\n"          // 15
      "users = [\"bob\"]\n";              // 16
  EXPECT_EQ (messages (parse (text)), (std::vector<std::string>{
      "cams.toml:2: server.port: must be between 0 and 65535 (got 99999)",
      "cams.toml:4: users[0].password: missing (give password or password_hash)",
      "cams.toml:10: cameras[0].transport: must be one of tcp, udp, auto (got \"tpc\")",
      "cams.toml:12: cameras[1].address: missing (vendor \"reolink\" needs the camera's IP address or host name)",
      "cams.toml:13: cameras[1].name: \"porch\" is already used by cameras[0] at line 8",
      "cams.toml:15: cameras[1].adress: unknown key (did you mean \"address\"?)",
      "cams.toml:16: cameras[1].users[0]: no user \"bob\" in [[users]]",
  }));
}

TEST (Config, SyntaxError)
{
  ConfigResult result = parse ("[server]\nport = 8554\n\n[[cameras]]\nname = \"a\nlocation = \"x\"\n");
  EXPECT_FALSE (result.config);
  ASSERT_EQ (result.errors.size (), 1u);
  EXPECT_EQ (result.errors[0].line, 5);
  EXPECT_EQ (result.errors[0].column, 10);
  EXPECT_EQ (result.errors[0].to_string (),
      "cams.toml:5:10: TOML syntax error while parsing string: unescaped control characters "
      "other than TAB (U+0009) are explicitly prohibited");

  EXPECT_EQ (messages (parse ("[server]\nport = 1\nport = 2\n")),
      (std::vector<std::string>{"cams.toml:3:8: TOML syntax error while parsing key-value pair: "
          "cannot redefine existing integer 'port'"}));
}

TEST (Config, UnreadableFile)
{
  EXPECT_EQ (messages (load_config ("/nonexistent/camrelay.toml", kVendors)),
      (std::vector<std::string>{"/nonexistent/camrelay.toml: cannot read the configuration: "
          "No such file or directory"}));
  TempDir dir;
  EXPECT_EQ (messages (load_config (dir.path (), kVendors)),
      (std::vector<std::string>{dir.path () + ": cannot read the configuration: Is a directory"}));
}

TEST (Config, NoPasswordInAnyMessage)
{
  const std::string text =
      "[[users]]\nname = \"u\"\npassword = 123456789\n"
      "[[users]]\nname = \"v\"\npassword_hash = \"sha256:hunter2hunter2\"\n"
      "[[cameras]]\nname = \"c\"\nlocation = \"ftp://admin:hunter2@192.0.2.1/x\"\n"
      "[[cameras]]\nname = \"d\"\nlocation = \"rtsp://admin:hunt@r2@192.0.2.1/x\"\n"
      "[[cameras]]\nname = \"e\"\nlocation = \"rtsp://admin:hunter2@192.0.2.1/a b\"\n"
      "[[cameras]]\nname = \"f\"\nlocation = \"test://f\"\npasword = \"hunter2\"\n"
      "[[cameras]]\nname = \"g\"\nlocation = \"test://g\"\npassword = 123456789\nusername = \"u\"\n";
  std::vector<std::string> found = messages (parse (text));
  EXPECT_EQ (found.size (), 7u) << testing::PrintToString (found);
  for (const std::string &message : found) {
    EXPECT_EQ (message.find ("hunter"), std::string::npos) << message;
    EXPECT_EQ (message.find ("hunt@r"), std::string::npos) << message;
    EXPECT_EQ (message.find ("123456789"), std::string::npos) << message;
  }
  EXPECT_EQ (found[3], "cams.toml:12: cameras[1].location: user information must be percent-encoded "
                       "(write %40 for @ in a password), or use username and password");
}

TEST (Config, ErrorToString)
{
  ConfigError error;
  error.file = "a.toml";
  error.message = "cannot read";
  EXPECT_EQ (error.to_string (), "a.toml: cannot read");
  error.line = 4;
  error.key = "server.port";
  error.message = "bad";
  EXPECT_EQ (error.to_string (), "a.toml:4: server.port: bad");
  error.column = 7;
  EXPECT_EQ (error.to_string (), "a.toml:4:7: server.port: bad");
}

// transport and fallback take the words of camerasrc's protocols and fallback
// properties: the element's enums have exactly the nicks the configuration
// offers, in the same order.
TEST (Config, TransportAndFallbackAreCamerasrcNicks)
{
  gst_init (nullptr, nullptr);
  camrelay::ElementPtr camerasrc{gst_element_factory_make ("camerasrc", nullptr)};
  ASSERT_TRUE (camerasrc) << "the camrelay plugin is not in GST_PLUGIN_PATH_1_0";
  gst_object_ref_sink (camerasrc.get ());
  auto nicks_of = [&camerasrc] (const char *property) {
    GParamSpec *spec =
        g_object_class_find_property (G_OBJECT_GET_CLASS (camerasrc.get ()), property);
    std::vector<std::string> nicks;
    if (spec && G_IS_PARAM_SPEC_ENUM (spec)) {
      const GEnumClass *klass = G_PARAM_SPEC_ENUM (spec)->enum_class;
      for (guint i = 0; i < klass->n_values; i++)
        nicks.push_back (klass->values[i].value_nick);
    }
    return nicks;
  };
  namespace names = camrelay::camerasrc_names;
  EXPECT_EQ (nicks_of ("protocols"),
      std::vector<std::string> (std::begin (names::PROTOCOLS), std::end (names::PROTOCOLS)));
  EXPECT_EQ (nicks_of ("fallback"),
      std::vector<std::string> (std::begin (names::FALLBACKS), std::end (names::FALLBACKS)));
}

// With GStreamer initialised (camrelay initialises it before reading its
// configuration), a camera's pipeline fragment is built once to check it.
TEST (Config, PipelineFragmentsAreChecked)
{
  gst_init (nullptr, nullptr);
  auto one_error = [] (const std::string &fragment) {
    std::vector<std::string> errors = messages (parse (
        "[[cameras]]\nname = \"x\"\nlocation = \"test://x\"\npipeline = \"" + fragment + "\"\n"));
    return errors.size () == 1 ? errors[0] : testing::PrintToString (errors);
  };
  EXPECT_EQ (one_error ("no_such_element"),
      "cams.toml:4: cameras[0].pipeline: not a GStreamer pipeline fragment: no element "
      "\"no_such_element\"");
  const std::string one_in_one_out = "cams.toml:4: cameras[0].pipeline: must have exactly one "
      "unlinked input and one unlinked output, such as \"h264parse ! identity\"";
  EXPECT_EQ (one_error ("fakesrc"), one_in_one_out) << "no input";
  EXPECT_EQ (one_error ("fakesink"), one_in_one_out) << "no output";
  EXPECT_EQ (one_error ("identity identity"), one_in_one_out) << "two inputs, two outputs";
  EXPECT_EQ (one_error ("identity ! queue !"), "cams.toml:4: cameras[0].pipeline: not a GStreamer "
      "pipeline fragment: syntax error") << "a broken line";
  CameraConfig camera = parse_camera ("name = \"x\"\nlocation = \"test://x\"\n"
                                      "pipeline = \"identity ! queue max-size-time=0\"\n");
  EXPECT_EQ (camera.pipeline, "identity ! queue max-size-time=0");
}

TEST (Config, HttpBindIsAnAddress)
{
  EXPECT_EQ (messages (parse ("[http]\nbind = \"localhost\"\n[[cameras]]\nname = \"a\"\n"
                              "location = \"test://a\"\n")),
      (std::vector<std::string>{"cams.toml:2: http.bind: must be an IP address, such as "
                                "\"127.0.0.1\" or \"0.0.0.0\" (got \"localhost\")"}));
  ConfigResult result = parse ("[http]\nbind = \"::1\"\n[[cameras]]\nname = \"a\"\nlocation = \"test://a\"\n");
  ASSERT_TRUE (result.config) << testing::PrintToString (messages (result));
  EXPECT_EQ (result.config->http.bind, "::1");
}

// A NUL in any string would cut it short where it is used (a password, an
// interface name...): refused, without quoting the value.
TEST (Config, NulInAStringIsRefused)
{
  EXPECT_EQ (messages (parse ("[[users]]\nname = \"a\"\npassword = \"se\\u0000cret\"\n"
                              "[[cameras]]\nname = \"c\"\nlocation = \"test://c\"\n")),
      (std::vector<std::string>{"cams.toml:3: users[0].password: must not contain a NUL "
                                "character (\\u0000)"}));
  EXPECT_EQ (messages (parse ("[server]\nmulticast_iface = \"lo\\u0000x\"\n[[cameras]]\n"
                              "name = \"c\"\nlocation = \"test://c\"\n")),
      (std::vector<std::string>{"cams.toml:2: server.multicast_iface: must not contain a NUL "
                                "character (\\u0000)"}));
}

}  // namespace
}  // namespace camrelay::launcher
