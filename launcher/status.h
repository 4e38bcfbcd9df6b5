// A snapshot of what the launcher is doing, for the HTTP endpoints.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/gstref.h"

namespace camrelay::launcher {

struct CameraStatus {
  std::string name;
  std::string mount;           // "/name"
  std::string state;           // camerasrc state nick: stopped, connecting, streaming, ...
  bool up = false;             // streaming
  uint64_t reconnects = 0;
  uint64_t bytes_in = 0;       // from the camera
  uint64_t frames_in = 0;
  uint64_t frames_dropped = 0; // by resilientqueue
  uint64_t clients = 0;        // RTSP clients playing this camera now
  uint64_t bytes_out = 0;      // handed to the RTSP media, once whatever the clients
  uint64_t gop_cache_bytes = 0;     // held for instant start now
  uint64_t instant_starts = 0;      // clients started from the cached GOP
  uint64_t live_starts = 0;         // clients started live (no usable GOP, or not possible)
  StructurePtr camerasrc_stats;      // may be null (camera not running)
  StructurePtr resilientqueue_stats; // may be null
};

struct Status {
  std::string version;
  double uptime_seconds = 0;
  uint64_t clients = 0;        // all cameras
  uint64_t clients_cut = 0;    // closed for not reading (server.slow_client_timeout), since start
  uint64_t resident_bytes = 0;     // the process's resident memory
  uint64_t heap_in_use_bytes = 0;  // allocated by malloc and not freed
  uint64_t heap_free_bytes = 0;    // freed, kept by the allocator for reuse
  std::vector<CameraStatus> cameras;
};

using StatusProvider = std::function<Status ()>;

}  // namespace camrelay::launcher
