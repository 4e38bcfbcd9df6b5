// The value parsers of camrelay.toml and vendors.toml (see config_values.h).
#include "config_values.h"

#include <arpa/inet.h>

#include <glib.h>

#include <algorithm>

#include "common/uri_schemes.h"

namespace camrelay::launcher {

// A value as a TOML-like quoted string, safe to print on one log line.
std::string
quote (std::string_view text)
{
  std::string out = "\"";
  for (char c : text) {
    unsigned char byte = static_cast<unsigned char> (c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (byte < 0x20 || byte == 0x7f) {
      char escaped[8];
      g_snprintf (escaped, sizeof escaped, "\\x%02x", byte);
      out += escaped;
    } else {
      out += c;
    }
  }
  return out + "\"";
}


// ---- durations ---------------------------------------------------------------

// "2s", "500ms", "1.5s", "5m", "1h" in milliseconds; nullopt when the text is
// not such a duration or is not a whole number of milliseconds.
std::optional<uint64_t>
parse_duration_ms (std::string_view text)
{
  size_t pos = 0;
  uint64_t whole = 0;
  size_t whole_digits = 0;
  while (pos < text.size () && g_ascii_isdigit (text[pos]) && whole_digits < 9) {
    whole = whole * 10 + static_cast<uint64_t> (text[pos] - '0');
    pos++;
    whole_digits++;
  }
  if (whole_digits == 0 || (pos < text.size () && g_ascii_isdigit (text[pos])))
    return std::nullopt;
  // Thousandths of the unit, so that "1.5s" and "0.25m" stay exact.
  uint64_t thousandths = whole * 1000;
  if (pos < text.size () && text[pos] == '.') {
    pos++;
    uint64_t scale = 100;
    size_t fraction_digits = 0;
    while (pos < text.size () && g_ascii_isdigit (text[pos])) {
      if (fraction_digits == 3)
        return std::nullopt;
      thousandths += static_cast<uint64_t> (text[pos] - '0') * scale;
      scale /= 10;
      pos++;
      fraction_digits++;
    }
    if (fraction_digits == 0)
      return std::nullopt;
  }
  std::string_view unit = text.substr (pos);
  uint64_t unit_ms;
  if (unit == "ms")
    unit_ms = 1;
  else if (unit == "s")
    unit_ms = 1000;
  else if (unit == "m" || unit == "min")
    unit_ms = 60 * 1000;
  else if (unit == "h")
    unit_ms = 60 * 60 * 1000;
  else
    return std::nullopt;
  uint64_t scaled = thousandths * unit_ms;  // < 1e12 * 3.6e6: no overflow
  if (scaled % 1000 != 0)
    return std::nullopt;
  return scaled / 1000;
}


// ---- values ------------------------------------------------------------------

bool
is_host_name (std::string_view host)
{
  if (host.empty () || host.size () > 253)
    return false;
  for (char c : host) {
    if (!g_ascii_isalnum (c) && c != '-' && c != '.' && c != '_')
      return false;
  }
  return host.front () != '.' && host.front () != '-';
}

bool
is_ip_address (const std::string &text)
{
  return text.find ('\0') == std::string::npos && g_hostname_is_ip_address (text.c_str ());
}

bool
is_ip_or_host_name (const std::string &text)
{
  return is_ip_address (text) || is_host_name (text);
}

// What is wrong with `location` as a camerasrc URI, or "" when nothing is.
// Never quotes the URI: its user information may hold a password.
std::string
check_location (const std::string &location)
{
  const std::string schemes = camera_uri_scheme_list ();
  for (char c : location) {
    if (g_ascii_isspace (c) || static_cast<unsigned char> (c) < 0x20)
      return "must not contain spaces or control characters (write %20 for a space)";
  }
  GError *error = nullptr;
  GUri *uri = g_uri_parse (location.c_str (), G_URI_FLAGS_ENCODED, &error);
  if (!uri) {
    g_clear_error (&error);
    return "must be a URI with the scheme " + schemes +
        ", such as rtsp://192.0.2.10/stream1";
  }
  std::string scheme = g_uri_get_scheme (uri);
  const char *host = g_uri_get_host (uri);
  std::string host_text = host ? host : "";
  std::string path = g_uri_get_path (uri);
  g_uri_unref (uri);

  if (!camera_uri_scheme (scheme.c_str ()))
    return "scheme " + quote (scheme) + " is not supported (use " + schemes + ")";
  if (is_scheme_of (scheme, SchemeFamily::File))
    return path.empty () || path[0] != '/' ? "must be file:///absolute/path" : "";
  if (is_scheme_of (scheme, SchemeFamily::Test))
    return "";
  if (host_text.empty ())
    return "has no host";
  if (host_text.find ('@') != std::string::npos)
    return "user information must be percent-encoded (write %40 for @ in a password), "
           "or use username and password";
  return "";
}

std::optional<Address>
parse_address (const std::string &text)
{
  Address address;
  std::string host;
  std::string port;
  // An IPv6 zone ("fe80::1%eth0") is an IP address to GLib, but its '%'
  // would have to be written %25 in the URI the template makes; no vendor
  // camera is reached that way, so it is refused like any other non-address.
  if (text.find ('%') != std::string::npos)
    return std::nullopt;
  if (!text.empty () && text[0] == '[') {
    size_t close = text.find (']');
    if (close == std::string::npos)
      return std::nullopt;
    host = text.substr (1, close - 1);
    std::string rest = text.substr (close + 1);
    if (!rest.empty ()) {
      if (rest[0] != ':')
        return std::nullopt;
      port = rest.substr (1);
    }
    if (!is_ip_address (host) || host.find (':') == std::string::npos)
      return std::nullopt;
    address.host = "[" + host + "]";
  } else {
    size_t colons = static_cast<size_t> (std::count (text.begin (), text.end (), ':'));
    if (colons > 1) {  // a bare IPv6 address
      if (!is_ip_address (text))
        return std::nullopt;
      address.host = "[" + text + "]";
    } else {
      size_t colon = text.find (':');
      host = text.substr (0, colon);
      if (colon != std::string::npos)
        port = text.substr (colon + 1);
      if (!is_ip_or_host_name (host))
        return std::nullopt;
      address.host = host;
    }
  }
  if (!port.empty ()) {
    if (port.size () > 5 || !std::all_of (port.begin (), port.end (), [] (char c) { return g_ascii_isdigit (c); }))
      return std::nullopt;
    unsigned long value = std::stoul (port);
    if (value < 1 || value > 65535)
      return std::nullopt;
    address.port = static_cast<uint16_t> (value);
  } else if (text.find (':') != std::string::npos && text[0] != '[' &&
             std::count (text.begin (), text.end (), ':') == 1) {
    return std::nullopt;  // "host:" with an empty port
  }
  return address;
}

// "FIRST-LAST" (spaces around either allowed), or one value alone as a
// range of one.  False when the text is not of that form.
bool
split_range (const std::string &text, std::string &first, std::string &last)
{
  auto trimmed = [] (const std::string &part) {
    const size_t begin = part.find_first_not_of (' ');
    return begin == std::string::npos
        ? std::string ()
        : part.substr (begin, part.find_last_not_of (' ') - begin + 1);
  };
  const size_t dash = text.find ('-');
  if (dash == std::string::npos) {
    first = last = trimmed (text);
  } else {
    if (text.find ('-', dash + 1) != std::string::npos)
      return false;
    first = trimmed (text.substr (0, dash));
    last = trimmed (text.substr (dash + 1));
  }
  return !first.empty () && !last.empty ();
}

// An IPv4 multicast address (224.0.0.0 to 239.255.255.255), in host order.
std::optional<uint32_t>
parse_ipv4_multicast (const std::string &text)
{
  in_addr address{};
  if (text.find ('\0') != std::string::npos || inet_pton (AF_INET, text.c_str (), &address) != 1)
    return std::nullopt;
  const uint32_t value = ntohl (address.s_addr);
  if ((value >> 28) != 0xe)
    return std::nullopt;
  return value;
}

std::optional<uint16_t>
parse_port (const std::string &text)
{
  if (text.empty () || text.size () > 5 ||
      !std::all_of (text.begin (), text.end (), [] (char c) { return g_ascii_isdigit (c); }))
    return std::nullopt;
  const unsigned long value = std::stoul (text);
  if (value < 1 || value > 65535)
    return std::nullopt;
  return static_cast<uint16_t> (value);
}


// Replaces {address} and {port} in a vendor template.  Returns the first
// unknown placeholder (or "{" for an unbalanced brace) in `bad`.
bool
expand_template (std::string_view text, std::string_view address, std::string_view port,
    std::string &out, std::string &bad)
{
  out.clear ();
  size_t pos = 0;
  while (pos < text.size ()) {
    size_t open = text.find_first_of ("{}", pos);
    if (open == std::string_view::npos) {
      out.append (text.substr (pos));
      break;
    }
    out.append (text.substr (pos, open - pos));
    size_t close = text[open] == '{' ? text.find ('}', open) : std::string_view::npos;
    if (close == std::string_view::npos) {
      bad = std::string (1, text[open]);
      return false;
    }
    std::string_view name = text.substr (open + 1, close - open - 1);
    if (name == "address")
      out.append (address);
    else if (name == "port")
      out.append (port);
    else {
      bad = "{" + std::string (name) + "}";
      return false;
    }
    pos = close + 1;
  }
  return true;
}

}  // namespace camrelay::launcher
