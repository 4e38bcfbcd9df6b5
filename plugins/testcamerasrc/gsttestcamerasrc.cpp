// testcamerasrc, the GObject: properties, state changes and the URI
// handler.  The inside and its faults are in session.cpp; test:// URIs in
// testuri.cpp.
/**
 * SECTION:element-testcamerasrc
 * @title: testcamerasrc
 *
 * A live synthetic IP camera, for `test://` URIs: the embedded default
 * camera of camrelay and the basis of its tests.  It needs no network.
 *
 * Inside, a moving test pattern (`videotestsrc is-live=true pattern=ball`)
 * with the wall-clock time and the camera name burnt in (`clockoverlay`) is
 * encoded the way a camera would (`x264enc`, `x265enc` or `jpegenc`) and
 * parsed (`h264parse`/`h265parse config-interval=-1`, `jpegparse`).  The
 * always `video` pad carries byte-stream, access-unit aligned H.264 or H.265
 * whose keyframes carry their parameter sets, or parsed JPEG, with live
 * timestamps.  With audio requested, a sometimes `audio` pad is added when
 * the element starts (READY to PAUSED) and removed when it stops, followed
 * by `no-more-pads`: `audiotestsrc is-live=true` encoded as AAC, G.711 or
 * Opus.
 *
 * ## URI
 *
 * `test://NAME?key=value&key=value...`: NAME is only shown in the picture.
 * Every key is also a property of the same name; setting `location` sets
 * every property (absent keys take their defaults) and reading it back gives
 * the canonical URI of the current properties (non-default keys only, in a
 * fixed order).  An unknown key, a repeated key or a bad value refuses the
 * URI with a #GST_URI_ERROR_BAD_URI error that names the key.
 *
 * - `width`, `height`: picture size in pixels, even, 16 to 8192 (1280x720)
 * - `framerate`: frames per second, `N` or `N/D`, 0.1 to 240 (30)
 * - `gop`: frames from one keyframe to the next, 1 to 3000 (30)
 * - `bitrate`: kbit/s, 16 to 100000 (2000); ignored by `jpeg`
 * - `codec`: `h264`, `h265` or `jpeg` (h264)
 * - `audio`: `none`, `aac`, `alaw`, `mulaw` or `opus` (none)
 *
 * Faults, in seconds (a decimal number such as `2` or `0.5`) of running
 * time counted from the first buffer of the stream (video or audio); 0 or
 * absent means off:
 * - `drop-after=N`: after N s, post one GST_ELEMENT_ERROR (RESOURCE, READ,
 *   "connection dropped (simulated)") and send nothing more, like a camera
 *   whose connection dropped.
 * - `stall-after=N`, `stall-duration=M`: send nothing from N s for M s
 *   (0 or absent: forever), without any error, like a connection that stays
 *   open but carries no data.
 * - `resize-every=N`: switch between `width`x`height` and
 *   `resize-width`x`resize-height` every N s (a new keyframe, parameter sets
 *   and caps each time).  `resize-width`/`resize-height` default to half the
 *   size (0), rounded down to even.
 * - `garbage-after=N`, `garbage-duration=M`: from N s for M s (0 or absent:
 *   forever), random bytes replace the encoder's output in front of the
 *   parser, which finds no frames in them.  The bytes never contain a zero
 *   or 0xFF byte, so that no H.264/H.265 start code nor JPEG marker can
 *   appear by chance.
 *
 * All faults stop the audio too (garbage included: random bytes would only
 * teach an audio parser to post errors, which real cameras do not provoke).
 * When a stall or garbage ends, the first buffer that goes out again is
 * flagged DISCONT and a keyframe is requested from the encoder, so that the
 * picture recovers within a frame or two; the buffers until that keyframe
 * are the delta units a real camera would send.
 *
 * Faults are driven by the timestamps of the stream itself, in the streaming
 * threads that carry it: no timer, no thread of our own, nothing to cancel
 * when the element stops.  Properties can only be changed in the NULL and
 * READY states; they take effect when the element next starts, and every
 * start is a new stream whose fault times count from its first buffer.
 *
 * ## Example launch lines
 * |[
 * gst-launch-1.0 testcamerasrc location="test://cam1?width=640&height=360&gop=15" ! \
 *     avdec_h264 ! videoconvert ! autovideosink
 * ]| Shows a 640x360 camera with a keyframe every half second.
 * |[
 * gst-launch-1.0 testcamerasrc location="test://door?codec=h265&audio=aac" name=cam \
 *     cam.video ! queue ! avdec_h265 ! videoconvert ! autovideosink \
 *     cam.audio ! queue ! avdec_aac ! audioconvert ! autoaudiosink
 * ]| An H.265 camera with AAC sound.
 * |[
 * gst-launch-1.0 testcamerasrc location="test://flaky?resize-every=2&drop-after=7" ! \
 *     avdec_h264 ! videoconvert ! autovideosink
 * ]| Switches between 1280x720 and 640x360 every 2 s, and fails after 7 s.
 */

