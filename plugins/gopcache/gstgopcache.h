// gopcache: keeps the current GOP of an RTP video stream passing through, so
// that an application can send a new receiver a catch-up burst.
#pragma once

#include <gst/base/gstbasetransform.h>
#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_TYPE_GOP_CACHE (gst_gop_cache_get_type ())
G_DECLARE_FINAL_TYPE (GstGopCache, gst_gop_cache, GST, GOP_CACHE, GstBaseTransform)

GST_ELEMENT_REGISTER_DECLARE (gopcache);

G_END_DECLS
