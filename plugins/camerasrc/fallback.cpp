// camerasrc's fallback while the camera is away: the last keyframe again, or
// a "camera offline" slate encoded in the background in the camera's codec
// and size, sent by the manager thread once per fallback-interval.
#include <gst/app/app.h>

#include "camerasrc/backoff.h"
#include "camerasrc/gstcamerasrc-private.h"

namespace camrelay::camerasrc {

// Longest a slate may take to encode; until it is there, the fallback
// repeats the last keyframe.
constexpr auto SLATE_TIMEOUT = std::chrono::seconds (5);

// A slate (SlateBuild) knows nothing of the element (no callback, no bus
// handler): the manager looks for its picture on every wake-up, and nobody
// ever waits for it to stop, since an encoder cannot be interrupted (x265 at
// 1080p takes a second on a busy machine).  Its state change to NULL runs
// from GStreamer's thread pool (gst_deinit waits for that pool).

// Lets go of the slate pipeline: to NULL from GStreamer's thread pool.
void
drop_slate (SlateBuild &build)
{
  if (build.pipeline)
    gst_element_call_async (build.pipeline.get (), [] (GstElement *pipeline, gpointer) {
      gst_element_set_state (pipeline, GST_STATE_NULL);
    }, nullptr, nullptr);
  build = SlateBuild ();
}

// Takes the slate's picture when it is there, or gives up on a slate that
// failed or is late (manager thread).
void
poll_slate (GstCameraSrc *self, SlateBuild &build)
{
  GstCameraSrcPrivate &p = *self->priv;
  if (!build.pipeline)
    return;
  if (SamplePtr slate{gst_app_sink_try_pull_sample (GST_APP_SINK (build.sink.get ()), 0)}) {
    GST_DEBUG_OBJECT (self, "slate made");
    drop_slate (build);
    Lock lock (p.lock);
    p.slate = std::move (slate);
    return;
  }
  BusPtr bus{gst_element_get_bus (build.pipeline.get ())};
  MessagePtr error{gst_bus_pop_filtered (bus.get (), GST_MESSAGE_ERROR)};
  if (error || element_now (p) >= build.deadline) {
    GError *parsed = nullptr;
    if (error)
      gst_message_parse_error (error.get (), &parsed, nullptr);
    GErrorPtr gerror{parsed};
    GST_WARNING_OBJECT (self, "no slate (%s): the fallback repeats the last keyframe",
        gerror ? gerror->message : "too slow");
    drop_slate (build);
  }
}

// Starts making a slate in the camera's codec and size, unless the current
// one (or the one being made) already is (manager thread).
void
start_slate (GstCameraSrc *self, SlateBuild &build)
{
  GstCameraSrcPrivate &p = *self->priv;
  std::string codec;
  gint width, height;
  // The camera's codec (its stats' short name), H.264 for any other.
  auto codec_row = [] (const std::string &name) {
    const CodecRow *row = codec_by_short_name (name);
    return row && row->encoder ? row : codec_by_caps_name ("video/x-h264");
  };
  {
    Lock lock (p.lock);
    if (p.settings.fallback != GST_CAMERA_SRC_FALLBACK_SLATE || p.stats.codec.empty ())
      return;
    codec = p.stats.codec;
    width = p.stats.width;
    height = p.stats.height;
    if (p.slate) {
      const GstStructure *s = gst_caps_get_structure (gst_sample_get_caps (p.slate.get ()), 0);
      gint w = 0, h = 0;
      gst_structure_get_int (s, "width", &w);
      gst_structure_get_int (s, "height", &h);
      if (w == width && h == height && gst_structure_has_name (s, codec_row (codec)->caps_name))
        return;
    }
  }
  if (build.pipeline) {
    if (build.codec == codec && build.width == width && build.height == height)
      return;
    drop_slate (build);
  }
  const CodecRow *row = codec_row (codec);
  const std::string encoder = std::string (row->encoder) + " ! " + row->output_caps;
  GCharPtr description{g_strdup_printf ("videotestsrc num-buffers=1 pattern=black ! "
                                        "video/x-raw,format=I420,width=%d,height=%d,framerate=1/1 ! "
                                        "textoverlay text=\"camera offline\" valignment=center "
                                        "halignment=center font-desc=\"Sans Bold 32\" ! %s ! "
                                        "appsink name=sink sync=false",
      width > 0 ? width : 1280, height > 0 ? height : 720, encoder.c_str ())};
  GError *error = nullptr;
  ElementPtr pipeline{gst_parse_launch (description.get (), &error)};
  if (!pipeline || error) {
    GST_WARNING_OBJECT (self, "cannot make the slate: %s", error ? error->message : "unknown error");
    g_clear_error (&error);
    return;
  }
  build.sink.reset (gst_bin_get_by_name (GST_BIN (pipeline.get ()), "sink"));
  build.pipeline = std::move (pipeline);
  build.codec = codec;
  build.width = width;
  build.height = height;
  build.deadline = element_now (p) + SLATE_TIMEOUT;
  GST_DEBUG_OBJECT (self, "making a %s slate of %dx%d", codec.c_str (), width, height);
  gst_element_set_state (build.pipeline.get (), GST_STATE_PLAYING);
}

// Sends one fallback picture while the camera is away.
void
send_fallback (GstCameraSrc *self)
{
  GstCameraSrcPrivate &p = *self->priv;
  const GstClockTime now = running_time_now (GST_ELEMENT (self));
  if (!GST_CLOCK_TIME_IS_VALID (now))
    return;
  GST_LOG_OBJECT (self, "sending a fallback picture");
  Output &out = p.video;
  {
    Lock lock (p.lock);
    // While streaming, the camera is late (no frame went out for
    // fallback-after) but not yet stalled: the pictures bridge the gap.
    const bool late = p.state == GST_CAMERA_SRC_STATE_STREAMING;
    if (late) {
      // A frame went out since the manager decided to send this: the
      // camera is on time again.
      if (!out.session_started || p.settings.fallback_after == 0 || !p.stats.last_frame
          || now_locked (p) - *p.stats.last_frame < ns (p.settings.fallback_after))
        return;
    } else if (out.session_started) {
      // The camera is back (its first keyframe went out since the manager
      // decided to send this): a picture now would land amid its frames.
      return;
    }
    GstBuffer *frame = nullptr;
    GstCaps *caps = nullptr;
    // A late camera is not known to be offline: the slate waits for the
    // fault, and its last keyframe bridges the gap meanwhile.
    if ((late || p.settings.fallback == GST_CAMERA_SRC_FALLBACK_FREEZE) && p.last_keyframe
        && p.settings.fallback != GST_CAMERA_SRC_FALLBACK_NONE) {
      frame = gst_buffer_copy (p.last_keyframe.get ());
      caps = p.last_keyframe_caps.get ();
    } else if (p.settings.fallback == GST_CAMERA_SRC_FALLBACK_SLATE) {
      if (p.slate && gst_sample_get_buffer (p.slate.get ())) {
        frame = gst_buffer_copy (gst_sample_get_buffer (p.slate.get ()));
        caps = gst_sample_get_caps (p.slate.get ());
      } else if (p.last_keyframe) {
        frame = gst_buffer_copy (p.last_keyframe.get ());
        caps = p.last_keyframe_caps.get ();
      }
    }
    if (!frame)
      return;
    GST_BUFFER_FLAG_UNSET (frame, GST_BUFFER_FLAG_DELTA_UNIT);
    GST_BUFFER_DURATION (frame) = GST_CLOCK_TIME_NONE;
    // Stamped `latency` behind the clock, as late as the element says its
    // buffers may be: the camera's frames come out at most that far behind,
    // so a returning camera's first frames follow the last picture without
    // moving the session's timeline (and the video away from the audio).
    const GstClockTime latency = p.settings.latency_ms * GST_MSECOND;
    const GstClockTime ts = now > latency ? now - latency : 0;
    if (late && !out.bridged && out.appsrc) {
      // The first picture amid the session: a gap (DISCONT), and the
      // camera's delta frames wait for its next keyframe, since decoders
      // now hold this picture as their reference.
      out.bridged = true;
      out.need_keyframe = true;
      out.discont = true;
    }
    Outgoing outgoing;
    if (!prepare_buffer (out, nullptr, frame, caps, ts, ts, false, outgoing))
      return;
    out.queued.push_back (std::move (outgoing));
    p.stats.fallback_frames++;
  }
  push_queued (self, out);
}

}  // namespace camrelay::camerasrc
