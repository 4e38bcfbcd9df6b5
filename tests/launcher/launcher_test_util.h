// Shared by the launcher's integration tests: the camrelay binary as a child
// process, real RTSP clients (rtspsrc in this process, a raw request probe),
// and small helpers to write configurations and run commands.
#pragma once

#include <arpa/inet.h>
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <csignal>

#include <gst/app/app.h>
#include <gst/gst.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/gstref.h"

namespace camrelay::launcher_test {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// The camrelay binary, started with `args`; its stderr is collected line by line.
class Launcher {
 public:
  explicit Launcher (std::vector<std::string> args) : Launcher ({}, std::move (args)) {}

  // camrelay run through `wrapper`, a command that ends by exec'ing its
  // arguments (e.g. {"ip", "netns", "exec", "NS"}), so that pid () is still
  // camrelay's and signals reach it.
  Launcher (const std::vector<std::string> &wrapper, std::vector<std::string> args)
  {
    std::vector<const char *> argv;
    for (const std::string &w : wrapper)
      argv.push_back (w.c_str ());
    argv.push_back (CAMRELAY_BINARY);
    for (const std::string &a : args)
      argv.push_back (a.c_str ());
    argv.push_back (nullptr);
    GError *error = nullptr;
    GSubprocessLauncher *launcher = g_subprocess_launcher_new (
        static_cast<GSubprocessFlags> (G_SUBPROCESS_FLAGS_STDERR_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE));
    // camrelay dies with the test: a test process killed by a failed
    // assertion or a signal leaves no relay running behind it.
    g_subprocess_launcher_set_child_setup (
        launcher, [] (gpointer) { prctl (PR_SET_PDEATHSIG, SIGKILL); }, nullptr, nullptr);
    process_ = g_subprocess_launcher_spawnv (launcher, argv.data (), &error);
    g_object_unref (launcher);
    if (!process_) {
      ADD_FAILURE () << "cannot start camrelay: " << error->message;
      g_error_free (error);
      return;
    }
    reader_ = std::thread ([this] { read_lines (g_subprocess_get_stderr_pipe (process_)); });
  }

  ~Launcher ()
  {
    if (process_) {
      if (!exited ())
        g_subprocess_force_exit (process_);
      g_subprocess_wait (process_, nullptr, nullptr);
    }
    if (reader_.joinable ())
      reader_.join ();
    if (process_)
      g_object_unref (process_);
  }

  // Waits for a line of stderr containing `text`; returns it.
  std::string wait_line (const std::string &text, std::chrono::milliseconds timeout)
  {
    std::unique_lock<std::mutex> lock (mutex_);
    std::string found;
    changed_.wait_for (lock, timeout, [&] {
      for (const std::string &line : lines_)
        if (line.find (text) != std::string::npos) {
          found = line;
          return true;
        }
      return closed_.load ();
    });
    return found;
  }

  // Waits until `count` lines of stderr contain `text`; true when they do.
  bool wait_count (const std::string &text, size_t count, std::chrono::milliseconds timeout)
  {
    std::unique_lock<std::mutex> lock (mutex_);
    return changed_.wait_for (lock, timeout, [&] {
      size_t seen = 0;
      for (const std::string &line : lines_)
        if (line.find (text) != std::string::npos)
          seen++;
      return seen >= count || closed_.load ();
    }) && count_locked (text) >= count;
  }

  std::string all_output ()
  {
    std::lock_guard<std::mutex> lock (mutex_);
    std::string out;
    for (const std::string &line : lines_)
      out += line + "\n";
    return out;
  }

  // The port of "... on RTSP <bind>:<port>" (or "on RTSPS") in the
  // start-up line, or 0.
  int rtsp_port () { return port_after ("on RTSP"); }
  // The port of "HTTP on <bind>:<port>" in the start-up line, or 0.
  int http_port () { return port_after ("HTTP on "); }

