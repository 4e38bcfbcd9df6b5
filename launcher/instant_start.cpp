// Instant start: the GOP cache of each media and the catch-up burst of each
// joining client (see instant_start.h).
#include "instant_start.h"

#include <cstring>
#include <mutex>
#include <vector>

#include "common/gstref.h"
#include "instant_start_udp.h"
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
    cache.handle_event (GST_PAD_PROBE_INFO_EVENT (info));  // the codec (caps), flushes
  }
  return GST_PAD_PROBE_OK;
}

// ---- the sender of a joining TCP client ----------------------------------------
//
// gst-rtsp-server sends a TCP client's packets through the callbacks its
// client installed on the transport at SETUP, from the moment the PLAY
// activates the transport, which is before the PLAY answer is queued.  A
// joining client's video transport gets these in their place first
// ("pre-play-request"); they hand everything on to the client's own:
// - hold: from activation until the answer is queued ("play-request"), live
//   packets are kept back (the answer must come first);
// - burst: the first live packet after that brings the burst with it:
//   [GOP][packets since][live packet], one message, behind the answer;
// - catching up: live packets the burst held already are dropped;
// - live: everything is handed on.
// A client that starts without a burst goes from hold to live with what was
// kept back.  The stream calls these one at a time and never while a
// message of the channel is still queued (its back-pressure check); the
// lock only hands the phase over from the client's thread.
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

// Live packets kept back while the PLAY answer is on its way (a few frames).
constexpr size_t kMaxHeld = 1024;

