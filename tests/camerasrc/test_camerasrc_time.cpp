// camerasrc where time is the subject (the backoff, the stall timeout, the
// fallback pace), driven by a GstTestClock set on the pipeline: the manager
// waits on an entry of the element's clock and the test moves that clock, so
// every deadline is checked to the nanosecond.  The cameras are real (fake
// cameras on 127.0.0.1); only the element's time is frozen.
#include <gst/check/gsttestclock.h>
#include <gst/gst.h>
#include <gtest/gtest.h>

#include "camerasrc_test_util.h"

using namespace camtest;

namespace {

using TestClockPtr = camrelay::ObjectPtr<GstTestClock>;
using ClockIdRef = camrelay::UniqueRef<void, gst_clock_id_unref>;

// Where the test clock starts: any time will do, not 0.
constexpr GstClockTime kStart = 1000 * GST_SECOND;
constexpr auto kWait = std::chrono::milliseconds (10000);

// A camerasrc pipeline whose clock is a GstTestClock (frozen until moved).
class ClockedCamera {
 public:
  ClockedCamera () : clock_ (GST_TEST_CLOCK (gst_test_clock_new_with_start_time (kStart))) {}

  bool launch (const std::string &location, const std::string &extra)
  {
    if (!launch_camera (p, location, extra))
      return false;
    gst_pipeline_use_clock (GST_PIPELINE (p.pipeline ()), GST_CLOCK (clock_.get ()));
    return true;
  }

  GstTestClock *clock () const { return clock_.get (); }
  GstClockTime now () const { return gst_clock_get_time (GST_CLOCK (clock_.get ())); }

  // The entry the manager waits on (10 s at most for one to be there).
  ClockIdRef pending_entry () const
  {
    if (!gst_test_clock_timed_wait_for_multiple_pending_ids (clock_.get (), 1, 10000, nullptr))
      return nullptr;
    GstClockID id = nullptr;
    if (!gst_test_clock_peek_next_pending_id (clock_.get (), &id))
      return nullptr;
    return ClockIdRef (id);
  }

  GstClockTime pending_time () const
  {
    ClockIdRef id = pending_entry ();
    return id ? gst_clock_id_get_time (id.get ()) : GST_CLOCK_TIME_NONE;
  }

  // Wakes the manager without moving its clock (setting `timeout` does) and
  // returns the time of the entry it waits on next, once it has armed it.
  GstClockTime poke ()
  {
    ClockIdRef before = pending_entry ();  // our reference: its address is not reused
    if (!before)
      return GST_CLOCK_TIME_NONE;
    GstElement *cam = p.by_name ("cam");
    guint64 timeout = 0;
    g_object_get (cam, "timeout", &timeout, nullptr);
    g_object_set (cam, "timeout", timeout, nullptr);
    const auto give_up = SteadyClock::now () + kWait;
    while (SteadyClock::now () < give_up) {
      ClockIdRef next = pending_entry ();
      if (next && next.get () != before.get ())
        return gst_clock_id_get_time (next.get ());
      g_usleep (1000);  // the test clock has no signal for a replaced entry
    }
    return GST_CLOCK_TIME_NONE;
  }

  // Moves the clock to the entry the manager waits on and fires it; false
  // when the manager waits on none (gst_test_clock_crank would wait forever).
  bool crank ()
  {
    if (!gst_test_clock_timed_wait_for_multiple_pending_ids (clock_.get (), 1, 10000, nullptr))
      return false;
    return gst_test_clock_crank (clock_.get ());
  }

  TestPipeline p;  // after the clock: stopped before it goes

 private:
  TestClockPtr clock_;
};

MessageRecord
state_message (const TestPipeline &p, size_t index)
{
  auto messages = p.state_messages ();
  return index < messages.size () ? messages[index] : MessageRecord ();
}

// The camera's frames sent so far have all reached the sink (the camera is
// stalled, so no more come).
bool
drain (TestPipeline &p, const FakeMjpegCamera &camera)
{
  for (int i = 0; i < 100; i++) {
    const guint64 sent = camera.frames_sent ();
    if (!p.wait_frames (sent, kWait))
      return false;
    if (camera.frames_sent () == sent)
      return true;
  }
  return false;
}

}  // namespace

