// Attacks on the launcher's RTSP authentication, against the real camrelay
// binary: Digest across a reload, work before authentication, session
// hijacking, log forging and password guessing (docs/security.md).
#include <csignal>
#include <fstream>
#include <string>

#include "launcher_test_util.h"

namespace {

using namespace camrelay::launcher_test;

std::string
users_entry (const std::string &name, const std::string &password)
{
  return "[[users]]\nname = \"" + name + "\"\npassword = \"" + password + "\"\n\n";
}

[[maybe_unused]] std::string
basic (const std::string &credentials)
{
  gchar *encoded = g_base64_encode (reinterpret_cast<const guchar *> (credentials.data ()),
      credentials.size ());
  std::string header = std::string ("Authorization: Basic ") + encoded;
  g_free (encoded);
  return header;
}

std::string
url_of (int port, const std::string &path)
{
  return "rtsp://127.0.0.1:" + std::to_string (port) + "/" + path;
}

// The value of `name`="..." in a Digest challenge, or "".
std::string
challenge_param (const std::string &challenge, const std::string &name)
{
  const size_t at = challenge.find (name + "=\"");
  if (at == std::string::npos)
    return "";
  const size_t begin = at + name.size () + 2;
  return challenge.substr (begin, challenge.find ('"', begin) - begin);
}

// A Digest client's state: the server's realm and nonce from a 401.
struct DigestClient {
  std::string user, password, realm, nonce;

  bool take_challenge (const RtspProbe::Response &response)
  {
    for (const std::string &h : response.headers)
      if (h.rfind ("WWW-Authenticate: Digest", 0) == 0) {
        realm = challenge_param (h, "realm");
        nonce = challenge_param (h, "nonce");
      }
    return !realm.empty () && !nonce.empty ();
  }

  std::string header (const std::string &method, const std::string &url) const
  {
    // RFC 2069's response, as gst-rtsp-server checks it.
    auto md5 = [] (const std::string &text) {
      gchar *hex = g_compute_checksum_for_string (G_CHECKSUM_MD5, text.c_str (), -1);
      std::string result = hex;
      g_free (hex);
      return result;
    };
    const std::string response = md5 (md5 (user + ":" + realm + ":" + password) + ":" + nonce
        + ":" + md5 (method + ":" + url));
    return "Authorization: Digest username=\"" + user + "\", realm=\"" + realm + "\", nonce=\""
        + nonce + "\", uri=\"" + url + "\", response=\"" + response + "\"";
  }
};

// A Digest client in the middle of DESCRIBE -> SETUP when [[users]] is
// reloaded with a user added: its nonce stays valid, its SETUP is answered.
TEST (SecurityAuth, DigestNonceSurvivesAReloadOfUnchangedUsers)
{
  const std::string camera = camera_entry ("front", "test://front?width=320&height=240");
  const std::string path = write_config (config_text (users_entry ("alice", "wonder") + camera));
  Launcher camrelay ({"-c", path});
  const int port = camrelay.rtsp_port ();
  ASSERT_GT (port, 0) << camrelay.all_output ();
  ASSERT_NE (camrelay.wait_line ("front: connecting -> streaming", 20s), "");

  RtspProbe probe (port);
  DigestClient digest{"alice", "wonder", "", ""};
  RtspProbe::Response answer = probe.request ("DESCRIBE", "front", {"Accept: application/sdp"});
  ASSERT_EQ (answer.status, "RTSP/1.0 401 Unauthorized");
  ASSERT_TRUE (digest.take_challenge (answer));
  answer = probe.request ("DESCRIBE", "front",
      {"Accept: application/sdp", digest.header ("DESCRIBE", url_of (port, "front"))});
  ASSERT_EQ (answer.status, "RTSP/1.0 200 OK") << camrelay.all_output ();

  std::ofstream (path) << config_text (
      users_entry ("alice", "wonder") + users_entry ("bob", "builder") + camera);
  camrelay.send_signal (SIGHUP);
  ASSERT_NE (camrelay.wait_line ("reload: 2 user(s)", 10s), "") << camrelay.all_output ();

  const std::string setup_url = url_of (port, "front/stream=0");
  answer = probe.request ("SETUP", setup_url,
      {"Transport: RTP/AVP/TCP;unicast;interleaved=0-1", digest.header ("SETUP", setup_url)});
  EXPECT_EQ (answer.status, "RTSP/1.0 200 OK") << camrelay.all_output ();
  expect_clean_stop (camrelay, path);
}

}  // namespace
