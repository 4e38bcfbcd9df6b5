// testcamerasrc's internals shared by its two halves: the instance and its
// private state, read by gsttestcamerasrc.cpp (the GObject: properties,
// states, URI handler) and session.cpp (the inside and its faults).
#pragma once

#include <gst/gst.h>

#include <atomic>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "testcamerasrc/gsttestcamerasrc.h"
#include "testcamerasrc/testuri.h"

GST_DEBUG_CATEGORY_EXTERN (test_camera_src_debug);
GST_DEBUG_CATEGORY_EXTERN (test_camera_src_dataflow);

namespace camrelay::testcamera {

// The segment of one encoder's output, to turn its PTS into running time:
// x264enc shifts its timestamps by 1000 hours (and its segment with them), so
// the PTS of two streams cannot be compared.
struct StreamSegment {
  GstSegment segment;
  StreamSegment () { gst_segment_init (&segment, GST_FORMAT_TIME); }
};

// What the video streaming thread remembers between buffers.
struct VideoFaultState {
  StreamSegment segment;
  bool resized = false;
  bool interrupted = false;  // inside a stall or garbage: resume with DISCONT + keyframe
  bool garbage_logged = false;
  std::minstd_rand random{0x7e57ca3u};
};

// What the audio streaming thread remembers between buffers.
struct AudioFaultState {
  StreamSegment segment;
  bool interrupted = false;
};

}  // namespace camrelay::testcamera

// Shared between the application, the state-change thread and the
// streaming threads.
struct GstTestCameraSrcPrivate {
  // Guards `settings`, `location_error` and `running`.
  std::mutex lock;
  camrelay::testcamera::Settings settings;
  std::string location_error;  // why the last `location` set was refused; "" if it was not
  bool running = false;        // between READY->PAUSED and PAUSED->READY

  // The session: written by the state-change thread while no streaming
  // thread of ours exists (start, before the children run; stop, after
  // they reached READY), only read by the streaming threads in between.
  camrelay::testcamera::Settings active;
  std::vector<GstElement *> children;  // owned by the bin
  GstElement *video_size = nullptr;    // the raw-video capsfilter that resizing changes
  GstPad *audio_pad = nullptr;         // our ghost pad, owned by the element

  // Faults: the origin of fault times is the running time of the first
  // buffer of either stream; `dropped` once drop-after fired, in any stream.
  std::atomic<GstClockTime> origin{GST_CLOCK_TIME_NONE};
  std::atomic<bool> dropped{false};
  camrelay::testcamera::VideoFaultState video;  // video streaming thread only
  camrelay::testcamera::AudioFaultState audio;  // audio streaming thread only
};

struct _GstTestCameraSrc {
  GstBin parent;

  GstPad *video_pad;  // always ghost pad; its target is set while started
  GstTestCameraSrcPrivate *priv;
};

namespace camrelay::testcamera {

// Builds the inside from the settings and starts a new stream (READY to
// PAUSED); false, with an error posted, if it cannot.
bool start_session (GstTestCameraSrc *self);
// Undoes start_session(): called with every child in READY or below, so no
// streaming thread of ours runs.
void stop_session (GstTestCameraSrc *self);

}  // namespace camrelay::testcamera
