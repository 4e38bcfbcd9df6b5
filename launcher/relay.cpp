#include "relay.h"

#include <chrono>

#include "auth.h"
#include "camera.h"
#include "common/element_names.h"
#include "common/gstref.h"
#include "server.h"

namespace camrelay::launcher {

namespace {

// How long a client's DESCRIBE waits for a camera that has not sent video yet.
constexpr auto DESCRIBE_WAIT = std::chrono::seconds (10);
constexpr guint SESSION_CLEANUP_INTERVAL_S = 2;
// server.threads = 0: a worker thread of its own for each client connection
// (gst-rtsp-server's -1), made when it connects and ended when it leaves.  A
// client waiting for its camera in DESCRIBE then blocks only itself; with a
// fixed number of threads it would delay every client sharing its thread.
// The video does not go through these threads (the medias send it), so an
// idle client's thread costs little.
constexpr gint THREAD_PER_CLIENT = -1;

// The transports a camera's clients may choose.  A camera with multicast =
// true takes a group (address) of server.multicast_range for itself, with
// every port of multicast_ports, and its factory gets a pool holding just that
// group: gst-rtsp-server takes an RTP/RTCP port pair from it for each media,
// which all its multicast clients share.  The pool of the whole range is
// not handed to the factories directly because a pool gives out the ports of
// one address before the next address: the second camera would get the
// first camera's group, on other ports.  Binding the multicast sockets to
// the group rather than to any address keeps the cameras' sockets (same
// ports, different groups) apart.  The group goes back to `groups` when the
// factory is freed.  Other cameras refuse multicast (461 Unsupported
// Transport), gst-rtsp-server's default being to offer it.
void
configure_transports (GstRTSPMediaFactory *factory, const CameraConfig &camera,
    const ServerConfig &server, GstRTSPAddressPool *groups)
{
  const auto unicast = static_cast<GstRTSPLowerTrans> (
      GST_RTSP_LOWER_TRANS_UDP | GST_RTSP_LOWER_TRANS_TCP);
  gst_rtsp_media_factory_set_protocols (factory, unicast);
  if (!camera.multicast || !groups)
    return;
  const gint n_ports = server.multicast_port_last - server.multicast_port_first + 1;
  GstRTSPAddress *group = gst_rtsp_address_pool_acquire_address (groups,
      static_cast<GstRTSPAddressFlags> (GST_RTSP_ADDRESS_FLAG_IPV4 | GST_RTSP_ADDRESS_FLAG_MULTICAST),
      n_ports);
  if (!group) {
    log_line ("warning: camera %s: every group of server.multicast_range is taken; unicast only",
        camera.name.c_str ());
    return;
  }
  GstRTSPAddressPool *pool = gst_rtsp_address_pool_new ();
  gst_rtsp_address_pool_add_range (pool, group->address, group->address, group->port,
      static_cast<guint16> (group->port + n_ports - 1), group->ttl);
  gst_rtsp_media_factory_set_address_pool (factory, pool);
  g_object_unref (pool);
  gst_rtsp_media_factory_set_bind_mcast_address (factory, TRUE);
  // Clients are answered with the group's TTL; one that picks its own
  // destination may ask for a TTL, up to the configured one.
  gst_rtsp_media_factory_set_max_mcast_ttl (factory, server.multicast_ttl);
  if (!server.multicast_iface.empty ())
    gst_rtsp_media_factory_set_multicast_iface (factory, server.multicast_iface.c_str ());
  gst_rtsp_media_factory_set_protocols (factory,
      static_cast<GstRTSPLowerTrans> (unicast | GST_RTSP_LOWER_TRANS_UDP_MCAST));
  log_line ("camera %s: multicast group %s, ports %u-%u, ttl %u", camera.name.c_str (),
      group->address, group->port, group->port + n_ports - 1, group->ttl);
  g_object_set_data_full (G_OBJECT (factory), "camrelay-multicast-group", group,
      reinterpret_cast<GDestroyNotify> (gst_rtsp_address_free));
}

// Sessions playing each camera of `snapshot` now, by camera name; and in all.
std::map<std::string, uint64_t>
clients_per_camera (const Snapshot &snapshot, GstRTSPSessionPool *pool, uint64_t &total)
{
  std::map<std::string, uint64_t> clients;
  total = 0;
  GList *all = gst_rtsp_session_pool_filter (pool, nullptr, nullptr);
  for (GList *l = all; l; l = l->next) {
    GList *medias = gst_rtsp_session_filter (GST_RTSP_SESSION (l->data), nullptr, nullptr);
    for (GList *m = medias; m; m = m->next) {
      for (const auto &[name, camera] : snapshot.cameras) {
        gint matched = 0;
        if (gst_rtsp_session_media_matches (GST_RTSP_SESSION_MEDIA (m->data),
                ("/" + name).c_str (), &matched)) {
          clients[name]++;
          total++;
        }
      }
    }
    g_list_free_full (medias, g_object_unref);
  }
  g_list_free_full (all, g_object_unref);
  return clients;
}

}  // namespace

Relay::Relay (std::string version) : version_ (std::move (version))
{
  published_->set (std::make_shared<Snapshot> ());
}

Relay::~Relay ()
{
  stop ();
}

std::shared_ptr<Camera>
Snapshot::camera_of (const std::string &path) const
{
  // "/name" or "/name/..." (a stream of its media).
  if (path.size () < 2 || path[0] != '/')
    return nullptr;
  const size_t slash = path.find ('/', 1);
  auto it = cameras.find (path.substr (1, slash == std::string::npos ? std::string::npos : slash - 1));
  return it == cameras.end () ? nullptr : it->second;
}

std::shared_ptr<const Snapshot>
Relay::Published::get () const
{
  std::lock_guard<std::mutex> l (lock);
  return current;
}

void
Relay::Published::set (std::shared_ptr<const Snapshot> next)
{
  std::shared_ptr<const Snapshot> previous;
  {
    std::lock_guard<std::mutex> l (lock);
    previous = std::move (current);
    current = std::move (next);
  }
  // `previous` goes here, outside the lock.
}

namespace {

// Each camera's instant-start settings: its own key, else the server's.
void
apply_instant_start (const Config &config, const Snapshot &snapshot)
{
  for (const CameraConfig &camera : config.cameras) {
    auto it = snapshot.cameras.find (camera.name);
    if (it != snapshot.cameras.end ())
      it->second->set_instant_start (camera.instant_start.value_or (config.server.instant_start),
          config.server.gop_cache_max_bytes, config.server.burst_max_bytes);
  }
}

}  // namespace

std::shared_ptr<Camera>
Relay::add_camera (const CameraConfig &config, const std::vector<UserConfig> &users)
{
  std::string error;
  std::shared_ptr<Camera> camera = Camera::create (config, server_, context_, error);
  if (!camera) {
    log_line ("error: camera %s: %s; not served", config.name.c_str (), error.c_str ());
    return nullptr;
  }
  configure_transports (camera->factory (), config, config_.server, multicast_groups_);
  permit_users (camera->factory (), config, users);
  GstRTSPMountPoints *mounts = gst_rtsp_server_get_mount_points (server_);
  gst_rtsp_mount_points_add_factory (mounts, ("/" + config.name).c_str (),
      GST_RTSP_MEDIA_FACTORY (g_object_ref (camera->factory ())));
  g_object_unref (mounts);
  // An on-demand camera connects with its first client.
  if (!config.on_demand)
    camera->start ();
  return camera;
}

bool
Relay::start (const Config &config, GMainContext *context, std::string &error)
{
  started_us_ = g_get_monotonic_time ();
  context_ = context;
  server_ = make_bounded_server (config.server, context);
  gst_rtsp_server_set_address (server_, config.server.bind.c_str ());
  gst_rtsp_server_set_service (server_, std::to_string (config.server.port).c_str ());
  GstRTSPThreadPool *pool = gst_rtsp_server_get_thread_pool (server_);
  gst_rtsp_thread_pool_set_max_threads (pool,
      config.server.threads ? static_cast<gint> (config.server.threads) : THREAD_PER_CLIENT);
  g_object_unref (pool);
  config_ = config;
  published_->guard.set_timeout (config.server.slow_client_timeout);
  // The certificate first: when it cannot be used nothing starts.
  // One authenticator for the server's whole life (reload_users).
  GstRTSPAuth *auth = make_auth (config.users);
  if (!config.server.tls_cert.empty ()
      && !apply_tls (auth, config.server.tls_cert, config.server.tls_key, error)) {
    g_object_unref (auth);
    return false;
  }
  gst_rtsp_server_set_auth (server_, auth);
  g_object_unref (auth);
  multicast_groups_ = gst_rtsp_address_pool_new ();
  if (!gst_rtsp_address_pool_add_range (multicast_groups_, config.server.multicast_first.c_str (),
          config.server.multicast_last.c_str (), config.server.multicast_port_first,
          config.server.multicast_port_last, static_cast<guint8> (config.server.multicast_ttl)))
    log_line ("warning: server.multicast_range %s-%s is not usable; unicast only",
        config.server.multicast_first.c_str (), config.server.multicast_last.c_str ());
  g_signal_connect_data (server_, "client-connected", G_CALLBACK (on_client_connected),
      new std::shared_ptr<Published> (published_),
      [] (gpointer data, GClosure *) { delete static_cast<std::shared_ptr<Published> *> (data); },
      GConnectFlags (0));

  GError *gerror = nullptr;
  GSource *source = gst_rtsp_server_create_source (server_, nullptr, &gerror);
  if (!source) {
    error = "RTSP " + config.server.bind + ":" + std::to_string (config.server.port) + ": "
        + (gerror ? gerror->message : "cannot listen");
    g_clear_error (&gerror);
    return false;
  }
  server_source_ = g_source_attach (source, context);
  g_source_unref (source);
  port_ = static_cast<uint16_t> (gst_rtsp_server_get_bound_port (server_));

  // Sessions of clients that vanished without TEARDOWN are only removed when
  // the application asks.
  GSource *cleanup = g_timeout_source_new_seconds (SESSION_CLEANUP_INTERVAL_S);
  g_source_set_callback (cleanup, cleanup_sessions, this, nullptr);
  cleanup_source_ = g_source_attach (cleanup, context);
  g_source_unref (cleanup);

  auto snapshot = std::make_shared<Snapshot> ();
  snapshot->users = config.users;
  snapshot->max_clients = config.server.max_clients;
  snapshot->session_timeout = config.server.session_timeout;
  for (const CameraConfig &camera : config.cameras)
    if (camera.enabled)
      if (auto added = add_camera (camera, config.users))
        snapshot->cameras[camera.name] = std::move (added);
  apply_instant_start (config, *snapshot);
  published_->set (std::move (snapshot));
  return true;
}

gboolean
Relay::cleanup_sessions (gpointer data)
{
  auto *self = static_cast<Relay *> (data);
  GstRTSPSessionPool *sessions = gst_rtsp_server_get_session_pool (self->server_);
  gst_rtsp_session_pool_cleanup (sessions);
  // On-demand cameras without clients for their idle_timeout disconnect.
  const std::shared_ptr<const Snapshot> snapshot = self->published_->get ();
  uint64_t total = 0;
  std::map<std::string, uint64_t> clients = clients_per_camera (*snapshot, sessions, total);
  g_object_unref (sessions);
  const gint64 now = g_get_monotonic_time ();
  for (auto &[name, camera] : snapshot->cameras)
    camera->check_idle (clients[name], now);
  self->published_->guard.check ();
  return G_SOURCE_CONTINUE;
}

void
Relay::stop ()
{
  if (!server_)
    return;
  auto remove_source = [this] (guint &id) {
    if (id) {
      if (GSource *s = g_main_context_find_source_by_id (context_, id))
        g_source_destroy (s);
      id = 0;
    }
  };
  remove_source (server_source_);
  remove_source (cleanup_source_);
  const std::shared_ptr<const Snapshot> running = published_->get ();
  published_->set (std::make_shared<Snapshot> ());
  // Close every client: their medias stop with them.
  gst_rtsp_server_client_filter (server_,
      [] (GstRTSPServer *, GstRTSPClient *, gpointer) { return GST_RTSP_FILTER_REMOVE; }, nullptr);
  for (auto &[name, camera] : running->cameras)
    camera->shutdown ();
  GstRTSPMountPoints *mounts = gst_rtsp_server_get_mount_points (server_);
  for (auto &[name, camera] : running->cameras)
    gst_rtsp_mount_points_remove_factory (mounts, ("/" + name).c_str ());
  g_object_unref (mounts);
  g_object_unref (server_);
  server_ = nullptr;
  // Groups still held by factories that outlive the server keep the pool alive.
  g_clear_object (&multicast_groups_);
}

Status
Relay::status () const
{
  Status status;
  status.version = version_;
  status.clients = 0;
  status.uptime_seconds = static_cast<double> (g_get_monotonic_time () - started_us_) / 1e6;

  const std::shared_ptr<const Snapshot> snapshot = published_->get ();
  uint64_t total = 0;
  std::map<std::string, uint64_t> clients;
  if (server_) {
    GstRTSPSessionPool *sessions = gst_rtsp_server_get_session_pool (server_);
    clients = clients_per_camera (*snapshot, sessions, total);
    g_object_unref (sessions);
  }
  status.clients = total;
  status.clients_cut = published_->guard.cut_total ();
  for (const auto &[name, camera] : snapshot->cameras) {
    CameraStatus c;
    c.name = name;
    c.mount = "/" + name;
    GstStructure *cam_stats = nullptr;
    GstStructure *queue_stats = nullptr;
    g_object_get (camera->camerasrc (), "stats", &cam_stats, nullptr);
    g_object_get (camera->queue (), "stats", &queue_stats, nullptr);
    c.camerasrc_stats.reset (cam_stats);
    c.resilientqueue_stats.reset (queue_stats);
    if (cam_stats) {
      gst_structure_get_uint64 (cam_stats, camerasrc_names::STAT_RECONNECTS, &c.reconnects);
      gst_structure_get_uint64 (cam_stats, camerasrc_names::STAT_BYTES, &c.bytes_in);
      gst_structure_get_uint64 (cam_stats, camerasrc_names::STAT_FRAMES, &c.frames_in);
    }
    if (queue_stats)
      gst_structure_get_uint64 (queue_stats, resilientqueue_names::FIELD_DROPPED_BUFFERS,
          &c.frames_dropped);
    c.state = camera->state ();
    c.bytes_out = camera->bytes_out ();
    c.gop_cache_bytes = camera->gop_cache_bytes ();
    c.instant_starts = camera->instant_start ()->bursts;
    c.live_starts = camera->instant_start ()->live_starts;
    c.up = c.state == camerasrc_names::STATE_STREAMING;
    c.clients = clients[name];
    status.cameras.push_back (std::move (c));
  }
  return status;
}

namespace {

bool
same_camera (const CameraConfig &a, const CameraConfig &b)
{
  return a.name == b.name && a.location == b.location && a.username == b.username
      && a.password == b.password && a.transport == b.transport && a.audio == b.audio
      && a.buffer_time_ms == b.buffer_time_ms && a.fallback == b.fallback
      && a.fallback_after_ms == b.fallback_after_ms
      && a.on_demand == b.on_demand && a.idle_timeout == b.idle_timeout
      && a.max_clients == b.max_clients && a.users == b.users && a.enabled == b.enabled
      && a.multicast == b.multicast && a.pipeline == b.pipeline;
}

// Whether `session` plays the media mounted at `mount`.
bool
session_plays (GstRTSPSession *session, const gchar *mount)
{
  gint matched = 0;
  return gst_rtsp_session_get_media (session, mount, &matched) != nullptr;
}

bool
same_users (const std::vector<UserConfig> &a, const std::vector<UserConfig> &b)
{
  if (a.size () != b.size ())
    return false;
  for (size_t i = 0; i < a.size (); i++)
    if (a[i].name != b[i].name || a[i].password != b[i].password
        || a[i].password_hash != b[i].password_hash)
      return false;
  return true;
}

}  // namespace

// Main thread; the camera has left the published snapshot already, so no
// worker finds it any more.  Its mount goes first (no new client), then the
// sessions playing it, then the camera: its waiting clients are answered,
// its medias released.  The sessions are removed from the server's pool, as a
// session timeout does: each client watching one forgets it (and a client
// left without sessions is closed: it sees the stream end), and the session
// media, when freed, takes its transports out of the streams.  (Only
// detaching them from their clients would leave them in the pool with
// transports that call into their client after it is gone.)
void
Relay::remove_camera (const std::shared_ptr<Camera> &camera)
{
  const std::string mount = "/" + camera->config ().name;
  GstRTSPMountPoints *mounts = gst_rtsp_server_get_mount_points (server_);
  gst_rtsp_mount_points_remove_factory (mounts, mount.c_str ());
  g_object_unref (mounts);
  // The clients playing it, closed below once their sessions are gone.
  std::vector<GObjectPtr<GstRTSPClient>> players;
  GList *clients = gst_rtsp_server_client_filter (server_, nullptr, nullptr);
  for (GList *c = clients; c; c = c->next) {
    auto *client = GST_RTSP_CLIENT (c->data);
    GList *sessions = gst_rtsp_client_session_filter (client, nullptr, nullptr);
    for (GList *s = sessions; s; s = s->next)
      if (session_plays (GST_RTSP_SESSION (s->data), mount.c_str ())) {
        players.emplace_back (GST_RTSP_CLIENT (g_object_ref (client)));
        break;
      }
    g_list_free_full (sessions, g_object_unref);
  }
  g_list_free_full (clients, g_object_unref);
  GstRTSPSessionPool *pool = gst_rtsp_server_get_session_pool (server_);
  GList *ended = gst_rtsp_session_pool_filter (pool,
      [] (GstRTSPSessionPool *, GstRTSPSession *session, gpointer mount) {
        return session_plays (session, static_cast<const gchar *> (mount)) ? GST_RTSP_FILTER_REMOVE
                                                                             : GST_RTSP_FILTER_KEEP;
      },
      const_cast<gchar *> (mount.c_str ()));
  g_list_free_full (ended, g_object_unref);
  g_object_unref (pool);
  // A client left with no session (it played only this camera) is closed:
  // it sees the stream end at once rather than silence.
  for (const GObjectPtr<GstRTSPClient> &client : players) {
    GList *left = gst_rtsp_client_session_filter (client.get (), nullptr, nullptr);
    if (!left)
      gst_rtsp_client_close (client.get ());
    g_list_free_full (left, g_object_unref);
  }
  camera->shutdown ();
}

// New [[users]]: the server's authenticator takes them in place (the
// clients already connected share it: their next request is checked against
// the new users, a removed user loses access within a session timeout, and
// unchanged users' Digest nonces stay valid), and the cameras' permissions
// are made again.
bool
Relay::reload_users (const std::vector<UserConfig> &users, const Snapshot &cameras)
{
  GstRTSPAuth *auth = gst_rtsp_server_get_auth (server_);
  set_users (auth, users);
  g_object_unref (auth);
  for (auto &[name, camera] : cameras.cameras) {
    gst_rtsp_media_factory_set_permissions (camera->factory (), nullptr);
    permit_users (camera->factory (), camera->config (), users);
  }
  log_line ("reload: %zu user(s); connected clients are checked against them from their next "
      "request", users.size ());
  return true;
}

void
Relay::reload (const Config &config)
{
  if (config.server.bind != config_.server.bind || config.server.port != config_.server.port
      || config.server.tls_cert != config_.server.tls_cert
      || config.server.tls_key != config_.server.tls_key || config.server.threads != config_.server.threads
      || config.server.multicast_first != config_.server.multicast_first
      || config.server.multicast_last != config_.server.multicast_last
      || config.server.multicast_port_first != config_.server.multicast_port_first
      || config.server.multicast_port_last != config_.server.multicast_port_last
      || config.server.multicast_ttl != config_.server.multicast_ttl
      || config.server.multicast_iface != config_.server.multicast_iface)
    log_line ("reload: [server] address, threads, TLS and multicast settings apply at the next "
        "restart");
  const std::shared_ptr<const Snapshot> running = published_->get ();
  published_->guard.set_timeout (config.server.slow_client_timeout);
  update_bounds (server_, config.server);

  auto find = [] (const std::vector<CameraConfig> &cameras, const std::string &name)
      -> const CameraConfig * {
    for (const CameraConfig &c : cameras)
      if (c.name == name)
        return &c;
    return nullptr;
  };
  // First the cameras that go (removed, disabled or changed): a snapshot
  // without them is published before they are shut down.
  auto without = std::make_shared<Snapshot> (*running);
  without->max_clients = config.server.max_clients;
  without->session_timeout = config.server.session_timeout;
  std::vector<std::shared_ptr<Camera>> gone;
  unsigned added = 0, removed = 0, changed = 0, kept = 0;
  for (const CameraConfig &old : config_.cameras) {
    const CameraConfig *now = find (config.cameras, old.name);
    auto it = without->cameras.find (old.name);
    if (it == without->cameras.end ())
      continue;
    if (!now || !now->enabled || !same_camera (old, *now)) {
      gone.push_back (it->second);
      without->cameras.erase (it);
      if (now && now->enabled)
        changed++;
      else
        removed++;
      log_line ("camera %s: %s", old.name.c_str (),
          now && now->enabled ? "changed: restarting it" : "removed");
    } else {
      kept++;
    }
  }
  published_->set (without);
  for (const std::shared_ptr<Camera> &camera : gone)
    remove_camera (camera);
  gone.clear ();

  // Then the new users and cameras, in a new snapshot (a published one is
  // never changed).
  auto next = std::make_shared<Snapshot> (*without);

  if (!same_users (config.users, running->users) && reload_users (config.users, *next))
    next->users = config.users;
  for (const CameraConfig &camera : config.cameras) {
    if (!camera.enabled || next->cameras.count (camera.name))
      continue;
    if (!find (config_.cameras, camera.name)) {
      added++;
      log_line ("camera %s: added", camera.name.c_str ());
    }
    if (auto camera_added = add_camera (camera, next->users))
      next->cameras[camera.name] = std::move (camera_added);
  }
  apply_instant_start (config, *next);
  published_->set (next);
  Config running_config = config;
  running_config.server = config_.server;  // what actually runs
  running_config.http = config_.http;
  running_config.users = next->users;
  running_config.server.max_clients = config.server.max_clients;
  running_config.server.session_timeout = config.server.session_timeout;
  running_config.server.slow_client_timeout = config.server.slow_client_timeout;
  running_config.server.max_connections = config.server.max_connections;
  running_config.server.max_connections_per_ip = config.server.max_connections_per_ip;
  running_config.server.login_timeout = config.server.login_timeout;
  running_config.server.instant_start = config.server.instant_start;
  running_config.server.gop_cache_max_bytes = config.server.gop_cache_max_bytes;
  running_config.server.burst_max_bytes = config.server.burst_max_bytes;
  config_ = running_config;
  log_line ("reload: %u camera(s) added, %u removed, %u changed, %u untouched", added, removed,
      changed, kept);
}

namespace {

std::string
client_ip (GstRTSPClient *client)
{
  GstRTSPConnection *connection = gst_rtsp_client_get_connection (client);
  const gchar *ip = connection ? gst_rtsp_connection_get_ip (connection) : nullptr;
  return ip ? ip : "?";
}

// "user NAME " when the request carries a known user, else "".
std::string
client_user (GstRTSPContext *ctx)
{
  const std::string user = authenticated_user (ctx);
  return user.empty () ? "" : "user " + user + " ";
}

}  // namespace

namespace {

using PublishedRef = std::shared_ptr<Relay::Published>;

Relay::Published &
published_of (gpointer data)
{
  return **static_cast<PublishedRef *> (data);
}

// Connects a worker-thread handler that owns a reference to `published`.
void
connect_worker (GstRTSPClient *client, const char *signal, GCallback handler,
    const PublishedRef &published)
{
  g_signal_connect_data (client, signal, handler, new PublishedRef (published),
      [] (gpointer data, GClosure *) { delete static_cast<PublishedRef *> (data); },
      GConnectFlags (0));
}

// A client that arrives before the camera's first video waits a bounded
// time for it, then gets a clean 503 Service Unavailable.
GstRTSPStatusCode
on_pre_describe (GstRTSPClient *client, GstRTSPContext *ctx, gpointer data)
{
  const std::string path = ctx->uri && ctx->uri->abspath ? ctx->uri->abspath : "";
  const std::shared_ptr<Camera> camera = published_of (data).get ()->camera_of (path);
  if (!camera)
    return GST_RTSP_STS_OK;  // the server answers 404
  if (!camera->wait_video (DESCRIBE_WAIT)) {
    log_line ("client %s: refused %s: no video from camera %s yet", client_ip (client).c_str (),
        log_value (path).c_str (), camera->config ().name.c_str ());
    return GST_RTSP_STS_SERVICE_UNAVAILABLE;
  }
  return GST_RTSP_STS_OK;
}

// Client limits, answered before a new session is set up: 453 Not Enough
// Bandwidth when the camera has its maximum of clients, 503 Service
// Unavailable when the relay as a whole has.
GstRTSPStatusCode
on_pre_setup (GstRTSPClient *client, GstRTSPContext *ctx, gpointer data)
{
  if (ctx->session)
    return GST_RTSP_STS_OK;  // another stream of a session already counted
  const std::string path = ctx->uri && ctx->uri->abspath ? ctx->uri->abspath : "";
  const std::shared_ptr<const Snapshot> snapshot = published_of (data).get ();
  GstRTSPSessionPool *pool = gst_rtsp_client_get_session_pool (client);
  if (!pool)
    return GST_RTSP_STS_OK;
  uint64_t total = 0;
  std::map<std::string, uint64_t> clients = clients_per_camera (*snapshot, pool, total);
  g_object_unref (pool);
  if (snapshot->max_clients && total >= snapshot->max_clients) {
    log_line ("client %s: refused %s: %u clients already (server.max_clients)",
        client_ip (client).c_str (), log_value (path).c_str (), snapshot->max_clients);
    return GST_RTSP_STS_SERVICE_UNAVAILABLE;
  }
  const std::shared_ptr<Camera> camera = snapshot->camera_of (path);
  if (!camera)
    return GST_RTSP_STS_OK;
  const CameraConfig &config = camera->config ();
  if (config.max_clients && clients[config.name] >= config.max_clients) {
    log_line ("client %s: refused %s: %u clients already (max_clients of camera %s)",
        client_ip (client).c_str (), log_value (path).c_str (), config.max_clients,
        config.name.c_str ());
    return GST_RTSP_STS_NOT_ENOUGH_BANDWIDTH;
  }
  return GST_RTSP_STS_OK;
}

// gst-rtsp-server (1.22) sends a stream's TCP-interleaved data from one send
// thread per stream, which wakes on a new sample of the stream's appsink or
// when a transport's queued message went out.  While every TCP transport of
// the stream is back-pressured (a client that stopped reading), it leaves
// the sample in the appsink (max-buffers 1, blocking), which holds up the
// stream's tee and so its UDP clients too.  When that transport is then
// removed (the client closed: cut by the guard, or gone), nothing wakes the
// send thread: the appsink stays full, and the UDP clients get nothing
// more.  So the TCP transports a client played are remembered, and when the
// client is closed (its transports removed by then) each is told that its
// message went out, which wakes its stream's send thread: it finds no
// back-pressured transport left and drains the appsink.
using TransportList = std::vector<GObjectPtr<GstRTSPStreamTransport>>;
const char *const kTcpTransportsKey = "camrelay-tcp-transports";

void
remember_tcp_transports (GstRTSPClient *client, GstRTSPSessionMedia *session_media)
{
  if (!session_media)
    return;
  auto *list = static_cast<TransportList *> (g_object_get_data (G_OBJECT (client), kTcpTransportsKey));
  if (!list) {
    list = new TransportList ();
    g_object_set_data_full (G_OBJECT (client), kTcpTransportsKey, list,
        [] (gpointer list) { delete static_cast<TransportList *> (list); });
  }
  GPtrArray *transports = gst_rtsp_session_media_get_transports (session_media);
  for (guint i = 0; transports && i < transports->len; i++) {
    auto *transport = static_cast<GstRTSPStreamTransport *> (g_ptr_array_index (transports, i));
    const GstRTSPTransport *t = transport ? gst_rtsp_stream_transport_get_transport (transport) : nullptr;
    if (t && t->lower_transport == GST_RTSP_LOWER_TRANS_TCP)
      list->emplace_back (GST_RTSP_STREAM_TRANSPORT (g_object_ref (transport)));
  }
  if (transports)
    g_ptr_array_unref (transports);
}

void
wake_streams_of (GstRTSPClient *client)
{
  auto *list = static_cast<TransportList *> (
      g_object_steal_data (G_OBJECT (client), kTcpTransportsKey));
  if (!list)
    return;
  for (const GObjectPtr<GstRTSPStreamTransport> &transport : *list)
    gst_rtsp_stream_transport_message_sent (transport.get ());
  delete list;
}

}  // namespace

// The server's "client-connected", on the main context; the client's own
// signals follow on its worker thread.
void
Relay::on_client_connected (GstRTSPServer *, GstRTSPClient *client, gpointer data)
{
  const PublishedRef &published = *static_cast<PublishedRef *> (data);
  const std::string ip = client_ip (client);
  log_line ("client %s: connected", ip.c_str ());
  published->guard.watch (client);
  g_signal_connect_data (client, "closed",
      G_CALLBACK (+[] (GstRTSPClient *client, gpointer ip) {
        log_line ("client %s: disconnected", static_cast<gchar *> (ip));
        wake_streams_of (client);
      }),
      g_strdup (ip.c_str ()), [] (gpointer ip, GClosure *) { g_free (ip); }, GConnectFlags (0));
  connect_worker (client, "pre-setup-request", G_CALLBACK (on_pre_setup), published);
  connect_worker (client, "pre-describe-request", G_CALLBACK (on_pre_describe), published);
  // A client that vanishes without TEARDOWN is dropped after session_timeout
  // (by the periodic session-pool cleanup).
  connect_worker (client, "new-session",
      G_CALLBACK (+[] (GstRTSPClient *client, GstRTSPSession *session, gpointer data) {
        claim_session (client, session);
        gst_rtsp_session_set_timeout (session,
            static_cast<guint> (published_of (data).get ()->session_timeout));
      }),
      published);
  connect_worker (client, "play-request",
      G_CALLBACK (+[] (GstRTSPClient *client, GstRTSPContext *ctx, gpointer data) {
        const std::string path =
            ctx->uri && ctx->uri->abspath ? log_value (ctx->uri->abspath) : "?";
        log_line ("client %s: %splays %s", client_ip (client).c_str (), client_user (ctx).c_str (),
            path.c_str ());
        remember_tcp_transports (client, ctx->sessmedia);
        published_of (data).guard.playing (client, client_user (ctx), path);
      }),
      published);
}

}  // namespace camrelay::launcher
