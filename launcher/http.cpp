// The launcher's HTTP endpoints; see http.h and docs/metrics.md.
#include "http.h"

#include <libsoup/soup.h>

#include <cmath>
#include <cstring>
#include <exception>
#include <initializer_list>
#include "camera.h"  // log_line
#include "config.h"
#include "http_connections.h"
#include "common/element_names.h"
#include "common/enums.h"

namespace camrelay::launcher {

namespace {

using ObjectRef = UniqueRef<GObject, g_object_unref>;

// The states of camerasrc (GstCameraSrcState nicks), always exported by
// camrelay_camera_state so that a query on a state that is not current still
// finds a 0 sample instead of nothing.
constexpr const auto &kCameraStates = camerasrc_names::STATES;

constexpr const char *kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";
constexpr const char *kJsonContentType = "application/json";
constexpr const char *kTextContentType = "text/plain; charset=utf-8";

// GLib counts an embedded NUL as invalid UTF-8; it is valid, so each piece
// between NULs is checked on its own.  Invalid bytes become U+FFFD.
std::string
valid_utf8 (const std::string &text)
{
  if (g_utf8_validate (text.data (), static_cast<gssize> (text.size ()), nullptr))
    return text;
  std::string out;
  size_t start = 0;
  while (true) {
    size_t nul = text.find ('\0', start);
    size_t end = nul == std::string::npos ? text.size () : nul;
    GCharPtr piece{g_utf8_make_valid (text.data () + start, static_cast<gssize> (end - start))};
    out += piece.get ();
    if (nul == std::string::npos)
      return out;
    out += '\0';
    start = nul + 1;
  }
}

// Locale-independent; the shortest of %.15g, %.16g, %.17g that reads back
// as the same double.  The callers deal with NaN and infinities.
std::string
format_double (double value)
{
  char buffer[G_ASCII_DTOSTR_BUF_SIZE];
  for (const char *format : {"%.15g", "%.16g"}) {
    g_ascii_formatd (buffer, sizeof buffer, format, value);
    if (g_ascii_strtod (buffer, nullptr) == value)
      return buffer;
  }
  return g_ascii_formatd (buffer, sizeof buffer, "%.17g", value);
}

std::string
format_seconds (double seconds)
{
  char buffer[G_ASCII_DTOSTR_BUF_SIZE];
  return g_ascii_formatd (buffer, sizeof buffer, "%.3f", seconds);
}

// --- Prometheus text format ------------------------------------------------

// Prometheus escapes backslash and newline in HELP text, and also the double
// quote in label values.
std::string
escape_prometheus (const std::string &text, bool quote)
{
  std::string out;
  for (char c : valid_utf8 (text)) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else if (quote && c == '"')
      out += "\\\"";
    else
      out += c;
  }
  return out;
}

std::string
escape_help (const std::string &text)
{
  return escape_prometheus (text, false);
}

std::string
escape_label_value (const std::string &text)
{
  return escape_prometheus (text, true);
}

std::string
prometheus_value (double value)
{
  if (std::isnan (value))
    return "NaN";
  if (std::isinf (value))
    return value > 0 ? "+Inf" : "-Inf";
  return format_double (value);
}

struct Label {
  const char *name;
  std::string value;
};

class MetricsWriter {
 public:
  void family (const char *name, const char *type, const char *help)
  {
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    out_ += escape_help (help);
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
  }

  void sample (const char *name, std::initializer_list<Label> labels, const std::string &value)
  {
    out_ += name;
    if (labels.size () > 0) {
      out_ += '{';
      bool first = true;
      for (const Label &label : labels) {
        if (!first)
          out_ += ',';
        first = false;
        out_ += label.name;
        out_ += "=\"";
        out_ += escape_label_value (label.value);
        out_ += '"';
      }
      out_ += '}';
    }
    out_ += ' ';
    out_ += value;
    out_ += '\n';
  }

  void sample (const char *name, std::initializer_list<Label> labels, uint64_t value)
  {
    sample (name, labels, std::to_string (value));
  }

  std::string take () { return std::move (out_); }