// The backoff delay is honoured on the element's clock: the attempt is due
// exactly retry-in after the fault, not a nanosecond before, and made at it;
// the next delay doubles from there.
TEST (CameraSrcTime, BackoffDelayIsHonouredOnThePipelineClock)
{
  const guint16 port = closed_port ();
  ClockedCamera c;
  ASSERT_TRUE (c.launch ("rtsp://127.0.0.1:" + std::to_string (port) + "/cam",
      "retry-delay=1000000000 retry-delay-max=8000000000 connect-timeout=30000000000"));
  ASSERT_TRUE (c.p.play ());

  // Attempt 1 is refused at once (real time): reconnecting, the clock still at kStart.
  ASSERT_TRUE (c.p.wait_state ("reconnecting", kWait)) << c.p.describe_messages ();
  size_t index = c.p.state_messages ().size () - 1;
  const MessageRecord first = state_message (c.p, index);
  EXPECT_EQ (first.attempt, 1u);
  EXPECT_GE (first.retry_in, 800 * GST_MSECOND);
  EXPECT_LE (first.retry_in, 1200 * GST_MSECOND);
  const GstClockTime fault_at = c.now ();
  ASSERT_EQ (fault_at, kStart);
  const GstClockTime retry_at = fault_at + first.retry_in;
  EXPECT_EQ (c.pending_time (), retry_at);

  // One nanosecond before: the manager, woken, still waits for retry_at.
  gst_test_clock_set_time (c.clock (), retry_at - 1);
  EXPECT_EQ (c.poke (), retry_at);
  EXPECT_EQ (state_property (c.p.by_name ("cam")), "reconnecting");
  EXPECT_EQ (c.p.state_messages ().size (), index + 1) << c.p.describe_messages ();

  // At retry_at: the next attempt.
  ASSERT_TRUE (c.crank ());
  EXPECT_EQ (c.now (), retry_at);
  ASSERT_TRUE (c.p.wait_state ("connecting", kWait, index + 1)) << c.p.describe_messages ();
  ASSERT_TRUE (c.p.wait_state ("reconnecting", kWait, index + 1)) << c.p.describe_messages ();
  index = c.p.state_messages ().size () - 1;
  const MessageRecord second = state_message (c.p, index);
  EXPECT_EQ (second.attempt, 2u);
  EXPECT_GE (second.retry_in, 1600 * GST_MSECOND);
  EXPECT_LE (second.retry_in, 2400 * GST_MSECOND);
  EXPECT_EQ (c.pending_time (), retry_at + second.retry_in);
  ASSERT_TRUE (c.crank ());
  EXPECT_EQ (c.now (), retry_at + second.retry_in);
  EXPECT_TRUE (c.p.wait_state ("connecting", kWait, index + 1)) << c.p.describe_messages ();
  expect_valid_state_chain (c.p);
}

// A stall is found exactly `timeout` after the last frame, on the element's
// clock: not at it, one nanosecond past it.
TEST (CameraSrcTime, StallIsDetectedAtLastFramePlusTimeout)
{
  FakeMjpegCamera camera;
  ASSERT_TRUE (camera.start ());
  constexpr GstClockTime kTimeout = 2 * GST_SECOND;
  ClockedCamera c;
  ASSERT_TRUE (c.launch (camera.uri (), "timeout=" + std::to_string (kTimeout)
      + " connect-timeout=30000000000 retry-delay=1000000000"));
  ASSERT_TRUE (c.p.play ());
  ASSERT_TRUE (c.p.wait_state ("streaming", kWait)) << c.p.describe_messages ();
  const size_t index = c.p.state_messages ().size () - 1;

  // Every frame came at kStart (the clock has not moved): the last too.
  camera.stall ();
  ASSERT_TRUE (drain (c.p, camera));
  const GstClockTime last_frame = c.now ();
  ASSERT_EQ (last_frame, kStart);
  EXPECT_EQ (c.pending_time (), last_frame + kTimeout + 1);

  // At last frame + timeout exactly: still streaming.
  gst_test_clock_set_time (c.clock (), last_frame + kTimeout);
  EXPECT_EQ (c.poke (), last_frame + kTimeout + 1);
  EXPECT_EQ (state_property (c.p.by_name ("cam")), "streaming");
  EXPECT_EQ (c.p.state_messages ().size (), index + 1) << c.p.describe_messages ();

  // Past it: the stall.
  ASSERT_TRUE (c.crank ());
  EXPECT_EQ (c.now (), last_frame + kTimeout + 1);
  ASSERT_TRUE (c.p.wait_state ("reconnecting", kWait, index + 1)) << c.p.describe_messages ();
  EXPECT_EQ (state_message (c.p, index + 1).reason, "stalled: no video for 2000 ms");
  expect_valid_state_chain (c.p);
}

