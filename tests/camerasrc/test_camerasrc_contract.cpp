// camerasrc's finer promises: an application may read the element from any
// signal it emits, one output stream keeps its order and timeline whatever
// the fallback does, a codec change starts a new stream downstream, and what
// the element reports (reasons, backoff) is precise.  Every wait is bounded;
// a call that would hang aborts the test binary instead.
#include <gst/gst.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <cstdlib>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <thread>

#include "camerasrc/camerauri.h"
#include "camerasrc_test_util.h"

using namespace camtest;

namespace {

// Runs `action` in a thread of its own and waits at most `timeout` for it;
// returns how long it took.  A hang cannot be recovered from (the stuck
// threads hold the pipeline), so it fails the test and aborts the binary
// rather than hanging it.
template <typename Action>
double
run_bounded (const std::string &what, std::chrono::milliseconds timeout, Action action)
{
  auto done = std::make_shared<std::promise<void>> ();
  std::future<void> finished = done->get_future ();
  const auto start = SteadyClock::now ();
  std::thread worker ([action, done] () mutable {
    action ();
    done->set_value ();
  });
  if (finished.wait_for (timeout) != std::future_status::ready) {
    ADD_FAILURE () << what << " did not return within " << timeout.count () << " ms";
    std::fprintf (stderr, "%s is stuck (deadlock?): aborting\n", what.c_str ());
    std::fflush (stderr);
    std::abort ();
  }
  worker.join ();
  return seconds_between (start, SteadyClock::now ());
}

// To NULL, bounded.
double
stop_bounded (TestPipeline &p, std::chrono::milliseconds timeout = 5s)
{
  return run_bounded ("the state change to NULL", timeout, [&p] { p.stop (); });
}

}  // namespace

// ---- signals are emitted without the element's lock ---------------------------

namespace {

struct ReadBack {
  GstElement *camerasrc = nullptr;
  std::atomic<int> reads{0};
};

void
read_state_and_stats (ReadBack *read_back)
{
  gint state = -1;
  GstStructure *stats = nullptr;
  g_object_get (read_back->camerasrc, "state", &state, "stats", &stats, nullptr);
  if (stats)
    gst_structure_free (stats);
  read_back->reads++;
}

void
on_deep_element_added (GstBin *, GstBin *, GstElement *, gpointer user_data)
{
  read_state_and_stats (static_cast<ReadBack *> (user_data));
}

void
on_deep_notify (GstObject *, GstObject *, GParamSpec *, gpointer user_data)
{
  read_state_and_stats (static_cast<ReadBack *> (user_data));
}

}  // namespace

// GStreamer emits element-added, deep-element-added and deep-notify in the
// thread that adds the element or sets the property: a handler that reads
// the element must find its lock free.
TEST (CameraSrcContract, SignalHandlersMayReadTheElement)
{
  TestPipeline p;
  ASSERT_TRUE (launch_camera (p, "test://cam?width=320&height=240&gop=10"));
  ReadBack read_back;
  read_back.camerasrc = p.by_name ("cam");
  g_signal_connect (p.pipeline (), "deep-element-added", G_CALLBACK (on_deep_element_added),
      &read_back);
  ASSERT_TRUE (p.play ());
  EXPECT_TRUE (p.wait_frames (10, 5s)) << p.describe_messages ();
  EXPECT_GT (read_back.reads.load (), 0) << "the inner chain was built without signals?";

  // A property of the element that it passes on to its output appsrc.
  const int before = read_back.reads.load ();
  g_signal_connect (p.pipeline (), "deep-notify::min-latency", G_CALLBACK (on_deep_notify),
      &read_back);
  GstElement *camerasrc = read_back.camerasrc;
  run_bounded ("setting latency", 5s, [camerasrc] {
    g_object_set (camerasrc, "latency", 150u, nullptr);
  });
  EXPECT_GT (read_back.reads.load (), before) << "no deep-notify from the output appsrc";
  const size_t frames = p.frame_count ();
  EXPECT_TRUE (p.wait_frames (frames + 5, 5s)) << p.describe_messages ();

  EXPECT_LT (stop_bounded (p), 1.0);
}

// ---- fallback pictures and the camera's frames --------------------------------

namespace {

// Every buffer that reached the sink, in order.  Fallback pictures are the
// only buffers without a duration (the camera's parsers set one).
struct BufferEntry {
  GstClockTime pts = GST_CLOCK_TIME_NONE;
  GstClockTime dts = GST_CLOCK_TIME_NONE;
  GstClockTime running_time_at_arrival = GST_CLOCK_TIME_NONE;
  bool keyframe = false;
  bool discont = false;
  bool fallback = false;
  std::string caps;  // the caps it went out with
};

class BufferLog {
 public:
  // Watches the buffers entering `sink` of pipeline `pipeline`.
  void attach (GstElement *pipeline, GstElement *sink)
  {
    pipeline_ = pipeline;
    camrelay::PadPtr pad{gst_element_get_static_pad (sink, "sink")};
    gst_pad_add_probe (pad.get (), GST_PAD_PROBE_TYPE_BUFFER, on_buffer, this, nullptr);
  }
  std::vector<BufferEntry> entries () const
  {
    std::lock_guard<std::mutex> lock (mutex_);
    return entries_;
  }

