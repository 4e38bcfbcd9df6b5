// camerasrc's fault reasons (see faults.h).
#include "camerasrc/faults.h"

#include "common/uri_schemes.h"

namespace camrelay::camerasrc {

bool
FaultSlot::accepts (const FaultOrigin &from) const
{
  return !reason || (generic && !from.generic && (from.from_source || from.element == origin));
}

void
FaultSlot::record (std::string text, const FaultOrigin &from)
{
  reason = std::move (text);
  generic = from.generic;
  origin = from.element;
}

std::string
error_reason (const GError *error, const char *debug)
{
  std::string reason = error ? error->message : "unknown error";
  if (debug) {
    std::string detail = debug;
    size_t at = detail.find_last_of ('\n');
    if (at != std::string::npos)
      detail = detail.substr (at + 1);
    if (!detail.empty ())
      reason += " (" + detail + ")";
  }
  return reason;
}

bool
is_generic_error (const GError *error)
{
  return error && error->domain == GST_STREAM_ERROR && error->code == GST_STREAM_ERROR_FAILED;
}

std::string
explain_with_warning (const std::string &warning, const std::string &reason)
{
  return warning + " (then: " + reason + ")";
}

guint16
default_http_port (const std::string &scheme)
{
  const UriSchemeRow *row = camera_uri_scheme (scheme.c_str ());
  return row && row->family == SchemeFamily::Http ? row->default_port : 80;
}

}  // namespace camrelay::camerasrc