  // Whether the process has ended (exited or killed by a signal) and been
  // reaped: GSubprocess has no identifier for it any more.
  bool exited () { return closed_.load () && !g_subprocess_get_identifier (process_); }

  // Waits (bounded) for the process to exit; returns its exit status or -1.
  int wait_exit (std::chrono::milliseconds timeout)
  {
    const auto deadline = Clock::now () + timeout;
    while (Clock::now () < deadline) {
      {
        std::unique_lock<std::mutex> lock (mutex_);
        changed_.wait_for (lock, 50ms, [this] { return closed_.load (); });
      }
      if (closed_) {
        g_subprocess_wait (process_, nullptr, nullptr);
        return g_subprocess_get_if_exited (process_) ? g_subprocess_get_exit_status (process_) : -1;
      }
    }
    return -1;
  }

  void send_signal (int signal_number) { g_subprocess_send_signal (process_, signal_number); }

  // The process id of the child, for /proc/PID; 0 when it did not start or has exited.
  int pid () const
  {
    const gchar *id = process_ ? g_subprocess_get_identifier (process_) : nullptr;
    return id ? std::atoi (id) : 0;
  }

 private:
  // The number after the first ':' that follows `label` in the first line
  // holding `label` (waiting for it up to 20 s), or 0.
  int port_after (const std::string &label)
  {
    std::string line = wait_line (label, 20s);
    size_t at = line.find (label);
    if (at == std::string::npos)
      return 0;
    size_t colon = line.find (':', at + label.size ());
    return colon == std::string::npos ? 0 : std::atoi (line.c_str () + colon + 1);
  }

  size_t count_locked (const std::string &text) const
  {
    size_t seen = 0;
    for (const std::string &line : lines_)
      if (line.find (text) != std::string::npos)
        seen++;
    return seen;
  }

  void read_lines (GInputStream *stream)
  {
    GDataInputStream *data = g_data_input_stream_new (stream);
    while (true) {
      gsize length = 0;
      gchar *line = g_data_input_stream_read_line_utf8 (data, &length, nullptr, nullptr);
      if (!line)
        break;
      {
        std::lock_guard<std::mutex> lock (mutex_);
        lines_.emplace_back (line);
      }
      g_free (line);
      changed_.notify_all ();
    }
    g_object_unref (data);
    closed_ = true;
    changed_.notify_all ();
  }

  GSubprocess *process_ = nullptr;
  std::thread reader_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<std::string> lines_;
  std::atomic<bool> closed_{false};
};

// Runs a command line to completion (bounded by `timeout`, in s); returns its stdout.
inline std::string
run (const std::string &command, int &status)
{
  gchar *out = nullptr;
  gint wait_status = 0;
  GError *error = nullptr;
  if (!g_spawn_command_line_sync (command.c_str (), &out, nullptr, &wait_status, &error)) {
    status = -1;
    g_clear_error (&error);
    return "";
  }
  status = g_spawn_check_wait_status (wait_status, nullptr) ? 0 : 1;
  std::string text = out ? out : "";
  g_free (out);
  return text;
}

// An RTSP client in this process: rtspsrc ! depay ! parse ! decoder ! appsink,
// counting decoded frames.  Without `decode`, rtspsrc ! depay ! appsink,
// counting access units: a cheap client for tests that need many.
struct RtspClient {
  camrelay::ElementPtr pipeline;
  std::atomic<int> frames{0};
  std::atomic<gint64> last_frame_us{0};

