#include "client_guard.h"

#include "log.h"

#include <linux/sockios.h>
#include <linux/tcp.h>  // struct tcp_info with tcpi_bytes_acked (glibc's lacks it)
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <cstdio>
#include <vector>

namespace camrelay::launcher {

namespace {

using Lock = std::lock_guard<std::mutex>;

// What the kernel knows of a client's TCP connection.
struct SocketProgress {
  bool valid = false;
  int queued = 0;           // bytes not yet acknowledged by the client (sent or not)
  uint64_t acked = 0;       // bytes the client has acknowledged since the connection began
};

SocketProgress
measure (GstRTSPClient *client)
{
  SocketProgress progress;
  GstRTSPConnection *connection = gst_rtsp_client_get_connection (client);
  GSocket *socket = connection ? gst_rtsp_connection_get_write_socket (connection) : nullptr;
  if (!socket || g_socket_is_closed (socket))
    return progress;
  const int fd = g_socket_get_fd (socket);
  struct tcp_info info = {};
  socklen_t length = sizeof (info);
  if (ioctl (fd, SIOCOUTQ, &progress.queued) != 0
      || getsockopt (fd, IPPROTO_TCP, TCP_INFO, &info, &length) != 0)
    return progress;
  progress.acked = info.tcpi_bytes_acked;
  progress.valid = true;
  return progress;
}

std::string
peer_address (GstRTSPClient *client)
{
  GstRTSPConnection *connection = gst_rtsp_client_get_connection (client);
  GSocket *socket = connection ? gst_rtsp_connection_get_read_socket (connection) : nullptr;
  GSocketAddress *address = socket ? g_socket_get_remote_address (socket, nullptr) : nullptr;
  std::string text = "?";
  if (address && G_IS_INET_SOCKET_ADDRESS (address)) {
    GInetSocketAddress *inet = G_INET_SOCKET_ADDRESS (address);
    gchar *ip = g_inet_address_to_string (g_inet_socket_address_get_address (inet));
    text = std::string (ip) + ":" + std::to_string (g_inet_socket_address_get_port (inet));
    g_free (ip);
  }
  if (address)
    g_object_unref (address);
  return text;
}

}  // namespace

ClientGuard::~ClientGuard ()
{
  for (Watched &w : clients_)
    g_weak_ref_clear (&w.client);
}

void
ClientGuard::set_timeout (unsigned seconds)
{
  Lock l (lock_);
  timeout_s_ = seconds;
}

void
ClientGuard::watch (GstRTSPClient *client)
{
  std::string address = peer_address (client);
  const SocketProgress progress = measure (client);
  Lock l (lock_);
  Watched &w = clients_.emplace_back ();
  g_weak_ref_init (&w.client, client);
  w.address = std::move (address);
  w.acked = progress.acked;
  w.checked_us = g_get_monotonic_time ();
}

void
ClientGuard::playing (GstRTSPClient *client, const std::string &user, const std::string &mount)
{
  Lock l (lock_);
  for (Watched &w : clients_) {
    GstRTSPClient *c = GST_RTSP_CLIENT (g_weak_ref_get (&w.client));
    if (c)
      g_object_unref (c);
    if (c == client) {
      w.user = user;
      w.mount = mount;
      return;
    }
  }
}

void
ClientGuard::check ()
{
  struct Cut {
    GstRTSPClient *client;
    std::string line;
  };
  std::vector<Cut> cuts;
  {
    Lock l (lock_);
    const gint64 now = g_get_monotonic_time ();
    for (auto it = clients_.begin (); it != clients_.end ();) {
      Watched &w = *it;
      GstRTSPClient *client = GST_RTSP_CLIENT (g_weak_ref_get (&w.client));
      if (!client) {
        g_weak_ref_clear (&w.client);
        it = clients_.erase (it);
        continue;
      }
      const SocketProgress progress = measure (client);
      if (!progress.valid) {
        // Closed already: its sessions may outlive it a while (UDP), not its socket.
        g_object_unref (client);
        ++it;
        continue;
      }
      // Stuck: bytes wait for the client and it acknowledged nothing since
      // the last look, so it has been stuck since then at least.
      if (progress.queued > 0 && progress.acked == w.acked) {
        if (!w.stuck_since_us)
          w.stuck_since_us = w.checked_us;
      } else {
        w.stuck_since_us = 0;
      }
      w.acked = progress.acked;
      w.checked_us = now;
      const gint64 stuck_us = w.stuck_since_us ? now - w.stuck_since_us : 0;
      if (timeout_s_ && stuck_us >= static_cast<gint64> (timeout_s_) * G_USEC_PER_SEC) {
        std::string what = w.user + (w.mount.empty () ? std::string ("no stream") : w.mount);
        cuts.push_back ({client,
            "client " + w.address + ": cut: not reading for "
                + std::to_string (stuck_us / G_USEC_PER_SEC) + " s (" + what + ")"});
        g_weak_ref_clear (&w.client);
        it = clients_.erase (it);
        cut_total_++;
        continue;
      }
      g_object_unref (client);
      ++it;
    }
  }
  // Closed without our lock: closing emits the client's signals.
  for (Cut &cut : cuts) {
    log_line ("%s", cut.line.c_str ());
    gst_rtsp_client_close (cut.client);
    g_object_unref (cut.client);
  }
}

uint64_t
ClientGuard::cut_total () const
{
  Lock l (lock_);
  return cut_total_;
}

}  // namespace camrelay::launcher
