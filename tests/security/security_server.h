// The camrelay servers of the security tests and what a well-behaved client
// does with them: start one with or without users, play, log in.
#pragma once

#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "launcher/launcher_test_util.h"
#include "security/security_wire.h"

namespace camrelay::security_test {

using launcher_test::Launcher;

inline const std::string CAMERA = "test://cam?width=160&height=120&framerate=30&gop=30";
inline const std::string USER = "alice";
inline const std::string PASSWORD = "wonder-land-7";
// How long an answer may take; how long a server may say nothing where that
// is allowed.
constexpr std::chrono::milliseconds ANSWER_WITHIN{10000};
constexpr std::chrono::milliseconds SILENCE{500};

// ---- the servers ---------------------------------------------------------------

enum class Access { ANONYMOUS, USERS };

struct Server {
  std::string config;
  std::unique_ptr<Launcher> camrelay;
  int port = 0;
  std::string auth;   // "Authorization: ...\r\n" or ""
};

inline std::string
basic (const std::string &user, const std::string &password)
{
  const std::string pair = user + ":" + password;
  gchar *encoded = g_base64_encode (reinterpret_cast<const guchar *> (pair.data ()), pair.size ());
  std::string header = std::string ("Authorization: Basic ") + encoded + "\r\n";
  g_free (encoded);
  return header;
}

inline std::string
users_section ()
{
  return "[[users]]\nname = \"" + USER + "\"\npassword = \"" + PASSWORD + "\"\n\n"
      "[[users]]\nname = \"bob\"\npassword_hash = \"sha256:"
      + launcher_test::sha256 ("builder-9") + "\"\n\n";
}

inline void
start (Server &server, Access access)
{
  const std::string users = access == Access::USERS ? users_section () : "";
  server.config = launcher_test::write_config (
      launcher_test::config_text (users + launcher_test::camera_entry ("cam", CAMERA)));
  server.camrelay = std::make_unique<Launcher> (std::vector<std::string>{"-c", server.config});
  server.port = server.camrelay->rtsp_port ();
  server.auth = access == Access::USERS ? basic (USER, PASSWORD) : "";
}

inline std::string
fill (const std::string &text, const Server &server, const std::string &session = "")
{
  const std::string host = "rtsp://127.0.0.1:" + std::to_string (server.port);
  std::string out = substitute (text, "{auth}", server.auth);
  out = substitute (out, "{url}", host + "/cam");
  out = substitute (out, "{host}", host);
  return substitute (out, "{session}", session);
}

// DESCRIBE and SETUP (interleaved), then PLAY when `play`; the session, or "".
inline std::string
prepare (Wire &wire, const Server &server, bool play)
{
  Seen &seen = wire.exchange (fill (req ("DESCRIBE", "{url}", "Accept: application/sdp\r\n")
      + transport ("RTP/AVP/TCP;unicast;interleaved=0-1"), server), 2, ANSWER_WITHIN);
  if (seen.statuses.size () < 2 || seen.statuses[0] != 200 || seen.statuses[1] != 200)
    return "";
  std::string session = seen.header (1, "Session");
  session = session.substr (0, session.find (';'));
  if (play) {
    wire.exchange (fill (req ("PLAY", "{url}", "Session: {session}\r\n"), server, session), 3,
        ANSWER_WITHIN);
    if (seen.statuses.size () < 3 || seen.statuses[2] != 200)
      return "";
  }
  return session;
}

// A new client DESCRIBEs, SETUPs and PLAYs the camera and receives video.
inline testing::AssertionResult
fresh_client_plays (const Server &server, const char *source = nullptr)
{
  Wire wire (server.port, source);
  if (!wire.ok ())
    return testing::AssertionFailure () << "cannot connect";
  const auto started = Clock::now ();
  const std::string session = prepare (wire, server, true);
  if (session.empty ())
    return testing::AssertionFailure ()
        << "DESCRIBE, SETUP, PLAY: " << testing::PrintToString (wire.seen ().heads);
  if (!wire.wait_frames (1, 10s))
    return testing::AssertionFailure () << "no video within 10 s";
  wire.exchange (fill (req ("TEARDOWN", "{url}", "Session: {session}\r\n"), server, session), 4,
      ANSWER_WITHIN);
  const double ms = std::chrono::duration<double, std::milli> (Clock::now () - started).count ();
  if (ms > 15000)
    return testing::AssertionFailure () << "took " << ms << " ms";
  return testing::AssertionSuccess ();
}

// Whether process `pid` runs (a process that crashed is a zombie until the
// Launcher reaps it).
inline bool
alive (int pid)
{
  std::ifstream stat ("/proc/" + std::to_string (pid) + "/stat");
  std::string text;
  std::getline (stat, text);
  const size_t end = text.rfind (')');
  return end != std::string::npos && end + 2 < text.size () && text[end + 2] != 'Z'
      && text[end + 2] != 'X';
}

// ---- logging in ----------------------------------------------------------------
// A DESCRIBE of the camera with `authorization` on `wire`; its status.
inline int
describe_with (Wire &wire, const Server &server, const std::string &authorization)
{
  const size_t before = wire.seen ().statuses.size ();
  const Seen &seen = wire.exchange (fill (substitute (req ("DESCRIBE", "{url}",
      "Accept: application/sdp\r\n"), "{auth}", authorization), server), before + 1, ANSWER_WITHIN);
  return seen.statuses.size () > before ? seen.statuses[before] : (seen.closed ? -2 : -1);
}

// The realm and nonce of the Digest challenge to a DESCRIBE without
// credentials on `wire`; false when there is none.
inline bool
challenge (Wire &wire, const Server &server, std::string &realm, std::string &nonce)
{
  if (describe_with (wire, server, "") != 401)
    return false;
  realm = digest_param (wire.seen ().heads.back (), "realm");
  nonce = digest_param (wire.seen ().heads.back (), "nonce");
  return !nonce.empty ();
}

}  // namespace camrelay::security_test