 private:
  std::string out_;
};

// One family with one sample per camera.
template <typename Field>
void
camera_family (MetricsWriter &writer, const Status &status, const char *name,
    const char *type, const char *help, Field field)
{
  writer.family (name, type, help);
  for (const CameraStatus &camera : status.cameras)
    writer.sample (name, {{"camera", camera.name}}, field (camera));
}

// --- JSON --------------------------------------------------------------------

std::string value_to_json (const GValue *value);

std::string
list_to_json (const GValue *value, guint size, const GValue *(*get) (const GValue *, guint))
{
  std::string out = "[";
  for (guint i = 0; i < size; i++) {
    if (i > 0)
      out += ',';
    out += value_to_json (get (value, i));
  }
  return out + "]";
}

// Numbers as numbers, strings as strings, fractions as "n/d", enums as their
// nick; G_MAXUINT64 (GStreamer's "none", e.g. camerasrc's last-frame-age
// before the first frame) and non-finite doubles as null; anything else as
// its GStreamer serialisation.
std::string
value_to_json (const GValue *value)
{
  GType type = G_VALUE_TYPE (value);

  switch (G_TYPE_FUNDAMENTAL (type)) {
    case G_TYPE_BOOLEAN:
      return g_value_get_boolean (value) ? "true" : "false";
    case G_TYPE_CHAR:
      return std::to_string (g_value_get_schar (value));
    case G_TYPE_UCHAR:
      return std::to_string (g_value_get_uchar (value));
    case G_TYPE_INT:
      return std::to_string (g_value_get_int (value));
    case G_TYPE_UINT:
      return std::to_string (g_value_get_uint (value));
    case G_TYPE_LONG:
      return std::to_string (g_value_get_long (value));
    case G_TYPE_ULONG:
      return std::to_string (g_value_get_ulong (value));
    case G_TYPE_INT64:
      return std::to_string (g_value_get_int64 (value));
    case G_TYPE_UINT64: {
      guint64 number = g_value_get_uint64 (value);
      return number == G_MAXUINT64 ? "null" : std::to_string (number);
    }
    case G_TYPE_FLOAT:
    case G_TYPE_DOUBLE: {
      double number = G_VALUE_HOLDS_FLOAT (value) ? g_value_get_float (value)
                                                  : g_value_get_double (value);
      return std::isfinite (number) ? format_double (number) : "null";
    }
    case G_TYPE_STRING: {
      const char *text = g_value_get_string (value);
      return text ? json_quote (text) : "null";
    }
    case G_TYPE_ENUM: {
      const char *nick = enum_nick (value);
      return nick ? json_quote (nick) : std::to_string (g_value_get_enum (value));
    }
    default:
      break;
  }

  if (type == GST_TYPE_FRACTION) {
    return json_quote (std::to_string (gst_value_get_fraction_numerator (value)) + "/" +
        std::to_string (gst_value_get_fraction_denominator (value)));
  }
  if (type == GST_TYPE_STRUCTURE)
    return structure_to_json (gst_value_get_structure (value));
  if (type == GST_TYPE_LIST)
    return list_to_json (value, gst_value_list_get_size (value), gst_value_list_get_value);
  if (type == GST_TYPE_ARRAY)
    return list_to_json (value, gst_value_array_get_size (value), gst_value_array_get_value);

  GCharPtr serialized{gst_value_serialize (value)};
  return serialized ? json_quote (serialized.get ()) : "null";
}

std::string
json_bool (bool value)
{
  return value ? "true" : "false";
}

std::string
json_seconds (double seconds)
{
  return std::isfinite (seconds) ? format_seconds (seconds) : "null";
}

// --- HTTP ----------------------------------------------------------------------

void
respond (SoupServerMessage *message, guint status, const char *content_type, std::string body)
{
  soup_server_message_set_status (message, status, nullptr);
  SoupMessageHeaders *headers = soup_server_message_get_response_headers (message);
  // Every answer is a snapshot of now; a cached one is wrong.
  soup_message_headers_replace (headers, "Cache-Control", "no-store");
  // One request per connection: libsoup 3.2 (Debian 12) never closes a
  // kept-alive connection that the client closed while idle, so every
  // scrape by curl or Prometheus would leave a socket in CLOSE_WAIT (one fd
  // and its buffers, forever).  Closing after the answer costs a TCP
  // handshake per scrape.
  soup_message_headers_replace (headers, "Connection", "close");
  soup_server_message_set_response (message, content_type, SOUP_MEMORY_COPY,
      body.data (), body.size ());
}

std::string
address_for_messages (const std::string &bind, uint16_t port)
{
  if (bind.find (':') != std::string::npos)
    return "[" + bind + "]:" + std::to_string (port);
  return bind + ":" + std::to_string (port);
}

// GLib says "Error binding to address 127.0.0.1:8080: Address already in
// use"; the one-line error names the address itself, so keep the reason only.
std::string
bind_reason (const GError *error)
{
  // With or without the address after it, depending on GLib's version.
  static constexpr char kPrefix[] = "Error binding to address";
  std::string text = error->message;
  if (text.rfind (kPrefix, 0) == 0) {
    size_t colon = text.find (": ", sizeof kPrefix - 1);
    if (colon != std::string::npos)
      return text.substr (colon + 2);
  }
  return text;
}

// Pushes `context` as the thread-default context for the scope: libsoup
// attaches its listening source to the thread-default context.
class ThreadDefaultContext {
 public:
  explicit ThreadDefaultContext (GMainContext *context) : context_ (context)
  {
    if (context_)
      g_main_context_push_thread_default (context_);
  }
  ~ThreadDefaultContext ()
  {
    if (context_)
      g_main_context_pop_thread_default (context_);
  }
  ThreadDefaultContext (const ThreadDefaultContext &) = delete;
  ThreadDefaultContext &operator= (const ThreadDefaultContext &) = delete;

