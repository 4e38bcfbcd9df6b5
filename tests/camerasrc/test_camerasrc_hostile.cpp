// camerasrc against RTSP cameras that misbehave mid-handshake, next to a healthy
// one: connect-timeout bounds each attempt, the reason names the step, NULL is quick.
#include <gst/gst.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <string>
#include <thread>

#include "camerasrc/handshake.h"
#include "camerasrc_test_util.h"
#include "hostile_camera.h"

using namespace camtest;

namespace {

constexpr GstClockTime kConnectTimeout = GST_SECOND;
// Scheduling slack on a loaded machine, on top of connect-timeout.
constexpr double kSlack = 0.5;
// A state change to NULL of a camera stuck mid-handshake.
constexpr double kStopBound = 1.0;
// Past this, an operation is hung: the test process ends there with a
// message rather than waiting for the suite's timeout.
constexpr auto kHung = std::chrono::seconds (20);

// Runs `operation` and returns how long it took; ends the process if it
// does not return within kHung (a hang cannot be failed and continued).
double
bounded (const char *what, const std::function<void ()> &operation)
{
  std::packaged_task<double ()> task ([&operation] {
    const auto start = SteadyClock::now ();
    operation ();
    return seconds_between (start, SteadyClock::now ());
  });
  std::future<double> done = task.get_future ();
  std::thread thread (std::move (task));
  if (done.wait_for (kHung) != std::future_status::ready) {
    std::fprintf (stderr, "FATAL: %s did not return within %lld s: hung\n", what,
        static_cast<long long> (kHung.count ()));
    std::fflush (stderr);
    std::_Exit (EXIT_FAILURE);
  }
  thread.join ();
  return done.get ();
}

// The healthy camera "cam" into the appsink "sink", and the hostile camera
// "bad" into a fakesink, in one pipeline.
bool
launch_pair (TestPipeline &p, const std::string &healthy, const std::string &hostile)
{
  const std::string bad = "camerasrc name=bad retry-delay=" + std::to_string (kRetryDelay) +
      " retry-delay-max=" + std::to_string (kRetryDelayMax) +
      " timeout=1000000000 connect-timeout=" + std::to_string (kConnectTimeout) +
      " fallback=none latency=100 ! fakesink name=badsink sync=false async=false";
  if (!p.launch (camerasrc_pipeline () + " " + bad))
    return false;
  g_object_set (p.by_name ("cam"), "location", healthy.c_str (), nullptr);
  g_object_set (p.by_name ("bad"), "location", hostile.c_str (), nullptr);
  return true;
}

// camerasrc-state messages of `source`.
std::vector<MessageRecord>
states_of (const TestPipeline &p, const std::string &source)
{
  std::vector<MessageRecord> states;
  for (auto &m : p.state_messages ())
    if (m.source == source)
      states.push_back (m);
  return states;
}

bool
wait_state_of (TestPipeline &p, const std::string &source, const std::string &state,
    std::chrono::milliseconds timeout)
{
  return p.wait_message ([&] (const MessageRecord &m) {
    return m.name == "camerasrc-state" && m.source == source && m.state == state;
  }, timeout);
}

class CameraSrcHostile : public ::testing::TestWithParam<Hostility> {
 protected:
  void SetUp () override
  {
    RtspCameraOptions options;
    options.width = 320;
    options.height = 180;
    healthy_ = std::make_unique<FakeRtspCamera> (options);
    ASSERT_TRUE (healthy_->start ());
    hostile_ = std::make_unique<HostileRtspCamera> (GetParam ());
    ASSERT_TRUE (hostile_->start ());
    ASSERT_TRUE (launch_pair (p_, healthy_->uri (), hostile_->uri ()));
    ASSERT_TRUE (p_.play ());
    ASSERT_TRUE (p_.wait_frames (1, 10s)) << "the healthy camera never streamed\n"
                                          << p_.describe_messages ();
  }

  void TearDown () override
  {
    bounded ("stopping the pipeline", [this] { p_.stop (); });
    if (hostile_)
      hostile_->stop ();
    if (healthy_)
      healthy_->stop ();
  }

