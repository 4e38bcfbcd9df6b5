// The launcher's RTSP server with bounded connections; see server.h.
#include "server.h"

#include <atomic>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "camera.h"  // log_line
#include "instant_start.h"

namespace camrelay::launcher {

namespace {

using Lock = std::lock_guard<std::mutex>;

// How often a refusing address is logged (with the count since its last line).
constexpr gint64 REFUSAL_LOG_PERIOD_US = 10 * G_USEC_PER_SEC;
constexpr guint HOUSEKEEPING_INTERVAL_MS = 1000;

class ConnectionTable;

// One accepted connection, owned by its client (object data).
struct Connection {
  std::shared_ptr<ConnectionTable> table;
  std::string ip;
  // When the login clock started: accept() time, moved later by the time the
  // server spent waiting (for a camera) before answering the client.
  std::atomic<gint64> clock_start_us{0};
  std::atomic<gint64> waiting_since_us{0};  // 0 = no DESCRIBE being answered
  GWeakRef client;
  std::atomic<bool> authenticated{false};  // had a 2xx answer to something but OPTIONS
  bool login_expired = false;  // closed by the login check; guarded by the table's lock
  std::atomic<bool> released{false};
};

class ConnectionTable {
 public:
  void set_limits (const ServerConfig &config)
  {
    Lock l (lock_);
    max_total_ = config.max_connections;
    max_per_ip_ = config.max_connections_per_ip;
    login_timeout_s_ = config.login_timeout;
  }

  // Counts a new connection from `ip`, or says why it is refused ("" = admitted).
  std::string admit (const std::string &ip)
  {
    std::string refusal;
    std::string line;
    {
      Lock l (lock_);
      unsigned &from_ip = per_ip_[ip];
      if (max_total_ && total_ >= max_total_)
        refusal = std::to_string (total_) + " connections in all already (server.max_connections)";
      else if (max_per_ip_ && from_ip >= max_per_ip_)
        refusal = std::to_string (from_ip)
            + " connections from this address already (server.max_connections_per_ip)";
      if (refusal.empty ()) {
        total_++;
        from_ip++;
        return "";
      }
      if (from_ip == 0)
        per_ip_.erase (ip);
      Refusals &r = refusals_[ip];
      const gint64 now = g_get_monotonic_time ();
      if (r.logged_us && now - r.logged_us < REFUSAL_LOG_PERIOD_US) {
        r.unlogged++;
        return refusal;
      }
      line = "client " + ip + ": refused a connection: " + refusal;
      if (r.unlogged)
        line += "; " + std::to_string (r.unlogged) + " more refused since the last line";
      r.logged_us = now;
      r.unlogged = 0;
    }
    log_line ("%s", line.c_str ());
    return refusal;
  }

  void track (Connection *connection)
  {
    Lock l (lock_);
    connections_.push_back (connection);
  }

  // Gives the connection's place back; once, whoever calls first.
  void release (Connection *connection)
  {
    if (connection->released.exchange (true))
      return;
    Lock l (lock_);
    total_--;
    auto it = per_ip_.find (connection->ip);
    if (it != per_ip_.end () && --it->second == 0)
      per_ip_.erase (it);
  }

  void forget (Connection *connection)
  {
    Lock l (lock_);
    connections_.remove (connection);
  }

  unsigned total () const
  {
    Lock l (lock_);
    return total_;
  }

  // Logs the refusals not logged yet once their period is over, and forgets
  // the addresses that have none left.  Main context.
  void flush_refusals ()
  {
    std::vector<std::string> lines;
    {
      Lock l (lock_);
      const gint64 now = g_get_monotonic_time ();
      for (auto it = refusals_.begin (); it != refusals_.end ();) {
        if (now - it->second.logged_us < REFUSAL_LOG_PERIOD_US) {
          ++it;
          continue;
        }
        if (it->second.unlogged)
          lines.push_back ("client " + it->first + ": refused "
              + std::to_string (it->second.unlogged) + " more connection(s) since the last line");
        it = refusals_.erase (it);
      }
    }
    for (const std::string &line : lines)
      log_line ("%s", line.c_str ());
  }

