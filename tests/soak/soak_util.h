// Shared by the soak and network-fault suites: settings from the
// environment, resource samples of the camrelay child from /proc, and raw
// RTSP clients that misbehave on purpose (play, then stop reading or vanish
// without TEARDOWN).
#pragma once

#include <dirent.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>

#include "launcher/launcher_test_util.h"

namespace camrelay::soak_test {

using camrelay::launcher_test::RtspProbe;

// The integer in environment variable `name`, or `fallback` when it is unset
// or not a positive number.
inline long
env_long (const char *name, long fallback)
{
  const char *text = g_getenv (name);
  if (!text || !*text)
    return fallback;
  char *end = nullptr;
  long value = std::strtol (text, &end, 10);
  return end && *end == '\0' && value > 0 ? value : fallback;
}

// What /proc says about a process at one moment.
struct ProcessSample {
  double at_s = 0;        // seconds since the run started
  long rss_kib = -1;      // VmRSS
  long threads = -1;      // entries of /proc/PID/task
  long fds = -1;          // entries of /proc/PID/fd
  long clients = -1;      // the relay's own count (camrelay_clients of /metrics), if read
  bool valid () const { return rss_kib >= 0 && threads >= 0 && fds >= 0; }
};

inline long
count_entries (const std::string &directory)
{
  DIR *dir = opendir (directory.c_str ());
  if (!dir)
    return -1;
  long count = 0;
  while (struct dirent *entry = readdir (dir))
    if (entry->d_name[0] != '.')
      count++;
  closedir (dir);
  return count;
}

// Reads VmRSS, the thread count and the fd count of `pid`; fields stay -1
// when the process is gone.
inline ProcessSample
sample_process (int pid, double at_s)
{
  ProcessSample sample;
  sample.at_s = at_s;
  if (pid <= 0)
    return sample;
  const std::string proc = "/proc/" + std::to_string (pid);
  std::ifstream status (proc + "/status");
  std::string line;
  while (std::getline (status, line))
    if (line.rfind ("VmRSS:", 0) == 0)
      sample.rss_kib = std::strtol (line.c_str () + 6, nullptr, 10);
  sample.threads = count_entries (proc + "/task");
  sample.fds = count_entries (proc + "/fd");
  return sample;
}

// A raw RTSP client that DESCRIBEs, SETUPs the video stream with
// `transport` and PLAYs, then never reads nor sends again: with TCP
// interleaved transport the relay's socket to it fills up (a stalled
// player); destroyed, its connection closes without TEARDOWN (a player that
// crashed or lost its network).
class PlayingProbe {
 public:
  // `transport`: an RTSP Transport header value, e.g.
  // "RTP/AVP/TCP;unicast;interleaved=0-1".
  PlayingProbe (int port, const std::string &mount, const std::string &transport)
      : probe_ (std::make_unique<RtspProbe> (port))
  {
    RtspProbe::Response describe = probe_->request ("DESCRIBE", mount, {"Accept: application/sdp"});
    if (describe.status != "RTSP/1.0 200 OK") {
      failure_ = "DESCRIBE: " + describe.status;
      return;
    }
    RtspProbe::Response setup = probe_->request ("SETUP", mount + "/stream=0",
        {"Transport: " + transport});
    std::string session = setup.header ("Session");
    session = session.substr (0, session.find (';'));
    if (setup.status != "RTSP/1.0 200 OK" || session.empty ()) {
      failure_ = "SETUP: " + setup.status;
      return;
    }
    RtspProbe::Response play = probe_->request ("PLAY", mount, {"Session: " + session});
    if (play.status != "RTSP/1.0 200 OK") {
      failure_ = "PLAY: " + play.status;
      return;
    }
    playing_ = true;
  }

  bool playing () const { return playing_; }
  // Why it is not playing ("DESCRIBE: RTSP/1.0 503 Service Unavailable"...).
  const std::string &failure () const { return failure_; }

 private:
  std::unique_ptr<RtspProbe> probe_;
  bool playing_ = false;
  std::string failure_;
};

// camrelay_clients of the relay's /metrics on 127.0.0.1:`http_port`: the
// RTSP clients it holds sessions for; -1 when it does not answer.
inline long
relay_clients (int http_port)
{
  int status = 0;
  const std::string metrics = camrelay::launcher_test::http_get (http_port, "/metrics", status);
  const std::string key = "\ncamrelay_clients ";
  const size_t at = metrics.find (key);
  if (status != 0 || at == std::string::npos)
    return -1;
  return std::strtol (metrics.c_str () + at + key.size (), nullptr, 10);
}

}  // namespace camrelay::soak_test
