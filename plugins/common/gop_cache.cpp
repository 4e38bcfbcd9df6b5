// The current GOP of an RTP video stream (see gop_cache.h).
#include "gop_cache.h"

#include "codecs.h"

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

namespace {

// The payload's bounds: after the header, its CSRCs and extension, before
// the padding.  False when the packet is too short for what it says.
bool
payload_bounds (GstBuffer *packet, gsize &begin, gsize &end)
{
  guint8 header[12];
  const gsize size = gst_buffer_get_size (packet);
  if (gst_buffer_extract (packet, 0, header, sizeof header) != sizeof header)
    return false;
  begin = 12 + 4 * (header[0] & 0x0f);
  if (header[0] & 0x10) {  // extension: 4 bytes, then its length in words
    guint8 extension[4];
    if (gst_buffer_extract (packet, begin, extension, 4) != 4)
      return false;
    begin += 4 + 4 * ((extension[2] << 8) | extension[3]);
  }
  end = size;
  if (header[0] & 0x20) {  // padding: its length is the last byte
    guint8 padding = 0;
    if (size == 0 || gst_buffer_extract (packet, size - 1, &padding, 1) != 1 || padding > size)
      return false;
    end = size - padding;
  }
  return begin < end;
}

bool
h264_is_idr (guint8 nal_header)
{
  return (nal_header & 0x1f) == 5;
}

bool
h265_is_irap (guint8 nal_header)
{
  const unsigned type = (nal_header >> 1) & 0x3f;
  return type >= 16 && type <= 23;
}

}  // namespace

RtpVideoCodec
rtp_video_codec (const GstCaps *caps)
{
  const GstStructure *s = caps && gst_caps_get_size (caps) > 0 ? gst_caps_get_structure (caps, 0) : nullptr;
  const gchar *encoding = s ? gst_structure_get_string (s, "encoding-name") : nullptr;
  if (!encoding)
    return RtpVideoCodec::other;
  for (const RtpEncodingRow &row : RTP_ENCODINGS) {
    if (g_ascii_strcasecmp (row.encoding_name, encoding) != 0)
      continue;
    if (g_str_equal (row.caps_name, "video/x-h264"))
      return RtpVideoCodec::h264;
    if (g_str_equal (row.caps_name, "video/x-h265"))
      return RtpVideoCodec::h265;
  }
  return RtpVideoCodec::other;
}

bool
holds_keyframe_picture (GstBuffer *packet, RtpVideoCodec codec)
{
  gsize begin = 0, end = 0;
  if (codec == RtpVideoCodec::other || !packet || !payload_bounds (packet, begin, end))
    return false;
  guint8 head[3] = {0, 0, 0};
  const gsize got = gst_buffer_extract (packet, begin, head, MIN (sizeof head, end - begin));
  // Aggregations (STAP-A, AP): each unit after the payload header, a 16-bit
  // size first.  Fragments (FU-A, FU): the fragment header names the type.
  // H.265 without DONL fields (sprop-max-don-diff 0, as payloaders send).
  gsize units = 0;
  if (codec == RtpVideoCodec::h264) {
    const unsigned type = head[0] & 0x1f;
    if (type == 28 || type == 29)
      return got >= 2 && h264_is_idr (head[1]);
    if (type != 24)
      return h264_is_idr (head[0]);
    units = begin + 1;
  } else {
    const unsigned type = (head[0] >> 1) & 0x3f;
    if (type == 49)
      return got >= 3 && h265_is_irap (static_cast<guint8> ((head[2] & 0x3f) << 1));
    if (type != 48)
      return h265_is_irap (head[0]);
    units = begin + 2;
  }
  while (units + 3 <= end) {
    guint8 unit[3];
    if (gst_buffer_extract (packet, units, unit, 3) != 3)
      return false;
    if (codec == RtpVideoCodec::h264 ? h264_is_idr (unit[2]) : h265_is_irap (unit[2]))
      return true;
    units += 2 + ((unit[0] << 8) | unit[1]);
  }
  return false;
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
  if (new_frame) {
    frame_.clear ();
    frame_is_key_ = false;
  }
  frame_.push_back (Packet{BufferPtr{gst_buffer_ref (packet)}, header, size});

  const bool keyframe = !frame_is_key_
      && ((new_frame && !GST_BUFFER_FLAG_IS_SET (packet, GST_BUFFER_FLAG_DELTA_UNIT))
          || holds_keyframe_picture (packet, codec_));
  if (keyframe) {
    // A new GOP, from the frame's first packet (those before this one may
    // have gone to the previous GOP).
    if (reorder_cooldown_ > 0 && !reordered_in_gop_)
      reorder_cooldown_--;
    reordered_in_gop_ = false;
    over_ = false;
    frame_is_key_ = true;
    drop_gop_locked ();
    for (const Packet &p : frame_) {
      gop_.push_back (Packet{BufferPtr{gst_buffer_ref (p.buffer.get ())}, p.header, p.size});
      bytes_ += p.size;
    }
  } else if (gop_.empty () || over_) {
    return;  // no keyframe yet, or this GOP is too big
  } else {
    gop_.push_back (Packet{BufferPtr{gst_buffer_ref (packet)}, header, size});
    bytes_ += size;
  }
  if (bytes_ > max_bytes_) {
    over_ = true;
    drop_gop_locked ();
  }
}

void
GopCache::handle_event (GstEvent *event)
{
  switch (GST_EVENT_TYPE (event)) {
    case GST_EVENT_CAPS: {
      GstCaps *caps = nullptr;
      gst_event_parse_caps (event, &caps);
      set_codec (rtp_video_codec (caps));
      break;
    }
    case GST_EVENT_FLUSH_STOP:
    case GST_EVENT_STREAM_START:
      clear ();
      break;
    default:
      break;
  }
}

void
GopCache::set_codec (RtpVideoCodec codec)
{
  std::lock_guard<std::mutex> l (lock_);
  codec_ = codec;
}

void
GopCache::clear ()
{
  std::lock_guard<std::mutex> l (lock_);
  drop_gop_locked ();
  recent_.clear ();
  frame_.clear ();
  frame_is_key_ = false;
  have_last_ = false;
  over_ = false;
  reordered_in_gop_ = false;
}

bool
GopCache::reordered () const
{
  std::lock_guard<std::mutex> l (lock_);
  return reordered_locked ();
}

GopBurst
GopCache::take (uint64_t max_bytes, std::string &why) const
{
  GopBurst burst;
  std::vector<Packet> gop;
  {
    std::lock_guard<std::mutex> l (lock_);
    if (reordered_locked ()) {
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