#include "testcamerasrc/gsttestcamerasrcprivate.h"

#include "common/gstref.h"

GST_DEBUG_CATEGORY (test_camera_src_debug);
GST_DEBUG_CATEGORY (test_camera_src_dataflow);
#define GST_CAT_DEFAULT test_camera_src_debug

using namespace camrelay::testcamera;

namespace {

enum {
  PROP_0,
  PROP_LOCATION,
  PROP_WIDTH,
  PROP_HEIGHT,
  PROP_FRAMERATE,
  PROP_GOP,
  PROP_BITRATE,
  PROP_CODEC,
  PROP_AUDIO,
  PROP_DROP_AFTER,
  PROP_STALL_AFTER,
  PROP_STALL_DURATION,
  PROP_RESIZE_EVERY,
  PROP_RESIZE_WIDTH,
  PROP_RESIZE_HEIGHT,
  PROP_GARBAGE_AFTER,
  PROP_GARBAGE_DURATION,
};

GstStaticPadTemplate video_template = GST_STATIC_PAD_TEMPLATE ("video", GST_PAD_SRC,
    GST_PAD_ALWAYS,
    GST_STATIC_CAPS ("video/x-h264, stream-format = (string) byte-stream, "
                     "alignment = (string) au; "
                     "video/x-h265, stream-format = (string) byte-stream, "
                     "alignment = (string) au; "
                     "image/jpeg"));
GstStaticPadTemplate audio_template = GST_STATIC_PAD_TEMPLATE ("audio", GST_PAD_SRC,
    GST_PAD_SOMETIMES,
    GST_STATIC_CAPS ("audio/mpeg, mpegversion = (int) 4; audio/x-alaw; audio/x-mulaw; "
                     "audio/x-opus"));

}  // namespace

static void gst_test_camera_src_uri_handler_init (gpointer g_iface, gpointer iface_data);

#define gst_test_camera_src_parent_class parent_class
G_DEFINE_TYPE_WITH_CODE (GstTestCameraSrc, gst_test_camera_src, GST_TYPE_BIN,
    G_IMPLEMENT_INTERFACE (GST_TYPE_URI_HANDLER, gst_test_camera_src_uri_handler_init);
    GST_DEBUG_CATEGORY_INIT (test_camera_src_debug, "testcamerasrc", 0,
        "testcamerasrc: synthetic live camera");
    GST_DEBUG_CATEGORY_INIT (test_camera_src_dataflow, "testcamerasrc_dataflow", 0,
        "testcamerasrc: per-buffer fault decisions"));

GST_ELEMENT_REGISTER_DEFINE (testcamerasrc, "testcamerasrc", GST_RANK_NONE,
    GST_TYPE_TEST_CAMERA_SRC);