  // Waits for the first attempt to time out and checks how and when.
  void expect_bounded_attempt ()
  {
    const char *method = hostile_method (GetParam ());
    ASSERT_TRUE (wait_state_of (p_, "bad", "reconnecting", 5s))
        << "the hostile camera never left connecting\n" << p_.describe_messages ();
    auto states = states_of (p_, "bad");
    const MessageRecord *connecting = nullptr, *reconnecting = nullptr;
    for (auto &m : states) {
      if (!connecting && m.state == "connecting")
        connecting = &m;
      if (!reconnecting && m.state == "reconnecting")
        reconnecting = &m;
    }
    ASSERT_TRUE (connecting && reconnecting);
    const double took = seconds_between (connecting->arrival, reconnecting->arrival);
    std::fprintf (stderr, "%s: reconnecting %.3f s after connecting: %s\n",
        hostility_name (GetParam ()), took, reconnecting->reason.c_str ());
    EXPECT_LE (took, kConnectTimeout / double (GST_SECOND) + kSlack);
    EXPECT_TRUE (contains_nocase (reconnecting->reason, method))
        << "the reason does not name " << method << ": " << reconnecting->reason;
    EXPECT_TRUE (contains_nocase (reconnecting->reason, "within"))
        << "the reason does not say it timed out: " << reconnecting->reason;
    EXPECT_GE (hostile_->stuck (), 1u);
  }

  // Waits until a later attempt is stuck at the hostile step again.
  void wait_stuck_again ()
  {
    const guint before = hostile_->stuck ();
    ASSERT_TRUE (wait_state_of (p_, "bad", "connecting", 5s));
    ASSERT_TRUE (hostile_->wait_stuck (before + 1, 5s))
        << "no later attempt reached the hostile step";
  }

  void expect_healthy_streams (const char *when)
  {
    EXPECT_GE (p_.wait_frame_after (SteadyClock::now (), 5s), 0)
        << "the healthy camera stopped " << when << "\n" << p_.describe_messages ();
  }

