// camrelay.toml as camrelay --check reads it: toml++, then every check of
// config.cpp, with the shipped vendor templates for cameras that name a vendor.
// Pipeline fragments are not parsed (GStreamer is not initialised, as
// check_pipeline_fragment allows): that would fuzz GStreamer's parser, not ours.
//
// Besides not crashing, no message may quote a password.  Inputs whose only
// occurrence of the marker "s3cr3t" (in every key and string value of the
// file) is inside a password, or the user information of a location, must
// give messages without it.
#include "config.h"

#include <toml++/toml.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_common.h"

#ifndef CAMRELAY_VENDORS_SOURCE
#error "CAMRELAY_VENDORS_SOURCE must name gst-presets/vendors.toml"
#endif

namespace {

constexpr std::string_view kMarker = "s3cr3t";

size_t
count_marker (std::string_view text)
{
  size_t count = 0;
  for (size_t at = text.find (kMarker); at != std::string_view::npos;
       at = text.find (kMarker, at + 1))
    count++;
  return count;
}

// Where the marker is in the parsed file: how many times in all, and how
// many of those in a secret (a password, or a location's user information).
struct MarkerCount {
  size_t total = 0;
  size_t secret = 0;
};

void
count_in (const toml::node &node, std::string_view key, MarkerCount &count)
{
  if (const auto *table = node.as_table ()) {
    for (auto &&[name, child] : *table) {
      count.total += count_marker (name.str ());
      count_in (child, name.str (), count);
    }
  } else if (const auto *array = node.as_array ()) {
    for (const toml::node &child : *array)
      count_in (child, "", count);
  } else if (const auto *string = node.as_string ()) {
    const std::string &value = string->get ();
    const size_t found = count_marker (value);
    count.total += found;
    if (key == "password") {
      count.secret += found;
    } else if (key == "location") {
      // Only what lies between "://" and the last '@' before the path.
      const size_t authority = value.find ("://");
      if (authority != std::string::npos) {
        const size_t end = value.find_first_of ("/?#", authority + 3);
        const size_t at = value.rfind ('@', end);
        if (at != std::string::npos && at > authority)
          count.secret += count_marker (std::string_view (value).substr (authority + 3,
              at - authority - 3));
      }
    }
  }
}

}  // namespace

extern "C" int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  using namespace camrelay::launcher;
  const std::string text (reinterpret_cast<const char *> (data), size);
  const ConfigResult result = parse_config (text, "fuzz.toml", CAMRELAY_VENDORS_SOURCE);
  FUZZ_CHECK (result.config.has_value () == result.errors.empty (),
      "a configuration comes back exactly when there is no error");

  std::string messages;
  for (const ConfigError &error : result.errors) {
    FUZZ_CHECK (!error.message.empty (), "every error says what is wrong");
    messages += error.to_string () + "\n";
  }

  if (count_marker (messages) > 0) {
    MarkerCount count;
    try {
      count_in (toml::parse (std::string_view (text)), "", count);
    } catch (const toml::parse_error &) {
      return 0;  // a syntax error quotes nothing but its position
    }
    FUZZ_CHECK (!(count.total == 1 && count.secret == 1), "a message quotes a password");
  }
  return 0;
}
