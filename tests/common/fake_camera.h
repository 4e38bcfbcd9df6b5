// Fake cameras and misbehaving servers for the camerasrc tests, all on
// 127.0.0.1 with a port chosen by the kernel (read it back with port ()).
//
//  - FakeRtspCamera: a gst-rtsp-server serving a pre-encoded H.264, H.265 or
//    JPEG clip live, looped, without re-encoding (with live AAC or G.711 audio
//    alongside if asked), over RTSP or RTSPS; it can be stopped, restarted on
//    the same port, stalled (connections kept, no RTP), switched to another
//    resolution or codec, put behind RTSP Basic auth, and made to answer
//    DESCRIBE, SETUP or PLAY with an error status.
//  - FakeMjpegCamera: an HTTP server sending pre-encoded JPEG frames live as
//    multipart/x-mixed-replace; stoppable, restartable, stallable.
//  - TcpServer with garbage_handler () (answers random bytes to anything) or
//    silent_handler () (accepts, never answers); closed_port () for a port
//    nothing listens on.
//  - TcpProxy: relays connections to another port, and can reset them all
//    (TCP RST both ways) or terminate TLS in front of a plain server.
//  - tls_identity (): a self-signed certificate for 127.0.0.1, made once.
//
// Every loop in here is bounded by a stop flag checked at least every 100 ms;
// every stop () returns within a few seconds and joins every thread it
// started.  Clips are encoded once per process and kept as plain bytes (not
// GstBuffers) so that the leaks tracer sees nothing alive at gst_deinit ().
#pragma once

#include <gst/gst.h>
#include <gst/rtsp-server/rtsp-server.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace camtest {

// One encoded access unit.
struct Frame {
  std::vector<guint8> data;
  bool keyframe = false;
};

// A pre-encoded clip: H.264 (codec "h264") or H.265 ("h265") byte-stream
// AU-aligned with the parameter sets before every IDR, or JPEG frames
// ("jpeg"). Starts with a keyframe and its length is a whole number of GOPs,
// so it loops cleanly.
struct Clip {
  std::string codec;
  std::string caps;  // caps string of the frames
  int width = 0;
  int height = 0;
  int fps = 0;
  int gop = 0;
  std::vector<Frame> frames;
  GstClockTime frame_duration () const { return gst_util_uint64_scale_int (GST_SECOND, 1, fps); }
};
using ClipPtr = std::shared_ptr<const Clip>;

// Encodes (once per process per set of parameters) and returns a clip of
// `gops` GOPs of `gop` frames of a moving videotestsrc pattern.
// Returns nullptr (and ADD_FAILUREs nothing: the caller asserts) on failure.
ClipPtr h264_clip (int width, int height, int fps = 30, int gop = 15, int gops = 2);
ClipPtr h265_clip (int width, int height, int fps = 30, int gop = 15, int gops = 2);
ClipPtr jpeg_clip (int width, int height, int fps = 15, int frames = 15);

// Writes a recording of `seconds` seconds (H.264, GOP 15, and with `audio`
// "aac" an AAC track of the same length) to a file in the process's
// temporary directory, once per set of parameters, and returns its path.
// `container` is "mp4" or "mkv". Empty string on failure.
std::string recording_file (int width, int height, int fps, int seconds,
    const std::string &container = "mp4", const std::string &audio = "");

// Directory removed with everything in it at process exit.
std::string temp_dir ();

// Shared by FakeRtspCamera's media and FakeMjpegCamera's connections: what
// every stream sends next.  Thread-safe.
class FeedControl {
 public:
  void set_clip (ClipPtr clip);
  ClipPtr clip () const;
  void set_stalled (bool stalled) { stalled_ = stalled; }
  bool stalled () const { return stalled_; }
  void count_frame () { frames_sent_++; }
  guint64 frames_sent () const { return frames_sent_; }

 private:
  mutable std::mutex mutex_;
  ClipPtr clip_;
  std::atomic<bool> stalled_{false};
  std::atomic<guint64> frames_sent_{0};
};

// A certificate and its private key, in PEM files and together in one PEM
// text (what g_tls_certificate_new_from_pem () takes).
struct TlsIdentity {
  std::string certificate_file;
  std::string key_file;
  std::string pem;
};

// A self-signed certificate for 127.0.0.1 (subjectAltName IP:127.0.0.1),
// made with the openssl command once per process in temp_dir (). nullptr
// when it cannot be made (no openssl).
const TlsIdentity *tls_identity ();

