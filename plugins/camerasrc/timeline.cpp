// camerasrc's output timeline (see timeline.h).
#include "camerasrc/timeline.h"

namespace camrelay::camerasrc {

GstClockTime
OutputTimeline::map (GstClockTime ts) const
{
  if (!GST_CLOCK_TIME_IS_VALID (ts))
    return ts;
  GstClockTimeDiff mapped = static_cast<GstClockTimeDiff> (ts) + session_shift;
  return mapped > 0 ? static_cast<GstClockTime> (mapped) : 0;
}

bool
OutputTimeline::stamp (GstClockTime &pts, GstClockTime &dts, bool from_camera,
    const OutputTimeline *leader)
{
  GstClockTime key = GST_CLOCK_TIME_IS_VALID (dts) ? dts : pts;
  if (from_camera && !session_started) {
    // A new session restarts the stream (after a gap or fallback
    // pictures).  One whose clock is behind what went out already (a file
    // that loops, a camera with a reset clock) continues after it.  The
    // audio moves with the video (which started first), so that the two
    // stay aligned, and further only if it must.
    session_started = true;
    discont = true;
    session_shift = leader && leader->session_started ? leader->session_shift : 0;
    if (GST_CLOCK_TIME_IS_VALID (key) && GST_CLOCK_TIME_IS_VALID (last_ts) && map (key) <= last_ts)
      session_shift += static_cast<GstClockTimeDiff> (last_ts - map (key)) + GST_MSECOND;
  }
  if (from_camera) {
    pts = map (pts);
    dts = map (dts);
  }
  key = GST_CLOCK_TIME_IS_VALID (dts) ? dts : pts;
  if (GST_CLOCK_TIME_IS_VALID (key) && GST_CLOCK_TIME_IS_VALID (last_ts) && key <= last_ts) {
    // Strictly increasing, whatever the camera sends.
    const GstClockTime bump = last_ts + GST_USECOND - key;
    if (GST_CLOCK_TIME_IS_VALID (pts))
      pts += bump;
    if (GST_CLOCK_TIME_IS_VALID (dts))
      dts += bump;
    key += bump;
  }
  if (GST_CLOCK_TIME_IS_VALID (key))
    last_ts = key;
  const bool flag = discont;
  discont = false;
  return flag;
}

void
OutputTimeline::end_session ()
{
  if (session_started && !bridged)
    discont = true;
  bridged = false;
  need_keyframe = true;
  session_started = false;
}

}  // namespace camrelay::camerasrc
