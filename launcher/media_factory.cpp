// The RTSP side of a camera's mount: the media factory (one shared media per
// camera, rebuilt when the camera's codec changes), its media type, and what
// the relay knows of the video and audio it can send (payloaders, checks of
// a camera's pipeline fragment).
#include "media_factory.h"

#include <algorithm>
#include <vector>

#include "common/codecs.h"

namespace camrelay::launcher {

const char *
caps_name (const GstCaps *caps)
{
  if (!caps || gst_caps_is_empty (caps))
    return "";
  return gst_structure_get_name (gst_caps_get_structure (caps, 0));
}

// The RTP payloader for the camera's video, or nullptr (common/codecs.h).
const char *
video_payloader (const GstCaps *caps)
{
  const CodecRow *codec = codec_by_caps_name (caps_name (caps));
  return codec && codec->kind == MediaKind::Video ? codec->payloader : nullptr;
}

// Every video the relay sends ("video/x-h264; video/x-h265; image/jpeg").
camrelay::CapsPtr
relayed_video_caps ()
{
  GstCaps *caps = gst_caps_new_empty ();
  for (const CodecRow &codec : CODECS)
    if (codec.kind == MediaKind::Video)
      gst_caps_append_structure (caps, gst_structure_new_empty (codec.caps_name));
  return camrelay::CapsPtr{caps};
}

// The element between the audio appsrc and the RTP payloader (or nullptr),
// and the payloader, for the camera's audio; nullptr when it cannot be
// carried (common/codecs.h).
const char *
audio_payloader (const GstCaps *caps, const char **parser)
{
  const CodecRow *codec = codec_by_caps_name (caps_name (caps));
  const bool audio = codec && codec->kind == MediaKind::Audio;
  *parser = audio ? codec->payload_parser : nullptr;
  return audio ? codec->payloader : nullptr;
}

namespace {

// The media types of `caps`, once each: "video/x-raw, image/png"; "anything"; "nothing".
std::string
media_types (const GstCaps *caps)
{
  if (!caps || gst_caps_is_empty (caps))
    return "nothing";
  if (gst_caps_is_any (caps))
    return "anything";
  std::vector<std::string> names;
  for (guint i = 0; i < gst_caps_get_size (caps); i++) {
    const std::string name = gst_structure_get_name (gst_caps_get_structure (caps, i));
    if (std::find (names.begin (), names.end (), name) == names.end ())
      names.push_back (name);
  }
  std::string text;
  for (const std::string &name : names)
    text += (text.empty () ? "" : ", ") + name;
  return text;
}

}  // namespace

std::string
pipeline_problem (const CameraConfig &camera)
{
  if (camera.pipeline.empty ())
    return "";
  std::string problem;
  ElementPtr bin = parse_pipeline_fragment (camera.pipeline, problem);
  if (!bin)
    return problem;
  PadPtr input{gst_element_get_static_pad (bin.get (), "sink")};
  PadPtr output{gst_element_get_static_pad (bin.get (), "src")};
  // It gets the camera's compressed video and must give video the relay
  // sends: what its ends accept must meet that.
  CapsPtr relayed = relayed_video_caps ();
  CapsPtr takes{gst_pad_query_caps (input.get (), nullptr)};
  if (!takes || !gst_caps_can_intersect (takes.get (), relayed.get ()))
    return "cannot take the camera's video (" + media_types (relayed.get ())
        + "); its input takes " + media_types (takes.get ());
  CapsPtr gives{gst_pad_query_caps (output.get (), nullptr)};
  if (!gives || !gst_caps_can_intersect (gives.get (), relayed.get ()))
    return "gives no video the relay can send (" + media_types (relayed.get ())
        + "); its output gives " + media_types (gives.get ());
  return "";
}

}  // namespace camrelay::launcher

// ---- the RTSP media of a camera: knows its camera and its generation ---------

using camrelay::launcher::Camera;
using camrelay::launcher::audio_payloader;
using camrelay::launcher::caps_name;
using camrelay::launcher::video_payloader;

#define CAMRELAY_TYPE_MEDIA (camrelay_media_get_type ())
G_DECLARE_FINAL_TYPE (CamrelayMedia, camrelay_media, CAMRELAY, MEDIA, GstRTSPMedia)

