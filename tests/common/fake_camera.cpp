// Fake cameras and misbehaving servers for the camerasrc tests: see fake_camera.h.
#include "fake_camera.h"

#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <gst/rtsp-server/rtsp-server.h>
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <algorithm>
#include <map>
#include <random>

#include "common/gstref.h"

namespace camtest {

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

namespace {

// Something that must happen within seconds did not: the thread that should
// have done it cannot be joined, so fail loudly instead of hanging the suite.
[[noreturn]] void
abort_on_hang (const char *what)
{
  std::fprintf (stderr, "fake camera hang: %s, aborting\n", what);
  std::fflush (stderr);
  std::abort ();
}

// The process's temporary directory, removed at exit.
struct TempDir {
  std::string path;
  TempDir ()
  {
    GError *error = nullptr;
    gchar *dir = g_dir_make_tmp ("camrelay-test-XXXXXX", &error);
    if (dir) {
      path = dir;
      g_free (dir);
    } else {
      std::fprintf (stderr, "cannot make a temporary directory: %s\n", error->message);
      g_error_free (error);
    }
  }
  ~TempDir ()
  {
    if (!path.empty ()) {
      std::error_code ignored;
      std::filesystem::remove_all (path, ignored);
    }
  }
};

TempDir &
temp_dir_instance ()
{
  static TempDir dir;
  return dir;
}

// Runs `description` to EOS (bounded) and hands every sample of the appsink
// named "sink", if any, to `on_sample`. False on error or timeout.
bool
run_to_eos (const std::string &description, const std::function<void (GstSample *)> &on_sample)
{
  GError *error = nullptr;
  camrelay::ElementPtr pipeline{gst_parse_launch (description.c_str (), &error)};
  if (!pipeline || error) {
    std::fprintf (stderr, "cannot build '%s': %s\n", description.c_str (),
        error ? error->message : "?");
    if (error)
      g_error_free (error);
    return false;
  }
  camrelay::ElementPtr sink{gst_bin_get_by_name (GST_BIN (pipeline.get ()), "sink")};
  if (gst_element_set_state (pipeline.get (), GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
    gst_element_set_state (pipeline.get (), GST_STATE_NULL);
    return false;
  }
  bool ok = true;
  if (sink) {
    const auto deadline = SteadyClock::now () + 60s;
    while (true) {
      GstSample *sample = gst_app_sink_try_pull_sample (GST_APP_SINK (sink.get ()), 5 * GST_SECOND);
      if (!sample) {
        ok = gst_app_sink_is_eos (GST_APP_SINK (sink.get ()));
        break;
      }
      on_sample (sample);
      gst_sample_unref (sample);
      if (SteadyClock::now () > deadline) {
        ok = false;
        break;
      }
    }
  }
  camrelay::BusPtr bus{gst_element_get_bus (pipeline.get ())};
  camrelay::MessagePtr message{gst_bus_timed_pop_filtered (bus.get (), sink ? 0 : 60 * GST_SECOND,
      static_cast<GstMessageType> (GST_MESSAGE_ERROR | GST_MESSAGE_EOS))};
  if (message && GST_MESSAGE_TYPE (message.get ()) == GST_MESSAGE_ERROR) {
    GError *gerror = nullptr;
    gst_message_parse_error (message.get (), &gerror, nullptr);
    std::fprintf (stderr, "'%s' failed: %s\n", description.c_str (), gerror->message);
    g_error_free (gerror);
    ok = false;
  } else if (!sink && !message) {
    ok = false;
  }
  gst_element_set_state (pipeline.get (), GST_STATE_NULL);
  return ok;
}

std::string
raw_caps (int width, int height, int fps)
{
  return "video/x-raw,format=I420,width=" + std::to_string (width) + ",height=" +
         std::to_string (height) + ",framerate=" + std::to_string (fps) + "/1";
}

std::string
x264_description (int gop, bool byte_stream = true)
{
  // No B-frames and no scene cuts: PTS == DTS and a keyframe exactly every
  // `gop` frames, so a clip of whole GOPs loops on a keyframe.
  return "x264enc key-int-max=" + std::to_string (gop) +
         " bframes=0 tune=zerolatency speed-preset=ultrafast bitrate=800 threads=1"
         " option-string=scenecut=0 ! video/x-h264,profile=constrained-baseline"
         " ! h264parse config-interval=-1" +
         std::string (byte_stream ? " ! video/x-h264,stream-format=byte-stream,alignment=au" : "");
}

std::string
x265_description (int gop)
{
  // IDR (closed GOP) keyframes exactly every `gop` frames and no B-frames
  // (zerolatency), as cameras send, so that a clip loops on a keyframe.
  return "x265enc key-int-max=" + std::to_string (gop) +
         " tune=zerolatency speed-preset=ultrafast bitrate=800"
         " option-string=scenecut=0:open-gop=0:sao=0"
         " ! h265parse config-interval=-1 ! video/x-h265,stream-format=byte-stream,alignment=au";
}

std::string
encoder_description (const std::string &codec, int gop)
{
  if (codec == "jpeg")
    return "jpegenc quality=60";
  if (codec == "h265")
    return x265_description (gop);
  return x264_description (gop);
}

std::mutex clip_mutex;
std::map<std::string, ClipPtr> clip_cache;
std::map<std::string, std::string> file_cache;

ClipPtr
encode_clip (const std::string &codec, int width, int height, int fps, int gop, int frames)
{
  const std::string key = codec + ":" + std::to_string (width) + "x" + std::to_string (height) +
                          "@" + std::to_string (fps) + "/" + std::to_string (gop) + "/" +
                          std::to_string (frames);
  std::lock_guard<std::mutex> lock (clip_mutex);
  auto it = clip_cache.find (key);
  if (it != clip_cache.end ())
    return it->second;

  auto clip = std::make_shared<Clip> ();
  clip->codec = codec;
  clip->width = width;
  clip->height = height;
  clip->fps = fps;
  clip->gop = gop;
  const std::string encoder = encoder_description (codec, gop);
  const std::string description = "videotestsrc num-buffers=" + std::to_string (frames) +
                                  " pattern=ball ! " + raw_caps (width, height, fps) + " ! " +
                                  encoder + " ! appsink name=sink sync=false";
  bool ok = run_to_eos (description, [&] (GstSample *sample) {
    GstBuffer *buffer = gst_sample_get_buffer (sample);
    Frame frame;
    frame.keyframe = !GST_BUFFER_FLAG_IS_SET (buffer, GST_BUFFER_FLAG_DELTA_UNIT);
    frame.data.resize (gst_buffer_get_size (buffer));
    gst_buffer_extract (buffer, 0, frame.data.data (), frame.data.size ());
    clip->frames.push_back (std::move (frame));
    if (clip->caps.empty ()) {
      camrelay::GCharPtr caps{gst_caps_to_string (gst_sample_get_caps (sample))};
      clip->caps = caps.get ();
    }
  });
  if (!ok || clip->frames.size () != static_cast<size_t> (frames) || !clip->frames[0].keyframe) {
    std::fprintf (stderr, "encoding a %s clip failed (%zu of %d frames)\n", key.c_str (),
        clip->frames.size (), frames);
    return nullptr;
  }
  clip_cache[key] = clip;
  return clip;
}

ssize_t
send_all (int fd, const void *data, size_t size)
{
  const auto *bytes = static_cast<const guint8 *> (data);
  size_t sent = 0;
  while (sent < size) {
    ssize_t n = send (fd, bytes + sent, size - sent, MSG_NOSIGNAL);
    if (n <= 0)
      return -1;
    sent += static_cast<size_t> (n);
  }
  return static_cast<ssize_t> (sent);
}

// Waits up to `timeout_ms` for input. 1: readable, 0: nothing yet, -1: error.
int
wait_readable (int fd, int timeout_ms)
{
  struct pollfd pfd = {fd, POLLIN, 0};
  int n = poll (&pfd, 1, timeout_ms);
  if (n < 0)
    return errno == EINTR ? 0 : -1;
  if (n == 0)
    return 0;
  return 1;
}

}  // namespace

std::string
temp_dir ()
{
  return temp_dir_instance ().path;
}

ClipPtr
h264_clip (int width, int height, int fps, int gop, int gops)
{
  return encode_clip ("h264", width, height, fps, gop, gop * gops);
}

ClipPtr
h265_clip (int width, int height, int fps, int gop, int gops)
{
  return encode_clip ("h265", width, height, fps, gop, gop * gops);
}

ClipPtr
jpeg_clip (int width, int height, int fps, int frames)
{
  return encode_clip ("jpeg", width, height, fps, 1, frames);
}

std::string
recording_file (int width, int height, int fps, int seconds, const std::string &container,
    const std::string &audio)
{
  if (!audio.empty () && audio != "aac")
    return "";
  const std::string key = container + ":" + std::to_string (width) + "x" +
                          std::to_string (height) + "@" + std::to_string (fps) + "/" +
                          std::to_string (seconds) + audio;
  std::lock_guard<std::mutex> lock (clip_mutex);
  auto it = file_cache.find (key);
  if (it != file_cache.end ())
    return it->second;
  if (temp_dir ().empty ())
    return "";
  std::string muxer;
  if (container == "mp4")
    muxer = "mp4mux";
  else if (container == "mkv")
    muxer = "matroskamux";
  else
    return "";
  const std::string path = temp_dir () + "/clip-" + std::to_string (width) + "x" +
                           std::to_string (height) + "-" + std::to_string (seconds) + "s" +
                           (audio.empty () ? "" : "-" + audio) + "." + container;
  std::string description = muxer + " name=mux ! filesink location=\"" + path + "\"" +
                            " videotestsrc num-buffers=" + std::to_string (fps * seconds) +
                            " pattern=ball ! " + raw_caps (width, height, fps) + " ! " +
                            x264_description (15, false) + " ! mux.";
  if (audio == "aac") {
    // 20 ms buffers of 16 kHz mono, as long as the video.
    description += " audiotestsrc num-buffers=" + std::to_string (50 * seconds) +
                   " samplesperbuffer=320 volume=0.3 ! audioconvert"
                   " ! audio/x-raw,rate=16000,channels=1 ! voaacenc bitrate=32000 ! aacparse"
                   " ! mux.";
  }
  if (!run_to_eos (description, nullptr))
    return "";
  file_cache[key] = path;
  return path;
}

const TlsIdentity *
tls_identity ()
{
  static std::mutex mutex;
  static std::unique_ptr<TlsIdentity> identity;
  static bool tried = false;
  std::lock_guard<std::mutex> lock (mutex);
  if (tried)
    return identity.get ();
  tried = true;
  if (temp_dir ().empty ())
    return nullptr;
  auto made = std::make_unique<TlsIdentity> ();
  made->certificate_file = temp_dir () + "/cert.pem";
  made->key_file = temp_dir () + "/key.pem";
  // An EC key: made in milliseconds, where RSA takes a while under ASan.
  const gchar *argv[] = {"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
      "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
      "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", made->key_file.c_str (), "-out",
      made->certificate_file.c_str (), nullptr};
  gchar *output = nullptr;
  gint status = -1;
  GError *error = nullptr;
  if (!g_spawn_sync (nullptr, const_cast<gchar **> (argv), nullptr,
          static_cast<GSpawnFlags> (G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL), nullptr,
          nullptr, nullptr, &output, &status, &error) ||
      !g_spawn_check_wait_status (status, nullptr)) {
    std::fprintf (stderr, "openssl could not make a certificate: %s\n",
        error ? error->message : (output ? output : "?"));
    g_clear_error (&error);
    g_free (output);
    return nullptr;
  }
  g_free (output);
  gchar *certificate = nullptr, *key = nullptr;
  if (g_file_get_contents (made->certificate_file.c_str (), &certificate, nullptr, nullptr) &&
      g_file_get_contents (made->key_file.c_str (), &key, nullptr, nullptr))
    made->pem = std::string (certificate) + key;
  g_free (certificate);
  g_free (key);
  if (made->pem.empty ())
    return nullptr;
  identity = std::move (made);
  return identity.get ();
}

// ---------------------------------------------------------------------------
// FeedControl

void
FeedControl::set_clip (ClipPtr clip)
{
  std::lock_guard<std::mutex> lock (mutex_);
  clip_ = std::move (clip);
}

ClipPtr
FeedControl::clip () const
{
  std::lock_guard<std::mutex> lock (mutex_);
  return clip_;
}

// ---------------------------------------------------------------------------
// FakeRtspCamera

namespace {

// Media pipelines alive, shared with the pipelines themselves so that a
// pipeline outliving its camera never touches freed memory.
struct MediaCounter {
  std::mutex mutex;
  std::condition_variable cond;
  guint alive = 0;
};

// Feeds one media's appsrc from the current clip, one frame per need-data,
// timestamped in the media pipeline's running time; clocksync downstream
// paces them to real time, so the camera sends live.
struct Feeder {
  std::shared_ptr<FeedControl> control;
  std::shared_ptr<MediaCounter> counter;
  ClipPtr clip;
  size_t index = 0;
  GstClockTime next_pts = GST_CLOCK_TIME_NONE;

