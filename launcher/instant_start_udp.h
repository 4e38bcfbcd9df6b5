// Instant start for UDP unicast clients (see instant_start.h): the burst is
// sent from the stream's own RTP socket, paced, before the client is added
// to the stream's UDP sink at the packet that follows it.
#pragma once

#include <gst/rtsp-server/rtsp-server.h>

#include <memory>
#include <string>

#include "common/gop_cache.h"

namespace camrelay::launcher {

struct UdpJoin;

// Registers the join of the UDP client of `transport` to `stream` (of
// `media`): when gst-rtsp-server adds it to the stream's UDP sink, it is
// held back until start_udp_join().  nullptr (and nothing done) when the
// stream has no UDP sink to join.
std::shared_ptr<UdpJoin> register_udp_join (GstRTSPMedia *media, GstRTSPStream *stream,
    const GstRTSPTransport *transport, std::shared_ptr<GopCache> cache, const std::string &camera);
// The client is sent `burst` (then the packets since) before it is added;
// with an empty burst, it is added at the next packet.
void start_udp_join (UdpJoin &join, GopBurst burst);

}  // namespace camrelay::launcher
