// Follows RTSP framing byte by byte (see rtsp_framing.h); no I/O, no GLib.
#include "common/rtsp_framing.h"

#include <algorithm>
#include <cstring>

namespace camrelay {

namespace {

constexpr char kLengthName[] = "content-length";
constexpr unsigned kLengthNameSize = sizeof (kLengthName) - 1;
// What sniffing keeps of the first line: enough for "RTSP/" at its start and
// " RTSP/1.0" at its end.
constexpr std::size_t kSniffKeep = 16;
// A first line longer than this is followed as RTSP (GstRTSPConnection
// truncates long lines and reads on, so it must not be a way around the caps).
constexpr std::size_t kSniffLine = 4096;

char
lower (std::uint8_t c)
{
  return (c >= 'A' && c <= 'Z') ? static_cast<char> (c - 'A' + 'a') : static_cast<char> (c);
}

// Like GLib's base64 decoder: '=' counts as 0, other characters that are
// not base64 are skipped.
int
base64_rank (std::uint8_t c)
{
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == '+')
    return 62;
  if (c == '/')
    return 63;
  if (c == '=')
    return 0;
  return -1;
}

}  // namespace

RtspFraming::~RtspFraming () = default;

RtspFraming::Verdict
RtspFraming::feed (const std::uint8_t *data, std::size_t size)
{
  std::size_t i = 0;
  while (i < size) {
    switch (state_) {
      case State::kPassThrough:
        return Verdict::kOk;
      case State::kOverCap:
        return Verdict::kOverCap;
      case State::kSniff:
        sniff_byte (data[i++]);
        break;
      case State::kStart:
        if (data[i] == '$') {
          i++;
          state_ = State::kFrameHeader;
          frame_header_left_ = 3;
          frame_length_ = 0;
        } else {
          start_headers ();
        }
        break;
      case State::kFrameHeader:
        // channel, then the length, big-endian
        if (frame_header_left_ <= 2)
          frame_length_ = (frame_length_ << 8) | data[i];
        i++;
        if (--frame_header_left_ == 0) {
          left_ = frame_length_;
          state_ = left_ ? State::kFrameData : State::kStart;
        }
        break;
      case State::kFrameData:
      case State::kBody: {
        const std::uint64_t take = std::min<std::uint64_t> (left_, size - i);
        i += static_cast<std::size_t> (take);
        left_ -= take;
        if (left_ == 0)
          state_ = State::kStart;
        break;
      }
      case State::kHeaders:
        if (!header_byte (data[i++]))
          return Verdict::kOverCap;
        break;
      case State::kTunnel:
        tunnel (data, size, i);
        break;
    }
  }
  return state_ == State::kOverCap ? Verdict::kOverCap : Verdict::kOk;
}

void
RtspFraming::sniff_byte (std::uint8_t c)
{
  // The first byte alone can decide: `$` is interleaved data, which only RTSP
  // has; a TLS record or anything else not printable is not RTSP.
  if (sniff_length_ == 0 && c != '\r' && c != '\n') {
    if (c == '$') {
      state_ = State::kFrameHeader;
      frame_header_left_ = 3;
      frame_length_ = 0;
      return;
    }
    if (c < 0x20 || c >= 0x7f) {
      state_ = State::kPassThrough;
      return;
    }
  }
  if (c != '\n') {
    sniff_length_++;
    if (c != '\r') {
      if (sniff_head_.size () < kSniffKeep)
        sniff_head_.push_back (static_cast<char> (c));
      sniff_tail_.push_back (static_cast<char> (c));
      if (sniff_tail_.size () > kSniffKeep)
        sniff_tail_.erase (0, 1);
    }
    if (sniff_length_ <= kSniffLine)
      return;
  } else if (sniff_head_.empty ()) {
    // Empty lines before the first start line: still undecided.
    sniff_length_ = 0;
    return;
  }
  const std::size_t space = sniff_tail_.rfind (' ');
  const bool rtsp_request = space != std::string::npos &&
                            sniff_tail_.compare (space + 1, 5, "RTSP/") == 0;
  const bool rtsp_answer = sniff_head_.compare (0, 5, "RTSP/") == 0;
  const bool http_request = space != std::string::npos &&
                            sniff_tail_.compare (space + 1, 5, "HTTP/") == 0;
  const bool http_answer = sniff_head_.compare (0, 5, "HTTP/") == 0;
  if (c == '\n' && !rtsp_request && !rtsp_answer && !http_request && !http_answer) {
    state_ = State::kPassThrough;
    return;
  }
  http_ = c == '\n' && !rtsp_request && !rtsp_answer;
  http_post_ = http_request && sniff_head_.compare (0, 5, "POST ") == 0;
  // Followed: the first line is the start line of the first message.
  start_headers ();
  std::memcpy (start_, sniff_head_.data (), std::min (sizeof start_, sniff_head_.size ()));
  block_bytes_ = sniff_length_;
  line_bytes_ = sniff_length_;
  if (c == '\n')
    header_byte (c);  // ends the start line
  sniff_head_.clear ();
  sniff_tail_.clear ();
}