struct _CamrelayMedia {
  GstRTSPMedia parent;
  std::weak_ptr<Camera> *camera;  // set in the factory's configure
  unsigned generation;
};

G_DEFINE_TYPE (CamrelayMedia, camrelay_media, GST_TYPE_RTSP_MEDIA)

// An error in the media's pipeline (a payloader refusing new caps, ...):
// the next client gets a new media instead of this broken one.
static gboolean
camrelay_media_handle_message (GstRTSPMedia *media, GstMessage *message)
{
  auto *self = CAMRELAY_MEDIA (media);
  // gst-rtsp-server (1.22) recalculates the latency right in the media's bus
  // thread, under its own locks; that waits for the pipeline's state lock,
  // and a concurrent unprepare holds that state lock while it waits for one
  // of those locks (seen: stop hanging under load).  Done from GStreamer's
  // own thread pool instead, it just waits for the state change to finish.
  if (GST_MESSAGE_TYPE (message) == GST_MESSAGE_LATENCY) {
    camrelay::ElementPtr element{gst_rtsp_media_get_element (media)};
    if (GstObject *pipeline = element ? gst_object_get_parent (GST_OBJECT (element.get ())) : nullptr) {
      gst_element_call_async (GST_ELEMENT (pipeline),
          [] (GstElement *pipeline, gpointer) { gst_bin_recalculate_latency (GST_BIN (pipeline)); },
          nullptr, nullptr);
      gst_object_unref (pipeline);
      return TRUE;
    }
  }
  if (GST_MESSAGE_TYPE (message) == GST_MESSAGE_ERROR && self->camera) {
    if (auto camera = self->camera->lock ()) {
      GError *error = nullptr;
      gst_message_parse_error (message, &error, nullptr);
      camera->media_failed (media, self->generation, error ? error->message : "unknown error");
      g_clear_error (&error);
    }
  }
  return GST_RTSP_MEDIA_CLASS (camrelay_media_parent_class)->handle_message (media, message);
}

static void
camrelay_media_finalize (GObject *object)
{
  delete CAMRELAY_MEDIA (object)->camera;
  G_OBJECT_CLASS (camrelay_media_parent_class)->finalize (object);
}

static void
camrelay_media_class_init (CamrelayMediaClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = camrelay_media_finalize;
  GST_RTSP_MEDIA_CLASS (klass)->handle_message = camrelay_media_handle_message;
}

static void
camrelay_media_init (CamrelayMedia *self)
{
  self->camera = nullptr;
  self->generation = 0;
}

// ---- the media factory of a camera's mount ------------------------------------

#define CAMRELAY_TYPE_MEDIA_FACTORY (camrelay_media_factory_get_type ())
G_DECLARE_FINAL_TYPE (CamrelayMediaFactory, camrelay_media_factory, CAMRELAY, MEDIA_FACTORY,
    GstRTSPMediaFactory)

struct _CamrelayMediaFactory {
  GstRTSPMediaFactory parent;
  std::weak_ptr<Camera> *camera;
};

G_DEFINE_TYPE (CamrelayMediaFactory, camrelay_media_factory, GST_TYPE_RTSP_MEDIA_FACTORY)

static const char *const kGenerationKey = "camrelay-generation";
// The generation of a media built with no camera video to feed it.
static const unsigned kDoomedGeneration = G_MAXUINT;

