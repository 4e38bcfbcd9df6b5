// camerasrc's pure logic, without a network or a pipeline: the backoff with
// jitter, the output timeline across reconnects, the ranking of fault reasons
// and the manager's state machine (plugins/camerasrc/{backoff,timeline,faults,
// statemachine}.cpp, linked into this test directly).
#include <gst/gst.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "camerasrc/backoff.h"
#include "camerasrc/faults.h"
#include "camerasrc/statemachine.h"
#include "camerasrc/timeline.h"
#include "common/codecs.h"
#include "common/gstref.h"
#include "common/uri_schemes.h"

using namespace camrelay::camerasrc;
using namespace std::chrono_literals;

// ---- backoff ----------------------------------------------------------------

TEST (Backoff, FirstAttemptIsRetryDelayWithinJitter)
{
  std::mt19937_64 random (1);
  for (int i = 0; i < 1000; i++) {
    const guint64 delay = backoff_delay (GST_SECOND, 30 * GST_SECOND, 1, random);
    EXPECT_GE (delay, 0.8 * GST_SECOND);
    EXPECT_LE (delay, 1.2 * GST_SECOND);
  }
}

TEST (Backoff, DoublesPerAttemptUntilTheMaximum)
{
  std::mt19937_64 random (2);
  const guint64 base = 100 * GST_MSECOND;
  const guint64 max = 10 * GST_SECOND;
  for (guint attempt = 1; attempt <= 20; attempt++) {
    const double nominal = std::min<double> (base * std::pow (2.0, attempt - 1), max);
    for (int i = 0; i < 100; i++) {
      const guint64 delay = backoff_delay (base, max, attempt, random);
      EXPECT_GE (delay, 0.8 * nominal - 1) << "attempt " << attempt;
      EXPECT_LE (delay, std::min (1.2 * nominal, static_cast<double> (max)) + 1)
          << "attempt " << attempt;
    }
  }
}

TEST (Backoff, NeverOverTheMaximumEvenWithJitter)
{
  std::mt19937_64 random (3);
  for (int i = 0; i < 1000; i++)
    EXPECT_LE (backoff_delay (GST_SECOND, 3 * GST_SECOND, 10, random), 3 * GST_SECOND);
  // A maximum below the first delay wins.
  for (int i = 0; i < 100; i++)
    EXPECT_LE (backoff_delay (5 * GST_SECOND, GST_SECOND, 1, random), GST_SECOND);
}

TEST (Backoff, JitterSpreadsTheDelays)
{
  std::mt19937_64 random (4);
  std::vector<guint64> delays;
  for (int i = 0; i < 200; i++)
    delays.push_back (backoff_delay (GST_SECOND, 30 * GST_SECOND, 1, random));
  const auto [low, high] = std::minmax_element (delays.begin (), delays.end ());
  EXPECT_LT (*low, 0.9 * GST_SECOND);
  EXPECT_GT (*high, 1.1 * GST_SECOND);
}

TEST (Backoff, AttemptsCountUpAndResetAfterLongStreaming)
{
  // Not streaming (or not long): the next attempt.
  EXPECT_EQ (next_attempt (0, std::nullopt, 60 * GST_SECOND), 1u);
  EXPECT_EQ (next_attempt (5, std::nullopt, 60 * GST_SECOND), 6u);
  EXPECT_EQ (next_attempt (5, 59s, 60 * GST_SECOND), 6u);
  // Streaming for retry-reset-time: the first attempt again.
  EXPECT_EQ (next_attempt (5, 60s, 60 * GST_SECOND), 1u);
  EXPECT_EQ (next_attempt (5, 0ns, 0), 1u);
  // retry-reset-time = G_MAXUINT64: never.
  EXPECT_EQ (next_attempt (5, 100000h, G_MAXUINT64), 6u);
}

TEST (Backoff, RetriesExhaustedOnlyPastMaxRetries)
{
  EXPECT_FALSE (retries_exhausted (1000000, -1));
  EXPECT_TRUE (retries_exhausted (1, 0));
  EXPECT_FALSE (retries_exhausted (3, 3));
  EXPECT_TRUE (retries_exhausted (4, 3));
}

// ---- output timeline --------------------------------------------------------

namespace {

struct Stamped {
  GstClockTime pts;
  GstClockTime dts;
  bool discont;
};

Stamped
stamp (OutputTimeline &timeline, GstClockTime pts, GstClockTime dts, bool from_camera = true,
    const OutputTimeline *leader = nullptr)
{
  Stamped out{pts, dts, false};
  out.discont = timeline.stamp (out.pts, out.dts, from_camera, leader);
  return out;
}

}  // namespace

