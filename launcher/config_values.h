// The value parsers of camrelay.toml and vendors.toml: durations, addresses,
// ranges, camera locations and URL templates.  Each one takes text straight
// from the file, so they live apart from config.cpp's TOML walk: the unit
// tests and the fuzz targets (fuzz/) call them directly.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace camrelay::launcher {

// A value as a TOML-like quoted string, safe to print on one log line.
std::string quote (std::string_view text);

// "2s", "500ms", "1.5s", "5m", "1h" in milliseconds; nullopt when the text is
// not such a duration or is not a whole number of milliseconds.
std::optional<uint64_t> parse_duration_ms (std::string_view text);

// An IPv4 or IPv6 address literal (no brackets).  A NUL inside never is:
// TOML strings may hold one ("\u0000"), and the C functions would stop there.
bool is_ip_address (const std::string &text);

// A host name: letters, digits, '-', '.' and '_', at most 253 characters.
bool is_host_name (std::string_view host);
bool is_ip_or_host_name (const std::string &text);

// What is wrong with `location` as a camerasrc URI, or "" when nothing is.
// Never quotes the URI: its user information may hold a password.
std::string check_location (const std::string &location);

// A camera's `address` for a vendor template: a host name or IP address,
// optionally with ":port"; an IPv6 address may be written with or without
// brackets ("[fd00::5]:8554", "fd00::5"), but with no zone ("%eth0").
struct Address {
  std::string host;  // as it goes into a URI: IPv6 in brackets
  uint16_t port = 0; // 0: the vendor's default
};
std::optional<Address> parse_address (const std::string &text);

// "FIRST-LAST" (spaces around either allowed), or one value alone as a
// range of one.  False when the text is not of that form.
bool split_range (const std::string &text, std::string &first, std::string &last);

// An IPv4 multicast address (224.0.0.0 to 239.255.255.255), in host order.
std::optional<uint32_t> parse_ipv4_multicast (const std::string &text);

// A port, 1 to 65535, in decimal digits only.
std::optional<uint16_t> parse_port (const std::string &text);

// Replaces {address} and {port} in a vendor template.  Returns the first
// unknown placeholder (or "{" for an unbalanced brace) in `bad`.
bool expand_template (std::string_view text, std::string_view address, std::string_view port,
    std::string &out, std::string &bad);

}  // namespace camrelay::launcher
