#include "auth.h"

#include "log.h"

#include <map>
#include <mutex>
#include <string>

// The relay's GstRTSPAuth.  Besides the stock Basic and Digest it accepts
// Basic credentials of users configured by a SHA-256 password hash (which
// the stock authenticator cannot check) and logs failed attempts (never the
// password).  It authenticates every request before the server does
// anything with it, binds sessions to their owner and slows down password
// guessing (docs/launcher.md).  One lives as long as the server: a reload
// changes its users in place, so the Digest nonces it handed out (kept by
// the stock part) survive.
//
// Threads: RTSP worker threads authenticate; the main thread changes the
// users (set_users).  AuthState::lock guards AuthState and is never held
// while calling into gst-rtsp-server.
#define CAMRELAY_TYPE_AUTH (camrelay_auth_get_type ())
G_DECLARE_FINAL_TYPE (CamrelayAuth, camrelay_auth, CAMRELAY, AUTH, GstRTSPAuth)

using camrelay::launcher::log_line;
using camrelay::launcher::log_value;

namespace {

struct UserEntry {
  std::string password;  // plain, or "" for a user given by a hash
  std::string hash_hex;  // lower-case hex SHA-256 of the password, or ""
  bool operator== (const UserEntry &o) const
  {
    return password == o.password && hash_hex == o.hash_hex;
  }
};

// Password guessing (docs/launcher.md): after GUESS_FAILURES failed logins
// from one address within GUESS_WINDOW_US, credentials from that address
// are refused without being checked (401) for GUESS_REFUSAL_US.  Other
// addresses are not affected.  At most GUESS_ADDRESSES addresses are
// remembered (quiet ones are forgotten first).
constexpr unsigned GUESS_FAILURES = 10;
constexpr gint64 GUESS_WINDOW_US = 60 * G_USEC_PER_SEC;
constexpr gint64 GUESS_REFUSAL_US = 60 * G_USEC_PER_SEC;
constexpr size_t GUESS_ADDRESSES = 4096;

// Failed logins of one client address.
struct Guesses {
  gint64 window_start_us = 0;   // when the counted failures began
  unsigned failures = 0;        // within the window
  gint64 refused_until_us = 0;  // credentials refused until then
  unsigned refused = 0;         // requests refused in the current period
};

struct AuthState {
  std::mutex lock;
  std::map<std::string, Guesses> guesses;  // by client address
  std::map<std::string, UserEntry> users;  // what is configured now, by name
  // One token per user name ever configured.  gst-rtsp-server hands tokens
  // to requests without a reference (ctx->token), so none is freed before
  // the authenticator: a worker may still be using a removed user's token.
  std::map<std::string, GstRTSPToken *> tokens;
  GstRTSPToken *anonymous = nullptr;  // the default token without users
};

}  // namespace

struct _CamrelayAuth {
  GstRTSPAuth parent;
  AuthState *state;
};

G_DEFINE_TYPE (CamrelayAuth, camrelay_auth, GST_TYPE_RTSP_AUTH)