// While the camera is away, one fallback picture per fallback-interval of
// the element's clock, the first one interval after the camera was lost,
// each stamped one interval after the one before.
TEST (CameraSrcTime, FallbackPicturesKeepTheirPace)
{
  FakeMjpegCamera camera;
  ASSERT_TRUE (camera.start ());
  constexpr GstClockTime kInterval = 500 * GST_MSECOND;
  ClockedCamera c;
  ASSERT_TRUE (c.launch (camera.uri (), "fallback=freeze fallback-interval="
      + std::to_string (kInterval)
      + " retry-delay=30000000000 retry-delay-max=30000000000 connect-timeout=30000000000"));
  ASSERT_TRUE (c.p.play ());
  ASSERT_TRUE (c.p.wait_state ("streaming", kWait)) << c.p.describe_messages ();
  camera.stop ();
  ASSERT_TRUE (c.p.wait_state ("reconnecting", kWait)) << c.p.describe_messages ();
  const GstClockTime lost_at = c.now ();
  ASSERT_EQ (lost_at, kStart);
  const size_t camera_frames = c.p.frame_count ();
  GstElement *cam = c.p.by_name ("cam");

  std::vector<GstClockTime> pts;
  for (guint64 k = 1; k <= 3; k++) {
    EXPECT_EQ (c.pending_time (), lost_at + k * kInterval) << "picture " << k;
    ASSERT_TRUE (c.crank ());
    ASSERT_TRUE (c.p.wait_frames (camera_frames + k, kWait)) << "picture " << k;
    camrelay::StructurePtr stats = get_stats (cam);
    EXPECT_EQ (stat_u64 (stats.get (), names::STAT_FALLBACK_FRAMES), k);
    pts.push_back (c.p.frames ().back ().pts);
  }
  EXPECT_EQ (c.p.frame_count (), camera_frames + 3);
  EXPECT_EQ (pts[1] - pts[0], kInterval);
  EXPECT_EQ (pts[2] - pts[1], kInterval);
  EXPECT_EQ (state_property (cam), "reconnecting");
}