 private:
  static GstPadProbeReturn on_buffer (GstPad *pad, GstPadProbeInfo *info, gpointer user_data)
  {
    auto *self = static_cast<BufferLog *> (user_data);
    GstBuffer *buffer = GST_PAD_PROBE_INFO_BUFFER (info);
    BufferEntry entry;
    if (camrelay::CapsPtr caps{gst_pad_get_current_caps (pad)}) {
      camrelay::GCharPtr text{gst_caps_to_string (caps.get ())};
      entry.caps = text.get ();
    }
    entry.pts = GST_BUFFER_PTS (buffer);
    entry.dts = GST_BUFFER_DTS (buffer);
    entry.keyframe = !GST_BUFFER_FLAG_IS_SET (buffer, GST_BUFFER_FLAG_DELTA_UNIT);
    entry.discont = GST_BUFFER_FLAG_IS_SET (buffer, GST_BUFFER_FLAG_DISCONT);
    entry.fallback = !GST_BUFFER_DURATION_IS_VALID (buffer);
    if (camrelay::ClockPtr clock{gst_element_get_clock (self->pipeline_)}) {
      const GstClockTime now = gst_clock_get_time (clock.get ());
      const GstClockTime base = gst_element_get_base_time (self->pipeline_);
      entry.running_time_at_arrival = now > base ? now - base : 0;
    }
    std::lock_guard<std::mutex> lock (self->mutex_);
    self->entries_.push_back (entry);
    return GST_PAD_PROBE_OK;
  }

  GstElement *pipeline_ = nullptr;
  mutable std::mutex mutex_;
  std::vector<BufferEntry> entries_;
};

// The order of one output: timestamps strictly increase, and a fallback
// picture never follows the camera's frames except to start a gap (flagged
// DISCONT): none slips in between a camera's keyframe and its deltas.
void
expect_fallback_only_in_gaps (const std::vector<BufferEntry> &entries)
{
  int reported = 0;
  for (size_t i = 1; i < entries.size () && reported < 5; i++) {
    const BufferEntry &previous = entries[i - 1];
    const BufferEntry &entry = entries[i];
    if (entry.pts <= previous.pts) {
      ADD_FAILURE () << "PTS not strictly increasing at buffer " << i << ": "
                     << time_string (previous.pts) << (previous.fallback ? " (fallback)" : "")
                     << " then " << time_string (entry.pts)
                     << (entry.fallback ? " (fallback)" : "");
      reported++;
    }
    if (entry.fallback && !previous.fallback && !entry.discont) {
      ADD_FAILURE () << "fallback picture at buffer " << i << " amid the camera's frames";
      reported++;
    }
  }
}

// Holds the manager thread where its first fallback picture of an outage
// races the camera's return, until another thread logs new caps (the
// camera's first keyframe of the next connection, after a slate) or at most
// `hold`.  Odd outages hold it as it starts to send the picture ("sending a
// fallback picture"), even ones once the picture is stamped, as it logs the
// slate's "new caps".  Held there, an element that pushes fallback pictures
// and camera frames without one order between them, or sends a picture once
// the camera is back, mixes them up every time.
class ManagerHold {
 public:
  ManagerHold (GstElement *camerasrc, std::chrono::milliseconds hold)
      : camerasrc_ (GST_ELEMENT (gst_object_ref (camerasrc))), hold_ (hold)
  {
    g_signal_connect (camerasrc, "notify::state", G_CALLBACK (on_state), this);
    gst_debug_set_active (TRUE);
    gst_debug_set_threshold_for_name ("camerasrc", GST_LEVEL_LOG);
    gst_debug_remove_log_function (gst_debug_log_default);
    gst_debug_add_log_function (on_log, this, nullptr);
  }
  ~ManagerHold ()
  {
    g_signal_handlers_disconnect_by_data (camerasrc_, this);
    gst_debug_remove_log_function (on_log);
    gst_debug_add_log_function (gst_debug_log_default, nullptr, nullptr);
    gst_debug_unset_threshold_for_name ("camerasrc");
    gst_object_unref (camerasrc_);  // outlives the pipeline's stop
  }
  int holds () const { return holds_; }

 private:
  // Every camerasrc-state after the first is announced by the manager thread.
  static void on_state (GObject *, GParamSpec *, gpointer user_data)
  {
    auto *self = static_cast<ManagerHold *> (user_data);
    if (state_property (self->camerasrc_) != "reconnecting")
      return;
    std::lock_guard<std::mutex> lock (self->mutex_);
    self->manager_ = g_thread_self ();
    self->outages_++;
    self->armed_ = true;
  }
  static void on_log (GstDebugCategory *category, GstDebugLevel, const gchar *, const gchar *,
      gint, GObject *, GstDebugMessage *message, gpointer user_data)
  {
    auto *self = static_cast<ManagerHold *> (user_data);
    if (std::strcmp (gst_debug_category_get_name (category), "camerasrc") != 0)
      return;
    const gchar *text = gst_debug_message_get (message);
    const bool sending = text && g_str_has_prefix (text, "sending a fallback picture");
    const bool new_caps = text && g_str_has_prefix (text, "new caps");
    if (!sending && !new_caps)
      return;
    std::unique_lock<std::mutex> lock (self->mutex_);
    if (g_thread_self () != self->manager_) {
      if (new_caps) {
        self->others_++;
        self->cond_.notify_all ();
      }
      return;
    }
    if (!self->armed_ || (self->outages_ % 2 == 1 ? !sending : !new_caps))
      return;
    self->armed_ = false;
    self->holds_++;
    const int others = self->others_;
    self->cond_.wait_for (lock, self->hold_, [self, others] { return self->others_ != others; });
  }

  GstElement *camerasrc_;
  std::chrono::milliseconds hold_;
  std::mutex mutex_;
  std::condition_variable cond_;
  GThread *manager_ = nullptr;
  int outages_ = 0;
  bool armed_ = false;
  int others_ = 0;
  std::atomic<int> holds_{0};
};

}  // namespace

