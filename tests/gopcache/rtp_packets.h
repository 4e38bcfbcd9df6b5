// RTP packets for the GOP cache tests: made with GstRTPBuffer, as a
// payloader makes them, and read back with it.
#pragma once

#include <gst/gst.h>
#include <gst/rtp/gstrtpbuffer.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "common/gstref.h"

namespace gopcachetest {

// `keyframe`: not flagged DELTA_UNIT, as a payloader sends the first packet
// of a keyframe.  One memory, header and payload; the payload is what no
// codec takes for a keyframe (0x41: an H.264 non-IDR slice, an H.265 VPS).
inline camrelay::BufferPtr
make_packet (uint16_t seq, uint32_t timestamp, bool marker, bool keyframe, guint payload = 100)
{
  camrelay::BufferPtr packet{gst_rtp_buffer_new_allocate (payload, 0, 0)};
  GstRTPBuffer rtp = GST_RTP_BUFFER_INIT;
  EXPECT_TRUE (gst_rtp_buffer_map (packet.get (), GST_MAP_WRITE, &rtp));
  gst_rtp_buffer_set_payload_type (&rtp, 96);
  gst_rtp_buffer_set_ssrc (&rtp, 0x12345678);
  gst_rtp_buffer_set_seq (&rtp, seq);
  gst_rtp_buffer_set_timestamp (&rtp, timestamp);
  gst_rtp_buffer_set_marker (&rtp, marker);
  memset (gst_rtp_buffer_get_payload (&rtp), 0x41, payload);
  gst_rtp_buffer_unmap (&rtp);
  if (!keyframe)
    GST_BUFFER_FLAG_SET (packet.get (), GST_BUFFER_FLAG_DELTA_UNIT);
  return packet;
}

// An RTP packet with `payload`, `csrcs` CSRCs, an extension of `extension_words`
// words when > 0, and `padding` bytes of padding; checked with GstRTPBuffer.
inline camrelay::BufferPtr
packet_with_payload (uint16_t seq, uint32_t timestamp, bool marker, bool delta,
    const std::vector<guint8> &payload, guint8 csrcs = 0, guint16 extension_words = 0,
    guint8 padding = 0)
{
  std::vector<guint8> bytes{static_cast<guint8> (0x80 | (padding ? 0x20 : 0)
      | (extension_words ? 0x10 : 0) | csrcs), static_cast<guint8> ((marker ? 0x80 : 0) | 96),
      static_cast<guint8> (seq >> 8), static_cast<guint8> (seq), static_cast<guint8> (timestamp >> 24),
      static_cast<guint8> (timestamp >> 16), static_cast<guint8> (timestamp >> 8),
      static_cast<guint8> (timestamp), 0x12, 0x34, 0x56, 0x78};
  for (int i = 0; i < 4 * csrcs; i++)
    bytes.push_back (0x65);  // what an IDR NAL header looks like: must not be read as one
  if (extension_words) {
    bytes.insert (bytes.end (), {0xBE, 0xDE, static_cast<guint8> (extension_words >> 8),
        static_cast<guint8> (extension_words)});
    bytes.insert (bytes.end (), 4 * extension_words, 0x65);
  }
  bytes.insert (bytes.end (), payload.begin (), payload.end ());
  for (int i = 0; i < padding; i++)
    bytes.push_back (i + 1 == padding ? padding : 0x65);
  camrelay::BufferPtr packet{gst_buffer_new_memdup (bytes.data (), bytes.size ())};
  if (delta)
    GST_BUFFER_FLAG_SET (packet.get (), GST_BUFFER_FLAG_DELTA_UNIT);
  GstRTPBuffer rtp = GST_RTP_BUFFER_INIT;
  EXPECT_TRUE (gst_rtp_buffer_map (packet.get (), GST_MAP_READ, &rtp));
  if (rtp.buffer) {
    EXPECT_EQ (gst_rtp_buffer_get_payload_len (&rtp), payload.size ());
    gst_rtp_buffer_unmap (&rtp);
  }
  return packet;
}

struct RtpFields {
  uint16_t seq = 0;
  uint32_t timestamp = 0;
  bool marker = false;
};

inline RtpFields
rtp_fields (GstBuffer *packet)
{
  RtpFields fields;
  GstRTPBuffer rtp = GST_RTP_BUFFER_INIT;
  if (!gst_rtp_buffer_map (packet, GST_MAP_READ, &rtp)) {
    ADD_FAILURE () << "not an RTP packet";
    return fields;
  }
  fields.seq = gst_rtp_buffer_get_seq (&rtp);
  fields.timestamp = gst_rtp_buffer_get_timestamp (&rtp);
  fields.marker = gst_rtp_buffer_get_marker (&rtp);
  gst_rtp_buffer_unmap (&rtp);
  return fields;
}

}  // namespace gopcachetest
