// camerasrc_bench: what one 1080p30 camera costs through camerasrc, and how
// fast camerasrc gets frames again when the camera comes back, each next to the
// rtspsrc pipeline a GStreamer user would write, against the same local RTSP
// camera and in the same run.
//
// The camera is a gst-rtsp-server in a child process (this program run with
// --serve), streaming a clip encoded once at start-up (1920x1080, 30 fps,
// H.264 GOP 30, about 4 Mbit/s) at real-time pace without re-encoding:
//
//   ( filesrc location=CLIP ! qtdemux ! h264parse ! rtph264pay name=pay0 pt=96 config-interval=-1 )
//
// 1. CPU: process CPU time (getrusage, user + sys) of this process, which runs
//    nothing but the receiving pipeline, over --cpu-seconds of streaming,
//    --cpu-runs times each in rotating order, for
//      camerasrc location=rtsp://... ! fakesink
//      rtspsrc location=rtsp://... latency=200 ! rtph264depay ! h264parse config-interval=-1 ! fakesink
//    and the same rtspsrc line with protocols=tcp (camerasrc's default transport).
// 2. Recovery: with camerasrc streaming, the server is SIGKILLed, stays away
//    --outage-ms, and is started again on the same port; the time from the
//    moment it listens (reported by the child, CLOCK_MONOTONIC) to the next
//    camera frame at the fakesink's pad (a pad probe; camerasrc's fallback
//    pictures are told apart by its `stats` `frames` field, which they do not
//    count).  Repeated --restarts times with a short backoff, once with the
//    element's defaults, and once for each rtspsrc pipeline for contrast.
//
// It prints figures and never fails on them (timings depend on the machine and
// its load); it fails only when something does not work at all.
//
// Run it from the build tree:
//   meson compile -C build bench-camerasrc
// or directly (it then finds the plugin in the build tree by itself):
//   build/bench/camerasrc_bench [--cpu-seconds S] [--restarts N] [--verbose]
//
// camerasrc is used by factory name, properties and its documented `stats` and
// `camerasrc-state` message only, as any application would use it.
#include <gst/gst.h>
#include <gst/rtsp-server/rtsp-server.h>
#include <glib/gstdio.h>

#include "bench_common.h"
#include "common/element_names.h"
#include "common/enums.h"
#include "common/gstref.h"

#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

using camrelay::bench::default_to_build_tree;
using camrelay::bench::median;
using camrelay::bench::process_cpu_seconds;

using camrelay::BusPtr;
using camrelay::ElementPtr;
using camrelay::GCharPtr;
using camrelay::GErrorPtr;
using camrelay::MessagePtr;
using camrelay::ObjectPtr;
using camrelay::PadPtr;
using camrelay::StructurePtr;

constexpr const char *kCandidate = "camerasrc";
constexpr const char *kMountPath = "/camera";

constexpr int kClipWidth = 1920;
constexpr int kClipHeight = 1080;
constexpr int kClipFps = 30;
constexpr int kClipGop = 30;
constexpr int kClipKbps = 4000;
// Streaming before the CPU window opens: connection set-up, the jitterbuffer
// filling and the first keyframe are not what one camera costs in the long run.
constexpr gint64 kSettleUs = G_USEC_PER_SEC;
// Streaming before each kill of the server in the recovery runs.
constexpr gint64 kStreamBeforeKillUs = G_USEC_PER_SEC;
// Bounds of the waits that are not options.
constexpr gint64 kFirstFrameTimeoutUs = 10 * G_USEC_PER_SEC;
constexpr gint64 kServerStartTimeoutUs = 10 * G_USEC_PER_SEC;
constexpr gint64 kReapTimeoutUs = 5 * G_USEC_PER_SEC;
constexpr gint64 kEncodeTimeoutUs = 120 * G_USEC_PER_SEC;
// A server child lives at most this long whatever happens to its parent.
constexpr guint kServerLifetimeS = 600;

struct Options {
  gint cpu_seconds = 10;
  gint cpu_runs = 2;
  gint restarts = 5;
  gint outage_ms = 2000;
  gint recovery_timeout_s = 10;
  gint retry_delay_ms = 100;
  gint retry_delay_max_ms = 500;
  gboolean verbose = FALSE;
  // --serve CLIP: run as the camera (the child process), on --port.
  gchar *serve = nullptr;
  gint port = 0;
};

// Set by SIGINT or SIGTERM: every wait gives up and the normal clean-up runs
// (server child killed and reaped, clip removed).  Global because a signal
// handler has nowhere else to write; a second signal kills as usual.
volatile sig_atomic_t interrupted = 0;

void
on_interrupt (int signal_number)
{
  interrupted = 1;
  signal (signal_number, SIG_DFL);
}

void
handle_interrupts ()
{
  struct sigaction action{};
  action.sa_handler = on_interrupt;
  sigemptyset (&action.sa_mask);
  sigaction (SIGINT, &action, nullptr);
  sigaction (SIGTERM, &action, nullptr);
}

gint64
now_us ()
{
  return g_get_monotonic_time ();
}

double
seconds (gint64 us)
{
  return static_cast<double> (us) / G_USEC_PER_SEC;
}

// user + sys CPU seconds of a running process, from /proc; -1 if unknown.
double
process_cpu_seconds (pid_t pid)
{
  GCharPtr path{g_strdup_printf ("/proc/%d/stat", static_cast<int> (pid))};
  gchar *raw = nullptr;
  if (!g_file_get_contents (path.get (), &raw, nullptr, nullptr))
    return -1;
  GCharPtr contents{raw};
  // The command name (field 2) may hold spaces; the fields after it do not.
  const char *rest = std::strrchr (contents.get (), ')');
  if (!rest)
    return -1;
  gchar **fields = g_strsplit (rest + 2, " ", -1);
  // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
  double total = -1;
  if (g_strv_length (fields) > 12) {
    const double ticks = static_cast<double> (sysconf (_SC_CLK_TCK));
    total = static_cast<double> (g_ascii_strtoull (fields[11], nullptr, 10)
                + g_ascii_strtoull (fields[12], nullptr, 10))
        / ticks;
  }
  g_strfreev (fields);
  return total;
}