  RtspClient (const std::string &url, const char *protocols, bool decode = true)
  {
    std::string description = "rtspsrc location=" + url + " protocols=" + protocols
        + " latency=200 ! rtph264depay ! "
        + (decode ? "h264parse ! avdec_h264 ! " : "") + "appsink name=sink sync=false";
    GError *error = nullptr;
    pipeline.reset (gst_parse_launch (description.c_str (), &error));
    if (error) {
      ADD_FAILURE () << error->message;
      g_error_free (error);
      return;
    }
    camrelay::ElementPtr sink{gst_bin_get_by_name (GST_BIN (pipeline.get ()), "sink")};
    GstAppSinkCallbacks callbacks = {};
    callbacks.new_sample = [] (GstAppSink *s, gpointer data) -> GstFlowReturn {
      auto *self = static_cast<RtspClient *> (data);
      GstSample *sample = gst_app_sink_pull_sample (s);
      if (sample)
        gst_sample_unref (sample);
      self->frames++;
      self->last_frame_us = g_get_monotonic_time ();
      return GST_FLOW_OK;
    };
    gst_app_sink_set_callbacks (GST_APP_SINK (sink.get ()), &callbacks, this, nullptr);
    gst_element_set_state (pipeline.get (), GST_STATE_PLAYING);
  }

  ~RtspClient ()
  {
    if (pipeline)
      gst_element_set_state (pipeline.get (), GST_STATE_NULL);
  }

  bool wait_frames (int count, std::chrono::milliseconds timeout)
  {
    const auto deadline = Clock::now () + timeout;
    camrelay::BusPtr bus{gst_element_get_bus (pipeline.get ())};
    while (frames < count && Clock::now () < deadline) {
      // Bus errors end the wait early; otherwise poll the counter.
      camrelay::MessagePtr message{gst_bus_timed_pop_filtered (bus.get (), 50 * GST_MSECOND,
          static_cast<GstMessageType> (GST_MESSAGE_ERROR | GST_MESSAGE_EOS))};
      if (message) {
        ADD_FAILURE () << "client got " << GST_MESSAGE_TYPE_NAME (message.get ());
        return false;
      }
    }
    return frames >= count;
  }

  int errors_or_eos ()
  {
    camrelay::BusPtr bus{gst_element_get_bus (pipeline.get ())};
    int count = 0;
    while (camrelay::MessagePtr m{gst_bus_pop_filtered (bus.get (),
               static_cast<GstMessageType> (GST_MESSAGE_ERROR | GST_MESSAGE_EOS))})
      count++;
    return count;
  }
};

// The end of a test: camrelay stops on SIGTERM with status 0 within 5 s, and
// its configuration file is removed.
inline void
expect_clean_stop (Launcher &camrelay, const std::string &config_path)
{
  camrelay.send_signal (SIGTERM);
  EXPECT_EQ (camrelay.wait_exit (5s), 0) << camrelay.all_output ();
  // camrelay's stop watchdog ends a stuck stop with status 0 after 4 s: a
  // stop that needed it is a failure all the same.
  EXPECT_EQ (camrelay.wait_line ("stopping took over", 0ms), "")
      << "the stop watchdog had to end camrelay\n" << camrelay.all_output ();
  g_unlink (config_path.c_str ());
}

inline std::string
write_config (const std::string &text)
{
  gchar *path = nullptr;
  gint fd = g_file_open_tmp ("camrelay-XXXXXX.toml", &path, nullptr);
  close (fd);
  std::ofstream (path) << text;
  std::string result = path;
  g_free (path);
  return result;
}

inline std::string
http_get (int port, const std::string &path, int &status)
{
  return run ("curl -s -o - -w \"\\n%{http_code}\" --max-time 5 http://127.0.0.1:"
          + std::to_string (port) + path, status);
}

inline std::string
config_text (const std::string &cameras, int rtsp_port = 0, int http_port = 0)
{
  return "[server]\nbind = \"127.0.0.1\"\nport = " + std::to_string (rtsp_port)
      + "\n\n[http]\nbind = \"127.0.0.1\"\nport = " + std::to_string (http_port) + "\n\n"
      + cameras;
}

inline std::string
camera_entry (const std::string &name, const std::string &location)
{
  return "[[cameras]]\nname = \"" + name + "\"\nlocation = \"" + location + "\"\n\n";
}

// One RTSP connection on which requests are sent one after another, as a
// player does (DESCRIBE, SETUP, PLAY...).  Answers are read whole (status
// line, headers, body) so that the next one starts clean.  With `tls`, an
// RTSPS connection that accepts any server certificate.
class RtspProbe {
 public:
  struct Response {
    std::string status;                    // "RTSP/1.0 200 OK", or why there is none
    std::vector<std::string> headers;      // "Name: value", in order
    std::string body;
    // The value of header `name` (case-insensitive), or "".
    std::string header (const std::string &name) const
    {
      for (const std::string &h : headers)
        if (h.size () > name.size () && h[name.size ()] == ':'
            && g_ascii_strncasecmp (h.c_str (), name.c_str (), name.size ()) == 0) {
          size_t at = name.size () + 1;
          while (at < h.size () && h[at] == ' ')
            at++;
          return h.substr (at);
        }
      return "";
    }
  };