namespace {

using Lock = std::lock_guard<std::mutex>;

// A dimension set as a property: even, and 0 only where it means "half".
guint
sanitize_dimension (GstTestCameraSrc *self, const char *name, guint value, bool zero_allowed)
{
  if (value == 0 && zero_allowed)
    return 0;
  guint sane = CLAMP (value, MIN_DIMENSION, MAX_DIMENSION) & ~1u;
  if (sane != value)
    GST_WARNING_OBJECT (self, "%s %u is not an even number from %u to %u: using %u", name,
        value, MIN_DIMENSION, MAX_DIMENSION, sane);
  return sane;
}

// ---- properties --------------------------------------------------------------

// Applies a property to `s`; false for `location`, handled by the caller.
bool
set_setting (GstTestCameraSrc *self, Settings &s, guint prop_id, const GValue *value)
{
  switch (prop_id) {
    case PROP_WIDTH:
      s.width = sanitize_dimension (self, "width", g_value_get_uint (value), false);
      break;
    case PROP_HEIGHT:
      s.height = sanitize_dimension (self, "height", g_value_get_uint (value), false);
      break;
    case PROP_FRAMERATE:
      s.fps_n = gst_value_get_fraction_numerator (value);
      s.fps_d = gst_value_get_fraction_denominator (value);
      break;
    case PROP_GOP:
      s.gop = g_value_get_uint (value);
      break;
    case PROP_BITRATE:
      s.bitrate = g_value_get_uint (value);
      break;
    case PROP_CODEC:
      s.codec = static_cast<GstTestCameraSrcCodec> (g_value_get_enum (value));
      break;
    case PROP_AUDIO:
      s.audio = static_cast<GstTestCameraSrcAudio> (g_value_get_enum (value));
      break;
    case PROP_DROP_AFTER:
      s.drop_after = g_value_get_uint64 (value);
      break;
    case PROP_STALL_AFTER:
      s.stall_after = g_value_get_uint64 (value);
      break;
    case PROP_STALL_DURATION:
      s.stall_duration = g_value_get_uint64 (value);
      break;
    case PROP_RESIZE_EVERY:
      s.resize_every = g_value_get_uint64 (value);
      break;
    case PROP_RESIZE_WIDTH:
      s.resize_width = sanitize_dimension (self, "resize-width", g_value_get_uint (value), true);
      break;
    case PROP_RESIZE_HEIGHT:
      s.resize_height =
          sanitize_dimension (self, "resize-height", g_value_get_uint (value), true);
      break;
    case PROP_GARBAGE_AFTER:
      s.garbage_after = g_value_get_uint64 (value);
      break;
    case PROP_GARBAGE_DURATION:
      s.garbage_duration = g_value_get_uint64 (value);
      break;
    default:
      return false;
  }
  return true;
}

// Replaces every setting from a URI.  Refused while running.
bool
set_location (GstTestCameraSrc *self, const char *uri, GError **error)
{
  GstTestCameraSrcPrivate &p = *self->priv;
  Settings parsed;
  bool ok = parse_uri (uri, parsed, error);
  Lock lock (p.lock);
  if (p.running) {
    g_clear_error (error);
    g_set_error (error, GST_URI_ERROR, GST_URI_ERROR_BAD_STATE,
        "testcamerasrc: the location cannot change while the element is running");
    return false;
  }
  if (!ok) {
    p.location_error = (error && *error) ? (*error)->message : "Invalid test:// URI";
    return false;
  }
  p.settings = std::move (parsed);
  p.location_error.clear ();
  return true;
}

}  // namespace

static void
gst_test_camera_src_set_property (GObject *object, guint prop_id, const GValue *value,
    GParamSpec *pspec)
{
  GstTestCameraSrc *self = GST_TEST_CAMERA_SRC (object);
  GstTestCameraSrcPrivate &p = *self->priv;

  if (prop_id == PROP_LOCATION) {
    GError *raw_error = nullptr;
    if (!set_location (self, g_value_get_string (value), &raw_error)) {
      camrelay::GErrorPtr error{raw_error};
      // The element refuses to start until a good location is set.
      GST_WARNING_OBJECT (self, "location refused: %s", error ? error->message : "?");
    }
    return;
  }

  Lock lock (p.lock);
  if (p.running) {
    GST_WARNING_OBJECT (self, "'%s' cannot change while the element is running: ignored",
        pspec->name);
    return;
  }
  if (!set_setting (self, p.settings, prop_id, value))
    G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
}