 private:
  GMainContext *context_;
};

}  // namespace

// --- Public renderers ------------------------------------------------------------

std::string
json_quote (const std::string &text)
{
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  for (char c : valid_utf8 (text)) {
    unsigned char byte = static_cast<unsigned char> (c);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (byte < 0x20) {
          out += "\\u00";
          out += kHex[byte >> 4];
          out += kHex[byte & 0xf];
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

std::string
structure_to_json (const GstStructure *structure)
{
  if (!structure)
    return "null";
  std::string out = "{";
  gint n_fields = gst_structure_n_fields (structure);
  for (gint i = 0; i < n_fields; i++) {
    const char *name = gst_structure_nth_field_name (structure, static_cast<guint> (i));
    if (i > 0)
      out += ',';
    out += json_quote (name);
    out += ':';
    out += value_to_json (gst_structure_get_value (structure, name));
  }
  return out + "}";
}

std::string
render_metrics (const Status &status)
{
  MetricsWriter writer;

  writer.family ("camrelay_build_info", "gauge",
      "The running camrelay version, in the version label; always 1.");
  writer.sample ("camrelay_build_info", {{"version", status.version}}, 1);

  writer.family ("camrelay_uptime_seconds", "gauge", "Seconds since camrelay started.");
  writer.sample ("camrelay_uptime_seconds", {},
      std::isfinite (status.uptime_seconds) ? format_seconds (status.uptime_seconds)
                                            : prometheus_value (status.uptime_seconds));

  writer.family ("camrelay_clients", "gauge", "RTSP clients playing any camera now.");
  writer.sample ("camrelay_clients", {}, status.clients);

  writer.family ("camrelay_clients_cut_total", "counter",
      "RTSP clients closed because they stopped reading (server.slow_client_timeout).");
  writer.sample ("camrelay_clients_cut_total", {}, status.clients_cut);

  writer.family ("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
  writer.sample ("process_resident_memory_bytes", {}, status.resident_bytes);
  writer.family ("camrelay_heap_bytes", "gauge",
      "Heap memory: in_use is allocated, free is freed but kept by the allocator.");
  writer.sample ("camrelay_heap_bytes", {{"state", "in_use"}}, status.heap_in_use_bytes);
  writer.sample ("camrelay_heap_bytes", {{"state", "free"}}, status.heap_free_bytes);

  camera_family (writer, status, "camrelay_camera_up", "gauge",
      "1 while the camera is streaming, else 0.",
      [] (const CameraStatus &camera) { return camera.up ? "1" : "0"; });

  writer.family ("camrelay_camera_state", "gauge",
      "1 for the camera's current state (label state), 0 for the others.");
  for (const CameraStatus &camera : status.cameras) {
    bool known = false;
    for (const char *state : kCameraStates) {
      bool current = camera.state == state;
      known = known || current;
      writer.sample ("camrelay_camera_state", {{"camera", camera.name}, {"state", state}},
          current ? "1" : "0");
    }
    if (!known)
      writer.sample ("camrelay_camera_state",
          {{"camera", camera.name}, {"state", camera.state}}, "1");
  }

  camera_family (writer, status, "camrelay_camera_reconnects_total", "counter",
      "Camera faults that led to a reconnect.",
      [] (const CameraStatus &camera) { return std::to_string (camera.reconnects); });
  camera_family (writer, status, "camrelay_camera_bytes_in_total", "counter",
      "Video bytes received from the camera.",
      [] (const CameraStatus &camera) { return std::to_string (camera.bytes_in); });
  camera_family (writer, status, "camrelay_camera_frames_in_total", "counter",
      "Video frames received from the camera.",
      [] (const CameraStatus &camera) { return std::to_string (camera.frames_in); });
  camera_family (writer, status, "camrelay_camera_frames_dropped_total", "counter",
      "Frames dropped by the camera's buffer because clients fell behind.",
      [] (const CameraStatus &camera) { return std::to_string (camera.frames_dropped); });
  camera_family (writer, status, "camrelay_camera_clients", "gauge",
      "RTSP clients playing the camera now.",
      [] (const CameraStatus &camera) { return std::to_string (camera.clients); });
  camera_family (writer, status, "camrelay_camera_bytes_out_total", "counter",
      "Bytes of the camera's video handed to its RTSP media (counted once, whatever the number of clients).",
      [] (const CameraStatus &camera) { return std::to_string (camera.bytes_out); });
  camera_family (writer, status, "camrelay_camera_gop_cache_bytes", "gauge",
      "Bytes of the camera's current GOP held for instant start.",
      [] (const CameraStatus &camera) { return std::to_string (camera.gop_cache_bytes); });
  camera_family (writer, status, "camrelay_camera_instant_starts_total", "counter",
      "Clients that started from the camera's current GOP (instant start).",
      [] (const CameraStatus &camera) { return std::to_string (camera.instant_starts); });
  camera_family (writer, status, "camrelay_camera_live_starts_total", "counter",
      "Clients that started live, at the camera's next keyframe (instant start off or not possible).",
      [] (const CameraStatus &camera) { return std::to_string (camera.live_starts); });

  return writer.take ();
}

std::string
render_cameras_json (const Status &status)
{
  std::string out = "[";
  bool first = true;
  for (const CameraStatus &camera : status.cameras) {
    if (!first)
      out += ',';
    first = false;
    out += "{\"name\":" + json_quote (camera.name);
    out += ",\"mount\":" + json_quote (camera.mount);
    out += ",\"state\":" + json_quote (camera.state);
    out += ",\"up\":" + json_bool (camera.up);
    out += ",\"reconnects\":" + std::to_string (camera.reconnects);
    out += ",\"bytes_in\":" + std::to_string (camera.bytes_in);
    out += ",\"frames_in\":" + std::to_string (camera.frames_in);
    out += ",\"frames_dropped\":" + std::to_string (camera.frames_dropped);
    out += ",\"clients\":" + std::to_string (camera.clients);
    out += ",\"bytes_out\":" + std::to_string (camera.bytes_out);
    out += ",\"camerasrc\":" + structure_to_json (camera.camerasrc_stats.get ());
    out += ",\"resilientqueue\":" + structure_to_json (camera.resilientqueue_stats.get ());
    out += '}';
  }
  return out + "]\n";
}

std::string
render_health_json (const Status &status)
{
  uint64_t cameras_up = 0;
  for (const CameraStatus &camera : status.cameras)
    cameras_up += camera.up ? 1 : 0;

  std::string out = "{\"status\":\"ok\"";
  out += ",\"version\":" + json_quote (status.version);
  out += ",\"uptime_seconds\":" + json_seconds (status.uptime_seconds);
  out += ",\"cameras\":" + std::to_string (status.cameras.size ());
  out += ",\"cameras_up\":" + std::to_string (cameras_up);
  out += ",\"clients\":" + std::to_string (status.clients);
  return out + "}\n";
}

// --- HttpServer ------------------------------------------------------------------

HttpServer::HttpServer (StatusProvider provider) : provider_ (std::move (provider))
{
  gate_.set_max (HttpConfig ().max_connections);
}

void
HttpServer::set_max_connections (unsigned max_connections)
{
  gate_.set_max (max_connections);
}

unsigned
HttpServer::open_connections () const
{
  return gate_.open ();
}

HttpServer::~HttpServer ()
{
  stop ();
}

bool
HttpServer::start (const std::string &bind, uint16_t port, GMainContext *context,
    std::string &error)
{
  const std::string where = "HTTP " + address_for_messages (bind, port);
  if (server_) {
    error = where + ": already serving on port " + std::to_string (port_);
    return false;
  }

  ObjectRef address{G_OBJECT (g_inet_address_new_from_string (bind.c_str ()))};
  if (!address) {
    error = where + ": not an IP address";
    return false;
  }
  ObjectRef socket_address{G_OBJECT (g_inet_socket_address_new (G_INET_ADDRESS (address.get ()), port))};

  // The service attaches its accept source to the thread-default context.
  ThreadDefaultContext thread_default (context);
  GSocketService *service = g_socket_service_new ();
  g_socket_listener_set_backlog (G_SOCKET_LISTENER (service), HTTP_LISTEN_BACKLOG);
  GError *listen_error = nullptr;
  GSocketAddress *effective = nullptr;
  if (!g_socket_listener_add_address (G_SOCKET_LISTENER (service),
          G_SOCKET_ADDRESS (socket_address.get ()), G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP,
          nullptr, &effective, &listen_error)) {
    GErrorPtr owned{listen_error};
    error = where + ": " + bind_reason (listen_error);
    g_object_unref (service);
    return false;
  }
  const uint16_t bound_port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (effective));
  g_object_unref (effective);

  server_ = SOUP_SERVER (g_object_new (SOUP_TYPE_SERVER, "server-header", "camrelay", nullptr));
  soup_server_add_handler (server_, nullptr, on_request, this, nullptr);
  refuse_large_bodies (server_);
  g_signal_connect (service, "incoming", G_CALLBACK (on_incoming), this);
  g_socket_service_start (service);
  service_ = service;
  port_ = bound_port;
  return true;
}

// A new connection, on the main context: counted, given the idle timeout,
// handed to libsoup; or closed at once when max_connections are open.
gboolean
HttpServer::on_incoming (GSocketService *, GSocketConnection *connection, GObject *,
    gpointer user_data)
{
  auto *self = static_cast<HttpServer *> (user_data);
  GSocketAddress *remote = g_socket_connection_get_remote_address (connection, nullptr);
  GSocketAddress *local = g_socket_connection_get_local_address (connection, nullptr);
  if (remote && local && self->gate_.admit (connection, remote)) {
    GError *error = nullptr;
    if (!soup_server_accept_iostream (self->server_, G_IO_STREAM (connection), local, remote,
            &error)) {
      log_line ("HTTP client %s: not served: %s", http_client_ip (remote).c_str (), error->message);
      g_error_free (error);
    }
  }
  // A connection not handed to libsoup is closed when the service drops it.
  g_clear_object (&remote);
  g_clear_object (&local);
  return TRUE;
}

uint16_t
HttpServer::port () const
{
  return port_;
}

void
HttpServer::stop ()
{
  if (!server_)
    return;
  g_signal_handlers_disconnect_by_data (service_, this);
  g_socket_service_stop (service_);
  g_socket_listener_close (G_SOCKET_LISTENER (service_));
  g_object_unref (service_);
  service_ = nullptr;
  // Removing the handler first: no request can reach `this` once stop()
  // returns, even if libsoup keeps the server alive a little longer.
  soup_server_remove_handler (server_, nullptr);
  soup_server_disconnect (server_);
  g_object_unref (server_);
  server_ = nullptr;
  port_ = 0;
}

void
HttpServer::on_request (SoupServer *, SoupServerMessage *message, const char *path,
    GHashTable *, gpointer user_data)
{
  static_cast<HttpServer *> (user_data)->answer (message, path);
}

void
HttpServer::answer (SoupServerMessage *message, const char *path)
{
  using Renderer = std::string (*) (const Status &);
  struct Endpoint {
    const char *path;
    const char *content_type;
    Renderer render;
  };
  static const Endpoint kEndpoints[] = {
    {"/healthz", kJsonContentType, render_health_json},
    {"/metrics", kMetricsContentType, render_metrics},
    {"/api/cameras", kJsonContentType, render_cameras_json},
  };

  const Endpoint *endpoint = nullptr;
  for (const Endpoint &candidate : kEndpoints) {
    if (g_strcmp0 (path, candidate.path) == 0)
      endpoint = &candidate;
  }
  if (!endpoint) {
    respond (message, SOUP_STATUS_NOT_FOUND, kTextContentType,
        "Not found. Endpoints: /healthz /metrics /api/cameras\n");
    return;
  }

  // HEAD is answered like GET; libsoup leaves the body out.
  const char *method = soup_server_message_get_method (message);
  if (g_strcmp0 (method, SOUP_METHOD_GET) != 0 && g_strcmp0 (method, SOUP_METHOD_HEAD) != 0) {
    soup_message_headers_replace (soup_server_message_get_response_headers (message),
        "Allow", "GET, HEAD");
    respond (message, SOUP_STATUS_METHOD_NOT_ALLOWED, kTextContentType,
        "Method not allowed: use GET.\n");
    return;
  }

  try {
    respond (message, SOUP_STATUS_OK, endpoint->content_type, endpoint->render (provider_ ()));
  } catch (const std::exception &exception) {
    g_warning ("HTTP %s: could not read the status: %s", endpoint->path, exception.what ());
    respond (message, SOUP_STATUS_INTERNAL_SERVER_ERROR, kTextContentType,
        std::string ("Internal error: ") + exception.what () + "\n");
  }
}

}  // namespace camrelay::launcher
