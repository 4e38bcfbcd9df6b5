// camerasrc's inner chain, one per camera session: built for the location's
// scheme (rtspsrc, souphttpsrc, filesrc, testcamerasrc) up to an appsink per
// stream, linked as the camera's pads appear, and torn down on every fault.
#include <gst/app/app.h>

#include "camerasrc/camerauri.h"
#include "camerasrc/gstcamerasrc-private.h"
#include "common/uri_schemes.h"

namespace camrelay::camerasrc {

static GstFlowReturn
on_new_sample (GstAppSink *sink, gpointer user_data)
{
  auto *ctx = static_cast<SinkContext *> (user_data);
  if (SamplePtr sample{gst_app_sink_pull_sample (sink)})
    on_camera_sample (ctx->self, *ctx, sample.get ());
  return GST_FLOW_OK;
}

// Records the session's fault, unless one that names it better is there
// already (see FaultSlot).
void
report_fault (GstCameraSrc *self, guint64 generation, std::string reason,
    const FaultOrigin &origin)
{
  GstCameraSrcPrivate &p = *self->priv;
  Lock lock (p.lock);
  if (generation != p.generation || !p.fault.accepts (origin))
    return;
  p.fault.record (redact_text (std::move (reason), p.settings.location, p.settings.user_id,
      p.settings.user_pw), origin);
  p.wake.notify_all ();
}

static void
on_eos (GstAppSink *, gpointer user_data)
{
  auto *ctx = static_cast<SinkContext *> (user_data);
  GstCameraSrcPrivate &p = *ctx->self->priv;
  {
    Lock lock (p.lock);
    // A file that played loops; one that ended before any video is broken,
    // and replaying it at once would spin.
    if (ctx->generation == p.generation && p.session_is_file && ctx->kind == StreamKind::Video
        && p.video.session_started) {
      p.end_of_file = true;
      p.wake.notify_all ();
      return;
    }
  }
  report_fault (ctx->self, ctx->generation, "the camera ended the stream");
}

// ---- building the inner chain -------------------------------------------------

static GstElement *
make (const char *factory)
{
  GstElement *element = gst_element_factory_make (factory, nullptr);
  if (!element)
    GST_ERROR ("missing GStreamer element '%s'", factory);
  return element;
}

// A sink for a stream of the camera we do not deliver (metadata, an
// unsupported codec, audio when audio=false): without one the source fails
// with not-linked.  Not a sink of the bin: it never holds up state changes.
static GstElement *
make_discard_sink ()
{
  GstElement *fakesink = make ("fakesink");
  if (fakesink) {
    g_object_set (fakesink, "async", FALSE, "sync", FALSE, nullptr);
    GST_OBJECT_FLAG_UNSET (fakesink, GST_ELEMENT_FLAG_SINK);
  }
  return fakesink;
}

// Adds `elements` (new and floating: taken, null when one could not be made)
// to the bin and to the current session (if still current),
// links them in a row and brings them to PLAYING.  Called by the manager for
// a session's source, and from a streaming thread (pad-added) for the chain
// of a stream the camera announces: the only state changes made from a
// streaming thread.  Returns false and cleans up when the session is gone
// or something failed.
static bool
add_to_session (GstCameraSrc *self, guint64 generation, const std::vector<GstElement *> &elements)
{
  GstCameraSrcPrivate &p = *self->priv;
  // Our own references, taken first: the manager may tear the session down
  // while this (streaming) thread is still linking and starting the elements.
  std::vector<ElementPtr> held;
  bool made = true;
  for (GstElement *e : elements) {
    made = made && e;
    held.emplace_back (e ? GST_ELEMENT (gst_object_ref_sink (e)) : nullptr);
  }
  if (!made)
    return false;
  bool current;
  {
    Lock lock (p.lock);
    current = generation == p.generation;
  }
  if (!current)
    return false;
  for (GstElement *e : elements) {
    // The inner chain lives by our state machine, not the bin's state
    // changes: a bin going to PAUSED would otherwise park the camera's
    // streaming thread in the appsink's preroll while we tear it down.
    gst_element_set_locked_state (e, TRUE);
    // Unlocked: element-added and deep-element-added are emitted from here,
    // and their handlers may read our properties.
    gst_bin_add (GST_BIN (self), e);
  }
  {
    Lock lock (p.lock);
    current = generation == p.generation;
    if (current) {
      for (GstElement *e : elements)
        p.session_elements.push_back (ref_object (e));
    }
  }
  if (!current) {
    // Torn down while they were being added: teardown_session did not see
    // them, so they are ours to remove.
    for (GstElement *e : elements)
      gst_bin_remove (GST_BIN (self), e);
    return false;
  }
  bool ok = true;
  for (size_t i = 1; ok && i < elements.size (); i++) {
    ok = gst_element_link (elements[i - 1], elements[i]);
    if (!ok)
      report_fault (self, generation, std::string ("cannot link ") + GST_ELEMENT_NAME (elements[i - 1])
          + " to " + GST_ELEMENT_NAME (elements[i]));
  }
  // Downstream first, so that nothing is pushed into an element not ready.
  for (auto it = elements.rbegin (); ok && it != elements.rend (); ++it) {
    ok = gst_element_set_state (*it, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE;
    if (!ok)
      report_fault (self, generation, std::string ("cannot start ") + GST_ELEMENT_NAME (*it));
  }
  bool torn_down;
  {
    Lock lock (p.lock);
    torn_down = generation != p.generation;
  }
  if (torn_down) {
    // The manager removed them meanwhile, maybe before we started them.
    for (auto it = elements.rbegin (); it != elements.rend (); ++it)
      gst_element_set_state (*it, GST_STATE_NULL);
    return false;
  }
  return ok;
}

static GstElement *
make_appsink (GstCameraSrc *self, guint64 generation, StreamKind kind, bool sync)
{
  GstElement *sink = make ("appsink");
  if (!sink)
    return nullptr;
  CapsPtr caps{output_caps (kind)};
  g_object_set (sink, "caps", caps.get (), "sync", sync, "async", FALSE, "enable-last-sample",
      FALSE, "max-buffers", 4u, "emit-signals", FALSE, nullptr);
  // Not a sink of the pipeline: its EOS must not count, and it must not
  // hold up preroll.
  GST_OBJECT_FLAG_UNSET (sink, GST_ELEMENT_FLAG_SINK);
  GstAppSinkCallbacks callbacks = {};
  callbacks.eos = on_eos;
  callbacks.new_sample = on_new_sample;
  gst_app_sink_set_callbacks (GST_APP_SINK (sink), &callbacks,
      new SinkContext{self, generation, kind},
      [] (gpointer data) { delete static_cast<SinkContext *> (data); });
  return sink;
}

// Notes when the attempt's video data begins to come (its first RTP packet
// into the depayloader): frames before the first keyframe never reach the
// appsink (the parser drops them until it has the parameter sets), yet they
// show that the camera delivers (statemachine.h, attempt_first_data).
static void
watch_first_data (GstCameraSrc *self, guint64 generation, GstPad *depayloader_sink)
{
  gst_pad_add_probe (depayloader_sink,
      static_cast<GstPadProbeType> (GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST),
      [] (GstPad *, GstPadProbeInfo *, gpointer data) {
        const auto *ctx = static_cast<const SinkContext *> (data);
        GstCameraSrcPrivate &p = *ctx->self->priv;
        Lock lock (p.lock);
        if (ctx->generation == p.generation && !p.attempt_first_data)
          p.attempt_first_data = now_locked (p);
        return GST_PAD_PROBE_REMOVE;
      },
      new SinkContext{self, generation, StreamKind::Video},
      [] (gpointer data) { delete static_cast<SinkContext *> (data); });
}

// Links `pad` (a stream of the camera with `caps`) to a chain for its codec
// (depayloader for RTP, parser) and an appsink.
static void
link_camera_stream (GstCameraSrc *self, guint64 generation, GstPad *pad, GstCaps *caps)
{
  GstCameraSrcPrivate &p = *self->priv;
  if (!caps || gst_caps_is_empty (caps))
    return;
  const GstStructure *s = gst_caps_get_structure (caps, 0);
  const char *name = gst_structure_get_name (s);
  std::vector<const char *> chain;
  StreamKind kind = StreamKind::Video;
  bool is_file;
  bool want_audio;
  {
    Lock lock (p.lock);
    is_file = p.session_is_file;
    want_audio = p.settings.audio;
  }

  // The codec's row (common/codecs.h), and for RTP its depayloader.
  const CodecRow *codec = nullptr;
  const char *depayloader = nullptr;
  if (g_str_equal (name, "application/x-rtp")) {
    const char *media = gst_structure_get_string (s, "media");
    if (const RtpEncodingRow *rtp = rtp_encoding (gst_structure_get_string (s, "encoding-name"))) {
      codec = codec_by_caps_name (rtp->caps_name);
      depayloader = rtp->depayloader;
      const char *codec_media = codec && codec->kind == MediaKind::Audio ? "audio" : "video";
      if (!media || !g_str_equal (media, codec_media))
        codec = nullptr;
    }
  } else {
    codec = codec_by_caps_name (name);
  }
  if (codec && codec->kind == MediaKind::Audio && !want_audio)
    codec = nullptr;
  if (codec) {
    kind = codec->kind == MediaKind::Audio ? StreamKind::Audio : StreamKind::Video;
    if (depayloader)
      chain.push_back (depayloader);
    if (codec->parser)
      chain.push_back (codec->parser);
    else if (!depayloader)
      chain.push_back ("identity");  // framed already: something to link to
  }

  std::vector<GstElement *> elements;
  if (chain.empty ()) {
    // A stream we do not deliver (metadata, an unsupported codec, audio
    // when audio=false): it still needs a sink, or the source fails.
    GST_INFO_OBJECT (self, "ignoring stream %" GST_PTR_FORMAT, caps);
    elements = {make_discard_sink ()};
  } else {
    for (const char *factory : chain) {
      GstElement *e = make (factory);
      if (e && g_str_has_suffix (factory, "parse") && g_object_class_find_property (
              G_OBJECT_GET_CLASS (e), "config-interval"))
        g_object_set (e, "config-interval", -1, nullptr);
      elements.push_back (e);
    }
    elements.push_back (make_appsink (self, generation, kind, is_file));
    if (kind == StreamKind::Audio)
      ensure_audio_output (self);
  }
  if (!add_to_session (self, generation, elements))
    return;
  PadPtr sinkpad{gst_element_get_static_pad (elements.front (), "sink")};
  GstPadLinkReturn linked = gst_pad_link (pad, sinkpad.get ());
  if (linked == GST_PAD_LINK_OK && is_file && kind == StreamKind::Video) {
    // Replay in real time from now on: the file's timestamps start at 0.
    GstClockTime now = running_time_now (GST_ELEMENT (self));
    if (GST_CLOCK_TIME_IS_VALID (now))
      gst_pad_set_offset (pad, static_cast<gint64> (now));
  }
  if (linked == GST_PAD_LINK_OK && depayloader && kind == StreamKind::Video)
    watch_first_data (self, generation, sinkpad.get ());
  if (linked != GST_PAD_LINK_OK)
    report_fault (self, generation,
        std::string ("cannot handle the camera's stream: ") + gst_pad_link_get_name (linked));
}

// Links a stream that is already parsed (testcamerasrc) straight to an appsink.
static void
link_parsed_stream (GstCameraSrc *self, guint64 generation, GstPad *pad, StreamKind kind)
{
  bool want_audio;
  {
    Lock lock (self->priv->lock);
    want_audio = self->priv->settings.audio;
  }
  // Already linked when the pad appeared while the source started.
  if (gst_pad_is_linked (pad))
    return;
  GstElement *sink = nullptr;
  if (kind == StreamKind::Audio && !want_audio) {
    sink = make_discard_sink ();
  } else {
    if (kind == StreamKind::Audio)
      ensure_audio_output (self);
    sink = make_appsink (self, generation, kind, false);
  }
  if (!sink || !add_to_session (self, generation, {sink}))
    return;
  PadPtr sinkpad{gst_element_get_static_pad (sink, "sink")};
  GstPadLinkReturn linked = gst_pad_link (pad, sinkpad.get ());
  if (linked != GST_PAD_LINK_OK)
    report_fault (self, generation,
        std::string ("cannot link the camera's stream: ") + gst_pad_link_get_name (linked));
}

static void
on_pad_added (GstElement *element, GstPad *pad, gpointer user_data)
{
  auto *ctx = static_cast<SinkContext *> (user_data);
  if (GST_PAD_DIRECTION (pad) != GST_PAD_SRC)
    return;
  if (GST_IS_URI_HANDLER (element) && g_str_equal (G_OBJECT_TYPE_NAME (element), "GstTestCameraSrc")) {
    // testcamerasrc: the audio pad appears when the camera has audio.
    if (g_str_equal (GST_PAD_NAME (pad), "audio"))
      link_parsed_stream (ctx->self, ctx->generation, pad, StreamKind::Audio);
    return;
  }
  CapsPtr caps{gst_pad_get_current_caps (pad)};
  if (!caps)
    caps.reset (gst_pad_query_caps (pad, nullptr));
  link_camera_stream (ctx->self, ctx->generation, pad, caps.get ());
}

// Once the first session's streams are known, the set of pads is final.
static void
signal_no_more_pads (GstCameraSrc *self, guint64 generation)
{
  GstCameraSrcPrivate &p = *self->priv;
  {
    Lock lock (p.lock);
    if (p.no_more_pads_sent || generation != p.generation)
      return;
    p.no_more_pads_sent = true;
  }
  gst_element_no_more_pads (GST_ELEMENT (self));
}

static void
on_no_more_pads (GstElement *, gpointer user_data)
{
  auto *ctx = static_cast<SinkContext *> (user_data);
  signal_no_more_pads (ctx->self, ctx->generation);
}

static void
connect_dynamic_pads (GstCameraSrc *self, guint64 generation, GstElement *element)
{
  auto destroy = [] (gpointer data, GClosure *) { delete static_cast<SinkContext *> (data); };
  g_signal_connect_data (element, "pad-added", G_CALLBACK (on_pad_added),
      new SinkContext{self, generation, StreamKind::Video}, destroy, GConnectFlags (0));
  g_signal_connect_data (element, "no-more-pads", G_CALLBACK (on_no_more_pads),
      new SinkContext{self, generation, StreamKind::Video}, destroy, GConnectFlags (0));
}

// rtspsrc's select-stream: only set up what we deliver.
static gboolean
on_select_stream (GstElement *, guint, GstCaps *caps, gpointer user_data)
{
  auto *self = static_cast<GstCameraSrc *> (user_data);
  const GstStructure *s = gst_caps_get_structure (caps, 0);
  const char *media = gst_structure_get_string (s, "media");
  if (media && g_str_equal (media, "audio")) {
    Lock lock (self->priv->lock);
    return self->priv->settings.audio;
  }
  return media && g_str_equal (media, "video");
}

// Builds the chain for the current location; returns an error text on failure.
std::optional<std::string>
build_session (GstCameraSrc *self, guint64 generation, const Settings &settings)
{
  const UriParts uri = split_uri (settings.location, settings.user_id, settings.user_pw);
  std::vector<GstElement *> head;
  GstElement *dynamic = nullptr;  // the element whose pads appear later

  if (is_scheme_of (uri.scheme, SchemeFamily::Rtsp)) {
    GstElement *src = make ("rtspsrc");
    if (!src)
      return std::string ("rtspsrc is not installed");
    guint protocols = settings.protocols == GST_CAMERA_SRC_PROTOCOLS_TCP ? 0x4  // TCP
        : settings.protocols == GST_CAMERA_SRC_PROTOCOLS_UDP ? 0x1                // UDP
                                                             : 0x1 | 0x4;
    // Over TCP nothing arrives late or out of order: a gap in the sequence
    // numbers is packets the camera (or a network on its side) dropped,
    // which never come.  A jitter buffer latency there only holds the
    // camera's first frames after such a gap (a stall that ends on the same
    // connection) and after each connect, for nothing: none.  `latency`
    // stays the latency camerasrc reports.
    const guint jitter_latency = protocols == 0x4 ? 0 : settings.latency_ms;
    // tcp-timeout twice connect-timeout, so that an unanswered request is
    // ended by connect-timeout, whose reason names it (handshake.h).
    g_object_set (src, "location", uri.without_userinfo.c_str (), "latency", jitter_latency,
        "tcp-timeout", static_cast<guint64> (2 * settings.connect_timeout / GST_USECOND),
        "do-rtsp-keep-alive", TRUE, nullptr);
    self->priv->handshake.follow (src);  // the requests it sends
    gst_util_set_object_arg (G_OBJECT (src), "protocols",
        protocols == 0x4 ? "tcp" : protocols == 0x1 ? "udp" : "udp+tcp");
    if (!uri.user.empty ())
      g_object_set (src, "user-id", uri.user.c_str (), "user-pw", uri.password.c_str (), nullptr);
    g_signal_connect (src, "select-stream", G_CALLBACK (on_select_stream), self);
    head = {src};
    dynamic = src;
  } else if (is_scheme_of (uri.scheme, SchemeFamily::Http)) {
    GstElement *src = make ("souphttpsrc");
    GstElement *demux = make ("multipartdemux");
    if (src) {
      g_object_set (src, "location", uri.without_userinfo.c_str (), "is-live", TRUE,
          "do-timestamp", TRUE, "timeout", static_cast<guint> (
              std::max<guint64> (1, settings.connect_timeout / GST_SECOND)), nullptr);
      if (!uri.user.empty ())
        g_object_set (src, "user-id", uri.user.c_str (), "user-pw", uri.password.c_str (), nullptr);
    }
    if (demux)
      g_object_set (demux, "single-stream", TRUE, nullptr);
    head = {src, demux};
    dynamic = demux;
  } else if (is_scheme_of (uri.scheme, SchemeFamily::File)) {
    GError *error = nullptr;
    GCharPtr path{g_filename_from_uri (settings.location.c_str (), nullptr, &error)};
    if (!path) {
      std::string text = error ? error->message : "bad file URI";
      g_clear_error (&error);
      return text;
    }
    GstElement *src = make ("filesrc");
    GstElement *parse = make ("parsebin");
    if (src)
      g_object_set (src, "location", path.get (), nullptr);
    head = {src, parse};
    dynamic = parse;
  } else if (is_scheme_of (uri.scheme, SchemeFamily::Test)) {
    GstElement *src = make ("testcamerasrc");
    if (!src)
      return std::string ("testcamerasrc is not available");
    GError *error = nullptr;
    if (!GST_IS_URI_HANDLER (src)) {
      g_object_set (src, "location", settings.location.c_str (), nullptr);
    } else if (!gst_uri_handler_set_uri (GST_URI_HANDLER (src), settings.location.c_str (),
                   &error)) {
      std::string text = error ? error->message : "bad test URI";
      g_clear_error (&error);
      gst_object_unref (gst_object_ref_sink (src));
      return text;
    }
    head = {src};
    dynamic = src;
  } else {
    return "unsupported URI scheme '" + uri.scheme + "'";
  }

  if (dynamic)
    connect_dynamic_pads (self, generation, dynamic);
  if (!add_to_session (self, generation, head))
    return std::string ("could not build the camera chain");
  // testcamerasrc's pads exist from the start, already parsed.
  if (is_scheme_of (uri.scheme, SchemeFamily::Test)) {
    for (StreamKind kind : {StreamKind::Video, StreamKind::Audio}) {
      PadPtr pad{gst_element_get_static_pad (head.front (),
          kind == StreamKind::Video ? "video" : "audio")};
      if (pad)
        link_parsed_stream (self, generation, pad.get (), kind);
    }
    signal_no_more_pads (self, generation);
  }
  return std::nullopt;
}

// ---- session lifecycle (manager thread) ----------------------------------------

void
teardown_session (GstCameraSrc *self, bool in_state_change, std::chrono::milliseconds wait)
{
  GstCameraSrcPrivate &p = *self->priv;
  std::vector<ElementPtr> elements;
  {
    Lock lock (p.lock);
    p.generation++;
    elements.swap (p.session_elements);
    p.session_is_file = false;
    p.fault = FaultSlot ();
    p.session_warning.clear ();
    p.end_of_file = false;
    p.first_frame = false;
    for (Output *out : {&p.video, &p.audio})
      out->end_session ();
  }
  // Out of the bin, then to NULL without waiting for more than `wait`; never
  // under our lock.  A chain stuck on a camera that trickles a never-ending
  // answer stops in the background (retire_chain in handshake.h).
  if (!retire_chain (GST_BIN (self), std::move (elements), !in_state_change, wait, p.retiring)
      && wait.count () > 0)
    GST_WARNING_OBJECT (self, "the camera's previous chain is still stopping after %d ms: "
        "it stops in the background", static_cast<int> (wait.count ()));
}

}  // namespace camrelay::camerasrc
