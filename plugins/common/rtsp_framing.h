// Follows the framing of the bytes an RTSP peer sends (messages and `$`
// interleaved frames) and says when one message exceeds the caps; pure, no I/O.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace camrelay {

struct RtspCaps {
  std::size_t header_lines = 256;     // lines of one header block, start line included
  std::size_t header_bytes = 64 * 1024;  // bytes of one header block, line ends included
  std::uint64_t request_body = 64 * 1024;     // Content-Length of a request
  std::uint64_t response_body = 1024 * 1024;  // Content-Length of an answer
};

// Fed every byte a peer sends, in order and in pieces of any size.  The
// first bytes decide: a stream that starts like RTSP (`RTSP/`, a request
// line ending in ` RTSP/x.y`, or `$`) is followed; one that starts like
// HTTP has its first header block capped (GstRTSPConnection parses it too:
// RTSP-over-HTTP tunnels), then is passed through, except a POST, whose
// body is a tunnel's base64 RTSP and is followed decoded; anything else
// (TLS...) is passed through and never looked at again.  Work per feed is
// O(1) per interleaved frame and per body, O(n) only over header bytes,
// which are capped, and over a tunnel's bytes.
class RtspFraming {
 public:
  enum class Verdict { kOk, kOverCap };

  explicit RtspFraming (const RtspCaps &caps) : caps_ (caps) {}
  ~RtspFraming ();
  RtspFraming (const RtspFraming &) = delete;
  RtspFraming &operator= (const RtspFraming &) = delete;

  Verdict feed (const std::uint8_t *data, std::size_t size);

  // Set once feed () returned kOverCap (which it then always returns): what
  // went over which cap, e.g. "a request with a header block over 256 lines".
  const std::string &reason () const { return reason_; }
  // Whether the stream is followed as RTSP (false while undecided).
  bool followed () const { return state_ != State::kPassThrough && state_ != State::kSniff; }
  bool passed_through () const { return state_ == State::kPassThrough; }

 private:
  enum class State {
    kSniff,        // first line, deciding
    kPassThrough,  // not RTSP: never looked at again
    kStart,        // between messages
    kFrameHeader,  // the 3 bytes after `$`
    kFrameData,
    kHeaders,
    kBody,
    kTunnel,  // base64 RTSP after an HTTP POST's header block
    kOverCap,
  };

  void sniff_byte (std::uint8_t c);
  bool header_byte (std::uint8_t c);  // false when over a cap
  bool end_of_line ();
  void start_headers ();
  bool fail (const std::string &why);
  void tunnel (const std::uint8_t *data, std::size_t size, std::size_t &at);

  RtspCaps caps_;
  State state_ = State::kSniff;
  std::string reason_;

  // kSniff: the first bytes of the first line and its last bytes.
  std::string sniff_head_;
  std::string sniff_tail_;
  std::size_t sniff_length_ = 0;

  // kFrameHeader / kFrameData / kBody
  unsigned frame_header_left_ = 0;
  std::uint32_t frame_length_ = 0;
  std::uint64_t left_ = 0;

  // kHeaders: the block and the line being read.
  bool request_ = false;        // the start line is a request's
  std::size_t lines_ = 0;       // complete lines of the block
  std::size_t block_bytes_ = 0;
  std::size_t line_bytes_ = 0;  // bytes of the current line, its end excluded
  bool first_line_ = true;
  char start_[5] = {0, 0, 0, 0, 0};  // the first bytes of the start line
  // Content-Length of this block (the first such header counts).
  unsigned name_matched_ = 0;  // characters of "content-length" matched
  enum class Field { kName, kSpace, kValue, kIgnored } field_ = Field::kName;
  bool have_length_ = false;
  bool line_is_length_ = false;
  bool negative_ = false;
  bool digits_ = false;
  std::uint64_t value_ = 0;   // the number on this line
  std::uint64_t length_ = 0;  // the block's Content-Length

  // HTTP: the first header block is capped, then a POST's body is decoded
  // (as g_base64_decode_step () does) and followed by inner_.
  bool http_ = false;
  bool http_post_ = false;
  std::unique_ptr<RtspFraming> inner_;
  std::uint32_t quad_ = 0;
  unsigned quad_length_ = 0;
  char last_[2] = {0, 0};
};

}  // namespace camrelay
