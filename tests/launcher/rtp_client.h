// A minimal RTSP client for the launcher's integration tests that records
// every video RTP packet it receives (TCP-interleaved or UDP), and tells the
// packets that start an H.264 or H.265 keyframe's access unit.
#pragma once

#include <functional>
#include <optional>

#include "launcher_test_util.h"

namespace camrelay::launcher_test {

// One RTP packet of the video stream as a client received it.
struct Packet {
  Clock::time_point arrived;
  guint16 seq = 0;
  guint32 rtptime = 0;
  bool marker = false;        // the last packet of an access unit
  bool opens_keyframe = false;  // its first NAL unit may open a keyframe's access unit
  bool keyframe_slice = false;  // it carries (part of) a keyframe's slice
};

// What the NAL units of an RTP payload (RFC 6184 / RFC 7798: single unit,
// STAP-A / AP, FU-A / FU) say about keyframes: whether the first one may
// open a keyframe's access unit (a parameter set, an access unit
// delimiter, an SEI, or the start of a keyframe slice), and whether any is
// (a fragment of) a keyframe slice.
inline void
read_nal_units (const std::string &codec, const guint8 *payload, size_t size, Packet &packet)
{
  const bool hevc = codec == "h265";
  const size_t header = hevc ? 2 : 1;
  auto type_at = [&] (size_t at) { return hevc ? (payload[at] >> 1) & 0x3f : payload[at] & 0x1f; };
  auto is_slice = [&] (int type) { return hevc ? type >= 16 && type <= 21 : type == 5; };
  auto may_open = [&] (int type) {
    return is_slice (type) || (hevc ? (type >= 32 && type <= 35) || type == 39 : type >= 6 && type <= 9);
  };
  if (size <= header)
    return;
  const int type = type_at (0);
  if (type == (hevc ? 48 : 24)) {  // aggregation: 16-bit size, unit; repeated
    for (size_t at = header; at + 2 + header <= size;
         at += 2 + ((payload[at] << 8) | payload[at + 1])) {
      const int inner = type_at (at + 2);
      if (at == header)
        packet.opens_keyframe = may_open (inner);
      packet.keyframe_slice = packet.keyframe_slice || is_slice (inner);
    }
  } else if (type == (hevc ? 49 : 28)) {  // fragment: FU header after the unit header
    if (size <= header + 1)
      return;
    const guint8 fu = payload[header];
    const int inner = hevc ? fu & 0x3f : fu & 0x1f;
    packet.opens_keyframe = (fu & 0x80) && may_open (inner);
    packet.keyframe_slice = is_slice (inner);
  } else {
    packet.opens_keyframe = may_open (type);
    packet.keyframe_slice = is_slice (type);
  }
}

// Indexes of the packets that start a keyframe's access unit: the first
// packet of an access unit (the first received, or after a marker), opening
// it with a parameter set, delimiter, SEI or keyframe slice, in an access
// unit that holds a keyframe slice.
inline std::vector<size_t>
keyframe_starts (const std::vector<Packet> &packets)
{
  std::vector<size_t> starts;
  for (size_t i = 0; i < packets.size (); i++) {
    if (!packets[i].opens_keyframe || (i > 0 && !packets[i - 1].marker))
      continue;
    for (size_t j = i; j < packets.size (); j++) {
      if (packets[j].keyframe_slice) {
        starts.push_back (i);
        break;
      }
      if (packets[j].marker)
        break;
    }
  }
  return starts;
}

// A minimal RTSP client on 127.0.0.1: DESCRIBE, SETUP of the video stream
// (TCP-interleaved or UDP), PLAY; then a thread of its own records every
// video RTP packet.  The test thread reads what it recorded under the lock.
class RtpClient {
 public:
  RtpClient (int port, const std::string &codec, bool tcp) : port_ (port), codec_ (codec), tcp_ (tcp)
  {
    fd_ = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address = loopback (static_cast<guint16> (port));
    if (fd_ < 0 || connect (fd_, reinterpret_cast<sockaddr *> (&address), sizeof (address)) != 0)
      failure_ = "cannot connect";
    if (!tcp && failure_.empty ())
      bind_udp_pair ();
  }

  ~RtpClient ()
  {
    stop_ = true;
    if (reader_.joinable ())
      reader_.join ();
    for (int fd : {fd_, rtp_fd_, rtcp_fd_})
      if (fd >= 0)
        close (fd);
  }
  RtpClient (const RtpClient &) = delete;
  RtpClient &operator= (const RtpClient &) = delete;

