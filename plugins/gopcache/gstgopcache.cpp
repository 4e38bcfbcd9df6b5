// gopcache: passes RTP packets through untouched and keeps the current GOP
// (plugins/common/gop_cache.*), handed to the application by `get-burst`.
/**
 * SECTION:element-gopcache
 * @title: gopcache
 *
 * Put after an RTP video payloader (`rtph264pay`, `rtph265pay`...), it passes
 * every packet through untouched and keeps the stream's current GOP: the
 * packets from the last keyframe's first packet to the newest.  An
 * application that starts sending the stream to a new receiver asks it for a
 * catch-up burst with the `get-burst` action signal and sends that first, so
 * the receiver can decode at once instead of waiting for the next keyframe.
 *
 * A packet that starts a frame (a new RTP timestamp, or the one after a
 * marker) and is not flagged #GST_BUFFER_FLAG_DELTA_UNIT starts a new GOP, as
 * the payloaders flag them.  For H.264 and H.265 (the caps' encoding-name), a
 * frame with a packet that holds an IDR or IRAP picture starts one too, from
 * its first packet: rtph265pay 1.22 flags every packet of byte-stream input
 * as a delta unit.  In the burst, the frames before the newest one
 * are re-stamped copies whose RTP timestamps are one tick apart just below
 * the newest frame's, so that a receiver shows them at once and is live
 * right after; sequence numbers are the originals', so the live packets
 * that follow the burst continue them.
 *
 * No burst is given while the stream reorders frames (B-frames: a frame's
 * timestamp went back), nor for three whole GOPs after it last did, nor when
 * the GOP is over #GstGopCache:max-bytes: then a receiver starts at the
 * next keyframe, as without the element.  The cache is cleared on
 * FLUSH_STOP, on STREAM_START and when the element stops.
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 videotestsrc is-live=true ! x264enc tune=zerolatency key-int-max=60 ! \
 *     rtph264pay config-interval=-1 ! gopcache max-bytes=4194304 ! \
 *     udpsink host=127.0.0.1 port=5000
 * ]|
 * Sends H.264 over RTP and keeps the current GOP, up to 4 MiB, for the
 * application to fetch with `get-burst`.
 */

#include "gopcache/gstgopcache.h"

#include <atomic>
#include <string>

#include "common/gop_cache.h"

GST_DEBUG_CATEGORY_STATIC (gop_cache_debug);
#define GST_CAT_DEFAULT gop_cache_debug

namespace {

constexpr guint64 DEFAULT_MAX_BYTES = 8 * 1024 * 1024;

enum {
  PROP_0,
  PROP_MAX_BYTES,
  PROP_BYTES,
};

enum {
  SIGNAL_GET_BURST,
  LAST_SIGNAL,
};

guint signals[LAST_SIGNAL];

GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink", GST_PAD_SINK,
    GST_PAD_ALWAYS, GST_STATIC_CAPS ("application/x-rtp"));
GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src", GST_PAD_SRC,
    GST_PAD_ALWAYS, GST_STATIC_CAPS ("application/x-rtp"));

}  // namespace

// The streaming thread pushes into the cache; `get-burst` and the properties
// may be used from any thread: the cache has its own lock, and the limit is
// an atomic (so the getter needs no lock).
struct GstGopCachePrivate {
  std::atomic<guint64> max_bytes{DEFAULT_MAX_BYTES};
  camrelay::GopCache cache{DEFAULT_MAX_BYTES};
};

struct _GstGopCache {
  GstBaseTransform parent;
  GstGopCachePrivate *priv;
};

#define gst_gop_cache_parent_class parent_class
G_DEFINE_TYPE_WITH_CODE (GstGopCache, gst_gop_cache, GST_TYPE_BASE_TRANSFORM,
    GST_DEBUG_CATEGORY_INIT (gop_cache_debug, "gopcache", 0,
        "gopcache: the current GOP of an RTP stream"));

GST_ELEMENT_REGISTER_DEFINE (gopcache, "gopcache", GST_RANK_NONE, GST_TYPE_GOP_CACHE);

