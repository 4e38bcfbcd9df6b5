// camerasrc's output timeline: maps the timestamps of each camera session
// onto one running-time line that strictly increases across reconnects.
// Plain logic, no element: tests/camerasrc/test_camerasrc_logic.cpp.
#pragma once

#include <gst/gst.h>

namespace camrelay::camerasrc {

// What went out through one output, and how the current camera session's
// timestamps are moved onto it.
struct OutputTimeline {
  GstClockTime last_ts = GST_CLOCK_TIME_NONE;  // of the last buffer out (DTS, else PTS)
  GstClockTimeDiff session_shift = 0;          // added to this session's timestamps
  bool session_started = false;                // the session's first buffer went out
  bool need_keyframe = true;                   // drop until a keyframe
  bool discont = true;                         // flag the next buffer DISCONT
  // Fallback pictures went out amid this session (the camera was late):
  // its frames wait for its next keyframe, which goes out DISCONT.
  bool bridged = false;

  // A timestamp of the current session on the output timeline (0 at least).
  GstClockTime map (GstClockTime ts) const;

  // Turns the running times `pts`/`dts` of a buffer into output timestamps,
  // and says whether the buffer is to be flagged DISCONT.  `from_camera` is
  // false for fallback pictures, which are not part of a camera session and
  // are stamped as they are.  `leader` is the timeline whose session this one
  // follows (the video's, for the audio), or nullptr.
  bool stamp (GstClockTime &pts, GstClockTime &dts, bool from_camera,
      const OutputTimeline *leader);

  // The camera session ended: what comes next (fallback or camera) follows a
  // gap, unless this session never sent anything or fallback pictures (which
  // flagged the gap) went out since its last frame.
  void end_session ();
};

}  // namespace camrelay::camerasrc