// A camera that goes silent with its connection open is late before it is
// stalled: fallback pictures start fallback-after past the last frame (not
// at `timeout`), the first a DISCONT keyframe, then one per interval, the
// state still `streaming`; the stall is still found at `timeout` and the
// camera reconnected, and the pictures keep their pace through it.
TEST (CameraSrcTime, FallbackStartsAtFallbackAfterWhileTheCameraIsLate)
{
  FakeMjpegCamera camera;
  ASSERT_TRUE (camera.start ());
  constexpr GstClockTime kTimeout = 2 * GST_SECOND;
  constexpr GstClockTime kAfter = 500 * GST_MSECOND;
  constexpr GstClockTime kInterval = 400 * GST_MSECOND;
  ClockedCamera c;
  ASSERT_TRUE (c.launch (camera.uri (), "fallback=freeze timeout=" + std::to_string (kTimeout)
      + " fallback-after=" + std::to_string (kAfter) + " fallback-interval="
      + std::to_string (kInterval)
      + " connect-timeout=30000000000 retry-delay=30000000000 retry-delay-max=30000000000"));
  ASSERT_TRUE (c.p.play ());
  ASSERT_TRUE (c.p.wait_state ("streaming", kWait)) << c.p.describe_messages ();
  const size_t index = c.p.state_messages ().size () - 1;
  GstElement *cam = c.p.by_name ("cam");

  camera.stall ();
  ASSERT_TRUE (drain (c.p, camera));
  const GstClockTime last_frame = c.now ();
  ASSERT_EQ (last_frame, kStart);
  const size_t camera_frames = c.p.frame_count ();

  // Pictures at +0.5, 0.9, 1.3 and 1.7 s: before the stall, still streaming.
  guint64 k = 0;
  for (; last_frame + kAfter + k * kInterval <= last_frame + kTimeout; k++) {
    ASSERT_EQ (c.pending_time (), last_frame + kAfter + k * kInterval) << "picture " << k;
    ASSERT_TRUE (c.crank ());
    ASSERT_TRUE (c.p.wait_frames (camera_frames + k + 1, kWait)) << "picture " << k;
    const FrameRecord picture = c.p.frames ().back ();
    EXPECT_TRUE (picture.keyframe) << "picture " << k;
    EXPECT_EQ (picture.discont, k == 0) << "picture " << k;
    camrelay::StructurePtr stats = get_stats (cam);
    EXPECT_EQ (stat_u64 (stats.get (), names::STAT_FALLBACK_FRAMES), k + 1);
    EXPECT_EQ (state_property (cam), "streaming");
  }
  ASSERT_EQ (k, 4u);
  EXPECT_EQ (c.p.state_messages ().size (), index + 1) << c.p.describe_messages ();

  // The stall, at `timeout` as before: reconnecting.
  ASSERT_EQ (c.pending_time (), last_frame + kTimeout + 1);
  ASSERT_TRUE (c.crank ());
  ASSERT_TRUE (c.p.wait_state ("reconnecting", kWait, index + 1)) << c.p.describe_messages ();
  EXPECT_EQ (state_message (c.p, index + 1).reason, "stalled: no video for 2000 ms");

  // The pictures go on at their pace, with no second DISCONT.
  EXPECT_EQ (c.pending_time (), last_frame + kAfter + k * kInterval);
  ASSERT_TRUE (c.crank ());
  ASSERT_TRUE (c.p.wait_frames (camera_frames + k + 1, kWait));
  auto frames = c.p.frames ();
  EXPECT_FALSE (frames.back ().discont);
  for (size_t i = 1; i < frames.size (); i++)
    EXPECT_GT (frames[i].pts, frames[i - 1].pts) << "frame " << i;
  expect_valid_state_chain (c.p);
}

// fallback-after=0: as before it existed, nothing goes out until the stall
// is found at `timeout`, and the pictures start one interval after it.
TEST (CameraSrcTime, FallbackAfterZeroWaitsForTheStall)
{
  FakeMjpegCamera camera;
  ASSERT_TRUE (camera.start ());
  constexpr GstClockTime kTimeout = 2 * GST_SECOND;
  constexpr GstClockTime kInterval = 400 * GST_MSECOND;
  ClockedCamera c;
  ASSERT_TRUE (c.launch (camera.uri (), "fallback=freeze fallback-after=0 timeout="
      + std::to_string (kTimeout) + " fallback-interval=" + std::to_string (kInterval)
      + " connect-timeout=30000000000 retry-delay=30000000000 retry-delay-max=30000000000"));
  ASSERT_TRUE (c.p.play ());
  ASSERT_TRUE (c.p.wait_state ("streaming", kWait)) << c.p.describe_messages ();
  const size_t index = c.p.state_messages ().size () - 1;
  GstElement *cam = c.p.by_name ("cam");

  camera.stall ();
  ASSERT_TRUE (drain (c.p, camera));
  const GstClockTime last_frame = c.now ();
  ASSERT_EQ (last_frame, kStart);
  const size_t camera_frames = c.p.frame_count ();

  ASSERT_EQ (c.pending_time (), last_frame + kTimeout + 1);
  ASSERT_TRUE (c.crank ());
  ASSERT_TRUE (c.p.wait_state ("reconnecting", kWait, index + 1)) << c.p.describe_messages ();
  EXPECT_EQ (c.p.frame_count (), camera_frames);
  camrelay::StructurePtr stats = get_stats (cam);
  EXPECT_EQ (stat_u64 (stats.get (), names::STAT_FALLBACK_FRAMES), 0u);

  EXPECT_EQ (c.pending_time (), last_frame + kTimeout + 1 + kInterval);
  ASSERT_TRUE (c.crank ());
  ASSERT_TRUE (c.p.wait_frames (camera_frames + 1, kWait));
  EXPECT_TRUE (c.p.frames ().back ().discont);
}

