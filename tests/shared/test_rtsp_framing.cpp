// RtspFraming (caps on one RTSP message) and the stream that applies it,
// without any network: bytes in, verdicts out.
#include <gio/gio.h>
#include <gtest/gtest.h>

#include <string>

#include "common/rtsp_framing.h"
#include "common/rtsp_guard.h"

namespace {

using camrelay::RtspCaps;
using camrelay::RtspFraming;
using Verdict = RtspFraming::Verdict;

RtspCaps
small_caps ()
{
  RtspCaps caps;
  caps.header_lines = 8;
  caps.header_bytes = 512;
  caps.request_body = 100;
  caps.response_body = 1000;
  return caps;
}

Verdict
feed (RtspFraming &framing, const std::string &bytes)
{
  return framing.feed (reinterpret_cast<const std::uint8_t *> (bytes.data ()), bytes.size ());
}

// Feeds `bytes` one at a time, then in one piece to a second framing: both
// must agree.
Verdict
feed_both_ways (const RtspCaps &caps, const std::string &bytes)
{
  RtspFraming whole (caps), bytewise (caps);
  const Verdict at_once = feed (whole, bytes);
  Verdict one_by_one = Verdict::kOk;
  for (char c : bytes)
    one_by_one = feed (bytewise, std::string (1, c));
  EXPECT_EQ (at_once, one_by_one) << bytes.substr (0, 200);
  return at_once;
}

std::string
headers (unsigned count)
{
  std::string lines;
  for (unsigned i = 0; i < count; i++)
    lines += "X-H" + std::to_string (i) + ": v\r\n";
  return lines;
}

std::string
frame (unsigned length)
{
  std::string f = "$";
  f += '\0';
  f += static_cast<char> (length >> 8);
  f += static_cast<char> (length & 0xff);
  f += std::string (length, 'x');
  return f;
}

TEST (RtspFraming, OrdinaryExchangesPass)
{
  const std::string request = "OPTIONS rtsp://h/cam RTSP/1.0\r\nCSeq: 1\r\n\r\n"
                              "SET_PARAMETER rtsp://h/cam RTSP/1.0\r\nCSeq: 2\r\n"
                              "Content-Length: 100\r\n\r\n" +
                              std::string (100, 'b') + frame (1400) + frame (0) +
                              "GET_PARAMETER rtsp://h/cam RTSP/1.0\r\nCSeq: 3\r\n\r\n";
  EXPECT_EQ (feed_both_ways (small_caps (), request), Verdict::kOk);
  const std::string answer = "RTSP/1.0 200 OK\r\nCSeq: 2\r\ncontent-length : 1000\r\n\r\n" +
                             std::string (1000, 's') + frame (65535) + frame (3) +
                             "RTSP/1.0 200 OK\r\nCSeq: 3\r\n\r\n";
  RtspFraming framing (small_caps ());
  EXPECT_EQ (feed (framing, answer), Verdict::kOk);
  EXPECT_TRUE (framing.followed ());
}

TEST (RtspFraming, TooManyHeaderLinesFail)
{
  const RtspCaps caps = small_caps ();
  // The start line and 7 headers: 8 lines, the cap.
  EXPECT_EQ (feed_both_ways (caps, "DESCRIBE rtsp://h/c RTSP/1.0\r\n" + headers (7) + "\r\n"),
      Verdict::kOk);
  RtspFraming framing (caps);
  EXPECT_EQ (feed (framing, "DESCRIBE rtsp://h/c RTSP/1.0\r\n" + headers (8)), Verdict::kOverCap);
  EXPECT_NE (framing.reason ().find ("a request with a header block over 8 lines"), std::string::npos) << framing.reason ();
  // It stays over its cap.
  EXPECT_EQ (feed (framing, "\r\n"), Verdict::kOverCap);
  // Also in an answer, and the count starts again with each message.
  EXPECT_EQ (feed_both_ways (caps, "RTSP/1.0 200 OK\r\n" + headers (9)), Verdict::kOverCap);
  EXPECT_EQ (feed_both_ways (caps, "RTSP/1.0 200 OK\r\n" + headers (7) + "\r\n" +
                                       "RTSP/1.0 200 OK\r\n" + headers (7) + "\r\n"),
      Verdict::kOk);
}

TEST (RtspFraming, LongHeaderBlockFails)
{
  RtspFraming framing (small_caps ());
  EXPECT_EQ (feed (framing, "OPTIONS * RTSP/1.0\r\nX: " + std::string (600, 'a')),
      Verdict::kOverCap);
  EXPECT_NE (framing.reason ().find ("a request with a header block over 512 bytes"), std::string::npos) << framing.reason ();
  // A first line longer than anything worth sniffing is followed all the same.
  EXPECT_EQ (feed_both_ways (small_caps (), std::string (5000, 'a')), Verdict::kOverCap);
}

TEST (RtspFraming, BodyCapsDependOnTheKindOfMessage)
{
  const RtspCaps caps = small_caps ();
  RtspFraming request (caps);
  EXPECT_EQ (feed (request, "SET_PARAMETER * RTSP/1.0\r\nContent-Length: 101\r\n\r\n"),
      Verdict::kOverCap);
  EXPECT_NE (request.reason ().find ("a request with a Content-Length of 101 (over 100 bytes)"),
      std::string::npos) << request.reason ();
  EXPECT_EQ (feed_both_ways (caps, "RTSP/1.0 200 OK\r\nContent-Length: 1000\r\n\r\n"),
      Verdict::kOk);
  RtspFraming answer (caps);
  EXPECT_EQ (feed (answer, "RTSP/1.0 200 OK\r\nContent-Length:4000000000\r\n\r\n"),
      Verdict::kOverCap);
  EXPECT_NE (answer.reason ().find ("an answer with a Content-Length of 4000000000 (over 1000 bytes)"),
      std::string::npos) << answer.reason ();
  // Numbers too large for 64 bits saturate; the first Content-Length counts.
  EXPECT_EQ (feed_both_ways (caps, "RTSP/1.0 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n"),
      Verdict::kOverCap);
  EXPECT_EQ (feed_both_ways (caps, "RTSP/1.0 200 OK\r\nContent-Length: 5\r\n"
                                   "Content-Length: 5000\r\n\r\n12345RTSP/1.0 200 OK\r\n\r\n"),
      Verdict::kOk);
  EXPECT_EQ (feed_both_ways (caps, "RTSP/1.0 200 OK\r\nContent-Length: -5\r\n\r\n"), Verdict::kOk);
  // A header merely starting like it is another header.
  EXPECT_EQ (feed_both_ways (caps, "RTSP/1.0 200 OK\r\nContent-Lengthy: 5000\r\n\r\n"),
      Verdict::kOk);
}

TEST (RtspFraming, BodyBytesAreNotHeaders)
{
  // A body full of line ends, then frames: none of it counts as headers.
  const std::string answer = "RTSP/1.0 200 OK\r\nContent-Length: 1000\r\n\r\n" +
                             std::string (1000, '\n') + frame (10);
  EXPECT_EQ (feed_both_ways (small_caps (), answer), Verdict::kOk);
}

TEST (RtspFraming, OtherProtocolsPassThrough)
{
  const RtspCaps caps = small_caps ();
  for (const std::string &start : {std::string ("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
           std::string ("HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace\r\n\r\n"),
           std::string ("\x16\x03\x01\x02\x00", 5), std::string ("SSH-2.0-x\r\n")}) {
    RtspFraming framing (caps);
    EXPECT_EQ (feed (framing, start + headers (1000) + "Content-Length: 99999999\r\n\r\n"),
        Verdict::kOk) << start;
    EXPECT_TRUE (framing.passed_through ()) << start;
  }
  // Empty lines before the first line leave it undecided.
  RtspFraming framing (caps);
  EXPECT_EQ (feed (framing, "\r\n\r\nOPTIONS * RTSP/1.0\r\n" + headers (20)), Verdict::kOverCap);
  // Interleaved data first is RTSP.
  RtspFraming data_first (caps);
  EXPECT_EQ (feed (data_first, frame (5) + "RTSP/1.0 200 OK\r\n" + headers (20)), Verdict::kOverCap);
}

// GstRTSPConnection parses an HTTP message too (RTSP-over-HTTP tunnels), so
// the first header block of an HTTP stream is capped like RTSP's.
TEST (RtspFraming, FirstHttpHeaderBlockIsCapped)
{
  RtspFraming get (small_caps ());
  EXPECT_EQ (feed (get, "GET /cam HTTP/1.0\r\n" + headers (20)), Verdict::kOverCap);
  EXPECT_EQ (get.reason (), "an HTTP message with a header block over 8 lines");
  EXPECT_EQ (feed_both_ways (small_caps (), "HTTP/1.1 200 OK\r\n" + headers (20)), Verdict::kOverCap);
}

std::string
base64 (const std::string &text)
{
  gchar *encoded = g_base64_encode (reinterpret_cast<const guchar *> (text.data ()), text.size ());
  std::string result = encoded;
  g_free (encoded);
  return result;
}

// The body of a tunnel's POST is base64 RTSP: followed decoded.
TEST (RtspFraming, TunnelledRtspIsFollowed)
{
  const std::string post = "POST /cam HTTP/1.0\r\nx-sessioncookie: abc\r\n"
                           "Content-Type: application/x-rtsp-tunnelled\r\n\r\n";
  const std::string fine = base64 ("OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n") +
                           base64 ("GET_PARAMETER * RTSP/1.0\r\nCSeq: 2\r\n\r\n");
  EXPECT_EQ (feed_both_ways (small_caps (), post + fine), Verdict::kOk);
  RtspFraming flooded (small_caps ());
  EXPECT_EQ (feed (flooded, post + fine + base64 ("DESCRIBE * RTSP/1.0\r\n" + headers (20))),
      Verdict::kOverCap);
  EXPECT_EQ (flooded.reason (),
      "an RTSP-over-HTTP tunnel carrying a request with a header block over 8 lines");
  EXPECT_EQ (feed_both_ways (small_caps (),
                 post + base64 ("SET_PARAMETER * RTSP/1.0\r\nContent-Length: 500\r\n\r\n")),
      Verdict::kOverCap);
}

// The stream: reads pass the bytes through until a message goes over a cap,
// then fail with G_IO_ERROR_MESSAGE_TOO_LARGE, blocking or not.
std::string reported;

TEST (RtspGuardStream, FailsTheReadPastACap)
{
  const std::string bytes = "RTSP/1.0 200 OK\r\nCSeq: 1\r\n\r\n" + frame (100) +
                            "RTSP/1.0 200 OK\r\n" + headers (100);
  GInputStream *memory = g_memory_input_stream_new_from_data (bytes.data (), bytes.size (), nullptr);
  GInputStream *guarded = camrelay::rtsp_guard_wrap (memory, nullptr, small_caps (),
      [] (const char *line) { reported += std::string (line) + "\n"; });
  g_object_unref (memory);
  char buffer[64];
  GError *error = nullptr;
  std::string got;
  gssize n;
  while ((n = g_pollable_input_stream_read_nonblocking (G_POLLABLE_INPUT_STREAM (guarded), buffer,
              sizeof buffer, nullptr, &error)) > 0)
    got.append (buffer, n);
  ASSERT_TRUE (error);
  EXPECT_TRUE (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_MESSAGE_TOO_LARGE)) << error->message;
  g_clear_error (&error);
  EXPECT_EQ (got, bytes.substr (0, got.size ()));
  EXPECT_GE (got.size (), 28u + 104u);
  // Blocking reads fail the same, and the report was written once.
  EXPECT_EQ (g_input_stream_read (guarded, buffer, sizeof buffer, nullptr, &error), -1);
  EXPECT_TRUE (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_MESSAGE_TOO_LARGE));
  g_clear_error (&error);
  EXPECT_EQ (reported, "RTSP peer (unknown) sent an answer with a header block over 8 lines; "
                      "closing its connection\n");
  g_object_unref (guarded);
}

TEST (RtspGuardStream, PassesOtherProtocolsThrough)
{
  const std::string bytes = "GET / HTTP/1.1\r\n\r\n" + headers (5000) + "\r\n";
  GInputStream *memory = g_memory_input_stream_new_from_data (bytes.data (), bytes.size (), nullptr);
  GInputStream *guarded = camrelay::rtsp_guard_wrap (memory, nullptr, small_caps (), nullptr);
  g_object_unref (memory);
  std::string got;
  char buffer[4096];
  gssize n;
  GError *error = nullptr;
  while ((n = g_input_stream_read (guarded, buffer, sizeof buffer, nullptr, &error)) > 0)
    got.append (buffer, n);
  EXPECT_EQ (n, 0);
  EXPECT_FALSE (error);
  EXPECT_EQ (got, bytes);
  g_object_unref (guarded);
}

}  // namespace
