// Instant start: a client that starts playing a camera gets the camera's
// current GOP at once (a catch-up burst right after its PLAY answer), then
// the live packets, instead of waiting for the camera's next keyframe.
//
// Each media keeps a GopCache fed by a probe on its video payloader (pay0).
// A client's first PLAY of a session's video gets, in order: its video
// transport held back (TCP: a sender of its own; UDP: its "add" to the UDP
// sink stopped), the GOP taken from the cache and RTP-Info set to its first
// packet, the answer, then the burst and the live packets after it, with
// continuous sequence numbers.  Audio starts live.  See docs/instant-start.md.
#pragma once

#include <gst/rtsp-server/rtsp-server.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "common/gop_cache.h"

namespace camrelay::launcher {

// A camera's instant-start settings; changed in place by a reload, read by
// the joins of every media of the camera.
struct InstantStartSettings {
  std::atomic<bool> enabled{true};
  std::atomic<uint64_t> cache_max_bytes{8u << 20};  // per media (camera)
  std::atomic<uint64_t> burst_max_bytes{8u << 20};  // per client
  // What happened to the joins (for /metrics).
  std::atomic<uint64_t> bursts{0};      // started from the cached GOP
  std::atomic<uint64_t> live_starts{0}; // started live: no usable GOP, or a transport without bursts
};

// Keeps a GOP cache on `payloader` (the media's pay0) for the clients of
// `media`; `camera` names it in log lines.  Returns the cache (for its
// figures), or nullptr when `payloader` has no src pad.
std::shared_ptr<GopCache> attach_gop_cache (GstRTSPMedia *media, GstElement *payloader,
    std::shared_ptr<InstantStartSettings> settings, const std::string &camera);

// The three steps of a client's join, from its signal handlers (any RTSP
// worker thread): "pre-play-request" (before the PLAY activates the
// session's transports) sets the video transport up to hold its first live
// packets; "send-message" with the PLAY answer takes the burst and sets
// RTP-Info; "play-request" (the answer is queued) lets the burst go.
GstRTSPStatusCode instant_start_pre_play (GstRTSPClient *client, GstRTSPContext *ctx);
void prepare_instant_start (GstRTSPClient *client, GstRTSPContext *ctx, GstRTSPMessage *message);
void instant_start_play (GstRTSPClient *client, GstRTSPContext *ctx);

// `rtp_info` (an RTP-Info header value) with the seq and rtptime of the
// entry whose url ends with "/" + `control` replaced; "" when there is no
// such entry.
std::string rewrite_rtp_info (const std::string &rtp_info, const std::string &control,
    uint16_t seq, uint32_t rtptime);

}  // namespace camrelay::launcher
