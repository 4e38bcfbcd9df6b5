#include "rtsp_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <glib.h>

#include <cerrno>
#include <cstring>

namespace rtspload {

std::atomic<int64_t> mark_us{-1};

UdpScratch::UdpScratch ()
    : buffers (new uint8_t[kBatch * kDatagram]), messages (new mmsghdr[kBatch]),
      vectors (new iovec[kBatch])
{
  for (int i = 0; i < kBatch; i++) {
    vectors[i].iov_base = buffers.get () + i * kDatagram;
    vectors[i].iov_len = kDatagram;
    memset (&messages[i], 0, sizeof messages[i]);
    messages[i].msg_hdr.msg_iov = &vectors[i];
    messages[i].msg_hdr.msg_iovlen = 1;
  }
}

UdpScratch::~UdpScratch () = default;

Client::Client (const Settings &settings, int id)
    : settings_ (settings), input_ (new uint8_t[kInputSize])
{
  stats.id = id;
}

Client::~Client ()
{
  close_sockets ();
}

void
Client::attach (int epoll_fd, uint64_t key)
{
  epoll_fd_ = epoll_fd;
  key_ = key;
}

void
Client::start (int64_t now)
{
  now_ = now;
  if (settings_.churn_us > 0)
    churn_at_ = now + settings_.churn_us * g_random_double_range (0.8, 1.2);
  connect_now ();
}

void
Client::close_sockets ()
{
  for (int *fd : {&control_fd_, &rtp_fd_, &rtcp_fd_})
    if (*fd >= 0) {
      close (*fd);  // also removes it from the epoll set
      *fd = -1;
    }
  control_events_ = 0;
  control_registered_ = false;
  output_.clear ();
  input_size_ = 0;
  skip_ = 0;
}

void
Client::connect_now ()
{
  close_sockets ();
  stats.attempts++;
  cseq_ = 0;
  session_id_.clear ();
  auth_tried_ = false;
  request_deadline_ = now_ + settings_.request_timeout_us;
  seen_packet_ = seen_keyframe_ = have_seq_ = have_timestamp_ = frame_is_key_ = false;
  seen_decodable_ = seen_live_ = false;
  last_frame_ = previous_frame_ = last_packet_ = -1;
  play_ok_ = 0;

  control_fd_ = socket (settings_.address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (control_fd_ < 0) {
    fail ("error", std::string ("socket: ") + strerror (errno));
    return;
  }
  int one = 1;
  setsockopt (control_fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect (control_fd_, reinterpret_cast<const sockaddr *> (&settings_.address),
          settings_.address_size) < 0 && errno != EINPROGRESS) {
    fail (errno == ECONNREFUSED ? "refused" : "error", std::string ("connect: ") + strerror (errno));
    return;
  }
  state_ = State::connecting;
  update_control_events ();
}

void
Client::update_control_events ()
{
  if (control_fd_ < 0)
    return;
  uint32_t wanted = 0;
  // A stalled TCP client stops reading its only socket.  A stalled UDP client
  // stops reading its RTP socket and still hears RTSP answers.
  if (!(stalled_ && !settings_.udp))
    wanted |= EPOLLIN;
  if (state_ == State::connecting || !output_.empty ())
    wanted |= EPOLLOUT;
  if (control_registered_ && wanted == control_events_)
    return;
  epoll_event event{};
  event.events = wanted;
  event.data.u64 = key_;
  epoll_ctl (epoll_fd_, control_registered_ ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, control_fd_, &event);
  control_registered_ = true;
  control_events_ = wanted;
}

void
Client::fail (const std::string &outcome, const std::string &error)
{
  if (state_ == State::playing || state_ == State::starting)
    end_session ();
  stats.outcome = outcome;
  stats.error = error;
  close_sockets ();
  state_ = State::closed;
}

// The server or the network closed the RTSP connection.
void
Client::on_closed (const std::string &why)
{
  if (state_ == State::tearing_down) {
    close_sockets ();
    state_ = State::closed;
    return;
  }
  if (state_ == State::playing) {
    stats.disconnects++;
    end_session ();
    stats.error = "closed while playing: " + why;
    close_sockets ();
    state_ = State::closed;
    return;
  }
  fail ("closed", "closed during set-up: " + why);
}

void
Client::end_session ()
{
  if (play_ok_ > 0) {
    stats.playing_us += now_ - play_ok_;
    play_ok_ = 0;
  }
  if (last_frame_ >= 0 && now_ - last_frame_ > stats.max_frame_gap_us)
    stats.max_frame_gap_us = now_ - last_frame_;
  if (last_packet_ >= 0 && now_ - last_packet_ > stats.max_packet_gap_us)
    stats.max_packet_gap_us = now_ - last_packet_;
  if (play_sent_ > 0 && !seen_keyframe_ && counting_)
    stats.sessions_without_keyframe++;
  play_sent_ = 0;
  last_frame_ = previous_frame_ = last_packet_ = -1;
}

void
Client::send_request (const char *method, const std::string &uri, const std::string &extra)
{
  pending_method_ = method;
  pending_uri_ = uri;
  pending_extra_ = extra;
  std::string text = std::string (method) + " " + uri + " RTSP/1.0\r\nCSeq: "
      + std::to_string (++cseq_) + "\r\nUser-Agent: rtspload\r\n";
  if (!session_id_.empty ())
    text += "Session: " + session_id_ + "\r\n";
  if (auth_.active ())
    text += "Authorization: " + auth_.header (method, uri) + "\r\n";
  text += extra + "\r\n";
  send_text (text);
}

void
Client::send_text (const std::string &text)
{
  output_ += text;
  flush_output ();
}

void
Client::flush_output ()
{
  while (!output_.empty () && control_fd_ >= 0) {
    const ssize_t sent = send (control_fd_, output_.data (), output_.size (), MSG_NOSIGNAL);
    if (sent < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        break;
      if (errno == EINTR)
        continue;
      on_closed (std::string ("send: ") + strerror (errno));
      return;
    }
    output_.erase (0, sent);
  }
  update_control_events ();
}

void
Client::on_control_event (uint32_t events, int64_t now)
{
  now_ = now;
  if (control_fd_ < 0)
    return;
  if (state_ == State::connecting) {
    if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
      return;
    int error = 0;
    socklen_t size = sizeof error;
    getsockopt (control_fd_, SOL_SOCKET, SO_ERROR, &error, &size);
    if (error != 0) {
      fail (error == ECONNREFUSED ? "refused" : "error", std::string ("connect: ") + strerror (error));
      return;
    }
    state_ = State::describing;
    send_request ("DESCRIBE", settings_.url.text, "Accept: application/sdp\r\n");
    return;
  }
  if (events & EPOLLOUT)
    flush_output ();
  if (control_fd_ >= 0 && (events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
    read_control ();
}

void
Client::read_control ()
{
  // One recv per readiness: epoll is level-triggered and says when there is
  // more, which saves the recv that would only return EAGAIN.
  if (input_size_ == kInputSize) {
    fail ("error", "RTSP message larger than the input buffer");
    return;
  }
  const ssize_t got = recv (control_fd_, input_.get () + input_size_, kInputSize - input_size_, 0);
  if (got == 0) {
    on_closed ("end of stream");
    return;
  }
  if (got < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
      on_closed (std::string ("recv: ") + strerror (errno));
    return;
  }
  input_size_ += got;
  process_input ();
}

// Consumes what it can of the input; false when the connection went away
// while doing so (the buffer is then already reset).
bool
Client::process_input ()
{
  uint8_t *data = input_.get ();
  size_t at = 0;
  while (at < input_size_) {
    if (skip_ > 0) {
      const size_t skipped = std::min (skip_, input_size_ - at);
      at += skipped;
      skip_ -= skipped;
      continue;
    }
    if (data[at] == '$') {
      if (input_size_ - at < 4)
        break;
      const int channel = data[at + 1];
      const size_t size = (size_t (data[at + 2]) << 8) | data[at + 3];
      const size_t window = std::min (size, kRtpWindow);
      if (input_size_ - at - 4 < window)
        break;
      if (channel == rtp_channel_)
        on_rtp (data + at + 4, std::min (size, input_size_ - at - 4), size);
      at += 4;
      skip_ = size;
      continue;
    }
    // An RTSP message: the head up to the blank line, then Content-Length bytes.
    const void *blank = memmem (data + at, input_size_ - at, "\r\n\r\n", 4);
    if (!blank)
      break;
    const size_t head_size = static_cast<const uint8_t *> (blank) - (data + at);
    Response response;
    const bool is_response = parse_response_head (reinterpret_cast<const char *> (data + at),
        head_size, response);
    const std::string length = response.header ("Content-Length");
    size_t body_size = 0;
    if (!is_response) {
      // A request from the server: its Content-Length, found by hand.
      const std::string head (reinterpret_cast<const char *> (data + at), head_size);
      const gchar *found = g_strstr_len (head.c_str (), head.size (), "\nContent-Length:");
      if (found)
        body_size = strtoul (found + 16, nullptr, 10);
    } else if (!length.empty ()) {
      body_size = strtoul (length.c_str (), nullptr, 10);
    }
    const size_t total = head_size + 4 + body_size;
    if (total > kInputSize) {
      fail ("error", "RTSP message larger than the input buffer");
      return false;
    }
    if (input_size_ - at < total)
      break;
    if (is_response) {
      response.body.assign (reinterpret_cast<const char *> (data + at + head_size + 4), body_size);
      at += total;
      const size_t rest = input_size_ - at;
      // The answer may reconnect or close: keep what follows it first.
      memmove (data, data + at, rest);
      input_size_ = rest;
      at = 0;
      if (!on_response (response))
        return false;
      data = input_.get ();
      continue;
    }
    at += total;
  }
  if (at > 0) {
    memmove (data, data + at, input_size_ - at);
    input_size_ -= at;
  }
  return true;
}

// False when the connection went away.
bool
Client::on_response (const Response &response)
{
  if (response.status == 401 && state_ != State::playing && state_ != State::tearing_down) {
    if (auth_tried_) {
      if (!auth_.fall_back_to_basic ()) {
        fail ("401", "401 Unauthorized with credentials");
        return false;
      }
      send_request (pending_method_.c_str (), pending_uri_, pending_extra_);
      return control_fd_ >= 0;
    }
    const std::string &user = settings_.user.empty () ? settings_.url.user : settings_.user;
    const std::string &password = settings_.user.empty () ? settings_.url.password
                                                           : settings_.password;
    if (!auth_.challenge (response.all ("WWW-Authenticate"), user, password)) {
      fail ("401", user.empty () ? "401 Unauthorized (no --user given)"
                                 : "401 Unauthorized, no Basic or Digest MD5 offered");
      return false;
    }
    auth_tried_ = true;
    send_request (pending_method_.c_str (), pending_uri_, pending_extra_);
    return control_fd_ >= 0;
  }
  const bool ok = response.status == 200;
  switch (state_) {
    case State::describing: {
      if (!ok) {
        fail (std::to_string (response.status), "DESCRIBE answered " + std::to_string (response.status));
        return false;
      }
      base_url_ = response.header ("Content-Base");
      if (base_url_.empty ())
        base_url_ = response.header ("Content-Location");
      if (base_url_.empty ())
        base_url_ = settings_.url.text;
      const VideoMedia media = parse_sdp (response.body, base_url_);
      if (!media.found) {
        fail ("no-video", "no video medium in the SDP");
        return false;
      }
      stats.codec = media.codec;
      payload_type_ = media.payload_type;
      std::string transport;
      if (settings_.udp) {
        int port = 0;
        if (!open_udp_ports (port)) {
          fail ("error", std::string ("cannot bind a UDP port pair: ") + strerror (errno));
          return false;
        }
        transport = "Transport: RTP/AVP;unicast;client_port=" + std::to_string (port) + "-"
            + std::to_string (port + 1) + "\r\n";
      } else {
        transport = "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n";
      }
      state_ = State::setting_up;
      auth_tried_ = false;
      request_deadline_ = now_ + settings_.request_timeout_us;
      send_request ("SETUP", media.control, transport);
      break;
    }
    case State::setting_up: {
      if (!ok) {
        fail (std::to_string (response.status), "SETUP answered " + std::to_string (response.status));
        return false;
      }
      parse_session (response.header ("Session"), session_id_, session_timeout_s_);
      if (!settings_.udp) {
        const int channel = parse_interleaved (response.header ("Transport"));
        rtp_channel_ = channel >= 0 ? channel : 0;
      }
      state_ = State::starting;
      auth_tried_ = false;
      request_deadline_ = now_ + settings_.request_timeout_us;
      play_sent_ = now_;
      send_request ("PLAY", base_url_, "Range: npt=0.000-\r\n");
      break;
    }
    case State::starting:
      if (!ok) {
        fail (std::to_string (response.status), "PLAY answered " + std::to_string (response.status));
        return false;
      }
      state_ = State::playing;
      request_deadline_ = 0;
      stats.connects++;
      stats.outcome = "200";
      play_ok_ = now_;
      keepalive_at_ = now_ + int64_t (session_timeout_s_) * 500'000;
      break;
    case State::playing:
      // A keepalive answer.  Servers without GET_PARAMETER get OPTIONS.
      if (!keepalive_with_options_ && (response.status == 405 || response.status == 501
              || response.status == 551))
        keepalive_with_options_ = true;
      break;
    case State::tearing_down:
      close_sockets ();
      state_ = State::closed;
      return false;
    default:
      break;
  }
  return control_fd_ >= 0;
}

bool
Client::open_udp_ports (int &rtp_port)
{
  // An ephemeral port for RTP, and the next one for RTCP if it is free.
  for (int attempt = 0; attempt < 64; attempt++) {
    int rtp = socket (settings_.address.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int rtcp = socket (settings_.address.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (rtp < 0 || rtcp < 0) {
      if (rtp >= 0)
        close (rtp);
      if (rtcp >= 0)
        close (rtcp);
      return false;
    }
    sockaddr_storage local{};
    local.ss_family = settings_.address.ss_family;
    const socklen_t size = local.ss_family == AF_INET6 ? sizeof (sockaddr_in6) : sizeof (sockaddr_in);
    socklen_t got = sizeof local;
    if (bind (rtp, reinterpret_cast<sockaddr *> (&local), size) == 0
        && getsockname (rtp, reinterpret_cast<sockaddr *> (&local), &got) == 0) {
      auto *port = local.ss_family == AF_INET6 ? &reinterpret_cast<sockaddr_in6 *> (&local)->sin6_port
                                               : &reinterpret_cast<sockaddr_in *> (&local)->sin_port;
      const int number = ntohs (*port);
      if (number < 65535) {
        *port = htons (number + 1);
        if (bind (rtcp, reinterpret_cast<sockaddr *> (&local), size) == 0) {
          // A deeper buffer rides out the loop being busy with other clients.
          int bytes = 1 << 20;
          setsockopt (rtp, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
          rtp_fd_ = rtp;
          rtcp_fd_ = rtcp;  // bound so the port stays ours; RTCP is not read
          rtp_port = number;
          epoll_event event{};
          event.events = stalled_ ? 0u : uint32_t (EPOLLIN);
          event.data.u64 = key_ | 1;
          epoll_ctl (epoll_fd_, EPOLL_CTL_ADD, rtp_fd_, &event);
          return true;
        }
      }
    }
    close (rtp);
    close (rtcp);
  }
  errno = EADDRINUSE;
  return false;
}

void
Client::on_rtp_event (int64_t now, UdpScratch &scratch)
{
  now_ = now;
  for (;;) {
    if (rtp_fd_ < 0)
      return;
    // MSG_TRUNC: msg_len is the datagram's real size even when it was cut.
    const int got = recvmmsg (rtp_fd_, scratch.messages.get (), UdpScratch::kBatch,
        MSG_DONTWAIT | MSG_TRUNC, nullptr);
    if (got <= 0)
      return;
    for (int i = 0; i < got; i++) {
      const size_t size = scratch.messages[i].msg_len;
      on_rtp (scratch.buffers.get () + i * UdpScratch::kDatagram,
          std::min (size, UdpScratch::kDatagram), size);
    }
    if (got < UdpScratch::kBatch)
      return;
  }
}

void
Client::on_rtp (const uint8_t *data, size_t available, size_t size)
{
  if (!counting_ || (state_ != State::playing && state_ != State::starting))
    return;
  RtpPacket packet;
  if (!parse_rtp (data, available, packet)) {
    stats.malformed++;
    return;
  }
  stats.packets++;
  stats.bytes += size;
  if (last_packet_ >= 0 && now_ - last_packet_ > stats.max_packet_gap_us)
    stats.max_packet_gap_us = now_ - last_packet_;
  const int64_t previous_packet = last_packet_;
  last_packet_ = now_;
  if (!seen_packet_) {
    seen_packet_ = true;
    if (stats.first_packet_us < 0)
      stats.first_packet_us = now_ - play_sent_;
  }
  if (!have_seq_ || packet.ssrc != ssrc_) {
    have_seq_ = true;
    ssrc_ = packet.ssrc;
    last_seq_ = packet.seq;
  } else {
    const uint16_t ahead = uint16_t (packet.seq - uint16_t (last_seq_ + 1));
    if (ahead < 0x8000) {  // in order, after `ahead` missing ones (wraps at 65535)
      stats.lost += ahead;
      last_seq_ = packet.seq;
    } else {
      stats.reordered++;
    }
  }
  if (!have_timestamp_ || packet.timestamp != last_timestamp_) {
    have_timestamp_ = true;
    last_timestamp_ = packet.timestamp;
    stats.frames++;
    // The frame that just ended began at last_frame_; frame_is_key_ is its kind.
    if (last_frame_ >= 0 && now_ - last_frame_ > stats.max_frame_gap_us)
      stats.max_frame_gap_us = now_ - last_frame_;
    if (seen_keyframe_ && !seen_live_ && last_frame_ >= 0 && now_ - last_frame_ >= kCaughtUpGapUs) {
      seen_live_ = true;
      if (stats.live_us < 0)  // when the last packet of that frame came
        stats.live_us = previous_packet - play_sent_;
    }
    if (const int64_t mark = mark_us.load (std::memory_order_relaxed); mark >= 0 && now_ >= mark) {
      if (stats.first_frame_after_mark_us < 0)
        stats.first_frame_after_mark_us = now_ - mark;
      // The two frames before this one, the second not a keyframe (JPEG: all are).
      if (stats.video_after_mark_us < 0 && previous_frame_ >= mark
          && last_frame_ - previous_frame_ <= kLiveGapUs
          && (!frame_is_key_ || stats.codec == Codec::jpeg))
        stats.video_after_mark_us = previous_frame_ - mark;
    }
    frame_is_key_ = false;
    previous_frame_ = last_frame_;
    last_frame_ = now_;
    if (stall_end_ >= 0 && now_ >= stall_end_)
      stats.frames_after_stall++;
  }
  if (!frame_is_key_ && packet.payload_type == payload_type_
      && payload_is_keyframe (stats.codec, packet.payload, packet.payload_size)) {
    frame_is_key_ = true;
    lost_at_key_ = stats.lost;
    stats.keyframes++;
    if (const int64_t mark = mark_us.load (std::memory_order_relaxed);
        mark >= 0 && now_ >= mark && stats.keyframe_after_mark_us < 0)
      stats.keyframe_after_mark_us = now_ - mark;
    if (!seen_keyframe_) {
      seen_keyframe_ = true;
      stats.join_us.push_back (now_ - play_sent_);  // once per session, not per packet
      if (stats.first_keyframe_us < 0)
        stats.first_keyframe_us = now_ - play_sent_;
    }
  }
  // The keyframe's last packet, with none of its packets missing.
  if (frame_is_key_ && !seen_decodable_ && packet.marker && stats.lost == lost_at_key_) {
    seen_decodable_ = true;
    if (stats.decodable_keyframe_us < 0)
      stats.decodable_keyframe_us = now_ - play_sent_;
  }
}

void
Client::on_timer (int64_t now)
{
  now_ = now;
  if (state_ == State::idle || state_ == State::tearing_down)
    return;
  if (churn_at_ > 0 && now >= churn_at_ && counting_) {
    // Abrupt: no TEARDOWN, the sockets just close; then a new connection.
    churn_at_ = now + settings_.churn_us * g_random_double_range (0.8, 1.2);
    if (state_ == State::playing || state_ == State::starting)
      end_session ();
    if (state_ != State::closed)
      stats.churns++;
    close_sockets ();
    connect_now ();
    return;
  }
  if (state_ == State::closed)
    return;
  if (request_deadline_ > 0 && now >= request_deadline_ && state_ != State::playing) {
    static const char *const names[] = {"idle", "connect", "DESCRIBE", "SETUP", "PLAY"};
    fail ("timeout", std::string ("no answer to ") + names[int (state_)] + " within "
            + std::to_string (settings_.request_timeout_us / 1'000'000) + " s");
    return;
  }
  if (state_ == State::playing && now >= keepalive_at_) {
    keepalive_at_ = now + int64_t (session_timeout_s_) * 500'000;
    send_request (keepalive_with_options_ ? "OPTIONS" : "GET_PARAMETER", base_url_, "");
  }
}

void
Client::set_stalled (bool stalled, int64_t now)
{
  now_ = now;
  stalled_ = stalled;
  if (!stalled)
    stall_end_ = now;
  update_control_events ();
  if (rtp_fd_ >= 0) {
    epoll_event event{};
    event.events = stalled ? 0u : uint32_t (EPOLLIN);
    event.data.u64 = key_ | 1;
    epoll_ctl (epoll_fd_, EPOLL_CTL_MOD, rtp_fd_, &event);
  }
}

void
Client::stop (int64_t now)
{
  now_ = now;
  const State state = state_;
  stats.playing_at_end = state == State::playing;
  if (state == State::playing || state == State::starting)
    end_session ();
  counting_ = false;
  if (stalled_)
    set_stalled (false, now);  // so that the TEARDOWN answer can be read
  if (state == State::playing || state == State::starting || state == State::setting_up) {
    state_ = State::tearing_down;
    send_request ("TEARDOWN", base_url_.empty () ? settings_.url.text : base_url_, "");
  } else if (state != State::idle) {
    close_sockets ();
    state_ = State::closed;
  }
}

}  // namespace rtspload
