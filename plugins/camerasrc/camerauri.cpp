// camerasrc's handling of its `location` (see camerauri.h).
#include "camerasrc/camerauri.h"

#include <gst/gst.h>

#include <cstring>
#include <vector>

#include "common/gstref.h"
#include "common/uri_schemes.h"

namespace camrelay::camerasrc {

namespace {

// gst_uri_from_string(), but never for a text with a '%' that does not start
// two hexadecimal digits, nor with "%00": GStreamer 1.22 dereferences NULL
// when g_uri_unescape_string() refuses a query key ("rtsp://h/x?a%0=1",
// "?a%00=1"), and no camera URI holds either.
UriPtr
parse_uri (const char *text)
{
  for (const char *percent = strchr (text, '%'); percent; percent = strchr (percent + 1, '%')) {
    if (!g_ascii_isxdigit (percent[1]) || !g_ascii_isxdigit (percent[2]) ||
        (percent[1] == '0' && percent[2] == '0'))
      return nullptr;
  }
  return UriPtr (gst_uri_from_string (text));
}

}  // namespace

bool
has_supported_scheme (const char *uri)
{
  UriPtr parsed = parse_uri (uri);
  return parsed && camera_uri_scheme (gst_uri_get_scheme (parsed.get ()));
}

// The user information as written: everything of the authority up to its
// last '@' (GstUri stops at the first one, but a '@' left unencoded in a
// password, "rtsp://admin:p@ss@host/", belongs to the password).  Empty when
// there is none.
static std::string
written_userinfo (const std::string &uri)
{
  const size_t authority = uri.find ("://");
  if (authority == std::string::npos)
    return "";
  const size_t start = authority + 3;
  const size_t end = uri.find_first_of ("/?#", start);
  const size_t at = uri.rfind ('@', end == std::string::npos ? std::string::npos : end);
  if (at == std::string::npos || at < start)
    return "";
  return uri.substr (start, at - start);
}

std::string
redact_uri (const std::string &uri)
{
  UriPtr parsed = parse_uri (uri.c_str ());
  if (!parsed)
    return "(invalid URI)";
  if (!gst_uri_get_userinfo (parsed.get ()))
    return uri;  // verbatim: nothing to hide
  // GstUri ends the user information at the first '@', so a '@' left
  // unencoded in a password ("rtsp://admin:p@ss@host/") would leave the rest
  // of the password in front of the host: everything of the authority up to
  // its last '@' goes first.  Then GstUri strips whatever it still takes for
  // user information, until none is left (each pass removes a '@').
  std::string text = uri;
  const size_t authority = text.find ("://");
  if (authority != std::string::npos) {
    const size_t end = text.find_first_of ("/?#", authority + 3);
    const size_t at = text.rfind ('@', end == std::string::npos ? std::string::npos : end);
    if (at != std::string::npos && at > authority)
      text.erase (authority + 3, at - authority - 2);
  }
  parsed = parse_uri (text.c_str ());
  for (int pass = 0; parsed && gst_uri_get_userinfo (parsed.get ()); pass++) {
    if (pass == 16)
      return "(invalid URI)";
    parsed.reset (gst_uri_make_writable (parsed.release ()));
    gst_uri_set_userinfo (parsed.get (), nullptr);
    GCharPtr stripped{gst_uri_to_string (parsed.get ())};
    text = stripped.get ();
    parsed = parse_uri (text.c_str ());
  }
  if (!parsed)
    return "(invalid URI)";
  return text;
}

// Replaces every occurrence of `secret` in `text` by "***".
static void
replace_everywhere (std::string &text, const std::string &secret)
{
  // An empty userinfo ("rtsp://@host/") is no secret, and "" is found
  // everywhere: replacing it would never end.
  if (secret.empty ())
    return;
  for (size_t at = text.find (secret); at != std::string::npos; at = text.find (secret, at + 3))
    text.replace (at, secret.size (), "***");
}

// Replaces `name` in `text` by "***" where it stands as a word: neither
// preceded nor followed by a letter or a digit.
static void
replace_word (std::string &text, const std::string &name)
{
  if (name.empty ())
    return;
  size_t at = text.find (name);
  while (at != std::string::npos) {
    const size_t end = at + name.size ();
    const bool starts = at == 0 || !g_ascii_isalnum (text[at - 1]);
    const bool ends = end == text.size () || !g_ascii_isalnum (text[end]);
    if (starts && ends) {
      text.replace (at, name.size (), "***");
      at = text.find (name, at + 3);
    } else {
      at = text.find (name, at + 1);
    }
  }
}

std::string
redact_text (std::string text, const std::string &location, const std::string &user_id,
    const std::string &user_pw)
{
  std::vector<std::string> secrets;  // removed wherever they appear
  std::vector<std::string> names;    // removed where they stand as a word
  secrets.push_back (user_pw);
  names.push_back (user_id);
  if (UriPtr parsed = parse_uri (location.c_str ())) {
    if (gst_uri_get_userinfo (parsed.get ())) {
      // As written and percent-decoded: a child may quote either.
      const std::string written = written_userinfo (location);
      GCharPtr unescaped{g_uri_unescape_string (written.c_str (), nullptr)};
      for (const std::string &userinfo : {written, std::string (unescaped ? unescaped.get () : "")}) {
        secrets.push_back (userinfo);
        const size_t colon = userinfo.find (':');
        names.push_back (userinfo.substr (0, colon));
        if (colon != std::string::npos)
          secrets.push_back (userinfo.substr (colon + 1));
      }
    }
  }
  for (const std::string &secret : secrets)
    replace_everywhere (text, secret);
  for (const std::string &name : names)
    replace_word (text, name);
  return text;
}

UriParts
split_uri (const std::string &location, const std::string &user_id, const std::string &user_pw)
{
  UriParts parts;
  UriPtr parsed = parse_uri (location.c_str ());
  if (!parsed)
    return parts;
  const gchar *scheme = gst_uri_get_scheme (parsed.get ());
  parts.scheme = scheme ? scheme : "";
  if (gst_uri_get_userinfo (parsed.get ())) {
    const std::string userinfo = written_userinfo (location);
    GCharPtr unescaped{g_uri_unescape_string (userinfo.c_str (), nullptr)};
    std::string info = unescaped ? unescaped.get () : userinfo;
    size_t colon = info.find (':');
    parts.user = info.substr (0, colon);
    if (colon != std::string::npos)
      parts.password = info.substr (colon + 1);
  }
  parts.without_userinfo = redact_uri (location);
  if (!user_id.empty ())
    parts.user = user_id;
  if (!user_pw.empty ())
    parts.password = user_pw;
  return parts;
}

}  // namespace camrelay::camerasrc
