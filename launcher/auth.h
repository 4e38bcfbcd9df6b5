// RTSP authentication of the launcher: Basic and Digest against [[users]],
// and per-camera permissions.
#pragma once

#include <gst/rtsp-server/rtsp-server.h>

#include <string>
#include <vector>

#include "config.h"

namespace camrelay::launcher {

// An authenticator for `users` (Basic and Digest; a user given only by a
// password hash can use Basic), or nullptr when there are no users: then
// every camera is open to anyone.
GstRTSPAuth *make_auth (const std::vector<UserConfig> &users);

// An authenticator that lets every client in, for RTSPS without users: the
// server only reads its certificate from an authenticator, and an
// authenticator refuses clients that have no role.  Clients get the role
// ANONYMOUS_ROLE by default; permit_users() with no users grants it.
GstRTSPAuth *make_anonymous_auth ();
inline constexpr const char *ANONYMOUS_ROLE = "anonymous";

// Lets the camera's permitted users (every user when it lists none) see and
// play it; with no users, lets anyone (ANONYMOUS_ROLE) see and play it.
void permit_users (GstRTSPMediaFactory *factory, const CameraConfig &camera,
    const std::vector<UserConfig> &users);

// Makes `auth` serve RTSPS with the PEM certificate (chain) `cert` and its
// private key `key`.  On failure returns false with a one-line error that
// names the file at fault and why.
bool apply_tls (GstRTSPAuth *auth, const std::string &cert, const std::string &key,
    std::string &error);

}  // namespace camrelay::launcher