TEST (Timeline, FirstSessionKeepsItsTimestampsAndStartsDiscont)
{
  OutputTimeline t;
  Stamped first = stamp (t, 2 * GST_SECOND, 2 * GST_SECOND);
  EXPECT_EQ (first.pts, 2 * GST_SECOND);
  EXPECT_TRUE (first.discont);
  Stamped second = stamp (t, 2 * GST_SECOND + 40 * GST_MSECOND, GST_CLOCK_TIME_NONE);
  EXPECT_EQ (second.pts, 2 * GST_SECOND + 40 * GST_MSECOND);
  EXPECT_EQ (second.dts, GST_CLOCK_TIME_NONE);
  EXPECT_FALSE (second.discont);
}

TEST (Timeline, ReconnectWithAClockAheadKeepsItsTimestamps)
{
  OutputTimeline t;
  stamp (t, 1 * GST_SECOND, 1 * GST_SECOND);
  stamp (t, 2 * GST_SECOND, 2 * GST_SECOND);
  t.end_session ();
  Stamped back = stamp (t, 5 * GST_SECOND, 5 * GST_SECOND);
  EXPECT_EQ (back.pts, 5 * GST_SECOND);
  EXPECT_TRUE (back.discont);
  EXPECT_FALSE (stamp (t, 6 * GST_SECOND, 6 * GST_SECOND).discont);
}

TEST (Timeline, ReconnectWithAClockBehindContinuesAfterWhatWentOut)
{
  OutputTimeline t;
  stamp (t, 10 * GST_SECOND, 10 * GST_SECOND);
  t.end_session ();
  // A camera that rebooted (or a file that loops) starts again from 0.
  Stamped back = stamp (t, 0, 0);
  EXPECT_GT (back.dts, 10 * GST_SECOND);
  EXPECT_EQ (back.dts, 10 * GST_SECOND + GST_MSECOND);
  EXPECT_TRUE (back.discont);
  // The rest of the session moves by the same offset: its spacing is kept.
  Stamped next = stamp (t, 40 * GST_MSECOND, 40 * GST_MSECOND);
  EXPECT_EQ (next.dts - back.dts, 40 * GST_MSECOND);
  EXPECT_EQ (t.session_shift, static_cast<GstClockTimeDiff> (10 * GST_SECOND + GST_MSECOND));
}

TEST (Timeline, StrictlyIncreasingAcrossManyReconnects)
{
  OutputTimeline t;
  GstClockTime last = 0;
  bool first = true;
  for (int session = 0; session < 20; session++) {
    // Each session starts at a clock of its own, sometimes behind.
    GstClockTime clock = (session % 3) * GST_SECOND;
    for (int frame = 0; frame < 10; frame++) {
      Stamped s = stamp (t, clock, clock);
      if (!first) {
        EXPECT_GT (s.dts, last) << "session " << session << " frame " << frame;
      }
      EXPECT_EQ (s.discont, frame == 0);
      first = false;
      last = s.dts;
      clock += 40 * GST_MSECOND;
    }
    t.end_session ();
  }
}

TEST (Timeline, EqualTimestampsAreBumped)
{
  OutputTimeline t;
  stamp (t, GST_SECOND, GST_SECOND);
  Stamped same = stamp (t, GST_SECOND, GST_SECOND);
  EXPECT_EQ (same.dts, GST_SECOND + GST_USECOND);
  EXPECT_EQ (same.pts, GST_SECOND + GST_USECOND);
}

TEST (Timeline, AudioFollowsTheVideosShift)
{
  OutputTimeline video;
  OutputTimeline audio;
  stamp (video, 10 * GST_SECOND, 10 * GST_SECOND);
  stamp (audio, 10 * GST_SECOND, 10 * GST_SECOND);
  video.end_session ();
  audio.end_session ();
  Stamped v = stamp (video, GST_SECOND, GST_SECOND);
  Stamped a = stamp (audio, GST_SECOND, GST_SECOND, true, &video);
  EXPECT_EQ (a.dts, v.dts);
  EXPECT_TRUE (a.discont);
}