  ~Feeder ()
  {
    {
      std::lock_guard<std::mutex> lock (counter->mutex);
      counter->alive--;
    }
    counter->cond.notify_all ();
  }
};

void
feeder_need_data (GstAppSrc *appsrc, guint, gpointer user_data)
{
  auto *feeder = static_cast<Feeder *> (user_data);
  ClipPtr clip = feeder->control->clip ();
  if (!clip || clip->frames.empty ())
    return;
  if (clip != feeder->clip) {
    // A new clip (first one or a resolution switch): new caps, from its
    // first keyframe.
    feeder->clip = clip;
    feeder->index = 0;
    camrelay::CapsPtr caps{gst_caps_from_string (clip->caps.c_str ())};
    gst_app_src_set_caps (appsrc, caps.get ());
  }
  GstClockTime now = gst_element_get_current_running_time (GST_ELEMENT (appsrc));
  if (!GST_CLOCK_TIME_IS_VALID (feeder->next_pts) ||
      (GST_CLOCK_TIME_IS_VALID (now) && now > feeder->next_pts + 200 * GST_MSECOND))
    feeder->next_pts = GST_CLOCK_TIME_IS_VALID (now) ? now : 0;

  const Frame &frame = clip->frames[feeder->index];
  GstBuffer *buffer = gst_buffer_new_memdup (frame.data.data (), frame.data.size ());
  GST_BUFFER_PTS (buffer) = feeder->next_pts;
  GST_BUFFER_DTS (buffer) = feeder->next_pts;
  GST_BUFFER_DURATION (buffer) = clip->frame_duration ();
  if (!frame.keyframe)
    GST_BUFFER_FLAG_SET (buffer, GST_BUFFER_FLAG_DELTA_UNIT);
  feeder->next_pts += clip->frame_duration ();
  feeder->index = (feeder->index + 1) % clip->frames.size ();
  gst_app_src_push_buffer (appsrc, buffer);
}

void
feeder_free (gpointer user_data)
{
  delete static_cast<Feeder *> (user_data);
}

// After the pacing clocksync: a stalled camera drops its frames here, so the
// connection stays open and the clip keeps running live underneath.
GstPadProbeReturn
stall_probe (GstPad *, GstPadProbeInfo *, gpointer user_data)
{
  auto *control = static_cast<std::shared_ptr<FeedControl> *> (user_data);
  if ((*control)->stalled ())
    return GST_PAD_PROBE_DROP;
  (*control)->count_frame ();
  return GST_PAD_PROBE_OK;
}

void
control_free (gpointer user_data)
{
  delete static_cast<std::shared_ptr<FeedControl> *> (user_data);
}

GstRTSPFilterResult
remove_client (GstRTSPServer *, GstRTSPClient *, gpointer)
{
  return GST_RTSP_FILTER_REMOVE;
}

GstRTSPFilterResult
remove_session (GstRTSPSessionPool *, GstRTSPSession *, gpointer)
{
  return GST_RTSP_FILTER_REMOVE;
}

// The clip a camera serving `codec` at this size starts with.
ClipPtr
camera_clip (const RtspCameraOptions &options, int width, int height)
{
  if (options.codec == "jpeg")
    return jpeg_clip (width, height, options.fps, options.gop);
  if (options.codec == "h265")
    return h265_clip (width, height, options.fps, options.gop);
  return h264_clip (width, height, options.fps, options.gop);
}

// The media of a camera: the clip fed by on_media_configure () into `src`,
// paced by `pace`, payloaded by pay0; live audio as pay1 if asked.
std::string
media_description (const RtspCameraOptions &options)
{
  std::string payloader = "rtph264pay name=pay0 pt=96 config-interval=-1";
  if (options.codec == "jpeg")
    payloader = "rtpjpegpay name=pay0 pt=26";
  else if (options.codec == "h265")
    payloader = "rtph265pay name=pay0 pt=96 config-interval=-1";
  std::string description = "( appsrc name=src is-live=true format=time do-timestamp=false"
                            " ! clocksync name=pace ! " + payloader;
  // 20 ms audio buffers, as cameras packetize their audio.
  if (options.audio == "aac")
    description += " audiotestsrc is-live=true samplesperbuffer=320 volume=0.3 ! audioconvert"
                   " ! audio/x-raw,rate=16000,channels=1 ! voaacenc bitrate=32000 ! aacparse"
                   " ! rtpmp4gpay name=pay1 pt=97";
  else if (options.audio == "pcma")
    description += " audiotestsrc is-live=true samplesperbuffer=160 volume=0.3 ! audioconvert"
                   " ! audio/x-raw,rate=8000,channels=1 ! alawenc ! rtppcmapay name=pay1 pt=8";
  return description + " )";
}

using AnswerSlot = std::atomic<int>;

// pre-describe-request & co. of a client: the status the camera answers.
GstRTSPStatusCode
answer_request (GstRTSPClient *, GstRTSPContext *, gpointer user_data)
{
  auto *slot = static_cast<std::shared_ptr<AnswerSlot> *> (user_data);
  return static_cast<GstRTSPStatusCode> ((*slot)->load ());
}

void
answer_slot_free (gpointer data, GClosure *)
{
  delete static_cast<std::shared_ptr<AnswerSlot> *> (data);
}

}  // namespace

// An authenticator for the connections made from now on: Basic for `user_`
// (as many cameras do), and TLS with the certificate of options_.tls_pem
// (then anyone is let in without `user_`). nullptr when neither is wanted.
GstRTSPAuth *
FakeRtspCamera::make_auth () const
{
  if (user_.empty () && options_.tls_pem.empty ())
    return nullptr;
  GstRTSPAuth *auth = gst_rtsp_auth_new ();
  GstRTSPToken *token = gst_rtsp_token_new (GST_RTSP_TOKEN_MEDIA_FACTORY_ROLE, G_TYPE_STRING,
      "user", nullptr);
  if (user_.empty ()) {
    gst_rtsp_auth_set_default_token (auth, token);
  } else {
    gchar *basic = gst_rtsp_auth_make_basic (user_.c_str (), password_.c_str ());
    gst_rtsp_auth_add_basic (auth, basic, token);
    g_free (basic);
    gst_rtsp_auth_set_supported_methods (auth, GST_RTSP_AUTH_BASIC);
  }
  gst_rtsp_token_unref (token);
  if (!options_.tls_pem.empty ()) {
    GError *error = nullptr;
    GTlsCertificate *certificate =
        g_tls_certificate_new_from_pem (options_.tls_pem.c_str (), -1, &error);
    if (certificate) {
      gst_rtsp_auth_set_tls_certificate (auth, certificate);
      g_object_unref (certificate);
    } else {
      std::fprintf (stderr, "fake RTSP camera: bad certificate: %s\n", error->message);
      g_error_free (error);
    }
  }
  return auth;
}

namespace {

// FakeRtspCameras running in this process (see wait_for_media_threads).
struct RunningCameras {
  std::mutex mutex;
  guint count = 0;
};

RunningCameras &
running_cameras ()
{
  static RunningCameras running;
  return running;
}

// gst-rtsp-server runs each media's bus on a thread of a pool of its own,
// which lets go of its last references (its GstRTSPThread, and what its
// sources still hold) only once that thread's loop has seen its quit: after
// stop () has seen the media pipelines go, and on a loaded machine after the
// test's end, where the leaks tracer counts them as leaked.  Once no camera
// runs, nothing else is on that pool: wait for it to be empty.  Lock of
// running_cameras () held, so that no camera starts meanwhile.
void
wait_for_media_threads ()
{
  std::mutex mutex;
  std::condition_variable cond;
  bool done = false;
  std::thread waiter ([&] {
    gst_rtsp_thread_pool_cleanup ();
    {
      std::lock_guard<std::mutex> lock (mutex);
      done = true;
    }
    cond.notify_all ();
  });
  {
    std::unique_lock<std::mutex> lock (mutex);
    if (!cond.wait_for (lock, 10s, [&] { return done; }))
      abort_on_hang ("gst-rtsp-server media threads still running 10 s after the last camera stopped");
  }
  waiter.join ();
}

}  // namespace

struct FakeRtspCamera::Loop {
  GMainContext *context = nullptr;
  GMainLoop *loop = nullptr;
  GstRTSPServer *server = nullptr;
  GSource *source = nullptr;
  std::shared_ptr<MediaCounter> counter = std::make_shared<MediaCounter> ();
  std::thread thread;
};

// The main contexts of the media bus threads, learned from the first
// message each media handles (hold_media_threads).
struct FakeRtspCamera::MediaThreads {
  std::mutex mutex;
  std::vector<GMainContext *> contexts;  // referenced
  ~MediaThreads ()
  {
    for (GMainContext *context : contexts)
      g_main_context_unref (context);
  }
};

namespace {

gboolean
on_media_message (GstRTSPMedia *, GstMessage *, gpointer user_data)
{
  auto &threads = **static_cast<std::shared_ptr<FakeRtspCamera::MediaThreads> *> (user_data);
  GSource *source = g_main_current_source ();
  GMainContext *context = source ? g_source_get_context (source) : nullptr;
  if (context) {
    std::lock_guard<std::mutex> lock (threads.mutex);
    if (std::find (threads.contexts.begin (), threads.contexts.end (), context) ==
        threads.contexts.end ())
      threads.contexts.push_back (g_main_context_ref (context));
  }
  return FALSE;
}

void
media_threads_free (gpointer data, GClosure *)
{
  delete static_cast<std::shared_ptr<FakeRtspCamera::MediaThreads> *> (data);
}

}  // namespace

FakeRtspCamera::FakeRtspCamera (RtspCameraOptions options)
    : options_ (std::move (options)), media_threads_ (std::make_shared<MediaThreads> ())
{
}

FakeRtspCamera::~FakeRtspCamera ()
{
  stop ();
}

void
FakeRtspCamera::run_in_loop (const std::function<void ()> &function)
{
  struct Call {
    const std::function<void ()> *function;
    std::mutex mutex;
    std::condition_variable cond;
    bool done = false;
  } call;
  call.function = &function;
  g_main_context_invoke (loop_->context, [] (gpointer data) -> gboolean {
    auto *c = static_cast<Call *> (data);
    (*c->function) ();
    {
      std::lock_guard<std::mutex> lock (c->mutex);
      c->done = true;
    }
    c->cond.notify_all ();
    return G_SOURCE_REMOVE;
  }, &call);
  std::unique_lock<std::mutex> lock (call.mutex);
  if (!call.cond.wait_for (lock, 10s, [&] { return call.done; }))
    abort_on_hang ("RTSP server main loop does not answer");
}

void
FakeRtspCamera::on_media_configure (GstElement *, GstElement *media_object, gpointer user_data)
{
  auto *self = static_cast<FakeRtspCamera *> (user_data);
  GstRTSPMedia *media = GST_RTSP_MEDIA (media_object);
  camrelay::ElementPtr element{gst_rtsp_media_get_element (media)};
  camrelay::ElementPtr appsrc{gst_bin_get_by_name (GST_BIN (element.get ()), "src")};
  camrelay::ElementPtr pace{gst_bin_get_by_name (GST_BIN (element.get ()), "pace")};
  if (!appsrc || !pace)
    return;

  auto *feeder = new Feeder;
  feeder->control = self->control_;
  feeder->counter = self->loop_->counter;
  {
    std::lock_guard<std::mutex> lock (feeder->counter->mutex);
    feeder->counter->alive++;
  }
  self->media_created_++;
  g_signal_connect_data (media, "handle-message", G_CALLBACK (on_media_message),
      new std::shared_ptr<MediaThreads> (self->media_threads_), media_threads_free,
      GConnectFlags (0));
  GstAppSrcCallbacks callbacks = {};
  callbacks.need_data = feeder_need_data;
  gst_app_src_set_callbacks (GST_APP_SRC (appsrc.get ()), &callbacks, feeder, feeder_free);

  camrelay::PadPtr pad{gst_element_get_static_pad (pace.get (), "src")};
  gst_pad_add_probe (pad.get (), GST_PAD_PROBE_TYPE_BUFFER, stall_probe,
      new std::shared_ptr<FeedControl> (self->control_), control_free);
}

void
FakeRtspCamera::on_client_connected (GstRTSPServer *, GstRTSPClient *client, gpointer user_data)
{
  auto *self = static_cast<FakeRtspCamera *> (user_data);
  // Each slot shares the ownership of answers_.
  const std::shared_ptr<Answers> &answers = self->answers_;
  const std::pair<const char *, std::shared_ptr<AnswerSlot>> slots[] = {
    {"pre-describe-request", std::shared_ptr<AnswerSlot> (answers, &answers->describe)},
    {"pre-setup-request", std::shared_ptr<AnswerSlot> (answers, &answers->setup)},
    {"pre-play-request", std::shared_ptr<AnswerSlot> (answers, &answers->play)},
  };
  for (const auto &[signal, slot] : slots)
    g_signal_connect_data (client, signal, G_CALLBACK (answer_request),
        new std::shared_ptr<AnswerSlot> (slot), answer_slot_free, GConnectFlags (0));
}

bool
FakeRtspCamera::start (guint16 port)
{
  std::lock_guard<std::mutex> lock (mutex_);
  if (loop_)
    return true;
  if (!control_->clip ()) {
    ClipPtr clip = camera_clip (options_, options_.width, options_.height);
    if (!clip)
      return false;
    control_->set_clip (clip);
  }
  if (port == 0)
    port = port_;

  loop_ = std::make_unique<Loop> ();
  loop_->context = g_main_context_new ();
  loop_->loop = g_main_loop_new (loop_->context, FALSE);
  GstRTSPServer *server = gst_rtsp_server_new ();
  loop_->server = server;
  gst_rtsp_server_set_address (server, "127.0.0.1");
  gst_rtsp_server_set_service (server, std::to_string (port).c_str ());

  // Every client on this loop, the thread stop () closes them from: on
  // gst-rtsp-server's own client thread (max-threads 1 by default), a client
  // could be reading a request while stop () closed its connection, which
  // GstRTSPConnection does not survive (a GLib-GIO CRITICAL in
  // g_pollable_input_stream_read_nonblocking, from the watch's read).
  GstRTSPThreadPool *threads = gst_rtsp_server_get_thread_pool (server);
  gst_rtsp_thread_pool_set_max_threads (threads, 0);
  g_object_unref (threads);
  g_signal_connect (server, "client-connected", G_CALLBACK (on_client_connected), this);

  GstRTSPMediaFactory *factory = gst_rtsp_media_factory_new ();
  gst_rtsp_media_factory_set_launch (factory, media_description (options_).c_str ());
  gst_rtsp_media_factory_set_shared (factory, options_.shared);
  gst_rtsp_media_factory_add_role (factory, "user", GST_RTSP_PERM_MEDIA_FACTORY_ACCESS,
      G_TYPE_BOOLEAN, TRUE, GST_RTSP_PERM_MEDIA_FACTORY_CONSTRUCT, G_TYPE_BOOLEAN, TRUE, nullptr);
  g_signal_connect (factory, "media-configure", G_CALLBACK (on_media_configure), this);
  GstRTSPMountPoints *mounts = gst_rtsp_server_get_mount_points (server);
  gst_rtsp_mount_points_add_factory (mounts, options_.path.c_str (), factory);
  g_object_unref (mounts);

  if (GstRTSPAuth *auth = make_auth ()) {
    gst_rtsp_server_set_auth (server, auth);
    g_object_unref (auth);
  }

  GError *error = nullptr;
  loop_->source = gst_rtsp_server_create_source (server, nullptr, &error);
  if (!loop_->source) {
    std::fprintf (stderr, "fake RTSP camera cannot listen on port %u: %s\n", port,
        error ? error->message : "?");
    if (error)
      g_error_free (error);
    g_object_unref (server);
    g_main_loop_unref (loop_->loop);
    g_main_context_unref (loop_->context);
    loop_.reset ();
    return false;
  }
  port_ = static_cast<guint16> (gst_rtsp_server_get_bound_port (server));
  {
    std::lock_guard<std::mutex> running_lock (running_cameras ().mutex);
    running_cameras ().count++;
  }
  g_source_attach (loop_->source, loop_->context);
  GMainLoop *main_loop = loop_->loop;
  loop_->thread = std::thread ([main_loop] { g_main_loop_run (main_loop); });
  return true;
}

void
FakeRtspCamera::stop ()
{
  std::lock_guard<std::mutex> lock (mutex_);
  if (!loop_)
    return;
  GstRTSPServer *server = loop_->server;
  run_in_loop ([&] {
    g_source_destroy (loop_->source);
    g_source_unref (loop_->source);
    loop_->source = nullptr;
    gst_rtsp_server_client_filter (server, remove_client, nullptr);
    GstRTSPSessionPool *pool = gst_rtsp_server_get_session_pool (server);
    gst_rtsp_session_pool_filter (pool, remove_session, nullptr);
    g_object_unref (pool);
  });
  {
    // The media pipelines go to NULL and are freed as their sessions and
    // clients go, some of it in the server's main loop: wait for them.
    std::unique_lock<std::mutex> counter_lock (loop_->counter->mutex);
    if (!loop_->counter->cond.wait_for (counter_lock, 10s,
            [&] { return loop_->counter->alive == 0; }))
      abort_on_hang ("fake RTSP camera media still alive 10 s after stop");
  }
  run_in_loop ([&] {
    g_object_unref (server);
    loop_->server = nullptr;
  });
  g_main_loop_quit (loop_->loop);
  loop_->thread.join ();
  // Whatever the server left for its context (client watches being
  // destroyed) runs here, on this thread, now that the loop is gone.
  while (g_main_context_iteration (loop_->context, FALSE)) {
  }
  g_main_loop_unref (loop_->loop);
  g_main_context_unref (loop_->context);
  loop_.reset ();
  std::lock_guard<std::mutex> running_lock (running_cameras ().mutex);
  if (--running_cameras ().count == 0)
    wait_for_media_threads ();
}

bool
FakeRtspCamera::restart ()
{
  stop ();
  return start (port_);
}

bool
FakeRtspCamera::running () const
{
  std::lock_guard<std::mutex> lock (mutex_);
  return loop_ != nullptr;
}

void
FakeRtspCamera::stall ()
{
  control_->set_stalled (true);
}

void
FakeRtspCamera::resume ()
{
  control_->set_stalled (false);
}

bool
FakeRtspCamera::switch_resolution (int width, int height)
{
  ClipPtr clip;
  {
    std::lock_guard<std::mutex> lock (mutex_);
    clip = camera_clip (options_, width, height);
  }
  if (!clip)
    return false;
  control_->set_clip (clip);
  return true;
}

bool
FakeRtspCamera::switch_codec (const std::string &codec)
{
  std::lock_guard<std::mutex> lock (mutex_);
  if (loop_)
    return false;
  ClipPtr current = control_->clip ();
  RtspCameraOptions options = options_;
  options.codec = codec;
  ClipPtr clip = camera_clip (options, current ? current->width : options.width,
      current ? current->height : options.height);
  if (!clip)
    return false;
  options_.codec = codec;
  control_->set_clip (clip);
  return true;
}

void
FakeRtspCamera::answer (const std::string &method, GstRTSPStatusCode status)
{
  if (method == "DESCRIBE")
    answers_->describe = status;
  else if (method == "SETUP")
    answers_->setup = status;
  else if (method == "PLAY")
    answers_->play = status;
  else
    ADD_FAILURE () << "FakeRtspCamera::answer: no such method " << method;
}

void
FakeRtspCamera::require_auth (const std::string &user, const std::string &password)
{
  std::lock_guard<std::mutex> lock (mutex_);
  user_ = user;
  password_ = password;
  if (!loop_)
    return;
  GstRTSPServer *server = loop_->server;
  run_in_loop ([&] {
    GstRTSPAuth *auth = make_auth ();
    gst_rtsp_server_set_auth (server, auth);
    if (auth)
      g_object_unref (auth);
  });
}

std::string
FakeRtspCamera::uri () const
{
  return uri_with_credentials ("", "");
}

std::string
FakeRtspCamera::uri_with_credentials (const std::string &user, const std::string &password) const
{
  const std::string userinfo = user.empty () ? "" : user + ":" + password + "@";
  return (options_.tls_pem.empty () ? "rtsp://" : "rtsps://") + userinfo + "127.0.0.1:" +
         std::to_string (port_) + options_.path;
}

guint
FakeRtspCamera::media_alive () const
{
  std::lock_guard<std::mutex> lock (mutex_);
  if (!loop_)
    return 0;
  std::lock_guard<std::mutex> counter_lock (loop_->counter->mutex);
  return loop_->counter->alive;
}

void
FakeRtspCamera::hold_media_threads (std::chrono::milliseconds duration)
{
  std::lock_guard<std::mutex> lock (media_threads_->mutex);
  for (GMainContext *context : media_threads_->contexts) {
    GSource *idle = g_idle_source_new ();
    g_source_set_callback (idle, [] (gpointer data) -> gboolean {
      std::this_thread::sleep_for (*static_cast<std::chrono::milliseconds *> (data));
      return G_SOURCE_REMOVE;
    }, new std::chrono::milliseconds (duration),
        [] (gpointer data) { delete static_cast<std::chrono::milliseconds *> (data); });
    g_source_attach (idle, context);
    g_source_unref (idle);
  }
}

guint
FakeRtspCamera::clients () const
{
  std::lock_guard<std::mutex> lock (mutex_);
  if (!loop_)
    return 0;
  GList *list = gst_rtsp_server_client_filter (loop_->server, nullptr, nullptr);
  guint count = g_list_length (list);
  g_list_free_full (list, g_object_unref);
  return count;
}

// ---------------------------------------------------------------------------
// TcpServer

struct TcpServer::Connection {
  int fd = -1;
  std::thread thread;
  std::atomic<bool> done{false};
};

TcpServer::TcpServer (Handler handler) : handler_ (std::move (handler)) {}

TcpServer::~TcpServer ()
{
  stop ();
}

bool
TcpServer::start (guint16 port)
{
  if (listen_fd_ >= 0)
    return true;
  if (port == 0)
    port = port_;
  int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return false;
  int one = 1;
  setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof (one));
  struct sockaddr_in address = {};
  address.sin_family = AF_INET;
  address.sin_port = htons (port);
  address.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  socklen_t length = sizeof (address);
  if (bind (fd, reinterpret_cast<struct sockaddr *> (&address), sizeof (address)) < 0 ||
      listen (fd, 64) < 0 ||
      getsockname (fd, reinterpret_cast<struct sockaddr *> (&address), &length) < 0) {
    std::fprintf (stderr, "TcpServer cannot listen on port %u: %s\n", port, std::strerror (errno));
    close (fd);
    return false;
  }
  port_ = ntohs (address.sin_port);
  listen_fd_ = fd;
  stopping_ = false;
  accept_thread_ = std::thread ([this] { accept_loop (); });
  return true;
}

void
TcpServer::accept_loop ()
{
  while (!stopping_) {
    if (wait_readable (listen_fd_, 100) <= 0)
      continue;
    int fd = accept4 (listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0)
      continue;
    accepted_++;
    reap (false);
    auto connection = std::make_unique<Connection> ();
    connection->fd = fd;
    Connection *c = connection.get ();
    c->thread = std::thread ([this, c] {
      handler_ (c->fd, stopping_);
      // Closed as soon as the handler is done (a handler that set SO_LINGER
      // 0 resets it now), under the lock that stop () shuts fds down with.
      std::lock_guard<std::mutex> lock (mutex_);
      close (c->fd);
      c->fd = -1;
      c->done = true;
    });
    std::lock_guard<std::mutex> lock (mutex_);
    connections_.push_back (std::move (connection));
  }
}

// Joins finished connection threads (all of them, once shut down, if `all`).
void
TcpServer::reap (bool all)
{
  std::vector<std::unique_ptr<Connection>> finished;
  {
    std::lock_guard<std::mutex> lock (mutex_);
    for (auto it = connections_.begin (); it != connections_.end ();) {
      if (all || (*it)->done) {
        finished.push_back (std::move (*it));
        it = connections_.erase (it);
      } else {
        ++it;
      }
    }
  }
  for (auto &connection : finished)
    connection->thread.join ();
}

void
TcpServer::stop ()
{
  if (listen_fd_ < 0)
    return;
  stopping_ = true;
  accept_thread_.join ();
  close (listen_fd_);
  listen_fd_ = -1;
  {
    std::lock_guard<std::mutex> lock (mutex_);
    for (auto &connection : connections_)
      if (connection->fd >= 0)
        shutdown (connection->fd, SHUT_RDWR);
  }
  reap (true);
}

bool
TcpServer::restart ()
{
  stop ();
  return start (port_);
}

guint
TcpServer::open_connections () const
{
  std::lock_guard<std::mutex> lock (mutex_);
  guint count = 0;
  for (const auto &connection : connections_)
    if (!connection->done)
      count++;
  return count;
}

TcpServer::Handler
garbage_handler ()
{
  return [] (int fd, const std::atomic<bool> &stopping) {
    std::mt19937 random (static_cast<unsigned> (fd) * 7919u);
    auto send_garbage = [&] {
      guint8 garbage[512];
      for (auto &byte : garbage)
        byte = static_cast<guint8> (random ());
      return send_all (fd, garbage, sizeof (garbage)) >= 0;
    };
    if (!send_garbage ())
      return;
    while (!stopping) {
      int ready = wait_readable (fd, 100);
      if (ready < 0)
        return;
      if (ready == 0)
        continue;
      char input[4096];
      ssize_t n = recv (fd, input, sizeof (input), 0);
      if (n <= 0 || !send_garbage ())
        return;
    }
  };
}

TcpServer::Handler
silent_handler ()
{
  return [] (int fd, const std::atomic<bool> &stopping) {
    while (!stopping) {
      int ready = wait_readable (fd, 100);
      if (ready < 0)
        return;
      if (ready == 0)
        continue;
      char input[4096];
      if (recv (fd, input, sizeof (input), 0) <= 0)
        return;
    }
  };
}

guint16
closed_port ()
{
  int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return 0;
  struct sockaddr_in address = {};
  address.sin_family = AF_INET;
  address.sin_port = 0;
  address.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  socklen_t length = sizeof (address);
  guint16 port = 0;
  if (bind (fd, reinterpret_cast<struct sockaddr *> (&address), sizeof (address)) == 0 &&
      getsockname (fd, reinterpret_cast<struct sockaddr *> (&address), &length) == 0)
    port = ntohs (address.sin_port);
  close (fd);
  return port;
}

// ---------------------------------------------------------------------------
// TcpProxy

namespace {

int
connect_loopback (guint16 port)
{
  int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  struct sockaddr_in address = {};
  address.sin_family = AF_INET;
  address.sin_port = htons (port);
  address.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  // On loopback a connect is answered at once (accepted or refused).
  if (connect (fd, reinterpret_cast<struct sockaddr *> (&address), sizeof (address)) < 0) {
    close (fd);
    return -1;
  }
  int one = 1;
  setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof (one));
  return fd;
}

// Makes the next close () of `fd` send a RST instead of a FIN.
void
abort_on_close (int fd)
{
  struct linger linger = {1, 0};
  setsockopt (fd, SOL_SOCKET, SO_LINGER, &linger, sizeof (linger));
}

// The client's side of a relay: the socket itself, or a TLS session over it.
class ClientSide {
 public:
  ClientSide (int fd, GTlsCertificate *certificate) : fd_ (fd)
  {
    if (!certificate)
      return;
    GError *error = nullptr;
    // GSocket closes what it is given: a duplicate, so that TcpServer keeps
    // its fd (both share one socket, so SO_LINGER on either applies).
    GSocket *socket = g_socket_new_from_fd (dup (fd), &error);
    if (!socket) {
      std::fprintf (stderr, "TcpProxy: %s\n", error->message);
      g_error_free (error);
      failed_ = true;
      return;
    }
    g_socket_set_timeout (socket, 5);  // bounds the handshake and every write
    GSocketConnection *connection = g_socket_connection_factory_create_connection (socket);
    g_object_unref (socket);
    tls_ = g_tls_server_connection_new (G_IO_STREAM (connection), certificate, &error);
    g_object_unref (connection);
    if (!tls_ || !g_tls_connection_handshake (G_TLS_CONNECTION (tls_), nullptr, &error)) {
      // A client refusing our certificate is no news: no noise.
      g_clear_error (&error);
      failed_ = true;
    }
  }
  ~ClientSide ()
  {
    if (tls_)
      g_object_unref (tls_);
  }
  ClientSide (const ClientSide &) = delete;
  ClientSide &operator= (const ClientSide &) = delete;