  explicit RtspProbe (int port, bool tls = false) : port_ (port), tls_ (tls)
  {
    GSocketClient *client = g_socket_client_new ();
    g_socket_client_set_timeout (client, 15);
    GSocketConnection *socket = g_socket_client_connect_to_host (client, "127.0.0.1",
        static_cast<guint16> (port), nullptr, nullptr);
    g_object_unref (client);
    if (socket && tls) {
      GIOStream *secure = g_tls_client_connection_new (G_IO_STREAM (socket), nullptr, nullptr);
      if (secure) {
        g_signal_connect (secure, "accept-certificate",
            G_CALLBACK (+[] (GTlsConnection *, GTlsCertificate *, GTlsCertificateFlags,
                            gpointer) -> gboolean { return TRUE; }),
            nullptr);
        GError *error = nullptr;
        if (g_tls_connection_handshake (G_TLS_CONNECTION (secure), nullptr, &error)) {
          connection_ = secure;
        } else {
          failure_ = std::string ("TLS handshake failed: ") + error->message;
          g_error_free (error);
          g_object_unref (secure);
        }
      }
      g_object_unref (socket);
    } else {
      connection_ = socket ? G_IO_STREAM (socket) : nullptr;
    }
    if (connection_)
      in_ = g_data_input_stream_new (g_io_stream_get_input_stream (connection_));
  }
  ~RtspProbe ()
  {
    if (in_)
      g_object_unref (in_);
    if (connection_)
      g_object_unref (connection_);
  }
  RtspProbe (const RtspProbe &) = delete;
  RtspProbe &operator= (const RtspProbe &) = delete;

  // `target` is a path on the server ("front", "front/stream=0") or a full URL.
  Response request (const std::string &method, const std::string &target,
      const std::vector<std::string> &headers = {})
  {
    Response response;
    if (!connection_) {
      response.status = failure_;
      return response;
    }
    const std::string url = target.rfind ("rtsp://", 0) == 0 || target.rfind ("rtsps://", 0) == 0
        ? target
        : (tls_ ? "rtsps" : "rtsp") + std::string ("://127.0.0.1:") + std::to_string (port_) + "/"
            + target;
    std::string text = method + " " + url + " RTSP/1.0\r\nCSeq: " + std::to_string (++cseq_) + "\r\n";
    for (const std::string &h : headers)
      text += h + "\r\n";
    text += "\r\n";
    GOutputStream *out = g_io_stream_get_output_stream (connection_);
    if (!g_output_stream_write_all (out, text.data (), text.size (), nullptr, nullptr, nullptr)) {
      response.status = "write failed";
      return response;
    }
    size_t body = 0;
    for (int line_no = 0;; line_no++) {
      gchar *line = g_data_input_stream_read_line (in_, nullptr, nullptr, nullptr);
      if (!line) {
        if (response.status.empty ())
          response.status = "closed";
        return response;
      }
      std::string header = line;
      g_free (line);
      if (!header.empty () && header.back () == '\r')
        header.pop_back ();
      if (line_no == 0)
        response.status = header;
      else if (header.empty ())
        break;
      else
        response.headers.push_back (header);
      if (g_ascii_strncasecmp (header.c_str (), "Content-Length:", 15) == 0)
        body = std::strtoul (header.c_str () + 15, nullptr, 10);
    }
    response.body.assign (body, '\0');
    gsize got = 0;
    g_input_stream_read_all (G_INPUT_STREAM (in_), response.body.data (), body, &got, nullptr,
        nullptr);
    response.body.resize (got);
    return response;
  }