TEST (Timeline, FallbackPicturesAreNotMappedAndTheCameraFollowsThem)
{
  OutputTimeline t;
  stamp (t, GST_SECOND, GST_SECOND);
  t.end_session ();
  Stamped picture = stamp (t, 3 * GST_SECOND, 3 * GST_SECOND, false);
  EXPECT_EQ (picture.dts, 3 * GST_SECOND);
  EXPECT_TRUE (picture.discont);
  Stamped picture2 = stamp (t, 4 * GST_SECOND, 4 * GST_SECOND, false);
  EXPECT_FALSE (picture2.discont);
  // The camera is back with a clock behind the last picture.
  Stamped back = stamp (t, 2 * GST_SECOND, 2 * GST_SECOND);
  EXPECT_GT (back.dts, 4 * GST_SECOND);
  EXPECT_TRUE (back.discont);
}

TEST (Timeline, ASessionThatSentNothingAddsNoGap)
{
  OutputTimeline t;
  stamp (t, GST_SECOND, GST_SECOND);
  EXPECT_FALSE (t.discont);
  t.end_session ();
  EXPECT_TRUE (t.discont);
  EXPECT_TRUE (t.need_keyframe);
  // A fallback picture takes the DISCONT; a session that never sent anything
  // then ends: the next picture is no new gap.
  EXPECT_TRUE (stamp (t, 2 * GST_SECOND, 2 * GST_SECOND, false).discont);
  t.end_session ();
  EXPECT_FALSE (stamp (t, 3 * GST_SECOND, 3 * GST_SECOND, false).discont);
}

TEST (Timeline, InvalidTimestampsPassThrough)
{
  OutputTimeline t;
  Stamped s = stamp (t, GST_CLOCK_TIME_NONE, GST_CLOCK_TIME_NONE);
  EXPECT_EQ (s.pts, GST_CLOCK_TIME_NONE);
  EXPECT_EQ (s.dts, GST_CLOCK_TIME_NONE);
  EXPECT_EQ (t.last_ts, GST_CLOCK_TIME_NONE);
}

// ---- fault ranking ----------------------------------------------------------

namespace {

// Three elements of a chain, compared by address only.
int chain[3];
const int &source_element = chain[0];
const int &parser_element = chain[1];
const int &sink_element = chain[2];

FaultOrigin
from (const void *element, bool generic, bool source = false)
{
  FaultOrigin origin;
  origin.element = element;
  origin.generic = generic;
  origin.from_source = source;
  return origin;
}

}  // namespace

TEST (FaultRanking, TheFirstSpecificReasonWins)
{
  FaultSlot slot;
  ASSERT_TRUE (slot.accepts (from (&parser_element, false)));
  slot.record ("not negotiated", from (&parser_element, false));
  // What follows is a consequence, even from the source.
  EXPECT_FALSE (slot.accepts (from (&sink_element, false)));
  EXPECT_FALSE (slot.accepts (from (&source_element, false, true)));
  EXPECT_FALSE (slot.accepts (from (&parser_element, true)));
  EXPECT_EQ (*slot.reason, "not negotiated");
}

TEST (FaultRanking, ASpecificReasonFromTheSameElementReplacesAGenericOne)
{
  FaultSlot slot;
  slot.record ("Internal data stream error", from (&parser_element, true));
  EXPECT_TRUE (slot.accepts (from (&parser_element, false)));
  slot.record ("Could not connect: Connection refused", from (&parser_element, false));
  EXPECT_FALSE (slot.generic);
  // And the specific one stays.
  EXPECT_FALSE (slot.accepts (from (&parser_element, false)));
}

TEST (FaultRanking, ASpecificReasonFromTheSourceReplacesAGenericOne)
{
  FaultSlot slot;
  slot.record ("Internal data stream error", from (&sink_element, true));
  EXPECT_TRUE (slot.accepts (from (&source_element, false, true)));
  // Not from another element downstream, nor another generic one.
  EXPECT_FALSE (slot.accepts (from (&parser_element, false)));
  EXPECT_FALSE (slot.accepts (from (&source_element, true, true)));
}

TEST (FaultRanking, ATakenReasonLeavesTheSlotOpen)
{
  FaultSlot slot;
  slot.record ("stalled", from (nullptr, false));
  slot.reason.reset ();
  EXPECT_TRUE (slot.accepts (from (&sink_element, false)));
}