// A camera that drops every 0.3 s and comes back after 15-30 ms, with a slate
// every 10 ms while it is away (the fallback starts one interval after the
// loss: an outage shorter than that sends none).  The first slate of each
// outage is held where it races the camera's return (see ManagerHold).
TEST (CameraSrcContract, FallbackNeverInterleavesWithTheCamera)
{
  TestPipeline p;
  ASSERT_TRUE (launch_camera (p, "test://cam?width=160&height=120&gop=5&drop-after=0.3",
      "fallback=slate fallback-interval=10000000 retry-delay=15000000 retry-delay-max=30000000"));
  BufferLog log;
  log.attach (p.pipeline (), p.sink ());
  {
    ManagerHold hold (p.by_name ("cam"), 300ms);
    ASSERT_TRUE (p.play ());
    // Connections that delivered video, each after fallback pictures.
    EXPECT_TRUE (p.wait_state ("streaming", 20s, 0, 7)) << p.describe_messages ();
    EXPECT_LT (stop_bounded (p), 1.0);
    std::fprintf (stderr, "the manager was held %d times\n", hold.holds ());
    EXPECT_GT (hold.holds (), 0);
  }
  const auto entries = log.entries ();
  size_t fallback = 0;
  for (const auto &e : entries)
    fallback += e.fallback;
  std::fprintf (stderr, "%zu buffers, %zu fallback pictures\n", entries.size (), fallback);
  EXPECT_GT (fallback, 0u);
  expect_fallback_only_in_gaps (entries);
  EXPECT_TRUE (p.messages_of (GST_MESSAGE_ERROR).empty ()) << p.describe_messages ();
}

namespace {

// Median of (running time at arrival - PTS) over the camera's buffers among
// `entries[from, to)`: how far behind the clock the output runs.
double
median_lag (const std::vector<BufferEntry> &entries, size_t from, size_t to)
{
  std::vector<double> lags;
  for (size_t i = from; i < to && i < entries.size (); i++) {
    const BufferEntry &e = entries[i];
    if (!e.fallback && GST_CLOCK_TIME_IS_VALID (e.running_time_at_arrival))
      lags.push_back ((double (e.running_time_at_arrival) - double (e.pts)) / GST_SECOND);
  }
  if (lags.empty ())
    return -1;
  std::sort (lags.begin (), lags.end ());
  return lags[lags.size () / 2];
}

// Index of the first buffer at or after `from` whose PTS is at least `pts`,
// or the size.
size_t
first_at (const std::vector<BufferEntry> &entries, GstClockTime pts, size_t from = 0)
{
  for (size_t i = from; i < entries.size (); i++)
    if (entries[i].pts >= pts)
      return i;
  return entries.size ();
}

constexpr GstClockTime kCameraLag = 300 * GST_MSECOND;

// Makes every test camera that camerasrc builds send its frames `kCameraLag`
// behind the clock, as a camera path that buffers does (a jitter buffer
// holding frames, a camera stamping them at capture).
GstPadProbeReturn
delay_timestamps (GstPad *, GstPadProbeInfo *info, gpointer)
{
  GstBuffer *buffer = gst_buffer_make_writable (GST_PAD_PROBE_INFO_BUFFER (info));
  for (GstClockTime *ts : {&GST_BUFFER_PTS (buffer), &GST_BUFFER_DTS (buffer)})
    if (GST_CLOCK_TIME_IS_VALID (*ts))
      *ts = *ts > kCameraLag ? *ts - kCameraLag : 0;
  GST_PAD_PROBE_INFO_DATA (info) = buffer;
  return GST_PAD_PROBE_OK;
}

void
on_camera_pad (GstElement *, GstPad *pad, gpointer)
{
  if (GST_PAD_IS_SRC (pad))
    gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_BUFFER, delay_timestamps, nullptr, nullptr);
}

void
delay_test_cameras (GstBin *, GstBin *, GstElement *element, gpointer)
{
  GstElementFactory *factory = gst_element_get_factory (element);
  if (!factory || g_strcmp0 (GST_OBJECT_NAME (factory), "testcamerasrc") != 0)
    return;
  gst_element_foreach_src_pad (element, [] (GstElement *e, GstPad *pad, gpointer) -> gboolean {
    on_camera_pad (e, pad, nullptr);
    return TRUE;
  }, nullptr);
  g_signal_connect (element, "pad-added", G_CALLBACK (on_camera_pad), nullptr);
}

struct ConnectionLag {
  double video = 0;  // s behind the clock
  double audio = 0;
};

