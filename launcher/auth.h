// RTSP authentication of the launcher: Basic and Digest against [[users]],
// and per-camera permissions.
#pragma once

#include <gst/rtsp-server/rtsp-server.h>

#include <string>
#include <vector>

#include "config.h"

namespace camrelay::launcher {

// The relay's authenticator, made once for the server's whole life: Basic
// and Digest against `users` (a user given only by a password hash can use
// Basic).  Without users every client gets the role ANONYMOUS_ROLE, which
// permit_users() then grants on every camera; the server needs an
// authenticator anyway to serve RTSPS (it reads the certificate from it).
GstRTSPAuth *make_auth (const std::vector<UserConfig> &users);
inline constexpr const char *ANONYMOUS_ROLE = "anonymous";

// Main thread (a reload): replaces the users of `auth` (made by make_auth)
// in place.  Users whose password did not change keep their entries, so
// Digest nonces handed out before stay valid.
void set_users (GstRTSPAuth *auth, const std::vector<UserConfig> &users);

// The user the request of `ctx` authenticated as, or "" (anonymous).
std::string authenticated_user (GstRTSPContext *ctx);

// The "new-session" handler of `client` (on its worker thread, within the
// SETUP that made `session`): records who owns the session, the user of
// that request or, for an anonymous client, its connection.  The
// authenticator then answers a request naming the session from anyone
// else with 454 Session Not Found.
void claim_session (GstRTSPClient *client, GstRTSPSession *session);

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