TEST (FaultRanking, ErrorReasonKeepsTheLastLineOfTheDebugText)
{
  GError *error = g_error_new_literal (GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_OPEN_READ,
      "Could not open resource for reading");
  EXPECT_EQ (error_reason (error, "gstrtspsrc.c(1): connect\nConnection refused"),
      "Could not open resource for reading (Connection refused)");
  EXPECT_EQ (error_reason (error, nullptr), "Could not open resource for reading");
  EXPECT_EQ (error_reason (error, "ends with a newline\n"), "Could not open resource for reading");
  EXPECT_FALSE (is_generic_error (error));
  g_error_free (error);
  EXPECT_EQ (error_reason (nullptr, nullptr), "unknown error");

  GError *generic = g_error_new_literal (GST_STREAM_ERROR, GST_STREAM_ERROR_FAILED,
      "Internal data stream error.");
  EXPECT_TRUE (is_generic_error (generic));
  g_error_free (generic);
  EXPECT_EQ (explain_with_warning ("Unauthorized", "Internal data stream error."),
      "Unauthorized (then: Internal data stream error.)");
}

TEST (FaultRanking, PlainHttpIsProbedOnPort80)
{
  EXPECT_EQ (default_http_port ("http"), 80);
}

// An https:// camera that cannot be reached is probed where souphttpsrc
// went: port 443 unless its URI names one (GIO takes the URI's port first).
TEST (FaultRanking, HttpsIsProbedOnPort443)
{
  EXPECT_EQ (default_http_port ("https"), 443);
  EXPECT_EQ (default_http_port ("HTTPS"), 443);
}

// ---- state machine ----------------------------------------------------------

namespace {

const Clock::time_point t0 = Clock::time_point () + 1000h;

ManagerView
view_in (GstCameraSrcState state)
{
  ManagerView view;
  view.state = state;
  view.fallback = true;
  view.timeout = 5 * GST_SECOND;
  return view;
}

}  // namespace

TEST (StateMachine, ANewLocationComesFirstEvenWhenFailed)
{
  ManagerView view = view_in (GST_CAMERA_SRC_STATE_FAILED);
  view.location_changed = true;
  view.fault = true;
  EXPECT_EQ (next_action (view, ManagerDeadlines (), t0), ManagerAction::Switch);
  view.location_changed = false;
  // Failed: nothing more until the location changes.
  ManagerDeadlines due;
  due.retry_at = t0;
  EXPECT_EQ (next_action (view, due, t0), ManagerAction::None);
}

TEST (StateMachine, EventsComeBeforeTimeouts)
{
  ManagerDeadlines due;
  due.retry_at = t0 - 1s;
  due.connect_deadline = t0 - 1s;
  ManagerView view = view_in (GST_CAMERA_SRC_STATE_CONNECTING);
  view.fault = true;
  view.end_of_file = true;
  view.first_frame = true;
  EXPECT_EQ (next_action (view, due, t0), ManagerAction::Fault);
  view.fault = false;
  EXPECT_EQ (next_action (view, due, t0), ManagerAction::Loop);
  view.end_of_file = false;
  EXPECT_EQ (next_action (view, due, t0), ManagerAction::Streaming);
  view.first_frame = false;
  EXPECT_EQ (next_action (view, due, t0), ManagerAction::ConnectTimeout);
}

TEST (StateMachine, ConnectTimeoutOnlyWhileConnecting)
{
  ManagerDeadlines deadlines;
  deadlines.connect_deadline = t0;
  EXPECT_EQ (next_action (view_in (GST_CAMERA_SRC_STATE_CONNECTING), deadlines, t0),
      ManagerAction::None);
  EXPECT_EQ (next_action (view_in (GST_CAMERA_SRC_STATE_CONNECTING), deadlines, t0 + 1ns),
      ManagerAction::ConnectTimeout);
  EXPECT_NE (next_action (view_in (GST_CAMERA_SRC_STATE_RECONNECTING), deadlines, t0 + 1s),
      ManagerAction::ConnectTimeout);
}

TEST (StateMachine, StallOnlyWhileStreamingWithATimeout)
{
  ManagerView view = view_in (GST_CAMERA_SRC_STATE_STREAMING);
  view.last_frame = t0 - 5s;
  EXPECT_EQ (next_action (view, ManagerDeadlines (), t0), ManagerAction::None);
  view.last_frame = t0 - 5s - 1ns;
  EXPECT_EQ (next_action (view, ManagerDeadlines (), t0), ManagerAction::Stall);
  view.timeout = 0;  // never
  EXPECT_EQ (next_action (view, ManagerDeadlines (), t0), ManagerAction::None);
  view = view_in (GST_CAMERA_SRC_STATE_STREAMING);
  view.last_frame.reset ();  // no frame yet
  EXPECT_EQ (next_action (view, ManagerDeadlines (), t0), ManagerAction::None);
}

