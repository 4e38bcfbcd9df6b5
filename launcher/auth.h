// RTSP authentication of the launcher: Basic and Digest against [[users]],
// and per-camera permissions.
#pragma once

#include <gst/rtsp-server/rtsp-server.h>

#include <vector>

#include "config.h"

namespace camrelay::launcher {

// An authenticator for `users` (Basic and Digest; a user given only by a
// password hash can use Basic), or nullptr when there are no users: then
// every camera is open to anyone.
GstRTSPAuth *make_auth (const std::vector<UserConfig> &users);

// Lets the camera's permitted users (every user when it lists none) see and
// play it.
void permit_users (GstRTSPMediaFactory *factory, const CameraConfig &camera,
    const std::vector<UserConfig> &users);

}  // namespace camrelay::launcher
