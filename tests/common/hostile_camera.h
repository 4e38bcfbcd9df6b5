// An RTSP "camera" on 127.0.0.1 (raw TCP) that misbehaves on purpose during
// the handshake: camerasrc must bound every attempt and stop at once anyway.
#pragma once

#include <glib.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>

#include "fake_camera.h"

namespace camtest {

enum class Hostility {
  // Answers the first request (OPTIONS) with "RTSP/1.0 200 OK" and then one
  // more header line every 0.5 s, never ending the answer.
  TrickleHeaders,
  // Answers OPTIONS; answers DESCRIBE with a huge Content-Length and no body.
  HugeContentLength,
  // Answers OPTIONS; never answers DESCRIBE (reads on, says nothing).
  SilentDescribe,
  // Answers OPTIONS, DESCRIBE (a valid H.264 SDP) and SETUP (TCP
  // interleaved); never answers PLAY.
  SilentPlay,
  // Answers OPTIONS; answers DESCRIBE with "RTSP/1.0 200 OK" followed by
  // header lines as fast as the client reads them, thousands a second,
  // never ending the answer.
  EndlessHeaders,
  // Answers OPTIONS; answers DESCRIBE with a 2 GB Content-Length and a body
  // that keeps coming as fast as the client reads it.
  EndlessBody,
};

// The method whose answer never completes in `mode` ("OPTIONS", "DESCRIBE"
// or "PLAY").
const char *hostile_method (Hostility mode);
const char *hostility_name (Hostility mode);

class HostileRtspCamera {
 public:
  explicit HostileRtspCamera (Hostility mode);
  HostileRtspCamera (const HostileRtspCamera &) = delete;
  HostileRtspCamera &operator= (const HostileRtspCamera &) = delete;

  bool start () { return server_.start (); }
  // Closes every connection and joins every thread (each loop polls its
  // socket and the stop flag every 100 ms at most).
  void stop () { server_.stop (); }

  guint16 port () const { return server_.port (); }
  std::string uri () const;
  // Requests of the hostile method received so far (one per attempt).
  guint stuck () const { return stuck_; }
  // Waits until stuck () reaches `count`; false after `timeout`.
  bool wait_stuck (guint count, std::chrono::milliseconds timeout);
  guint accepted () const { return server_.accepted (); }
  guint open_connections () const { return server_.open_connections (); }

 private:
  void serve (int fd, const std::atomic<bool> &stopping);

  Hostility mode_;
  std::atomic<guint> stuck_{0};
  std::mutex mutex_;
  std::condition_variable stuck_changed_;
  TcpServer server_;  // last: its threads use the members above
};

}  // namespace camtest