TEST (StateMachine, ConnectWhenDueThenFallbackWhileAway)
{
  ManagerDeadlines deadlines;
  deadlines.retry_at = t0;
  deadlines.next_fallback = t0;
  ManagerView away = view_in (GST_CAMERA_SRC_STATE_RECONNECTING);
  EXPECT_EQ (next_action (away, deadlines, t0), ManagerAction::Connect);
  deadlines.retry_at = t0 + 1s;
  EXPECT_EQ (next_action (away, deadlines, t0), ManagerAction::Fallback);
  away.fallback = false;
  EXPECT_EQ (next_action (away, deadlines, t0), ManagerAction::None);
  // No fallback picture while streaming.
  EXPECT_EQ (next_action (view_in (GST_CAMERA_SRC_STATE_STREAMING), deadlines, t0),
      ManagerAction::None);
}

// A camera back (the readiness check saw its port accept again) cuts a
// running backoff step short, before a due fallback picture; it means
// nothing in any other state, nor once no attempt is planned (failed).
TEST (StateMachine, CameraBackEndsTheBackoffWhileReconnecting)
{
  ManagerDeadlines deadlines;
  deadlines.retry_at = t0 + 30s;
  deadlines.next_fallback = t0;
  ManagerView away = view_in (GST_CAMERA_SRC_STATE_RECONNECTING);
  EXPECT_EQ (next_action (away, deadlines, t0), ManagerAction::Fallback);
  away.camera_back = true;
  EXPECT_EQ (next_action (away, deadlines, t0), ManagerAction::Connect);
  // A fault or a new location still comes first.
  away.fault = true;
  EXPECT_EQ (next_action (away, deadlines, t0), ManagerAction::Fault);
  for (GstCameraSrcState state : {GST_CAMERA_SRC_STATE_CONNECTING,
           GST_CAMERA_SRC_STATE_STREAMING, GST_CAMERA_SRC_STATE_FAILED}) {
    ManagerView view = view_in (state);
    view.camera_back = true;
    view.attempt_connected = true;
    const ManagerAction action = next_action (view, deadlines, t0);
    EXPECT_NE (action, ManagerAction::Connect) << state;
    EXPECT_NE (action, ManagerAction::Reattempt) << state;
  }
  deadlines.retry_at = NEVER;
  away.fault = false;
  EXPECT_NE (next_action (away, deadlines, t0), ManagerAction::Connect);
}

// A camera back while an attempt still waits for its connection (its SYNs
// lost in a network cut): a new attempt, after the events and the connect
// timeout; not once the attempt has its connection.
TEST (StateMachine, CameraBackReplacesAnAttemptWithoutAConnection)
{
  ManagerDeadlines deadlines;
  deadlines.connect_deadline = t0 + 5s;
  ManagerView connecting = view_in (GST_CAMERA_SRC_STATE_CONNECTING);
  connecting.camera_back = true;
  EXPECT_EQ (next_action (connecting, deadlines, t0), ManagerAction::Reattempt);
  connecting.first_frame = true;
  EXPECT_EQ (next_action (connecting, deadlines, t0), ManagerAction::Streaming);
  connecting.first_frame = false;
  EXPECT_EQ (next_action (connecting, deadlines, t0 + 6s), ManagerAction::ConnectTimeout);
  connecting.attempt_connected = true;
  EXPECT_EQ (next_action (connecting, deadlines, t0), ManagerAction::None);
}

// An attempt whose camera delivers delta frames (it joined mid-GOP) is given
// `timeout` from its first one for its keyframe, past connect-timeout if need
// be; not without a stall timeout, nor when that is sooner.
TEST (StateMachine, DeltaFramesGiveAnAttemptTimeoutForItsKeyframe)
{
  ManagerDeadlines deadlines;
  deadlines.connect_deadline = t0;
  ManagerView view = view_in (GST_CAMERA_SRC_STATE_CONNECTING);  // timeout 5 s
  view.fallback = false;
  view.attempt_first_data = t0 - 1s;
  EXPECT_EQ (next_action (view, deadlines, t0 + 1s), ManagerAction::None);
  EXPECT_EQ (next_action (view, deadlines, t0 + 4s), ManagerAction::None);
  EXPECT_EQ (next_action (view, deadlines, t0 + 4s + 1ns), ManagerAction::ConnectTimeout);
  EXPECT_EQ (next_wake (view, deadlines, NEVER, t0), t0 + 4s + 1ns);
  view.attempt_first_data = t0 - 10s;  // the connect deadline is later
  EXPECT_EQ (next_action (view, deadlines, t0 + 1ns), ManagerAction::ConnectTimeout);
  view.attempt_first_data = t0 - 1s;
  view.timeout = 0;  // no stall timeout: connect-timeout alone
  EXPECT_EQ (next_action (view, deadlines, t0 + 1ns), ManagerAction::ConnectTimeout);
}