  // DESCRIBE, SETUP, PLAY on "cam"; true when each answered 200.  Then
  // rtp_info () holds the PLAY answer's RTP-Info and packets start being
  // recorded.
  bool play ()
  {
    if (!failure_.empty ())
      return false;
    if (answer ("DESCRIBE", "cam", {"Accept: application/sdp"}).find (" 200 ") == std::string::npos)
      return false;
    const std::string transport = tcp_
        ? "Transport: RTP/AVP/TCP;unicast;interleaved=0-1"
        : "Transport: RTP/AVP;unicast;client_port=" + std::to_string (udp_port_) + "-"
            + std::to_string (udp_port_ + 1);
    std::string setup = answer ("SETUP", "cam/stream=0", {transport});
    size_t at = setup.find ("Session: ");
    if (setup.find (" 200 ") == std::string::npos || at == std::string::npos)
      return false;
    session_ = setup.substr (at + 9, setup.find_first_of (";\r", at + 9) - at - 9);
    const std::string reply = answer ("PLAY", "cam", {"Session: " + session_, "Range: npt=0-"});
    played_ = Clock::now ();
    if (reply.find (" 200 ") == std::string::npos)
      return false;
    rtp_info_ = header (reply, "RTP-Info");
    reader_ = std::thread ([this] { read_packets (); });
    return true;
  }

  const std::string &failure () const { return failure_; }
  Clock::time_point played () const { return played_; }
  const std::string &rtp_info () const { return rtp_info_; }

  // The value of `key` ("seq", "rtptime") in RTP-Info's entry for stream=0.
  std::optional<guint32> rtp_info_value (const std::string &key) const
  {
    size_t entry = rtp_info_.find ("stream=0");
    if (entry == std::string::npos)
      return std::nullopt;
    const std::string fields = rtp_info_.substr (entry, rtp_info_.find (',', entry) - entry);
    size_t at = fields.find (";" + key + "=");
    if (at == std::string::npos)
      return std::nullopt;
    return static_cast<guint32> (std::strtoul (fields.c_str () + at + key.size () + 2, nullptr, 10));
  }

  // Waits until `done` holds for the packets so far, or `timeout`.
  bool wait (const std::function<bool (const std::vector<Packet> &)> &done,
      std::chrono::milliseconds timeout)
  {
    std::unique_lock<std::mutex> lock (mutex_);
    changed_.wait_for (lock, timeout, [&] { return done (packets_) || closed_; });
    return done (packets_);
  }

  std::vector<Packet> packets ()
  {
    std::lock_guard<std::mutex> lock (mutex_);
    return packets_;
  }

 private:
  static sockaddr_in loopback (guint16 port)
  {
    sockaddr_in address = {};
    address.sin_family = AF_INET;
    address.sin_port = htons (port);
    address.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    return address;
  }