// A test camera with audio whose frames come out 300 ms behind the clock
// drops every second and comes back at once, four times, with fallback
// pictures every 10 ms while it is away (so the last one goes out just
// before the camera's first keyframe).  Returns how far behind the clock
// video and audio ran on each connection, measured over 0.1-0.5 s after its
// first keyframe.
std::vector<ConnectionLag>
returning_camera_lags (guint latency_ms)
{
  std::vector<ConnectionLag> lags;
  TestPipeline p;
  EXPECT_TRUE (p.launch (camerasrc_pipeline (
      "fallback=freeze fallback-interval=10000000 retry-delay=20000000 "
      "retry-delay-max=40000000 latency=" + std::to_string (latency_ms)) +
      " cam.audio ! appsink name=audio_sink sync=false max-buffers=1 drop=true"));
  if (!p.pipeline ())
    return lags;
  g_object_set (p.by_name ("cam"), "location",
      "test://cam?width=320&height=240&gop=10&audio=aac&drop-after=1", nullptr);
  g_signal_connect (p.pipeline (), "deep-element-added", G_CALLBACK (delay_test_cameras), nullptr);
  BufferLog video;
  video.attach (p.pipeline (), p.sink ());
  BufferLog audio;
  audio.attach (p.pipeline (), p.by_name ("audio_sink"));
  EXPECT_TRUE (p.play ());
  EXPECT_TRUE (p.wait_state ("streaming", 10s, 0, 4)) << p.describe_messages ();
  const size_t frames = p.frame_count ();
  EXPECT_TRUE (p.wait_frames (frames + 20, 5s));
  EXPECT_LT (stop_bounded (p), 1.0);
  EXPECT_TRUE (p.messages_of (GST_MESSAGE_ERROR).empty ()) << p.describe_messages ();

  const auto v = video.entries ();
  const auto a = audio.entries ();
  EXPECT_FALSE (a.empty ()) << "no audio";
  expect_fallback_only_in_gaps (v);
  // Each connection starts with a DISCONT keyframe of the camera.  (Frames
  // the first one sent before the delay could apply, stamped 0, fall before
  // the measured span.)
  for (size_t i = 0; i < v.size (); i++) {
    if (v[i].fallback || !v[i].discont)
      continue;
    const GstClockTime start = v[i].pts + 100 * GST_MSECOND;
    const GstClockTime end = start + 400 * GST_MSECOND;
    const size_t v_end = first_at (v, end, i);
    const size_t a_from = first_at (a, start);
    ConnectionLag lag;
    lag.video = median_lag (v, first_at (v, start, i), v_end);
    lag.audio = median_lag (a, a_from, first_at (a, end, a_from));
    if (v_end == v.size () || lag.audio < 0)
      continue;  // too short to measure: the pipeline stopped
    std::fprintf (stderr, "connection %zu: video %.3f s behind the clock, audio %.3f s\n",
        lags.size () + 1, lag.video, lag.audio);
    lags.push_back (lag);
  }
  EXPECT_GE (lags.size (), 3u) << "too few connections to compare";
  return lags;
}

}  // namespace

// With the camera's frames within camerasrc's latency (500 ms), each
// returning camera keeps its place on the timeline, like the first
// connection (which followed no fallback picture): fallback pictures do not
// push it later, which would also move the video away from the audio.
TEST (CameraSrcContract, FallbackKeepsTheReturningCameraOnItsTimeline)
{
  const auto lags = returning_camera_lags (500);
  for (size_t i = 1; i < lags.size (); i++) {
    EXPECT_NEAR (lags[i].video, lags[0].video, 0.1)
        << "connection " << i + 1 << ": the video moved on the timeline";
    EXPECT_NEAR (lags[i].video - lags[i].audio, lags[0].video - lags[0].audio, 0.1)
        << "connection " << i + 1 << ": audio and video drifted apart";
  }
}

// A camera later than camerasrc's latency (100 ms) may land behind the
// fallback pictures, and its session then moves later: its audio moves
// with it.
TEST (CameraSrcContract, AudioMovesWithTheVideo)
{
  const auto lags = returning_camera_lags (100);
  for (size_t i = 1; i < lags.size (); i++)
    EXPECT_NEAR (lags[i].video - lags[i].audio, lags[0].video - lags[0].audio, 0.05)
        << "connection " << i + 1 << ": audio and video drifted apart";
}

// ---- a codec change starts a new stream ---------------------------------------

namespace {

// What left camerasrc's video pad: the media type of each buffer, and the
// stream-starts and stream-collections.
class OutputLog {
 public:
  void attach (GstElement *camerasrc)
  {
    camrelay::PadPtr pad{gst_element_get_static_pad (camerasrc, "video")};
    gst_pad_add_probe (pad.get (), GST_PAD_PROBE_TYPE_DATA_DOWNSTREAM, on_data, this, nullptr);
  }
  std::vector<std::string> buffer_types () const
  {
    std::lock_guard<std::mutex> lock (mutex_);
    return buffer_types_;
  }
  std::vector<std::string> stream_ids () const
  {
    std::lock_guard<std::mutex> lock (mutex_);
    return stream_ids_;
  }
  int collections () const
  {
    std::lock_guard<std::mutex> lock (mutex_);
    return collections_;
  }

 private:
  static GstPadProbeReturn on_data (GstPad *pad, GstPadProbeInfo *info, gpointer user_data)
  {
    auto *self = static_cast<OutputLog *> (user_data);
    std::lock_guard<std::mutex> lock (self->mutex_);
    if (GST_IS_BUFFER (GST_PAD_PROBE_INFO_DATA (info))) {
      camrelay::CapsPtr caps{gst_pad_get_current_caps (pad)};
      self->buffer_types_.push_back (
          caps ? gst_structure_get_name (gst_caps_get_structure (caps.get (), 0)) : "");
    } else if (GST_IS_EVENT (GST_PAD_PROBE_INFO_DATA (info))) {
      GstEvent *event = GST_PAD_PROBE_INFO_EVENT (info);
      if (GST_EVENT_TYPE (event) == GST_EVENT_STREAM_START) {
        const gchar *id = nullptr;
        gst_event_parse_stream_start (event, &id);
        self->stream_ids_.push_back (id ? id : "");
      } else if (GST_EVENT_TYPE (event) == GST_EVENT_STREAM_COLLECTION) {
        self->collections_++;
      }
    }
    return GST_PAD_PROBE_OK;
  }

  mutable std::mutex mutex_;
  std::vector<std::string> buffer_types_;
  std::vector<std::string> stream_ids_;
  int collections_ = 0;
};

// Waits, frame by frame, until a frame that reached the sink satisfies
// `match`, at most `timeout`.
bool
wait_frame_matching (TestPipeline &p, const std::function<bool (const FrameRecord &)> &match,
    std::chrono::milliseconds timeout)
{
  const auto deadline = SteadyClock::now () + timeout;
  for (size_t seen = 0;;) {
    const auto frames = p.frames ();
    for (; seen < frames.size (); seen++)
      if (match (frames[seen]))
        return true;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds> (
        deadline - SteadyClock::now ());
    if (left.count () <= 0 || !p.wait_frames (seen + 1, left))
      return false;
  }
}

}  // namespace

