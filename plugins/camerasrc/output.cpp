// camerasrc's outputs: the persistent appsrc of each pad, the camera's frames
// stamped onto one continuous timeline (timeline.h), and the announcing of
// their streams (stream-start, caps, stream-collection).
#include <gst/app/app.h>

#include "camerasrc/gstcamerasrc-private.h"

namespace camrelay::camerasrc {

GstCaps *
output_caps (StreamKind kind)
{
  return gst_caps_from_string (
      codec_caps (kind == StreamKind::Video ? MediaKind::Video : MediaKind::Audio).c_str ());
}

// Beyond this much data waiting in an output appsrc (downstream is not
// reading), drop until the next keyframe instead of growing.
constexpr guint64 MAX_OUTPUT_BACKLOG = 5 * GST_SECOND;
// The same for what waits to go to the appsrc (a thread pushing it is slow
// in a handler of downstream's).
constexpr size_t MAX_QUEUED = 256;
constexpr auto BITRATE_WINDOW = std::chrono::seconds (5);

// The pipeline's running time now, or NONE without a clock.
GstClockTime
running_time_now (GstElement *element)
{
  ClockPtr clock{gst_element_get_clock (element)};
  if (!clock)
    return GST_CLOCK_TIME_NONE;
  GstClockTime now = gst_clock_get_time (clock.get ());
  GstClockTime base = gst_element_get_base_time (element);
  return now > base ? now - base : 0;
}

Output &
output_for (GstCameraSrcPrivate &p, StreamKind kind)
{
  return kind == StreamKind::Video ? p.video : p.audio;
}

static GstEvent *
make_stream_start (GstStream *stream, guint32 group_id)
{
  GstEvent *event = gst_event_new_stream_start (gst_stream_get_stream_id (stream));
  gst_event_set_stream (event, stream);
  gst_event_set_group_id (event, group_id);
  return event;
}

// Stamps `buffer` (owned) for `out`, with output timestamps derived from the
// running times `pts`/`dts`, and says what to push (lock held).
// `from_camera` is false for fallback pictures, which are not part of a
// camera session.  `leader` is the output whose session this one follows
// (the video, for the audio).  False when there is nothing to push.
bool
prepare_buffer (Output &out, const Output *leader, GstBuffer *buffer, GstCaps *caps,
    GstClockTime pts, GstClockTime dts, bool from_camera, Outgoing &outgoing)
{
  if (!out.appsrc) {
    gst_buffer_unref (buffer);
    return false;
  }
  const bool discont = out.stamp (pts, dts, from_camera, leader);
  if (caps && (!out.caps || !gst_caps_is_equal (out.caps.get (), caps))) {
    // Another codec is another stream: decoders downstream are chosen per
    // stream, and a new stream-start lets them choose again.  Other changes
    // (size, profile, parameter sets) stay in the stream: new caps only.
    if (out.caps && !gst_structure_has_name (gst_caps_get_structure (caps, 0),
                        gst_structure_get_name (gst_caps_get_structure (out.caps.get (), 0)))) {
      // gst_stream_new () returns it owned, not floating.
      out.stream.reset (gst_stream_new (nullptr, nullptr,
          gst_stream_get_stream_type (out.stream.get ()), GST_STREAM_FLAG_NONE));
      outgoing.new_stream = true;
      outgoing.group_id = out.group_id;
    }
    outgoing.stream = ref_object (out.stream.get ());
    out.caps.reset (gst_caps_ref (caps));
    outgoing.new_caps.reset (gst_caps_ref (caps));
  }
  buffer = gst_buffer_make_writable (buffer);
  GST_BUFFER_PTS (buffer) = pts;
  GST_BUFFER_DTS (buffer) = dts;
  if (discont) {
    GST_BUFFER_FLAG_SET (buffer, GST_BUFFER_FLAG_DISCONT);
  } else {
    GST_BUFFER_FLAG_UNSET (buffer, GST_BUFFER_FLAG_DISCONT);
  }
  outgoing.appsrc = ref_object (out.appsrc.get ());
  outgoing.buffer.reset (buffer);
  return true;
}

// Hands a prepared buffer to its appsrc (no lock of ours held).  Never
// blocks: the appsrc queues without limit (on_camera_sample bounds it).
static void
push_outgoing (GstCameraSrc *self, Outgoing &outgoing)
{
  GstAppSrc *appsrc = GST_APP_SRC (outgoing.appsrc.get ());
  GstStream *stream = outgoing.stream.get ();
  if (outgoing.new_stream) {
    // The appsrc queues it in order with the caps and buffers.
    GST_DEBUG_OBJECT (self, "another codec: new stream %s", gst_stream_get_stream_id (stream));
    gst_element_send_event (outgoing.appsrc.get (),
        make_stream_start (stream, outgoing.group_id));
  }
  if (outgoing.new_caps) {
    GST_DEBUG_OBJECT (self, "new caps %" GST_PTR_FORMAT, outgoing.new_caps.get ());
    gst_stream_set_caps (stream, outgoing.new_caps.get ());
    gst_app_src_set_caps (appsrc, outgoing.new_caps.get ());
  }
  gst_app_src_push_buffer (appsrc, outgoing.buffer.release ());
}

void
push_queued (GstCameraSrc *self, Output &out)
{
  GstCameraSrcPrivate &p = *self->priv;
  Lock lock (p.lock);
  if (out.pushing)
    return;  // the thread at it pushes ours too, in order
  out.pushing = true;
  while (!out.queued.empty ()) {
    Outgoing next = std::move (out.queued.front ());
    out.queued.pop_front ();
    lock.unlock ();
    push_outgoing (self, next);
    lock.lock ();
  }
  out.pushing = false;
}

static void
update_video_stats (GstCameraSrcPrivate &p, GstBuffer *buffer, GstCaps *caps, bool keyframe)
{
  const auto now = now_locked (p);
  Stats &s = p.stats;
  const gsize size = gst_buffer_get_size (buffer);
  s.frames++;
  s.bytes += size;
  if (keyframe)
    s.keyframes++;
  s.last_frame = now;
  p.last_video_in = now;
  s.bitrate_window.emplace_back (now, size);
  while (!s.bitrate_window.empty () && now - s.bitrate_window.front ().first > BITRATE_WINDOW)
    s.bitrate_window.pop_front ();
  if (caps && gst_caps_get_size (caps) > 0) {
    const GstStructure *st = gst_caps_get_structure (caps, 0);
    gst_structure_get_int (st, "width", &s.width);
    gst_structure_get_int (st, "height", &s.height);
    gst_structure_get_fraction (st, "framerate", &s.fps_n, &s.fps_d);
    const char *name = gst_structure_get_name (st);
    const CodecRow *codec = codec_by_caps_name (name);
    s.codec = codec ? codec->short_name : name;
  }
}

// A sample from the inner chain (streaming thread of the camera).
void
on_camera_sample (GstCameraSrc *self, const SinkContext &ctx, GstSample *sample)
{
  GstCameraSrcPrivate &p = *self->priv;
  GstBuffer *buffer = gst_sample_get_buffer (sample);
  GstCaps *caps = gst_sample_get_caps (sample);
  const GstSegment *segment = gst_sample_get_segment (sample);
  if (!buffer)
    return;

  GstClockTime pts = GST_BUFFER_PTS (buffer);
  GstClockTime dts = GST_BUFFER_DTS (buffer);
  if (segment && segment->format == GST_FORMAT_TIME) {
    pts = gst_segment_to_running_time (segment, GST_FORMAT_TIME, pts);
    dts = gst_segment_to_running_time (segment, GST_FORMAT_TIME, dts);
  }
  // A frame without any timestamp is stamped with its arrival, as
  // souphttpsrc's do-timestamp stamps the others: multipartdemux gives a
  // timestamp only to the first part that starts in a read, and a reader
  // that fell behind (or a camera that sends in bursts) reads several.
  if (!GST_CLOCK_TIME_IS_VALID (pts) && !GST_CLOCK_TIME_IS_VALID (dts))
    pts = running_time_now (GST_ELEMENT (self));

  // Downstream does not read: drop until the next keyframe rather than grow.
  ElementPtr appsrc;
  {
    Lock lock (p.lock);
    Output &out = output_for (p, ctx.kind);
    if (ctx.generation != p.generation || !out.appsrc)
      return;
    appsrc = ref_object (out.appsrc.get ());
  }
  const guint64 backlog = gst_app_src_get_current_level_time (GST_APP_SRC (appsrc.get ()));

  const bool keyframe = !GST_BUFFER_FLAG_IS_SET (buffer, GST_BUFFER_FLAG_DELTA_UNIT);
  Output &out = output_for (p, ctx.kind);
  {
    Lock lock (p.lock);
    if (ctx.generation != p.generation)
      return;
    if (backlog > MAX_OUTPUT_BACKLOG || out.queued.size () > MAX_QUEUED) {
      if (!out.need_keyframe)
        GST_WARNING_OBJECT (self, "downstream is not reading: dropping until the next keyframe");
      out.need_keyframe = true;
      out.discont = true;
      return;
    }
    if (ctx.kind == StreamKind::Video) {
      if (out.need_keyframe && !keyframe) {
        // Held until a keyframe (after fallback pictures, or a session's
        // first frames): no sign of life.  A camera that sends only delta
        // frames shows nothing new downstream, so the stall timeout, which
        // counts from the last frame that could go out, reconnects it.
        return;
      }
      if (out.need_keyframe) {
        out.need_keyframe = false;
        if (out.bridged) {
          // Back after fallback pictures: a gap in the camera's frames.
          out.bridged = false;
          out.discont = true;
        }
        if (!p.first_frame && p.state != GST_CAMERA_SRC_STATE_STREAMING) {
          p.first_frame = true;
          p.wake.notify_all ();
        }
      }
      update_video_stats (p, buffer, caps, keyframe);
      if (keyframe) {
        p.last_keyframe.reset (gst_buffer_ref (buffer));
        p.last_keyframe_caps.reset (caps ? gst_caps_ref (caps) : nullptr);
      }
    } else if (p.video.need_keyframe && !p.video.bridged) {
      // Audio starts with the video of the session (and goes on while
      // fallback pictures stand in for a late video).
      return;
    }
    const Output *leader = ctx.kind == StreamKind::Audio ? &p.video : nullptr;
    Outgoing outgoing;
    if (!prepare_buffer (out, leader, gst_buffer_ref (buffer), caps, pts, dts, true, outgoing))
      return;
    out.queued.push_back (std::move (outgoing));
  }
  push_queued (self, out);
}

ElementPtr
make_output_appsrc (const char *name, guint latency_ms)
{
  GstElement *made = gst_element_factory_make ("appsrc", name);
  if (!made)
    return nullptr;
  ElementPtr owner{GST_ELEMENT (gst_object_ref_sink (made))};
  GstElement *appsrc = owner.get ();
  // Live, in running time; unbounded and never blocking a push (the thread
  // that pushes pushes for the others too, see push_queued) because
  // on_camera_sample bounds the backlog itself, GOP by GOP.
  g_object_set (appsrc, "is-live", TRUE, "format", GST_FORMAT_TIME, "do-timestamp", FALSE,
      "max-bytes", static_cast<guint64> (0), "block", FALSE, "emit-signals", FALSE,
      "min-latency", static_cast<gint64> (latency_ms) * GST_MSECOND, nullptr);
  gst_util_set_object_arg (G_OBJECT (appsrc), "stream-type", "stream");
  return owner;
}

// Announces the streams of an output on its appsrc's source pad.  Each run
// of the appsrc starts with a stream-start of basesrc's own: it is replaced
// by the output's, which carries the output's GstStream.  Each stream's
// collection goes out just before its first buffer, after its stream-start,
// caps and segment (queued in the appsrc with the caps, it would make the
// appsrc send a segment of its own first, and basesrc then another).
struct OutputAnnouncer {
  GstCameraSrc *self;
  StreamKind kind;
  ObjectPtr<GstStream> pending;  // streaming thread only: to announce
};

static GstPadProbeReturn
on_output_data (GstPad *pad, GstPadProbeInfo *info, gpointer user_data)
{
  auto *announcer = static_cast<OutputAnnouncer *> (user_data);
  if (GST_PAD_PROBE_INFO_TYPE (info) & GST_PAD_PROBE_TYPE_BUFFER) {
    if (announcer->pending) {
      ObjectPtr<GstStreamCollection> collection{gst_stream_collection_new (nullptr)};
      // Takes the stream's reference.
      gst_stream_collection_add_stream (collection.get (), announcer->pending.release ());
      gst_pad_push_event (pad, gst_event_new_stream_collection (collection.get ()));
    }
    return GST_PAD_PROBE_OK;
  }
  GstEvent *event = GST_PAD_PROBE_INFO_EVENT (info);
  if (GST_EVENT_TYPE (event) != GST_EVENT_STREAM_START)
    return GST_PAD_PROBE_OK;
  GstStream *parsed = nullptr;
  gst_event_parse_stream (event, &parsed);
  ObjectPtr<GstStream> stream{parsed};  // parsed with a reference
  if (!stream) {
    GstCameraSrcPrivate &p = *announcer->self->priv;
    guint32 group_id;
    {
      Lock lock (p.lock);
      const Output &out = output_for (p, announcer->kind);
      stream = ref_object (out.stream.get ());
      group_id = out.group_id;
    }
    gst_event_unref (event);
    GST_PAD_PROBE_INFO_DATA (info) = make_stream_start (stream.get (), group_id);
  }
  announcer->pending = std::move (stream);
  return GST_PAD_PROBE_OK;
}

// The first stream of an output's `appsrc` (returned), and the probe that
// announces its streams.
ObjectPtr<GstStream>
init_output_stream (GstCameraSrc *self, GstElement *appsrc, StreamKind kind)
{
  PadPtr pad{gst_element_get_static_pad (appsrc, "src")};
  GCharPtr stream_id{gst_pad_create_stream_id (pad.get (), appsrc,
      kind == StreamKind::Video ? "video" : "audio")};
  // gst_stream_new () returns the stream owned, not floating.
  ObjectPtr<GstStream> stream{gst_stream_new (stream_id.get (), nullptr,
      kind == StreamKind::Video ? GST_STREAM_TYPE_VIDEO : GST_STREAM_TYPE_AUDIO,
      GST_STREAM_FLAG_NONE)};
  gst_pad_add_probe (pad.get (),
      static_cast<GstPadProbeType> (GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM | GST_PAD_PROBE_TYPE_BUFFER),
      on_output_data, new OutputAnnouncer{self, kind, nullptr}, [] (gpointer data) {
        delete static_cast<OutputAnnouncer *> (data);
      });
  return stream;
}

GstPad *
ghost_output (GstCameraSrc *self, GstElement *appsrc, const char *name)
{
  PadPtr target{gst_element_get_static_pad (appsrc, "src")};
  GstPadTemplate *pad_template = gst_element_class_get_pad_template (
      GST_ELEMENT_GET_CLASS (self), name);
  GstPad *ghost = gst_ghost_pad_new_from_template (name, target.get (), pad_template);
  gst_pad_set_active (ghost, TRUE);
  gst_element_add_pad (GST_ELEMENT (self), ghost);
  return ghost;
}

// Creates the audio output the first time the camera has audio.
void
ensure_audio_output (GstCameraSrc *self)
{
  GstCameraSrcPrivate &p = *self->priv;
  guint latency_ms;
  {
    Lock lock (p.lock);
    if (p.audio.appsrc)
      return;
    latency_ms = p.settings.latency_ms;
  }
  ElementPtr owner = make_output_appsrc ("audio_output", latency_ms);
  if (!owner)
    return;
  GstElement *appsrc = owner.get ();
  ObjectPtr<GstStream> stream = init_output_stream (self, appsrc, StreamKind::Audio);
  {
    Lock lock (p.lock);
    if (p.audio.appsrc)  // raced with another stream of the camera
      return;
    p.audio.appsrc = std::move (owner);  // the bin takes a reference of its own
    p.audio.stream = std::move (stream);
    p.audio.group_id = p.video.group_id;
  }
  gst_bin_add (GST_BIN (self), appsrc);
  gst_element_sync_state_with_parent (appsrc);
  GstPad *pad = ghost_output (self, appsrc, "audio");
  bool pads_were_final;
  {
    Lock lock (p.lock);
    self->audio_pad = pad;
    pads_were_final = p.no_more_pads_sent;
  }
  GST_INFO_OBJECT (self, "the camera has audio: added the audio pad");
  // After no-more-pads (a camera that gains audio on a later session):
  // the set of pads changed, and is final again.
  if (pads_were_final)
    gst_element_no_more_pads (GST_ELEMENT (self));
}

}  // namespace camrelay::camerasrc