// A streaming camera that is late: a fallback picture fallback-after past the
// last frame that went out, then at the fallback pace; never with
// fallback-after=0, fallback none, or before any frame went out.
TEST (StateMachine, FallbackWhileStreamingOnceTheCameraIsLate)
{
  ManagerDeadlines deadlines;
  deadlines.next_fallback = t0 - 10s;  // of an outage long ago
  ManagerView late = view_in (GST_CAMERA_SRC_STATE_STREAMING);
  late.fallback_after = 500 * GST_MSECOND;
  late.last_frame = t0 - 1s;  // frames arrive, none went out (waiting for a keyframe)
  late.last_output = t0 - 500ms;
  EXPECT_EQ (early_fallback_at (late, deadlines), t0);
  EXPECT_EQ (next_action (late, deadlines, t0 - 1ns), ManagerAction::None);
  EXPECT_EQ (next_action (late, deadlines, t0), ManagerAction::Fallback);
  EXPECT_EQ (next_wake (late, deadlines, NEVER, t0 - 100ms), t0);
  // The next one at the pace the manager set after the last picture.
  deadlines.next_fallback = t0 + 400ms;
  EXPECT_EQ (next_action (late, deadlines, t0 + 399ms), ManagerAction::None);
  EXPECT_EQ (next_wake (late, deadlines, NEVER, t0 + 1ms), t0 + 400ms);
  // The stall still comes first once due.
  late.last_frame = t0 - 5s - 1ns;
  EXPECT_EQ (next_action (late, deadlines, t0 + 400ms), ManagerAction::Stall);

  ManagerView off = late;
  off.last_frame = t0;
  off.fallback_after = 0;
  EXPECT_EQ (early_fallback_at (off, deadlines), NEVER);
  EXPECT_EQ (next_action (off, deadlines, t0 + 1s), ManagerAction::None);
  off = late;
  off.fallback = false;
  EXPECT_EQ (early_fallback_at (off, deadlines), NEVER);
  off = late;
  off.last_output.reset ();
  EXPECT_EQ (early_fallback_at (off, deadlines), NEVER);
}

TEST (StateMachine, WakesAtTheNearestDeadline)
{
  ManagerDeadlines deadlines;
  ManagerView streaming = view_in (GST_CAMERA_SRC_STATE_STREAMING);
  deadlines.retry_at = t0 + 10ms;
  EXPECT_EQ (next_wake (streaming, deadlines, NEVER, t0), t0 + 10ms);
  EXPECT_EQ (next_wake (streaming, deadlines, t0 + 5ms, t0), t0 + 5ms);
  deadlines.retry_at = NEVER;
  deadlines.next_fallback = t0 + 1ms;
  // The fallback's deadline counts only while the camera is away.
  EXPECT_EQ (next_wake (view_in (GST_CAMERA_SRC_STATE_RECONNECTING), deadlines, NEVER, t0),
      t0 + 1ms);
  // The stall deadline: `timeout` after the last frame, while streaming.
  streaming.last_frame = t0 - 2s;
  EXPECT_EQ (next_wake (streaming, deadlines, NEVER, t0), t0 + 3s + 1ns);
  // The connect deadline, while connecting.
  deadlines.next_fallback = t0 + 2s;
  deadlines.connect_deadline = t0 + 700ms;
  EXPECT_EQ (next_wake (view_in (GST_CAMERA_SRC_STATE_CONNECTING), deadlines, NEVER, t0),
      t0 + 700ms + 1ns);
}

