// Cuts RTSP clients that stopped reading.
//
// gst-rtsp-server 1.22 does not close a TCP-interleaved client that stops
// reading: with at most one data message per channel queued in the
// connection's watch, further packets wait in the transport's own backlog;
// when that backlog holds more than 10 s and 100 packets the server removes
// the transport from the stream (the client silently gets no more video) but
// leaves the connection and its session open.  And while every TCP client of
// a stream is back-pressured, the stream's appsink is not drained, which
// holds up the shared media.  The guard bounds that: a connection with bytes
// waiting in its socket and nothing acknowledged by the client for
// `timeout` seconds is closed (gst_rtsp_client_close), which frees its
// session and whatever was queued for it.
//
// The test is on the TCP connection itself (unsent or unacknowledged bytes in
// the kernel's send queue, and the peer's acknowledged byte count), so it
// covers RTSP over TCP, over HTTP and RTSPS alike, and a client that vanished
// without a FIN (nothing acknowledged either).  An idle client (nothing to
// send) is never cut.
#pragma once

#include <gst/rtsp-server/rtsp-server.h>

#include <cstdint>
#include <list>
#include <mutex>
#include <string>

namespace camrelay::launcher {

class ClientGuard {
 public:
  ClientGuard () = default;
  ~ClientGuard ();
  ClientGuard (const ClientGuard &) = delete;
  ClientGuard &operator= (const ClientGuard &) = delete;

  // Seconds a client may go without reading while data waits for it; 0 = never cut.
  void set_timeout (unsigned seconds);

  // Starts watching a client just connected.  Keeps no reference: a client
  // gone is forgotten.
  void watch (GstRTSPClient *client);

  // What the client plays, for the log line of a cut ("user NAME ", "/mount").
  void playing (GstRTSPClient *client, const std::string &user, const std::string &mount);

  // Measures every client and closes those stuck for longer than the timeout,
  // with a log line each.  Call it periodically (every few seconds).
  void check ();

  // Clients closed by the guard since start.
  uint64_t cut_total () const;

 private:
  struct Watched {
    GWeakRef client;
    std::string address;      // "IP:PORT" of the client
    std::string user;         // "user NAME " or ""
    std::string mount;        // "/name" once it plays
    uint64_t acked = 0;       // bytes the client has acknowledged so far
    gint64 checked_us = 0;    // monotonic time of the last measurement
    gint64 stuck_since_us = 0;  // 0 = reading
  };

  mutable std::mutex lock_;
  std::list<Watched> clients_;
  unsigned timeout_s_ = 10;
  uint64_t cut_total_ = 0;
};

}  // namespace camrelay::launcher