  // DESCRIBE with Basic `credentials` ("user:password") or none; the status line.
  std::string describe (const std::string &path, const std::string &credentials = "")
  {
    std::vector<std::string> headers{"Accept: application/sdp"};
    if (!credentials.empty ()) {
      gchar *encoded = g_base64_encode (reinterpret_cast<const guchar *> (credentials.data ()),
          credentials.size ());
      headers.push_back (std::string ("Authorization: Basic ") + encoded);
      g_free (encoded);
    }
    return request ("DESCRIBE", path, headers).status;
  }

 private:
  int port_;
  bool tls_;
  int cseq_ = 0;
  GIOStream *connection_ = nullptr;  // a GSocketConnection, or a GTlsConnection over one
  std::string failure_ = "connect failed";  // why there is no connection_
  GDataInputStream *in_ = nullptr;
};

// A raw RTSP connection on a plain socket, for clients that misbehave: a
// small receive buffer, requests cut short, reading that stops, an abortive
// close (RST).  Every read is bounded by poll().
class RawRtsp {
 public:
  RawRtsp (int port, int receive_buffer = 0) : port_ (port)
  {
    fd_ = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0)
      return;
    // Before connect(), so that the window offered to the server is small.
    if (receive_buffer)
      setsockopt (fd_, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof (receive_buffer));
    sockaddr_in address = {};
    address.sin_family = AF_INET;
    address.sin_port = htons (static_cast<uint16_t> (port));
    address.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    if (connect (fd_, reinterpret_cast<sockaddr *> (&address), sizeof (address)) != 0) {
      close (fd_);
      fd_ = -1;
    }
  }
  ~RawRtsp ()
  {
    if (fd_ >= 0)
      close (fd_);
  }
  RawRtsp (const RawRtsp &) = delete;
  RawRtsp &operator= (const RawRtsp &) = delete;

  bool ok () const { return fd_ >= 0; }

  std::string request_text (const std::string &method, const std::string &path,
      const std::vector<std::string> &headers = {})
  {
    std::string text = method + " rtsp://127.0.0.1:" + std::to_string (port_) + "/" + path
        + " RTSP/1.0\r\nCSeq: " + std::to_string (++cseq_) + "\r\n";
    for (const std::string &h : headers)
      text += h + "\r\n";
    return text + "\r\n";
  }

  bool send_text (const std::string &text)
  {
    size_t done = 0;
    while (fd_ >= 0 && done < text.size ()) {
      ssize_t n = send (fd_, text.data () + done, text.size () - done, MSG_NOSIGNAL);
      if (n <= 0)
        return false;
      done += static_cast<size_t> (n);
    }
    return done == text.size ();
  }