// The camera switches from H.264 to H.265 (a camera that rebooted into
// another codec, here a new location): decodebin3 downstream decodes on,
// without an ERROR or EOS.  A change of size in the same codec is no new
// stream.
TEST (CameraSrcContract, CodecChangeStartsANewStreamThatDecodebin3Follows)
{
  for (const char *decoder : {"openh264dec", "libde265dec"})
    ASSERT_TRUE (has_factory (decoder)) << decoder;
  TestPipeline p;
  ASSERT_TRUE (p.launch ("camerasrc name=cam fallback=none retry-delay=100000000 ! "
                         "decodebin3 ! appsink name=sink sync=false"));
  GstElement *camerasrc = p.by_name ("cam");
  g_object_set (camerasrc, "location", "test://cam?width=320&height=240&gop=10", nullptr);
  OutputLog output;
  output.attach (camerasrc);
  ASSERT_TRUE (p.play ());
  // Non-fatal checks from here on: a decodebin3 stuck in a codec change
  // cannot stop, and the test must still end (stop_bounded).
  EXPECT_TRUE (p.wait_frames (15, 10s)) << p.describe_messages ();

  g_object_set (camerasrc, "location", "test://cam?width=320&height=240&gop=10&codec=h265",
      nullptr);
  auto h265_out = [&output] {
    size_t count = 0;
    for (const auto &type : output.buffer_types ())
      count += type == "video/x-h265";
    return count;
  };
  EXPECT_TRUE (p.wait_until ([&] { return h265_out () >= 1; }, 10s)) << "no H.265 out";
  // Decoded H.265: frames keep coming out of decodebin3.
  const size_t decoded = p.frame_count ();
  EXPECT_TRUE (p.wait_frames (decoded + 15, 10s))
      << "decodebin3 stopped after the codec change\n" << p.describe_messages ();
  EXPECT_GE (h265_out (), 15u);
  const auto ids = output.stream_ids ();
  EXPECT_EQ (ids.size (), 2u) << "one stream-start per codec";
  if (ids.size () == 2) {
    EXPECT_NE (ids[0], ids[1]);
  }

  // Same codec, another size: new caps only.
  g_object_set (camerasrc, "location", "test://cam?width=160&height=120&gop=10&codec=h265",
      nullptr);
  EXPECT_TRUE (wait_frame_matching (p, [] (const FrameRecord &f) { return f.width == 160; }, 10s))
      << "no decoded frame of the new size";
  EXPECT_EQ (output.stream_ids ().size (), 2u) << "a new stream for a change of size";
  EXPECT_EQ (output.collections (), 2);

  EXPECT_LT (stop_bounded (p), 1.0);
  EXPECT_TRUE (p.messages_of (GST_MESSAGE_ERROR).empty ()) << p.describe_messages ();
  EXPECT_TRUE (p.messages_of (GST_MESSAGE_EOS).empty ()) << p.describe_messages ();
}

// ---- a new location forgets the old camera ------------------------------------

// After a switch to a camera that never answers, the old camera's last
// keyframe is not shown as the new camera's fallback, and the stats no
// longer describe the old camera.
TEST (CameraSrcContract, LocationChangeForgetsTheOldCamera)
{
  TestPipeline p;
  ASSERT_TRUE (launch_camera (p, "test://old?width=320&height=240&gop=10",
      "fallback=freeze fallback-interval=50000000"));
  BufferLog log;
  log.attach (p.pipeline (), p.sink ());
  ASSERT_TRUE (p.play ());
  ASSERT_TRUE (p.wait_frames (15, 10s)) << p.describe_messages ();
  GstElement *camerasrc = p.by_name ("cam");
  auto stats = get_stats (camerasrc);
  EXPECT_EQ (stat_int (stats.get (), names::STAT_WIDTH), 320);
  EXPECT_EQ (stat_string (stats.get (), names::STAT_CODEC), "h264");

  const size_t from = next_state_index (p);
  const size_t after_switch = log.entries ().size ();
  const std::string nobody = "rtsp://127.0.0.1:" + std::to_string (closed_port ()) + "/cam";
  g_object_set (camerasrc, "location", nobody.c_str (), nullptr);
  // Attempts fail for a while, fallback intervals (50 ms) pass.
  ASSERT_TRUE (p.wait_state ("reconnecting", 5s, from, 3)) << p.describe_messages ();
  const auto entries = log.entries ();
  size_t fallback_after = 0;
  for (size_t i = after_switch; i < entries.size (); i++)
    fallback_after += entries[i].fallback;
  EXPECT_EQ (fallback_after, 0u) << "the old camera's keyframe as the new camera's fallback";
  stats = get_stats (camerasrc);
  EXPECT_EQ (stat_int (stats.get (), names::STAT_WIDTH), 0) << stats_string (camerasrc);
  EXPECT_EQ (stat_int (stats.get (), names::STAT_HEIGHT), 0);
  EXPECT_EQ (stat_string (stats.get (), names::STAT_CODEC), "");
  EXPECT_EQ (stat_u64 (stats.get (), names::STAT_BITRATE), 0u);
  EXPECT_LT (stop_bounded (p), 1.0);
}

// ---- the slate ------------------------------------------------------------------

// A 4K H.265 camera drops; camerasrc starts encoding its slate (x265 at 4K:
// as slow as a slate gets, seconds on a busy machine) as it announces
// `reconnecting`.  Going to NULL right then stays within the second.
TEST (CameraSrcContract, NullWhileTheSlateIsBeingMade)
{
  ASSERT_TRUE (has_factory ("x265enc"));
  TestPipeline p;
  ASSERT_TRUE (launch_camera (p,
      "test://cam?codec=h265&width=3840&height=2160&framerate=2&gop=1&bitrate=300&drop-after=1",
      "fallback=slate retry-delay=3000000000 retry-delay-max=3000000000 "
      "connect-timeout=10000000000 timeout=5000000000"));
  ASSERT_TRUE (p.play ());
  ASSERT_TRUE (p.wait_state ("reconnecting", 15s)) << p.describe_messages ();
  const double took = stop_bounded (p);
  std::fprintf (stderr, "to NULL in %.3f s\n", took);
  EXPECT_LT (took, 1.0);
}

