// testcamerasrc: a live synthetic IP camera for test:// URIs, which can be
// told to fail.  See gsttestcamerasrc.cpp for the contract.
#pragma once

#include <gst/gst.h>

G_BEGIN_DECLS

/**
 * GstTestCameraSrcCodec:
 * @GST_TEST_CAMERA_SRC_CODEC_H264: H.264 (x264enc ! h264parse)
 * @GST_TEST_CAMERA_SRC_CODEC_H265: H.265 (x265enc ! h265parse)
 * @GST_TEST_CAMERA_SRC_CODEC_JPEG: Motion JPEG (jpegenc ! jpegparse)
 */
typedef enum {
  GST_TEST_CAMERA_SRC_CODEC_H264 = 0,
  GST_TEST_CAMERA_SRC_CODEC_H265 = 1,
  GST_TEST_CAMERA_SRC_CODEC_JPEG = 2,
} GstTestCameraSrcCodec;

/**
 * GstTestCameraSrcAudio:
 * @GST_TEST_CAMERA_SRC_AUDIO_NONE: no audio pad
 * @GST_TEST_CAMERA_SRC_AUDIO_AAC: AAC-LC, 16 kHz mono (voaacenc ! aacparse)
 * @GST_TEST_CAMERA_SRC_AUDIO_ALAW: G.711 A-law, 8 kHz mono (alawenc)
 * @GST_TEST_CAMERA_SRC_AUDIO_MULAW: G.711 µ-law, 8 kHz mono (mulawenc)
 * @GST_TEST_CAMERA_SRC_AUDIO_OPUS: Opus, 48 kHz mono (opusenc ! opusparse)
 */
typedef enum {
  GST_TEST_CAMERA_SRC_AUDIO_NONE = 0,
  GST_TEST_CAMERA_SRC_AUDIO_AAC = 1,
  GST_TEST_CAMERA_SRC_AUDIO_ALAW = 2,
  GST_TEST_CAMERA_SRC_AUDIO_MULAW = 3,
  GST_TEST_CAMERA_SRC_AUDIO_OPUS = 4,
} GstTestCameraSrcAudio;

#define GST_TYPE_TEST_CAMERA_SRC_CODEC (gst_test_camera_src_codec_get_type ())
GType gst_test_camera_src_codec_get_type (void);
#define GST_TYPE_TEST_CAMERA_SRC_AUDIO (gst_test_camera_src_audio_get_type ())
GType gst_test_camera_src_audio_get_type (void);

#define GST_TYPE_TEST_CAMERA_SRC (gst_test_camera_src_get_type ())
G_DECLARE_FINAL_TYPE (GstTestCameraSrc, gst_test_camera_src, GST, TEST_CAMERA_SRC, GstBin)

GST_ELEMENT_REGISTER_DECLARE (testcamerasrc);

G_END_DECLS
