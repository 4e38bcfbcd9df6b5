// The URI schemes camerasrc opens, in one list: the element's URI handler,
// its location check, the launcher's configuration check and the tests use it
// (header-only).
#pragma once

#include <glib.h>

#include <array>
#include <string>
#include <vector>

namespace camrelay {

enum class SchemeFamily { Rtsp, Http, File, Test };

struct UriSchemeRow {
  const char *name;
  SchemeFamily family;
  unsigned short default_port;  // when the URI names none; 0 for no network
};

inline constexpr UriSchemeRow CAMERA_URI_SCHEMES[] = {
  {"rtsp", SchemeFamily::Rtsp, 554},
  {"rtsps", SchemeFamily::Rtsp, 322},
  {"http", SchemeFamily::Http, 80},
  {"https", SchemeFamily::Http, 443},
  {"file", SchemeFamily::File, 0},
  {"test", SchemeFamily::Test, 0},
};

// The name of the one scheme of `family` (Test: testcamerasrc's "test"), or
// the first of them.
constexpr const char *
camera_uri_scheme_name (SchemeFamily family)
{
  for (const UriSchemeRow &row : CAMERA_URI_SCHEMES)
    if (row.family == family)
      return row.name;
  return nullptr;
}

// The scheme names, NULL-terminated, for GstURIHandler's get_protocols.
inline const char *const *
camera_uri_protocols ()
{
  static const auto protocols = [] {
    std::array<const char *, G_N_ELEMENTS (CAMERA_URI_SCHEMES) + 1> names{};
    for (size_t i = 0; i < G_N_ELEMENTS (CAMERA_URI_SCHEMES); i++)
      names[i] = CAMERA_URI_SCHEMES[i].name;
    return names;
  }();
  return protocols.data ();
}

// The row of `scheme` (in any case), or nullptr.
inline const UriSchemeRow *
camera_uri_scheme (const char *scheme)
{
  for (const UriSchemeRow &row : CAMERA_URI_SCHEMES)
    if (scheme && g_ascii_strcasecmp (row.name, scheme) == 0)
      return &row;
  return nullptr;
}

// Whether `scheme` (in any case) is of `family`.
inline bool
is_scheme_of (const std::string &scheme, SchemeFamily family)
{
  const UriSchemeRow *row = camera_uri_scheme (scheme.c_str ());
  return row && row->family == family;
}

// Whether the scheme reaches a camera over the network (rtsp, rtsps, http,
// https): the ones with a port.
inline bool
is_network_scheme (const UriSchemeRow &row)
{
  return row.default_port != 0;
}

// "rtsp, rtsps, http, https, file or test", for messages; "rtsp, rtsps, http
// or https" when `network_only`.
inline std::string
camera_uri_scheme_list (bool network_only = false)
{
  std::vector<const char *> names;
  for (const UriSchemeRow &row : CAMERA_URI_SCHEMES)
    if (!network_only || is_network_scheme (row))
      names.push_back (row.name);
  std::string list;
  for (size_t i = 0; i < names.size (); i++) {
    if (i > 0)
      list += i + 1 == names.size () ? " or " : ", ";
    list += names[i];
  }
  return list;
}

}  // namespace camrelay