static void
gst_test_camera_src_get_property (GObject *object, guint prop_id, GValue *value,
    GParamSpec *pspec)
{
  GstTestCameraSrc *self = GST_TEST_CAMERA_SRC (object);
  GstTestCameraSrcPrivate &p = *self->priv;
  Lock lock (p.lock);
  const Settings &s = p.settings;

  switch (prop_id) {
    case PROP_LOCATION:
      g_value_set_string (value, build_uri (s).c_str ());
      break;
    case PROP_WIDTH:
      g_value_set_uint (value, s.width);
      break;
    case PROP_HEIGHT:
      g_value_set_uint (value, s.height);
      break;
    case PROP_FRAMERATE:
      gst_value_set_fraction (value, s.fps_n, s.fps_d);
      break;
    case PROP_GOP:
      g_value_set_uint (value, s.gop);
      break;
    case PROP_BITRATE:
      g_value_set_uint (value, s.bitrate);
      break;
    case PROP_CODEC:
      g_value_set_enum (value, s.codec);
      break;
    case PROP_AUDIO:
      g_value_set_enum (value, s.audio);
      break;
    case PROP_DROP_AFTER:
      g_value_set_uint64 (value, s.drop_after);
      break;
    case PROP_STALL_AFTER:
      g_value_set_uint64 (value, s.stall_after);
      break;
    case PROP_STALL_DURATION:
      g_value_set_uint64 (value, s.stall_duration);
      break;
    case PROP_RESIZE_EVERY:
      g_value_set_uint64 (value, s.resize_every);
      break;
    case PROP_RESIZE_WIDTH:
      g_value_set_uint (value, s.resize_width);
      break;
    case PROP_RESIZE_HEIGHT:
      g_value_set_uint (value, s.resize_height);
      break;
    case PROP_GARBAGE_AFTER:
      g_value_set_uint64 (value, s.garbage_after);
      break;
    case PROP_GARBAGE_DURATION:
      g_value_set_uint64 (value, s.garbage_duration);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
}

static GstStateChangeReturn
gst_test_camera_src_change_state (GstElement *element, GstStateChange transition)
{
  GstTestCameraSrc *self = GST_TEST_CAMERA_SRC (element);

  if (transition == GST_STATE_CHANGE_READY_TO_PAUSED && !start_session (self)) {
    stop_session (self);
    return GST_STATE_CHANGE_FAILURE;
  }

  GstStateChangeReturn ret = GST_ELEMENT_CLASS (parent_class)->change_state (element, transition);

  if (transition == GST_STATE_CHANGE_PAUSED_TO_READY
      || (transition == GST_STATE_CHANGE_READY_TO_PAUSED && ret == GST_STATE_CHANGE_FAILURE))
    stop_session (self);
  return ret;
}

static void
gst_test_camera_src_finalize (GObject *object)
{
  GstTestCameraSrc *self = GST_TEST_CAMERA_SRC (object);
  delete self->priv;
  self->priv = nullptr;
  G_OBJECT_CLASS (parent_class)->finalize (object);
}

static void
gst_test_camera_src_class_init (GstTestCameraSrcClass *klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);

  gobject_class->set_property = gst_test_camera_src_set_property;
  gobject_class->get_property = gst_test_camera_src_get_property;
  gobject_class->finalize = gst_test_camera_src_finalize;
  element_class->change_state = gst_test_camera_src_change_state;

  constexpr auto rw = static_cast<GParamFlags> (
      G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY);

  g_object_class_install_property (gobject_class, PROP_LOCATION,
      g_param_spec_string ("location", "Location",
          "test://NAME?key=value&... URI; sets every other property (absent keys: their "
          "defaults); reads back as the canonical URI of the current properties",
          "test://", rw));
  g_object_class_install_property (gobject_class, PROP_WIDTH,
      g_param_spec_uint ("width", "Width", "Picture width in pixels (even)", MIN_DIMENSION,
          MAX_DIMENSION, DEFAULT_WIDTH, rw));
  g_object_class_install_property (gobject_class, PROP_HEIGHT,
      g_param_spec_uint ("height", "Height", "Picture height in pixels (even)", MIN_DIMENSION,
          MAX_DIMENSION, DEFAULT_HEIGHT, rw));
  g_object_class_install_property (gobject_class, PROP_FRAMERATE,
      gst_param_spec_fraction ("framerate", "Frame rate", "Frames per second (1/10 to 240)",
          1, 10, 240, 1, DEFAULT_FPS_N, DEFAULT_FPS_D, rw));
  g_object_class_install_property (gobject_class, PROP_GOP,
      g_param_spec_uint ("gop", "GOP length",
          "Frames from one keyframe to the next (1 = every frame a keyframe)", 1, MAX_GOP,
          DEFAULT_GOP, rw));
  g_object_class_install_property (gobject_class, PROP_BITRATE,
      g_param_spec_uint ("bitrate", "Bitrate",
          "Video bitrate in kbit/s (ignored by codec=jpeg)", MIN_BITRATE, MAX_BITRATE,
          DEFAULT_BITRATE, rw));
  g_object_class_install_property (gobject_class, PROP_CODEC,
      g_param_spec_enum ("codec", "Codec", "Video codec", GST_TYPE_TEST_CAMERA_SRC_CODEC,
          DEFAULT_CODEC, rw));
  g_object_class_install_property (gobject_class, PROP_AUDIO,
      g_param_spec_enum ("audio", "Audio", "Audio codec of the audio pad (none: no audio pad)",
          GST_TYPE_TEST_CAMERA_SRC_AUDIO, DEFAULT_AUDIO, rw));
  g_object_class_install_property (gobject_class, PROP_DROP_AFTER,
      g_param_spec_uint64 ("drop-after", "Drop after",
          "Post an error and send nothing more this long after the first buffer, in "
          "nanoseconds (0 = never)", 0, MAX_FAULT_TIME, 0, rw));
  g_object_class_install_property (gobject_class, PROP_STALL_AFTER,
      g_param_spec_uint64 ("stall-after", "Stall after",
          "Stop sending, without error, this long after the first buffer, in nanoseconds "
          "(0 = never)", 0, MAX_FAULT_TIME, 0, rw));
  g_object_class_install_property (gobject_class, PROP_STALL_DURATION,
      g_param_spec_uint64 ("stall-duration", "Stall duration",
          "How long a stall lasts, in nanoseconds (0 = forever)", 0, MAX_FAULT_TIME, 0, rw));
  g_object_class_install_property (gobject_class, PROP_RESIZE_EVERY,
      g_param_spec_uint64 ("resize-every", "Resize every",
          "Switch between width x height and resize-width x resize-height this often, in "
          "nanoseconds (0 = never)", 0, MAX_FAULT_TIME, 0, rw));
  g_object_class_install_property (gobject_class, PROP_RESIZE_WIDTH,
      g_param_spec_uint ("resize-width", "Resize width",
          "Width in pixels of the other size (even; 0 = half of width)", 0, MAX_DIMENSION, 0,
          rw));
  g_object_class_install_property (gobject_class, PROP_RESIZE_HEIGHT,
      g_param_spec_uint ("resize-height", "Resize height",
          "Height in pixels of the other size (even; 0 = half of height)", 0, MAX_DIMENSION,
          0, rw));
  g_object_class_install_property (gobject_class, PROP_GARBAGE_AFTER,
      g_param_spec_uint64 ("garbage-after", "Garbage after",
          "Send random bytes instead of the encoded stream from this long after the first "
          "buffer, in nanoseconds (0 = never)", 0, MAX_FAULT_TIME, 0, rw));
  g_object_class_install_property (gobject_class, PROP_GARBAGE_DURATION,
      g_param_spec_uint64 ("garbage-duration", "Garbage duration",
          "How long garbage lasts, in nanoseconds (0 = forever)", 0, MAX_FAULT_TIME, 0, rw));

  gst_element_class_add_static_pad_template (element_class, &video_template);
  gst_element_class_add_static_pad_template (element_class, &audio_template);
  gst_element_class_set_static_metadata (element_class, "Test camera source", "Source/Video",
      "A live synthetic IP camera for test:// URIs, which can be told to fail",
      "camrelay developers");

  gst_type_mark_as_plugin_api (GST_TYPE_TEST_CAMERA_SRC_CODEC,
      static_cast<GstPluginAPIFlags> (0));
  gst_type_mark_as_plugin_api (GST_TYPE_TEST_CAMERA_SRC_AUDIO,
      static_cast<GstPluginAPIFlags> (0));
}

