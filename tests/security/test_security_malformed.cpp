// Malformed and hostile requests against the real camrelay binary: each is
// answered sanely (an RTSP status, or the connection closed; never a crash or
// a hang), and after each a fresh client still plays.  docs/security.md.
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "security/security_server.h"

namespace {

using namespace camrelay::launcher_test;
using namespace camrelay::security_test;

// How a server may answer a case, as flags: what each status class of every
// answer may be, and whether it may close the connection without answering
// (closing after an error answer is always fine) or stay silent (the request
// never ends, so the server keeps waiting for it).
enum Outcome : unsigned {
  ANSWER_OK = 1,   // 2xx
  REFUSED = 2,     // 4xx
  FAILED = 4,      // 5xx
  CLOSED = 8,      // closed (or reset) without an answer
  SILENT = 16,     // no answer within SILENCE, connection open
};
constexpr unsigned BAD = REFUSED | FAILED | CLOSED;
constexpr unsigned ANY = ANSWER_OK | BAD;

// ---- the cases ---------------------------------------------------------------

enum class Prelude { NONE, SETUP, PLAY };

struct Case {
  std::string name;
  Prelude prelude;
  std::string bytes;
  unsigned outcomes;
  size_t answers = 1;           // answers a well-behaved server gives
  std::string forbidden = "";   // text no answer may hold
};

// gtest prints a failing test's parameter: the name, not megabytes of bytes.
void
PrintTo (const Case &row, std::ostream *out)
{
  *out << row.name;
}

// A row per case.  The outcomes hold on a server with and without users, and
// through the hardening of docs/security.md; where it changes the answer
// the row is marked and its outcomes allow both:
//  [caps] a cap on a message's headers or body refuses the request or closes
//    the connection where the server answered 200 before;
//  [auth] with users, a request without credentials other than OPTIONS gets
//    401 (rows with {auth} carry valid ones; the others allow 4xx);
//  [limits] limits of connections per address and in total (tests below).
const std::vector<Case> &
cases ()
{
  static const std::vector<Case> table = {
    // Garbage and framing.
    {"binary_noise", Prelude::NONE, noise (4096, 1) + "\r\n\r\n", BAD | SILENT},
    {"nul_bytes", Prelude::NONE, std::string (1024, '\0') + "\r\n\r\n", BAD | SILENT},
    {"blank_lines", Prelude::NONE, repeat ("\r\n", 5000), BAD | SILENT},
    {"http_get", Prelude::NONE, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", BAD | SILENT},
    {"http_post_tunnel_without_get", Prelude::NONE,
        "POST /cam HTTP/1.0\r\nx-sessioncookie: abc\r\nContent-Length: 32767\r\n\r\nT1BUSU9OUw==", BAD | SILENT},
    {"method_alone", Prelude::NONE, "OPTIONS\r\n\r\n", BAD},
    {"no_version", Prelude::NONE, "OPTIONS {url}\r\nCSeq: 1\r\n\r\n", BAD},
    {"rtsp_2_0", Prelude::NONE, "OPTIONS {url} RTSP/2.0\r\nCSeq: 1\r\n\r\n", ANY},  // gst-rtsp-server speaks 2.0
    {"rtsp_9_9", Prelude::NONE, "DESCRIBE {url} RTSP/9.9\r\nCSeq: 1\r\n\r\n", BAD},
    {"lowercase_method", Prelude::NONE, req ("describe", "{url}"), ANY},
    {"unknown_method", Prelude::NONE, req ("FLY", "{url}"), BAD},
    {"method_64k", Prelude::NONE, req (std::string (65536, 'M'), "{url}"), BAD},
    {"uri_1mb", Prelude::NONE, req ("DESCRIBE", "{host}/" + std::string (1 << 20, 'a')), BAD},
    {"header_1mb", Prelude::NONE, req ("OPTIONS", "{url}", "X-Long: " + std::string (1 << 20, 'h') + "\r\n"), ANY},  // [caps]
    {"line_1mb_unended", Prelude::NONE, std::string (1 << 20, 'A'), BAD | SILENT},
    {"headers_10000", Prelude::NONE, req ("OPTIONS", "{url}", numbered_headers (10000)), ANY},  // [caps]
    {"header_without_colon", Prelude::NONE, req ("OPTIONS", "{url}", "NoColonHere\r\n"), ANY},
    {"header_folded", Prelude::NONE, req ("OPTIONS", "{url}", "X-A: one\r\n  two\r\n"), ANY},
    {"header_name_empty", Prelude::NONE, req ("OPTIONS", "{url}", ": value\r\n"), ANY},
    {"header_control_chars", Prelude::NONE,
        req ("OPTIONS", "{url}", "User-Agent: \x01\x1b[31mred\x1b[0m\x7f\r\n"), ANY},
    {"bare_lf", Prelude::NONE, "OPTIONS {url} RTSP/1.0\nCSeq: 1\n\n", ANY | SILENT},
    {"bare_cr", Prelude::NONE, "OPTIONS {url} RTSP/1.0\rCSeq: 1\r\r", ANY | SILENT},
    // CSeq.
    {"cseq_missing", Prelude::NONE, "OPTIONS {url} RTSP/1.0\r\n\r\n", ANY},
    {"cseq_negative", Prelude::NONE, "OPTIONS {url} RTSP/1.0\r\nCSeq: -1\r\n\r\n", ANY},
    {"cseq_huge", Prelude::NONE, "OPTIONS {url} RTSP/1.0\r\nCSeq: 99999999999999999999999\r\n\r\n", ANY},
    {"cseq_text", Prelude::NONE, "OPTIONS {url} RTSP/1.0\r\nCSeq: abc\r\n\r\n", ANY},
    {"cseq_twice", Prelude::NONE, "OPTIONS {url} RTSP/1.0\r\nCSeq: 1\r\nCSeq: 2\r\n\r\n", ANY},
    {"cseq_empty", Prelude::NONE, "OPTIONS {url} RTSP/1.0\r\nCSeq:\r\n\r\n", ANY},
    // Content-Length.
    {"content_length_negative", Prelude::NONE, req ("SET_PARAMETER", "{url}", "Content-Length: -5\r\n"), ANY},
    {"content_length_text", Prelude::NONE, req ("SET_PARAMETER", "{url}", "Content-Length: lots\r\n"), ANY},
    {"content_length_short", Prelude::NONE,
        req ("SET_PARAMETER", "{url}", "Content-Length: 2\r\n") + "abcdef\r\n\r\n", ANY},
    {"content_length_4g_unsent", Prelude::NONE,  // [caps]: 413 or closed
        req ("SET_PARAMETER", "{url}", "Content-Length: 4000000000\r\n") + "abc", BAD | SILENT},
    {"content_length_twice", Prelude::NONE,
        req ("SET_PARAMETER", "{url}", "Content-Length: 3\r\nContent-Length: 5\r\n") + "abcde", ANY | SILENT},
    // Paths.
    {"dot_dot", Prelude::NONE, req ("DESCRIBE", "{host}/../../../etc/passwd"), BAD, 1, "root:"},
    {"dot_dot_encoded", Prelude::NONE, req ("DESCRIBE", "{host}/%2e%2e/%2e%2e/etc/passwd"), BAD, 1, "root:"},
    {"dot_dot_after_camera", Prelude::NONE, req ("DESCRIBE", "{url}/../../etc/passwd"), BAD, 1, "root:"},
    {"percent_00", Prelude::NONE, req ("DESCRIBE", "{url}%00.sdp"), BAD},
    {"percent_00_alone", Prelude::NONE, req ("DESCRIBE", "{host}/%00"), BAD},
    {"percent_invalid", Prelude::NONE, req ("DESCRIBE", "{host}/%zz%"), BAD},
    {"unknown_camera", Prelude::NONE, req ("DESCRIBE", "{host}/no-such-camera"), BAD},
    {"options_star", Prelude::NONE, req ("OPTIONS", "*"), ANSWER_OK},
    {"relative_uri", Prelude::NONE, req ("DESCRIBE", "/cam"), ANY},
    {"other_host", Prelude::NONE, req ("DESCRIBE", "rtsp://other.invalid:1/cam"), ANY},
    {"userinfo_in_uri", Prelude::NONE, req ("DESCRIBE", "rtsp://u:p@127.0.0.1:1/cam"), ANY},
    {"query_64k", Prelude::NONE, req ("DESCRIBE", "{url}?" + std::string (65536, 'q')), ANY},  // [caps]
    {"escapes_in_path", Prelude::NONE, req ("DESCRIBE", "{host}/cam\x1b[2J\xc3\xa9"), BAD},
    // Methods out of order.
    {"play_before_setup", Prelude::NONE, req ("PLAY", "{url}"), BAD},
    {"pause_before_setup", Prelude::NONE, req ("PAUSE", "{url}"), BAD},
    {"setup_without_describe", Prelude::NONE, transport ("RTP/AVP/TCP;unicast;interleaved=0-1"), ANY},
    {"teardown_unknown_session", Prelude::NONE, req ("TEARDOWN", "{url}", "Session: 12345678\r\n"), BAD},
    {"play_unknown_session", Prelude::NONE, req ("PLAY", "{url}", "Session: 12345678\r\n"), BAD},
    {"get_parameter_unknown_session", Prelude::NONE, req ("GET_PARAMETER", "{url}", "Session: x\r\n"), BAD},
    {"session_4k", Prelude::NONE, req ("PLAY", "{url}", "Session: " + std::string (4096, 's') + "\r\n"), BAD},
    {"set_parameter_body", Prelude::NONE,
        req ("SET_PARAMETER", "{url}", "Content-Type: text/parameters\r\n", "a: b\r\n"), ANY},
    {"record", Prelude::NONE, req ("RECORD", "{url}"), BAD},
    {"announce", Prelude::NONE, req ("ANNOUNCE", "{url}", "Content-Type: application/sdp\r\n", "v=0\r\n"), BAD},
    {"teardown_then_play", Prelude::SETUP,
        req ("TEARDOWN", "{url}", "Session: {session}\r\n") + req ("PLAY", "{url}", "Session: {session}\r\n"),
        ANY, 2},
    {"setup_same_channel_again", Prelude::SETUP,
        req ("SETUP", "{url}/stream=0", "Session: {session}\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n"), ANY},
    {"play_twice", Prelude::PLAY, req ("PLAY", "{url}", "Session: {session}\r\n") + req ("PLAY", "{url}",
        "Session: {session}\r\n"), ANY, 2},
    {"setup_unknown_stream", Prelude::NONE, transport ("RTP/AVP/TCP;unicast;interleaved=0-1")
        + req ("SETUP", "{url}/stream=99", "Transport: RTP/AVP/TCP;unicast;interleaved=2-3\r\n"), ANY, 2},
    // Header values gst-rtsp-server parses.
    {"play_range_garbage", Prelude::SETUP, req ("PLAY", "{url}", "Session: {session}\r\nRange: npt=abc-\r\n"), ANY},
    {"play_range_huge", Prelude::SETUP, req ("PLAY", "{url}", "Session: {session}\r\nRange: npt=1e400-\r\n"), ANY},
    {"play_range_reversed", Prelude::SETUP, req ("PLAY", "{url}", "Session: {session}\r\nRange: npt=50-10\r\n"), ANY},
    {"play_range_clock", Prelude::SETUP,
        req ("PLAY", "{url}", "Session: {session}\r\nRange: clock=99999999T999999.9Z-\r\n"), ANY},
    {"play_scale_negative", Prelude::SETUP, req ("PLAY", "{url}", "Session: {session}\r\nScale: -1e308\r\n"), ANY},
    {"play_speed_nan", Prelude::SETUP, req ("PLAY", "{url}", "Session: {session}\r\nSpeed: nan\r\n"), ANY},
    {"session_timeout_negative", Prelude::SETUP,
        req ("GET_PARAMETER", "{url}", "Session: {session};timeout=-1\r\n"), ANY},
    {"require_unknown_option", Prelude::NONE, req ("OPTIONS", "{url}", "Require: com.example.nothing\r\n"), ANY},
    {"blocksize_huge", Prelude::NONE, req ("SETUP", "{url}/stream=0",
        "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\nBlocksize: 4294967296\r\n"), ANY},
    {"setup_pipelined_200", Prelude::NONE,
        pipelined ("SETUP", "{url}/stream=0", "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n", 200), ANY, 200},
    // Transports.
    {"transport_port_range_huge", Prelude::NONE, transport ("RTP/AVP;unicast;client_port=0-65535"), ANY},
    {"transport_ports_reversed", Prelude::NONE, transport ("RTP/AVP;unicast;client_port=9001-9000"), ANY},
    {"transport_port_overflow", Prelude::NONE, transport ("RTP/AVP;unicast;client_port=70000-70001"), ANY},
    {"transport_unknown_profile", Prelude::NONE, transport ("RTP/XYZ/TCP;unicast;interleaved=0-1"), BAD},
    {"transport_interleaved_255", Prelude::NONE, transport ("RTP/AVP/TCP;unicast;interleaved=255"), ANY},
    {"transport_interleaved_huge", Prelude::NONE, transport ("RTP/AVP/TCP;unicast;interleaved=1000-1001"), ANY},
    {"transport_multicast_refused", Prelude::NONE, transport ("RTP/AVP;multicast"), BAD},
    {"transport_empty", Prelude::NONE, transport (""), BAD},
    {"transport_missing", Prelude::NONE, req ("SETUP", "{url}/stream=0"), BAD},
    {"transport_4000_choices", Prelude::NONE,
        transport (repeat ("RTP/XYZ;unicast;client_port=1-2,", 4000) + "RTP/AVP/TCP;unicast;interleaved=0-1"), ANY},  // [caps]
    {"transport_mode_record", Prelude::NONE, transport ("RTP/AVP/TCP;unicast;interleaved=0-1;mode=record"), ANY},
    {"transport_ssrc_garbage", Prelude::NONE, transport ("RTP/AVP/TCP;unicast;interleaved=0-1;ssrc=zz"), ANY},
    {"transport_destination_elsewhere", Prelude::NONE,
        transport ("RTP/AVP;unicast;destination=192.0.2.1;client_port=5000-5001"), ANY, 1, "192.0.2.1"},
    // Interleaved data of the client.
    {"data_before_request", Prelude::NONE, frame (0, "abcd") + req ("OPTIONS", "{url}"), ANY | SILENT},
    {"data_length_unfinished", Prelude::NONE, "$\x01\xff\xff" + std::string (100, 'x'), BAD | SILENT},
    {"data_after_setup", Prelude::SETUP, frame (1, noise (200, 2)) + req ("OPTIONS", "{url}"), ANY},
    {"data_after_play", Prelude::PLAY,
        frame (1, noise (200, 3)) + frame (0, noise (500, 4)) + frame (200, "x") + req ("OPTIONS", "{url}"), ANY},
    {"data_flood_after_play", Prelude::PLAY, repeat (frame (1, noise (1024, 5)), 1000) + req ("OPTIONS", "{url}"), ANY},
    {"data_inside_request", Prelude::PLAY, "OPTIONS {url} RTSP/1.0\r\n" + frame (1, "zz") + "CSeq: 2\r\n\r\n", ANY | SILENT},
    // Floods.
    {"options_pipelined_1000", Prelude::NONE, pipelined ("OPTIONS", "{url}", "", 1000), ANSWER_OK, 1000},
    {"describe_pipelined_200", Prelude::NONE, pipelined ("DESCRIBE", "{url}", "Accept: application/sdp\r\n", 200),
        ANSWER_OK, 200},
    {"keepalive_pipelined_1000", Prelude::PLAY, pipelined ("GET_PARAMETER", "{url}", "Session: {session}\r\n", 1000),
        ANSWER_OK, 1000},
  };
  return table;
}

// Whether what `seen` holds is a sane outcome for `row`.
testing::AssertionResult
sane (const Seen &seen, const Case &row)
{
  for (size_t i = 0; i < seen.statuses.size (); i++) {
    const int status = seen.statuses[i];
    const unsigned kind = status >= 200 && status < 300 ? ANSWER_OK
        : status >= 400 && status < 500                 ? REFUSED
        : status >= 500 && status < 600                 ? static_cast<unsigned> (FAILED)
                                                        : 0u;
    if (!(kind & row.outcomes))
      return testing::AssertionFailure () << "answer " << i << ": " << seen.heads[i];
    if (!row.forbidden.empty () && seen.heads[i].find (row.forbidden) != std::string::npos)
      return testing::AssertionFailure () << "answer " << i << " holds \"" << row.forbidden
                                          << "\": " << seen.heads[i];
  }
  const bool error_answered = std::any_of (seen.statuses.begin (), seen.statuses.end (),
      [] (int s) { return s >= 400; });
  if (seen.closed && seen.statuses.size () < row.answers && !error_answered
      && !(row.outcomes & CLOSED))
    return testing::AssertionFailure () << "closed after " << seen.statuses.size () << " of "
                                        << row.answers << " answers";
  if (!seen.closed && seen.statuses.size () < row.answers && !(row.outcomes & SILENT))
    return testing::AssertionFailure () << "no answer: " << seen.statuses.size () << " of "
                                        << row.answers << " answers within the bound";
  return testing::AssertionSuccess ();
}

// Every case against a server without users and one with users; each server
// is started once for all the cases (one camrelay each, stopped at the end,
// which under AddressSanitizer also checks it for leaks).
class Malformed : public testing::TestWithParam<std::tuple<Access, Case>> {
 public:
  static Server servers[2];

  static Server &server (Access access)
  {
    Server &s = servers[static_cast<int> (access)];
    if (!s.camrelay)
      start (s, access);
    return s;
  }

  static void TearDownTestSuite ()
  {
    for (Server &s : servers)
      if (s.camrelay) {
        expect_clean_stop (*s.camrelay, s.config);
        s.camrelay.reset ();
      }
  }
};
Server Malformed::servers[2];

TEST_P (Malformed, AnsweredSanelyAndAFreshClientPlays)
{
  const auto &[access, row] = GetParam ();
  Server &server = Malformed::server (access);
  ASSERT_GT (server.port, 0) << server.camrelay->all_output ();

  const auto started = Clock::now ();
  {
    Wire wire (server.port);
    ASSERT_TRUE (wire.ok ());
    std::string session;
    if (row.prelude != Prelude::NONE) {
      session = prepare (wire, server, row.prelude == Prelude::PLAY);
      ASSERT_NE (session, "") << "prelude: " << testing::PrintToString (wire.seen ().heads);
    }
    const size_t before = wire.seen ().statuses.size ();
    Seen seen = wire.exchange (fill (row.bytes, server, session), before + row.answers,
        (row.outcomes & SILENT) ? SILENCE : ANSWER_WITHIN);
    const auto answered = static_cast<long> (before);
    seen.statuses.erase (seen.statuses.begin (), seen.statuses.begin () + answered);
    seen.heads.erase (seen.heads.begin (), seen.heads.begin () + answered);
    EXPECT_TRUE (sane (seen, row)) << server.camrelay->all_output ();
    std::printf ("%s: %zu answers (first %d)%s in %.0f ms\n", row.name.c_str (),
        seen.statuses.size (),
        seen.statuses.empty () ? 0 : seen.statuses[0], seen.closed ? ", closed" : "",
        std::chrono::duration<double, std::milli> (Clock::now () - started).count ());
  }
  ASSERT_TRUE (alive (server.camrelay->pid ())) << server.camrelay->all_output ();
  EXPECT_TRUE (fresh_client_plays (server)) << "after the case\n" << server.camrelay->all_output ();
}

std::string
case_name (const testing::TestParamInfo<std::tuple<Access, Case>> &info)
{
  return std::string (std::get<0> (info.param) == Access::USERS ? "users_" : "anonymous_")
      + std::get<1> (info.param).name;
}

INSTANTIATE_TEST_SUITE_P (Cases, Malformed,
    testing::Combine (testing::Values (Access::ANONYMOUS, Access::USERS), testing::ValuesIn (cases ())),
    case_name);

}  // namespace
