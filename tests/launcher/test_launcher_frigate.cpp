// ffmpeg run exactly as Frigate runs it against camrelay, through a camera
// stall, a camera reboot and a burst of garbage: ffmpeg must never exit and
// must decode the fallback picture during each outage and live video after it.
#include <algorithm>
#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "fake_camera.h"
#include "ffmpeg_client.h"

namespace {

using namespace camrelay::launcher_test;

// Frigate's input arguments (its default global arguments and its
// "preset-rtsp-generic" input preset): a 5 s socket timeout, after which
// ffmpeg gives up and Frigate restarts it, losing recording and detection.
std::vector<std::string>
frigate_args (const std::string &url)
{
  std::vector<std::string> args{"-hide_banner", "-loglevel", "warning", "-threads", "2",
      "-avoid_negative_ts", "make_zero", "-fflags", "+genpts+discardcorrupt", "-rtsp_transport",
      "tcp", "-timeout", "5000000", "-use_wallclock_as_timestamps", "1", "-i", url};
  // Frigate's own output (-f rawvideo -pix_fmt yuv420p pipe:, after an fps
  // filter) is replaced by one line per decoded picture: the input side,
  // what decides whether ffmpeg survives, is Frigate's.
  for (const std::string &a : framemd5_output ())
    args.push_back (a);
  return args;
}

// Consecutive pictures that all differ from the one before: the camera's
// moving ball.  The fallback repeats one picture every 0.5 s, so even a few
// such pictures in a row can only be the camera's.
constexpr size_t LIVE_RUN = 15;
// The longest a client may go without a picture while the camera is away:
// the fallback's first picture comes 0.5 s after the camera's last frame and
// the next every 0.5 s (docs/configuration.md); ffmpeg gives up after 5 s.
constexpr auto MAX_GAP = 2500ms;

// When LIVE_RUN pictures in a row, all decoded after `since`, each differing
// from the one before, were complete; nullopt if they are not (yet).
std::optional<Clock::time_point>
live_time (const std::vector<DecodedFrame> &frames, Clock::time_point since)
{
  size_t run = 0;
  for (size_t i = 1; i < frames.size (); i++) {
    if (frames[i].arrived < since)
      continue;
    run = frames[i].md5 != frames[i - 1].md5 ? run + 1 : 0;
    if (run >= LIVE_RUN)
      return frames[i].arrived;
  }
  return std::nullopt;
}

bool
live_since (const std::vector<DecodedFrame> &frames, Clock::time_point since)
{
  return live_time (frames, since).has_value ();
}

// The longest time between two pictures decoded in [from, to].
std::chrono::milliseconds
longest_gap (const std::vector<DecodedFrame> &frames, Clock::time_point from, Clock::time_point to)
{
  Clock::duration longest{0};
  Clock::time_point previous = from;
  for (const DecodedFrame &f : frames) {
    if (f.arrived < from)
      continue;
    if (f.arrived > to)
      break;
    longest = std::max (longest, f.arrived - previous);
    previous = f.arrived;
  }
  longest = std::max (longest, to - previous);
  return std::chrono::duration_cast<std::chrono::milliseconds> (longest);
}

// What ffmpeg decoded while the camera was away.
struct Window {
  size_t pictures = 0;
  size_t most_repeated = 0;  // how many of them are the most frequent picture
};

Window
window (const std::vector<DecodedFrame> &frames, Clock::time_point from, Clock::time_point to)
{
  Window w;
  std::map<std::string, size_t> counts;
  for (size_t i = 1; i < frames.size (); i++) {
    if (frames[i].arrived < from || frames[i].arrived > to)
      continue;
    w.pictures++;
    w.most_repeated = std::max (w.most_repeated, ++counts[frames[i].md5]);
  }
  return w;
}

// The pictures decoded from 1 s before `t` on: time from `t`, MD5.
std::string
describe (const std::vector<DecodedFrame> &frames, Clock::time_point t)
{
  std::string text;
  for (const DecodedFrame &f : frames)
    if (f.arrived > t - 1s)
      text += std::to_string (std::chrono::duration_cast<std::chrono::milliseconds> (f.arrived - t).count ())
          + " ms " + f.md5 + "\n";
  return text;
}

double
seconds_between (Clock::time_point from, Clock::time_point to)
{
  return std::chrono::duration<double> (to - from).count ();
}

class FrigateTest : public ::testing::Test {
 protected:
  void SetUp () override
  {
    if (!have_program ("ffmpeg"))
      GTEST_SKIP () << "ffmpeg is not installed (Debian package ffmpeg)";
    camtest::RtspCameraOptions options;
    options.width = 320;
    options.height = 240;
    camera_ = std::make_unique<camtest::FakeRtspCamera> (options);
    ASSERT_TRUE (camera_->start ());
    // camrelay reaches the camera through a relay that can inject garbage.
    proxy_ = std::make_unique<camtest::TcpProxy> (camera_->port ());
    ASSERT_TRUE (proxy_->start ());
    config_ = write_config (config_text (camera_entry (
        "cam", "rtsp://127.0.0.1:" + std::to_string (proxy_->port ()) + "/cam")));
    camrelay_ = std::make_unique<Launcher> (std::vector<std::string>{"-c", config_});
    port_ = camrelay_->rtsp_port ();
    ASSERT_GT (port_, 0) << camrelay_->all_output ();
  }

  void TearDown () override
  {
    if (camrelay_)
      expect_clean_stop (*camrelay_, config_);
    camrelay_.reset ();
    if (proxy_)
      proxy_->stop ();
    if (camera_)
      camera_->stop ();
  }

