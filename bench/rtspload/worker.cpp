#include "worker.h"

#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>

namespace rtspload {

int64_t
now_us ()
{
  timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return int64_t (ts.tv_sec) * 1'000'000 + ts.tv_nsec / 1000;
}

Worker::Worker () : events_ (new epoll_event[kEvents])
{
  epoll_fd_ = epoll_create1 (EPOLL_CLOEXEC);
}

Worker::~Worker ()
{
  clients.clear ();  // closes their sockets first
  if (epoll_fd_ >= 0)
    close (epoll_fd_);
}

void
Worker::add (std::unique_ptr<Client> client)
{
  // The key's low bit tells the RTSP socket (0) from the UDP RTP socket (1).
  client->attach (epoll_fd_, uint64_t (clients.size ()) << 1);
  clients.push_back (std::move (client));
}

void
Worker::dispatch (int ready)
{
  for (int i = 0; i < ready; i++) {
    const uint64_t key = events_[i].data.u64;
    Client &client = *clients[key >> 1];
    // One clock read per event, not per packet: enough for frame timing.
    if (key & 1)
      client.on_rtp_event (now_us (), scratch_);
    else
      client.on_control_event (events_[i].events, now_us ());
  }
}

void
Worker::run (const Plan &plan, const std::atomic<bool> &interrupted)
{
  // Timers (starts, request timeouts, keepalives, churn, stalls) are checked
  // on a 10 ms tick: a scan of a few thousand clients is cheap next to the
  // packets, and it saves a timer structure.
  constexpr int64_t kTick = 10'000;
  std::vector<int64_t> start_at (clients.size ());
  for (size_t i = 0; i < clients.size (); i++) {
    const int id = clients[i]->stats.id;
    start_at[i] = plan.start + (plan.total_clients > 0 ? plan.ramp * id / plan.total_clients : 0);
  }
  std::vector<bool> started (clients.size (), false);
  bool stalling = false, stall_over = false;
  int64_t next_tick = 0;
  int64_t poll_not_before = 0;
  for (;;) {
    int64_t now = now_us ();
    if (now >= plan.end || interrupted.load (std::memory_order_relaxed))
      break;
    if (now >= next_tick) {
      next_tick = now + kTick;
      const bool stall_now = plan.stall_start >= 0 && now >= plan.stall_start && !stall_over;
      const bool stall_done = stalling && now >= plan.stall_end;
      for (size_t i = 0; i < clients.size (); i++) {
        Client &client = *clients[i];
        if (!started[i]) {
          if (now < start_at[i])
            continue;
          started[i] = true;
          client.start (now);
        }
        if (client.stats.stall_client) {
          if (stall_now && !stalling)
            client.set_stalled (true, now);
          else if (stall_done)
            client.set_stalled (false, now);
        }
        client.on_timer (now);
      }
      if (stall_now && !stalling)
        stalling = true;
      if (stall_done) {
        stalling = false;
        stall_over = true;
      }
    }
    if (now < poll_not_before) {
      const int64_t pause = std::min (poll_not_before, plan.end) - now;
      const timespec delay{time_t (pause / 1'000'000), long (pause % 1'000'000) * 1000};
      nanosleep (&delay, nullptr);
      continue;
    }
    const int64_t wake = std::min (next_tick, plan.end);
    const int timeout_ms = int (std::max<int64_t> (0, (wake - now + 999) / 1000));
    const int ready = epoll_wait (epoll_fd_, events_.get (), kEvents, timeout_ms);
    if (ready < 0 && errno != EINTR)
      break;
    if (ready > 0) {
      // A full array means more is waiting: poll again at once.
      if (ready < kEvents && plan.poll_interval > 0)
        poll_not_before = now_us () + plan.poll_interval;
      dispatch (ready);
    }
  }

  // The end: counting stops for every client at once, then TEARDOWN.
  const int64_t end = now_us ();
  for (size_t i = 0; i < clients.size (); i++)
    if (started[i])
      clients[i]->stop (end);
  const int64_t drain_until = end + plan.drain;
  for (;;) {
    bool all_done = true;
    for (auto &client : clients)
      all_done = all_done && client->finished ();
    const int64_t now = now_us ();
    if (all_done || now >= drain_until)
      break;
    const int ready = epoll_wait (epoll_fd_, events_.get (), kEvents,
        int (std::min<int64_t> (10, (drain_until - now + 999) / 1000)));
    if (ready > 0)
      dispatch (ready);
  }
  for (auto &client : clients)
    client->close_sockets ();
}

}  // namespace rtspload
