// The current GOP of an RTP video stream (see gop_cache.h).
#include "gop_cache.h"

namespace camrelay {

namespace {

// Packets kept regardless of GOPs, to extend a burst taken a moment before
// the receiver's first live packet (a few frames at most are needed).
constexpr size_t kRecent = 512;
// After a frame went back in time (B-frames), this many GOPs more are
// refused: a stream that reorders does so in every GOP, and its first
// frames after a keyframe may not show it yet.
constexpr unsigned kReorderCooldown = 3;

}  // namespace

bool
read_rtp_header (GstBuffer *packet, RtpHeader &header)
{
  guint8 bytes[12];
  if (!packet || gst_buffer_extract (packet, 0, bytes, sizeof bytes) != sizeof bytes
      || (bytes[0] >> 6) != 2)
    return false;
  header.marker = (bytes[1] & 0x80) != 0;
  header.seq = static_cast<uint16_t> ((bytes[2] << 8) | bytes[3]);
  header.timestamp = (static_cast<uint32_t> (bytes[4]) << 24) | (static_cast<uint32_t> (bytes[5]) << 16)
      | (static_cast<uint32_t> (bytes[6]) << 8) | bytes[7];
  return true;
}

BufferPtr
restamp_rtp (GstBuffer *packet, uint32_t timestamp)
{
  // A shallow copy shares the memories; writing maps the header's memory
  // writable, which copies that one memory only.
  BufferPtr copy{gst_buffer_copy (packet)};
  const guint8 bytes[4] = {static_cast<guint8> (timestamp >> 24), static_cast<guint8> (timestamp >> 16),
      static_cast<guint8> (timestamp >> 8), static_cast<guint8> (timestamp)};
  gst_buffer_fill (copy.get (), 4, bytes, sizeof bytes);
  return copy;
}

GopCache::GopCache (uint64_t max_bytes) : max_bytes_ (max_bytes) {}

void
GopCache::drop_gop_locked ()
{
  gop_.clear ();
  bytes_ = 0;
}

void
GopCache::push (GstBuffer *packet)
{
  RtpHeader header;
  if (!read_rtp_header (packet, header))
    return;
  const gsize size = gst_buffer_get_size (packet);
  std::lock_guard<std::mutex> l (lock_);
  const bool new_frame = !have_last_ || last_.timestamp != header.timestamp || last_.marker;
  if (new_frame && have_last_
      && static_cast<int32_t> (header.timestamp - frame_timestamp_) < 0) {
    reordered_in_gop_ = true;
    reorder_cooldown_ = kReorderCooldown;
  }
  if (new_frame)
    frame_timestamp_ = header.timestamp;
  have_last_ = true;
  last_ = header;

  recent_.push_back (Packet{BufferPtr{gst_buffer_ref (packet)}, header, size});
  if (recent_.size () > kRecent)
    recent_.pop_front ();

  if (new_frame && !GST_BUFFER_FLAG_IS_SET (packet, GST_BUFFER_FLAG_DELTA_UNIT)) {
    if (reorder_cooldown_ > 0 && !reordered_in_gop_)
      reorder_cooldown_--;
    reordered_in_gop_ = false;
    over_ = false;
    drop_gop_locked ();
  } else if (gop_.empty () || over_) {
    return;  // no keyframe yet, or this GOP is too big
  }
  gop_.push_back (Packet{BufferPtr{gst_buffer_ref (packet)}, header, size});
  bytes_ += size;
  if (bytes_ > max_bytes_) {
    over_ = true;
    drop_gop_locked ();
  }
}

void
GopCache::clear ()
{
  std::lock_guard<std::mutex> l (lock_);
  drop_gop_locked ();
  recent_.clear ();
  have_last_ = false;
  over_ = false;
  reordered_in_gop_ = false;
}

bool
GopCache::reordered () const
{
  std::lock_guard<std::mutex> l (lock_);
  return reordered_in_gop_ || reorder_cooldown_ > 0;
}

GopBurst
GopCache::take (uint64_t max_bytes, std::string &why) const
{
  GopBurst burst;
  std::vector<Packet> gop;
  {
    std::lock_guard<std::mutex> l (lock_);
    if (reordered_in_gop_ || reorder_cooldown_ > 0) {
      why = "the stream reorders frames (B-frames)";
      return burst;
    }
    if (gop_.empty ()) {
      why = over_ ? "the GOP is larger than the cache's limit" : "no keyframe yet";
      return burst;
    }
    if (bytes_ > max_bytes) {
      why = "the GOP is larger than the burst limit";
      return burst;
    }
    gop.reserve (gop_.size ());
    for (const Packet &p : gop_)
      gop.push_back (Packet{BufferPtr{gst_buffer_ref (p.buffer.get ())}, p.header, p.size});
  }
  // Frames are runs of packets with one timestamp; the newest keeps its own,
  // the older ones take the ticks just below it, in order.
  unsigned frames = 0;
  for (size_t i = 0; i < gop.size (); i++)
    if (i == 0 || gop[i].header.timestamp != gop[i - 1].header.timestamp || gop[i - 1].header.marker)
      frames++;
  const uint32_t head = gop.back ().header.timestamp;
  const unsigned older = frames - 1;
  unsigned frame = 0;
  burst.packets.reserve (gop.size ());
  for (size_t i = 0; i < gop.size (); i++) {
    if (i > 0 && (gop[i].header.timestamp != gop[i - 1].header.timestamp || gop[i - 1].header.marker))
      frame++;
    if (frame < older)
      burst.packets.push_back (restamp_rtp (gop[i].buffer.get (), head - older + frame));
    else
      burst.packets.push_back (std::move (gop[i].buffer));
    burst.bytes += gop[i].size;
  }
  burst.frames = frames;
  burst.first_seq = gop.front ().header.seq;
  burst.last_seq = gop.back ().header.seq;
  burst.first_timestamp = older > 0 ? head - older : head;
  return burst;
}

bool
GopCache::since (uint16_t after, uint16_t before, std::vector<BufferPtr> &out) const
{
  std::lock_guard<std::mutex> l (lock_);
  auto it = recent_.begin ();
  while (it != recent_.end () && !seq_after (it->header.seq, after))
    ++it;
  if (it == recent_.end ())
    return !seq_after (before, static_cast<uint16_t> (after + 1));  // nothing came between
  if (it->header.seq != static_cast<uint16_t> (after + 1))
    return false;  // some are gone already
  for (; it != recent_.end () && seq_after (before, it->header.seq); ++it)
    out.push_back (BufferPtr{gst_buffer_ref (it->buffer.get ())});
  return true;
}

}  // namespace camrelay
