// The bounds of the HTTP server's connections; see http_connections.h.
#include "http_connections.h"

#include <libsoup/soup.h>

#include <map>
#include <utility>

#include "camera.h"  // log_line
#include "common/gstref.h"

namespace camrelay::launcher {

namespace {

// How often a refusing HTTP client address is logged, with a count.
constexpr gint64 HTTP_REFUSAL_LOG_PERIOD_US = 10 * G_USEC_PER_SEC;
// The accepted socket, kept on the remote address that libsoup hands back
// with each of the connection's messages.
constexpr const char *kSocketKey = "camrelay-http-socket";

// A request announcing a body larger than HTTP_BODY_LIMIT, or a chunked one
// (its size unknown): answered 413 on the socket itself, which is then shut
// down, so that libsoup stops reading and closes the connection instead of
// taking the body in.  libsoup's own answer would come only after the body.
void
refuse_large_body (SoupServerMessage *message, gpointer)
{
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (message);
  const SoupEncoding encoding = soup_message_headers_get_encoding (headers);
  const goffset length = encoding == SOUP_ENCODING_CONTENT_LENGTH
      ? soup_message_headers_get_content_length (headers) : 0;
  if (encoding != SOUP_ENCODING_CHUNKED && length <= HTTP_BODY_LIMIT)
    return;
  soup_message_body_set_accumulate (soup_server_message_get_request_body (message), FALSE);
  soup_server_message_set_status (message, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE, nullptr);
  GSocketAddress *remote = soup_server_message_get_remote_address (message);
  auto *socket = remote ? static_cast<GSocket *> (g_object_get_data (G_OBJECT (remote), kSocketKey))
                        : nullptr;
  const std::string size = encoding == SOUP_ENCODING_CHUNKED
      ? std::string ("unknown size (chunked)") : std::to_string (length) + " bytes";
  log_line ("HTTP client %s: refused a request with a body of %s (at most %lld bytes)",
      http_client_ip (remote).c_str (), size.c_str (), static_cast<long long> (HTTP_BODY_LIMIT));
  if (!socket)
    return;  // libsoup reads the body, keeping none of it, then answers 413
  static constexpr char kAnswer[] =
      "HTTP/1.1 413 Payload Too Large\r\n"
      "Content-Type: text/plain; charset=utf-8\r\n"
      "Content-Length: 48\r\n"
      "Connection: close\r\n"
      "\r\n"
      "Request body too large: the endpoints take none\n";
  // A fresh connection's send buffer takes it whole, without waiting.
  g_socket_send_with_blocking (socket, kAnswer, sizeof kAnswer - 1, FALSE, nullptr, nullptr);
  g_socket_shutdown (socket, TRUE, TRUE, nullptr);
}

}  // namespace

std::string
http_client_ip (GSocketAddress *address)
{
  if (!address || !G_IS_INET_SOCKET_ADDRESS (address))
    return "?";
  GCharPtr ip{g_inet_address_to_string (
      g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (address)))};
  return ip ? ip.get () : "?";
}

void
refuse_large_bodies (SoupServer *server)
{
  g_signal_connect (server, "request-started",
      G_CALLBACK (+[] (SoupServer *, SoupServerMessage *message, gpointer) {
        g_signal_connect (message, "got-headers", G_CALLBACK (refuse_large_body), nullptr);
      }),
      nullptr);
}

struct HttpConnectionGate::State {
  unsigned open = 0;
  unsigned max = 0;
  std::map<std::string, std::pair<gint64, unsigned>> refusals;  // IP -> (logged at, unlogged)
};

HttpConnectionGate::HttpConnectionGate () : state_ (std::make_shared<State> ()) {}

void
HttpConnectionGate::set_max (unsigned max)
{
  state_->max = max;
}

unsigned
HttpConnectionGate::open () const
{
  return state_->open;
}

bool
HttpConnectionGate::admit (GSocketConnection *connection, GSocketAddress *remote)
{
  State &state = *state_;
  if (state.max && state.open >= state.max) {
    // Logged once per period and address, with the count meanwhile.
    const std::string ip = http_client_ip (remote);
    const gint64 now = g_get_monotonic_time ();
    if (state.refusals.size () >= 1000) {  // many addresses: forget the quiet ones
      for (auto it = state.refusals.begin (); it != state.refusals.end ();)
        it = now - it->second.first >= HTTP_REFUSAL_LOG_PERIOD_US && !it->second.second
            ? state.refusals.erase (it) : std::next (it);
    }
    auto &[logged_us, unlogged] = state.refusals[ip];
    if (logged_us && now - logged_us < HTTP_REFUSAL_LOG_PERIOD_US) {
      unlogged++;
    } else {
      log_line ("HTTP client %s: refused a connection: %u open already (http.max_connections)%s",
          ip.c_str (), state.open,
          unlogged ? ("; " + std::to_string (unlogged) + " more refused since the last line").c_str ()
                   : "");
      logged_us = now;
      unlogged = 0;
    }
    return false;
  }
  state.open++;
  g_object_weak_ref (G_OBJECT (connection),
      [] (gpointer data, GObject *) {
        auto *counted = static_cast<std::shared_ptr<State> *> (data);
        (*counted)->open--;
        delete counted;
      },
      new std::shared_ptr<State> (state_));
  GSocket *socket = g_socket_connection_get_socket (connection);
  // A read or write that waits that long fails, and libsoup closes the
  // connection; but an idle connection is only noticed after twice that
  // (libsoup 3.2), so a deadline of our own shuts the socket down, which
  // libsoup sees as the end of the connection.  One request per connection,
  // answered at once: only idle or stalled connections live that long.
  g_socket_set_timeout (socket, HTTP_IDLE_TIMEOUT_S);
  auto *watched = new GWeakRef;
  g_weak_ref_init (watched, socket);
  GSource *deadline = g_timeout_source_new_seconds (HTTP_IDLE_TIMEOUT_S);
  g_source_set_callback (deadline,
      [] (gpointer data) -> gboolean {
        if (GSocket *socket = G_SOCKET (g_weak_ref_get (static_cast<GWeakRef *> (data)))) {
          g_socket_shutdown (socket, TRUE, TRUE, nullptr);
          g_object_unref (socket);
        }
        return G_SOURCE_REMOVE;
      },
      watched,
      [] (gpointer data) {
        g_weak_ref_clear (static_cast<GWeakRef *> (data));
        delete static_cast<GWeakRef *> (data);
      });
  g_source_attach (deadline, g_main_context_get_thread_default ());
  g_source_unref (deadline);
  g_object_set_data_full (G_OBJECT (remote), kSocketKey, g_object_ref (socket), g_object_unref);
  return true;
}

}  // namespace camrelay::launcher
