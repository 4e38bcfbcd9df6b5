// The text side of RTSP for rtspload: URLs, responses, SDP, Basic and Digest
// authentication.  Used on connection set-up and keepalives only, so plain
// std::string is fine here.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "rtp.h"

namespace rtspload {

struct Url {
  std::string host;
  int port = 554;
  std::string user, password;  // from rtsp://user:password@host/...
  std::string text;            // the URL without credentials, as sent in requests
};

// Parses rtsp://[user[:password]@]host[:port][/path]; false on anything else.
bool parse_url (const std::string &text, Url &url);

struct Response {
  int status = 0;  // 200, 401...
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;

  // The first header called `name` (case-insensitive), or "".
  std::string header (const char *name) const;
  // Every header called `name`.
  std::vector<std::string> all (const char *name) const;
};

// Parses the status line and headers in `head` (up to, not including, the
// blank line).  False when it is not an RTSP response (a request from the
// server, or garbage).
bool parse_response_head (const char *head, size_t size, Response &response);

// What rtspload needs of a DESCRIBE answer: the first video medium.
struct VideoMedia {
  bool found = false;
  std::string control;  // absolute URL to SETUP
  int payload_type = -1;
  Codec codec = Codec::unknown;
  std::string encoding;  // as in a=rtpmap, for the report
};

// `base` is the Content-Base (or Content-Location, or the request URL).
VideoMedia parse_sdp (const std::string &sdp, const std::string &base);

// "Session: ID;timeout=60": the ID, and the timeout in seconds (60 when absent).
void parse_session (const std::string &value, std::string &id, int &timeout_s);

// The RTP channel of "Transport: ...;interleaved=A-B", or -1.
int parse_interleaved (const std::string &transport);

// Credentials for the requests after a 401.
class Authenticator {
 public:
  // Chooses Digest when offered, else Basic, from the WWW-Authenticate
  // headers.  False when neither is offered or no user is known.
  bool challenge (const std::vector<std::string> &www_authenticate, const std::string &user,
      const std::string &password);
  bool active () const { return scheme_ != Scheme::none; }
  // After Digest was refused: Basic, if the server offered it too (a server
  // may know some users by a password hash only, which rules out Digest).
  bool fall_back_to_basic ()
  {
    if (scheme_ != Scheme::digest || !basic_offered_)
      return false;
    scheme_ = Scheme::basic;
    return true;
  }
  // The value of the Authorization header for `method` on `uri`.
  std::string header (const char *method, const std::string &uri);

 private:
  enum class Scheme { none, basic, digest };
  Scheme scheme_ = Scheme::none;
  std::string user_, password_, realm_, nonce_, opaque_, algorithm_;
  bool qop_auth_ = false;
  bool basic_offered_ = false;
  unsigned nonce_count_ = 0;
};

}  // namespace rtspload