struct RtspCameraOptions {
  int width = 640;
  int height = 360;
  int fps = 30;
  int gop = 15;             // frames per GOP: a new client waits at most this long for a keyframe
  bool shared = true;       // one media for every client, as a real camera
  std::string path = "/cam";
  std::string codec = "h264";  // or "h265", or "jpeg" (RTP JPEG)
  // A second stream, encoded live from audiotestsrc: "aac" (MPEG4-GENERIC,
  // 16 kHz mono) or "pcma" (G.711 A-law, 8 kHz); "" for none. Stalls do not
  // stop it.
  std::string audio;
  // Certificate and key in PEM (TlsIdentity::pem): serve RTSPS only.
  std::string tls_pem;
};

class FakeRtspCamera {
 public:
  explicit FakeRtspCamera (RtspCameraOptions options = {});
  ~FakeRtspCamera ();
  FakeRtspCamera (const FakeRtspCamera &) = delete;
  FakeRtspCamera &operator= (const FakeRtspCamera &) = delete;

  // Listens on `port` (0: the kernel picks one the first time, then the same
  // port is reused by restart ()). False if the clip or the socket failed.
  bool start (guint16 port = 0);
  // Closes the listening socket, closes every client connection and frees
  // every media (pipelines to NULL) before returning: like a camera that
  // lost power. Idempotent.
  void stop ();
  // stop () then start () on the same port: a camera reboot.
  bool restart ();
  bool running () const;

  // Keeps every connection and session open but sends no more RTP (RTSP
  // requests are still answered). resume () sends again from where the live
  // clip is now (mid-GOP, as a real camera would).
  void stall ();
  void resume ();

  // Every media switches at once to a clip of this size (new SPS/PPS, new
  // caps, starting on a keyframe); new media start with it too.
  bool switch_resolution (int width, int height);
  // Serves `codec` ("h264", "h265" or "jpeg") from the next start () on: a
  // camera that reboots with another codec. Only while stopped.
  bool switch_codec (const std::string &codec);

  // Answers every `method` request ("DESCRIBE", "SETUP" or "PLAY") with
  // `status` instead of serving it, on every connection, from now on;
  // GST_RTSP_STS_OK serves again. A camera still booting (503), refusing
  // (403), without the stream (404), or that forgot the session (454).
  void answer (const std::string &method, GstRTSPStatusCode status);

  // RTSP Basic auth for connections made from now on (and after restart):
  // 401 without the right user and password. Empty user: no auth.
  void require_auth (const std::string &user, const std::string &password);

  guint16 port () const { return port_; }
  // rtsp://127.0.0.1:PORT/cam (rtsps:// with TLS; no credentials)
  std::string uri () const;
  std::string uri_with_credentials (const std::string &user, const std::string &password) const;

  // Media pipelines built since construction (one per camera "session" for
  // shared media) and how many are alive now.
  guint media_created () const { return media_created_; }
  guint media_alive () const;
  // Frames handed to the payloaders while not stalled.
  guint64 frames_sent () const { return control_->frames_sent (); }
  // Clients connected to the server now.
  guint clients () const;
  // Keeps the bus thread of each media made so far busy for `duration`,
  // as a loaded machine would delay it.  stop () still leaves nothing of
  // the server behind (see wait_for_media_threads in fake_camera.cpp).
  void hold_media_threads (std::chrono::milliseconds duration);

  struct MediaThreads;

 private:
  struct Loop;
  void run_in_loop (const std::function<void ()> &function);
  static void on_media_configure (GstElement *factory, GstElement *media, gpointer user_data);
  static void on_client_connected (GstRTSPServer *server, GstRTSPClient *client,
      gpointer user_data);
  GstRTSPAuth *make_auth () const;

  // Status answered to each method (GST_RTSP_STS_OK: serve). Shared with the
  // signal handlers of the server's clients.
  struct Answers {
    std::atomic<int> describe{200};
    std::atomic<int> setup{200};
    std::atomic<int> play{200};
  };

  RtspCameraOptions options_;
  std::shared_ptr<FeedControl> control_ = std::make_shared<FeedControl> ();
  std::shared_ptr<Answers> answers_ = std::make_shared<Answers> ();
  std::unique_ptr<Loop> loop_;
  guint16 port_ = 0;
  std::string user_;
  std::string password_;
  std::atomic<guint> media_created_{0};
  std::shared_ptr<MediaThreads> media_threads_;
  mutable std::mutex mutex_;
};

// A TCP server on 127.0.0.1 running `handler` in a thread per connection.
// The handler must return soon after `stopping` becomes true or the socket
// is shut down (stop () does both); poll with a timeout of 100 ms or less.
class TcpServer {
 public:
  using Handler = std::function<void (int fd, const std::atomic<bool> &stopping)>;

  explicit TcpServer (Handler handler);
  ~TcpServer ();
  TcpServer (const TcpServer &) = delete;
  TcpServer &operator= (const TcpServer &) = delete;