namespace {

std::string
sha256_hex (const std::string &text)
{
  gchar *hex = g_compute_checksum_for_string (G_CHECKSUM_SHA256, text.c_str (),
      static_cast<gssize> (text.size ()));
  std::string result = hex;
  g_free (hex);
  return result;
}

// The Basic "user:password" of the request, if any.
bool
basic_credentials (GstRTSPContext *ctx, std::string &user, std::string &password)
{
  GstRTSPAuthCredential **credentials =
      gst_rtsp_message_parse_auth_credentials (ctx->request, GST_RTSP_HDR_AUTHORIZATION);
  if (!credentials)
    return false;
  bool found = false;
  for (GstRTSPAuthCredential **c = credentials; *c && !found; c++) {
    if ((*c)->scheme != GST_RTSP_AUTH_BASIC || !(*c)->authorization)
      continue;
    gsize length = 0;
    guchar *decoded = g_base64_decode ((*c)->authorization, &length);
    std::string pair (reinterpret_cast<char *> (decoded), length);
    g_free (decoded);
    const size_t colon = pair.find (':');
    if (colon != std::string::npos) {
      user = pair.substr (0, colon);
      password = pair.substr (colon + 1);
      found = true;
    }
  }
  gst_rtsp_auth_credentials_free (credentials);
  return found;
}

std::string
client_ip (GstRTSPContext *ctx)
{
  if (!ctx->client)
    return "?";
  GstRTSPConnection *connection = gst_rtsp_client_get_connection (ctx->client);
  const gchar *ip = connection ? gst_rtsp_connection_get_ip (connection) : nullptr;
  return ip ? ip : "?";
}

bool
has_credentials (GstRTSPContext *ctx)
{
  gchar *authorization = nullptr;
  return gst_rtsp_message_get_header (ctx->request, GST_RTSP_HDR_AUTHORIZATION, &authorization,
             0) == GST_RTSP_OK;
}

// The user name the request's credentials give (Basic or Digest), or "".
std::string
claimed_user (GstRTSPContext *ctx)
{
  std::string user, password;
  if (basic_credentials (ctx, user, password))
    return user;
  GstRTSPAuthCredential **credentials =
      gst_rtsp_message_parse_auth_credentials (ctx->request, GST_RTSP_HDR_AUTHORIZATION);
  for (GstRTSPAuthCredential **c = credentials; c && *c && user.empty (); c++)
    for (GstRTSPAuthParam **p = (*c)->params; (*c)->scheme == GST_RTSP_AUTH_DIGEST && p && *p; p++)
      if ((*p)->name && (*p)->value && g_ascii_strcasecmp ((*p)->name, "username") == 0)
        user = (*p)->value;
  if (credentials)
    gst_rtsp_auth_credentials_free (credentials);
  return user;
}

// Whether credentials from `ip` are refused now (counting the request).
bool
refusing (AuthState &state, const std::string &ip)
{
  std::lock_guard<std::mutex> l (state.lock);
  auto it = state.guesses.find (ip);
  if (it == state.guesses.end () || it->second.refused_until_us <= g_get_monotonic_time ())
    return false;
  it->second.refused++;
  return true;
}

// Logs a failed login and counts it against the client's address.
void
log_failure (AuthState &state, GstRTSPContext *ctx)
{
  const std::string user = claimed_user (ctx);
  const std::string ip = client_ip (ctx);
  log_line ("client %s: authentication failed%s%s", ip.c_str (),
      user.empty () ? "" : " for user ", user.empty () ? "" : log_value (user).c_str ());
  const gint64 now = g_get_monotonic_time ();
  unsigned failures = 0, refused_before = 0;
  {
    std::lock_guard<std::mutex> l (state.lock);
    if (state.guesses.size () >= GUESS_ADDRESSES && !state.guesses.count (ip)) {
      for (auto it = state.guesses.begin (); it != state.guesses.end ();)
        if (it->second.refused_until_us <= now
            && now - it->second.window_start_us > GUESS_WINDOW_US)
          it = state.guesses.erase (it);
        else
          ++it;
      if (state.guesses.size () >= GUESS_ADDRESSES)
        state.guesses.erase (state.guesses.begin ());
    }
    Guesses &g = state.guesses[ip];
    if (now - g.window_start_us > GUESS_WINDOW_US) {
      g.window_start_us = now;
      g.failures = 0;
    }
    if (++g.failures < GUESS_FAILURES)
      return;
    failures = g.failures;
    refused_before = g.refused;
    g.failures = 0;
    g.window_start_us = now;
    g.refused = 0;
    g.refused_until_us = now + GUESS_REFUSAL_US;
  }
  log_line ("client %s: %u failed logins within %d s: its credentials are refused for %d s "
      "(%u refused in its previous period)", ip.c_str (), failures,
      static_cast<int> (GUESS_WINDOW_US / G_USEC_PER_SEC),
      static_cast<int> (GUESS_REFUSAL_US / G_USEC_PER_SEC), refused_before);
}

// Answers the request with `code` (and the challenge for 401), as the stock
// checks do: a check that refuses sends the answer itself.  The answer
// names no session.
void
answer (GstRTSPAuth *auth, GstRTSPContext *ctx, GstRTSPStatusCode code)
{
  gst_rtsp_message_init_response (ctx->response, code, gst_rtsp_status_as_text (code),
      ctx->request);
  GstRTSPAuthClass *klass = GST_RTSP_AUTH_GET_CLASS (auth);
  if (code == GST_RTSP_STS_UNAUTHORIZED && klass->generate_authenticate_header)
    klass->generate_authenticate_header (auth, ctx);
  gst_rtsp_client_send_message (ctx->client, nullptr, ctx->response);
}

// Whether the user of the request may use the mount its URL names (true
// when it names none: the server answers 404 itself).
bool
permitted (GstRTSPContext *ctx)
{
  if (!ctx->uri || !ctx->uri->abspath || !ctx->client)
    return true;
  GstRTSPMountPoints *mounts = gst_rtsp_client_get_mount_points (ctx->client);
  if (!mounts)
    return true;
  gint matched = 0;
  GstRTSPMediaFactory *factory = gst_rtsp_mount_points_match (mounts, ctx->uri->abspath, &matched);
  g_object_unref (mounts);
  if (!factory)
    return true;
  const gchar *role = ctx->token
      ? gst_rtsp_token_get_string (ctx->token, GST_RTSP_TOKEN_MEDIA_FACTORY_ROLE)
      : nullptr;
  GstRTSPPermissions *permissions = gst_rtsp_media_factory_get_permissions (factory);
  const bool allowed = role && permissions
      && gst_rtsp_permissions_is_allowed (permissions, role, GST_RTSP_PERM_MEDIA_FACTORY_ACCESS);
  if (permissions)
    gst_rtsp_permissions_unref (permissions);
  g_object_unref (factory);
  return allowed;
}

// Who made a session (set on the GstRTSPSession at "new-session", before
// its ID was ever sent, and never changed): a user, or an anonymous client
// whose connection alone may use it.
struct SessionOwner {
  std::string user;  // "" for an anonymous client
  GWeakRef client;   // the connection that made it (NULL once it is gone)
};
const char *const kOwnerKey = "camrelay-session-owner";
const char *const kRefusedKey = "camrelay-session-refused";

// Whether the request comes from the owner of the session it names: the
// same user (authenticated on this request), or for an anonymous owner the
// same connection.
bool
owns (CamrelayAuth *self, GstRTSPContext *ctx)
{
  auto *owner =
      static_cast<SessionOwner *> (g_object_get_data (G_OBJECT (ctx->session), kOwnerKey));
  if (!owner || !ctx->client)
    return false;
  if (owner->user.empty ()) {
    GObject *client = G_OBJECT (g_weak_ref_get (&owner->client));
    if (client)
      g_object_unref (client);
    return client == G_OBJECT (ctx->client);
  }
  const gchar *role = ctx->token && ctx->token != self->state->anonymous
      ? gst_rtsp_token_get_string (ctx->token, GST_RTSP_TOKEN_MEDIA_FACTORY_ROLE)
      : nullptr;
  return role && owner->user == role;
}

// The server makes a client watch every session its requests name: when
// the connection closes, the session's TCP streams go with it.  A
// connection other than the one that made the session stops watching it
// (which leaves the session's media alone).
void
stop_watching (GstRTSPContext *ctx)
{
  auto *owner =
      static_cast<SessionOwner *> (g_object_get_data (G_OBJECT (ctx->session), kOwnerKey));
  GObject *creator = owner ? G_OBJECT (g_weak_ref_get (&owner->client)) : nullptr;
  if (creator != G_OBJECT (ctx->client))
    gst_rtsp_client_session_filter (ctx->client,
        [] (GstRTSPClient *, GstRTSPSession *session, gpointer named) {
          return session == named ? GST_RTSP_FILTER_REMOVE : GST_RTSP_FILTER_KEEP;
        },
        ctx->session);
  if (creator)
    g_object_unref (creator);
}

// 454 Session Not Found for a request naming someone else's session (the
// same answer as for a session that does not exist), logged once per
// connection; the connection stops watching the session.
void
refuse_session (GstRTSPAuth *auth, GstRTSPContext *ctx)
{
  if (!g_object_get_data (G_OBJECT (ctx->client), kRefusedKey)) {
    g_object_set_data (G_OBJECT (ctx->client), kRefusedKey, GINT_TO_POINTER (1));
    log_line ("client %s: %s %s names a session that is not its own: 454 "
        "(logged once per connection)", client_ip (ctx).c_str (),
        gst_rtsp_method_as_text (ctx->method),
        ctx->uri && ctx->uri->abspath ? log_value (ctx->uri->abspath).c_str () : "*");
  }
  stop_watching (ctx);
  answer (auth, ctx, GST_RTSP_STS_SESSION_NOT_FOUND);
}

// The token of user `name`, made at its first use and kept until finalize.
GstRTSPToken *
token_of (AuthState &state, const std::string &name)
{
  std::lock_guard<std::mutex> l (state.lock);
  GstRTSPToken *&token = state.tokens[name];
  // The user's role is the user's name: cameras permit users by name.
  if (!token)
    token = gst_rtsp_token_new (GST_RTSP_TOKEN_MEDIA_FACTORY_ROLE, G_TYPE_STRING, name.c_str (),
        nullptr);
  return token;
}

}  // namespace

