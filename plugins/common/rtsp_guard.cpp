// A GInputStream that follows RTSP framing over a socket's stream and fails
// reads past the caps; installed into GTcpConnection (see rtsp_guard.h).
#include "common/rtsp_guard.h"

#include <memory>
#include <mutex>
#include <string>

namespace {

using camrelay::RtspCaps;
using camrelay::RtspFraming;
using camrelay::RtspGuardReport;

struct GuardStream {
  GInputStream parent;
  GInputStream *base;
  GSocket *socket;  // nullable
  RtspFraming *framing;
  RtspGuardReport report;
};

struct GuardStreamClass {
  GInputStreamClass parent_class;
};

GType guard_stream_get_type ();
void guard_stream_pollable_init (GPollableInputStreamInterface *iface);

G_DEFINE_TYPE_WITH_CODE (GuardStream, guard_stream, G_TYPE_INPUT_STREAM,
    G_IMPLEMENT_INTERFACE (G_TYPE_POLLABLE_INPUT_STREAM, guard_stream_pollable_init))

#define GUARD_STREAM(obj) (G_TYPE_CHECK_INSTANCE_CAST ((obj), guard_stream_get_type (), GuardStream))

std::string
peer_name (GSocket *socket)
{
  if (!socket)
    return "(unknown)";
  GSocketAddress *address = g_socket_get_remote_address (socket, nullptr);
  if (!address || !G_IS_INET_SOCKET_ADDRESS (address)) {
    if (address)
      g_object_unref (address);
    return "(unknown)";
  }
  GInetSocketAddress *inet = G_INET_SOCKET_ADDRESS (address);
  gchar *ip = g_inet_address_to_string (g_inet_socket_address_get_address (inet));
  std::string name = std::string (ip) + ":" + std::to_string (g_inet_socket_address_get_port (inet));
  g_free (ip);
  g_object_unref (address);
  return name;
}

// -1 with `error` naming the cap that the peer went over.
gssize
over_cap (GuardStream *self, GError **error)
{
  g_set_error (error, G_IO_ERROR, G_IO_ERROR_MESSAGE_TOO_LARGE, "RTSP peer sent %s",
      self->framing->reason ().c_str ());
  return -1;
}

// Follows `bytes` just read; -1 with `error` set when over a cap (reported
// once, here).
gssize
check_read (GuardStream *self, const void *buffer, gssize bytes, GError **error)
{
  if (bytes <= 0 || self->framing->passed_through ())
    return bytes;
  if (self->framing->feed (static_cast<const std::uint8_t *> (buffer),
          static_cast<std::size_t> (bytes)) == RtspFraming::Verdict::kOk)
    return bytes;
  if (self->report) {
    const std::string line = "RTSP peer " + peer_name (self->socket) + " sent " +
                             self->framing->reason () + "; closing its connection";
    self->report (line.c_str ());
  }
  return over_cap (self, error);
}

gssize
guard_stream_read (GInputStream *stream, void *buffer, gsize count, GCancellable *cancellable,
    GError **error)
{
  GuardStream *self = GUARD_STREAM (stream);
  if (!self->framing->reason ().empty ())
    return over_cap (self, error);  // stays over its cap
  return check_read (self, buffer,
      g_input_stream_read (self->base, buffer, count, cancellable, error), error);
}

gboolean
guard_stream_close (GInputStream *stream, GCancellable *cancellable, GError **error)
{
  return g_input_stream_close (GUARD_STREAM (stream)->base, cancellable, error);
}

gboolean
guard_stream_can_poll (GPollableInputStream *stream)
{
  return g_pollable_input_stream_can_poll (G_POLLABLE_INPUT_STREAM (GUARD_STREAM (stream)->base));
}

gboolean
guard_stream_is_readable (GPollableInputStream *stream)
{
  return g_pollable_input_stream_is_readable (G_POLLABLE_INPUT_STREAM (GUARD_STREAM (stream)->base));
}

GSource *
guard_stream_create_source (GPollableInputStream *stream, GCancellable *cancellable)
{
  GSource *base = g_pollable_input_stream_create_source (
      G_POLLABLE_INPUT_STREAM (GUARD_STREAM (stream)->base), nullptr);
  GSource *source = g_pollable_source_new_full (stream, base, cancellable);
  g_source_unref (base);
  return source;
}

gssize
guard_stream_read_nonblocking (GPollableInputStream *stream, void *buffer, gsize count,
    GError **error)
{
  GuardStream *self = GUARD_STREAM (stream);
  if (!self->framing->reason ().empty ())
    return over_cap (self, error);
  return check_read (self, buffer,
      g_pollable_input_stream_read_nonblocking (G_POLLABLE_INPUT_STREAM (self->base), buffer,
          count, nullptr, error),
      error);
}

void
guard_stream_pollable_init (GPollableInputStreamInterface *iface)
{
  iface->can_poll = guard_stream_can_poll;
  iface->is_readable = guard_stream_is_readable;
  iface->create_source = guard_stream_create_source;
  iface->read_nonblocking = guard_stream_read_nonblocking;
}

void
guard_stream_finalize (GObject *object)
{
  GuardStream *self = GUARD_STREAM (object);
  delete self->framing;
  g_clear_object (&self->base);
  g_clear_object (&self->socket);
  G_OBJECT_CLASS (guard_stream_parent_class)->finalize (object);
}

void
guard_stream_class_init (GuardStreamClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = guard_stream_finalize;
  G_INPUT_STREAM_CLASS (klass)->read_fn = guard_stream_read;
  G_INPUT_STREAM_CLASS (klass)->close_fn = guard_stream_close;
}

void
guard_stream_init (GuardStream *)
{
}

// What rtsp_guard_install () set up.
RtspCaps installed_caps;
RtspGuardReport installed_report = nullptr;
GInputStream *(*socket_get_input_stream) (GIOStream *) = nullptr;
GQuark guard_quark;

// GTcpConnection's get_input_stream: the socket's stream, wrapped once.
GInputStream *
guarded_get_input_stream (GIOStream *io)
{
  auto *wrapped = static_cast<GInputStream *> (g_object_get_qdata (G_OBJECT (io), guard_quark));
  if (wrapped)
    return wrapped;
  GInputStream *base = socket_get_input_stream (io);
  if (!base || !G_IS_POLLABLE_INPUT_STREAM (base))
    return base;
  wrapped = camrelay::rtsp_guard_wrap (base,
      g_socket_connection_get_socket (G_SOCKET_CONNECTION (io)), installed_caps,
      installed_report);
  g_object_set_qdata_full (G_OBJECT (io), guard_quark, wrapped, g_object_unref);
  return wrapped;
}

}  // namespace