// The manager does not poll: with nothing due for seconds, it sleeps that long.
TEST (StateMachine, NoWakeUpBeforeTheNearestDeadline)
{
  ManagerDeadlines deadlines;
  ManagerView streaming = view_in (GST_CAMERA_SRC_STATE_STREAMING);
  streaming.last_frame = t0;  // a frame just came: stalled in 5 s at the earliest
  deadlines.connect_deadline = t0 - 1s;  // of the attempt before (a file's loop)
  deadlines.next_fallback = t0 - 1s;
  EXPECT_EQ (next_wake (streaming, deadlines, NEVER, t0), t0 + 5s + 1ns);

  ManagerView away = view_in (GST_CAMERA_SRC_STATE_RECONNECTING);
  deadlines = ManagerDeadlines ();
  deadlines.retry_at = t0 + 8s;
  deadlines.next_fallback = t0 + 3s;
  EXPECT_EQ (next_wake (away, deadlines, NEVER, t0), t0 + 3s);
  away.fallback = false;
  EXPECT_EQ (next_wake (away, deadlines, NEVER, t0), t0 + 8s);

  // No deadline at all (failed, or streaming without a stall timeout): only
  // the safety bound, seconds away.
  EXPECT_GE (MANAGER_IDLE_BOUND, 1s);
  deadlines.retry_at = t0 - 1s;
  EXPECT_EQ (next_wake (view_in (GST_CAMERA_SRC_STATE_FAILED), deadlines, NEVER, t0),
      t0 + MANAGER_IDLE_BOUND);
  streaming.timeout = 0;
  EXPECT_EQ (next_wake (streaming, ManagerDeadlines (), NEVER, t0), t0 + MANAGER_IDLE_BOUND);
}

// A file:// camera replays without leaving streaming, and its replay's
// connect deadline passes while it streams: a wake-up in the past would
// never end (the manager spun on it once the file ran longer than
// connect-timeout).
TEST (StateMachine, APastDeadlineNobodyActsOnWakesNobody)
{
  ManagerView streaming = view_in (GST_CAMERA_SRC_STATE_STREAMING);
  streaming.last_frame = t0;
  ManagerDeadlines deadlines;
  deadlines.connect_deadline = t0 - 1s;
  EXPECT_EQ (next_action (streaming, deadlines, t0), ManagerAction::None);
  EXPECT_GT (next_wake (streaming, deadlines, NEVER, t0), t0);
  deadlines.next_fallback = t0 - 1s;  // no fallback pictures while streaming
  EXPECT_GT (next_wake (streaming, deadlines, NEVER, t0), t0);
}

// Where the manager wakes, it has something to do, and one instant before
// it had nothing: the wake-up is the first instant a deadline is due.
TEST (StateMachine, AWakeUpIsTheFirstInstantSomethingIsDue)
{
  struct Case {
    GstCameraSrcState state;
    ManagerDeadlines deadlines;
    std::optional<Clock::time_point> last_frame;
  };
  ManagerDeadlines retry, connect, fallback;
  retry.retry_at = t0 + 1500ms;
  connect.connect_deadline = t0 + 10s;
  fallback.retry_at = t0 + 30s;
  fallback.next_fallback = t0 + 1s;
  const Case cases[] = {
      {GST_CAMERA_SRC_STATE_RECONNECTING, retry, std::nullopt},
      {GST_CAMERA_SRC_STATE_CONNECTING, connect, std::nullopt},
      {GST_CAMERA_SRC_STATE_RECONNECTING, fallback, std::nullopt},
      {GST_CAMERA_SRC_STATE_STREAMING, ManagerDeadlines (), t0 - 1s},
  };
  for (const Case &c : cases) {
    ManagerView view = view_in (c.state);
    view.last_frame = c.last_frame;
    const Clock::time_point wake = next_wake (view, c.deadlines, NEVER, t0);
    EXPECT_GT (wake, t0 + 100ms) << c.state;
    EXPECT_NE (next_action (view, c.deadlines, wake), ManagerAction::None) << c.state;
    EXPECT_EQ (next_action (view, c.deadlines, wake - 1ns), ManagerAction::None) << c.state;
  }
}