// ---- the camera: a gst-rtsp-server in a child process ---------------------------

GstClockTime
ms_to_ns (gint ms)
{
  return static_cast<GstClockTime> (ms) * GST_MSECOND;
}

gboolean
quit_main_loop (gpointer loop)
{
  g_main_loop_quit (static_cast<GMainLoop *> (loop));
  return G_SOURCE_REMOVE;
}

// The child's whole life: serve the clip on 127.0.0.1:port until killed, and
// tell the parent on stdout, once, "listening PORT MONOTONIC_US".
int
serve (const Options &options)
{
  GstRTSPServer *server = gst_rtsp_server_new ();
  gst_rtsp_server_set_address (server, "127.0.0.1");
  gst_rtsp_server_set_service (server, std::to_string (options.port).c_str ());
  GstRTSPMountPoints *mounts = gst_rtsp_server_get_mount_points (server);
  GstRTSPMediaFactory *factory = gst_rtsp_media_factory_new ();
  // Not shared: every client gets its own pipeline that starts with the
  // clip's first keyframe, like a camera's stream starts with one.  The
  // server's sinks synchronise on the clock, which paces the file.
  GCharPtr launch{g_strdup_printf ("( filesrc location=\"%s\" ! qtdemux ! h264parse ! "
                                   "rtph264pay name=pay0 pt=96 config-interval=-1 )",
      options.serve)};
  gst_rtsp_media_factory_set_launch (factory, launch.get ());
  gst_rtsp_mount_points_add_factory (mounts, kMountPath, factory);
  g_object_unref (mounts);

  // The previous server on this port was killed a moment ago; its sockets
  // may keep the port busy briefly.
  GSource *source = nullptr;
  const gint64 deadline = now_us () + 3 * G_USEC_PER_SEC;
  for (;;) {
    GError *raw_error = nullptr;
    source = gst_rtsp_server_create_source (server, nullptr, &raw_error);
    GErrorPtr error{raw_error};
    if (source)
      break;
    if (now_us () >= deadline) {
      g_printerr ("camera server: cannot listen on 127.0.0.1:%d: %s\n", options.port,
          error ? error->message : "unknown error");
      g_object_unref (server);
      return 1;
    }
    g_usleep (50 * 1000);
  }
  const gint64 listening = now_us ();
  GMainLoop *loop = g_main_loop_new (nullptr, FALSE);
  g_source_attach (source, nullptr);
  g_source_unref (source);
  std::printf ("listening %d %" G_GINT64_FORMAT "\n", gst_rtsp_server_get_bound_port (server),
      listening);
  std::fflush (stdout);
  // Normally killed by the parent; this bounds the life of a forgotten one.
  g_timeout_add_seconds (kServerLifetimeS, quit_main_loop, loop);
  g_main_loop_run (loop);
  g_main_loop_unref (loop);
  g_object_unref (server);
  return 0;
}