  bool failed () const { return failed_; }

  // Bytes read (> 0), 0 at the end of the stream or on error, -1 when
  // nothing is there now.
  ssize_t read (void *data, size_t size)
  {
    if (!tls_) {
      ssize_t n = recv (fd_, data, size, MSG_DONTWAIT);
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return -1;
      return std::max<ssize_t> (n, 0);
    }
    GError *error = nullptr;
    GPollableInputStream *input = G_POLLABLE_INPUT_STREAM (g_io_stream_get_input_stream (tls_));
    gssize n = g_pollable_input_stream_read_nonblocking (input, data, size, nullptr, &error);
    if (n < 0) {
      const bool would_block = g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK);
      g_error_free (error);
      return would_block ? -1 : 0;
    }
    return n;
  }

  bool write (const void *data, size_t size)
  {
    if (!tls_)
      return send_all (fd_, data, size) >= 0;
    return g_output_stream_write_all (g_io_stream_get_output_stream (tls_), data, size, nullptr,
        nullptr, nullptr);
  }

 private:
  int fd_;
  GIOStream *tls_ = nullptr;
  bool failed_ = false;
};

}  // namespace

TcpProxy::TcpProxy (guint16 target, const std::string &tls_pem)
    : target_ (target),
      server_ ([this] (int fd, const std::atomic<bool> &stopping) { relay (fd, stopping); })
{
  if (tls_pem.empty ())
    return;
  GError *error = nullptr;
  tls_certificate_ = g_tls_certificate_new_from_pem (tls_pem.c_str (), -1, &error);
  if (!tls_certificate_) {
    ADD_FAILURE () << "TcpProxy: bad certificate: " << error->message;
    g_error_free (error);
  }
}

