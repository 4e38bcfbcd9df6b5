// Instant start: the GOP cache of each media and the catch-up burst of each
// joining client (see instant_start.h).
#include "instant_start.h"

#include <cstring>
#include <vector>

#include "common/gstref.h"
#include "log.h"

GST_DEBUG_CATEGORY_STATIC (instant_start_debug);
#define GST_CAT_DEFAULT instant_start_debug

namespace camrelay::launcher {

namespace {

void
init_debug ()
{
  static gsize once = 0;
  if (g_once_init_enter (&once)) {
    GST_DEBUG_CATEGORY_INIT (instant_start_debug, "camrelay-instant-start", 0,
        "camrelay instant start");
    g_once_init_leave (&once, 1);
  }
}

// What a media's joins need: its cache and its camera's settings.
struct MediaState {
  std::shared_ptr<GopCache> cache;
  std::shared_ptr<InstantStartSettings> settings;
  std::string camera;
};

GQuark
media_state_quark ()
{
  static GQuark quark = g_quark_from_static_string ("camrelay-instant-start");
  return quark;
}

GQuark
joined_quark ()
{
  static GQuark quark = g_quark_from_static_string ("camrelay-instant-start-joined");
  return quark;
}

GstPadProbeReturn
feed_cache (GstPad *, GstPadProbeInfo *info, gpointer data)
{
  GopCache &cache = **static_cast<std::shared_ptr<GopCache> *> (data);
  if (info->type & GST_PAD_PROBE_TYPE_BUFFER) {
    cache.push (GST_PAD_PROBE_INFO_BUFFER (info));
  } else if (info->type & GST_PAD_PROBE_TYPE_BUFFER_LIST) {
    GstBufferList *list = GST_PAD_PROBE_INFO_BUFFER_LIST (info);
    for (guint i = 0, n = gst_buffer_list_length (list); i < n; i++)
      cache.push (gst_buffer_list_get (list, i));
  } else if (info->type & GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM) {
    const GstEventType type = GST_EVENT_TYPE (GST_PAD_PROBE_INFO_EVENT (info));
    if (type == GST_EVENT_FLUSH_STOP || type == GST_EVENT_STREAM_START)
      cache.clear ();
  }
  return GST_PAD_PROBE_OK;
}

// ---- the sender of a joining TCP client ----------------------------------------
//
// gst-rtsp-server sends a TCP client's packets through the callbacks its
// client installed on the transport at SETUP.  A joining client's video
// transport gets these in their place, before it is activated; they hand
// everything on to the client's own, and the first live packet brings the
// burst with it: [burst][packets since][live packet], one message, queued
// behind the PLAY answer (which left before the transport was activated).
// The stream calls them one at a time and never while a message of the
// channel is still queued (its back-pressure check), so they need no lock.
//
// gst-rtsp-server has no getter for a transport's callbacks: the client's
// are read from the transport's private structure, whose first fields have
// kept this layout from 1.20 to 1.26.  A transport whose fields do not look
// as expected (another version) is left alone: that client starts live.
struct TransportPrivateHead {
  GstRTSPStream *stream;
  GstRTSPSendFunc send_rtp;
  GstRTSPSendFunc send_rtcp;
  gpointer user_data;
  GDestroyNotify notify;
  GstRTSPSendListFunc send_rtp_list;
  GstRTSPSendListFunc send_rtcp_list;
  gpointer list_user_data;
  GDestroyNotify list_notify;
};

struct TcpJoin {
  GstRTSPSendFunc send_rtp = nullptr;
  GstRTSPSendFunc send_rtcp = nullptr;
  GstRTSPSendListFunc send_rtp_list = nullptr;
  GstRTSPSendListFunc send_rtcp_list = nullptr;
  gpointer client = nullptr;  // what gst-rtsp-server passes them (not owned, as there)
  std::shared_ptr<GopCache> cache;
  GopBurst burst;
  std::string camera;
  enum class Phase { burst, catching_up, live } phase = Phase::burst;
  uint16_t last_seq = 0;  // the newest packet sent, while catching up
};

bool
read_client_senders (GstRTSPStreamTransport *trans, GstRTSPClient *client, TcpJoin &join)
{
  static_assert (sizeof (GstRTSPSendFunc) == sizeof (gpointer), "function pointers");
  const auto *head = reinterpret_cast<const TransportPrivateHead *> (trans->priv);
  if (!head || head->stream != gst_rtsp_stream_transport_get_stream (trans)
      || head->user_data != client || head->list_user_data != client || head->notify
      || head->list_notify || !head->send_rtp || !head->send_rtcp || !head->send_rtp_list
      || !head->send_rtcp_list)
    return false;
  join.send_rtp = head->send_rtp;
  join.send_rtcp = head->send_rtcp;
  join.send_rtp_list = head->send_rtp_list;
  join.send_rtcp_list = head->send_rtcp_list;
  join.client = client;
  return true;
}

uint16_t
seq_of (GstBuffer *packet)
{
  RtpHeader header;
  return read_rtp_header (packet, header) ? header.seq : 0;
}

// The first call: the burst, the packets that came after it, and of
// `live` (count `n`) those the burst did not hold already.
gboolean
send_burst (TcpJoin &join, GstBuffer *const *live, guint n, guint8 channel)
{
  std::vector<BufferPtr> since;
  if (n > 0 && !join.cache->since (join.burst.last_seq, seq_of (live[0]), since))
    GST_WARNING ("camera %s: packets between the burst and the live ones are gone; "
        "the client may see a gap", join.camera.c_str ());
  GstBufferList *list = gst_buffer_list_new_sized (join.burst.packets.size () + since.size () + n);
  uint16_t last = join.burst.last_seq;
  for (BufferPtr &packet : join.burst.packets)
    gst_buffer_list_add (list, packet.release ());
  for (BufferPtr &packet : since) {
    last = seq_of (packet.get ());
    gst_buffer_list_add (list, packet.release ());
  }
  for (guint i = 0; i < n; i++) {
    const uint16_t seq = seq_of (live[i]);
    if (seq_after (seq, last)) {
      last = seq;
      gst_buffer_list_add (list, gst_buffer_ref (live[i]));
    }
  }
  join.burst = GopBurst ();
  join.last_seq = last;
  join.phase = TcpJoin::Phase::catching_up;
  GST_DEBUG ("camera %s: burst of %u packets sent", join.camera.c_str (),
      gst_buffer_list_length (list));
  const gboolean sent = join.send_rtp_list (list, channel, join.client);
  gst_buffer_list_unref (list);
  return sent;
}

// Live packets that the burst may have held already (they were on their way
// while it was taken): those are dropped.
gboolean
send_catching_up (TcpJoin &join, GstBuffer *const *live, guint n, guint8 channel)
{
  GstBufferList *list = gst_buffer_list_new_sized (n);
  for (guint i = 0; i < n; i++) {
    const uint16_t seq = seq_of (live[i]);
    if (join.phase == TcpJoin::Phase::live || seq_after (seq, join.last_seq)) {
      join.phase = TcpJoin::Phase::live;
      gst_buffer_list_add (list, gst_buffer_ref (live[i]));
    }
  }
  gboolean sent = TRUE;
  if (gst_buffer_list_length (list) > 0)
    sent = join.send_rtp_list (list, channel, join.client);
  gst_buffer_list_unref (list);
  return sent;
}

gboolean
join_send_rtp (GstBuffer *buffer, guint8 channel, gpointer data)
{
  TcpJoin &join = *static_cast<TcpJoin *> (data);
  switch (join.phase) {
    case TcpJoin::Phase::live:
      return join.send_rtp (buffer, channel, join.client);
    case TcpJoin::Phase::burst:
      return send_burst (join, &buffer, 1, channel);
    case TcpJoin::Phase::catching_up:
      break;
  }
  return send_catching_up (join, &buffer, 1, channel);
}

gboolean
join_send_rtp_list (GstBufferList *list, guint8 channel, gpointer data)
{
  TcpJoin &join = *static_cast<TcpJoin *> (data);
  if (join.phase == TcpJoin::Phase::live)
    return join.send_rtp_list (list, channel, join.client);
  std::vector<GstBuffer *> live (gst_buffer_list_length (list));
  for (guint i = 0; i < live.size (); i++)
    live[i] = gst_buffer_list_get (list, i);
  if (join.phase == TcpJoin::Phase::burst)
    return send_burst (join, live.data (), live.size (), channel);
  return send_catching_up (join, live.data (), live.size (), channel);
}

gboolean
join_send_rtcp (GstBuffer *buffer, guint8 channel, gpointer data)
{
  TcpJoin &join = *static_cast<TcpJoin *> (data);
  return join.send_rtcp (buffer, channel, join.client);
}

gboolean
join_send_rtcp_list (GstBufferList *list, guint8 channel, gpointer data)
{
  TcpJoin &join = *static_cast<TcpJoin *> (data);
  return join.send_rtcp_list (list, channel, join.client);
}

// Installs the joining sender on `trans`; false when the transport's
// callbacks are not the client's as expected.
bool
install_tcp_join (GstRTSPStreamTransport *trans, GstRTSPClient *client, TcpJoin *join)
{
  if (!read_client_senders (trans, client, *join))
    return false;
  // The transport's finalize calls the first notify, not the list one.
  gst_rtsp_stream_transport_set_list_callbacks (trans, join_send_rtp_list, join_send_rtcp_list,
      join, nullptr);
  gst_rtsp_stream_transport_set_callbacks (trans, join_send_rtp, join_send_rtcp, join,
      [] (gpointer data) { delete static_cast<TcpJoin *> (data); });
  return true;
}

}  // namespace

std::shared_ptr<GopCache>
attach_gop_cache (GstRTSPMedia *media, GstElement *payloader,
    std::shared_ptr<InstantStartSettings> settings, const std::string &camera)
{
  init_debug ();
  PadPtr src{gst_element_get_static_pad (payloader, "src")};
  if (!src)
    return nullptr;
  auto cache = std::make_shared<GopCache> (settings->cache_max_bytes.load ());
  gst_pad_add_probe (src.get (), static_cast<GstPadProbeType> (GST_PAD_PROBE_TYPE_BUFFER
      | GST_PAD_PROBE_TYPE_BUFFER_LIST | GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM), feed_cache,
      new std::shared_ptr<GopCache> (cache),
      [] (gpointer data) { delete static_cast<std::shared_ptr<GopCache> *> (data); });
  g_object_set_qdata_full (G_OBJECT (media), media_state_quark (),
      new MediaState{cache, std::move (settings), camera},
      [] (gpointer data) { delete static_cast<MediaState *> (data); });
  return cache;
}

std::string
rewrite_rtp_info (const std::string &rtp_info, const std::string &control, uint16_t seq,
    uint32_t rtptime)
{
  // "url=U;seq=S;rtptime=T, url=...": entries by commas, fields by semicolons.
  std::string out;
  bool found = false;
  size_t start = 0;
  while (start <= rtp_info.size ()) {
    size_t end = rtp_info.find (',', start);
    if (end == std::string::npos)
      end = rtp_info.size ();
    std::string entry = rtp_info.substr (start, end - start);
    const size_t first = entry.find_first_not_of (' ');
    entry = first == std::string::npos ? "" : entry.substr (first);
    const size_t url_end = entry.find (';');
    const std::string url = entry.substr (0, url_end);
    const std::string suffix = "/" + control;
    if (!found && g_str_has_prefix (url.c_str (), "url=") && url.size () >= suffix.size ()
        && url.compare (url.size () - suffix.size (), suffix.size (), suffix) == 0) {
      entry = url + ";seq=" + std::to_string (seq) + ";rtptime=" + std::to_string (rtptime);
      found = true;
    }
    out += (out.empty () ? "" : ", ") + entry;
    start = end + 1;
  }
  return found ? out : "";
}

void
prepare_instant_start (GstRTSPClient *client, GstRTSPContext *ctx, GstRTSPMessage *message)
{
  if (!ctx || !ctx->sessmedia || ctx->method != GST_RTSP_PLAY || !message
      || message->type != GST_RTSP_MESSAGE_RESPONSE
      || message->type_data.response.code != GST_RTSP_STS_OK)
    return;
  GstRTSPMedia *media = gst_rtsp_session_media_get_media (ctx->sessmedia);
  auto *state = media ? static_cast<MediaState *> (g_object_get_qdata (G_OBJECT (media),
      media_state_quark ())) : nullptr;
  if (!state || !state->settings->enabled)
    return;
  GstRTSPStream *stream = gst_rtsp_media_get_stream (media, 0);
  GstRTSPStreamTransport *trans = gst_rtsp_session_media_get_transport (ctx->sessmedia, 0);
  if (!stream || !trans || g_object_get_qdata (G_OBJECT (trans), joined_quark ()))
    return;  // no video set up, or it has played before (a PLAY after PAUSE)
  g_object_set_qdata (G_OBJECT (trans), joined_quark (), GINT_TO_POINTER (1));

  const GstRTSPTransport *transport = gst_rtsp_stream_transport_get_transport (trans);
  GstRTSPConnection *connection = gst_rtsp_client_get_connection (client);
  const bool tcp = transport->lower_transport == GST_RTSP_LOWER_TRANS_TCP
      && !(connection && gst_rtsp_connection_is_tunneled (connection));
  if (!tcp) {
    state->settings->live_starts++;
    return;
  }
  std::string why;
  GopBurst burst = state->cache->take (state->settings->burst_max_bytes, why);
  const gchar *rtp_info = nullptr;
  gst_rtsp_message_get_header (message, GST_RTSP_HDR_RTP_INFO, const_cast<gchar **> (&rtp_info), 0);
  GCharPtr control{gst_rtsp_stream_get_control (stream)};
  std::string rewritten;
  if (!burst.empty () && rtp_info && control)
    rewritten = rewrite_rtp_info (rtp_info, control.get (), burst.first_seq, burst.first_timestamp);
  if (burst.empty () || rewritten.empty ()) {
    GST_DEBUG ("camera %s: client starts live: %s", state->camera.c_str (),
        burst.empty () ? why.c_str () : "no RTP-Info for its video");
    state->settings->live_starts++;
    return;
  }
  auto *join = new TcpJoin;
  join->cache = state->cache;
  join->camera = state->camera;
  join->burst = std::move (burst);
  const unsigned frames = join->burst.frames;
  const uint64_t bytes = join->burst.bytes;
  if (!install_tcp_join (trans, client, join)) {
    static std::atomic<bool> logged{false};
    if (!logged.exchange (true))
      log_line ("instant start: this gst-rtsp-server's transports are not as expected; "
          "clients start at the camera's next keyframe");
    delete join;
    state->settings->live_starts++;
    return;
  }
  gst_rtsp_message_remove_header (message, GST_RTSP_HDR_RTP_INFO, -1);
  gst_rtsp_message_add_header (message, GST_RTSP_HDR_RTP_INFO, rewritten.c_str ());
  state->settings->bursts++;
  GST_DEBUG ("camera %s: client joins with a burst of %u frames, %" G_GUINT64_FORMAT " bytes",
      state->camera.c_str (), frames, bytes);
}

}  // namespace camrelay::launcher