namespace {

GstFlowReturn
gst_gop_cache_transform_ip (GstBaseTransform *base, GstBuffer *buffer)
{
  GST_GOP_CACHE (base)->priv->cache.push (buffer);
  return GST_FLOW_OK;
}

gboolean
gst_gop_cache_sink_event (GstBaseTransform *base, GstEvent *event)
{
  GstGopCache *self = GST_GOP_CACHE (base);
  if (GST_EVENT_TYPE (event) == GST_EVENT_FLUSH_STOP
      || GST_EVENT_TYPE (event) == GST_EVENT_STREAM_START)
    GST_DEBUG_OBJECT (self, "%s: the GOP is forgotten", GST_EVENT_TYPE_NAME (event));
  self->priv->cache.handle_event (event);
  return GST_BASE_TRANSFORM_CLASS (parent_class)->sink_event (base, event);
}

gboolean
gst_gop_cache_stop (GstBaseTransform *base)
{
  GST_GOP_CACHE (base)->priv->cache.clear ();
  return TRUE;
}

GstBufferList *
gst_gop_cache_get_burst (GstGopCache *self, guint64 max_bytes)
{
  std::string why;
  camrelay::GopBurst burst = self->priv->cache.take (max_bytes > 0 ? max_bytes : G_MAXUINT64, why);
  if (burst.empty ()) {
    GST_DEBUG_OBJECT (self, "no burst: %s", why.c_str ());
    return nullptr;
  }
  GST_DEBUG_OBJECT (self, "burst of %u frames, %zu packets, %" G_GUINT64_FORMAT " bytes, "
      "seq %u to %u", burst.frames, burst.packets.size (), burst.bytes, burst.first_seq,
      burst.last_seq);
  GstBufferList *list = gst_buffer_list_new_sized (burst.packets.size ());
  for (camrelay::BufferPtr &packet : burst.packets)
    gst_buffer_list_add (list, packet.release ());
  return list;
}

void
gst_gop_cache_set_property (GObject *object, guint prop_id, const GValue *value, GParamSpec *pspec)
{
  GstGopCachePrivate &p = *GST_GOP_CACHE (object)->priv;
  switch (prop_id) {
    case PROP_MAX_BYTES:
      p.max_bytes = g_value_get_uint64 (value);
      p.cache.set_max_bytes (p.max_bytes);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
}

void
gst_gop_cache_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  GstGopCachePrivate &p = *GST_GOP_CACHE (object)->priv;
  switch (prop_id) {
    case PROP_MAX_BYTES:
      g_value_set_uint64 (value, p.max_bytes);
      break;
    case PROP_BYTES:
      g_value_set_uint64 (value, p.cache.bytes ());
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
}

void
gst_gop_cache_finalize (GObject *object)
{
  GstGopCache *self = GST_GOP_CACHE (object);
  delete self->priv;
  self->priv = nullptr;
  G_OBJECT_CLASS (parent_class)->finalize (object);
}

}  // namespace

static void
gst_gop_cache_class_init (GstGopCacheClass *klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstBaseTransformClass *transform_class = GST_BASE_TRANSFORM_CLASS (klass);

  gobject_class->set_property = gst_gop_cache_set_property;
  gobject_class->get_property = gst_gop_cache_get_property;
  gobject_class->finalize = gst_gop_cache_finalize;

  /**
   * GstGopCache:max-bytes:
   *
   * The most bytes of RTP packets (headers included) the current GOP may
   * hold.  A GOP that grows past it is dropped, and nothing is kept until
   * the next keyframe.  0 keeps nothing.
   */
  g_object_class_install_property (gobject_class, PROP_MAX_BYTES,
      g_param_spec_uint64 ("max-bytes", "Max bytes",
          "Most bytes of RTP packets the current GOP may hold; a bigger GOP is dropped "
          "until the next keyframe (0 = keep nothing)",
          0, G_MAXUINT64, DEFAULT_MAX_BYTES,
          static_cast<GParamFlags> (G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS
              | GST_PARAM_MUTABLE_PLAYING)));
  /**
   * GstGopCache:bytes:
   *
   * Bytes of RTP packets of the GOP held now (0 when there is none).  The
   * packets are those that went downstream, shared, not copies.
   */
  g_object_class_install_property (gobject_class, PROP_BYTES,
      g_param_spec_uint64 ("bytes", "Bytes", "Bytes of RTP packets of the GOP held now",
          0, G_MAXUINT64, 0,
          static_cast<GParamFlags> (G_PARAM_READABLE | G_PARAM_STATIC_STRINGS)));

  /**
   * GstGopCache::get-burst:
   * @gopcache: the element
   * @max_bytes: the most bytes the burst may hold, 0 for no limit but
   *   #GstGopCache:max-bytes
   *
   * The current GOP as a catch-up burst for a new receiver: the keyframe's
   * first packet first, then every packet since, in order; the frames before
   * the newest re-stamped just below it.  The first packet's sequence number
   * and RTP timestamp are those to announce (RTP-Info, for instance).
   *
   * Returns: (transfer full) (nullable): the packets, or %NULL when there is
   * no GOP a receiver could start from (no keyframe yet, over a limit, or
   * the stream reorders frames).
   */
  signals[SIGNAL_GET_BURST] = g_signal_new_class_handler ("get-burst",
      G_TYPE_FROM_CLASS (klass), static_cast<GSignalFlags> (G_SIGNAL_RUN_LAST | G_SIGNAL_ACTION),
      G_CALLBACK (gst_gop_cache_get_burst), nullptr, nullptr, nullptr,
      GST_TYPE_BUFFER_LIST, 1, G_TYPE_UINT64);

  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);
  gst_element_class_set_static_metadata (element_class, "GOP cache", "Filter/Network/RTP",
      "Keeps the current GOP of an RTP video stream for catch-up bursts to new receivers",
      "camrelay maintainers");

  transform_class->transform_ip = gst_gop_cache_transform_ip;
  transform_class->sink_event = gst_gop_cache_sink_event;
  transform_class->stop = gst_gop_cache_stop;
  transform_class->passthrough_on_same_caps = TRUE;
  transform_class->transform_ip_on_passthrough = TRUE;
}

static void
gst_gop_cache_init (GstGopCache *self)
{
  self->priv = new GstGopCachePrivate ();
  gst_base_transform_set_passthrough (GST_BASE_TRANSFORM (self), TRUE);
  gst_base_transform_set_in_place (GST_BASE_TRANSFORM (self), TRUE);
}