TcpProxy::~TcpProxy ()
{
  stop ();
  if (tls_certificate_)
    g_object_unref (tls_certificate_);
}

bool
TcpProxy::start (guint16 port)
{
  return server_.start (port);
}

void
TcpProxy::stop ()
{
  server_.stop ();
}

guint
TcpProxy::relays () const
{
  std::lock_guard<std::mutex> lock (mutex_);
  return static_cast<guint> (relays_.size ());
}

guint
TcpProxy::reset_connections ()
{
  std::unique_lock<std::mutex> lock (mutex_);
  const guint epoch = ++epoch_;
  const guint count = static_cast<guint> (
      std::distance (relays_.begin (), relays_.lower_bound (epoch)));
  // Each relay notices within its 100 ms poll.
  if (!relays_changed_.wait_for (lock, 5s,
          [&] { return relays_.empty () || *relays_.begin () >= epoch; }))
    abort_on_hang ("TcpProxy relays still open 5 s after a reset");
  return count;
}

void
TcpProxy::inject_garbage (size_t bytes)
{
  garbage_bytes_ = bytes;
  garbage_epoch_++;
}

void
TcpProxy::relay (int fd, const std::atomic<bool> &stopping)
{
  guint garbage_sent = garbage_epoch_;
  std::mt19937 random (static_cast<std::mt19937::result_type> (fd));
  guint epoch;
  std::multiset<guint>::iterator registered;
  {
    std::lock_guard<std::mutex> lock (mutex_);
    epoch = epoch_;
    registered = relays_.insert (epoch);
  }
  int target_fd = connect_loopback (target_);
  bool reset = false;
  if (target_fd >= 0) {
    ClientSide client (fd, tls_certificate_);
    guint8 buffer[16384];
    while (!client.failed () && !stopping) {
      {
        std::lock_guard<std::mutex> lock (mutex_);
        reset = epoch_ != epoch;
      }
      if (reset)
        break;
      struct pollfd fds[2] = {{fd, POLLIN, 0}, {target_fd, POLLIN, 0}};
      if (poll (fds, 2, 100) < 0 && errno != EINTR)
        break;
      bool open = true;
      // Everything the client side has now (TLS may hold decrypted records
      // back from the socket's readiness), then the target's.
      ssize_t n;
      while (open && (n = client.read (buffer, sizeof (buffer))) != -1)
        open = n > 0 && send_all (target_fd, buffer, static_cast<size_t> (n)) >= 0;
      if (open && fds[1].revents) {
        n = recv (target_fd, buffer, sizeof (buffer), 0);
        open = n > 0 && client.write (buffer, static_cast<size_t> (n));
      }
      if (open && garbage_sent != garbage_epoch_) {
        garbage_sent = garbage_epoch_;
        std::vector<guint8> garbage (garbage_bytes_);
        for (guint8 &byte : garbage)
          byte = static_cast<guint8> (random ());
        open = client.write (garbage.data (), garbage.size ());
      }
      if (!open)
        break;
    }
  }
  if (reset) {
    abort_on_close (fd);  // TcpServer closes it when we return
    if (target_fd >= 0)
      abort_on_close (target_fd);
  }
  if (target_fd >= 0)
    close (target_fd);
  {
    std::lock_guard<std::mutex> lock (mutex_);
    relays_.erase (registered);
  }
  relays_changed_.notify_all ();
}

