// The relay: one always-on ingest pipeline per camera (camerasrc !
// resilientqueue ! appsink) and one RTSP mount per camera whose shared media
// is fed from it.  The camera connection lives independently of the RTSP
// media: clients come and go, medias are built and torn down, the camera
// stays connected; a media fault never touches the camera.
#pragma once

#include <gst/rtsp-server/rtsp-server.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "client_guard.h"
#include "config.h"
#include "status.h"

namespace camrelay::launcher {

class Camera;

class Relay {
 public:
  explicit Relay (std::string version);
  ~Relay ();
  Relay (const Relay &) = delete;
  Relay &operator= (const Relay &) = delete;

  // Starts the cameras and serves RTSP on config.server.bind:port (port 0
  // picks one) in `context`; RTSPS only when server.tls_cert and tls_key are
  // set.  On failure returns false with a one-line error naming what failed
  // (e.g. the port in use, an invalid certificate) and nothing started.
  bool start (const Config &config, GMainContext *context, std::string &error);
  // Stops accepting, closes every client, stops every camera.  Bounded.
  void stop ();

  // Applies a new configuration (SIGHUP): cameras added, removed or changed
  // take effect; unchanged cameras and their clients are untouched; users,
  // limits and session_timeout apply.  The [server] address, threads, TLS
  // and multicast settings need a restart (logged); [http] is main's.
  void reload (const Config &config);

  uint16_t port () const { return port_; }
  Status status () const;

 private:
  void add_camera (const CameraConfig &camera);
  void remove_camera (const std::string &name);
  void reload_users (const std::vector<UserConfig> &users);
  static gboolean cleanup_sessions (gpointer self);
  static void on_client_connected (GstRTSPServer *, GstRTSPClient *client, gpointer self);
  static GstRTSPStatusCode on_pre_setup (GstRTSPClient *client, GstRTSPContext *ctx,
      gpointer self);
  static GstRTSPStatusCode on_pre_describe (GstRTSPClient *client, GstRTSPContext *ctx,
      gpointer self);
  // Sessions playing each camera now, by camera name; and in all.
  std::map<std::string, uint64_t> clients_per_camera (uint64_t &total) const;

  std::string version_;
  gint64 started_us_ = 0;
  GstRTSPServer *server_ = nullptr;
  guint server_source_ = 0;
  guint cleanup_source_ = 0;
  GMainContext *context_ = nullptr;
  uint16_t port_ = 0;
  std::vector<UserConfig> users_;
  unsigned max_clients_ = 0;
  unsigned session_timeout_ = 60;
  ClientGuard guard_;  // cuts clients that stop reading
  Config config_;  // what is running
  // The groups of server.multicast_range not taken by a camera yet.
  GstRTSPAddressPool *multicast_groups_ = nullptr;
  std::map<std::string, std::shared_ptr<Camera>> cameras_;
};

}  // namespace camrelay::launcher
