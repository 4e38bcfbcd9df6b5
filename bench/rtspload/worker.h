// A worker of rtspload: one thread, one epoll set, a share of the clients.
#pragma once

#include <sys/epoll.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "rtsp_client.h"

namespace rtspload {

// When things happen, on CLOCK_MONOTONIC in microseconds.
struct Plan {
  int64_t start = 0;        // the first client starts
  int64_t end = 0;          // counting stops, TEARDOWNs go out
  int64_t ramp = 0;         // client i of n starts at start + ramp * i / n
  int total_clients = 0;
  int64_t stall_start = -1, stall_end = -1;  // for the stall clients; -1: none
  int64_t drain = 1'000'000;  // how long to wait for TEARDOWN answers
  // Least time between two epoll waits that did not fill the event array.
  // Waiting lets several packets gather on a socket, read by one recv: far
  // fewer system calls per packet, for arrival times this much coarser.
  int64_t poll_interval = 0;
};

int64_t now_us ();

class Worker {
 public:
  Worker ();
  ~Worker ();
  Worker (const Worker &) = delete;
  Worker &operator= (const Worker &) = delete;

  void add (std::unique_ptr<Client> client);
  // Runs the plan; returns after the drain.  `interrupted` ends the run early
  // (counting stops at that moment, as at the planned end).
  void run (const Plan &plan, const std::atomic<bool> &interrupted);

  std::vector<std::unique_ptr<Client>> clients;

 private:
  void dispatch (int ready);

  int epoll_fd_ = -1;
  UdpScratch scratch_;
  static constexpr int kEvents = 256;
  std::unique_ptr<epoll_event[]> events_;
};

}  // namespace rtspload