  // Watches ffmpeg for `duration` (the length of an outage): returns early
  // only if ffmpeg exits, which fails the test.
  void watch (FfmpegClient &ffmpeg, std::chrono::milliseconds duration)
  {
    ffmpeg.wait_frames ([] (const std::vector<DecodedFrame> &) { return false; }, duration);
    EXPECT_TRUE (ffmpeg.running ()) << "ffmpeg exited during the outage\n"
                                    << ffmpeg.messages () << camrelay_->all_output ();
  }

  // The checks after an outage of the camera from `down` to `up`: pictures
  // never stopped, the outage's pictures (from 1 s in) were the fallback's
  // one repeated picture, and live video came back within `bound`.
  void expect_survived (FfmpegClient &ffmpeg, const char *what, Clock::time_point down,
      Clock::time_point up, std::chrono::milliseconds bound)
  {
    const bool live = ffmpeg.wait_frames (
        [&] (const std::vector<DecodedFrame> &frames) { return live_since (frames, up); }, bound);
    const auto checked = Clock::now ();
    const std::vector<DecodedFrame> frames = ffmpeg.frames ();
    EXPECT_TRUE (ffmpeg.running ()) << what << ": ffmpeg exited\n" << ffmpeg.messages ();
    EXPECT_TRUE (live) << what << ": no live video within " << bound.count () << " ms\n"
                       << ffmpeg.messages () << camrelay_->all_output ();
    const auto gap = longest_gap (frames, down, checked);
    EXPECT_LE (gap, MAX_GAP) << what << ": ffmpeg went that long without a picture";
    // From 1 s into the outage: the fallback's pace (a picture every 0.5 s,
    // not the camera's 30 a second), mostly one picture repeated.  Mostly:
    // ffmpeg's decoder holds the camera's last pictures back (two for its
    // reordering, one more for -threads 2) and gives them out as the
    // fallback's first pictures push them.
    const Window outage = window (frames, down + 1s, up);
    if (up - down > 2s) {
      EXPECT_GT (outage.pictures, 0u) << what << ": no fallback picture";
      // Counted, not timed one by one: a loaded machine may bunch them.
      const double seconds = seconds_between (down + 1s, up);
      EXPECT_LE (static_cast<double> (outage.pictures), 4 * seconds + 2)
          << what << ": pictures at the camera's pace while it was away\n" << describe (frames, down);
      EXPECT_GE (2 * outage.most_repeated, outage.pictures)
          << what << ": the outage's pictures were not the fallback's repeated picture\n"
          << describe (frames, down);
    }
    std::printf ("%s: longest gap %lld ms; during the outage %zu pictures (%zu of one); "
                 "live %.2f s after the camera\n",
        what, static_cast<long long> (gap.count ()), outage.pictures, outage.most_repeated,
        live ? seconds_between (up, *live_time (frames, up)) : -1.0);
  }

  std::unique_ptr<camtest::FakeRtspCamera> camera_;
  std::unique_ptr<camtest::TcpProxy> proxy_;
  std::string config_;
  std::unique_ptr<Launcher> camrelay_;
  int port_ = 0;
};

TEST_F (FrigateTest, FfmpegSurvivesStallRebootAndGarbage)
{
  const std::string url = "rtsp://127.0.0.1:" + std::to_string (port_) + "/cam";
  FfmpegClient ffmpeg (frigate_args (url));
  ASSERT_TRUE (ffmpeg.wait_frames (
      [&] (const std::vector<DecodedFrame> &frames) {
        return live_since (frames, ffmpeg.started ());
      },
      20s))
      << ffmpeg.messages () << camrelay_->all_output ();

  // 1. A 10 s stall: the connection stays open, nothing comes.
  const auto stalled = Clock::now ();
  camera_->stall ();
  watch (ffmpeg, 10s);
  const auto resumed = Clock::now ();
  camera_->resume ();
  expect_survived (ffmpeg, "stall", stalled, resumed, 15s);

  // 2. A reboot: the port closed (connections refused) for 3 s.
  const auto rebooted = Clock::now ();
  proxy_->stop ();
  camera_->stop ();
  watch (ffmpeg, 3s);
  ASSERT_TRUE (camera_->start (camera_->port ()));
  ASSERT_TRUE (proxy_->start (proxy_->port ()));
  const auto back = Clock::now ();
  expect_survived (ffmpeg, "reboot", rebooted, back, 20s);

  // 3. 64 KiB of random bytes in the middle of the camera's stream.
  // camrelay cannot parse it and reconnects.
  const std::string reconnect = "camera cam: streaming -> reconnecting";
  const std::string log = camrelay_->all_output ();
  size_t reconnects = 0;
  for (size_t at = 0; (at = log.find (reconnect, at)) != std::string::npos; at++)
    reconnects++;
  const auto garbage = Clock::now ();
  proxy_->inject_garbage (64 * 1024);
  EXPECT_TRUE (camrelay_->wait_count (reconnect, reconnects + 1, 10s))
      << "the garbage did not reach camrelay\n" << camrelay_->all_output ();
  expect_survived (ffmpeg, "garbage", garbage, garbage, 20s);

  EXPECT_TRUE (ffmpeg.running ()) << ffmpeg.messages ();
  EXPECT_EQ (ffmpeg.quit (10s), 0) << ffmpeg.messages ();
  std::printf ("ffmpeg decoded %zu pictures; its messages:\n%s", ffmpeg.frame_count (),
      ffmpeg.messages ().c_str ());
}

}  // namespace