TEST (StateMachine, TimesAddUpAcrossTransitions)
{
  StateTimes times;
  times.transition (GST_CAMERA_SRC_STATE_STOPPED, GST_CAMERA_SRC_STATE_CONNECTING, t0);
  EXPECT_EQ (times.down (t0 + 2s), 2s);
  times.transition (GST_CAMERA_SRC_STATE_CONNECTING, GST_CAMERA_SRC_STATE_STREAMING, t0 + 2s);
  EXPECT_EQ (times.streamed (GST_CAMERA_SRC_STATE_STREAMING, t0 + 7s), 5s);
  EXPECT_EQ (times.streaming (GST_CAMERA_SRC_STATE_STREAMING, t0 + 7s), 5s);
  EXPECT_EQ (times.down (t0 + 7s), 2s);
  times.transition (GST_CAMERA_SRC_STATE_STREAMING, GST_CAMERA_SRC_STATE_RECONNECTING, t0 + 7s);
  EXPECT_FALSE (times.streamed (GST_CAMERA_SRC_STATE_RECONNECTING, t0 + 8s).has_value ());
  EXPECT_EQ (times.streaming (GST_CAMERA_SRC_STATE_RECONNECTING, t0 + 8s), 5s);
  EXPECT_EQ (times.down (t0 + 8s), 3s);
  times.transition (GST_CAMERA_SRC_STATE_RECONNECTING, GST_CAMERA_SRC_STATE_CONNECTING, t0 + 8s);
  times.transition (GST_CAMERA_SRC_STATE_CONNECTING, GST_CAMERA_SRC_STATE_STREAMING, t0 + 9s);
  EXPECT_EQ (times.down (t0 + 20s), 4s);
  EXPECT_EQ (times.streaming (GST_CAMERA_SRC_STATE_STREAMING, t0 + 20s), 16s);
  times.transition (GST_CAMERA_SRC_STATE_STREAMING, GST_CAMERA_SRC_STATE_STOPPED, t0 + 20s);
  EXPECT_EQ (times.streaming (GST_CAMERA_SRC_STATE_STOPPED, t0 + 100s), 16s);
  EXPECT_EQ (times.down (t0 + 100s), 4s);
  EXPECT_TRUE (is_down (GST_CAMERA_SRC_STATE_CONNECTING));
  EXPECT_TRUE (is_down (GST_CAMERA_SRC_STATE_RECONNECTING));
  EXPECT_FALSE (is_down (GST_CAMERA_SRC_STATE_FAILED));
}

// ---- the shared facts (plugins/common) --------------------------------------

TEST (SharedFacts, EveryRtpEncodingHasItsCodecRow)
{
  for (const camrelay::RtpEncodingRow &rtp : camrelay::RTP_ENCODINGS) {
    const camrelay::CodecRow *codec = camrelay::codec_by_caps_name (rtp.caps_name);
    ASSERT_NE (codec, nullptr) << rtp.encoding_name;
    EXPECT_EQ (camrelay::rtp_encoding (rtp.encoding_name), &rtp);
  }
  EXPECT_EQ (camrelay::rtp_encoding ("MP2T"), nullptr);
  EXPECT_EQ (camrelay::rtp_encoding (nullptr), nullptr);
}

TEST (SharedFacts, EveryCodecCanBeCarriedAndEveryVideoCodecMadeASlate)
{
  for (const camrelay::CodecRow &codec : camrelay::CODECS) {
    EXPECT_NE (codec.payloader, nullptr) << codec.caps_name;
    EXPECT_EQ (camrelay::codec_by_short_name (codec.short_name), &codec);
    camrelay::CapsPtr caps{gst_caps_from_string (codec.output_caps)};
    ASSERT_TRUE (caps) << codec.output_caps;
    EXPECT_TRUE (gst_structure_has_name (gst_caps_get_structure (caps.get (), 0), codec.caps_name));
    if (codec.kind == camrelay::MediaKind::Video) {
      EXPECT_NE (codec.encoder, nullptr) << codec.caps_name;
    }
  }
  camrelay::CapsPtr video{gst_caps_from_string (
      camrelay::codec_caps (camrelay::MediaKind::Video).c_str ())};
  ASSERT_TRUE (video);
  EXPECT_EQ (gst_caps_get_size (video.get ()), 3u);
}

TEST (SharedFacts, CameraUriSchemes)
{
  EXPECT_EQ (camrelay::camera_uri_scheme_list (), "rtsp, rtsps, http, https, file or test");
  EXPECT_NE (camrelay::camera_uri_scheme ("RTSPS"), nullptr);
  EXPECT_EQ (camrelay::camera_uri_scheme ("ftp"), nullptr);
  EXPECT_TRUE (camrelay::is_scheme_of ("https", camrelay::SchemeFamily::Http));
  EXPECT_FALSE (camrelay::is_scheme_of ("rtsp", camrelay::SchemeFamily::Http));
  const char *const *protocols = camrelay::camera_uri_protocols ();
  size_t count = 0;
  while (protocols[count])
    count++;
  EXPECT_EQ (count, G_N_ELEMENTS (camrelay::CAMERA_URI_SCHEMES));
}