  // Closes the connections that have not authenticated in time, with a log
  // line per address.  Main context.
  void close_unauthenticated ()
  {
    std::vector<GstRTSPClient *> overdue;
    std::map<std::string, unsigned> per_ip;
    unsigned timeout_s;
    {
      Lock l (lock_);
      timeout_s = login_timeout_s_;
      if (!timeout_s)
        return;
      const gint64 now = g_get_monotonic_time ();
      for (Connection *c : connections_) {
        if (c->authenticated || c->released || c->login_expired || c->waiting_since_us
            || now - c->clock_start_us < static_cast<gint64> (timeout_s) * G_USEC_PER_SEC)
          continue;
        auto *client = static_cast<GstRTSPClient *> (g_weak_ref_get (&c->client));
        if (!client)
          continue;
        c->login_expired = true;  // closing takes a while to reach its "closed"
        overdue.push_back (client);
        per_ip[c->ip]++;
      }
    }
    for (const auto &[ip, count] : per_ip)
      log_line ("client %s: closed %u connection(s) with no successful request other than "
          "OPTIONS within %u s (server.login_timeout)", ip.c_str (), count, timeout_s);
    // Closed without our lock: closing emits the client's signals.
    for (GstRTSPClient *client : overdue) {
      gst_rtsp_client_close (client);
      g_object_unref (client);
    }
  }

 private:
  struct Refusals {
    gint64 logged_us = 0;
    unsigned unlogged = 0;  // refused since the last line
  };

  mutable std::mutex lock_;
  unsigned max_total_ = 0;
  unsigned max_per_ip_ = 0;
  unsigned login_timeout_s_ = 0;
  unsigned total_ = 0;
  std::map<std::string, unsigned> per_ip_;
  std::map<std::string, Refusals> refusals_;
  std::list<Connection *> connections_;
};

const char *const kConnectionKey = "camrelay-connection";

void
free_connection (gpointer data)
{
  auto *connection = static_cast<Connection *> (data);
  connection->table->release (connection);
  connection->table->forget (connection);
  g_weak_ref_clear (&connection->client);
  delete connection;
}

Connection *
connection_of (GstRTSPClient *client)
{
  return static_cast<Connection *> (g_object_get_data (G_OBJECT (client), kConnectionKey));
}

// A DESCRIBE may wait for its camera (up to 10 s) before it is answered:
// that time is the server's, not the client's, and does not count.
GstRTSPStatusCode
on_pre_describe (GstRTSPClient *client, GstRTSPContext *, gpointer)
{
  if (Connection *connection = connection_of (client))
    connection->waiting_since_us = g_get_monotonic_time ();
  return GST_RTSP_STS_OK;
}

// A successful answer to anything but OPTIONS: the client has been let in
// (with credentials where the camera needs them).  Its worker thread.
void
on_send_message (GstRTSPClient *client, GstRTSPContext *ctx, GstRTSPMessage *message, gpointer)
{
  Connection *connection = connection_of (client);
  if (!connection || !message || message->type != GST_RTSP_MESSAGE_RESPONSE)
    return;
  if (const gint64 since = connection->waiting_since_us.exchange (0))
    connection->clock_start_us += g_get_monotonic_time () - since;
  const GstRTSPStatusCode code = message->type_data.response.code;
  if (ctx && ctx->method != GST_RTSP_OPTIONS && code >= 200 && code < 300)
    connection->authenticated = true;
  prepare_instant_start (client, ctx, message);
}

}  // namespace

}  // namespace camrelay::launcher

// ---- the GstRTSPServer subclass -------------------------------------------------

#define CAMRELAY_TYPE_RTSP_SERVER (camrelay_rtsp_server_get_type ())
G_DECLARE_FINAL_TYPE (CamrelayRtspServer, camrelay_rtsp_server, CAMRELAY, RTSP_SERVER, GstRTSPServer)

struct CamrelayRtspServerPrivate {
  std::shared_ptr<camrelay::launcher::ConnectionTable> table =
      std::make_shared<camrelay::launcher::ConnectionTable> ();
  GSource *housekeeping = nullptr;
};

struct _CamrelayRtspServer {
  GstRTSPServer parent;
  CamrelayRtspServerPrivate *priv;
};

G_DEFINE_TYPE (CamrelayRtspServer, camrelay_rtsp_server, GST_TYPE_RTSP_SERVER)