// The stock Basic and Digest, then Basic against users given by a hash.
static gboolean
camrelay_auth_authenticate (GstRTSPAuth *auth, GstRTSPContext *ctx)
{
  auto *self = CAMRELAY_AUTH (auth);
  GstRTSPToken *before = ctx->token;
  gboolean result = GST_RTSP_AUTH_CLASS (camrelay_auth_parent_class)->authenticate (auth, ctx);
  if (!has_credentials (ctx) || (ctx->token && ctx->token != before))
    return result;

  std::string user, password;
  if (basic_credentials (ctx, user, password)) {
    const std::string hex = sha256_hex (password);
    std::lock_guard<std::mutex> l (self->state->lock);
    auto it = self->state->users.find (user);
    auto token = self->state->tokens.find (user);
    if (it != self->state->users.end () && !it->second.hash_hex.empty ()
        && hex == it->second.hash_hex && token != self->state->tokens.end ()) {
      ctx->token = token->second;
      return TRUE;
    }
  }
  return result;
}

// GST_RTSP_AUTH_CHECK_URL, which gst-rtsp-server makes before it does
// anything with a request (but after it found the session the request
// names).  With users, every request but OPTIONS must carry valid
// credentials (else 401) and a user may only name a mount permitted to it
// (else 404, as an unknown mount).  So nothing a request costs or reveals
// (an on-demand camera started, a wait for video, 401 against 404) happens
// for a client that is not authenticated and permitted.  A request naming
// a session must come from the session's owner (else 454).
static gboolean
camrelay_auth_check (GstRTSPAuth *auth, GstRTSPContext *ctx, const gchar *check)
{
  auto *self = CAMRELAY_AUTH (auth);
  if (!g_str_equal (check, GST_RTSP_AUTH_CHECK_URL))
    return GST_RTSP_AUTH_CLASS (camrelay_auth_parent_class)->check (auth, ctx, check);
  bool users = false;
  {
    std::lock_guard<std::mutex> l (self->state->lock);
    users = !self->state->users.empty ();
  }
  if (users && ctx->method == GST_RTSP_OPTIONS && !ctx->session)
    return TRUE;
  // An address that guessed too often: its credentials are not even checked.
  if (users && has_credentials (ctx) && refusing (*self->state, client_ip (ctx))) {
    if (ctx->session)
      refuse_session (auth, ctx);
    else
      answer (auth, ctx, GST_RTSP_STS_UNAUTHORIZED);
    return FALSE;
  }
  // Without users this gives the anonymous token (which, while a reload
  // adds the first users, may still come as the default: not a user).
  if (!ctx->token)
    GST_RTSP_AUTH_GET_CLASS (auth)->authenticate (auth, ctx);
  const bool authenticated = ctx->token && ctx->token != self->state->anonymous;
  if (users && !authenticated && has_credentials (ctx))
    log_failure (*self->state, ctx);
  if (ctx->session && !owns (self, ctx)) {
    refuse_session (auth, ctx);
    return FALSE;
  }
  // The owner controlling a session from another connection: closing that
  // connection must not end the session's streams.  A SETUP adds a stream
  // sent over it, which that connection must watch.
  if (ctx->session && ctx->method != GST_RTSP_SETUP)
    stop_watching (ctx);
  if (users && !authenticated) {
    answer (auth, ctx, GST_RTSP_STS_UNAUTHORIZED);
    return FALSE;
  }
  if (users && !permitted (ctx)) {
    answer (auth, ctx, GST_RTSP_STS_NOT_FOUND);
    return FALSE;
  }
  return TRUE;
}

