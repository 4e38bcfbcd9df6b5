// One camera of the relay: its ingest pipeline, its state (started,
// stopped, on-demand idle), and the medias it feeds (see camera.h).
#include "camera.h"

#include "media_factory.h"

#include <gst/app/app.h>

#include <algorithm>
#include <cstdio>

#include "common/element_names.h"
#include "common/enums.h"

namespace camrelay::launcher {

namespace {

using Lock = std::unique_lock<std::mutex>;

// Reconnection to a camera that went away: first attempt, then at most.
constexpr guint64 RETRY_DELAY_MS = 500;
constexpr guint64 RETRY_DELAY_MAX_MS = 1000;

// How long a client waits for a camera's first audio after its first video.
constexpr auto AUDIO_WAIT = std::chrono::seconds (1);

}  // namespace

namespace {

// What GStreamer callbacks get as user data: a weak reference they own
// (freed by the destroy notify), never a raw Camera pointer.
using CameraRef = std::weak_ptr<Camera>;

gpointer
new_camera_ref (const std::shared_ptr<Camera> &camera)
{
  return new CameraRef (camera);
}

void
free_camera_ref (gpointer ref)
{
  delete static_cast<CameraRef *> (ref);
}

std::shared_ptr<Camera>
camera_of (gpointer ref)
{
  return static_cast<CameraRef *> (ref)->lock ();
}

template <bool audio>
GstFlowReturn
on_ingest_sample (GstAppSink *sink, gpointer data)
{
  if (GstSample *sample = gst_app_sink_pull_sample (sink)) {
    // Shutdown stops the ingest before the last reference goes: a camera
    // found here is never destroyed by this thread.
    if (auto camera = camera_of (data))
      camera->on_sample (audio, sample);
    gst_sample_unref (sample);
  }
  return GST_FLOW_OK;
}

// nullptr when appsink is missing.
GstElement *
make_ingest_sink (const char *name, GstFlowReturn (*on_sample) (GstAppSink *, gpointer),
    const std::shared_ptr<Camera> &camera)
{
  GstElement *sink = gst_element_factory_make ("appsink", name);
  if (!sink)
    return nullptr;
  g_object_set (sink, "sync", FALSE, "async", FALSE, "emit-signals", FALSE, "max-buffers", 0u,
      nullptr);
  GstAppSinkCallbacks callbacks = {};
  callbacks.new_sample = on_sample;
  gst_app_sink_set_callbacks (GST_APP_SINK (sink), &callbacks, new_camera_ref (camera),
      free_camera_ref);
  return sink;
}

// Logs the camera's state changes with their reason, drops and errors.
gboolean
on_ingest_message (GstBus *, GstMessage *message, gpointer data)
{
  auto camera = camera_of (data);
  if (!camera)
    return G_SOURCE_REMOVE;
  const GstStructure *s = gst_message_get_structure (message);
  const std::string &name = camera->config ().name;
  if (GST_MESSAGE_TYPE (message) == GST_MESSAGE_ELEMENT && s
      && gst_structure_has_name (s, camerasrc_names::STATE_MESSAGE)) {
    camera->on_state_message (s);
  } else if (GST_MESSAGE_TYPE (message) == GST_MESSAGE_ELEMENT && s
      && gst_structure_has_name (s, resilientqueue_names::DROP_MESSAGE)) {
    guint64 buffers = 0;
    gst_structure_get_uint64 (s, resilientqueue_names::FIELD_DROPPED_BUFFERS, &buffers);
    log_line ("camera %s: dropped %" G_GUINT64_FORMAT " frames (relay falling behind)",
        name.c_str (), buffers);
  } else if (GST_MESSAGE_TYPE (message) == GST_MESSAGE_ERROR) {
    GError *error = nullptr;
    gst_message_parse_error (message, &error, nullptr);
    log_line ("camera %s: error: %s", name.c_str (), error ? error->message : "unknown");
    g_clear_error (&error);
  }
  return G_SOURCE_CONTINUE;
}

// True when one of `client`'s sessions plays `media`.
bool
client_plays (GstRTSPClient *client, GstRTSPMedia *media)
{
  struct Search {
    GstRTSPMedia *media;
    bool found;
  } search{media, false};
  gst_rtsp_client_session_filter (client,
      [] (GstRTSPClient *, GstRTSPSession *session, gpointer data) {
        gst_rtsp_session_filter (session,
            [] (GstRTSPSession *, GstRTSPSessionMedia *session_media, gpointer data) {
              auto *search = static_cast<Search *> (data);
              if (gst_rtsp_session_media_get_media (session_media) == search->media)
                search->found = true;
              return GST_RTSP_FILTER_KEEP;
            },
            data);
        return GST_RTSP_FILTER_KEEP;
      },
      &search);
  return search.found;
}

}  // namespace

Camera::Camera (const CameraConfig &config) : config_ (config) {}

std::shared_ptr<Camera>
Camera::create (const CameraConfig &config, GstRTSPServer *server, GMainContext *context,
    std::string &error)
{
  std::shared_ptr<Camera> camera (new Camera (config));
  camera->server_ = server;
  camera->context_ = context;
  auto make = [&error] (const char *factory, const char *name) -> GstElement * {
    GstElement *element = gst_element_factory_make (factory, name);
    if (!element && error.empty ())
      error = std::string ("missing GStreamer element ") + factory;
    return element ? GST_ELEMENT (gst_object_ref_sink (element)) : nullptr;
  };
  camera->pipeline_.reset (GST_ELEMENT (gst_object_ref_sink (gst_pipeline_new (config.name.c_str ()))));
  camera->camerasrc_.reset (make ("camerasrc", "cam"));
  camera->queue_.reset (make ("resilientqueue", "queue"));
  GstElement *sink = camera->camerasrc_ && camera->queue_
      ? make_ingest_sink ("video_out", on_ingest_sample<false>, camera)
      : nullptr;
  if (!sink && error.empty ())
    error = "missing GStreamer element appsink";
  if (!error.empty ())
    return nullptr;
  GstElement *src = camera->camerasrc_.get ();
  g_object_set (src, "location", config.location.c_str (), "audio", config.audio, nullptr);
  if (!config.username.empty ())
    g_object_set (src, "user-id", config.username.c_str (), "user-pw", config.password.c_str (),
        nullptr);
  gst_util_set_object_arg (G_OBJECT (src), "protocols", config.transport.c_str ());
  gst_util_set_object_arg (G_OBJECT (src), "fallback", config.fallback.c_str ());
  g_object_set (src, "fallback-after", static_cast<guint64> (config.fallback_after_ms * GST_MSECOND),
      nullptr);
  // A camera that went away is tried again every 0.5 to 1 s (camerasrc's own
  // backoff goes up to 30 s): clients have video again within about a second
  // of the camera's return, for the price of one connection attempt a second.
  g_object_set (src, "retry-delay", static_cast<guint64> (RETRY_DELAY_MS * GST_MSECOND),
      "retry-delay-max", static_cast<guint64> (RETRY_DELAY_MAX_MS * GST_MSECOND), nullptr);
  g_object_set (camera->queue_.get (), "max-size-time",
      static_cast<guint64> (config.buffer_time_ms) * GST_MSECOND, nullptr);
  gst_bin_add_many (GST_BIN (camera->pipeline_.get ()), src, camera->queue_.get (), sink, nullptr);
  bool linked = gst_element_link_pads (src, "video", camera->queue_.get (), "sink");
  // The camera's own pipeline fragment, if any, between the queue and the
  // media (checked with the configuration: pipeline_problem()).
  if (!config.pipeline.empty ()) {
    GError *parse_error = nullptr;
    GstElement *fragment = gst_parse_bin_from_description (config.pipeline.c_str (), TRUE,
        &parse_error);
    if (parse_error || !fragment) {
      error = std::string ("pipeline: ") + (parse_error ? parse_error->message : "cannot be built");
      g_clear_error (&parse_error);
      if (fragment)
        gst_object_unref (gst_object_ref_sink (fragment));
      return nullptr;
    }
    gst_bin_add (GST_BIN (camera->pipeline_.get ()), fragment);
    linked = linked && gst_element_link_many (camera->queue_.get (), fragment, sink, nullptr);
  } else {
    linked = linked && gst_element_link (camera->queue_.get (), sink);
  }
  if (!linked) {
    error = config.pipeline.empty () ? "the ingest pipeline does not link"
                                     : "pipeline: does not link between the camera and the relay";
    return nullptr;
  }
  g_signal_connect_data (src, "pad-added",
      G_CALLBACK (+[] (GstElement *, GstPad *pad, gpointer data) {
        if (auto camera = camera_of (data))
          camera->on_audio_pad (pad);
      }),
      new_camera_ref (camera), [] (gpointer ref, GClosure *) { free_camera_ref (ref); },
      GConnectFlags (0));
  // The ingest and the medias run on the system clock, so that their running
  // times convert into each other.
  GstClock *clock = gst_system_clock_obtain ();
  gst_pipeline_use_clock (GST_PIPELINE (camera->pipeline_.get ()), clock);
  gst_object_unref (clock);

  BusPtr bus{gst_element_get_bus (camera->pipeline_.get ())};
  GSource *watch = gst_bus_create_watch (bus.get ());
  g_source_set_callback (watch, G_SOURCE_FUNC (on_ingest_message), new_camera_ref (camera),
      free_camera_ref);
  camera->bus_watch_ = g_source_attach (watch, context);
  g_source_unref (watch);

  camera->factory_.reset (new_media_factory (camera));
  return camera;
}

Camera::~Camera ()
{
  // Normally shut down already (by its owner, on the main context).  A
  // camera that never was only has its ingest stopped: its medias go with
  // their references.
  bool shut_down = false;
  {
    Lock l (lock_);
    shut_down = shut_down_;
  }
  if (!shut_down && pipeline_)
    gst_element_set_state (pipeline_.get (), GST_STATE_NULL);
  if (!shut_down && bus_watch_)
    if (GSource *s = g_main_context_find_source_by_id (context_, bus_watch_))
      g_source_destroy (s);
}

void
Camera::start ()
{
  {
    Lock l (lock_);
    if (running_ || shut_down_)
      return;
    running_ = true;
    last_active_us_ = g_get_monotonic_time ();
  }
  if (config_.on_demand)
    log_line ("camera %s: connecting for a client (on_demand)", config_.name.c_str ());
  gst_element_set_state (pipeline_.get (), GST_STATE_PLAYING);
}

void
Camera::stop ()
{
  {
    Lock l (lock_);
    if (!running_)
      return;
    mark_stopped_locked ();
  }
  gst_element_set_state (pipeline_.get (), GST_STATE_NULL);
}

void
Camera::mark_stopped_locked ()
{
  running_ = false;
  retire_media_locked (true);
  video_caps_.reset ();
  audio_caps_.reset ();
  gop_.clear ();
  gop_bytes_ = 0;
  state_ = "stopped";
}

void
Camera::shutdown ()
{
  {
    // First: no start from now on, and every waiting client is answered.
    Lock l (lock_);
    if (shut_down_)
      return;
    shut_down_ = true;
    caps_changed_.notify_all ();
  }
  stop ();
  auto remove_source = [this] (guint id) {
    if (id)
      if (GSource *s = g_main_context_find_source_by_id (context_, id))
        g_source_destroy (s);
  };
  remove_source (bus_watch_);
  bus_watch_ = 0;
  guint pending = 0;
  {
    Lock l (lock_);
    pending = release_source_;
  }
  remove_source (pending);
  run_releases ();
}

void
Camera::request_start_locked ()
{
  if (running_ || shut_down_ || start_requested_)
    return;
  start_requested_ = true;
  // A source, never inline (as g_main_context_invoke would be on the main
  // thread): the caller holds lock_.
  GSource *idle = g_idle_source_new ();
  g_source_set_callback (idle, [] (gpointer data) -> gboolean {
    if (auto camera = camera_of (data)) {
      {
        Lock l (camera->lock_);
        camera->start_requested_ = false;
      }
      camera->start ();
    }
    return G_SOURCE_REMOVE;
  }, new_camera_ref (shared_from_this ()), free_camera_ref);
  g_source_attach (idle, context_);
  g_source_unref (idle);
}

bool
Camera::has_video () const
{
  Lock l (lock_);
  return video_caps_ != nullptr;
}

bool
Camera::wait_video (std::chrono::milliseconds timeout)
{
  Lock l (lock_);
  // Counted first: from here on the idle check keeps the camera running.
  waiting_clients_++;
  last_active_us_ = g_get_monotonic_time ();
  request_start_locked ();
  const auto deadline = std::chrono::steady_clock::now () + timeout;
  caps_changed_.wait_until (l, deadline, [this] { return video_caps_ || shut_down_; });
  // A camera with audio: its first audio follows the first video closely;
  // wait a little for it so that the first clients get both.
  if (video_caps_ && audio_pad_ && !audio_caps_)
    caps_changed_.wait_until (l, std::min (deadline, std::chrono::steady_clock::now () + AUDIO_WAIT),
        [this] { return audio_caps_ || shut_down_; });
  waiting_clients_--;
  last_active_us_ = g_get_monotonic_time ();
  return video_caps_ != nullptr && !shut_down_;
}

void
Camera::check_idle (uint64_t clients, gint64 now_us)
{
  {
    Lock l (lock_);
    if (!config_.on_demand || !running_)
      return;
    if (clients > 0 || waiting_clients_ > 0) {
      last_active_us_ = now_us;
      return;
    }
    if (now_us - last_active_us_ < static_cast<gint64> (config_.idle_timeout) * G_USEC_PER_SEC)
      return;
    // Decided and marked stopped in one step: a client counted from now on
    // asks for a start, which runs after this stop on the main context.
    mark_stopped_locked ();
  }
  log_line ("camera %s: no client for %u s: disconnecting (on_demand)", config_.name.c_str (),
      config_.idle_timeout);
  gst_element_set_state (pipeline_.get (), GST_STATE_NULL);
}

std::string
Camera::state () const
{
  Lock l (lock_);
  return state_;
}

void
Camera::set_instant_start (bool enabled, uint64_t cache_max_bytes, uint64_t burst_max_bytes)
{
  instant_->enabled = enabled;
  instant_->cache_max_bytes = cache_max_bytes;
  instant_->burst_max_bytes = burst_max_bytes;
  Lock l (lock_);
  for (Feed &feed : feeds_)
    if (feed.cache)
      feed.cache->set_max_bytes (cache_max_bytes);
}

uint64_t
Camera::gop_cache_bytes () const
{
  Lock l (lock_);
  uint64_t bytes = 0;
  for (const Feed &feed : feeds_)
    if (feed.cache)
      bytes += feed.cache->bytes ();
  return bytes;
}

uint64_t
Camera::bytes_out () const
{
  Lock l (lock_);
  return bytes_out_;
}

unsigned
Camera::generation () const
{
  Lock l (lock_);
  return generation_;
}

Camera::MediaPlan
Camera::plan_media ()
{
  Lock l (lock_);
  MediaPlan plan;
  plan.video.reset (video_caps_ ? gst_caps_ref (video_caps_.get ()) : nullptr);
  plan.audio.reset (audio_caps_ ? gst_caps_ref (audio_caps_.get ()) : nullptr);
  plan.generation = generation_;
  return plan;
}

void
Camera::attach_media (GstRTSPMedia *media, GstElement *video_src, GstElement *audio_src,
    unsigned generation, std::shared_ptr<GopCache> cache)
{
  Lock l (lock_);
  Feed feed;
  feed.cache = std::move (cache);
  feed.media.reset (GST_RTSP_MEDIA (g_object_ref (media)));
  feed.video_src = ref_object (video_src);
  feed.audio_src = ref_object (audio_src);
  feed.generation = generation;
  if (generation != generation_ || shut_down_) {
    // Replaced (or the camera removed) while it was being built: it will
    // get nothing, so it fails; its client gets 503 and the next request
    // the current media.
    release_feed_locked (std::move (feed), false);
    return;
  }
  feeds_.push_back (std::move (feed));
}

void
Camera::media_prepared (GstRTSPMedia *media, unsigned generation)
{
  // Called by gst-rtsp-server with the media's state lock held, right after
  // it prepared: one more prepare count keeps it prepared between clients.
  Lock l (lock_);
  for (Feed &feed : feeds_)
    if (feed.media.get () == media)
      feed.prepared = true;
  if (generation != generation_ || shut_down_)
    return;
  for (Feed &feed : feeds_)
    if (feed.media.get () == media && !feed.held) {
      if (gst_rtsp_media_prepare (media, nullptr))
        feed.held = true;
    }
}

void
Camera::media_unprepared (GstRTSPMedia *media)
{
  Feed gone;
  {
    Lock l (lock_);
    for (auto it = feeds_.begin (); it != feeds_.end (); ++it)
      if (it->media.get () == media) {
        gone = std::move (*it);
        feeds_.erase (it);
        break;
      }
  }
  // `gone` (its refs) is dropped here, outside the lock.
}

void
Camera::media_failed (GstRTSPMedia *media, unsigned generation, const char *why)
{
  log_line ("camera %s: RTSP media failed: %s; the next client gets a new one",
      config_.name.c_str (), why);
  Lock l (lock_);
  if (generation == generation_) {
    retire_media_locked (true);
    return;
  }
  for (auto it = feeds_.begin (); it != feeds_.end (); ++it)
    if (it->media.get () == media) {
      Feed feed = std::move (*it);
      feeds_.erase (it);
      release_feed_locked (std::move (feed), true);
      break;
    }
}

void
Camera::retire_media_locked (bool close_clients)
{
  generation_++;
  std::vector<Feed> kept;
  for (Feed &feed : feeds_) {
    if (close_clients) {
      release_feed_locked (std::move (feed), true);
      continue;
    }
    // Without our count, it feeds its clients until they leave; then it
    // unprepares and media_unprepared() drops it.
    if (feed.held) {
      Feed count;
      count.media.reset (GST_RTSP_MEDIA (g_object_ref (feed.media.get ())));
      count.held = true;
      count.prepared = true;
      feed.held = false;
      release_feed_locked (std::move (count), false);
    }
    kept.push_back (std::move (feed));
  }
  feeds_ = std::move (kept);
}

void
Camera::release_feed_locked (Feed feed, bool close_clients)
{
  ElementPtr fail = feed.prepared ? nullptr : std::move (feed.video_src);
  releases_.push_back ({std::move (feed.media), feed.held, close_clients, std::move (fail)});
  if (release_source_)
    return;
  // Never inline: the caller holds our lock, and closing clients or
  // unpreparing calls back into media_unprepared().  The source owns a
  // reference: a release queued after shutdown (a media that was being
  // built meanwhile) is still carried out.
  GSource *idle = g_idle_source_new ();
  g_source_set_callback (idle, [] (gpointer data) -> gboolean {
    (*static_cast<std::shared_ptr<Camera> *> (data))->run_releases ();
    return G_SOURCE_REMOVE;
  }, new std::shared_ptr<Camera> (shared_from_this ()),
      [] (gpointer data) { delete static_cast<std::shared_ptr<Camera> *> (data); });
  release_source_ = g_source_attach (idle, context_);
  g_source_unref (idle);
}

void
Camera::run_releases ()
{
  std::vector<Release> releases;
  {
    Lock l (lock_);
    releases.swap (releases_);
    release_source_ = 0;
  }
  for (Release &release : releases) {
    if (release.fail) {
      GError *error = g_error_new_literal (GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NOT_FOUND,
          "the camera's stream ended before this RTSP media was ready");
      gst_element_post_message (release.fail.get (),
          gst_message_new_error (GST_OBJECT (release.fail.get ()), error, nullptr));
      g_error_free (error);
    }
    if (release.close_clients)
      gst_rtsp_server_client_filter (server_,
          [] (GstRTSPServer *, GstRTSPClient *client, gpointer media) {
            return client_plays (client, static_cast<GstRTSPMedia *> (media))
                ? GST_RTSP_FILTER_REMOVE
                : GST_RTSP_FILTER_KEEP;
          },
          release.media.get ());
    if (release.held)
      gst_rtsp_media_unprepare (release.media.get ());
  }
}

void
Camera::on_audio_pad (GstPad *pad)
{
  GCharPtr name{gst_pad_get_name (pad)};
  if (g_strcmp0 (name.get (), "audio") != 0)
    return;
  {
    Lock l (lock_);
    audio_pad_ = true;
  }
  GstElement *sink = make_ingest_sink ("audio_out", on_ingest_sample<true>, shared_from_this ());
  if (!sink) {
    log_line ("camera %s: missing GStreamer element appsink; no audio", config_.name.c_str ());
    return;
  }
  gst_bin_add (GST_BIN (pipeline_.get ()), sink);
  PadPtr sink_pad{gst_element_get_static_pad (sink, "sink")};
  if (gst_pad_link (pad, sink_pad.get ()) != GST_PAD_LINK_OK)
    log_line ("camera %s: cannot take the camera's audio", config_.name.c_str ());
  gst_element_sync_state_with_parent (sink);
}

void
Camera::on_state_message (const GstStructure *s)
{
  namespace names = camrelay::camerasrc_names;
  const char *now = enum_nick (gst_structure_get_value (s, names::FIELD_STATE));
  const char *before = enum_nick (gst_structure_get_value (s, names::FIELD_PREVIOUS));
  now = now ? now : "?";
  before = before ? before : "?";
  guint64 retry_in = 0;
  gst_structure_get_uint64 (s, names::FIELD_RETRY_IN, &retry_in);
  {
    Lock l (lock_);
    if (running_)
      state_ = now;
  }
  const char *reason = gst_structure_get_string (s, names::FIELD_REASON);
  if (retry_in)
    log_line ("camera %s: %s -> %s: %s (retry in %.1f s)", config_.name.c_str (), before, now,
        reason, static_cast<double> (retry_in) / GST_SECOND);
  else
    log_line ("camera %s: %s -> %s: %s", config_.name.c_str (), before, now, reason);
}

void
Camera::keep_gop_locked (GstSample *sample, bool delta)
{
  GstBuffer *buffer = gst_sample_get_buffer (sample);
  const bool reordered = GST_BUFFER_DTS_IS_VALID (buffer) && GST_BUFFER_PTS_IS_VALID (buffer)
      && GST_BUFFER_DTS (buffer) != GST_BUFFER_PTS (buffer);
  if (!delta || reordered) {
    gop_.clear ();
    gop_bytes_ = 0;
  }
  if (reordered || (delta && gop_.empty ()))
    return;
  gop_bytes_ += gst_buffer_get_size (buffer);
  if (gop_bytes_ > instant_->cache_max_bytes) {
    gop_.clear ();  // too big: the next keyframe starts again
    gop_bytes_ = 0;
    return;
  }
  gop_.emplace_back (gst_sample_ref (sample));
}

namespace {

// A media's first frames: `gop` (the camera's frames since its keyframe, up
// to the frame stamped `next_pts`) pushed to `src` just before that frame,
// stamped a tenth of a millisecond apart (they are past; a client plays them
// at once and is live right after).  Nothing when the media's clock is too
// young to fit them.
void
push_gop (GstElement *src, const std::vector<SamplePtr> &gop, GstClockTime next_pts)
{
  if (!GST_CLOCK_TIME_IS_VALID (next_pts))
    return;
  const GstClockTime step = std::min<GstClockTime> (100 * GST_USECOND, next_pts / (gop.size () + 1));
  if (step < 20 * GST_USECOND)  // under two RTP ticks (90 kHz): frames would share a timestamp
    return;
  for (size_t i = 0; i < gop.size (); i++) {
    GstBuffer *frame = gst_buffer_copy (gst_sample_get_buffer (gop[i].get ()));
    GST_BUFFER_PTS (frame) = next_pts - (gop.size () - i) * step;
    GST_BUFFER_DTS (frame) = GST_BUFFER_PTS (frame);
    GST_BUFFER_FLAG_SET (frame, GST_BUFFER_FLAG_MARKER);
    gst_app_src_push_buffer (GST_APP_SRC (src), frame);
  }
}

}  // namespace

// A frame from the camera (an ingest streaming thread): to every media it feeds.
void
Camera::on_sample (bool audio, GstSample *sample)
{
  GstBuffer *buffer = gst_sample_get_buffer (sample);
  GstCaps *caps = gst_sample_get_caps (sample);
  if (!buffer)
    return;
  struct Target {
    ElementPtr src;
    CapsPtr new_caps;
    std::vector<SamplePtr> gop;  // sent first: the GOP up to this frame (a media's start)
  };
  std::vector<Target> targets;
  {
    Lock l (lock_);
    CapsPtr &current = audio ? audio_caps_ : video_caps_;
    bool caps_changed = false;
    if (caps && (!current || !gst_caps_is_equal (current.get (), caps))) {
      const char *parser = nullptr;
      const bool new_codec = !current
          || (audio ? audio_payloader (current.get (), &parser) != audio_payloader (caps, &parser)
                    : video_payloader (current.get ()) != video_payloader (caps));
      const bool had = current != nullptr;
      current.reset (gst_caps_ref (caps));
      if (!audio) {  // frames of other caps are no start for a media
        gop_.clear ();
        gop_bytes_ = 0;
      }
      caps_changed = true;
      caps_changed_.notify_all ();
      if (new_codec && (had || audio) && !feeds_.empty ()) {
        // A payloader cannot change codec: the next clients get a new media.
        // A new codec closes the clients of the old one (they reconnect);
        // new audio leaves them as they are.
        log_line ("camera %s: %s is now %s: new RTSP media for the next clients",
            config_.name.c_str (), audio ? "audio" : "video", caps_name (caps));
        retire_media_locked (had);
        caps_changed = false;
      }
    }
    const bool delta = GST_BUFFER_FLAG_IS_SET (buffer, GST_BUFFER_FLAG_DELTA_UNIT);
    if (!audio)
      keep_gop_locked (sample, delta);
    for (Feed &feed : feeds_) {
      GstElement *src = audio ? feed.audio_src.get () : feed.video_src.get ();
      if (!src)
        continue;
      // A media that is not playing (being prepared or paused with no
      // client) restarts on a keyframe with its clock running.
      if (GST_STATE (src) != GST_STATE_PLAYING) {
        feed.needs_keyframe = true;
        continue;
      }
      std::vector<SamplePtr> gop;
      if (!audio && feed.needs_keyframe) {
        if (delta && (!instant_->enabled || gop_.size () < 2 || gop_.back ().get () != sample))
          continue;
        if (delta)  // the GOP so far, then this frame
          for (size_t i = 0; i + 1 < gop_.size (); i++)
            gop.emplace_back (gst_sample_ref (gop_[i].get ()));
        feed.needs_keyframe = false;
      }
      if (audio && feed.needs_keyframe)
        continue;  // audio starts with the video
      Target target;
      target.src = ref_object (src);
      target.gop = std::move (gop);
      if (caps_changed)
        target.new_caps.reset (gst_caps_ref (caps));
      targets.push_back (std::move (target));
    }
    if (!audio && !targets.empty ())
      bytes_out_ += gst_buffer_get_size (buffer);
  }
  // The medias run on the same (system) clock as the ingest but with their
  // own base times: move the timestamps from the ingest's running time to
  // each media's.
  // Timestamps are taken through the sample's segment first: an encoder in
  // the camera's pipeline fragment (x264enc) shifts both by its offset.
  const GstSegment *segment = gst_sample_get_segment (sample);
  const GstClockTime ingest_base = gst_element_get_base_time (pipeline_.get ());
  for (Target &target : targets) {
    const GstClockTime media_base = gst_element_get_base_time (target.src.get ());
    auto rebase = [&] (GstClockTime ts) -> GstClockTime {
      if (!GST_CLOCK_TIME_IS_VALID (ts))
        return ts;
      gint64 running = static_cast<gint64> (ts);
      if (segment && segment->format == GST_FORMAT_TIME) {
        guint64 positive = 0;
        const int sign = gst_segment_to_running_time_full (segment, GST_FORMAT_TIME, ts, &positive);
        running = sign > 0 ? static_cast<gint64> (positive) : 0;
      }
      const gint64 moved = running + static_cast<gint64> (ingest_base) - static_cast<gint64> (media_base);
      return moved > 0 ? static_cast<GstClockTime> (moved) : 0;
    };
    GstBuffer *out = gst_buffer_copy (buffer);  // metadata only; memory shared
    GST_BUFFER_PTS (out) = rebase (GST_BUFFER_PTS (buffer));
    GST_BUFFER_DTS (out) = rebase (GST_BUFFER_DTS (buffer));
    if (!target.gop.empty ())
      push_gop (target.src.get (), target.gop, GST_BUFFER_PTS (out));
    // Each video buffer is a whole access unit: the payloader may end it at
    // once instead of waiting for the next one's start code (rtph265pay
    // 1.22 waits, a frame late, and then flags the keyframe's first packet
    // as a delta unit, which hides keyframes from the GOP cache).
    if (!audio)
      GST_BUFFER_FLAG_SET (out, GST_BUFFER_FLAG_MARKER);
    if (target.new_caps)
      g_object_set (target.src.get (), "caps", target.new_caps.get (), nullptr);
    gst_app_src_push_buffer (GST_APP_SRC (target.src.get ()), out);
  }
}

}  // namespace camrelay::launcher
