// One camera of the relay: its ingest pipeline (camerasrc ! resilientqueue !
// appsink for video, an appsink for audio when the camera has it) and the
// RTSP media factory of its mount, whose shared media is fed from the ingest.
//
// The camera connection lives independently of the RTSP side: clients come
// and go, the camera stays connected (or, with on_demand, connects with the
// first client and disconnects idle_timeout after the last).  The shared
// media is kept prepared between clients, so a client never waits for a new
// media (nor for the next keyframe) and a DESCRIBE-only client leaving never
// tears it down under the next one.  The media is replaced, for the next
// clients, when the camera's codec or tracks change or the media fails.
//
// Threads (the launcher's rule is in relay.h): a Camera is owned by
// shared_ptr; GStreamer callbacks hold a weak_ptr they own.  The ingest's
// state changes (start, stop, shutdown, check_idle) run on the main context
// only; RTSP worker threads call wait_video() and the media hooks; ingest
// streaming threads call on_sample().  lock_ guards the fields below it and
// is never held while calling into GStreamer in a way that could wait.
// shutdown() runs on the main context before the owner drops its reference,
// so the ingest's streaming threads have stopped before a Camera can be
// destroyed, whichever thread lets the last reference go.
#pragma once

#include <gst/rtsp-server/rtsp-server.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/gstref.h"
#include "config.h"
#include "instant_start.h"
#include "log.h"

namespace camrelay::launcher {

// "" when the camera's pipeline fragment (if any) can take the camera's
// video and gives video the relay sends; else what is wrong with it.  A
// fragment that does not fit would relay nothing: the launcher refuses such
// a configuration (at --check, at start and at a reload).
std::string pipeline_problem (const CameraConfig &camera);

class Camera : public std::enable_shared_from_this<Camera> {
 public:
  // Builds the ingest pipeline and the mount's factory (not started).
  // `server` and `context` (the relay's main context) must outlive the camera
  // or its shutdown().  nullptr, with `error` saying why, when an element is
  // missing or the ingest does not link.
  static std::shared_ptr<Camera> create (const CameraConfig &config, GstRTSPServer *server,
      GMainContext *context, std::string &error);
  ~Camera ();
  Camera (const Camera &) = delete;
  Camera &operator= (const Camera &) = delete;

  const CameraConfig &config () const { return config_; }
  // The mount's factory (owned by the camera; add it to the mount points with a ref).
  GstRTSPMediaFactory *factory () const { return factory_.get (); }
  GstElement *camerasrc () const { return camerasrc_.get (); }
  GstElement *queue () const { return queue_.get (); }

  // Connects to the camera (ingest to PLAYING); idempotent.  Main context only.
  void start ();
  // Disconnects from the camera; its clients are closed.  Main context only.
  void stop ();
  // Stops for good: the camera, its clients, the bus watch.  Main context only.
  void shutdown ();

  // Waits up to `timeout` for the camera's first video, starting an
  // on-demand camera (on the main context).  The caller counts as a waiting
  // client before the camera is started, so the idle check never stops the
  // camera under it.  False when there is no video by then or the camera
  // was shut down.  Any thread but the main context's.
  bool wait_video (std::chrono::milliseconds timeout);
  // Whether the camera has sent video (a client would be served now).
  bool has_video () const;
  // An on-demand camera with no client for idle_timeout is stopped.  Main
  // context only; `clients` = sessions playing it now.
  void check_idle (uint64_t clients, gint64 now_us);

  std::string state () const;
  uint64_t bytes_out () const;

  // Instant start (instant_start.h): the settings of this camera's joins,
  // changed in place (a reload); the bytes its medias' GOP caches hold now.
  void set_instant_start (bool enabled, uint64_t cache_max_bytes, uint64_t burst_max_bytes);
  const std::shared_ptr<InstantStartSettings> &instant_start () const { return instant_; }
  uint64_t gop_cache_bytes () const;

