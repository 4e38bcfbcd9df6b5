// One RTSP client of rtspload: a non-blocking state machine driven by its
// worker's epoll loop.  DESCRIBE, SETUP (TCP-interleaved or UDP), PLAY, RTP
// counting, keepalives, TEARDOWN at the end; 401 answered with Basic or Digest.
//
// The receive path (RTP over TCP or UDP) allocates nothing: TCP data goes into
// a fixed buffer inside the client, UDP datagrams into the worker's scratch.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "rtp.h"
#include "rtsp_message.h"



namespace rtspload {

// What every client of a run shares.
struct Settings {
  Url url;
  sockaddr_storage address{};  // the server, resolved once
  socklen_t address_size = 0;
  bool udp = false;
  std::string user, password;
  int64_t churn_us = 0;            // 0: no churn
  int64_t request_timeout_us = 10'000'000;
};

// What one client saw over the whole run (over every session when it churns).
struct ClientStats {
  int id = 0;
  bool stall_client = false;      // one of the --stall clients
  std::string outcome;            // of the last set-up: "200", "401", "503", "refused", "timeout"...
  std::string error;              // the last failure in words, "" if none
  Codec codec = Codec::unknown;
  unsigned attempts = 0;          // connections started
  unsigned connects = 0;          // PLAY answered 200
  unsigned disconnects = 0;       // closed by the server or the network while playing
  unsigned churns = 0;            // closed on purpose by --churn
  bool playing_at_end = false;
  uint64_t packets = 0, bytes = 0, frames = 0, keyframes = 0;
  uint64_t lost = 0;              // RTP sequence numbers skipped
  uint64_t reordered = 0;         // packets older than the last one (late or duplicate)
  uint64_t malformed = 0;         // not RTP version 2
  int64_t first_packet_us = -1;   // first session: PLAY sent -> first RTP packet
  int64_t first_keyframe_us = -1; // first session: PLAY sent -> first keyframe packet
  // First session: PLAY sent -> the last packet (marker bit) of the first
  // keyframe all of whose packets arrived (no sequence number skipped in it).
  int64_t decodable_keyframe_us = -1;
  // First session: PLAY sent -> the last packet of the first frame, from the
  // first keyframe on, whose next frame starts kCaughtUpGapUs or more after
  // it began: the end of a catch-up burst, when the client's frames are current.
  int64_t live_us = -1;
  std::vector<int64_t> join_us;   // every session: PLAY sent -> first keyframe
  unsigned sessions_without_keyframe = 0;
  int64_t max_frame_gap_us = 0;   // longest time between two frames, or from the last frame
                                  // to the end of its session
  int64_t max_packet_gap_us = 0;  // the same between two RTP packets
  int64_t playing_us = 0;         // time with PLAY answered, summed over sessions
  uint64_t frames_after_stall = 0;
  // After the mark (SIGUSR1, see mark_us): from the mark to the first frame,
  // and to the first of two frames at most kLiveGapUs apart, the second not a
  // keyframe (live video, not a relay's fallback pictures, which are
  // keyframes a second or half a second apart); -1: none yet.
  int64_t first_frame_after_mark_us = -1;
  int64_t video_after_mark_us = -1;
  int64_t keyframe_after_mark_us = -1;  // from the mark to the first keyframe packet
};

// The instant marked by SIGUSR1 (CLOCK_MONOTONIC, microseconds), -1 if none:
// the bench sends it when a camera comes back or a stall ends.
extern std::atomic<int64_t> mark_us;
// Two frames closer than this count as live video (30 fps: 33 ms apart).
constexpr int64_t kLiveGapUs = 100'000;
// Frames of a catch-up burst come back to back; live ones 33 ms apart (30 fps).
constexpr int64_t kCaughtUpGapUs = 20'000;

// Scratch space for recvmmsg, one per worker.
struct UdpScratch {
  static constexpr int kBatch = 32;
  static constexpr size_t kDatagram = 2048;  // larger datagrams are counted, not kept whole
  UdpScratch ();
  ~UdpScratch ();
  std::unique_ptr<uint8_t[]> buffers;
  std::unique_ptr<mmsghdr[]> messages;
  std::unique_ptr<iovec[]> vectors;
};

class Client {
 public:
  enum class State { idle, connecting, describing, setting_up, starting, playing, tearing_down,
                     closed };