  // Two UDP sockets on consecutive ports, the first even, as RTP wants.
  void bind_udp_pair ()
  {
    for (int attempt = 0; attempt < 50 && rtcp_fd_ < 0; attempt++) {
      for (int *fd : {&rtp_fd_, &rtcp_fd_})
        if (*fd >= 0) {
          close (*fd);
          *fd = -1;
        }
      rtp_fd_ = socket (AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      sockaddr_in address = loopback (0);
      socklen_t length = sizeof (address);
      bind (rtp_fd_, reinterpret_cast<sockaddr *> (&address), sizeof (address));
      getsockname (rtp_fd_, reinterpret_cast<sockaddr *> (&address), &length);
      const guint16 port = ntohs (address.sin_port);
      if (port % 2 != 0 || port == 65534)
        continue;
      int fd = socket (AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      address = loopback (static_cast<guint16> (port + 1));
      if (bind (fd, reinterpret_cast<sockaddr *> (&address), sizeof (address)) != 0) {
        close (fd);
        continue;
      }
      rtcp_fd_ = fd;
      udp_port_ = port;
      // Room for a burst: the kernel's default may be smaller than a GOP.
      int size = 4 << 20;
      setsockopt (rtp_fd_, SOL_SOCKET, SO_RCVBUF, &size, sizeof (size));
    }
    if (rtcp_fd_ < 0)
      failure_ = "cannot bind two consecutive UDP ports";
  }

  // Sends a request and reads its answer (headers and body) whole.
  std::string answer (const std::string &method, const std::string &path,
      const std::vector<std::string> &headers)
  {
    std::string text = method + " rtsp://127.0.0.1:" + std::to_string (port_) + "/" + path
        + " RTSP/1.0\r\nCSeq: " + std::to_string (++cseq_) + "\r\n";
    for (const std::string &h : headers)
      text += h + "\r\n";
    text += "\r\n";
    if (send (fd_, text.data (), text.size (), MSG_NOSIGNAL) != static_cast<ssize_t> (text.size ()))
      return "";
    const auto deadline = Clock::now () + 10s;
    while (Clock::now () < deadline) {
      size_t end = buffer_.find ("\r\n\r\n");
      if (end != std::string::npos) {
        const std::string length = header (buffer_.substr (0, end + 2), "Content-Length");
        const size_t whole = end + 4 + std::strtoul (length.c_str (), nullptr, 10);
        if (buffer_.size () >= whole) {
          std::string response = buffer_.substr (0, whole);
          buffer_.erase (0, whole);  // what follows (interleaved data) stays for the reader
          return response;
        }
      }
      if (!receive (fd_, 100))
        return "";
    }
    return "";
  }

  // Appends what `fd` has to buffer_ within `ms`; false once it is closed.
  bool receive (int fd, int ms)
  {
    pollfd p = {fd, POLLIN, 0};
    if (poll (&p, 1, ms) <= 0)
      return true;
    char chunk[65536];
    ssize_t n = recv (fd, chunk, sizeof (chunk), 0);
    if (n <= 0)
      return false;
    buffer_.append (chunk, static_cast<size_t> (n));
    return true;
  }

  static std::string header (const std::string &message, const std::string &name)
  {
    size_t at = 0;
    while ((at = message.find ("\r\n", at)) != std::string::npos) {
      at += 2;
      if (g_ascii_strncasecmp (message.c_str () + at, (name + ":").c_str (), name.size () + 1) == 0) {
        size_t value = message.find_first_not_of (' ', at + name.size () + 1);
        return message.substr (value, message.find ("\r\n", value) - value);
      }
    }
    return "";
  }

  void record (const guint8 *rtp, size_t size)
  {
    if (size < 12 || (rtp[0] >> 6) != 2)
      return;
    size_t header_size = 12 + 4 * (rtp[0] & 0x0f);
    if (rtp[0] & 0x10) {  // extension
      if (size < header_size + 4)
        return;
      header_size += 4 + 4 * ((rtp[header_size + 2] << 8) | rtp[header_size + 3]);
    }
    if (size <= header_size)
      return;
    Packet packet;
    packet.arrived = Clock::now ();
    packet.seq = static_cast<guint16> ((rtp[2] << 8) | rtp[3]);
    packet.rtptime = (guint32 (rtp[4]) << 24) | (guint32 (rtp[5]) << 16) | (guint32 (rtp[6]) << 8) | rtp[7];
    packet.marker = (rtp[1] & 0x80) != 0;
    read_nal_units (codec_, rtp + header_size, size - header_size, packet);
    {
      std::lock_guard<std::mutex> lock (mutex_);
      packets_.push_back (packet);
    }
    changed_.notify_all ();
  }

  // The session is kept alive by requests (this client sends no RTCP):
  // GET_PARAMETER every 20 s, well within camrelay's session_timeout.
  void keep_alive (Clock::time_point &next)
  {
    if (Clock::now () < next)
      return;
    next = Clock::now () + 20s;
    const std::string text = "GET_PARAMETER rtsp://127.0.0.1:" + std::to_string (port_)
        + "/cam RTSP/1.0\r\nCSeq: " + std::to_string (++cseq_) + "\r\nSession: " + session_
        + "\r\n\r\n";
    send (fd_, text.data (), text.size (), MSG_NOSIGNAL);
  }

  void read_packets ()
  {
    bool open = true;
    auto next_keep_alive = Clock::now () + 20s;
    while (!stop_ && open) {
      keep_alive (next_keep_alive);
      if (!tcp_) {
        pollfd p = {rtp_fd_, POLLIN, 0};
        if (poll (&p, 1, 100) > 0) {
          guint8 datagram[65536];
          ssize_t n = recv (rtp_fd_, datagram, sizeof (datagram), 0);
          if (n > 0)
            record (datagram, static_cast<size_t> (n));
        }
        continue;
      }
      // Interleaved: '$', channel, 16-bit length, packet (channel 0: RTP).
      while (buffer_.size () >= 4 && buffer_[0] == '$') {
        const size_t length = (static_cast<guint8> (buffer_[2]) << 8) | static_cast<guint8> (buffer_[3]);
        if (buffer_.size () < 4 + length)
          break;
        if (buffer_[1] == 0)
          record (reinterpret_cast<const guint8 *> (buffer_.data ()) + 4, length);
        buffer_.erase (0, 4 + length);
      }
      // An answer to GET_PARAMETER: skipped whole (headers, then body).
      const size_t end = buffer_.rfind ("RTSP/", 0) == 0 ? buffer_.find ("\r\n\r\n") : std::string::npos;
      if (end != std::string::npos) {
        const std::string length = header (buffer_.substr (0, end + 2), "Content-Length");
        const size_t whole = end + 4 + std::strtoul (length.c_str (), nullptr, 10);
        if (buffer_.size () >= whole) {
          buffer_.erase (0, whole);
          continue;
        }
      } else if (!buffer_.empty () && buffer_[0] != '$' && buffer_.rfind ("RTSP/", 0) != 0
                 && std::string ("RTSP/").rfind (buffer_, 0) != 0) {
        ADD_FAILURE () << "not interleaved data after PLAY: " << buffer_.substr (0, 40);
        break;
      }
      open = receive (fd_, 100);
    }
    {
      std::lock_guard<std::mutex> lock (mutex_);
      closed_ = true;
    }
    changed_.notify_all ();
  }

  int port_;
  std::string codec_;
  bool tcp_;
  int fd_ = -1;
  int rtp_fd_ = -1;
  int rtcp_fd_ = -1;
  int udp_port_ = 0;
  int cseq_ = 0;
  std::string failure_;
  std::string buffer_;  // the RTSP connection's bytes not handled yet (the reader's after PLAY)
  Clock::time_point played_;
  std::string rtp_info_;
  std::string session_;
  std::atomic<bool> stop_{false};
  std::thread reader_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<Packet> packets_;
  bool closed_ = false;
};

}  // namespace camrelay::launcher_test