void
RtspFraming::start_headers ()
{
  state_ = State::kHeaders;
  lines_ = 0;
  block_bytes_ = 0;
  line_bytes_ = 0;
  first_line_ = true;
  std::memset (start_, 0, sizeof start_);
  field_ = Field::kIgnored;
  have_length_ = false;
  length_ = 0;
}

bool
RtspFraming::header_byte (std::uint8_t c)
{
  if (++block_bytes_ > caps_.header_bytes)
    return fail ("with a header block over " + std::to_string (caps_.header_bytes) + " bytes");
  if (c == '\n')
    return end_of_line ();
  if (c == '\r')
    return true;
  if (first_line_ && line_bytes_ < sizeof start_)
    start_[line_bytes_] = static_cast<char> (c);
  if (line_bytes_ == 0) {
    field_ = first_line_ ? Field::kIgnored : Field::kName;
    name_matched_ = 0;
    line_is_length_ = false;
    negative_ = false;
    digits_ = false;
    value_ = 0;
  }
  line_bytes_++;
  switch (field_) {
    case Field::kName:
      if (c == ':') {
        field_ = name_matched_ == kLengthNameSize ? Field::kSpace : Field::kIgnored;
        line_is_length_ = field_ == Field::kSpace;
      } else if (name_matched_ == kLengthNameSize && (c == ' ' || c == '\t')) {
        // spaces between the name and its colon
      } else if (name_matched_ < kLengthNameSize && lower (c) == kLengthName[name_matched_]) {
        name_matched_++;
      } else {
        field_ = Field::kIgnored;
      }
      break;
    case Field::kSpace:
      if (c == ' ' || c == '\t')
        break;
      field_ = Field::kValue;
      if (c == '+' || c == '-') {
        negative_ = c == '-';
        break;
      }
      [[fallthrough]];
    case Field::kValue:
      if (c >= '0' && c <= '9') {
        const std::uint64_t digit = c - '0';
        digits_ = true;
        value_ = value_ > (UINT64_MAX - digit) / 10 ? UINT64_MAX : value_ * 10 + digit;
      } else {
        field_ = Field::kIgnored;  // like atol (): the number ends here
      }
      break;
    case Field::kIgnored:
      break;
  }
  return true;
}

bool
RtspFraming::end_of_line ()
{
  if (line_bytes_ == 0) {
    if (first_line_) {
      // Empty lines between messages are skipped, as GstRTSPConnection does.
      state_ = State::kStart;
      return true;
    }
    // The end of the header block.
    if (http_) {
      if (!http_post_) {
        state_ = State::kPassThrough;
        return true;
      }
      state_ = State::kTunnel;
      inner_ = std::make_unique<RtspFraming> (caps_);
      inner_->state_ = State::kStart;
      return true;
    }
    const bool request = std::memcmp (start_, "RTSP/", 5) != 0;
    const std::uint64_t cap = request ? caps_.request_body : caps_.response_body;
    const std::uint64_t body = have_length_ ? length_ : 0;
    if (body > cap)
      return fail ("with a Content-Length of " + std::to_string (body) + " (over " +
                   std::to_string (cap) + " bytes)");
    left_ = body;
    state_ = body ? State::kBody : State::kStart;
    return true;
  }
  if (++lines_ > caps_.header_lines)
    return fail ("with a header block over " + std::to_string (caps_.header_lines) + " lines");
  if (line_is_length_ && !have_length_) {
    // The first Content-Length counts, as in GstRTSPConnection.
    have_length_ = true;
    length_ = negative_ || !digits_ ? 0 : value_;
  }
  first_line_ = false;
  line_bytes_ = 0;
  return true;
}

// Decodes the tunnel's base64 from data[at] on, a bounded piece at a time,
// into inner_.
void
RtspFraming::tunnel (const std::uint8_t *data, std::size_t size, std::size_t &at)
{
  std::uint8_t decoded[768];
  std::size_t length = 0;
  for (; at < size && length + 3 <= sizeof decoded; at++) {
    const int rank = base64_rank (data[at]);
    if (rank < 0)
      continue;
    last_[0] = last_[1];
    last_[1] = static_cast<char> (data[at]);
    quad_ = (quad_ << 6) | static_cast<std::uint32_t> (rank);
    if (++quad_length_ < 4)
      continue;
    decoded[length++] = static_cast<std::uint8_t> (quad_ >> 16);
    if (last_[0] != '=')
      decoded[length++] = static_cast<std::uint8_t> (quad_ >> 8);
    if (last_[1] != '=')
      decoded[length++] = static_cast<std::uint8_t> (quad_);
    quad_ = 0;
    quad_length_ = 0;
  }
  if (inner_->feed (decoded, length) == Verdict::kOverCap) {
    state_ = State::kOverCap;
    reason_ = "an RTSP-over-HTTP tunnel carrying " + inner_->reason ();
  }
}

bool
RtspFraming::fail (const std::string &why)
{
  state_ = State::kOverCap;
  // The start line says which kind of message it was (its first bytes are
  // known whenever a cap is reached).
  reason_ = std::string (http_                                   ? "an HTTP message "
                         : std::memcmp (start_, "RTSP/", 5) == 0 ? "an answer "
                                                                 : "a request ") +
            why;
  return false;
}

}  // namespace camrelay