// Adds `first ! ... ! payloader` (named `pay_name`) for `caps` to `bin`;
// returns the appsrc, or nullptr (and adds nothing) when an element is missing.
static GstElement *
add_track (GstBin *bin, const char *src_name, const GstCaps *caps, const char *parser,
    const char *payloader, const char *pay_name, const std::string &camera)
{
  GstElement *src = gst_element_factory_make ("appsrc", src_name);
  GstElement *parse = parser ? gst_element_factory_make (parser, nullptr) : nullptr;
  GstElement *pay = gst_element_factory_make (payloader, pay_name);
  if (!src || (parser && !parse) || !pay) {
    camrelay::launcher::log_line ("camera %s: missing GStreamer element %s", camera.c_str (),
        !src ? "appsrc" : (parser && !parse) ? parser : payloader);
    for (GstElement *e : {src, parse, pay})
      if (e)
        gst_object_unref (gst_object_ref_sink (e));
    return nullptr;
  }
  // Live, timestamped by the camera; a bounded backlog (the media may be
  // momentarily slower than the camera), the oldest dropped first.
  g_object_set (src, "is-live", TRUE, "format", GST_FORMAT_TIME, "do-timestamp", FALSE, "caps",
      caps, "max-bytes", static_cast<guint64> (0), "max-time",
      static_cast<guint64> (2 * GST_SECOND), nullptr);
  gst_util_set_object_arg (G_OBJECT (src), "leaky-type", "downstream");
  g_object_set (pay, "pt", g_str_has_prefix (pay_name, "pay0") ? 96 : 97, nullptr);
  // camerasrc's keyframes already carry their parameter sets: sending them
  // again as packets of their own gives players (ffmpeg) duplicate DTS.
  if (g_object_class_find_property (G_OBJECT_GET_CLASS (pay), "config-interval"))
    g_object_set (pay, "config-interval", 0, nullptr);
  gst_bin_add_many (bin, src, pay, nullptr);
  if (parse)
    gst_bin_add (bin, parse);
  const bool linked = parse ? gst_element_link_many (src, parse, pay, nullptr)
                            : gst_element_link (src, pay);
  if (!linked) {
    camrelay::launcher::log_line ("camera %s: %s does not link to %s", camera.c_str (),
        parser ? parser : "appsrc", payloader);
    for (GstElement *e : {src, parse, pay})
      if (e)
        gst_bin_remove (bin, e);
    return nullptr;
  }
  return src;
}

// The media's element: appsrc ! payloader (pay0) for the video, and
// appsrc ! [parser] ! payloader (pay1) for the audio when the camera has it.
static GstElement *
camrelay_media_factory_create_element (GstRTSPMediaFactory *factory, const GstRTSPUrl *)
{
  // Called under the factory's media lock: nothing here waits.  The client
  // waited for the camera's video in its DESCRIBE; should the camera have
  // lost it since (stopped, removed), the media is built all the same and
  // made to fail at once (configure), which answers the client 503.
  // (Returning nullptr would do too, but gst-rtsp-server logs a CRITICAL.)
  auto camera = CAMRELAY_MEDIA_FACTORY (factory)->camera->lock ();
  Camera::MediaPlan plan;
  if (camera)
    plan = camera->plan_media ();
  const std::string name = camera ? camera->config ().name : "?";
  if (!plan.video) {
    plan.video.reset (gst_caps_new_simple ("video/x-h264", "stream-format", G_TYPE_STRING,
        "byte-stream", "alignment", G_TYPE_STRING, "au", nullptr));
    plan.audio.reset ();
    plan.generation = kDoomedGeneration;
  }
  const char *payloader = video_payloader (plan.video.get ());
  if (!payloader) {
    camrelay::launcher::log_line ("camera %s: cannot relay video of type %s", name.c_str (),
        caps_name (plan.video.get ()));
    return nullptr;
  }
  GstElement *bin = gst_bin_new (nullptr);
  if (!add_track (GST_BIN (bin), "src", plan.video.get (), nullptr, payloader, "pay0", name)) {
    gst_object_unref (gst_object_ref_sink (bin));
    return nullptr;
  }
  const char *parser = nullptr;
  if (plan.audio) {
    if (const char *audio = audio_payloader (plan.audio.get (), &parser))
      add_track (GST_BIN (bin), "asrc", plan.audio.get (), parser, audio, "pay1", name);
    else
      camrelay::launcher::log_line ("camera %s: cannot relay audio of type %s; video only",
          name.c_str (), caps_name (plan.audio.get ()));
  }
  g_object_set_data (G_OBJECT (bin), kGenerationKey, GUINT_TO_POINTER (plan.generation));
  return bin;
}

// The cache key of the shared media carries the camera's media generation:
// once the camera retires its media, the next client gets a new one.
static gchar *
camrelay_media_factory_gen_key (GstRTSPMediaFactory *factory, const GstRTSPUrl *url)
{
  gchar *key = GST_RTSP_MEDIA_FACTORY_CLASS (camrelay_media_factory_parent_class)->gen_key (
      factory, url);
  auto camera = CAMRELAY_MEDIA_FACTORY (factory)->camera->lock ();
  if (!key || !camera)
    return key;
  gchar *full = g_strdup_printf ("%s#%u", key, camera->generation ());
  g_free (key);
  return full;
}

