// Instant start for UDP unicast clients (see instant_start_udp.h).
//
// gst-rtsp-server activates a UDP client by emitting "add" on the stream's
// RTP multiudpsink.  For a joining client that emission is stopped (a
// handler connected before the class's), and a probe on the sink's input,
// for each live packet, sends the client a share of the burst from the
// stream's own socket (so it comes from the port the client expects).  Once
// everything before the live packet has gone, the probe emits "add" itself:
// the sink then sends that packet, and all that follow, to the client too.
// A "remove" for a client still joining ends its join.
#include "instant_start_udp.h"

#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <vector>

#include "common/gstref.h"

GST_DEBUG_CATEGORY_STATIC (instant_start_udp_debug);
#define GST_CAT_DEFAULT instant_start_udp_debug

namespace camrelay::launcher {

namespace {

// What a join may send per live packet: the first share is larger (the
// keyframe), the next ones pace the rest so that the client's socket buffer
// (200 KB or more on Linux) keeps up.
constexpr gsize kFirstShare = 256 * 1024;
constexpr gsize kShare = 128 * 1024;
constexpr gint64 kWaitingLifetimeUs = 30 * G_USEC_PER_SEC;

}  // namespace

struct UdpJoiner;

struct UdpJoin {
  std::weak_ptr<UdpJoiner> joiner;
  std::string host;
  int port = 0;
  GObjectPtr<GSocketAddress> address;
  GopBurst burst;
  size_t next = 0;           // the next packet of the burst to send
  uint16_t last_seq = 0;     // the newest packet sent
  bool sent_any = false;
  gint64 created_us = g_get_monotonic_time ();
  bool ready = false;        // the burst is set: the join may go on
  enum class State { waiting, joining, added } state = State::waiting;
};

// One per media (its video stream's UDP sink): the joins under way.
struct UdpJoiner {
  std::shared_ptr<GopCache> cache;
  std::string camera;
  GObjectPtr<GSocket> socket_v4;
  GObjectPtr<GSocket> socket_v6;
  std::atomic<bool> hooked{false};  // to the video's UDP sink
  std::mutex lock;
  std::vector<std::shared_ptr<UdpJoin>> joins;
};

namespace {

thread_local bool own_add = false;  // "add" emitted by the probe: let it through

GQuark
joiner_quark ()
{
  static GQuark quark = g_quark_from_static_string ("camrelay-udp-joiner");
  return quark;
}

// Sends `packet` to the join's client; false on a socket error.
bool
send_packet (UdpJoiner &joiner, UdpJoin &join, GstBuffer *packet)
{
  const bool v6 = g_socket_address_get_family (join.address.get ()) == G_SOCKET_FAMILY_IPV6;
  GSocket *socket = v6 ? joiner.socket_v6.get () : joiner.socket_v4.get ();
  if (!socket)
    return false;
  const guint n = std::min (gst_buffer_n_memory (packet), 16u);
  GstMapInfo maps[16];
  GOutputVector vectors[16];
  guint mapped = 0;
  for (; mapped < n; mapped++) {
    if (!gst_memory_map (gst_buffer_peek_memory (packet, mapped), &maps[mapped], GST_MAP_READ))
      break;
    vectors[mapped].buffer = maps[mapped].data;
    vectors[mapped].size = maps[mapped].size;
  }
  bool sent = false;
  if (mapped == n && n == gst_buffer_n_memory (packet)) {
    GError *error = nullptr;
    sent = g_socket_send_message (socket, join.address.get (), vectors, n, nullptr, 0,
        MSG_DONTWAIT, nullptr, &error) >= 0;
    if (error) {
      GST_DEBUG ("burst to %s:%d: %s", join.host.c_str (), join.port, error->message);
      g_error_free (error);
    }
  }
  for (guint i = 0; i < mapped; i++)
    gst_memory_unmap (gst_buffer_peek_memory (packet, i), &maps[i]);
  join.last_seq = rtp_seq (packet);
  join.sent_any = true;
  return sent;
}

// Sends the join its share before the live packet `live_seq`; true when
// everything before it has gone (the client can be added now).
bool
advance (UdpJoiner &joiner, UdpJoin &join, uint16_t live_seq)
{
  if (join.burst.packets.empty ())
    return true;  // no burst: live from this packet on
  gsize budget = join.sent_any ? kShare : kFirstShare;
  while (join.next < join.burst.packets.size () && budget > 0) {
    GstBuffer *packet = join.burst.packets[join.next].get ();
    budget -= std::min (budget, gst_buffer_get_size (packet));
    send_packet (joiner, join, packet);
    join.burst.packets[join.next++].reset ();
  }
  if (join.next < join.burst.packets.size ())
    return false;
  if (!seq_after (live_seq, join.last_seq))
    return true;  // the live packet was in the burst already: the seam is here
  std::vector<BufferPtr> since;
  if (!joiner.cache->since (join.last_seq, live_seq, since)) {
    GST_WARNING ("camera %s: packets between the burst and the live ones are gone; "
        "the client may see a gap", joiner.camera.c_str ());
    return true;
  }
  for (BufferPtr &packet : since) {
    if (budget == 0)
      return false;
    budget -= std::min (budget, gst_buffer_get_size (packet.get ()));
    send_packet (joiner, join, packet.get ());
  }
  return true;
}

GstPadProbeReturn
on_live_packet (GstPad *pad, GstPadProbeInfo *info, gpointer data)
{
  UdpJoiner &joiner = **static_cast<std::shared_ptr<UdpJoiner> *> (data);
  GstBuffer *first = nullptr;
  if (info->type & GST_PAD_PROBE_TYPE_BUFFER)
    first = GST_PAD_PROBE_INFO_BUFFER (info);
  else if (info->type & GST_PAD_PROBE_TYPE_BUFFER_LIST)
    first = gst_buffer_list_length (GST_PAD_PROBE_INFO_BUFFER_LIST (info)) > 0
        ? gst_buffer_list_get (GST_PAD_PROBE_INFO_BUFFER_LIST (info), 0) : nullptr;
  if (!first)
    return GST_PAD_PROBE_OK;
  std::vector<std::shared_ptr<UdpJoin>> joining;
  {
    std::lock_guard<std::mutex> l (joiner.lock);
    for (const auto &join : joiner.joins)
      if (join->state == UdpJoin::State::joining && join->ready)
        joining.push_back (join);
  }
  if (joining.empty ())
    return GST_PAD_PROBE_OK;
  const uint16_t live_seq = rtp_seq (first);
  ElementPtr sink{gst_pad_get_parent_element (pad)};
  for (const auto &join : joining) {
    if (!advance (joiner, *join, live_seq))
      continue;
    {
      std::lock_guard<std::mutex> l (joiner.lock);
      auto it = std::find (joiner.joins.begin (), joiner.joins.end (), join);
      if (it == joiner.joins.end ())
        continue;  // removed meanwhile
      joiner.joins.erase (it);
    }
    join->state = UdpJoin::State::added;
    GST_DEBUG ("camera %s: %s:%d caught up, now live", joiner.camera.c_str (), join->host.c_str (),
        join->port);
    own_add = true;
    g_signal_emit_by_name (sink.get (), "add", join->host.c_str (), join->port, nullptr);
    own_add = false;
  }
  return GST_PAD_PROBE_OK;
}

void
on_add (GstElement *sink, const gchar *host, gint port, gpointer data)
{
  if (own_add || !host)
    return;
  UdpJoiner &joiner = **static_cast<std::shared_ptr<UdpJoiner> *> (data);
  GST_DEBUG ("camera %s: add %s:%d", joiner.camera.c_str (), host, port);
  bool held = false;
  {
    std::lock_guard<std::mutex> l (joiner.lock);
    for (const auto &join : joiner.joins)
      if (join->state == UdpJoin::State::waiting && join->port == port && join->host == host) {
        join->state = UdpJoin::State::joining;
        held = true;
        break;
      }
  }
  if (held)
    g_signal_stop_emission_by_name (sink, "add");
}

void
on_remove (GstElement *sink, const gchar *host, gint port, gpointer data)
{
  if (!host)
    return;
  UdpJoiner &joiner = **static_cast<std::shared_ptr<UdpJoiner> *> (data);
  bool ended = false;
  {
    std::lock_guard<std::mutex> l (joiner.lock);
    auto it = std::find_if (joiner.joins.begin (), joiner.joins.end (), [&] (const auto &join) {
      return join->port == port && join->host == host;
    });
    if (it != joiner.joins.end ()) {
      ended = (*it)->state == UdpJoin::State::joining;  // never added to the sink
      joiner.joins.erase (it);
    }
  }
  if (ended)
    g_signal_stop_emission_by_name (sink, "remove");
}

void
delete_joiner_ref (gpointer data, GClosure *)
{
  delete static_cast<std::shared_ptr<UdpJoiner> *> (data);
}

// The pipeline the media's streams are part of.
ObjectPtr<GstObject>
pipeline_of (GstRTSPMedia *media)
{
  ElementPtr element{gst_rtsp_media_get_element (media)};
  ObjectPtr<GstObject> parent{element ? gst_object_get_parent (GST_OBJECT (element.get ())) : nullptr};
  return parent && GST_IS_BIN (parent.get ()) ? std::move (parent) : nullptr;
}

// Whether `element` is the UDP sink that sends from the joiner's sockets.
bool
is_video_sink (const UdpJoiner &joiner, GstElement *element)
{
  GstElementFactory *factory = gst_element_get_factory (element);
  if (!factory || !g_str_equal (GST_OBJECT_NAME (factory), "multiudpsink"))
    return false;
  GSocket *v4 = nullptr;
  GSocket *v6 = nullptr;
  g_object_get (element, "socket", &v4, "socket-v6", &v6, nullptr);
  const bool ours = (v4 && v4 == joiner.socket_v4.get ()) || (v6 && v6 == joiner.socket_v6.get ());
  if (v4)
    g_object_unref (v4);
  if (v6)
    g_object_unref (v6);
  return ours;
}

ElementPtr
find_video_sink (const UdpJoiner &joiner, GstBin *pipeline)
{
  GstIterator *it = gst_bin_iterate_recurse (pipeline);
  GValue item = G_VALUE_INIT;
  ElementPtr found;
  while (!found && gst_iterator_next (it, &item) == GST_ITERATOR_OK) {
    auto *candidate = GST_ELEMENT (g_value_get_object (&item));
    if (is_video_sink (joiner, candidate))
      found = ref_object (candidate);
    g_value_reset (&item);
  }
  g_value_unset (&item);
  gst_iterator_free (it);
  return found;
}

// Holds joining clients back at `sink` and sends them their bursts.
void
hook_sink (const std::shared_ptr<UdpJoiner> &joiner, GstElement *sink)
{
  PadPtr input{gst_element_get_static_pad (sink, "sink")};
  if (!input || joiner->hooked.exchange (true))
    return;
  g_signal_connect_data (sink, "add", G_CALLBACK (on_add), new std::shared_ptr<UdpJoiner> (joiner),
      delete_joiner_ref, GConnectFlags (0));
  g_signal_connect_data (sink, "remove", G_CALLBACK (on_remove),
      new std::shared_ptr<UdpJoiner> (joiner), delete_joiner_ref, GConnectFlags (0));
  gst_pad_add_probe (input.get (), static_cast<GstPadProbeType> (GST_PAD_PROBE_TYPE_BUFFER
      | GST_PAD_PROBE_TYPE_BUFFER_LIST), on_live_packet, new std::shared_ptr<UdpJoiner> (joiner),
      [] (gpointer data) { delete static_cast<std::shared_ptr<UdpJoiner> *> (data); });
}

// A stream's UDP sink is made with its first UDP client's PLAY, after that
// client's join was registered (and before the sink's "add" for it).
void
on_element_added (GstBin *, GstBin *, GstElement *element, gpointer data)
{
  const std::shared_ptr<UdpJoiner> &joiner = *static_cast<std::shared_ptr<UdpJoiner> *> (data);
  if (!joiner->hooked && is_video_sink (*joiner, element))
    hook_sink (joiner, element);
}

// The media's joiner, made at its first UDP join and hooked to its video's
// UDP sink, now or when the sink is made; nullptr when the stream has no
// UDP socket.
std::shared_ptr<UdpJoiner>
joiner_of (GstRTSPMedia *media, GstRTSPStream *stream, const std::shared_ptr<GopCache> &cache,
    const std::string &camera)
{
  static std::mutex made;  // one joiner per media, whichever client comes first
  std::lock_guard<std::mutex> l (made);
  if (auto *existing = static_cast<std::shared_ptr<UdpJoiner> *> (
          g_object_get_qdata (G_OBJECT (media), joiner_quark ())))
    return *existing;
  auto joiner = std::make_shared<UdpJoiner> ();
  joiner->cache = cache;
  joiner->camera = camera;
  joiner->socket_v4.reset (gst_rtsp_stream_get_rtp_socket (stream, G_SOCKET_FAMILY_IPV4));
  joiner->socket_v6.reset (gst_rtsp_stream_get_rtp_socket (stream, G_SOCKET_FAMILY_IPV6));
  ObjectPtr<GstObject> pipeline = pipeline_of (media);
  if (!pipeline || (!joiner->socket_v4 && !joiner->socket_v6))
    return nullptr;
  if (ElementPtr sink = find_video_sink (*joiner, GST_BIN (pipeline.get ())))
    hook_sink (joiner, sink.get ());
  else
    g_signal_connect_data (pipeline.get (), "deep-element-added", G_CALLBACK (on_element_added),
        new std::shared_ptr<UdpJoiner> (joiner), delete_joiner_ref, GConnectFlags (0));
  g_object_set_qdata_full (G_OBJECT (media), joiner_quark (), new std::shared_ptr<UdpJoiner> (joiner),
      [] (gpointer data) { delete static_cast<std::shared_ptr<UdpJoiner> *> (data); });
  return joiner;
}

}  // namespace

std::shared_ptr<UdpJoin>
register_udp_join (GstRTSPMedia *media, GstRTSPStream *stream, const GstRTSPTransport *transport,
    std::shared_ptr<GopCache> cache, const std::string &camera)
{
  static gsize once = 0;
  if (g_once_init_enter (&once)) {
    GST_DEBUG_CATEGORY_INIT (instant_start_udp_debug, "camrelay-instant-start-udp", 0,
        "camrelay instant start, UDP clients");
    g_once_init_leave (&once, 1);
  }
  if (!media || !transport->destination || transport->client_port.min <= 0)
    return nullptr;
  GInetAddress *inet = g_inet_address_new_from_string (transport->destination);
  if (!inet)
    return nullptr;
  std::shared_ptr<UdpJoiner> joiner = joiner_of (media, stream, cache, camera);
  if (!joiner) {
    g_object_unref (inet);
    return nullptr;
  }
  auto join = std::make_shared<UdpJoin> ();
  join->joiner = joiner;
  join->host = transport->destination;
  join->port = transport->client_port.min;
  join->address.reset (g_inet_socket_address_new (inet, static_cast<guint16> (join->port)));
  g_object_unref (inet);
  std::lock_guard<std::mutex> l (joiner->lock);
  // A join whose client was never added (it went away before its PLAY took
  // effect) is forgotten after a while.
  const gint64 stale = g_get_monotonic_time () - kWaitingLifetimeUs;
  joiner->joins.erase (std::remove_if (joiner->joins.begin (), joiner->joins.end (),
      [stale] (const auto &j) { return j->state == UdpJoin::State::waiting && j->created_us < stale; }),
      joiner->joins.end ());
  joiner->joins.push_back (join);
  return join;
}

void
start_udp_join (UdpJoin &join, GopBurst burst)
{
  std::shared_ptr<UdpJoiner> joiner = join.joiner.lock ();
  if (!joiner)
    return;
  std::lock_guard<std::mutex> l (joiner->lock);
  join.burst = std::move (burst);
  join.ready = true;
}

}  // namespace camrelay::launcher
