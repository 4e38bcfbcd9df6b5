#include "relay.h"

#include <chrono>

#include "auth.h"
#include "camera.h"
#include "common/gstref.h"

namespace camrelay::launcher {

namespace {

// How long a client's DESCRIBE waits for a camera that has not sent video yet.
constexpr auto DESCRIBE_WAIT = std::chrono::seconds (10);
constexpr guint SESSION_CLEANUP_INTERVAL_S = 2;
// Enough RTSP worker threads for hundreds of clients (the server's default is 1).
constexpr gint DEFAULT_RTSP_THREADS = 16;

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

}  // namespace

Relay::Relay (std::string version) : version_ (std::move (version)) {}

Relay::~Relay ()
{
  stop ();
}

void
Relay::add_camera (const CameraConfig &config)
{
  std::shared_ptr<Camera> camera = Camera::create (config, server_, context_);
  configure_transports (camera->factory (), config, config_.server, multicast_groups_);
  permit_users (camera->factory (), config, users_);
  GstRTSPMountPoints *mounts = gst_rtsp_server_get_mount_points (server_);
  gst_rtsp_mount_points_add_factory (mounts, ("/" + config.name).c_str (),
      GST_RTSP_MEDIA_FACTORY (g_object_ref (camera->factory ())));
  g_object_unref (mounts);
  // An on-demand camera connects with its first client.
  if (!config.on_demand)
    camera->start ();
  cameras_[config.name] = camera;
}

bool
Relay::start (const Config &config, GMainContext *context, std::string &error)
{
  started_us_ = g_get_monotonic_time ();
  context_ = context;
  server_ = gst_rtsp_server_new ();
  gst_rtsp_server_set_address (server_, config.server.bind.c_str ());
  gst_rtsp_server_set_service (server_, std::to_string (config.server.port).c_str ());
  GstRTSPThreadPool *pool = gst_rtsp_server_get_thread_pool (server_);
  gst_rtsp_thread_pool_set_max_threads (pool,
      config.server.threads ? static_cast<gint> (config.server.threads) : DEFAULT_RTSP_THREADS);
  g_object_unref (pool);
  config_ = config;
  users_ = config.users;
  max_clients_ = config.server.max_clients;
  session_timeout_ = config.server.session_timeout;
  guard_.set_timeout (config.server.slow_client_timeout);
  // The certificate first: when it cannot be used nothing starts.
  GstRTSPAuth *auth = make_auth (config.users);
  const bool tls = !config.server.tls_cert.empty ();
  if (tls && !auth)
    auth = make_anonymous_auth ();
  if (tls && !apply_tls (auth, config.server.tls_cert, config.server.tls_key, error)) {
    g_object_unref (auth);
    return false;
  }
  if (auth) {
    gst_rtsp_server_set_auth (server_, auth);
    g_object_unref (auth);
  }
  multicast_groups_ = gst_rtsp_address_pool_new ();
  if (!gst_rtsp_address_pool_add_range (multicast_groups_, config.server.multicast_first.c_str (),
          config.server.multicast_last.c_str (), config.server.multicast_port_first,
          config.server.multicast_port_last, static_cast<guint8> (config.server.multicast_ttl)))
    log_line ("warning: server.multicast_range %s-%s is not usable; unicast only",
        config.server.multicast_first.c_str (), config.server.multicast_last.c_str ());
  g_signal_connect (server_, "client-connected", G_CALLBACK (on_client_connected), this);

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

  for (const CameraConfig &camera : config.cameras)
    if (camera.enabled)
      add_camera (camera);
  return true;
}

gboolean
Relay::cleanup_sessions (gpointer data)
{
  auto *self = static_cast<Relay *> (data);
  GstRTSPSessionPool *sessions = gst_rtsp_server_get_session_pool (self->server_);
  gst_rtsp_session_pool_cleanup (sessions);
  g_object_unref (sessions);
  // On-demand cameras without clients for their idle_timeout disconnect.
  uint64_t total = 0;
  std::map<std::string, uint64_t> clients = self->clients_per_camera (total);
  const gint64 now = g_get_monotonic_time ();
  for (auto &[name, camera] : self->cameras_)
    camera->check_idle (clients[name], now);
  self->guard_.check ();
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
  // Close every client: their medias stop with them.
  gst_rtsp_server_client_filter (server_,
      [] (GstRTSPServer *, GstRTSPClient *, gpointer) { return GST_RTSP_FILTER_REMOVE; }, nullptr);
  for (auto &[name, camera] : cameras_)
    camera->shutdown ();
  GstRTSPMountPoints *mounts = gst_rtsp_server_get_mount_points (server_);
  for (auto &[name, camera] : cameras_)
    gst_rtsp_mount_points_remove_factory (mounts, ("/" + name).c_str ());
  g_object_unref (mounts);
  cameras_.clear ();
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

  uint64_t total = 0;
  std::map<std::string, uint64_t> clients = clients_per_camera (total);
  status.clients = total;
  status.clients_cut = guard_.cut_total ();
  for (const auto &[name, camera] : cameras_) {
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
      gst_structure_get_uint64 (cam_stats, "reconnects", &c.reconnects);
      gst_structure_get_uint64 (cam_stats, "bytes", &c.bytes_in);
      gst_structure_get_uint64 (cam_stats, "frames", &c.frames_in);
    }
    if (queue_stats)
      gst_structure_get_uint64 (queue_stats, "dropped-buffers", &c.frames_dropped);
    c.state = camera->state ();
    c.bytes_out = camera->bytes_out ();
    c.up = c.state == "streaming";
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
      && a.on_demand == b.on_demand && a.idle_timeout == b.idle_timeout
      && a.max_clients == b.max_clients && a.users == b.users && a.enabled == b.enabled
      && a.multicast == b.multicast && a.pipeline == b.pipeline;
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

void
Relay::remove_camera (const std::string &name)
{
  auto it = cameras_.find (name);
  if (it == cameras_.end ())
    return;
  const std::string mount = "/" + name;
  GstRTSPMountPoints *mounts = gst_rtsp_server_get_mount_points (server_);
  gst_rtsp_mount_points_remove_factory (mounts, mount.c_str ());
  g_object_unref (mounts);
  // End the sessions playing it: their clients see the stream end.
  gst_rtsp_server_client_filter (server_,
      [] (GstRTSPServer *, GstRTSPClient *client, gpointer mount) {
        gst_rtsp_client_session_filter (client,
            [] (GstRTSPClient *, GstRTSPSession *session, gpointer mount) {
              gint matched = 0;
              return gst_rtsp_session_get_media (session, static_cast<const gchar *> (mount), &matched)
                  ? GST_RTSP_FILTER_REMOVE
                  : GST_RTSP_FILTER_KEEP;
            },
            mount);
        return GST_RTSP_FILTER_KEEP;
      },
      const_cast<gchar *> (mount.c_str ()));
  it->second->shutdown ();
  cameras_.erase (it);
}

// New [[users]]: a new authenticator for the server and for the clients
// already connected (their next request is checked against the new users:
// a removed user loses access within a session timeout), and the cameras'
// permissions again.
void
Relay::reload_users (const std::vector<UserConfig> &users)
{
  GstRTSPAuth *auth = make_auth (users);
  const bool tls = !config_.server.tls_cert.empty ();
  if (tls && !auth)
    auth = make_anonymous_auth ();
  std::string error;
  if (tls && !apply_tls (auth, config_.server.tls_cert, config_.server.tls_key, error)) {
    log_line ("reload: [[users]] not changed: %s", error.c_str ());
    g_object_unref (auth);
    return;
  }
  gst_rtsp_server_set_auth (server_, auth);
  gst_rtsp_server_client_filter (server_,
      [] (GstRTSPServer *, GstRTSPClient *client, gpointer auth) {
        gst_rtsp_client_set_auth (client, static_cast<GstRTSPAuth *> (auth));
        return GST_RTSP_FILTER_KEEP;
      },
      auth);
  if (auth)
    g_object_unref (auth);
  users_ = users;
  for (auto &[name, camera] : cameras_) {
    gst_rtsp_media_factory_set_permissions (camera->factory (), nullptr);
    permit_users (camera->factory (), camera->config (), users_);
  }
  log_line ("reload: %zu user(s); connected clients are checked against them from their next "
      "request", users_.size ());
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
  if (!same_users (config.users, config_.users))
    reload_users (config.users);
  max_clients_ = config.server.max_clients;
  session_timeout_ = config.server.session_timeout;
  guard_.set_timeout (config.server.slow_client_timeout);

  auto find = [] (const std::vector<CameraConfig> &cameras, const std::string &name)
      -> const CameraConfig * {
    for (const CameraConfig &c : cameras)
      if (c.name == name)
        return &c;
    return nullptr;
  };
  unsigned added = 0, removed = 0, changed = 0, kept = 0;
  for (const CameraConfig &old : config_.cameras) {
    const CameraConfig *now = find (config.cameras, old.name);
    if (!now || !now->enabled || !same_camera (old, *now)) {
      if (cameras_.count (old.name)) {
        remove_camera (old.name);
        if (now && now->enabled)
          changed++;
        else
          removed++;
        log_line ("camera %s: %s", old.name.c_str (),
            now && now->enabled ? "changed: restarting it" : "removed");
      }
    } else if (cameras_.count (old.name)) {
      kept++;
    }
  }
  for (const CameraConfig &camera : config.cameras) {
    if (!camera.enabled || cameras_.count (camera.name))
      continue;
    if (!find (config_.cameras, camera.name)) {
      added++;
      log_line ("camera %s: added", camera.name.c_str ());
    }
    add_camera (camera);
  }
  Config next = config;
  next.server = config_.server;  // what actually runs
  next.http = config_.http;
  next.users = users_;
  next.server.max_clients = config.server.max_clients;
  next.server.session_timeout = config.server.session_timeout;
  next.server.slow_client_timeout = config.server.slow_client_timeout;
  config_ = next;
  log_line ("reload: %u camera(s) added, %u removed, %u changed, %u untouched", added, removed,
      changed, kept);
}

std::map<std::string, uint64_t>
Relay::clients_per_camera (uint64_t &total) const
{
  std::map<std::string, uint64_t> clients;
  total = 0;
  if (!server_)
    return clients;
  GstRTSPSessionPool *pool = gst_rtsp_server_get_session_pool (server_);
  GList *all = gst_rtsp_session_pool_filter (pool, nullptr, nullptr);
  for (GList *l = all; l; l = l->next) {
    GList *medias = gst_rtsp_session_filter (GST_RTSP_SESSION (l->data), nullptr, nullptr);
    for (GList *m = medias; m; m = m->next) {
      for (const auto &[name, camera] : cameras_) {
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
  g_object_unref (pool);
  return clients;
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
  const gchar *user = ctx && ctx->token
      ? gst_rtsp_token_get_string (ctx->token, GST_RTSP_TOKEN_MEDIA_FACTORY_ROLE)
      : nullptr;
  return user ? std::string ("user ") + user + " " : "";
}

}  // namespace

void
Relay::on_client_connected (GstRTSPServer *, GstRTSPClient *client, gpointer data)
{
  const std::string ip = client_ip (client);
  log_line ("client %s: connected", ip.c_str ());
  static_cast<Relay *> (data)->guard_.watch (client);
  g_signal_connect_data (client, "closed",
      G_CALLBACK (+[] (GstRTSPClient *, gpointer ip) {
        log_line ("client %s: disconnected", static_cast<gchar *> (ip));
      }),
      g_strdup (ip.c_str ()), [] (gpointer ip, GClosure *) { g_free (ip); }, GConnectFlags (0));
  g_signal_connect (client, "pre-setup-request", G_CALLBACK (on_pre_setup), data);
  g_signal_connect (client, "pre-describe-request", G_CALLBACK (on_pre_describe), data);
  // A client that vanishes without TEARDOWN is dropped after session_timeout
  // (by the periodic session-pool cleanup).
  g_signal_connect (client, "new-session",
      G_CALLBACK (+[] (GstRTSPClient *, GstRTSPSession *session, gpointer data) {
        gst_rtsp_session_set_timeout (session,
            static_cast<guint> (static_cast<Relay *> (data)->session_timeout_));
      }),
      data);
  g_signal_connect (client, "play-request",
      G_CALLBACK (+[] (GstRTSPClient *client, GstRTSPContext *ctx, gpointer data) {
        log_line ("client %s: %splays %s", client_ip (client).c_str (), client_user (ctx).c_str (),
            ctx->uri ? ctx->uri->abspath : "?");
        static_cast<Relay *> (data)->guard_.playing (client, client_user (ctx),
            ctx->uri ? ctx->uri->abspath : "?");
      }),
      data);
}

// A client that arrives before the camera's first video waits a bounded
// time for it, then gets a clean 503 Service Unavailable.
GstRTSPStatusCode
Relay::on_pre_describe (GstRTSPClient *client, GstRTSPContext *ctx, gpointer data)
{
  auto *self = static_cast<Relay *> (data);
  const std::string path = ctx->uri && ctx->uri->abspath ? ctx->uri->abspath : "";
  for (const auto &[name, camera] : self->cameras_) {
    if (path != "/" + name)
      continue;
    if (!camera->wait_video (DESCRIBE_WAIT)) {
      log_line ("client %s: refused %s: no video from camera %s yet", client_ip (client).c_str (),
          path.c_str (), name.c_str ());
      return GST_RTSP_STS_SERVICE_UNAVAILABLE;
    }
  }
  return GST_RTSP_STS_OK;
}

// Client limits, answered before a new session is set up: 453 Not Enough
// Bandwidth when the camera has its maximum of clients, 503 Service
// Unavailable when the relay as a whole has.
GstRTSPStatusCode
Relay::on_pre_setup (GstRTSPClient *client, GstRTSPContext *ctx, gpointer data)
{
  auto *self = static_cast<Relay *> (data);
  if (ctx->session)
    return GST_RTSP_STS_OK;  // another stream of a session already counted
  const std::string path = ctx->uri && ctx->uri->abspath ? ctx->uri->abspath : "";
  uint64_t total = 0;
  std::map<std::string, uint64_t> clients = self->clients_per_camera (total);
  if (self->max_clients_ && total >= self->max_clients_) {
    log_line ("client %s: refused %s: %u clients already (server.max_clients)",
        client_ip (client).c_str (), path.c_str (), self->max_clients_);
    return GST_RTSP_STS_SERVICE_UNAVAILABLE;
  }
  for (const auto &[name, camera] : self->cameras_) {
    const std::string mount = "/" + name;
    const bool this_camera = path == mount || path.rfind (mount + "/", 0) == 0;
    if (this_camera && camera->config ().max_clients && clients[name] >= camera->config ().max_clients) {
      log_line ("client %s: refused %s: %u clients already (max_clients of camera %s)",
          client_ip (client).c_str (), path.c_str (), camera->config ().max_clients, name.c_str ());
      return GST_RTSP_STS_NOT_ENOUGH_BANDWIDTH;
    }
  }
  return GST_RTSP_STS_OK;
}

}  // namespace camrelay::launcher