// The slate is made in the background: the camera drops, fallback pictures
// (the last keyframe at first) go out meanwhile, then the slate, in the
// camera's codec and size but with caps of its own.
TEST (CameraSrcContract, TheSlateIsMadeInTheBackground)
{
  TestPipeline p;
  ASSERT_TRUE (launch_camera (p, "test://cam?width=320&height=240&gop=10&drop-after=1",
      "fallback=slate fallback-interval=100000000 retry-delay=2000000000 "
      "retry-delay-max=2000000000"));
  BufferLog log;
  log.attach (p.pipeline (), p.sink ());
  ASSERT_TRUE (p.play ());
  ASSERT_TRUE (p.wait_state ("reconnecting", 10s)) << p.describe_messages ();
  const std::string camera_caps = log.entries ().front ().caps;
  auto slates = [&log, &camera_caps] {
    size_t count = 0;
    for (const auto &e : log.entries ())
      count += e.fallback && e.caps != camera_caps;
    return count;
  };
  EXPECT_TRUE (p.wait_until ([&] { return slates () >= 3; }, 2s)) << "no slate";
  EXPECT_LT (stop_bounded (p), 1.0);
  for (const auto &e : log.entries ()) {
    if (e.fallback && e.caps != camera_caps) {
      EXPECT_NE (e.caps.find ("video/x-h264"), std::string::npos) << e.caps;
      EXPECT_NE (e.caps.find ("width=(int)320"), std::string::npos) << e.caps;
      EXPECT_NE (e.caps.find ("height=(int)240"), std::string::npos) << e.caps;
      break;
    }
  }
  expect_fallback_only_in_gaps (log.entries ());
}

// ---- credentials in reports -------------------------------------------------------

// The user name is a credential too: redact_text removes it, from the URI's
// user information and from user-id, as written and percent-decoded, where
// it stands as a word (a short name must not eat every word that holds it).
TEST (CameraSrcContract, RedactTextRemovesTheUserName)
{
  using camrelay::camerasrc::redact_text;
  EXPECT_EQ (redact_text ("401 for user camadmin on rtsp://camadmin:s3cret@host/",
                 "rtsp://camadmin:s3cret@host/", "", ""),
      "401 for user *** on rtsp://***@host/");
  EXPECT_EQ (redact_text ("user 'viewer' unknown; password s3cret", "rtsp://host/", "viewer",
                 "s3cret"),
      "user '***' unknown; password ***");
  // Percent-encoded in the URI, decoded in the message, and the other way.
  EXPECT_EQ (redact_text ("no user j.doe@corp", "rtsp://j.doe%40corp:pw@host/", "", ""),
      "no user ***");
  EXPECT_EQ (redact_text ("user j.doe%40corp", "rtsp://j.doe%40corp:pw@host/", "", ""),
      "user ***");
  // A name only where it stands as a word.
  EXPECT_EQ (redact_text ("a camera at 10.0.0.1 refused a", "rtsp://a:pw@host/", "", ""),
      "*** camera at 10.0.0.1 refused ***");
  EXPECT_EQ (redact_text ("administrator, admin2 and admin", "rtsp://host/", "admin", ""),
      "administrator, admin2 and ***");
  // A user without password, and an empty user, which is no secret.
  EXPECT_EQ (redact_text ("bad user bob", "rtsp://bob@host/", "", ""), "bad user ***");
  EXPECT_EQ (redact_text ("text", "rtsp://:pw@host/", "", ""), "text");
  EXPECT_EQ (redact_text ("text pw", "rtsp://@host/", "", "pw"), "text ***");
}

// And the element uses it on what it reports: a user-id quoted in a child's
// error (here a test:// key of that name: the location itself is reported
// as it is, only its user information removed) is in no reason and no stat.
TEST (CameraSrcContract, TheUserNameIsInNoReason)
{
  TestPipeline p;
  ASSERT_TRUE (launch_camera (p, "test://cam?camadmin=1", "user-id=camadmin user-pw=s3cret"));
  ASSERT_TRUE (p.play ());
  ASSERT_TRUE (p.wait_state ("reconnecting", 5s)) << p.describe_messages ();
  auto stats = get_stats (p.by_name ("cam"));
  const std::string last_error = stat_string (stats.get (), names::STAT_LAST_ERROR);
  EXPECT_NE (last_error.find ("key '***'"), std::string::npos) << last_error;
  EXPECT_EQ (last_error.find ("camadmin"), std::string::npos) << last_error;
  EXPECT_LT (stop_bounded (p), 1.0);
  for (const auto &m : p.state_messages ())
    EXPECT_EQ (m.reason.find ("camadmin"), std::string::npos) << m.reason;
}

// ---- precise reasons ----------------------------------------------------------------

// An HTTP camera whose name does not resolve: the reason says so, not the
// "Internal data stream error" that follows it.  (.invalid never resolves:
// RFC 2606; no network is needed to fail.)
TEST (CameraSrcContract, AnUnresolvedHttpHostIsTheReason)
{
  TestPipeline p;
  ASSERT_TRUE (launch_camera (p, "http://nonexistent.invalid/video.mjpg",
      "retry-delay=2000000000 retry-delay-max=2000000000"));
  ASSERT_TRUE (p.play ());
  ASSERT_TRUE (p.wait_state ("reconnecting", 10s)) << p.describe_messages ();
  const auto messages = p.state_messages ();
  std::string reason;
  for (const auto &m : messages)
    if (m.state == "reconnecting")
      reason = m.reason;
  std::fprintf (stderr, "reason: %s\n", reason.c_str ());
  EXPECT_NE (reason.find ("resolv"), std::string::npos) << reason;
  EXPECT_NE (reason.find ("nonexistent.invalid"), std::string::npos) << reason;
  EXPECT_EQ (reason.find ("Internal data stream error"), std::string::npos) << reason;
  EXPECT_LT (stop_bounded (p), 1.0);
}