namespace camrelay {

GInputStream *
rtsp_guard_wrap (GInputStream *base, GSocket *socket, const RtspCaps &caps,
    RtspGuardReport report)
{
  auto *self = GUARD_STREAM (g_object_new (guard_stream_get_type (), nullptr));
  self->base = G_INPUT_STREAM (g_object_ref (base));
  self->socket = socket ? G_SOCKET (g_object_ref (socket)) : nullptr;
  self->framing = new RtspFraming (caps);
  self->report = report;
  return G_INPUT_STREAM (self);
}

// GLib offers g_socket_connection_factory_register_type () for this, but
// registering a type for a (family, type, protocol) that GTcpConnection has
// already registered (all of TCP's) leaves a freed entry in GLib's table
// (g_hash_table_insert () frees the new key, which is also the new value):
// every later lookup would read freed memory.  So GTcpConnection's own
// get_input_stream is replaced instead, which covers every TCP connection
// GLib makes (accepted or connected, GSocketClient's included).
bool
rtsp_guard_install (const RtspCaps &caps, RtspGuardReport report)
{
  static std::once_flag once;
  bool installed = false;
  std::call_once (once, [&] {
    installed_caps = caps;
    installed_report = report;
    guard_quark = g_quark_from_static_string ("camrelay-rtsp-guard");
    // Kept for the life of the process, like the class itself.
    auto *klass = static_cast<GIOStreamClass *> (g_type_class_ref (G_TYPE_TCP_CONNECTION));
    socket_get_input_stream = klass->get_input_stream;
    klass->get_input_stream = guarded_get_input_stream;
    installed = true;
  });
  return installed;
}

}  // namespace camrelay