struct TcpJoin {
  GstRTSPSendFunc send_rtp = nullptr;
  GstRTSPSendFunc send_rtcp = nullptr;
  GstRTSPSendListFunc send_rtp_list = nullptr;
  GstRTSPSendListFunc send_rtcp_list = nullptr;
  gpointer client = nullptr;  // what gst-rtsp-server passes them (not owned, as there)
  std::shared_ptr<GopCache> cache;
  std::string camera;
  enum class Phase { hold, burst, catching_up, live };
  std::atomic<Phase> phase{Phase::hold};
  std::atomic<bool> through{false};  // live with nothing held: straight to the client's senders
  std::mutex lock;                // guards the two below
  GopBurst burst;                 // taken when the answer leaves; sent in the burst phase
  std::vector<BufferPtr> held;    // kept back in the hold phase
  uint16_t last_seq = 0;          // the newest packet sent, while catching up
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

// Hands `packets` (owned) on as one message.
gboolean
send_list (TcpJoin &join, std::vector<BufferPtr> &packets, guint8 channel)
{
  if (packets.empty ())
    return TRUE;
  GstBufferList *list = gst_buffer_list_new_sized (packets.size ());
  for (BufferPtr &packet : packets)
    gst_buffer_list_add (list, packet.release ());
  const gboolean sent = join.send_rtp_list (list, channel, join.client);
  gst_buffer_list_unref (list);
  return sent;
}

// A live packet (or list: `live`, count `n`) comes to a joining client.
gboolean
join_send (TcpJoin &join, GstBuffer *const *live, guint n, guint8 channel)
{
  std::vector<BufferPtr> out;
  std::unique_lock<std::mutex> l (join.lock);
  switch (join.phase.load ()) {
    case TcpJoin::Phase::hold:
      for (guint i = 0; i < n; i++)
        join.held.emplace_back (gst_buffer_ref (live[i]));
      if (join.held.size () > kMaxHeld)
        join.held.erase (join.held.begin (), join.held.end () - kMaxHeld);
      return TRUE;
    case TcpJoin::Phase::live:  // without a burst: what was held, then this
      out = std::move (join.held);
      join.held.clear ();
      join.through = true;
      l.unlock ();
      for (guint i = 0; i < n; i++)
        out.emplace_back (gst_buffer_ref (live[i]));
      return send_list (join, out, channel);
    case TcpJoin::Phase::burst: {
      GopBurst burst = std::move (join.burst);
      join.burst = GopBurst ();
      join.held.clear ();  // the burst and the packets since hold them
      join.phase = TcpJoin::Phase::catching_up;
      l.unlock ();
      out = std::move (burst.packets);
      uint16_t last = burst.last_seq;
      std::vector<BufferPtr> since;
      if (n > 0 && !join.cache->since (last, rtp_seq (live[0]), since))
        GST_WARNING ("camera %s: packets between the burst and the live ones are gone; "
            "the client may see a gap", join.camera.c_str ());
      for (BufferPtr &packet : since) {
        last = rtp_seq (packet.get ());
        out.push_back (std::move (packet));
      }
      for (guint i = 0; i < n; i++)
        if (seq_after (rtp_seq (live[i]), last)) {
          last = rtp_seq (live[i]);
          out.emplace_back (gst_buffer_ref (live[i]));
        }
      join.last_seq = last;
      GST_DEBUG ("camera %s: burst of %zu packets sent", join.camera.c_str (), out.size ());
      return send_list (join, out, channel);
    }
    case TcpJoin::Phase::catching_up:
      l.unlock ();
      for (guint i = 0; i < n; i++)
        if (join.through || seq_after (rtp_seq (live[i]), join.last_seq)) {
          join.phase = TcpJoin::Phase::live;
          join.through = true;
          out.emplace_back (gst_buffer_ref (live[i]));
        }
      return send_list (join, out, channel);
  }
  return TRUE;
}

gboolean
join_send_rtp (GstBuffer *buffer, guint8 channel, gpointer data)
{
  TcpJoin &join = *static_cast<TcpJoin *> (data);
  if (join.through)
    return join.send_rtp (buffer, channel, join.client);
  return join_send (join, &buffer, 1, channel);
}

gboolean
join_send_rtp_list (GstBufferList *list, guint8 channel, gpointer data)
{
  TcpJoin &join = *static_cast<TcpJoin *> (data);
  if (join.through)
    return join.send_rtp_list (list, channel, join.client);
  std::vector<GstBuffer *> live (gst_buffer_list_length (list));
  for (guint i = 0; i < live.size (); i++)
    live[i] = gst_buffer_list_get (list, i);
  return join_send (join, live.data (), live.size (), channel);
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

// A transport's join, from its first PLAY on (object data of the transport).
struct TransportJoin {
  TcpJoin *tcp = nullptr;             // owned by the transport's callbacks
  std::shared_ptr<UdpJoin> udp;
  bool answered = false;              // its PLAY answer left: later PLAYs join nothing
};

GQuark
transport_join_quark ()
{
  static GQuark quark = g_quark_from_static_string ("camrelay-instant-start-join");
  return quark;
}

// The media's instant-start state and the session's video transport, when
// instant start applies to `ctx`'s PLAY.
MediaState *
joining_video (GstRTSPContext *ctx, GstRTSPStream **stream, GstRTSPStreamTransport **trans)
{
  if (!ctx || !ctx->sessmedia)
    return nullptr;
  GstRTSPMedia *media = gst_rtsp_session_media_get_media (ctx->sessmedia);
  auto *state = media ? static_cast<MediaState *> (g_object_get_qdata (G_OBJECT (media),
      media_state_quark ())) : nullptr;
  if (!state)
    return nullptr;
  *stream = gst_rtsp_media_get_stream (media, 0);
  *trans = gst_rtsp_session_media_get_transport (ctx->sessmedia, 0);
  return *stream && *trans ? state : nullptr;
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

GstRTSPStatusCode
instant_start_pre_play (GstRTSPClient *client, GstRTSPContext *ctx)
{
  GstRTSPStream *stream = nullptr;
  GstRTSPStreamTransport *trans = nullptr;
  MediaState *state = joining_video (ctx, &stream, &trans);
  if (!state || g_object_get_qdata (G_OBJECT (trans), transport_join_quark ()))
    return GST_RTSP_STS_OK;  // not ours, or it has a join (or played) already
  auto *record = new TransportJoin;
  g_object_set_qdata_full (G_OBJECT (trans), transport_join_quark (), record,
      [] (gpointer data) { delete static_cast<TransportJoin *> (data); });
  const GstRTSPTransport *transport = gst_rtsp_stream_transport_get_transport (trans);
  GstRTSPConnection *connection = gst_rtsp_client_get_connection (client);
  if (!state->settings->enabled)
    return GST_RTSP_STS_OK;
  if (transport->lower_transport == GST_RTSP_LOWER_TRANS_TCP
      && !(connection && gst_rtsp_connection_is_tunneled (connection))) {
    auto *join = new TcpJoin;
    join->cache = state->cache;
    join->camera = state->camera;
    if (install_tcp_join (trans, client, join)) {
      record->tcp = join;
    } else {
      static std::atomic<bool> logged{false};
      if (!logged.exchange (true))
        log_line ("instant start: this gst-rtsp-server's transports are not as expected; "
            "clients start at the camera's next keyframe");
      delete join;
    }
  } else if (transport->lower_transport == GST_RTSP_LOWER_TRANS_UDP) {
    record->udp = register_udp_join (gst_rtsp_session_media_get_media (ctx->sessmedia), stream,
        transport, state->cache, state->camera);
  }
  return GST_RTSP_STS_OK;
}

void
prepare_instant_start (GstRTSPClient *, GstRTSPContext *ctx, GstRTSPMessage *message)
{
  if (!ctx || ctx->method != GST_RTSP_PLAY || !message
      || message->type != GST_RTSP_MESSAGE_RESPONSE
      || message->type_data.response.code != GST_RTSP_STS_OK)
    return;
  GstRTSPStream *stream = nullptr;
  GstRTSPStreamTransport *trans = nullptr;
  MediaState *state = joining_video (ctx, &stream, &trans);
  auto *record = state ? static_cast<TransportJoin *> (g_object_get_qdata (G_OBJECT (trans),
      transport_join_quark ())) : nullptr;
  if (!record || record->answered)
    return;  // a PLAY after PAUSE, or not ours
  record->answered = true;
  GopBurst burst;
  std::string why = "instant start is off";
  std::string rewritten;
  if (!state->settings->enabled) {
    // counted below as a live start
  } else if (record->tcp || record->udp) {
    burst = state->cache->take (state->settings->burst_max_bytes, why);
    const gchar *rtp_info = nullptr;
    gst_rtsp_message_get_header (message, GST_RTSP_HDR_RTP_INFO, const_cast<gchar **> (&rtp_info), 0);
    GCharPtr control{gst_rtsp_stream_get_control (stream)};
    if (!burst.empty () && rtp_info && control)
      rewritten = rewrite_rtp_info (rtp_info, control.get (), burst.first_seq, burst.first_timestamp);
    if (!burst.empty () && rewritten.empty ()) {
      why = "no RTP-Info for its video";
      burst = GopBurst ();
    }
  } else {
    why = "its transport takes no burst (multicast, HTTP tunnel)";
  }
  if (burst.empty ()) {
    GST_DEBUG ("camera %s: client starts live: %s", state->camera.c_str (), why.c_str ());
    state->settings->live_starts++;
  } else {
    GST_DEBUG ("camera %s: client joins with a burst of %u frames, %" G_GUINT64_FORMAT " bytes",
        state->camera.c_str (), burst.frames, burst.bytes);
    gst_rtsp_message_remove_header (message, GST_RTSP_HDR_RTP_INFO, -1);
    gst_rtsp_message_add_header (message, GST_RTSP_HDR_RTP_INFO, rewritten.c_str ());
    state->settings->bursts++;
  }
  if (record->udp) {
    start_udp_join (*record->udp, std::move (burst));
  } else if (record->tcp) {
    std::lock_guard<std::mutex> l (record->tcp->lock);
    record->tcp->burst = std::move (burst);
  }
}

void
instant_start_play (GstRTSPClient *, GstRTSPContext *ctx)
{
  GstRTSPStream *stream = nullptr;
  GstRTSPStreamTransport *trans = nullptr;
  MediaState *state = joining_video (ctx, &stream, &trans);
  auto *record = state ? static_cast<TransportJoin *> (g_object_get_qdata (G_OBJECT (trans),
      transport_join_quark ())) : nullptr;
  if (!record || !record->tcp)
    return;
  TcpJoin &join = *record->tcp;
  std::lock_guard<std::mutex> l (join.lock);
  if (join.phase == TcpJoin::Phase::hold)
    join.phase = join.burst.empty () ? TcpJoin::Phase::live : TcpJoin::Phase::burst;
}

}  // namespace camrelay::launcher