static void
camrelay_media_factory_configure (GstRTSPMediaFactory *factory, GstRTSPMedia *media)
{
  GST_RTSP_MEDIA_FACTORY_CLASS (camrelay_media_factory_parent_class)->configure (factory, media);
  auto camera = CAMRELAY_MEDIA_FACTORY (factory)->camera->lock ();
  if (!CAMRELAY_IS_MEDIA (media))
    return;
  camrelay::ElementPtr element{gst_rtsp_media_get_element (media)};
  camrelay::ElementPtr video{gst_bin_get_by_name (GST_BIN (element.get ()), "src")};
  camrelay::ElementPtr audio{gst_bin_get_by_name (GST_BIN (element.get ()), "asrc")};
  auto *self = CAMRELAY_MEDIA (media);
  self->generation = GPOINTER_TO_UINT (g_object_get_data (G_OBJECT (element.get ()), kGenerationKey));
  if (!camera || self->generation == kDoomedGeneration) {
    // Nothing will feed it: a live media would wait for its first data
    // forever.  The error (handled once the media prepares) fails it.
    GError *error = g_error_new_literal (GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NOT_FOUND,
        "the camera has no video");
    gst_element_post_message (video.get (), gst_message_new_error (GST_OBJECT (video.get ()), error, nullptr));
    g_error_free (error);
    return;
  }
  self->camera = new std::weak_ptr<Camera> (camera);
  // Every media keeps its GOP (cheap: references to packets sent anyway);
  // whether joins use it is decided at each PLAY, so a reload can turn
  // instant start on and off without replacing the media.
  camrelay::ElementPtr payloader{gst_bin_get_by_name (GST_BIN (element.get ()), "pay0")};
  std::shared_ptr<camrelay::GopCache> cache = payloader
      ? camrelay::launcher::attach_gop_cache (media, payloader.get (), camera->instant_start (),
          camera->config ().name)
      : nullptr;
  camera->attach_media (media, video.get (), audio.get (), self->generation, std::move (cache));
  g_signal_connect (media, "prepared", G_CALLBACK (+[] (GstRTSPMedia *media, gpointer) {
    auto *m = CAMRELAY_MEDIA (media);
    if (auto c = m->camera->lock ())
      c->media_prepared (media, m->generation);
  }), nullptr);
  g_signal_connect (media, "unprepared", G_CALLBACK (+[] (GstRTSPMedia *media, gpointer) {
    if (auto c = CAMRELAY_MEDIA (media)->camera->lock ())
      c->media_unprepared (media);
  }), nullptr);
}

static void
camrelay_media_factory_finalize (GObject *object)
{
  delete CAMRELAY_MEDIA_FACTORY (object)->camera;
  G_OBJECT_CLASS (camrelay_media_factory_parent_class)->finalize (object);
}

static void
camrelay_media_factory_class_init (CamrelayMediaFactoryClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = camrelay_media_factory_finalize;
  auto *factory_class = GST_RTSP_MEDIA_FACTORY_CLASS (klass);
  factory_class->create_element = camrelay_media_factory_create_element;
  factory_class->configure = camrelay_media_factory_configure;
  factory_class->gen_key = camrelay_media_factory_gen_key;
}

static void
camrelay_media_factory_init (CamrelayMediaFactory *self)
{
  self->camera = nullptr;
}

GstRTSPMediaFactory *
camrelay::launcher::new_media_factory (const std::shared_ptr<Camera> &camera)
{
  auto *factory = CAMRELAY_MEDIA_FACTORY (g_object_new (CAMRELAY_TYPE_MEDIA_FACTORY, nullptr));
  factory->camera = new std::weak_ptr<Camera> (camera);
  gst_rtsp_media_factory_set_shared (GST_RTSP_MEDIA_FACTORY (factory), TRUE);
  gst_rtsp_media_factory_set_media_gtype (GST_RTSP_MEDIA_FACTORY (factory), CAMRELAY_TYPE_MEDIA);
  return GST_RTSP_MEDIA_FACTORY (factory);
}
