#include "rtsp_message.h"

#include <glib.h>

#include <cstdlib>
#include <cstring>

namespace rtspload {

namespace {

std::string
trim (const std::string &text)
{
  size_t begin = 0, end = text.size ();
  while (begin < end && (text[begin] == ' ' || text[begin] == '\t'))
    begin++;
  while (end > begin && (text[end - 1] == ' ' || text[end - 1] == '\t' || text[end - 1] == '\r'))
    end--;
  return text.substr (begin, end - begin);
}

bool
starts_with_nocase (const std::string &text, const char *prefix)
{
  return g_ascii_strncasecmp (text.c_str (), prefix, strlen (prefix)) == 0;
}

std::string
md5_hex (const std::string &text)
{
  gchar *hex = g_compute_checksum_for_string (G_CHECKSUM_MD5, text.c_str (), text.size ());
  std::string result = hex;
  g_free (hex);
  return result;
}

// key=value or key="value" pairs after the scheme of a WWW-Authenticate header.
std::string
auth_param (const std::string &value, const char *key)
{
  const size_t key_size = strlen (key);
  size_t at = 0;
  while (at < value.size ()) {
    while (at < value.size () && (value[at] == ' ' || value[at] == ','))
      at++;
    const size_t equals = value.find ('=', at);
    if (equals == std::string::npos)
      return "";
    const std::string name = trim (value.substr (at, equals - at));
    size_t end;
    std::string found;
    if (equals + 1 < value.size () && value[equals + 1] == '"') {
      end = value.find ('"', equals + 2);
      if (end == std::string::npos)
        end = value.size ();
      found = value.substr (equals + 2, end - equals - 2);
      end = value.find (',', end);
    } else {
      end = value.find (',', equals + 1);
      found = trim (value.substr (equals + 1, end == std::string::npos ? std::string::npos
                                                                       : end - equals - 1));
    }
    if (name.size () == key_size && g_ascii_strcasecmp (name.c_str (), key) == 0)
      return found;
    if (end == std::string::npos)
      break;
    at = end + 1;
  }
  return "";
}

}  // namespace

bool
parse_url (const std::string &text, Url &url)
{
  if (!starts_with_nocase (text, "rtsp://"))
    return false;
  std::string rest = text.substr (7);
  const size_t slash = rest.find ('/');
  std::string authority = rest.substr (0, slash);
  const std::string path = slash == std::string::npos ? "/" : rest.substr (slash);
  const size_t at = authority.rfind ('@');
  if (at != std::string::npos) {
    const std::string userinfo = authority.substr (0, at);
    authority = authority.substr (at + 1);
    const size_t colon = userinfo.find (':');
    gchar *user = g_uri_unescape_string (userinfo.substr (0, colon).c_str (), nullptr);
    url.user = user ? user : "";
    g_free (user);
    if (colon != std::string::npos) {
      gchar *password = g_uri_unescape_string (userinfo.substr (colon + 1).c_str (), nullptr);
      url.password = password ? password : "";
      g_free (password);
    }
  }
  std::string host = authority;
  if (!authority.empty () && authority[0] == '[') {  // [IPv6]:port
    const size_t close = authority.find (']');
    if (close == std::string::npos)
      return false;
    host = authority.substr (1, close - 1);
    if (close + 1 < authority.size () && authority[close + 1] == ':')
      url.port = atoi (authority.c_str () + close + 2);
  } else {
    const size_t colon = authority.rfind (':');
    if (colon != std::string::npos) {
      host = authority.substr (0, colon);
      url.port = atoi (authority.c_str () + colon + 1);
    }
  }
  if (host.empty () || url.port <= 0 || url.port > 65535)
    return false;
  url.host = host;
  url.text = "rtsp://" + authority + path;
  return true;
}

std::string
Response::header (const char *name) const
{
  for (const auto &h : headers)
    if (g_ascii_strcasecmp (h.first.c_str (), name) == 0)
      return h.second;
  return "";
}

std::vector<std::string>
Response::all (const char *name) const
{
  std::vector<std::string> values;
  for (const auto &h : headers)
    if (g_ascii_strcasecmp (h.first.c_str (), name) == 0)
      values.push_back (h.second);
  return values;
}

bool
parse_response_head (const char *head, size_t size, Response &response)
{
  const std::string text (head, size);
  if (text.compare (0, 5, "RTSP/") != 0)
    return false;
  size_t line_end = text.find ("\r\n");
  const std::string status_line = text.substr (0, line_end);
  const size_t space = status_line.find (' ');
  if (space == std::string::npos)
    return false;
  response.status = atoi (status_line.c_str () + space + 1);
  while (line_end != std::string::npos && line_end + 2 < text.size ()) {
    const size_t begin = line_end + 2;
    line_end = text.find ("\r\n", begin);
    const std::string line = text.substr (begin, line_end == std::string::npos
                                                     ? std::string::npos
                                                     : line_end - begin);
    const size_t colon = line.find (':');
    if (colon != std::string::npos)
      response.headers.emplace_back (trim (line.substr (0, colon)), trim (line.substr (colon + 1)));
  }
  return response.status > 0;
}

VideoMedia
parse_sdp (const std::string &sdp, const std::string &base)
{
  VideoMedia media;
  bool in_video = false, done = false;
  std::string control;
  size_t at = 0;
  while (at < sdp.size () && !done) {
    size_t end = sdp.find ('\n', at);
    if (end == std::string::npos)
      end = sdp.size ();
    const std::string line = trim (sdp.substr (at, end - at));
    at = end + 1;
    if (line.compare (0, 2, "m=") == 0) {
      if (media.found) {
        done = true;  // past the first video medium
        break;
      }
      in_video = line.compare (0, 8, "m=video ") == 0;
      if (in_video) {
        media.found = true;
        // m=video PORT RTP/AVP PT
        const size_t last_space = line.rfind (' ');
        media.payload_type = atoi (line.c_str () + last_space + 1);
        if (media.payload_type == 26)
          media.codec = Codec::jpeg;
      }
    } else if (in_video && line.compare (0, 10, "a=control:") == 0) {
      control = line.substr (10);
    } else if (in_video && line.compare (0, 9, "a=rtpmap:") == 0) {
      const char *value = line.c_str () + 9;
      char *after = nullptr;
      const long pt = strtol (value, &after, 10);
      if (pt == media.payload_type && after) {
        std::string encoding = trim (after);
        encoding = encoding.substr (0, encoding.find ('/'));
        media.encoding = encoding;
        if (g_ascii_strcasecmp (encoding.c_str (), "H264") == 0)
          media.codec = Codec::h264;
        else if (g_ascii_strcasecmp (encoding.c_str (), "H265") == 0
            || g_ascii_strcasecmp (encoding.c_str (), "HEVC") == 0)
          media.codec = Codec::h265;
        else if (g_ascii_strcasecmp (encoding.c_str (), "JPEG") == 0)
          media.codec = Codec::jpeg;
      }
    }
  }
  if (!media.found)
    return media;
  if (control.empty () || control == "*")
    media.control = base;
  else if (starts_with_nocase (control, "rtsp://") || starts_with_nocase (control, "rtsps://"))
    media.control = control;
  else if (!base.empty () && base.back () == '/')
    media.control = base + control;
  else
    media.control = base + "/" + control;
  return media;
}

void
parse_session (const std::string &value, std::string &id, int &timeout_s)
{
  const size_t semicolon = value.find (';');
  id = trim (value.substr (0, semicolon));
  timeout_s = 60;
  const size_t timeout = value.find ("timeout=");
  if (timeout != std::string::npos) {
    const int parsed = atoi (value.c_str () + timeout + 8);
    if (parsed > 0)
      timeout_s = parsed;
  }
}

int
parse_interleaved (const std::string &transport)
{
  const size_t at = transport.find ("interleaved=");
  return at == std::string::npos ? -1 : atoi (transport.c_str () + at + 12);
}

bool
Authenticator::challenge (const std::vector<std::string> &www_authenticate,
    const std::string &user, const std::string &password)
{
  if (user.empty ())
    return false;
  user_ = user;
  password_ = password;
  scheme_ = Scheme::none;
  basic_offered_ = false;
  for (const std::string &value : www_authenticate)
    if (starts_with_nocase (value, "Basic"))
      basic_offered_ = true;
  for (const std::string &value : www_authenticate) {
    if (starts_with_nocase (value, "Digest ")) {
      const std::string params = value.substr (7);
      algorithm_ = auth_param (params, "algorithm");
      if (!algorithm_.empty () && g_ascii_strcasecmp (algorithm_.c_str (), "MD5") != 0)
        continue;  // MD5 is what RFC 2617 and RTSP cameras use; skip others
      scheme_ = Scheme::digest;
      realm_ = auth_param (params, "realm");
      nonce_ = auth_param (params, "nonce");
      opaque_ = auth_param (params, "opaque");
      const std::string qop = auth_param (params, "qop");
      qop_auth_ = false;
      // qop is a list such as "auth,auth-int"; we do "auth" only.
      for (size_t at = 0; at != std::string::npos;) {
        const size_t comma = qop.find (',', at);
        if (trim (qop.substr (at, comma == std::string::npos ? comma : comma - at)) == "auth")
          qop_auth_ = true;
        at = comma == std::string::npos ? comma : comma + 1;
      }
      nonce_count_ = 0;
      return true;
    }
  }
  if (basic_offered_)
    scheme_ = Scheme::basic;
  return basic_offered_;
}

std::string
Authenticator::header (const char *method, const std::string &uri)
{
  if (scheme_ == Scheme::basic) {
    const std::string credentials = user_ + ":" + password_;
    gchar *encoded = g_base64_encode (reinterpret_cast<const guchar *> (credentials.data ()),
        credentials.size ());
    std::string value = std::string ("Basic ") + encoded;
    g_free (encoded);
    return value;
  }
  if (scheme_ != Scheme::digest)
    return "";
  const std::string ha1 = md5_hex (user_ + ":" + realm_ + ":" + password_);
  const std::string ha2 = md5_hex (std::string (method) + ":" + uri);
  std::string value = "Digest username=\"" + user_ + "\", realm=\"" + realm_ + "\", nonce=\""
      + nonce_ + "\", uri=\"" + uri + "\"";
  if (qop_auth_) {
    char nc[9];
    g_snprintf (nc, sizeof nc, "%08x", ++nonce_count_);
    char cnonce[17];
    g_snprintf (cnonce, sizeof cnonce, "%08x%08x", g_random_int (), g_random_int ());
    value += ", qop=auth, nc=" + std::string (nc) + ", cnonce=\"" + cnonce + "\", response=\""
        + md5_hex (ha1 + ":" + nonce_ + ":" + nc + ":" + cnonce + ":auth:" + ha2) + "\"";
  } else {
    value += ", response=\"" + md5_hex (ha1 + ":" + nonce_ + ":" + ha2) + "\"";
  }
  if (!opaque_.empty ())
    value += ", opaque=\"" + opaque_ + "\"";
  if (!algorithm_.empty ())
    value += ", algorithm=" + algorithm_;
  return value;
}

}  // namespace rtspload