  // Reads one response (headers and body); "" on timeout or close.
  std::string read_response (std::chrono::milliseconds timeout = 10s)
  {
    const auto deadline = Clock::now () + timeout;
    while (true) {
      size_t end = buffer_.find ("\r\n\r\n");
      if (end != std::string::npos) {
        size_t body = 0;
        size_t at = buffer_.find ("Content-Length:");
        if (at != std::string::npos && at < end)
          body = std::strtoul (buffer_.c_str () + at + 15, nullptr, 10);
        if (buffer_.size () >= end + 4 + body) {
          std::string response = buffer_.substr (0, end + 4 + body);
          buffer_.erase (0, end + 4 + body);
          return response;
        }
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds> (
          deadline - Clock::now ());
      if (left.count () <= 0)
        return "";
      pollfd p = {fd_, POLLIN, 0};
      if (poll (&p, 1, static_cast<int> (left.count ())) <= 0)
        return "";
      char chunk[4096];
      ssize_t n = recv (fd_, chunk, sizeof (chunk), 0);
      if (n <= 0)
        return "";
      buffer_.append (chunk, static_cast<size_t> (n));
    }
  }

  std::string exchange (const std::string &method, const std::string &path,
      const std::vector<std::string> &headers = {})
  {
    if (!send_text (request_text (method, path, headers)))
      return "";
    return read_response ();
  }

  // DESCRIBE, SETUP (interleaved TCP or UDP to `udp_port`), PLAY; true when
  // each answered 200.
  bool play (const std::string &mount, bool tcp, int udp_port = 0)
  {
    std::string answer = exchange ("DESCRIBE", mount, {"Accept: application/sdp"});
    if (answer.find (" 200 ") == std::string::npos)
      return false;
    const std::string transport = tcp
        ? "Transport: RTP/AVP/TCP;unicast;interleaved=0-1"
        : "Transport: RTP/AVP;unicast;client_port=" + std::to_string (udp_port) + "-"
            + std::to_string (udp_port + 1);
    answer = exchange ("SETUP", mount + "/stream=0", {transport});
    if (answer.find (" 200 ") == std::string::npos)
      return false;
    size_t at = answer.find ("Session: ");
    if (at == std::string::npos)
      return false;
    session_ = answer.substr (at + 9, answer.find_first_of (";\r", at + 9) - at - 9);
    answer = exchange ("PLAY", mount, {"Session: " + session_, "Range: npt=0-"});
    return answer.find (" 200 ") != std::string::npos;
  }

  // Whether the server closed the connection, waiting up to `timeout` and
  // discarding whatever arrives meanwhile.
  bool wait_closed_by_server (std::chrono::milliseconds timeout)
  {
    const auto deadline = Clock::now () + timeout;
    while (Clock::now () < deadline) {
      pollfd p = {fd_, POLLIN, 0};
      if (poll (&p, 1, 100) <= 0)
        continue;
      char chunk[65536];
      ssize_t n = recv (fd_, chunk, sizeof (chunk), 0);
      if (n <= 0)
        return true;
    }
    return false;
  }

  // Reads and discards whatever arrives for `duration`; the bytes read, or
  // -1 when the server closed the connection.
  long drain (std::chrono::milliseconds duration)
  {
    const auto deadline = Clock::now () + duration;
    long total = 0;
    while (fd_ >= 0 && Clock::now () < deadline) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds> (
          deadline - Clock::now ());
      pollfd p = {fd_, POLLIN, 0};
      if (poll (&p, 1, static_cast<int> (std::max<long> (left.count (), 0))) <= 0)
        continue;
      char chunk[65536];
      ssize_t n = recv (fd_, chunk, sizeof (chunk), 0);
      if (n <= 0)
        return -1;
      total += n;
    }
    return total;
  }

  // An abrupt end, as a crashed player or a lost network: RST, no TEARDOWN.
  void abort ()
  {
    if (fd_ < 0)
      return;
    linger reset = {1, 0};
    setsockopt (fd_, SOL_SOCKET, SO_LINGER, &reset, sizeof (reset));
    close (fd_);
    fd_ = -1;
  }

 private:
  int port_;
  int fd_ = -1;
  int cseq_ = 0;
  std::string buffer_;
  std::string session_;
};

inline std::string
sha256 (const std::string &text)
{
  gchar *hex = g_compute_checksum_for_string (G_CHECKSUM_SHA256, text.c_str (), -1);
  std::string result = hex;
  g_free (hex);
  return result;
}

}  // namespace camrelay::launcher_test
