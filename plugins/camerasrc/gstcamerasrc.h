// camerasrc: a camera source bin that survives every camera fault.  See
// gstcamerasrc.cpp for the contract.
#pragma once

#include <gst/gst.h>

G_BEGIN_DECLS

typedef enum {
  GST_CAMERA_SRC_STATE_STOPPED = 0,
  GST_CAMERA_SRC_STATE_CONNECTING = 1,
  GST_CAMERA_SRC_STATE_STREAMING = 2,
  GST_CAMERA_SRC_STATE_RECONNECTING = 3,
  GST_CAMERA_SRC_STATE_FAILED = 4,
} GstCameraSrcState;

typedef enum {
  GST_CAMERA_SRC_PROTOCOLS_TCP = 0,
  GST_CAMERA_SRC_PROTOCOLS_UDP = 1,
  GST_CAMERA_SRC_PROTOCOLS_AUTO = 2,
} GstCameraSrcProtocols;

typedef enum {
  GST_CAMERA_SRC_FALLBACK_NONE = 0,
  GST_CAMERA_SRC_FALLBACK_FREEZE = 1,
  GST_CAMERA_SRC_FALLBACK_SLATE = 2,
} GstCameraSrcFallback;

#define GST_TYPE_CAMERA_SRC_STATE (gst_camera_src_state_get_type ())
GType gst_camera_src_state_get_type (void);
#define GST_TYPE_CAMERA_SRC_PROTOCOLS (gst_camera_src_protocols_get_type ())
GType gst_camera_src_protocols_get_type (void);
#define GST_TYPE_CAMERA_SRC_FALLBACK (gst_camera_src_fallback_get_type ())
GType gst_camera_src_fallback_get_type (void);

#define GST_TYPE_CAMERA_SRC (gst_camera_src_get_type ())
G_DECLARE_FINAL_TYPE (GstCameraSrc, gst_camera_src, GST, CAMERA_SRC, GstBin)

GST_ELEMENT_REGISTER_DECLARE (camerasrc);

G_END_DECLS