// The camera resumes on the same connection, mid-GOP, after fallback
// pictures began but before `timeout`: its delta frames (whose reference
// the decoders no longer hold) wait for its keyframe, which goes out
// DISCONT; no picture lands amid its frames and the timestamps increase.
// Over RTSP, whose jitterbuffer waits on the pipeline's clock: on the real
// clock.
TEST (CameraSrcTime, CameraBackBeforeTimeoutResumesOnAKeyframe)
{
  RtspCameraOptions options;
  options.fps = 30;
  options.gop = 30;
  FakeRtspCamera camera (options);
  ASSERT_TRUE (camera.start ());
  TestPipeline p;
  ASSERT_TRUE (launch_camera (p, camera.uri (), "fallback=freeze timeout=30000000000 "
      "fallback-after=300000000 fallback-interval=100000000 retry-delay=30000000000 "
      "retry-delay-max=30000000000 connect-timeout=30000000000"));
  ASSERT_TRUE (p.play ());
  ASSERT_TRUE (p.wait_state ("streaming", kWait)) << p.describe_messages ();
  ASSERT_TRUE (p.wait_frames (10, kWait));
  GstElement *cam = p.by_name ("cam");

  // Silent: pictures while still streaming.
  camera.stall ();
  auto fallback_frames = [cam] {
    camrelay::StructurePtr stats = get_stats (cam);
    return stat_u64 (stats.get (), names::STAT_FALLBACK_FRAMES);
  };
  const auto give_up = SteadyClock::now () + kWait;
  while (fallback_frames () < 3 && SteadyClock::now () < give_up)
    g_usleep (10000);
  ASSERT_GE (fallback_frames (), 3u);
  EXPECT_EQ (state_property (cam), "streaming");

  // Back mid-GOP: wait for its frames to go out again (a delta after the
  // pictures).
  camera.resume ();
  const size_t before = p.frame_count ();
  bool live = false;
  while (!live && SteadyClock::now () < give_up + kWait) {
    p.wait_frames (p.frame_count () + 1, std::chrono::milliseconds (200));
    auto frames = p.frames ();
    for (size_t i = before; i < frames.size () && !live; i++)
      live = !frames[i].keyframe;
  }
  ASSERT_TRUE (live);
  EXPECT_EQ (state_property (cam), "streaming");
  camrelay::StructurePtr stats = get_stats (cam);
  EXPECT_EQ (stat_u64 (stats.get (), names::STAT_RECONNECTS), 0u);

  // A fallback picture repeats a keyframe that went out before.
  auto frames = p.frames ();
  std::set<guint64> seen;
  std::vector<bool> repeat (frames.size (), false);
  for (size_t i = 0; i < frames.size (); i++) {
    repeat[i] = frames[i].keyframe && seen.count (frames[i].checksum);
    seen.insert (frames[i].checksum);
  }
  size_t first = 0;
  while (first < frames.size () && !repeat[first])
    first++;
  ASSERT_LT (first, frames.size ());
  EXPECT_TRUE (frames[first].discont) << "the first fallback picture, frame " << first;
  for (size_t i = first + 1; i < frames.size (); i++) {
    auto key = [&frames] (size_t j) {
      return GST_CLOCK_TIME_IS_VALID (frames[j].dts) ? frames[j].dts : frames[j].pts;
    };
    EXPECT_GT (key (i), key (i - 1)) << "frame " << i;
    if (repeat[i - 1] && !repeat[i]) {
      EXPECT_TRUE (frames[i].keyframe) << "the camera's first frame after pictures, " << i;
      EXPECT_TRUE (frames[i].discont) << "the camera's first frame after pictures, " << i;
    }
    if (repeat[i] && !repeat[i - 1]) {
      EXPECT_TRUE (frames[i].discont) << "a picture amid the camera's frames, " << i;
    }
  }
}
