// The current GOP of an RTP video stream, kept so that a new receiver can be
// sent it at once (a catch-up burst) instead of waiting for the next keyframe.
// Used by the launcher (a probe on each media's video payloader) and by the
// `gopcache` element.
#pragma once

#include <gst/gst.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

#include "gstref.h"

namespace camrelay {

// The RTP header fields the cache uses, read from a packet's first bytes.
struct RtpHeader {
  uint16_t seq = 0;
  uint32_t timestamp = 0;
  bool marker = false;
};
// False when `packet` is not an RTP packet (too short, not version 2).
bool read_rtp_header (GstBuffer *packet, RtpHeader &header);
// The RTP sequence number of `packet` (0 when it is not RTP).
inline uint16_t
rtp_seq (GstBuffer *packet)
{
  RtpHeader header;
  return read_rtp_header (packet, header) ? header.seq : 0;
}
// `a` comes after `b` in RTP sequence-number order (RFC 3550 wrap-around).
inline bool
seq_after (uint16_t a, uint16_t b)
{
  return static_cast<int16_t> (a - b) > 0;
}
// A copy of `packet` whose RTP timestamp is `timestamp`; the payload is
// shared, the header is the copy's own.
BufferPtr restamp_rtp (GstBuffer *packet, uint32_t timestamp);

// The video codecs whose keyframes the cache can find in the payload, for
// payloaders that do not flag them: rtph265pay (1.22) flags every packet
// made from byte-stream input as a delta unit, keyframes' too.
enum class RtpVideoCodec { other, h264, h265 };
// The codec of RTP caps, from their encoding-name; other when neither.
RtpVideoCodec rtp_video_codec (const GstCaps *caps);
// Whether `packet`'s payload holds (part of) an IDR (H.264) or IRAP (H.265)
// picture: in a single NAL unit, an aggregation or a fragment.
bool holds_keyframe_picture (GstBuffer *packet, RtpVideoCodec codec);

// A GOP as taken from the cache, ready to send to one receiver.
struct GopBurst {
  std::vector<BufferPtr> packets;  // the keyframe's first packet first, then every packet since
  uint64_t bytes = 0;
  uint16_t first_seq = 0;          // of packets.front ()
  uint16_t last_seq = 0;           // of packets.back ()
  uint32_t first_timestamp = 0;    // packets.front ()'s RTP timestamp, once squeezed
  unsigned frames = 0;
  bool empty () const { return packets.empty (); }
};

class GopCache {
 public:
  explicit GopCache (uint64_t max_bytes);

  // A packet the payloader sent (streaming thread).  A frame starts a new
  // GOP when its first packet is not flagged GST_BUFFER_FLAG_DELTA_UNIT, or,
  // with an H.264 or H.265 codec set, when one of its packets holds an IDR
  // or IRAP picture (the GOP then starts at the frame's first packet).
  void push (GstBuffer *packet);
  // What the stream's events mean to the cache (streaming thread): CAPS set
  // the codec, FLUSH_STOP and STREAM_START clear it.
  void handle_event (GstEvent *event);
  void set_codec (RtpVideoCodec codec);
  // Forgets everything (a flush, new caps); the next keyframe starts again.
  void clear ();
  // Above this many bytes the GOP is dropped and the cache waits for the
  // next keyframe (receivers then start there, as without a cache).
  void set_max_bytes (uint64_t max_bytes) { max_bytes_ = max_bytes; }

  // The current GOP with its older frames' timestamps squeezed onto the
  // newest frame's (one tick apart, just below it), so that a receiver plays
  // them at once and is live right after.  Empty, with `why`, when there is
  // none a receiver could start from: no keyframe seen yet, the GOP is over
  // `max_bytes` (the cache's or this call's), or the stream reorders frames
  // (B-frames: their order of transmission is not their order of display).
  GopBurst take (uint64_t max_bytes, std::string &why) const;
  // The packets that came after `after` (its sequence number), from the
  // recent ones, up to but not including `before`, in order; false when
  // they are no longer all there.
  bool since (uint16_t after, uint16_t before, std::vector<BufferPtr> &out) const;

  uint64_t bytes () const { return bytes_; }
  bool reordered () const;

 private:
  struct Packet {
    BufferPtr buffer;
    RtpHeader header;
    gsize size = 0;
  };
  void drop_gop_locked ();
  // Whether joins are refused for reordering (a frame went back in time).
  bool reordered_locked () const { return reordered_in_gop_ || reorder_cooldown_ > 0; }

  mutable std::mutex lock_;
  std::vector<Packet> gop_;           // from the keyframe's first packet
  std::vector<Packet> frame_;         // the newest frame's packets so far
  bool frame_is_key_ = false;         // the newest frame started the GOP
  RtpVideoCodec codec_ = RtpVideoCodec::other;
  std::deque<Packet> recent_;         // the last kRecent packets, any GOP
  bool have_last_ = false;
  RtpHeader last_;                    // the previous packet
  uint32_t frame_timestamp_ = 0;      // of the newest frame
  bool over_ = false;                 // dropped for size: waiting for a keyframe
  bool reordered_in_gop_ = false;     // a frame of this GOP went back in time
  unsigned reorder_cooldown_ = 0;     // GOPs still refused after reordering was seen
  std::atomic<uint64_t> max_bytes_;
  std::atomic<uint64_t> bytes_{0};
};

}  // namespace camrelay