  Client (const Settings &settings, int id);
  ~Client ();
  Client (const Client &) = delete;
  Client &operator= (const Client &) = delete;

  // The epoll set and the key of this client in it: events for the RTSP
  // socket come back as `key`, for the UDP RTP socket as `key | 1`.
  void attach (int epoll_fd, uint64_t key);

  void start (int64_t now);
  void on_control_event (uint32_t events, int64_t now);
  void on_rtp_event (int64_t now, UdpScratch &scratch);
  // Request timeouts, keepalives, churn.  Called every few milliseconds.
  void on_timer (int64_t now);
  // --stall: stop (or resume) reading the socket that carries RTP.
  void set_stalled (bool stalled, int64_t now);
  // End of the run: counting stops, TEARDOWN is sent.
  void stop (int64_t now);
  bool finished () const { return state_ == State::idle || state_ == State::closed; }
  void close_sockets ();

  ClientStats stats;

 private:
  void connect_now ();
  void fail (const std::string &outcome, const std::string &error);
  void on_closed (const std::string &why);
  void end_session ();
  void send_request (const char *method, const std::string &uri, const std::string &extra);
  void send_text (const std::string &text);
  void flush_output ();
  void update_control_events ();
  void read_control ();
  bool process_input ();
  bool on_response (const Response &response);
  void on_rtp (const uint8_t *data, size_t available, size_t size);
  bool open_udp_ports (int &rtp_port);

  const Settings &settings_;
  int epoll_fd_ = -1;
  uint64_t key_ = 0;
  State state_ = State::idle;
  int64_t now_ = 0;

  int control_fd_ = -1;
  int rtp_fd_ = -1, rtcp_fd_ = -1;
  uint32_t control_events_ = 0;  // as registered in epoll
  bool control_registered_ = false;
  bool stalled_ = false;
  bool counting_ = true;         // false once the run is over
  int64_t stall_end_ = -1;

  // RTSP
  unsigned cseq_ = 0;
  std::string pending_method_, pending_uri_, pending_extra_;
  bool auth_tried_ = false;      // for the pending request
  int64_t request_deadline_ = 0; // 0: no request waiting during set-up
  Authenticator auth_;
  std::string base_url_, session_id_;
  int session_timeout_s_ = 60;
  bool keepalive_with_options_ = false;
  int64_t keepalive_at_ = 0;
  int64_t churn_at_ = 0;
  int payload_type_ = -1;
  int rtp_channel_ = 0;
  std::string output_;           // not yet sent

  // TCP input: RTSP answers and '$'-framed RTP.  An interleaved frame is
  // looked at through its first kRtpWindow bytes; the rest is skipped.
  static constexpr size_t kInputSize = 16384;
  static constexpr size_t kRtpWindow = 512;
  std::unique_ptr<uint8_t[]> input_;
  size_t input_size_ = 0;
  size_t skip_ = 0;

  // The current session's stream
  int64_t play_sent_ = 0, play_ok_ = 0;
  bool seen_packet_ = false, seen_keyframe_ = false;
  bool have_seq_ = false;
  uint16_t last_seq_ = 0;
  uint32_t ssrc_ = 0;
  bool have_timestamp_ = false;
  uint32_t last_timestamp_ = 0;
  bool frame_is_key_ = false;
  int64_t last_frame_ = -1;      // start of the current frame
  int64_t previous_frame_ = -1;  // start of the one before
  int64_t last_packet_ = -1;
  uint64_t lost_at_key_ = 0;     // stats.lost when the current keyframe began
  bool seen_decodable_ = false, seen_live_ = false;
};

}  // namespace rtspload
