// What following RTSP framing costs per read on a TCP-interleaved camera
// (plugins/common/rtsp_framing.h): prints ns per read and per frame.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>

#include "common/rtsp_framing.h"

int
main ()
{
  // RTP packets of 1400 bytes in `$` frames, after an answer with an SDP.
  std::string frame = "$";
  frame += '\0';
  frame += static_cast<char> (1400 >> 8);
  frame += static_cast<char> (1400 & 0xff);
  frame += std::string (1400, 'x');
  std::string stream;
  while (stream.size () < 64 * 1024 * 1024)
    stream += frame;
  const std::string answer = "RTSP/1.0 200 OK\r\nCSeq: 4\r\nContent-Length: 500\r\n\r\n" +
                             std::string (500, 's');
  const double frames = static_cast<double> (stream.size ()) / frame.size ();

  std::printf ("read size   ns/read   ns/frame   GB/s\n");
  for (std::size_t read_size : {1404u, 4096u, 65536u}) {
    camrelay::RtspFraming framing{camrelay::RtspCaps{}};
    framing.feed (reinterpret_cast<const std::uint8_t *> (answer.data ()), answer.size ());
    const auto start = std::chrono::steady_clock::now ();
    std::size_t reads = 0;
    for (int pass = 0; pass < 8; pass++)
      for (std::size_t at = 0; at < stream.size (); at += read_size, reads++) {
        if (framing.feed (reinterpret_cast<const std::uint8_t *> (stream.data ()) + at,
                std::min (read_size, stream.size () - at)) != camrelay::RtspFraming::Verdict::kOk) {
          std::printf ("over a cap: %s\n", framing.reason ().c_str ());
          return 1;
        }
      }
    const double ns = std::chrono::duration<double, std::nano> (
        std::chrono::steady_clock::now () - start).count ();
    std::printf ("%9zu %9.1f %10.2f %6.1f\n", read_size, ns / reads, ns / (8 * frames),
        8.0 * stream.size () / ns);
  }
  return 0;
}
