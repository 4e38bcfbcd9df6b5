// camerasrc's diagnosis of a fault whose error says only that the stream
// stopped: the session's last warning, or for an HTTP camera, why it cannot
// be reached (a connection over GIO, as libsoup makes it).
#include <gio/gio.h>

#include "camerasrc/camerauri.h"
#include "camerasrc/gstcamerasrc-private.h"
#include "common/uri_schemes.h"

namespace camrelay::camerasrc {

// Longest the diagnosis of an HTTP camera that could not be reached may take.
constexpr guint DIAGNOSIS_TIMEOUT_MS = 1000;

// souphttpsrc 1.22 with libsoup 3 says only "Internal data stream error"
// when it cannot reach the server: why is in its debug log.  To tell the
// user, connect to the camera's host and port the way libsoup does (GIO's
// resolver and proxy settings), for at most DIAGNOSIS_TIMEOUT_MS, and
// return GIO's reason ("Error resolving ...", "Could not connect to ...:
// Connection refused").  `default_port` is for a URI that names none.
// Manager thread; `cancellable` also stops it.
static std::optional<std::string>
diagnose_http (const std::string &uri, guint16 default_port, GCancellable *cancellable)
{
  // An explicit proxy (souphttpsrc's default one) is not where we would go.
  for (const char *variable : {"http_proxy", "HTTP_PROXY"}) {
    const gchar *proxy = g_getenv (variable);
    if (proxy && *proxy)
      return std::nullopt;
  }
  UniqueRef<GMainContext, g_main_context_unref> context{g_main_context_new ()};
  g_main_context_push_thread_default (context.get ());
  struct Outcome {
    bool done = false;
    GError *error = nullptr;  // set by the callback, owned below
  } outcome;
  GObjectPtr<GSocketClient> client{g_socket_client_new ()};
  g_socket_client_connect_to_uri_async (client.get (), uri.c_str (), default_port, cancellable,
      [] (GObject *source, GAsyncResult *result, gpointer data) {
        auto *outcome = static_cast<Outcome *> (data);
        GObjectPtr<GSocketConnection> connection{g_socket_client_connect_to_uri_finish (
            G_SOCKET_CLIENT (source), result, &outcome->error)};
        outcome->done = true;
      }, &outcome);
  UniqueRef<GSource, g_source_unref> timeout{g_timeout_source_new (DIAGNOSIS_TIMEOUT_MS)};
  g_source_set_callback (timeout.get (), [] (gpointer data) {
    g_cancellable_cancel (G_CANCELLABLE (data));
    return G_SOURCE_REMOVE;
  }, g_object_ref (cancellable), g_object_unref);
  g_source_attach (timeout.get (), context.get ());
  while (!outcome.done)
    g_main_context_iteration (context.get (), TRUE);
  g_source_destroy (timeout.get ());
  g_main_context_pop_thread_default (context.get ());
  GErrorPtr error{outcome.error};
  std::optional<std::string> reason;
  if (error && !g_error_matches (error.get (), G_IO_ERROR, G_IO_ERROR_CANCELLED))
    reason = error->message;
  return reason;
}

// The best reason for a fault whose error said only that the stream stopped
// (manager thread): the warning the session gave before it, or for an HTTP
// camera that never sent video, why it cannot be reached.
std::string
explain_generic_fault (GstCameraSrc *self, const std::string &reason, const std::string &warning,
    bool had_video, const Settings &settings)
{
  GstCameraSrcPrivate &p = *self->priv;
  if (!warning.empty ())
    return explain_with_warning (warning, reason);
  const UriParts uri = split_uri (settings.location, settings.user_id, settings.user_pw);
  if (had_video || !is_scheme_of (uri.scheme, SchemeFamily::Http))
    return reason;
  GObjectPtr<GCancellable> cancellable{g_cancellable_new ()};
  {
    Lock lock (p.lock);
    if (!p.running)
      return reason;
    p.diagnosis.reset (G_CANCELLABLE (g_object_ref (cancellable.get ())));
  }
  std::optional<std::string> diagnosis = diagnose_http (uri.without_userinfo,
      default_http_port (uri.scheme), cancellable.get ());
  {
    Lock lock (p.lock);
    p.diagnosis.reset ();
  }
  if (!diagnosis)
    return reason;
  GST_DEBUG_OBJECT (self, "the camera cannot be reached: %s", diagnosis->c_str ());
  Lock lock (p.lock);
  return redact_text ("cannot reach the camera: " + *diagnosis, settings.location,
      settings.user_id, settings.user_pw);
}

// Cancels a diagnosis under way, if any (lock not held).
void
cancel_diagnosis (GstCameraSrcPrivate &p)
{
  GObjectPtr<GCancellable> diagnosis;
  {
    Lock lock (p.lock);
    if (p.diagnosis)
      diagnosis.reset (G_CANCELLABLE (g_object_ref (p.diagnosis.get ())));
  }
  if (diagnosis)
    g_cancellable_cancel (diagnosis.get ());
}

}  // namespace camrelay::camerasrc