static void
gst_test_camera_src_init (GstTestCameraSrc *self)
{
  self->priv = new GstTestCameraSrcPrivate ();
  camrelay::ObjectPtr<GstPadTemplate> templ{gst_static_pad_template_get (&video_template)};
  self->video_pad = gst_ghost_pad_new_no_target_from_template ("video", templ.get ());
  gst_element_add_pad (GST_ELEMENT (self), self->video_pad);
}

// ---- GstURIHandler -------------------------------------------------------------

static GstURIType
gst_test_camera_src_uri_get_type (GType)
{
  return GST_URI_SRC;
}

static const gchar *const *
gst_test_camera_src_uri_get_protocols (GType)
{
  static const gchar *protocols[] = {SCHEME, nullptr};
  return protocols;
}

static gchar *
gst_test_camera_src_uri_get_uri (GstURIHandler *handler)
{
  GstTestCameraSrc *self = GST_TEST_CAMERA_SRC (handler);
  Lock lock (self->priv->lock);
  return g_strdup (build_uri (self->priv->settings).c_str ());
}

static gboolean
gst_test_camera_src_uri_set_uri (GstURIHandler *handler, const gchar *uri, GError **error)
{
  GstTestCameraSrc *self = GST_TEST_CAMERA_SRC (handler);
  if (!set_location (self, uri, error))
    return FALSE;
  g_object_notify (G_OBJECT (self), "location");
  return TRUE;
}

static void
gst_test_camera_src_uri_handler_init (gpointer g_iface, gpointer)
{
  GstURIHandlerInterface *iface = static_cast<GstURIHandlerInterface *> (g_iface);
  iface->get_type = gst_test_camera_src_uri_get_type;
  iface->get_protocols = gst_test_camera_src_uri_get_protocols;
  iface->get_uri = gst_test_camera_src_uri_get_uri;
  iface->set_uri = gst_test_camera_src_uri_set_uri;
}