// Runs in the child between fork and exec: the kernel kills the server if
// this process dies, however it dies.
void
die_with_parent (gpointer)
{
  prctl (PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
}

// One camera server child at a time; killed and reaped on stop () and in the
// destructor.
class CameraServer {
 public:
  CameraServer (std::string program, std::string clip)
      : program_ (std::move (program)), clip_ (std::move (clip))
  {
  }
  ~CameraServer () { stop (); }
  CameraServer (const CameraServer &) = delete;
  CameraServer &operator= (const CameraServer &) = delete;

  // Starts a server on `port` (0: the kernel chooses, read back with port ())
  // and waits until it listens.
  bool start (guint16 port)
  {
    stop ();
    const std::string port_text = std::to_string (port);
    const gchar *argv[] = {program_.c_str (), "--serve", clip_.c_str (), "--port",
      port_text.c_str (), nullptr};
    GError *raw_error = nullptr;
    GPid pid = 0;
    gint out_fd = -1;
    if (!g_spawn_async_with_pipes (nullptr, const_cast<gchar **> (argv), nullptr,
            G_SPAWN_DO_NOT_REAP_CHILD, die_with_parent, nullptr, &pid, nullptr, &out_fd,
            nullptr, &raw_error)) {
      GErrorPtr error{raw_error};
      g_printerr ("error: cannot start the camera server: %s\n", error->message);
      return false;
    }
    pid_ = pid;
    out_fd_ = out_fd;

    std::string line;
    if (!read_line (now_us () + kServerStartTimeoutUs, line)) {
      g_printerr ("error: the camera server did not start listening within %.0f s\n",
          seconds (kServerStartTimeoutUs));
      stop ();
      return false;
    }
    int bound_port = 0;
    gint64 listening = 0;
    if (std::sscanf (line.c_str (), "listening %d %" G_GINT64_FORMAT, &bound_port, &listening) != 2
        || bound_port <= 0 || bound_port > 65535) {
      g_printerr ("error: unexpected word from the camera server: '%s'\n", line.c_str ());
      stop ();
      return false;
    }
    port_ = static_cast<guint16> (bound_port);
    listening_us_ = listening;
    return true;
  }

  // SIGKILL, like a camera losing power, then reap.
  void stop ()
  {
    if (pid_ > 0) {
      kill (pid_, SIGKILL);
      const gint64 deadline = now_us () + kReapTimeoutUs;
      int status = 0;
      pid_t reaped = 0;
      while ((reaped = waitpid (pid_, &status, WNOHANG)) == 0 && now_us () < deadline)
        g_usleep (5 * 1000);
      if (reaped != pid_)
        g_printerr ("warning: camera server %d not reaped after SIGKILL\n",
            static_cast<int> (pid_));
      g_spawn_close_pid (pid_);
      pid_ = -1;
    }
    if (out_fd_ >= 0) {
      close (out_fd_);
      out_fd_ = -1;
    }
  }

  guint16 port () const { return port_; }
  // CLOCK_MONOTONIC (g_get_monotonic_time) when the server last started listening.
  gint64 listening_us () const { return listening_us_; }
  double cpu_seconds () const { return pid_ > 0 ? process_cpu_seconds (pid_) : -1; }
  std::string url () const
  {
    return "rtsp://127.0.0.1:" + std::to_string (port_) + kMountPath;
  }

 private:
  bool read_line (gint64 deadline, std::string &line)
  {
    line.clear ();
    for (;;) {
      const gint64 left = deadline - now_us ();
      if (left <= 0 || interrupted)
        return false;
      pollfd fd{out_fd_, POLLIN, 0};
      const int ready = poll (&fd, 1, static_cast<int> (std::min<gint64> (left / 1000 + 1, 100)));
      if (ready < 0 && errno != EINTR)
        return false;
      if (ready <= 0)
        continue;
      char c = 0;
      const ssize_t n = read (out_fd_, &c, 1);
      if (n == 0)
        return false;  // the child exited
      if (n < 0) {
        if (errno == EINTR || errno == EAGAIN)
          continue;
        return false;
      }
      if (c == '\n')
        return true;
      line.push_back (c);
    }
  }

  std::string program_;
  std::string clip_;
  pid_t pid_ = -1;
  int out_fd_ = -1;
  guint16 port_ = 0;
  gint64 listening_us_ = 0;
};

// ---- the receiving side ---------------------------------------------------------

guint64
camera_frames (GstElement *camera)
{
  GstStructure *raw = nullptr;
  g_object_get (camera, "stats", &raw, nullptr);
  StructurePtr stats{raw};
  guint64 frames = 0;
  if (stats)
    gst_structure_get_uint64 (stats.get (), camrelay::camerasrc_names::STAT_FRAMES, &frames);
  return frames;
}

// What the pad probe on the fakesink sees (streaming thread).
struct FrameProbe {
  std::atomic<guint64> frames{0};
  std::atomic<gint64> first_us{0};
  // arm () makes the probe note the arrival of the next camera frame.
  std::atomic<bool> armed{false};
  guint64 camera_frames_at_arm = 0;  // written before `armed` is set
  std::atomic<gint64> camera_frame_us{0};
  std::atomic<guint> camera_frame_flags{0};  // GstBufferFlags of that frame
  GstElement *camera = nullptr;      // camerasrc, or nullptr: every frame is the camera's
};

GstPadProbeReturn
on_frame (GstPad *, GstPadProbeInfo *info, gpointer user_data)
{
  auto *probe = static_cast<FrameProbe *> (user_data);
  const gint64 now = now_us ();
  guint count = 1;
  GstBuffer *buffer = nullptr;
  if (GST_PAD_PROBE_INFO_TYPE (info) & GST_PAD_PROBE_TYPE_BUFFER_LIST) {
    GstBufferList *list = GST_PAD_PROBE_INFO_BUFFER_LIST (info);
    count = gst_buffer_list_length (list);
    buffer = count > 0 ? gst_buffer_list_get (list, 0) : nullptr;
  } else {
    buffer = GST_PAD_PROBE_INFO_BUFFER (info);
  }
  probe->frames += count;
  gint64 unset = 0;
  probe->first_us.compare_exchange_strong (unset, now);
  if (probe->armed.load (std::memory_order_acquire)) {
    // camerasrc's fallback pictures are not counted in its `frames`: one
    // that is counted past the mark came from the camera.
    if (!probe->camera || camera_frames (probe->camera) > probe->camera_frames_at_arm) {
      probe->camera_frame_flags = buffer ? GST_BUFFER_FLAGS (buffer) : 0;
      probe->camera_frame_us = now;
      probe->armed = false;
    }
  }
  return GST_PAD_PROBE_OK;
}

std::string
enum_nick (const GValue *value)
{
  const char *nick = camrelay::enum_nick (value);
  return nick ? nick : "?";
}

// One receiving pipeline, from a gst-launch description whose sink is named
// "sink" (and camerasrc, if any, "camera").
class Receiver {
 public:
  Receiver (const std::string &description, bool verbose, gint64 origin_us)
      : description_ (description), verbose_ (verbose), origin_us_ (origin_us)
  {
    GError *raw_error = nullptr;
    GstElement *pipeline = gst_parse_launch (description.c_str (), &raw_error);
    GErrorPtr error{raw_error};
    if (!pipeline || error) {
      g_printerr ("error: cannot make '%s': %s\n", description.c_str (),
          error ? error->message : "unknown error");
      if (pipeline)
        gst_object_unref (gst_object_ref_sink (pipeline));
      return;
    }
    pipeline_.reset (GST_ELEMENT (gst_object_ref_sink (pipeline)));
    bus_.reset (gst_element_get_bus (pipeline_.get ()));
    camera_.reset (gst_bin_get_by_name (GST_BIN (pipeline_.get ()), "camera"));
    probe_.camera = camera_.get ();
    ElementPtr sink{gst_bin_get_by_name (GST_BIN (pipeline_.get ()), "sink")};
    PadPtr pad{sink ? gst_element_get_static_pad (sink.get (), "sink") : nullptr};
    if (!pad) {
      g_printerr ("error: '%s' has no element named sink\n", description.c_str ());
      pipeline_.reset ();
      return;
    }
    gst_pad_add_probe (pad.get (),
        static_cast<GstPadProbeType> (GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST),
        on_frame, &probe_, nullptr);
  }
  ~Receiver () { stop (); }
  Receiver (const Receiver &) = delete;
  Receiver &operator= (const Receiver &) = delete;

  bool play ()
  {
    if (!pipeline_)
      return false;
    if (gst_element_set_state (pipeline_.get (), GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
      g_printerr ("error: '%s' does not go to PLAYING\n", description_.c_str ());
      return false;
    }
    return true;
  }

  // To NULL; returns how long it took (0 if already stopped).
  double stop ()
  {
    if (!pipeline_)
      return 0;
    const gint64 start = now_us ();
    gst_element_set_state (pipeline_.get (), GST_STATE_NULL);
    const double took = seconds (now_us () - start);
    drain_bus (0);
    probe_.camera = nullptr;
    camera_.reset ();
    bus_.reset ();
    pipeline_.reset ();
    return took;
  }

  // Handles bus messages until `done ()` or the deadline; returns done ().
  template <typename Done>
  bool wait_until (gint64 deadline, Done done)
  {
    while (!done ()) {
      const gint64 left = deadline - now_us ();
      if (left <= 0 || interrupted)
        return done ();
      drain_bus (std::min<gint64> (left, 10 * 1000));
    }
    return true;
  }
  void run_for (gint64 duration_us)
  {
    wait_until (now_us () + duration_us, [] { return false; });
  }
  bool wait_first_frame (gint64 timeout_us)
  {
    return wait_until (now_us () + timeout_us, [this] { return probe_.first_us != 0; });
  }

  // From now on, note the arrival of the next frame from the camera.
  void arm ()
  {
    probe_.armed = false;
    probe_.camera_frame_us = 0;
    probe_.camera_frames_at_arm = camera_ ? camera_frames (camera_.get ()) : 0;
    probe_.armed.store (true, std::memory_order_release);
  }
  bool wait_camera_frame (gint64 deadline)
  {
    return wait_until (deadline, [this] { return probe_.camera_frame_us != 0; });
  }

  guint64 frames () const { return probe_.frames; }
  gint64 first_frame_us () const { return probe_.first_us; }
  gint64 camera_frame_us () const { return probe_.camera_frame_us; }
  guint camera_frame_flags () const { return probe_.camera_frame_flags; }
  GstElement *camera () const { return camera_.get (); }
  guint errors () const { return errors_; }
  guint warnings () const { return warnings_; }
  guint eos () const { return eos_; }
  const std::string &first_error () const { return first_error_; }
  const std::string &first_warning () const { return first_warning_; }

 private:
  void drain_bus (gint64 timeout_us)
  {
    if (!bus_)
      return;
    GstClockTime timeout = static_cast<GstClockTime> (timeout_us) * GST_USECOND;
    while (MessagePtr message{gst_bus_timed_pop (bus_.get (), timeout)}) {
      timeout = 0;
      handle (message.get ());
    }
  }

  void handle (GstMessage *message)
  {
    switch (GST_MESSAGE_TYPE (message)) {
      case GST_MESSAGE_ERROR:
      case GST_MESSAGE_WARNING: {
        const bool is_error = GST_MESSAGE_TYPE (message) == GST_MESSAGE_ERROR;
        GError *raw_error = nullptr;
        gchar *raw_debug = nullptr;
        if (is_error)
          gst_message_parse_error (message, &raw_error, &raw_debug);
        else
          gst_message_parse_warning (message, &raw_error, &raw_debug);
        GErrorPtr error{raw_error};
        GCharPtr debug{raw_debug};
        std::string text = std::string (GST_OBJECT_NAME (GST_MESSAGE_SRC (message))) + ": "
            + (error ? error->message : "?");
        (is_error ? errors_ : warnings_)++;
        std::string &first = is_error ? first_error_ : first_warning_;
        if (first.empty ())
          first = text;
        if (verbose_)
          std::printf ("    %8.3f s %s %s (%s)\n", seconds (now_us () - origin_us_),
              is_error ? "ERROR" : "WARNING", text.c_str (), debug ? debug.get () : "");
        break;
      }
      case GST_MESSAGE_EOS:
        eos_++;
        if (verbose_)
          std::printf ("    %8.3f s EOS\n", seconds (now_us () - origin_us_));
        break;
      case GST_MESSAGE_ELEMENT: {
        const GstStructure *s = gst_message_get_structure (message);
        namespace names = camrelay::camerasrc_names;
        if (verbose_ && s && gst_structure_has_name (s, names::STATE_MESSAGE)) {
          const char *reason = gst_structure_get_string (s, names::FIELD_REASON);
          guint64 retry_in = 0;
          gst_structure_get_uint64 (s, names::FIELD_RETRY_IN, &retry_in);
          std::printf ("    %8.3f s camerasrc-state %s -> %s (%s) retry-in %.3f s\n",
              seconds (now_us () - origin_us_),
              enum_nick (gst_structure_get_value (s, names::FIELD_PREVIOUS)).c_str (),
              enum_nick (gst_structure_get_value (s, names::FIELD_STATE)).c_str (),
              reason ? reason : "",
              static_cast<double> (retry_in) / GST_SECOND);
        }
        break;
      }
      default:
        break;
    }
  }

  std::string description_;
  bool verbose_;
  gint64 origin_us_;
  ElementPtr pipeline_;
  BusPtr bus_;
  ElementPtr camera_;
  FrameProbe probe_;
  guint errors_ = 0;
  guint warnings_ = 0;
  guint eos_ = 0;
  std::string first_error_;
  std::string first_warning_;
};

// ---- the pipelines compared -----------------------------------------------------

struct Contender {
  const char *name;
  const char *transport;
  std::string (*describe) (const std::string &url);
};

std::string
camerasrc_line (const std::string &url)
{
  return "camerasrc name=camera location=" + url + " ! fakesink name=sink";
}

std::string
rtspsrc_line (const std::string &url)
{
  return "rtspsrc location=" + url
      + " latency=200 ! rtph264depay ! h264parse config-interval=-1 ! fakesink name=sink";
}

std::string
rtspsrc_tcp_line (const std::string &url)
{
  return "rtspsrc location=" + url
      + " latency=200 protocols=tcp ! rtph264depay ! h264parse config-interval=-1 ! "
        "fakesink name=sink";
}

const Contender kCamerasrc{"camerasrc", "tcp (default)", camerasrc_line};
const Contender kRtspsrc{"rtspsrc (as users write it)", "udp (default)", rtspsrc_line};
const Contender kRtspsrcTcp{"rtspsrc protocols=tcp", "tcp", rtspsrc_tcp_line};

// ---- 1. CPU ---------------------------------------------------------------------

struct CpuResult {
  double first_frame_s = 0;  // from PLAYING
  double window_s = 0;
  double cpu_percent = 0;     // of one core, this process
  double server_percent = -1; // of one core, the camera server
  guint64 frames = 0;         // in the window
  double to_null_s = 0;
  guint errors = 0;
};

bool
measure_cpu (const Contender &contender, const CameraServer &server, const Options &options,
    gint64 origin_us, CpuResult &result)
{
  Receiver receiver (contender.describe (server.url ()), options.verbose, origin_us);
  const gint64 start = now_us ();
  if (!receiver.play ())
    return false;
  if (!receiver.wait_first_frame (kFirstFrameTimeoutUs)) {
    if (interrupted)
      return false;
    g_printerr ("error: %s: no frame within %.0f s (%s)\n", contender.name,
        seconds (kFirstFrameTimeoutUs),
        receiver.first_error ().empty () ? "no error" : receiver.first_error ().c_str ());
    return false;
  }
  result.first_frame_s = seconds (receiver.first_frame_us () - start);
  receiver.run_for (kSettleUs);

  const guint64 frames_before = receiver.frames ();
  const double server_before = server.cpu_seconds ();
  const double cpu_before = process_cpu_seconds ();
  const gint64 window_start = now_us ();
  receiver.run_for (static_cast<gint64> (options.cpu_seconds) * G_USEC_PER_SEC);
  const double cpu_after = process_cpu_seconds ();
  const gint64 window_end = now_us ();
  const double server_after = server.cpu_seconds ();
  const guint64 frames_after = receiver.frames ();

  result.window_s = seconds (window_end - window_start);
  result.cpu_percent = 100 * (cpu_after - cpu_before) / result.window_s;
  if (server_before >= 0 && server_after >= 0)
    result.server_percent = 100 * (server_after - server_before) / result.window_s;
  result.frames = frames_after - frames_before;
  result.errors = receiver.errors ();
  result.to_null_s = receiver.stop ();
  return !interrupted;
}

// ---- 2. recovery ----------------------------------------------------------------

// How long after the server listens again the next camera frame reaches the
// sink; negative when none came within the timeout.
struct RecoveryRun {
  std::vector<double> delays;
  std::vector<guint> flags;  // GstBufferFlags of the first frame after each return
  guint errors = 0;
  guint eos = 0;
  guint warnings = 0;
  std::string first_error;
  guint64 reconnects = 0;
  guint64 fallback_frames = 0;
  double to_null_s = 0;
};

bool
measure_recovery (const std::string &description, CameraServer &server, gint restarts,
    const Options &options, gint64 origin_us, RecoveryRun &run)
{
  Receiver receiver (description, options.verbose, origin_us);
  if (!receiver.play ())
    return false;
  if (!receiver.wait_first_frame (kFirstFrameTimeoutUs)) {
    if (interrupted)
      return false;
    g_printerr ("error: '%s': no frame within %.0f s\n", description.c_str (),
        seconds (kFirstFrameTimeoutUs));
    return false;
  }
  for (gint i = 0; i < restarts; i++) {
    receiver.run_for (kStreamBeforeKillUs);
    if (options.verbose)
      std::printf ("    %8.3f s killing the camera server\n", seconds (now_us () - origin_us));
    const guint16 port = server.port ();
    server.stop ();
    receiver.run_for (static_cast<gint64> (options.outage_ms) * 1000);
    receiver.arm ();
    if (interrupted || !server.start (port))
      return false;
    if (options.verbose)
      std::printf ("    %8.3f s camera server listening again\n",
          seconds (server.listening_us () - origin_us));
    const gint64 deadline =
        server.listening_us () + static_cast<gint64> (options.recovery_timeout_s) * G_USEC_PER_SEC;
    if (receiver.wait_camera_frame (deadline)) {
      run.delays.push_back (seconds (receiver.camera_frame_us () - server.listening_us ()));
      run.flags.push_back (receiver.camera_frame_flags ());
    } else {
      run.delays.push_back (-1);
      run.flags.push_back (0);
    }
  }
  if (GstElement *camera = receiver.camera ()) {
    GstStructure *raw = nullptr;
    g_object_get (camera, "stats", &raw, nullptr);
    StructurePtr stats{raw};
    if (stats) {
      gst_structure_get_uint64 (stats.get (), camrelay::camerasrc_names::STAT_RECONNECTS,
          &run.reconnects);
      gst_structure_get_uint64 (stats.get (), camrelay::camerasrc_names::STAT_FALLBACK_FRAMES,
          &run.fallback_frames);
    }
  }
  run.to_null_s = receiver.stop ();
  if (interrupted)
    return false;
  run.errors = receiver.errors ();
  run.eos = receiver.eos ();
  run.warnings = receiver.warnings ();
  run.first_error = receiver.first_error ();
  return true;
}

std::string
format_delay (double delay)
{
  if (delay < 0)
    return "no frames";
  char text[32];
  std::snprintf (text, sizeof text, "%.3f s", delay);
  return text;
}

// What the contract promises of the first frame after a gap: a keyframe
// flagged DISCONT.
std::string
describe_first_frame (double delay, guint flags)
{
  if (delay < 0)
    return "";
  std::string text = flags & GST_BUFFER_FLAG_DELTA_UNIT ? "  (first frame: delta unit"
                                                        : "  (first frame: keyframe";
  text += flags & GST_BUFFER_FLAG_DISCONT ? ", DISCONT)" : ", no DISCONT)";
  return text;
}

void
print_bus_summary (const RecoveryRun &run)
{
  std::printf ("    bus: %u error(s), %u EOS, %u warning(s)", run.errors, run.eos, run.warnings);
  if (!run.first_error.empty ())
    std::printf ("; first error: %s", run.first_error.c_str ());
  std::printf ("\n");
}

// ---- set-up ---------------------------------------------------------------------

// Encodes the clip the camera serves.  Returns false on failure.
bool
encode_clip (const std::string &path, gint clip_seconds, double &took_s)
{
  // A moving test pattern with a clock: about 4 Mbit/s at this setting, like
  // a 1080p camera's main stream.
  GCharPtr description{g_strdup_printf (
      "videotestsrc num-buffers=%d pattern=smpte horizontal-speed=8 ! "
      "video/x-raw,format=I420,width=%d,height=%d,framerate=%d/1 ! "
      "timeoverlay font-desc=\"Sans 48\" ! "
      "x264enc speed-preset=ultrafast bitrate=%d key-int-max=%d ! h264parse ! mp4mux ! "
      "filesink location=\"%s\"",
      clip_seconds * kClipFps, kClipWidth, kClipHeight, kClipFps, kClipKbps, kClipGop,
      path.c_str ())};
  GError *raw_error = nullptr;
  GstElement *raw_pipeline = gst_parse_launch (description.get (), &raw_error);
  GErrorPtr error{raw_error};
  if (!raw_pipeline || error) {
    g_printerr ("error: cannot make the clip encoder: %s\n", error ? error->message : "?");
    if (raw_pipeline)
      gst_object_unref (gst_object_ref_sink (raw_pipeline));
    return false;
  }
  ElementPtr pipeline{GST_ELEMENT (gst_object_ref_sink (raw_pipeline))};
  BusPtr bus{gst_element_get_bus (pipeline.get ())};
  const gint64 start = now_us ();
  gst_element_set_state (pipeline.get (), GST_STATE_PLAYING);
  MessagePtr message;
  while (!message && !interrupted && now_us () - start < kEncodeTimeoutUs)
    message.reset (gst_bus_timed_pop_filtered (bus.get (), 100 * GST_MSECOND,
        static_cast<GstMessageType> (GST_MESSAGE_EOS | GST_MESSAGE_ERROR)));
  took_s = seconds (now_us () - start);
  gst_element_set_state (pipeline.get (), GST_STATE_NULL);
  if (!message) {
    if (!interrupted)
      g_printerr ("error: the clip is not encoded after %.0f s\n", seconds (kEncodeTimeoutUs));
    return false;
  }
  if (GST_MESSAGE_TYPE (message.get ()) == GST_MESSAGE_ERROR) {
    GError *raw_encode_error = nullptr;
    gst_message_parse_error (message.get (), &raw_encode_error, nullptr);
    GErrorPtr encode_error{raw_encode_error};
    g_printerr ("error: encoding the clip: %s\n", encode_error->message);
    return false;
  }
  return true;
}

// The clip and its directory, removed at exit.
struct TempDir {
  std::string path;
  std::string clip;
  ~TempDir ()
  {
    if (!clip.empty ())
      g_unlink (clip.c_str ());
    if (!path.empty ())
      g_rmdir (path.c_str ());
  }
};

// Without an explicit plugin path, use the build tree's plugin and a registry
// file of our own, so that a stale installed copy is never measured and the
// user's registry is left alone.  Must run before gst_init.  The camera
// server child inherits the environment.
bool
parse_options (int &argc, char **&argv, Options &options)
{
  const GOptionEntry entries[] = {
    {"cpu-seconds", 'c', 0, G_OPTION_ARG_INT, &options.cpu_seconds,
        "Length of each CPU measurement window (default 10)", "SECONDS"},
    {"cpu-runs", 'n', 0, G_OPTION_ARG_INT, &options.cpu_runs,
        "CPU windows per pipeline, in rotating order; the median is printed (default 2)", "N"},
    {"restarts", 'r', 0, G_OPTION_ARG_INT, &options.restarts,
        "Camera restarts measured with the short backoff (default 5)", "N"},
    {"outage-ms", 'o', 0, G_OPTION_ARG_INT, &options.outage_ms,
        "How long the camera stays away each time (default 2000)", "MS"},
    {"recovery-timeout", 't', 0, G_OPTION_ARG_INT, &options.recovery_timeout_s,
        "Give up waiting for frames this long after the camera's return (default 10)",
        "SECONDS"},
    {"retry-delay", 0, 0, G_OPTION_ARG_INT, &options.retry_delay_ms,
        "camerasrc retry-delay of the short-backoff runs (default 100)", "MS"},
    {"retry-delay-max", 0, 0, G_OPTION_ARG_INT, &options.retry_delay_max_ms,
        "camerasrc retry-delay-max of the short-backoff runs (default 500)", "MS"},
    {"verbose", 'v', 0, G_OPTION_ARG_NONE, &options.verbose,
        "Print camerasrc-state messages, warnings and errors as they come", nullptr},
    {"serve", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_FILENAME, &options.serve,
        "Internal: be the camera server for this clip", "CLIP"},
    {"port", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_INT, &options.port,
        "Internal: the camera server's port (0: any)", "PORT"},
    {nullptr, 0, 0, G_OPTION_ARG_NONE, nullptr, nullptr, nullptr},
  };
  GOptionContext *context = g_option_context_new (
      "- CPU of one 1080p camera and time to frames after its return, camerasrc and rtspsrc");
  g_option_context_add_main_entries (context, entries, nullptr);
  g_option_context_add_group (context, gst_init_get_option_group ());
  GError *raw_error = nullptr;
  const gboolean parsed = g_option_context_parse (context, &argc, &argv, &raw_error);
  g_option_context_free (context);
  GErrorPtr error{raw_error};
  if (!parsed) {
    g_printerr ("%s\n", error->message);
    return false;
  }
  if (options.cpu_seconds < 1 || options.cpu_seconds > 600 || options.cpu_runs < 1
      || options.restarts < 1
      || options.outage_ms < 0 || options.recovery_timeout_s < 1 || options.retry_delay_ms < 1
      || options.retry_delay_max_ms < options.retry_delay_ms || options.port < 0
      || options.port > 65535) {
    g_printerr ("cpu-seconds (1-600), cpu-runs, restarts, recovery-timeout and retry-delay "
                "must be positive, outage-ms not negative, retry-delay-max at least "
                "retry-delay\n");
    return false;
  }
  return true;
}

bool
check_elements ()
{
  const char *needed[] = {kCandidate, "rtspsrc", "rtph264depay", "h264parse", "fakesink",
    "videotestsrc", "timeoverlay", "x264enc", "mp4mux", "qtdemux", "rtph264pay"};
  bool ok = true;
  for (const char *name : needed) {
    ObjectPtr<GstElementFactory> factory{gst_element_factory_find (name)};
    if (!factory) {
      g_printerr ("error: element '%s' not found%s\n", name,
          g_str_equal (name, kCandidate)
              ? "; build the plugin (ninja -C build) or use `meson compile -C build "
                "bench-camerasrc`"
              : "");
      ok = false;
    }
  }
  if (!ok)
    return false;
  ObjectPtr<GstElementFactory> factory{gst_element_factory_find (kCandidate)};
  ObjectPtr<GstPlugin> plugin{gst_plugin_feature_get_plugin (GST_PLUGIN_FEATURE (factory.get ()))};
  std::printf ("%s from %s\n", kCandidate,
      plugin && gst_plugin_get_filename (plugin.get ()) ? gst_plugin_get_filename (plugin.get ())
                                                        : "(unknown)");
  return true;
}

// The runs of one contender.
struct CpuSummary {
  std::vector<double> first_frame_s;
  std::vector<double> cpu_percent;
  std::vector<double> server_percent;
  guint64 frames = 0;
  double window_s = 0;
  guint errors = 0;

  void add (const CpuResult &r)
  {
    first_frame_s.push_back (r.first_frame_s);
    cpu_percent.push_back (r.cpu_percent);
    server_percent.push_back (r.server_percent);
    frames += r.frames;
    window_s += r.window_s;
    errors += r.errors;
  }
  double cpu () const { return median (cpu_percent); }
  double fps () const { return static_cast<double> (frames) / window_s; }
};

void
print_cpu_row (const Contender &contender, const CpuSummary &r)
{
  const auto [low, high] = std::minmax_element (r.cpu_percent.begin (), r.cpu_percent.end ());
  std::printf ("%-28s %-14s %9.2f s %7" G_GUINT64_FORMAT " %6.1f %7.1f %5.1f %5.1f %9.1f\n",
      contender.name, contender.transport, median (r.first_frame_s), r.frames, r.fps (),
      r.cpu (), *low, *high, median (r.server_percent));
}

int
run_bench (const Options &options)
{
  const gint64 origin = now_us ();
  handle_interrupts ();
  GCharPtr version{gst_version_string ()};
  std::printf ("camerasrc_bench: one %dx%d %d fps H.264 camera over RTSP on 127.0.0.1, "
              "camerasrc and rtspsrc in the same run\n%s, %u CPUs\n",
      kClipWidth, kClipHeight, kClipFps, version.get (), std::thread::hardware_concurrency ());
  if (!check_elements ())
    return 1;

  GCharPtr program{g_file_read_link ("/proc/self/exe", nullptr)};
  if (!program) {
    g_printerr ("error: cannot find this program's path\n");
    return 1;
  }
  TempDir temp;
  {
    GError *raw_error = nullptr;
    GCharPtr dir{g_dir_make_tmp ("camerasrc-bench-XXXXXX", &raw_error)};
    GErrorPtr error{raw_error};
    if (!dir) {
      g_printerr ("error: no temporary directory: %s\n", error->message);
      return 1;
    }
    temp.path = dir.get ();
  }
  temp.clip = temp.path + "/camera.mp4";

  // Long enough for the connection, the settling second and the CPU window,
  // so that no measurement reaches the end of the clip.
  const gint clip_seconds = std::max (15, options.cpu_seconds + 5);
  double encode_s = 0;
  if (!encode_clip (temp.clip, clip_seconds, encode_s))
    return 1;
  GStatBuf clip_stat{};
  g_stat (temp.clip.c_str (), &clip_stat);
  std::printf ("camera: %d s clip, %dx%d %d fps, H.264 GOP %d, %.0f kbit/s (x264 ultrafast, "
              "encoded in %.1f s), served live by gst-rtsp-server in a child process, "
              "no re-encoding\n",
      clip_seconds, kClipWidth, kClipHeight, kClipFps, kClipGop,
      static_cast<double> (clip_stat.st_size) * 8 / 1000 / clip_seconds, encode_s);

  CameraServer server (program.get (), temp.clip);
  if (!server.start (0))
    return 1;
  std::printf ("camera at %s\n", server.url ().c_str ());

  // ---- 1. CPU
  std::printf ("\n1. CPU of one camera: this process (getrusage user+sys) over %d s of "
              "streaming, after the first frame and %.0f s more; %% of one core, median of %d "
              "runs per pipeline in rotating order\n",
      options.cpu_seconds, seconds (kSettleUs), options.cpu_runs);
  for (const Contender *c : {&kCamerasrc, &kRtspsrc, &kRtspsrcTcp})
    std::printf ("  %-28s %s\n", c->name, c->describe (server.url ()).c_str ());
  std::fflush (stdout);
  CpuSummary cpu_candidate, cpu_baseline, cpu_baseline_tcp;
  const std::pair<const Contender *, CpuSummary *> contenders[] = {
    // The baseline first, so that any warm-up cost falls on it, not on camerasrc.
    {&kRtspsrc, &cpu_baseline}, {&kCamerasrc, &cpu_candidate}, {&kRtspsrcTcp, &cpu_baseline_tcp}};
  constexpr size_t kContenders = G_N_ELEMENTS (contenders);
  for (gint run = 0; run < options.cpu_runs; run++) {
    // Each round starts with the next contender, so that none always follows the same one.
    for (size_t turn = 0; turn < kContenders; turn++) {
      const auto &[contender, summary] =
          contenders[(static_cast<size_t> (run) + turn) % kContenders];
      CpuResult result;
      if (!measure_cpu (*contender, server, options, origin, result))
        return 1;
      summary->add (result);
      if (options.verbose)
        std::printf ("    run %d %-28s cpu %.1f%% server %.1f%% frames %" G_GUINT64_FORMAT "\n",
            run + 1, contender->name, result.cpu_percent, result.server_percent, result.frames);
    }
  }
  std::printf ("%-28s %-14s %11s %7s %6s %7s %5s %5s %9s\n", "pipeline", "transport",
      "1st frame", "frames", "fps", "cpu %", "min", "max", "server %");
  print_cpu_row (kCamerasrc, cpu_candidate);
  print_cpu_row (kRtspsrc, cpu_baseline);
  print_cpu_row (kRtspsrcTcp, cpu_baseline_tcp);
  std::printf ("ratio camerasrc / rtspsrc (as users write it) = %.2f; "
              "camerasrc / rtspsrc protocols=tcp (same transport) = %.2f\n",
      cpu_candidate.cpu () / cpu_baseline.cpu (), cpu_candidate.cpu () / cpu_baseline_tcp.cpu ());
  for (const CpuSummary *r : {&cpu_candidate, &cpu_baseline, &cpu_baseline_tcp}) {
    if (r->fps () < kClipFps * 0.9 || r->fps () > kClipFps * 1.1) {
      std::printf ("note: %.1f fps received where the camera sends %d: a figure above is not "
                  "for a real-time stream\n",
          r->fps (), kClipFps);
      break;
    }
  }
  if (cpu_candidate.errors > 0)
    std::printf ("note: camerasrc posted %u ERROR message(s) while streaming\n",
        cpu_candidate.errors);
  std::fflush (stdout);

  // ---- 2. recovery
  std::printf ("\n2. Camera's return to the first camera frame at the sink: the server is "
              "SIGKILLed, stays away %.1f s, then listens again on the same port; time from "
              "that moment to the next camera frame (not fallback) at the fakesink pad\n",
      options.outage_ms / 1000.0);
  const std::string short_backoff = "camerasrc name=camera location=" + server.url ()
      + " retry-delay=" + std::to_string (ms_to_ns (options.retry_delay_ms))
      + " retry-delay-max=" + std::to_string (ms_to_ns (options.retry_delay_max_ms))
      + " ! fakesink name=sink";
  std::printf ("\n  %s\n  (retry-delay %d ms, retry-delay-max %d ms, other properties "
              "default)\n",
      short_backoff.c_str (), options.retry_delay_ms, options.retry_delay_max_ms);
  std::fflush (stdout);
  RecoveryRun fast;
  if (!measure_recovery (short_backoff, server, options.restarts, options, origin, fast))
    return 1;
  std::vector<double> delivered;
  for (size_t i = 0; i < fast.delays.size (); i++) {
    std::printf ("  restart %zu: %s%s\n", i + 1, format_delay (fast.delays[i]).c_str (),
        describe_first_frame (fast.delays[i], fast.flags[i]).c_str ());
    if (fast.delays[i] >= 0)
      delivered.push_back (fast.delays[i]);
  }
  if (!delivered.empty ()) {
    const auto [low, high] = std::minmax_element (delivered.begin (), delivered.end ());
    std::printf ("  median %.3f s (min %.3f, max %.3f) over %zu of %zu restarts\n",
        median (delivered), *low, *high, delivered.size (), fast.delays.size ());
  }
  std::printf ("    camerasrc stats: reconnects %" G_GUINT64_FORMAT ", fallback-frames %"
              G_GUINT64_FORMAT "; to NULL in %.3f s\n",
      fast.reconnects, fast.fallback_frames, fast.to_null_s);
  print_bus_summary (fast);
  std::fflush (stdout);

  const std::string defaults = camerasrc_line (server.url ());
  std::printf ("\n  %s\n  (element defaults: retry-delay 1 s, retry-delay-max 30 s)\n",
      defaults.c_str ());
  std::fflush (stdout);
  RecoveryRun slow;
  if (!measure_recovery (defaults, server, 1, options, origin, slow))
    return 1;
  std::printf ("  restart 1: %s%s\n"
              "  the backoff dominates: with the defaults the attempts come about 1 s, 3 s, "
              "7 s, 15 s (±20%%) after the fault, and the camera waits for the next one\n",
      format_delay (slow.delays[0]).c_str (),
      describe_first_frame (slow.delays[0], slow.flags[0]).c_str ());
  std::printf ("    camerasrc stats: reconnects %" G_GUINT64_FORMAT ", fallback-frames %"
              G_GUINT64_FORMAT "; to NULL in %.3f s\n",
      slow.reconnects, slow.fallback_frames, slow.to_null_s);
  print_bus_summary (slow);
  std::fflush (stdout);

  for (const Contender *c : {&kRtspsrc, &kRtspsrcTcp}) {
    std::printf ("\n  %s  (%s)\n", c->describe (server.url ()).c_str (), c->name);
    std::fflush (stdout);
    RecoveryRun baseline;
    if (!measure_recovery (c->describe (server.url ()), server, 1, options, origin, baseline))
      return 1;
    if (baseline.delays[0] < 0)
      std::printf ("  restart 1: no frames within %d s of the camera's return\n",
          options.recovery_timeout_s);
    else
      std::printf ("  restart 1: %s\n", format_delay (baseline.delays[0]).c_str ());
    print_bus_summary (baseline);
    std::fflush (stdout);
  }

  std::printf ("\nsummary: camerasrc CPU %.1f%% of one core (rtspsrc %.1f%%, ratio %.2f); "
              "camera's return to first frame: median %s with retry-delay %d ms, %s with "
              "defaults; whole run %.0f s\n",
      cpu_candidate.cpu (), cpu_baseline.cpu (), cpu_candidate.cpu () / cpu_baseline.cpu (),
      delivered.empty () ? "no frames" : format_delay (median (delivered)).c_str (),
      options.retry_delay_ms, format_delay (slow.delays[0]).c_str (),
      seconds (now_us () - origin));
  return 0;
}

}  // namespace

int
main (int argc, char **argv)
{
  default_to_build_tree ();
  Options options;
  if (!parse_options (argc, argv, options))
    return 2;
  GCharPtr serve_clip{options.serve};
  gst_init (&argc, &argv);
  int status = serve_clip ? serve (options) : run_bench (options);
  if (interrupted) {
    g_printerr ("interrupted\n");
    status = 130;
  }
  gst_deinit ();
  return status;
}
