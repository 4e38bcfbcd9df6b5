// RtspFraming (plugins/common/rtsp_framing.h): any bytes, in pieces of any
// size, give the same verdict and reason as in one piece, and a stream over
// a cap stays over it.
//
// Input: one byte choosing the piece size (1 to 256), then the bytes a peer
// sends.  Small caps, so that short inputs reach them.
#include "common/rtsp_framing.h"

#include <cstddef>
#include <cstdint>
#include <cstdlib>

extern "C" int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  if (size < 1)
    return 0;
  const size_t piece = static_cast<size_t> (data[0]) + 1;
  data++;
  size--;
  camrelay::RtspCaps caps;
  caps.header_lines = 16;
  caps.header_bytes = 512;
  caps.request_body = 64;
  caps.response_body = 256;

  camrelay::RtspFraming whole (caps);
  const auto at_once = whole.feed (data, size);

  camrelay::RtspFraming pieces (caps);
  auto last = camrelay::RtspFraming::Verdict::kOk;
  bool over = false;
  for (size_t at = 0; at < size; at += piece) {
    last = pieces.feed (data + at, size - at < piece ? size - at : piece);
    if (over && last != camrelay::RtspFraming::Verdict::kOverCap)
      std::abort ();  // left its cap
    over = last == camrelay::RtspFraming::Verdict::kOverCap;
  }
  if (size > 0 && last != at_once)
    std::abort ();
  if (whole.reason () != pieces.reason () || whole.followed () != pieces.followed () ||
      whole.passed_through () != pieces.passed_through ())
    std::abort ();
  return 0;
}
