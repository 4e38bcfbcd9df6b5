// camerasrc's handling of its `location` (plugins/camerasrc/camerauri.h):
// the scheme check of the property, the split into the URI for the child
// and the credentials, and the redaction of credentials from logs.
//
// Input: the location, a newline, the user-pw property, a newline, then a
// text from a child (an error message) to redact.
#include "camerasrc/camerauri.h"

#include <gst/gst.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_common.h"

extern "C" int
LLVMFuzzerInitialize (int *, char ***)
{
  camrelay::fuzz::init_gstreamer ();
  return 0;
}

extern "C" int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  using namespace camrelay::camerasrc;
  const std::string input (reinterpret_cast<const char *> (data), size);
  const size_t first = input.find ('\n');
  const std::string location = input.substr (0, first);
  std::string user_pw;
  std::string text;
  if (first != std::string::npos) {
    const size_t second = input.find ('\n', first + 1);
    user_pw = input.substr (first + 1, second == std::string::npos ? second : second - first - 1);
    if (second != std::string::npos)
      text = input.substr (second + 1);
  }

  has_supported_scheme (location.c_str ());

  // What goes to logs, messages and stats must not carry user information.
  const std::string redacted = redact_uri (location);
  if (redacted != location && redacted != "(invalid URI)") {
    GstUri *again = gst_uri_from_string (redacted.c_str ());
    FUZZ_CHECK (again, "a redacted URI is still a URI");
    FUZZ_CHECK (!gst_uri_get_userinfo (again), "a redacted URI has no user information");
    gst_uri_unref (again);
  }

  const UriParts parts = split_uri (location, "", user_pw);
  if (!parts.scheme.empty ())
    FUZZ_CHECK (parts.without_userinfo == redacted, "the child gets the redacted URI");
  if (!user_pw.empty () && !parts.scheme.empty ())
    FUZZ_CHECK (parts.password == user_pw, "user-pw overrides the URI's password");

  // The password property never survives redaction ('*' excepted: the
  // replacement itself could spell it).
  const std::string cleaned = redact_text (text, location, "", user_pw);
  if (!user_pw.empty () && user_pw.find ('*') == std::string::npos)
    FUZZ_CHECK (cleaned.find (user_pw) == std::string::npos, "user-pw left in a message");
  return 0;
}
