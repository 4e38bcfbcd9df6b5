// The relay: one always-on ingest pipeline per camera (camerasrc !
// resilientqueue ! appsink) and one RTSP mount per camera whose shared media
// is fed from it.  The camera connection lives independently of the RTSP
// media: clients come and go, medias are built and torn down, the camera
// stays connected; a media fault never touches the camera.
//
// Thread model (see docs/launcher.md):
// - The main thread runs the main context given to start().  It alone
//   starts, stops and reloads, adds and removes mounts, changes cameras'
//   states, answers /metrics and /api, and runs the periodic cleanup.
// - RTSP worker threads (gst-rtsp-server's pool, one per client connection)
//   run the client callbacks: pre-describe, pre-setup, new-session, play.
//   They only read, and what they read is a Snapshot: the camera map, the
//   users, the client limits and the session timeout.  A published Snapshot
//   is immutable; a reload builds a new one and swaps the pointer
//   (Published::lock is held only to copy or replace that pointer).  A
//   worker takes its own reference once per request and uses nothing else,
//   so a reload never changes what it is iterating, and a camera it found
//   stays alive (shared_ptr) as long as it uses it.
// - A camera leaving the snapshot is shut down on the main thread right
//   after the swap; a worker still holding it sees it shut down (its waits
//   end at once) and lets it go.  GStreamer callbacks hold a weak_ptr (or a
//   reference they own) to a Camera, never a raw pointer (camera.h).
// - The client signal handlers get a reference to Published of their own,
//   so that they never depend on the Relay object's lifetime.
#pragma once

#include <gst/rtsp-server/rtsp-server.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "client_guard.h"
#include "config.h"
#include "status.h"

namespace camrelay::launcher {

class Camera;

// What the RTSP worker threads read.  Immutable once published.
struct Snapshot {
  std::map<std::string, std::shared_ptr<Camera>> cameras;  // by name; mount "/" + name
  std::vector<UserConfig> users;
  unsigned max_clients = 0;
  unsigned session_timeout = 60;

  // The camera whose mount `path` is or is under ("/name", "/name/stream=0").
  std::shared_ptr<Camera> camera_of (const std::string &path) const;
};

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

  // What the worker threads share with the main thread: the published
  // snapshot and the guard (locked inside).
  struct Published {
    mutable std::mutex lock;  // guards `current` (the pointer, not what it points to)
    std::shared_ptr<const Snapshot> current;
    ClientGuard guard;  // cuts clients that stop reading

    std::shared_ptr<const Snapshot> get () const;
    void set (std::shared_ptr<const Snapshot> next);
  };

 private:
  std::shared_ptr<Camera> add_camera (const CameraConfig &camera,
      const std::vector<UserConfig> &users);
  // Main thread, after the camera left the published snapshot.
  void remove_camera (const std::shared_ptr<Camera> &camera);
  bool reload_users (const std::vector<UserConfig> &users, const Snapshot &cameras);
  static gboolean cleanup_sessions (gpointer self);
  static void on_client_connected (GstRTSPServer *, GstRTSPClient *client, gpointer published);

  std::string version_;
  gint64 started_us_ = 0;
  GstRTSPServer *server_ = nullptr;
  guint server_source_ = 0;
  guint cleanup_source_ = 0;
  GMainContext *context_ = nullptr;
  uint16_t port_ = 0;
  Config config_;  // what is running (main thread)
  // The groups of server.multicast_range not taken by a camera yet.
  GstRTSPAddressPool *multicast_groups_ = nullptr;
  std::shared_ptr<Published> published_ = std::make_shared<Published> ();
};

}  // namespace camrelay::launcher
