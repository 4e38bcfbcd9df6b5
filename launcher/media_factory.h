// The RTSP side of a camera's mount: its media factory and media types, and
// what the relay knows of the video and audio it can send.
#pragma once

#include <gst/rtsp-server/rtsp-server.h>

#include <memory>
#include <string>

#include "camera.h"
#include "common/gstref.h"

namespace camrelay::launcher {

// The media type of `caps` ("video/x-h264"), or "".
const char *caps_name (const GstCaps *caps);
// The RTP payloader for the camera's video, or nullptr when it cannot be sent.
const char *video_payloader (const GstCaps *caps);
// Every video the relay sends ("video/x-h264; video/x-h265; image/jpeg").
CapsPtr relayed_video_caps ();
// The RTP payloader for the camera's audio, or nullptr when it cannot be
// sent; `*parser` is set to the element needed before it, or nullptr.
const char *audio_payloader (const GstCaps *caps, const char **parser);

// The shared-media factory of `camera`'s mount.  It holds a weak reference
// to the camera; its create_element never waits (it runs under the
// factory's media lock).
GstRTSPMediaFactory *new_media_factory (const std::shared_ptr<Camera> &camera);

}  // namespace camrelay::launcher