namespace {

// Every message of the camerasrc debug category, at LOG level, while alive.
class CameraSrcLog {
 public:
  CameraSrcLog ()
  {
    gst_debug_set_active (TRUE);
    gst_debug_set_threshold_for_name ("camerasrc", GST_LEVEL_LOG);
    gst_debug_remove_log_function (gst_debug_log_default);
    gst_debug_add_log_function (on_log, this, nullptr);
  }
  ~CameraSrcLog ()
  {
    gst_debug_remove_log_function (on_log);
    gst_debug_add_log_function (gst_debug_log_default, nullptr, nullptr);
    gst_debug_unset_threshold_for_name ("camerasrc");
  }
  std::vector<std::string> lines () const
  {
    std::lock_guard<std::mutex> lock (mutex_);
    return lines_;
  }

 private:
  static void on_log (GstDebugCategory *category, GstDebugLevel, const gchar *, const gchar *,
      gint, GObject *, GstDebugMessage *message, gpointer user_data)
  {
    auto *self = static_cast<CameraSrcLog *> (user_data);
    if (std::strcmp (gst_debug_category_get_name (category), "camerasrc") != 0)
      return;
    const gchar *text = gst_debug_message_get (message);
    std::lock_guard<std::mutex> lock (self->mutex_);
    self->lines_.push_back (text ? text : "");
  }

  mutable std::mutex mutex_;
  std::vector<std::string> lines_;
};

}  // namespace

// Credentials quoted in a child's error on the bus (here filesrc's "no such
// file", whose path holds them): none of them in camerasrc's own debug
// output, even at LOG level.
TEST (CameraSrcContract, CredentialsAreNotInTheElementsDebugOutput)
{
  CameraSrcLog log;
  TestPipeline p;
  const std::string location = "file:///nonexistent/Secr3tPw/viewer.mp4";
  ASSERT_TRUE (launch_camera (p, location, "user-id=viewer user-pw=Secr3tPw"));
  ASSERT_TRUE (p.play ());
  ASSERT_TRUE (p.wait_state ("reconnecting", 5s)) << p.describe_messages ();
  EXPECT_LT (stop_bounded (p), 1.0);
  const auto lines = log.lines ();
  bool quoted = false;
  for (std::string line : lines) {
    // The location itself is reported as it was set (it has no user
    // information); only here does it hold the secrets.
    for (size_t at = line.find (location); at != std::string::npos; at = line.find (location))
      line.erase (at, location.size ());
    EXPECT_EQ (line.find ("Secr3tPw"), std::string::npos) << line;
    EXPECT_EQ (line.find ("viewer"), std::string::npos) << line;
    quoted = quoted || line.find ("/nonexistent/***/***.mp4") != std::string::npos;
  }
  EXPECT_TRUE (quoted) << "the child's error is not in the log";
}

// ---- backoff reset --------------------------------------------------------------------

// A camera that drops 0.6 s into every connection: with the default reset
// time, faults pile up (attempt 1, 2, 3, backoff doubling from retry-delay).
// With retry-reset-time at 0.2 s, a connection that streamed longer ends in
// a fault that counts as the first again: attempt 1, retry-delay ±20%.
TEST (CameraSrcContract, BackoffRestartsAfterRetryResetTimeOfStreaming)
{
  constexpr guint64 kDelay = 100 * GST_MSECOND;
  TestPipeline p;
  ASSERT_TRUE (launch_camera (p, "test://cam?width=160&height=120&gop=5&drop-after=0.6",
      "retry-delay=100000000 retry-delay-max=1600000000"));
  GstElement *camerasrc = p.by_name ("cam");
  GParamSpec *pspec = g_object_class_find_property (G_OBJECT_GET_CLASS (camerasrc),
      "retry-reset-time");
  ASSERT_NE (pspec, nullptr) << "no retry-reset-time property";
  ASSERT_EQ (G_PARAM_SPEC_VALUE_TYPE (pspec), G_TYPE_UINT64);
  EXPECT_EQ (G_PARAM_SPEC_UINT64 (pspec)->default_value, 60 * GST_SECOND);
  ASSERT_TRUE (p.play ());

  auto faults = [&p] {
    std::vector<MessageRecord> out;
    for (const auto &m : p.state_messages ())
      if (m.state == "reconnecting")
        out.push_back (m);
    return out;
  };
  ASSERT_TRUE (p.wait_state ("reconnecting", 15s, 0, 3)) << p.describe_messages ();
  auto before = faults ();
  for (size_t i = 0; i < 3; i++) {
    EXPECT_EQ (before[i].attempt, i + 1) << before[i].text;
    const double expected = double (kDelay << i);
    EXPECT_GE (double (before[i].retry_in), 0.8 * expected) << before[i].text;
    EXPECT_LE (double (before[i].retry_in), 1.2 * expected) << before[i].text;
  }

  g_object_set (camerasrc, "retry-reset-time", static_cast<guint64> (200 * GST_MSECOND), nullptr);
  // The next connection streams 0.6 s, longer than that: its fault is a
  // first one.  (The one under way may already count double.)
  const size_t from = next_state_index (p);
  ASSERT_TRUE (p.wait_state ("reconnecting", 15s, from, 2)) << p.describe_messages ();
  const auto after = faults ();
  const MessageRecord &reset = after.back ();
  EXPECT_EQ (reset.attempt, 1u) << reset.text;
  EXPECT_GE (double (reset.retry_in), 0.8 * kDelay) << reset.text;
  EXPECT_LE (double (reset.retry_in), 1.2 * kDelay) << reset.text;
  EXPECT_LT (stop_bounded (p), 1.0);
}