  std::unique_ptr<FakeRtspCamera> healthy_;
  std::unique_ptr<HostileRtspCamera> hostile_;
  TestPipeline p_;
};

// Each attempt ends in reconnecting within connect-timeout with a reason
// naming the step, the healthy camera streams on, and taking the hostile
// camera out of the running pipeline (NULL, then removed) is quick.
TEST_P (CameraSrcHostile, AttemptIsBoundedAndRemovalIsQuick)
{
  ASSERT_NO_FATAL_FAILURE (expect_bounded_attempt ());
  ASSERT_NO_FATAL_FAILURE (wait_stuck_again ());
  expect_healthy_streams ("while the hostile camera was retried");

  GstElement *bad = p_.by_name ("bad");
  GstElement *badsink = p_.by_name ("badsink");
  const double took = bounded ("the hostile camera to NULL",
      [bad] { gst_element_set_state (bad, GST_STATE_NULL); });
  std::fprintf (stderr, "%s: hostile camera to NULL in %.3f s\n", hostility_name (GetParam ()),
      took);
  EXPECT_LT (took, kStopBound);
  gst_element_set_state (badsink, GST_STATE_NULL);
  gst_bin_remove_many (GST_BIN (p_.pipeline ()), bad, badsink, nullptr);
  expect_healthy_streams ("after the hostile camera was removed");
}

// The whole pipeline to NULL while the hostile camera is stuck mid-handshake
// (the first attempt, before any timeout) is quick.
TEST_P (CameraSrcHostile, PipelineStopsQuicklyMidHandshake)
{
  ASSERT_TRUE (hostile_->wait_stuck (1, 5s)) << "the camera never reached the hostile step";
  // Part of the way into the timeout (time is the subject here), with bytes
  // trickling in meanwhile.
  std::this_thread::sleep_for (300ms);
  double state_change = 0;
  const double took = bounded ("the pipeline to NULL", [&] { state_change = p_.stop (); });
  std::fprintf (stderr, "%s: pipeline to NULL in %.3f s (state change %.3f s)\n",
      hostility_name (GetParam ()), took, state_change);
  EXPECT_LT (took, kStopBound);
}

// The step tracker alone: what the reason says for each point of the
// handshake rtspsrc can be stuck at.
TEST (CameraSrcHandshake, ReasonNamesThePendingStep)
{
  using camrelay::camerasrc::Handshake;
  Handshake handshake;
  handshake.start (true);
  EXPECT_EQ (handshake.timeout_reason (GST_SECOND),
      "no connection to the camera within 1 s (connect-timeout)");
  camrelay::ElementPtr rtspsrc{
      GST_ELEMENT (gst_object_ref_sink (gst_element_factory_make ("rtspsrc", nullptr)))};
  ASSERT_TRUE (rtspsrc);
  handshake.follow (rtspsrc.get ());
  handshake.request_sent (rtspsrc.get (), "OPTIONS");
  handshake.request_sent (rtspsrc.get (), "DESCRIBE");
  // An earlier chain, still stopping, sends its TEARDOWN.
  int earlier = 0;
  handshake.request_sent (&earlier, "TEARDOWN");
  EXPECT_EQ (handshake.timeout_reason (10 * GST_SECOND),
      "no complete answer to DESCRIBE within 10 s (connect-timeout)");
  handshake.request_sent (rtspsrc.get (), "SETUP");
  handshake.request_sent (rtspsrc.get (), "PLAY");
  // Posted when PLAY is queued, before the requests: no answer yet.
  handshake.progress (GST_PROGRESS_TYPE_START, "request", "Sending PLAY request");
  EXPECT_EQ (handshake.timeout_reason (1500 * GST_MSECOND),
      "no complete answer to PLAY within 1.5 s (connect-timeout)");
  handshake.progress (GST_PROGRESS_TYPE_COMPLETE, "request", "Sent PLAY request");
  EXPECT_EQ (handshake.timeout_reason (250 * GST_MSECOND),
      "PLAY answered but no video within 250 ms (connect-timeout)");
  // A new attempt forgets the last one.
  handshake.start (true);
  EXPECT_EQ (handshake.pending_step (), "");
  // Other chains keep the reason they always had.
  handshake.start (false);
  handshake.request_sent (nullptr, "DESCRIBE");
  EXPECT_EQ (handshake.timeout_reason (GST_SECOND), "no video within connect-timeout");
}

// A camera that answers every request, PLAY included, and sends no video:
// the reason says that PLAY was answered.  (A shared FakeRtspCamera
// answers DESCRIBE once its media has prerolled: a first client makes it
// preroll, then the camera stalls, then the camera under test connects.)
TEST (CameraSrcHostileLimits, PlayAnsweredWithoutVideoIsNamed)
{
  FakeRtspCamera camera;
  ASSERT_TRUE (camera.start ());
  TestPipeline first;
  ASSERT_TRUE (launch_camera (first, camera.uri ()));
  ASSERT_TRUE (first.play ());
  ASSERT_TRUE (first.wait_frames (1, 10s)) << first.describe_messages ();
  camera.stall ();
  TestPipeline p;
  ASSERT_TRUE (launch_camera (p, camera.uri (), "connect-timeout=1000000000"));
  ASSERT_TRUE (p.play ());
  ASSERT_TRUE (p.wait_state ("reconnecting", 10s)) << p.describe_messages ();
  std::string reason;
  for (auto &m : p.state_messages ())
    if (m.state == "reconnecting" && reason.empty ())
      reason = m.reason;
  EXPECT_EQ (reason, "PLAY answered but no video within 1 s (connect-timeout)");
  EXPECT_LT (bounded ("the pipeline to NULL", [&p] { p.stop (); }), kStopBound);
  first.stop ();
  camera.stop ();
}

// Every chain stuck on a camera that trickles forever keeps a thread and a
// connection until the camera lets go: after two of them, camerasrc waits
// for them instead of opening more, and it still stops at once.
TEST (CameraSrcHostileLimits, StuckConnectionsDoNotPileUp)
{
  HostileRtspCamera hostile (Hostility::TrickleHeaders);
  ASSERT_TRUE (hostile.start ());
  TestPipeline p;
  ASSERT_TRUE (launch_camera (p, hostile.uri (), "connect-timeout=300000000"));
  ASSERT_TRUE (p.play ());
  ASSERT_TRUE (hostile.wait_stuck (2, 10s)) << p.describe_messages ();
  // Without the limit, an attempt every 0.4 to 1 s.
  EXPECT_FALSE (hostile.wait_stuck (3, 3s)) << "a third connection was opened while two were "
                                               "still stuck\n" << p.describe_messages ();
  EXPECT_LE (hostile.open_connections (), 2u);
  const double took = bounded ("the pipeline to NULL", [&p] { p.stop (); });
  EXPECT_LT (took, kStopBound);
  hostile.stop ();
}

INSTANTIATE_TEST_SUITE_P (Modes, CameraSrcHostile,
    ::testing::Values (Hostility::TrickleHeaders, Hostility::HugeContentLength,
        Hostility::SilentDescribe, Hostility::SilentPlay, Hostility::EndlessHeaders),
    [] (const ::testing::TestParamInfo<Hostility> &info) {
      return std::string (hostility_name (info.param));
    });

}  // namespace
