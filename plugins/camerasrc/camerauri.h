// camerasrc's handling of its `location`: which URIs it takes, where the
// credentials are, and how to keep them out of logs, messages and stats.
// Apart from the element so that the fuzz targets (fuzz/) can call them.
#pragma once

#include <string>

namespace camrelay::camerasrc {

// Whether `uri` is a URI with a scheme camerasrc opens: rtsp, rtsps, http,
// https, file or test (in any case).  Every function here takes a text with
// a bad percent-escape ('%' not followed by two hexadecimal digits, or
// "%00") for no URI at all.
bool has_supported_scheme (const char *uri);

// The URI without its user information, for logs, messages and stats;
// "(invalid URI)" when it is not a URI.
std::string redact_uri (const std::string &uri);

// `text` (which came from a child: an error message may quote the URI) with
// every credential we know of replaced by "***": `user_pw`, the user
// information of `location` and the password in it, wherever they appear;
// `user_id` and the user name of `location` where they stand as a word (not
// next to a letter or digit), so that a short name does not eat every word
// holding it.  Those of `location` both as written and percent-decoded.
std::string redact_text (std::string text, const std::string &location,
    const std::string &user_id, const std::string &user_pw);

struct UriParts {
  std::string scheme;
  std::string without_userinfo;  // redact_uri (location)
  std::string user;              // percent-decoded
  std::string password;          // percent-decoded
};

// `location` taken apart for the chain that opens it; `user_id` and
// `user_pw`, when not empty, override the credentials of the URI.
UriParts split_uri (const std::string &location, const std::string &user_id,
    const std::string &user_pw);

}  // namespace camrelay::camerasrc