// ---- no lock of camerasrc's held while it pushes ------------------------------

namespace {

// Holds the manager thread inside its push of a fallback picture into the
// video output (appsrc's "queueing buffer", on the thread that logged
// "sending a fallback picture" while a new session was connecting), for at
// most `hold`, and watches whether the camera's streaming thread gets its
// frames through camerasrc meanwhile (the stats' frames grow).  An element
// that holds a lock of its own while it pushes keeps the camera's thread
// waiting for the whole hold.
class PushHold {
 public:
  PushHold (GstElement *camerasrc, std::chrono::milliseconds hold)
      : camerasrc_ (GST_ELEMENT (gst_object_ref (camerasrc))),
        output_ (gst_bin_get_by_name (GST_BIN (camerasrc), "video_output")), hold_ (hold)
  {
    gst_debug_set_threshold_for_name ("camerasrc", GST_LEVEL_LOG);
    gst_debug_set_threshold_for_name ("appsrc", GST_LEVEL_DEBUG);
    gst_debug_remove_log_function (gst_debug_log_default);
    gst_debug_add_log_function (on_log, this, nullptr);
  }
  ~PushHold ()
  {
    gst_debug_remove_log_function (on_log);
    gst_debug_add_log_function (gst_debug_log_default, nullptr, nullptr);
    gst_debug_unset_threshold_for_name ("camerasrc");
    gst_debug_unset_threshold_for_name ("appsrc");
    gst_object_unref (output_);
    gst_object_unref (camerasrc_);
  }
  int holds () const { return holds_; }
  int blocked () const { return blocked_; }

 private:
  static void on_log (GstDebugCategory *category, GstDebugLevel, const gchar *, const gchar *,
      gint, GObject *object, GstDebugMessage *message, gpointer user_data)
  {
    auto *self = static_cast<PushHold *> (user_data);
    const char *name = gst_debug_category_get_name (category);
    const gchar *text = gst_debug_message_get (message);
    if (!text)
      return;
    if (std::strcmp (name, "camerasrc") == 0 && g_str_has_prefix (text, "sending a fallback")) {
      // Only while a session is connecting: its frames may come meanwhile.
      if (self->holds_ == 0 && state_property (self->camerasrc_) == "connecting") {
        std::lock_guard<std::mutex> lock (self->mutex_);
        self->manager_ = g_thread_self ();
      }
      return;
    }
    if (std::strcmp (name, "appsrc") != 0 || object != G_OBJECT (self->output_)
        || !g_str_has_prefix (text, "queueing buffer"))
      return;
    {
      std::lock_guard<std::mutex> lock (self->mutex_);
      if (g_thread_self () != self->manager_)
        return;
      self->manager_ = nullptr;
    }
    const guint64 before = stat_u64 (get_stats (self->camerasrc_).get (), names::STAT_FRAMES);
    const auto until = SteadyClock::now () + self->hold_;
    bool through = false;
    while (!through && SteadyClock::now () < until) {
      // Polling a counter: the camera's thread signals nothing of its own.
      std::this_thread::sleep_for (10ms);
      through = stat_u64 (get_stats (self->camerasrc_).get (), names::STAT_FRAMES) > before;
    }
    std::fprintf (stderr, "held the manager's push: the camera's frames %s\n",
        through ? "went on" : "waited");
    self->blocked_ += !through;
    self->holds_++;
  }

  GstElement *camerasrc_;
  GstElement *output_;
  std::chrono::milliseconds hold_;
  std::mutex mutex_;
  GThread *manager_ = nullptr;
  std::atomic<int> holds_{0};
  std::atomic<int> blocked_{0};
};

}  // namespace

// The manager's fallback picture and the camera's first frames of a new
// session race into the same output.  While the manager is inside its push
// (held there by PushHold), the camera's streaming thread must not wait for
// it: camerasrc holds no lock of its own while it pushes.
TEST (CameraSrcContract, TheCamerasThreadNeverWaitsForTheManagersPush)
{
  FakeRtspCamera camera;
  ASSERT_TRUE (camera.start ());
  TcpProxy proxy (camera.port ());
  ASSERT_TRUE (proxy.start ());
  TestPipeline p;
  ASSERT_TRUE (launch_camera (p, "rtsp://127.0.0.1:" + std::to_string (proxy.port ()) + "/cam",
      "fallback=freeze fallback-interval=10000000 retry-delay=1000000 retry-delay-max=2000000"));
  {
    PushHold hold (p.by_name ("cam"), 3s);
    ASSERT_TRUE (p.play ());
    ASSERT_TRUE (p.wait_state ("streaming", 10s)) << p.describe_messages ();
    // Outages until one fallback picture went out while a session connected.
    for (int outage = 0; outage < 8 && hold.holds () == 0; outage++) {
      const size_t from = p.state_messages ().size ();
      proxy.reset_connections ();
      ASSERT_TRUE (p.wait_state ("streaming", 15s, from)) << p.describe_messages ();
    }
    EXPECT_LT (stop_bounded (p), 1.0);
    EXPECT_GT (hold.holds (), 0) << "no fallback picture went out while the camera reconnected";
    EXPECT_EQ (hold.blocked (), 0) << "the camera's streaming thread waited for the manager's push";
  }
  EXPECT_TRUE (p.messages_of (GST_MESSAGE_ERROR).empty ()) << p.describe_messages ();
}