  // ---- for the media factory and the media (internal) --------------------
  struct MediaPlan {
    CapsPtr video;
    CapsPtr audio;
    unsigned generation = 0;
  };
  MediaPlan plan_media ();
  // The current media's generation (part of the factory's cache key).
  unsigned generation () const;
  void attach_media (GstRTSPMedia *media, GstElement *video_src, GstElement *audio_src,
      unsigned generation, std::shared_ptr<GopCache> cache);
  void media_prepared (GstRTSPMedia *media, unsigned generation);
  void media_unprepared (GstRTSPMedia *media);
  void media_failed (GstRTSPMedia *media, unsigned generation, const char *why);
  void on_sample (bool audio, GstSample *sample);
  void on_state_message (const GstStructure *s);
  void on_audio_pad (GstPad *pad);

 private:
  // An RTSP media fed by this camera: the current one, or an older one still
  // serving its clients after the camera's tracks changed.
  struct Feed {
    GObjectPtr<GstRTSPMedia> media;
    ElementPtr video_src;            // its appsrcs
    ElementPtr audio_src;
    unsigned generation = 0;
    bool held = false;               // we hold one prepare count on it
    bool prepared = false;           // it has been prepared once
    bool needs_keyframe = true;      // (re)starts on a keyframe
    std::shared_ptr<GopCache> cache; // of its video, for instant start (or null)
  };

  explicit Camera (const CameraConfig &config);
  struct Release {
    GObjectPtr<GstRTSPMedia> media;
    bool held;           // give back our prepare count
    bool close_clients;  // close the clients playing it
    // Its video appsrc when it never prepared: a live media prepares on its
    // first data, which will not come now; an error makes it fail (and its
    // waiting clients get an answer) instead of preparing forever.
    ElementPtr fail;
  };

  // Makes the next client get a new media; the current ones are released
  // (and their clients closed when `close_clients`) on the main context.
  void retire_media_locked (bool close_clients);
  // Queues `feed`'s release for the main context.
  void release_feed_locked (Feed feed, bool close_clients);
  // Main context: carries out the queued releases.
  void run_releases ();
  // Asks the main context to start the camera (an on-demand camera's client).
  void request_start_locked ();
  // Stopped as far as clients can see: no video, medias retired.  The
  // ingest's state change follows, outside the lock.
  void mark_stopped_locked ();
  // Keeps `sample` (video) in gop_ when it belongs to the current GOP.
  void keep_gop_locked (GstSample *sample, bool delta);

  CameraConfig config_;
  GstRTSPServer *server_ = nullptr;  // borrowed
  GMainContext *context_ = nullptr;  // borrowed
  GObjectPtr<GstRTSPMediaFactory> factory_;
  ElementPtr pipeline_;
  ElementPtr camerasrc_;
  ElementPtr queue_;
  guint bus_watch_ = 0;

  mutable std::mutex lock_;
  std::condition_variable caps_changed_;
  CapsPtr video_caps_;
  CapsPtr audio_caps_;
  std::vector<Feed> feeds_;
  // The camera's video since its last keyframe: a media that starts (its
  // first client) begins with it instead of waiting for the next keyframe,
  // so that its first client starts at once too.  Empty while the stream
  // reorders frames (B-frames) or the GOP is over the cache limit.
  std::vector<SamplePtr> gop_;
  uint64_t gop_bytes_ = 0;
  std::vector<Release> releases_;
  guint release_source_ = 0;
  unsigned generation_ = 0;          // of the current media; bumped to replace it
  bool running_ = false;
  bool audio_pad_ = false;           // the camera has audio
  bool shut_down_ = false;
  bool start_requested_ = false;     // a start is queued on the main context
  unsigned waiting_clients_ = 0;     // in wait_video
  gint64 last_active_us_ = 0;
  uint64_t bytes_out_ = 0;
  std::string state_ = "stopped";
  const std::shared_ptr<InstantStartSettings> instant_ = std::make_shared<InstantStartSettings> ();
};

}  // namespace camrelay::launcher
