// RTP packets for the GOP cache tests: made with GstRTPBuffer, as a
// payloader makes them, and read back with it.
#pragma once

#include <gst/gst.h>
#include <gst/rtp/gstrtpbuffer.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>

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