static void
camrelay_auth_finalize (GObject *object)
{
  auto *self = CAMRELAY_AUTH (object);
  for (auto &[name, token] : self->state->tokens)
    gst_rtsp_token_unref (token);
  gst_rtsp_token_unref (self->state->anonymous);
  delete self->state;
  G_OBJECT_CLASS (camrelay_auth_parent_class)->finalize (object);
}

static void
camrelay_auth_class_init (CamrelayAuthClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = camrelay_auth_finalize;
  GST_RTSP_AUTH_CLASS (klass)->authenticate = camrelay_auth_authenticate;
  GST_RTSP_AUTH_CLASS (klass)->check = camrelay_auth_check;
}

static void
camrelay_auth_init (CamrelayAuth *self)
{
  self->state = new AuthState ();
  self->state->anonymous = gst_rtsp_token_new (GST_RTSP_TOKEN_MEDIA_FACTORY_ROLE, G_TYPE_STRING,
      camrelay::launcher::ANONYMOUS_ROLE, nullptr);
}

namespace camrelay::launcher {

GstRTSPAuth *
make_auth (const std::vector<UserConfig> &users)
{
  auto *auth = GST_RTSP_AUTH (g_object_new (CAMRELAY_TYPE_AUTH, nullptr));
  gst_rtsp_auth_set_supported_methods (auth,
      static_cast<GstRTSPAuthMethod> (GST_RTSP_AUTH_BASIC | GST_RTSP_AUTH_DIGEST));
  set_users (auth, users);
  return auth;
}

void
set_users (GstRTSPAuth *auth, const std::vector<UserConfig> &users)
{
  AuthState &state = *CAMRELAY_AUTH (auth)->state;
  std::map<std::string, UserEntry> next;
  for (const UserConfig &user : users) {
    UserEntry &entry = next[user.name];
    entry.password = user.password;
    if (user.password.empty ()) {
      std::string hex = user.password_hash;
      if (hex.rfind ("sha256:", 0) == 0)
        hex = hex.substr (7);
      for (char &c : hex)
        c = g_ascii_tolower (c);
      entry.hash_hex = hex;
    }
  }
  std::map<std::string, UserEntry> previous;
  {
    std::lock_guard<std::mutex> l (state.lock);
    previous = state.users;
  }
  // New and changed users first (a changed Digest entry is replaced in
  // place), then what is left of removed and changed ones.
  for (const auto &[name, entry] : next) {
    GstRTSPToken *token = token_of (state, name);
    auto old = previous.find (name);
    if ((old != previous.end () && old->second == entry) || entry.password.empty ())
      continue;
    gchar *basic = gst_rtsp_auth_make_basic (name.c_str (), entry.password.c_str ());
    gst_rtsp_auth_add_basic (auth, basic, token);
    g_free (basic);
    gst_rtsp_auth_add_digest (auth, name.c_str (), entry.password.c_str (), token);
  }
  for (const auto &[name, entry] : previous) {
    auto now = next.find (name);
    if (entry.password.empty () || (now != next.end () && now->second == entry))
      continue;
    gchar *basic = gst_rtsp_auth_make_basic (name.c_str (), entry.password.c_str ());
    gst_rtsp_auth_remove_basic (auth, basic);
    g_free (basic);
    if (now == next.end () || now->second.password.empty ())
      gst_rtsp_auth_remove_digest (auth, name.c_str ());
  }
  GstRTSPToken *default_token = nullptr;
  {
    std::lock_guard<std::mutex> l (state.lock);
    state.users = std::move (next);
    if (state.users.empty ())
      default_token = state.anonymous;
  }
  // The state keeps its own reference to the anonymous token: a request that
  // got it before users were added may still be using it.
  gst_rtsp_auth_set_default_token (auth, default_token);
}

std::string
authenticated_user (GstRTSPContext *ctx)
{
  if (!ctx || !ctx->token || !CAMRELAY_IS_AUTH (ctx->auth)
      || ctx->token == CAMRELAY_AUTH (ctx->auth)->state->anonymous)
    return "";
  const gchar *role = gst_rtsp_token_get_string (ctx->token, GST_RTSP_TOKEN_MEDIA_FACTORY_ROLE);
  return role ? role : "";
}

void
claim_session (GstRTSPClient *client, GstRTSPSession *session)
{
  auto *owner = new SessionOwner ();
  g_weak_ref_init (&owner->client, client);
  owner->user = authenticated_user (gst_rtsp_context_get_current ());
  g_object_set_data_full (G_OBJECT (session), kOwnerKey, owner, [] (gpointer data) {
    auto *owner = static_cast<SessionOwner *> (data);
    g_weak_ref_clear (&owner->client);
    delete owner;
  });
}

void
permit_users (GstRTSPMediaFactory *factory, const CameraConfig &camera,
    const std::vector<UserConfig> &users)
{
  // Without an authenticator roles are not checked; without users but with
  // one (RTSPS), every client has the anonymous role.
  if (users.empty ())
    gst_rtsp_media_factory_add_role (factory, ANONYMOUS_ROLE,
        GST_RTSP_PERM_MEDIA_FACTORY_ACCESS, G_TYPE_BOOLEAN, TRUE,
        GST_RTSP_PERM_MEDIA_FACTORY_CONSTRUCT, G_TYPE_BOOLEAN, TRUE, nullptr);
  for (const UserConfig &user : users) {
    bool permitted = camera.users.empty ();
    for (const std::string &name : camera.users)
      permitted = permitted || name == user.name;
    if (permitted)
      gst_rtsp_media_factory_add_role (factory, user.name.c_str (),
          GST_RTSP_PERM_MEDIA_FACTORY_ACCESS, G_TYPE_BOOLEAN, TRUE,
          GST_RTSP_PERM_MEDIA_FACTORY_CONSTRUCT, G_TYPE_BOOLEAN, TRUE, nullptr);
  }
}

bool
apply_tls (GstRTSPAuth *auth, const std::string &cert, const std::string &key, std::string &error)
{
  // GIO's TLS comes from a module (glib-networking); without it every
  // certificate fails with a message that does not say so.
  if (!g_tls_backend_supports_tls (g_tls_backend_get_default ())) {
    error = "server.tls_cert: this system has no TLS support for GLib (install glib-networking)";
    return false;
  }
  // The certificate alone first, so that an error names the file at fault.
  GError *gerror = nullptr;
  GTlsCertificate *certificate = g_tls_certificate_new_from_file (cert.c_str (), &gerror);
  if (!certificate) {
    error = "server.tls_cert \"" + cert + "\": " + gerror->message;
    g_error_free (gerror);
    return false;
  }
  g_object_unref (certificate);
  certificate = g_tls_certificate_new_from_files (cert.c_str (), key.c_str (), &gerror);
  if (!certificate) {
    error = "server.tls_key \"" + key + "\": " + gerror->message;
    g_error_free (gerror);
    return false;
  }
  gst_rtsp_auth_set_tls_certificate (auth, certificate);
  g_object_unref (certificate);
  return true;
}

}  // namespace camrelay::launcher