// gst_rtsp_server_io_func() calls this on the main context right after
// accept(), with the accepted connection in the current context; returning
// NULL makes it close the connection before any client or thread exists.
static GstRTSPClient *
camrelay_rtsp_server_create_client (GstRTSPServer *server)
{
  using namespace camrelay::launcher;
  auto *self = CAMRELAY_RTSP_SERVER (server);
  GstRTSPContext *ctx = gst_rtsp_context_get_current ();
  const gchar *address = ctx && ctx->conn ? gst_rtsp_connection_get_ip (ctx->conn) : nullptr;
  const std::string ip = address ? address : "?";
  if (!self->priv->table->admit (ip).empty ())
    return nullptr;

  GstRTSPClient *client =
      GST_RTSP_SERVER_CLASS (camrelay_rtsp_server_parent_class)->create_client (server);
  auto *connection = new Connection ();
  connection->table = self->priv->table;
  connection->ip = ip;
  connection->clock_start_us = g_get_monotonic_time ();
  g_weak_ref_init (&connection->client, client);
  if (!client) {
    free_connection (connection);
    return nullptr;
  }
  self->priv->table->track (connection);
  g_object_set_data_full (G_OBJECT (client), kConnectionKey, connection, free_connection);
  g_signal_connect (client, "closed", G_CALLBACK (+[] (GstRTSPClient *client, gpointer) {
    auto *c = static_cast<Connection *> (g_object_get_data (G_OBJECT (client), kConnectionKey));
    if (c)
      c->table->release (c);
  }), nullptr);
  g_signal_connect (client, "pre-describe-request", G_CALLBACK (on_pre_describe), nullptr);
  g_signal_connect (client, "send-message", G_CALLBACK (on_send_message), nullptr);
  g_signal_connect (client, "pre-play-request", G_CALLBACK (camrelay::launcher::instant_start_pre_play),
      nullptr);
  g_signal_connect (client, "play-request", G_CALLBACK (camrelay::launcher::instant_start_play), nullptr);
  return client;
}

static void
camrelay_rtsp_server_finalize (GObject *object)
{
  auto *self = CAMRELAY_RTSP_SERVER (object);
  if (self->priv->housekeeping) {
    g_source_destroy (self->priv->housekeeping);
    g_source_unref (self->priv->housekeeping);
  }
  delete self->priv;
  G_OBJECT_CLASS (camrelay_rtsp_server_parent_class)->finalize (object);
}

static void
camrelay_rtsp_server_class_init (CamrelayRtspServerClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = camrelay_rtsp_server_finalize;
  GST_RTSP_SERVER_CLASS (klass)->create_client = camrelay_rtsp_server_create_client;
}

static void
camrelay_rtsp_server_init (CamrelayRtspServer *self)
{
  self->priv = new CamrelayRtspServerPrivate ();
}

namespace camrelay::launcher {

GstRTSPServer *
make_bounded_server (const ServerConfig &config, GMainContext *context)
{
  auto *self = CAMRELAY_RTSP_SERVER (g_object_new (CAMRELAY_TYPE_RTSP_SERVER, nullptr));
  GstRTSPServer *server = GST_RTSP_SERVER (self);
  gst_rtsp_server_set_backlog (server, RTSP_LISTEN_BACKLOG);
  gst_rtsp_server_set_content_length_limit (server, RTSP_BODY_LIMIT);
  self->priv->table->set_limits (config);
  GSource *housekeeping = g_timeout_source_new (HOUSEKEEPING_INTERVAL_MS);
  g_source_set_callback (housekeeping,
      [] (gpointer table) -> gboolean {
        auto &connections = *static_cast<std::shared_ptr<ConnectionTable> *> (table);
        connections->close_unauthenticated ();
        connections->flush_refusals ();
        return G_SOURCE_CONTINUE;
      },
      new std::shared_ptr<ConnectionTable> (self->priv->table),
      [] (gpointer table) { delete static_cast<std::shared_ptr<ConnectionTable> *> (table); });
  g_source_attach (housekeeping, context);
  self->priv->housekeeping = housekeeping;
  return server;
}

void
update_bounds (GstRTSPServer *server, const ServerConfig &config)
{
  CAMRELAY_RTSP_SERVER (server)->priv->table->set_limits (config);
}

unsigned
open_connections (GstRTSPServer *server)
{
  return CAMRELAY_RTSP_SERVER (server)->priv->table->total ();
}

}  // namespace camrelay::launcher