  bool start (guint16 port = 0);  // 0: kernel picks, then restart () reuses it
  void stop ();                   // closes listener and connections, joins threads
  bool restart ();
  bool running () const { return listen_fd_ >= 0; }
  guint16 port () const { return port_; }
  guint accepted () const { return accepted_; }
  guint open_connections () const;

 private:
  struct Connection;
  void accept_loop ();
  void reap (bool all);

  Handler handler_;
  guint16 port_ = 0;
  int listen_fd_ = -1;
  std::atomic<bool> stopping_{false};
  std::thread accept_thread_;
  mutable std::mutex mutex_;
  std::vector<std::unique_ptr<Connection>> connections_;
  std::atomic<guint> accepted_{0};
};

// Handlers for TcpServer.
// Answers every chunk it receives with random bytes (and a line of junk once
// connected, for clients that wait for the server to speak first).
TcpServer::Handler garbage_handler ();
// Reads and discards whatever comes, never writes: a host that accepts TCP
// and never answers.
TcpServer::Handler silent_handler ();

// A port on 127.0.0.1 that nothing listens on (bound, read back, closed).
guint16 closed_port ();

// A TCP relay on 127.0.0.1: every connection it accepts is relayed to a new
// connection to 127.0.0.1:`target` (set_target () changes it for the
// connections that follow), byte for byte both ways. With `tls_pem`
// (TlsIdentity::pem) it terminates TLS: clients speak TLS to the proxy, the
// target gets plain text (https:// in front of an http:// camera).
class TcpProxy {
 public:
  explicit TcpProxy (guint16 target, const std::string &tls_pem = "");
  ~TcpProxy ();
  TcpProxy (const TcpProxy &) = delete;
  TcpProxy &operator= (const TcpProxy &) = delete;

  bool start (guint16 port = 0);  // 0: kernel picks, then restart () reuses it
  void stop ();                   // closes everything (FIN), joins threads
  void set_target (guint16 target) { target_ = target; }
  // Aborts every relayed connection open now, on both sides, with a TCP RST
  // (SO_LINGER 0, then close): a NAT or firewall that dropped its state, a
  // camera whose network stack restarted. Returns once they are all gone
  // (bounded), with how many there were.
  guint reset_connections ();

  // Sends `bytes` random bytes to the client of every relay open now,
  // between two chunks of the target's data: a camera that sends a burst of
  // garbage in the middle of its stream.  Returns at once; each relay sends
  // it within its 100 ms poll.
  void inject_garbage (size_t bytes);

  guint16 port () const { return server_.port (); }
  guint accepted () const { return server_.accepted (); }
  // Connections relayed now.
  guint relays () const;

 private:
  void relay (int fd, const std::atomic<bool> &stopping);

  std::atomic<guint16> target_;
  GTlsCertificate *tls_certificate_ = nullptr;
  mutable std::mutex mutex_;
  std::condition_variable relays_changed_;
  guint epoch_ = 0;                // reset_connections () ends relays of older epochs
  std::multiset<guint> relays_;    // the epoch each live relay started in
  std::atomic<guint> garbage_epoch_{0};  // inject_garbage () calls so far
  std::atomic<size_t> garbage_bytes_{0};
  TcpServer server_;               // last: its threads use the members above
};

struct MjpegCameraOptions {
  int width = 320;
  int height = 240;
  int fps = 15;
  std::string path = "/video.mjpg";
  // Frames sent together in one write, every that many frame periods (a
  // camera or a network that delivers in bursts): a client reading behind
  // gets several parts in one read.
  int frames_per_write = 1;
};

// HTTP MJPEG camera: GET `path` answers 200 multipart/x-mixed-replace with
// live JPEG frames paced at `fps`; any other path answers 404.
class FakeMjpegCamera {
 public:
  explicit FakeMjpegCamera (MjpegCameraOptions options = {});
  ~FakeMjpegCamera ();
  FakeMjpegCamera (const FakeMjpegCamera &) = delete;
  FakeMjpegCamera &operator= (const FakeMjpegCamera &) = delete;

  bool start (guint16 port = 0);
  void stop ();
  bool restart ();
  bool running () const { return server_.running (); }
  void stall () { control_->set_stalled (true); }
  void resume () { control_->set_stalled (false); }
  // Answer this HTTP status (e.g. 503) instead of the stream; 200: stream.
  void set_status (int status) { status_ = status; }

  guint16 port () const { return server_.port (); }
  std::string uri () const;
  guint64 frames_sent () const { return control_->frames_sent (); }
  guint accepted () const { return server_.accepted (); }

 private:
  void serve (int fd, const std::atomic<bool> &stopping);

  MjpegCameraOptions options_;
  std::shared_ptr<FeedControl> control_ = std::make_shared<FeedControl> ();
  std::atomic<int> status_{200};
  TcpServer server_;
};

}  // namespace camtest