// ---------------------------------------------------------------------------
// FakeMjpegCamera

namespace {
constexpr const char *kBoundary = "camrelayframe";
}

FakeMjpegCamera::FakeMjpegCamera (MjpegCameraOptions options)
    : options_ (std::move (options)),
      server_ ([this] (int fd, const std::atomic<bool> &stopping) { serve (fd, stopping); })
{
}

FakeMjpegCamera::~FakeMjpegCamera ()
{
  stop ();
}

bool
FakeMjpegCamera::start (guint16 port)
{
  if (!control_->clip ()) {
    ClipPtr clip = jpeg_clip (options_.width, options_.height, options_.fps);
    if (!clip)
      return false;
    control_->set_clip (clip);
  }
  return server_.start (port);
}

void
FakeMjpegCamera::stop ()
{
  server_.stop ();
}

bool
FakeMjpegCamera::restart ()
{
  return server_.restart ();
}

std::string
FakeMjpegCamera::uri () const
{
  return "http://127.0.0.1:" + std::to_string (server_.port ()) + options_.path;
}

void
FakeMjpegCamera::serve (int fd, const std::atomic<bool> &stopping)
{
  // The request: read up to the end of the headers (bounded in size and time).
  std::string request;
  const auto request_deadline = SteadyClock::now () + 5s;
  while (request.find ("\r\n\r\n") == std::string::npos) {
    if (stopping || SteadyClock::now () > request_deadline || request.size () > 16384)
      return;
    int ready = wait_readable (fd, 100);
    if (ready < 0)
      return;
    if (ready == 0)
      continue;
    char input[2048];
    ssize_t n = recv (fd, input, sizeof (input), 0);
    if (n <= 0)
      return;
    request.append (input, static_cast<size_t> (n));
  }
  std::string path;
  if (request.compare (0, 4, "GET ") == 0)
    path = request.substr (4, request.find (' ', 4) - 4);

  auto answer_status = [&] (const char *status) {
    std::string response = std::string ("HTTP/1.0 ") + status +
                           "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    send_all (fd, response.data (), response.size ());
  };
  if (status_ != 200) {
    answer_status ((std::to_string (status_.load ()) + " Unavailable").c_str ());
    return;
  }
  if (path != options_.path) {
    answer_status ("404 Not Found");
    return;
  }
  const std::string header = std::string ("HTTP/1.0 200 OK\r\n"
                                          "Content-Type: multipart/x-mixed-replace;boundary=") +
                             kBoundary +
                             "\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n";
  if (send_all (fd, header.data (), header.size ()) < 0)
    return;

  ClipPtr clip = control_->clip ();
  const auto period = std::chrono::nanoseconds (clip->frame_duration ());
  auto next = SteadyClock::now ();
  size_t index = 0;
  std::string burst;  // parts not sent yet (frames_per_write)
  int in_burst = 0;
  while (!stopping) {
    // Until the next frame is due, watch for the client going away.
    auto now = SteadyClock::now ();
    if (now < next) {
      auto wait = std::chrono::duration_cast<std::chrono::milliseconds> (next - now).count ();
      int ready = wait_readable (fd, static_cast<int> (std::min<long long> (wait + 1, 100)));
      if (ready < 0)
        return;
      if (ready > 0) {
        char input[2048];
        if (recv (fd, input, sizeof (input), 0) <= 0)
          return;
      }
      continue;
    }
    next += period;
    const Frame &frame = clip->frames[index];
    index = (index + 1) % clip->frames.size ();
    if (control_->stalled ())
      continue;
    burst += std::string ("--") + kBoundary + "\r\nContent-Type: image/jpeg\r\nContent-Length: " +
             std::to_string (frame.data.size ()) + "\r\n\r\n";
    burst.append (reinterpret_cast<const char *> (frame.data.data ()), frame.data.size ());
    burst += "\r\n";
    control_->count_frame ();
    if (++in_burst < std::max (1, options_.frames_per_write))
      continue;
    if (send_all (fd, burst.data (), burst.size ()) < 0)
      return;
    burst.clear ();
    in_burst = 0;
  }
}

}  // namespace camtest
