// testcamerasrc's inside: the encoding chains it builds and tears down for
// each stream, and the faults its probes inject in the streaming threads.
#include "testcamerasrc/gsttestcamerasrcprivate.h"

#include "common/codecs.h"
#include "common/gstref.h"

#define GST_CAT_DEFAULT test_camera_src_debug

namespace camrelay::testcamera {

namespace {

using Lock = std::lock_guard<std::mutex>;

// ---- faults, in the streaming threads --------------------------------------

// Time since the first buffer of the stream, from a buffer's running time.
GstClockTime
fault_time (GstTestCameraSrcPrivate &p, const StreamSegment &stream, GstBuffer *buffer)
{
  GstClockTime running_time = gst_segment_to_running_time (&stream.segment, GST_FORMAT_TIME,
      GST_BUFFER_PTS (buffer));
  if (!GST_CLOCK_TIME_IS_VALID (running_time))
    return GST_CLOCK_TIME_NONE;
  GstClockTime origin = GST_CLOCK_TIME_NONE;
  if (p.origin.compare_exchange_strong (origin, running_time))
    return 0;
  return running_time > origin ? running_time - origin : 0;
}

// Keeps a stream's segment; true if the probe saw an event, which passes.
bool
track_segment (GstPadProbeInfo *info, StreamSegment &stream)
{
  if (!(GST_PAD_PROBE_INFO_TYPE (info) & GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM))
    return false;
  GstEvent *event = GST_PAD_PROBE_INFO_EVENT (info);
  if (GST_EVENT_TYPE (event) == GST_EVENT_SEGMENT) {
    const GstSegment *segment;
    gst_event_parse_segment (event, &segment);
    if (segment->format == GST_FORMAT_TIME)
      gst_segment_copy_into (segment, &stream.segment);
  }
  return true;
}

bool
in_window (GstClockTime t, guint64 after, guint64 duration)
{
  return after > 0 && t >= after && (duration == 0 || t - after < duration);
}

// drop-after: true once the connection is "dropped"; the first stream to
// get there posts the one error.
bool
connection_dropped (GstTestCameraSrc *self, GstClockTime t)
{
  GstTestCameraSrcPrivate &p = *self->priv;
  if (p.dropped.load ())
    return true;
  if (p.active.drop_after == 0 || t < p.active.drop_after)
    return false;
  if (!p.dropped.exchange (true)) {
    GST_INFO_OBJECT (self, "drop-after reached at %" GST_TIME_FORMAT ": dropping the connection",
        GST_TIME_ARGS (t));
    GST_ELEMENT_ERROR (self, RESOURCE, READ, ("connection dropped (simulated)"),
        ("drop-after=%s s reached", format_seconds (p.active.drop_after).c_str ()));
  }
  return true;
}

GstCaps *
raw_video_caps (const Settings &s, bool resized)
{
  return gst_caps_new_simple ("video/x-raw", "format", G_TYPE_STRING, "I420", "width",
      G_TYPE_INT, static_cast<gint> (resized ? s.resized_width () : s.width), "height",
      G_TYPE_INT, static_cast<gint> (resized ? s.resized_height () : s.height), "framerate",
      GST_TYPE_FRACTION, s.fps_n, s.fps_d, "pixel-aspect-ratio", GST_TYPE_FRACTION, 1, 1,
      nullptr);
}

// Asks the encoder for a keyframe with its headers, as
// gst_video_event_new_upstream_force_key_unit() would, without linking
// gstreamer-video for one event.
void
request_keyframe (GstPad *encoder_src)
{
  GstStructure *s = gst_structure_new ("GstForceKeyUnit", "running-time", GST_TYPE_CLOCK_TIME,
      GST_CLOCK_TIME_NONE, "all-headers", G_TYPE_BOOLEAN, TRUE, "count", G_TYPE_UINT, 0,
      nullptr);
  gst_pad_send_event (encoder_src, gst_event_new_custom (GST_EVENT_CUSTOM_UPSTREAM, s));
}

GstBuffer *
make_garbage (std::minstd_rand &random, GstBuffer *like)
{
  gsize size = MAX (gst_buffer_get_size (like), 1);
  GstBuffer *garbage = gst_buffer_new_allocate (nullptr, size, nullptr);
  gst_buffer_copy_into (garbage, like, GST_BUFFER_COPY_TIMESTAMPS, 0, -1);
  GstMapInfo map;
  if (gst_buffer_map (garbage, &map, GST_MAP_WRITE)) {
    // 1..254: never 0x00 (start codes) nor 0xFF (JPEG markers).
    for (gsize i = 0; i < map.size; ++i)
      map.data[i] = static_cast<guint8> (1 + random () % 254);
    gst_buffer_unmap (garbage, &map);
  }
  return garbage;
}

GstPadProbeReturn
video_fault_probe (GstPad *pad, GstPadProbeInfo *info, gpointer user_data)
{
  GstTestCameraSrc *self = GST_TEST_CAMERA_SRC (user_data);
  GstTestCameraSrcPrivate &p = *self->priv;
  const Settings &s = p.active;
  VideoFaultState &v = p.video;
  if (track_segment (info, v.segment))
    return GST_PAD_PROBE_OK;
  GstBuffer *buffer = GST_PAD_PROBE_INFO_BUFFER (info);
  GstClockTime t = fault_time (p, v.segment, buffer);
  if (!GST_CLOCK_TIME_IS_VALID (t))
    return GST_PAD_PROBE_OK;
  GST_CAT_LOG_OBJECT (test_camera_src_dataflow, self, "video buffer at %" GST_TIME_FORMAT "%s",
      GST_TIME_ARGS (t),
      GST_BUFFER_FLAG_IS_SET (buffer, GST_BUFFER_FLAG_DELTA_UNIT) ? "" : " (keyframe)");

  if (connection_dropped (self, t))
    return GST_PAD_PROBE_DROP;

  if (s.resize_every) {
    bool resized = (t / s.resize_every) % 2 == 1;
    if (resized != v.resized) {
      v.resized = resized;
      GST_INFO_OBJECT (self, "resize-every: switching to %ux%u at %" GST_TIME_FORMAT,
          resized ? s.resized_width () : s.width, resized ? s.resized_height () : s.height,
          GST_TIME_ARGS (t));
      // Takes effect a frame or two later: the capsfilter asks the source
      // to renegotiate, and the encoder restarts with new parameter sets.
      camrelay::CapsPtr caps{raw_video_caps (s, resized)};
      g_object_set (p.video_size, "caps", caps.get (), nullptr);
    }
  }

  if (in_window (t, s.stall_after, s.stall_duration)) {
    if (!v.interrupted)
      GST_INFO_OBJECT (self, "stall: sending nothing from %" GST_TIME_FORMAT, GST_TIME_ARGS (t));
    v.interrupted = true;
    GST_CAT_LOG_OBJECT (test_camera_src_dataflow, self, "stall: dropping %" GST_TIME_FORMAT,
        GST_TIME_ARGS (t));
    return GST_PAD_PROBE_DROP;
  }

  if (in_window (t, s.garbage_after, s.garbage_duration)) {
    if (!v.garbage_logged)
      GST_INFO_OBJECT (self, "garbage: sending random bytes from %" GST_TIME_FORMAT,
          GST_TIME_ARGS (t));
    v.garbage_logged = true;
    v.interrupted = true;
    GST_PAD_PROBE_INFO_DATA (info) = make_garbage (v.random, buffer);
    gst_buffer_unref (buffer);
    return GST_PAD_PROBE_OK;
  }

  if (v.interrupted) {
    GST_INFO_OBJECT (self, "fault over at %" GST_TIME_FORMAT ": sending again",
        GST_TIME_ARGS (t));
    v.interrupted = false;
    v.garbage_logged = false;
    request_keyframe (pad);
    buffer = gst_buffer_make_writable (buffer);
    GST_BUFFER_FLAG_SET (buffer, GST_BUFFER_FLAG_DISCONT);
    GST_PAD_PROBE_INFO_DATA (info) = buffer;
  }
  return GST_PAD_PROBE_OK;
}

GstPadProbeReturn
audio_fault_probe (GstPad *, GstPadProbeInfo *info, gpointer user_data)
{
  GstTestCameraSrc *self = GST_TEST_CAMERA_SRC (user_data);
  GstTestCameraSrcPrivate &p = *self->priv;
  const Settings &s = p.active;
  if (track_segment (info, p.audio.segment))
    return GST_PAD_PROBE_OK;
  GstBuffer *buffer = GST_PAD_PROBE_INFO_BUFFER (info);
  GstClockTime t = fault_time (p, p.audio.segment, buffer);
  if (!GST_CLOCK_TIME_IS_VALID (t))
    return GST_PAD_PROBE_OK;

  if (connection_dropped (self, t))
    return GST_PAD_PROBE_DROP;
  if (in_window (t, s.stall_after, s.stall_duration)
      || in_window (t, s.garbage_after, s.garbage_duration)) {
    p.audio.interrupted = true;
    return GST_PAD_PROBE_DROP;
  }
  if (p.audio.interrupted) {
    p.audio.interrupted = false;
    buffer = gst_buffer_make_writable (buffer);
    GST_BUFFER_FLAG_SET (buffer, GST_BUFFER_FLAG_DISCONT);
    GST_PAD_PROBE_INFO_DATA (info) = buffer;
  }
  return GST_PAD_PROBE_OK;
}

// ---- building and tearing down the inside ----------------------------------

GstElement *
make_child (GstTestCameraSrc *self, const char *factory, const char *name)
{
  GstElement *element = gst_element_factory_make (factory, name);
  if (!element) {
    GST_ELEMENT_ERROR (self, CORE, MISSING_PLUGIN,
        ("Missing element '%s': check your GStreamer installation", factory), (nullptr));
    return nullptr;
  }
  gst_bin_add (GST_BIN (self), element);
  self->priv->children.push_back (element);
  return element;
}

bool
link_children (GstTestCameraSrc *self, const std::vector<GstElement *> &chain)
{
  for (size_t i = 0; i + 1 < chain.size (); ++i) {
    if (!gst_element_link (chain[i], chain[i + 1])) {
      GST_ELEMENT_ERROR (self, CORE, NEGOTIATION, (nullptr),
          ("could not link %s to %s", GST_ELEMENT_NAME (chain[i]),
              GST_ELEMENT_NAME (chain[i + 1])));
      return false;
    }
  }
  return true;
}

void
add_probe (GstTestCameraSrc *self, GstElement *encoder, GstPadProbeCallback probe)
{
  camrelay::PadPtr src{gst_element_get_static_pad (encoder, "src")};
  gst_pad_add_probe (src.get (),
      static_cast<GstPadProbeType> (GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM),
      probe, self, nullptr);
}

// What encodes each codec and audio value: the encoder is this element's
// choice; the parser and the caps it delivers are the codec's row of
// common/codecs.h, found by caps name.
struct Encoding {
  gint value;             // GstTestCameraSrcCodec or GstTestCameraSrcAudio
  const char *caps_name;  // CodecRow::caps_name
  const char *encoder;
};

constexpr Encoding VIDEO_ENCODINGS[] = {
  {GST_TEST_CAMERA_SRC_CODEC_H264, "video/x-h264", "x264enc"},
  {GST_TEST_CAMERA_SRC_CODEC_H265, "video/x-h265", "x265enc"},
  {GST_TEST_CAMERA_SRC_CODEC_JPEG, "image/jpeg", "jpegenc"},
};

// voaacenc rather than avenc_aac: loading gst-libav registers hundreds of
// types, enough to make GLib leak its first quark table on purpose (past 2048
// quarks), which LeakSanitizer cannot tell from our leaks.
constexpr Encoding AUDIO_ENCODINGS[] = {
  {GST_TEST_CAMERA_SRC_AUDIO_AAC, "audio/mpeg", "voaacenc"},
  {GST_TEST_CAMERA_SRC_AUDIO_ALAW, "audio/x-alaw", "alawenc"},
  {GST_TEST_CAMERA_SRC_AUDIO_MULAW, "audio/x-mulaw", "mulawenc"},
  {GST_TEST_CAMERA_SRC_AUDIO_OPUS, "audio/x-opus", "opusenc"},
};

// The entry of `value`; the property and URI checks admit no other value.
template <size_t N>
const Encoding &
encoding_of (const Encoding (&encodings)[N], gint value)
{
  for (const Encoding &encoding : encodings)
    if (encoding.value == value)
      return encoding;
  g_assert_not_reached ();
  return encodings[0];
}

bool
build_video (GstTestCameraSrc *self, const Settings &s)
{
  GstElement *source = make_child (self, "videotestsrc", "video-source");
  GstElement *size = make_child (self, "capsfilter", "video-size");
  GstElement *overlay = make_child (self, "clockoverlay", "video-clock");
  const Encoding &encoding = encoding_of (VIDEO_ENCODINGS, s.codec);
  const CodecRow *row = codec_by_caps_name (encoding.caps_name);
  GstElement *encoder = source && size && overlay
      ? make_child (self, encoding.encoder, "video-encoder") : nullptr;
  GstElement *parser = encoder ? make_child (self, row->parser, "video-parser") : nullptr;
  GstElement *output = parser ? make_child (self, "capsfilter", "video-output") : nullptr;
  if (!output)
    return false;

  g_object_set (source, "is-live", TRUE, nullptr);
  gst_util_set_object_arg (G_OBJECT (source), "pattern", "ball");
  camrelay::CapsPtr raw_caps{raw_video_caps (s, false)};
  g_object_set (size, "caps", raw_caps.get (), nullptr);
  self->priv->video_size = size;

  camrelay::GCharPtr name{g_uri_unescape_string (s.name.c_str (), nullptr)};
  g_object_set (overlay, "time-format", "%Y-%m-%d %H:%M:%S", "text",
      name ? name.get () : s.name.c_str (), "shaded-background", TRUE, nullptr);
  gst_util_set_object_arg (G_OBJECT (overlay), "halignment", "left");
  gst_util_set_object_arg (G_OBJECT (overlay), "valignment", "top");

  switch (s.codec) {
    case GST_TEST_CAMERA_SRC_CODEC_H264:
      gst_util_set_object_arg (G_OBJECT (encoder), "tune", "zerolatency");
      gst_util_set_object_arg (G_OBJECT (encoder), "speed-preset", "ultrafast");
      // Keyframes exactly every `gop` frames, like a camera, not at scene cuts.
      g_object_set (encoder, "key-int-max", s.gop, "bitrate", s.bitrate, "option-string",
          "scenecut=0", nullptr);
      g_object_set (parser, "config-interval", -1, nullptr);
      break;
    case GST_TEST_CAMERA_SRC_CODEC_H265:
      gst_util_set_object_arg (G_OBJECT (encoder), "tune", "zerolatency");
      gst_util_set_object_arg (G_OBJECT (encoder), "speed-preset", "ultrafast");
      // IDR (closed GOP) keyframes every `gop` frames, as cameras send.
      g_object_set (encoder, "key-int-max", static_cast<gint> (s.gop), "bitrate", s.bitrate,
          "option-string", "scenecut=0:open-gop=0:sao=0", nullptr);
      g_object_set (parser, "config-interval", -1, nullptr);
      break;
    case GST_TEST_CAMERA_SRC_CODEC_JPEG:
      break;
  }
  camrelay::CapsPtr caps{gst_caps_from_string (row->output_caps)};
  g_object_set (output, "caps", caps.get (), nullptr);

  if (!link_children (self, {source, size, overlay, encoder, parser, output}))
    return false;
  add_probe (self, encoder, video_fault_probe);

  camrelay::PadPtr target{gst_element_get_static_pad (output, "src")};
  gst_ghost_pad_set_target (GST_GHOST_PAD (self->video_pad), target.get ());
  return true;
}

bool
build_audio (GstTestCameraSrc *self, const Settings &s)
{
  gint rate = 8000;
  switch (s.audio) {
    case GST_TEST_CAMERA_SRC_AUDIO_NONE:
      return true;
    case GST_TEST_CAMERA_SRC_AUDIO_AAC:
      rate = 16000;
      break;
    case GST_TEST_CAMERA_SRC_AUDIO_ALAW:
    case GST_TEST_CAMERA_SRC_AUDIO_MULAW:
      break;
    case GST_TEST_CAMERA_SRC_AUDIO_OPUS:
      rate = 48000;
      break;
  }
  const Encoding &encoding = encoding_of (AUDIO_ENCODINGS, s.audio);
  const CodecRow *row = codec_by_caps_name (encoding.caps_name);

  std::vector<GstElement *> chain;
  for (const char *factory : {"audiotestsrc", "audioconvert", "capsfilter", encoding.encoder,
           row->parser}) {
    if (!factory)
      continue;
    GstElement *element = make_child (self, factory, nullptr);
    if (!element)
      return false;
    chain.push_back (element);
  }
  GstElement *source = chain[0];
  GstElement *format = chain[2];
  GstElement *encoder = chain[3];

  // 20 ms per buffer, as cameras packetize their audio.
  g_object_set (source, "is-live", TRUE, "samplesperbuffer", rate / 50, "volume", 0.3, nullptr);
  camrelay::CapsPtr caps{gst_caps_new_simple ("audio/x-raw", "rate", G_TYPE_INT, rate,
      "channels", G_TYPE_INT, 1, nullptr)};
  g_object_set (format, "caps", caps.get (), nullptr);
  if (s.audio == GST_TEST_CAMERA_SRC_AUDIO_AAC || s.audio == GST_TEST_CAMERA_SRC_AUDIO_OPUS)
    g_object_set (encoder, "bitrate", 32000, nullptr);

  if (!link_children (self, chain))
    return false;
  add_probe (self, encoder, audio_fault_probe);

  camrelay::PadPtr target{gst_element_get_static_pad (chain.back (), "src")};
  GstPadTemplate *templ = gst_element_class_get_pad_template (GST_ELEMENT_GET_CLASS (self),
      "audio");
  GstPad *pad = gst_ghost_pad_new_from_template ("audio", target.get (), templ);
  self->priv->audio_pad = pad;
  gst_element_add_pad (GST_ELEMENT (self), pad);
  return true;
}

}  // namespace

void
stop_session (GstTestCameraSrc *self)
{
  GstTestCameraSrcPrivate &p = *self->priv;
  gst_ghost_pad_set_target (GST_GHOST_PAD (self->video_pad), nullptr);
  if (p.audio_pad) {
    gst_pad_set_active (p.audio_pad, FALSE);
    gst_element_remove_pad (GST_ELEMENT (self), p.audio_pad);
    p.audio_pad = nullptr;
  }
  for (GstElement *child : p.children) {
    gst_element_set_state (child, GST_STATE_NULL);
    gst_bin_remove (GST_BIN (self), child);
  }
  p.children.clear ();
  p.video_size = nullptr;

  Lock lock (p.lock);
  p.running = false;
}

bool
start_session (GstTestCameraSrc *self)
{
  GstTestCameraSrcPrivate &p = *self->priv;
  std::string location_error;
  {
    Lock lock (p.lock);
    location_error = p.location_error;
    p.active = p.settings;
    p.running = true;
  }
  if (!location_error.empty ()) {
    GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS, ("%s", location_error.c_str ()), (nullptr));
    return false;
  }
  GST_INFO_OBJECT (self, "starting %s", build_uri (p.active).c_str ());
  p.origin = GST_CLOCK_TIME_NONE;
  p.dropped = false;
  p.video = VideoFaultState ();
  p.audio = AudioFaultState ();

  if (!build_video (self, p.active) || !build_audio (self, p.active))
    return false;
  gst_element_no_more_pads (GST_ELEMENT (self));
  return true;
}

}  // namespace camrelay::testcamera
