// The value parsers of camrelay.toml (launcher/config_values.h), each given
// the whole input: durations, addresses, ranges, ports, multicast addresses,
// camera locations and vendor URL templates.  Each result is checked against
// what its contract promises.
#include "config_values.h"

#include <glib.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_common.h"

namespace {

using namespace camrelay::launcher;

// parse_duration_ms written the slow, obvious way:
// DIGITS{1,9} [ "." DIGITS{1,3} ] UNIT, a whole number of milliseconds.
std::optional<uint64_t>
reference_duration_ms (const std::string &text)
{
  size_t pos = 0;
  while (pos < text.size () && g_ascii_isdigit (text[pos]))
    pos++;
  const std::string whole = text.substr (0, pos);
  std::string fraction;
  if (pos < text.size () && text[pos] == '.') {
    const size_t start = ++pos;
    while (pos < text.size () && g_ascii_isdigit (text[pos]))
      pos++;
    fraction = text.substr (start, pos - start);
    if (fraction.empty ())
      return std::nullopt;
  }
  if (whole.empty () || whole.size () > 9 || fraction.size () > 3)
    return std::nullopt;
  const std::string unit = text.substr (pos);
  uint64_t unit_ms;
  if (unit == "ms")
    unit_ms = 1;
  else if (unit == "s")
    unit_ms = 1000;
  else if (unit == "m" || unit == "min")
    unit_ms = 60000;
  else if (unit == "h")
    unit_ms = 3600000;
  else
    return std::nullopt;
  uint64_t thousandths = std::stoull (whole) * 1000;
  if (!fraction.empty ())
    thousandths += std::stoull ((fraction + "00").substr (0, 3));
  if (thousandths * unit_ms % 1000 != 0)
    return std::nullopt;
  return thousandths * unit_ms / 1000;
}

void
check_duration (const std::string &text)
{
  FUZZ_CHECK (parse_duration_ms (text) == reference_duration_ms (text),
      "parse_duration_ms agrees with the reference");
}

void
check_address (const std::string &text)
{
  const std::optional<Address> address = parse_address (text);
  if (!address)
    return;
  FUZZ_CHECK (!address->host.empty (), "an address has a host");
  // What read_camera does with it: a vendor template expanded with it must
  // give a location that passes the location check.
  std::string location;
  std::string bad;
  FUZZ_CHECK (expand_template ("rtsp://{address}:{port}/stream", address->host,
                  std::to_string (address->port ? address->port : 554), location, bad),
      "a two-placeholder template expands");
  FUZZ_CHECK (check_location (location).empty (),
      "an accepted address makes a valid location");
}

void
check_range (const std::string &text)
{
  std::string first, last;
  if (!split_range (text, first, last))
    return;
  FUZZ_CHECK (!first.empty () && !last.empty (), "both ends of a range are given");
  FUZZ_CHECK (first.find ('-') == std::string::npos && last.find ('-') == std::string::npos,
      "the ends of a range hold no dash");
  for (const std::string &end : {first, last}) {
    FUZZ_CHECK (end.front () != ' ' && end.back () != ' ', "the ends of a range are trimmed");
    parse_ipv4_multicast (end);
    if (std::optional<uint16_t> port = parse_port (end))
      FUZZ_CHECK (*port >= 1 && *port == std::stoul (end), "a port is its decimal digits");
  }
}

void
check_template (const std::string &text)
{
  std::string out;
  std::string bad;
  if (expand_template (text, "192.0.2.10", "554", out, bad)) {
    FUZZ_CHECK (out.find_first_of ("{}") == std::string::npos,
        "an expanded template has no braces left");
  } else {
    FUZZ_CHECK (!bad.empty (), "a refused template names the problem");
  }
}

}  // namespace

extern "C" int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  const std::string text (reinterpret_cast<const char *> (data), size);
  check_duration (text);
  check_address (text);
  check_range (text);
  check_template (text);
  check_location (text);
  is_ip_or_host_name (text);
  const std::string quoted = quote (text);
  FUZZ_CHECK (quoted.find ('\n') == std::string::npos, "a quoted value stays on one line");
  return 0;
}
