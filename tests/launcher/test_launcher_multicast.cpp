// Multicast in the camrelay launcher: cameras with multicast = true answer a
// multicast SETUP with a group of server.multicast_range of their own; the
// other cameras refuse it and keep serving unicast.  The RTSP side runs on
// 127.0.0.1 only; multicast data is sent over the loopback interface
// (server.multicast_iface = "lo").
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gio/gio.h>
#include <glib/gstdio.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <gst/app/app.h>
#include <gst/gst.h>
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "common/gstref.h"
#include "launcher_test_util.h"

namespace {

using namespace camrelay::launcher_test;

// Groups, ports and TTL no default would give, so that the answers are
// known to come from the configuration.
constexpr const char *kRange = "239.255.77.10-239.255.77.20";
constexpr uint32_t kFirstGroup = (239u << 24) | (255u << 16) | (77u << 8) | 10u;
constexpr uint32_t kLastGroup = (239u << 24) | (255u << 16) | (77u << 8) | 20u;
constexpr int kFirstPort = 5400;
constexpr int kTtl = 3;

std::string
multicast_config (const std::string &cameras)
{
  return std::string ("[server]\nbind = \"127.0.0.1\"\nport = 0\n")
      + "multicast_range = \"" + kRange + "\"\n"
      + "multicast_ports = \"" + std::to_string (kFirstPort) + "-" + std::to_string (kFirstPort + 99)
      + "\"\nmulticast_ttl = " + std::to_string (kTtl) + "\nmulticast_iface = \"lo\"\n\n"
      + "[http]\nenabled = false\n\n" + cameras;
}

// The value of `name=` in a Transport header ("" when absent).
std::string
transport_parameter (const std::string &transport, const std::string &name)
{
  for (const char *at = transport.c_str (); (at = std::strstr (at, (name + "=").c_str ())); at++) {
    if (at != transport.c_str () && at[-1] != ';')
      continue;
    const char *value = at + name.size () + 1;
    return std::string (value, std::strcspn (value, ";,"));
  }
  return "";
}

bool
has_flag (const std::string &transport, const std::string &flag)
{
  gchar **parts = g_strsplit (transport.c_str (), ";", -1);
  bool found = false;
  for (gchar **p = parts; *p; p++)
    found = found || flag == *p;
  g_strfreev (parts);
  return found;
}

uint32_t
ipv4 (const std::string &text)
{
  in_addr address{};
  return inet_pton (AF_INET, text.c_str (), &address) == 1 ? ntohl (address.s_addr) : 0;
}

struct MulticastSetup {
  RtspProbe::Response describe;
  RtspProbe::Response setup;
  std::string transport;
  std::string session;  // the session id, without ";timeout=..."
};

// DESCRIBE then SETUP of the camera's one stream asking for multicast.
MulticastSetup
setup_multicast (RtspProbe &probe, const std::string &camera)
{
  MulticastSetup result;
  result.describe = probe.request ("DESCRIBE", camera, {"Accept: application/sdp"});
  result.setup = probe.request ("SETUP", camera + "/stream=0", {"Transport: RTP/AVP;multicast"});
  result.transport = result.setup.header ("Transport");
  const std::string session = result.setup.header ("Session");
  result.session = session.substr (0, session.find (';'));
  return result;
}

// Multicast SETUP on two multicast cameras: each gets a group of the
// configured range, its own, the configured TTL and the first ports of the
// configured range; and PLAY starts.
TEST (LauncherMulticast, EachMulticastCameraGetsAGroupOfItsOwn)
{
  const std::string path = write_config (multicast_config (
      camera_entry ("east", "test://east?width=320&height=240") + "multicast = true\n\n"
      + camera_entry ("west", "test://west?width=320&height=240") + "multicast = true\n\n"));
  Launcher camrelay ({"-c", path});
  const int port = camrelay.rtsp_port ();
  ASSERT_GT (port, 0) << camrelay.all_output ();

  RtspProbe east (port);
  RtspProbe west (port);
  MulticastSetup a = setup_multicast (east, "east");
  MulticastSetup b = setup_multicast (west, "west");
  for (const MulticastSetup *s : {&a, &b}) {
    EXPECT_EQ (s->describe.status, "RTSP/1.0 200 OK");
    EXPECT_EQ (s->setup.status, "RTSP/1.0 200 OK") << camrelay.all_output ();
    EXPECT_TRUE (has_flag (s->transport, "multicast")) << s->transport;
    const uint32_t group = ipv4 (transport_parameter (s->transport, "destination"));
    EXPECT_GE (group, kFirstGroup) << s->transport;
    EXPECT_LE (group, kLastGroup) << s->transport;
    EXPECT_EQ (transport_parameter (s->transport, "ttl"), std::to_string (kTtl)) << s->transport;
    EXPECT_EQ (transport_parameter (s->transport, "port"),
        std::to_string (kFirstPort) + "-" + std::to_string (kFirstPort + 1))
        << s->transport;
  }
  EXPECT_NE (transport_parameter (a.transport, "destination"),
      transport_parameter (b.transport, "destination"))
      << "two cameras share a multicast group";

  EXPECT_EQ (east.request ("PLAY", "east", {"Session: " + a.session}).status, "RTSP/1.0 200 OK");
  // A second multicast client of the same camera joins the same group.
  RtspProbe again (port);
  MulticastSetup c = setup_multicast (again, "east");
  EXPECT_EQ (c.setup.status, "RTSP/1.0 200 OK");
  EXPECT_EQ (transport_parameter (c.transport, "destination"),
      transport_parameter (a.transport, "destination"));
  EXPECT_EQ (transport_parameter (c.transport, "port"), transport_parameter (a.transport, "port"));

  // A client asking for a larger TTL still gets the configured one.
  RtspProbe greedy (port);
  greedy.request ("DESCRIBE", "west", {"Accept: application/sdp"});
  RtspProbe::Response larger = greedy.request ("SETUP", "west/stream=0",
      {"Transport: RTP/AVP;multicast;ttl=" + std::to_string (kTtl + 100)});
  EXPECT_EQ (larger.status, "RTSP/1.0 200 OK");
  EXPECT_EQ (transport_parameter (larger.header ("Transport"), "ttl"), std::to_string (kTtl))
      << larger.header ("Transport");

  expect_clean_stop (camrelay, path);
}

// A camera without multicast = true refuses a multicast SETUP with 461
// Unsupported Transport; its unicast clients and the multicast camera's
// unicast clients are served.
TEST (LauncherMulticast, CameraWithoutMulticastRefusesItAndServesUnicast)
{
  const std::string path = write_config (multicast_config (
      camera_entry ("plain", "test://plain?width=320&height=240")
      + camera_entry ("shared", "test://shared?width=320&height=240") + "multicast = true\n\n"));
  Launcher camrelay ({"-c", path});
  const int port = camrelay.rtsp_port ();
  ASSERT_GT (port, 0) << camrelay.all_output ();

  RtspProbe probe (port);
  MulticastSetup refused = setup_multicast (probe, "plain");
  EXPECT_EQ (refused.describe.status, "RTSP/1.0 200 OK");
  EXPECT_EQ (refused.setup.status, "RTSP/1.0 461 Unsupported transport");
  EXPECT_EQ (refused.transport, "");

  const std::string base = "rtsp://127.0.0.1:" + std::to_string (port) + "/";
  RtspClient udp (base + "plain", "udp");
  RtspClient tcp (base + "plain", "tcp");
  RtspClient shared_tcp (base + "shared", "tcp");
  EXPECT_TRUE (udp.wait_frames (10, 20s)) << camrelay.all_output ();
  EXPECT_TRUE (tcp.wait_frames (10, 20s)) << camrelay.all_output ();
  EXPECT_TRUE (shared_tcp.wait_frames (10, 20s)) << camrelay.all_output ();

  expect_clean_stop (camrelay, path);
}

// The IPv4 packets that arrive on the loopback interface, as a receiver on
// another machine would get them.  A player on this machine cannot receive
// them itself: gst-rtsp-server binds the group's ports for its own sockets
// (RTCP) without SO_REUSEADDR, so no other socket may bind them; hence a
// packet socket, which needs CAP_NET_RAW.
class LoopbackCapture {
 public:
  LoopbackCapture ()
  {
    fd_ = socket (AF_PACKET, SOCK_DGRAM, htons (ETH_P_IP));
    if (fd_ < 0) {
      why_ = std::string ("no packet socket: ") + std::strerror (errno);
      return;
    }
    sockaddr_ll address{};
    address.sll_family = AF_PACKET;
    address.sll_protocol = htons (ETH_P_IP);
    address.sll_ifindex = static_cast<int> (if_nametoindex ("lo"));
    if (bind (fd_, reinterpret_cast<sockaddr *> (&address), sizeof address) != 0) {
      why_ = std::string ("cannot capture on lo: ") + std::strerror (errno);
      close (fd_);
      fd_ = -1;
    }
  }
  ~LoopbackCapture ()
  {
    if (fd_ >= 0)
      close (fd_);
  }
  LoopbackCapture (const LoopbackCapture &) = delete;
  LoopbackCapture &operator= (const LoopbackCapture &) = delete;

  bool ok () const { return fd_ >= 0; }
  const std::string &why () const { return why_; }

  // The payload of the next UDP datagram received (not sent) on lo for
  // group:port, waiting at most until `deadline`; false when none came.
  bool next (uint32_t group, uint16_t port, Clock::time_point deadline, std::vector<uint8_t> &payload)
  {
    uint8_t packet[65536];
    while (true) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds> (deadline - Clock::now ());
      if (left.count () <= 0)
        return false;
      pollfd wait{fd_, POLLIN, 0};
      if (poll (&wait, 1, static_cast<int> (left.count ())) <= 0)
        continue;
      sockaddr_ll from{};
      socklen_t from_size = sizeof from;
      const ssize_t size = recvfrom (fd_, packet, sizeof packet, 0,
          reinterpret_cast<sockaddr *> (&from), &from_size);
      if (size < static_cast<ssize_t> (sizeof (iphdr)) || from.sll_pkttype == PACKET_OUTGOING)
        continue;
      const auto *ip = reinterpret_cast<const iphdr *> (packet);
      const size_t header = ip->ihl * 4u;
      if (ip->protocol != IPPROTO_UDP || ntohl (ip->daddr) != group
          || static_cast<size_t> (size) < header + sizeof (udphdr))
        continue;
      const auto *udp = reinterpret_cast<const udphdr *> (packet + header);
      if (ntohs (udp->dest) != port)
        continue;
      payload.assign (packet + header + sizeof (udphdr), packet + size);
      return true;
    }
  }

 private:
  int fd_ = -1;
  std::string why_;
};

// Whether this machine carries multicast over lo at all: one datagram sent
// to a group through lo, with multicast loopback off as gst-rtsp-server does,
// must arrive on lo.
bool
loopback_carries_multicast (LoopbackCapture &capture, std::string &why)
{
  const uint32_t group = (239u << 24) | (255u << 16) | (77u << 8) | 250u;
  const uint16_t port = 5998;
  const int sender = socket (AF_INET, SOCK_DGRAM, 0);
  ip_mreqn iface{};
  iface.imr_ifindex = static_cast<int> (if_nametoindex ("lo"));
  const unsigned char off = 0;
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons (port);
  to.sin_addr.s_addr = htonl (group);
  const char hello[] = "camrelay multicast probe";
  if (sender < 0 || setsockopt (sender, IPPROTO_IP, IP_MULTICAST_IF, &iface, sizeof iface) != 0
      || setsockopt (sender, IPPROTO_IP, IP_MULTICAST_LOOP, &off, sizeof off) != 0
      || sendto (sender, hello, sizeof hello, 0, reinterpret_cast<sockaddr *> (&to), sizeof to) < 0) {
    why = std::string ("cannot send multicast through lo: ") + std::strerror (errno);
    if (sender >= 0)
      close (sender);
    return false;
  }
  close (sender);
  std::vector<uint8_t> payload;
  if (!capture.next (group, port, Clock::now () + 2s, payload)) {
    why = "a multicast datagram sent through lo never arrived on it";
    return false;
  }
  return true;
}

// appsrc (RTP as received) ! rtph264depay ! h264parse ! avdec_h264 ! appsink,
// counting decoded frames.
struct RtpDecoder {
  camrelay::ElementPtr pipeline;
  camrelay::ElementPtr src;
  camrelay::ElementPtr sink;
  int frames = 0;

  RtpDecoder ()
  {
    GError *error = nullptr;
    pipeline.reset (gst_parse_launch (
        "appsrc name=src is-live=true format=time do-timestamp=true "
        "caps=\"application/x-rtp,media=video,encoding-name=H264,clock-rate=90000,payload=96\" "
        "! rtph264depay ! h264parse ! avdec_h264 ! appsink name=sink sync=false",
        &error));
    if (error) {
      ADD_FAILURE () << error->message;
      g_error_free (error);
      return;
    }
    src.reset (gst_bin_get_by_name (GST_BIN (pipeline.get ()), "src"));
    sink.reset (gst_bin_get_by_name (GST_BIN (pipeline.get ()), "sink"));
    gst_element_set_state (pipeline.get (), GST_STATE_PLAYING);
  }
  ~RtpDecoder ()
  {
    if (pipeline)
      gst_element_set_state (pipeline.get (), GST_STATE_NULL);
  }

  void push (const std::vector<uint8_t> &packet)
  {
    GstBuffer *buffer = gst_buffer_new_memdup (packet.data (), packet.size ());
    gst_app_src_push_buffer (GST_APP_SRC (src.get ()), buffer);
    while (GstSample *sample = gst_app_sink_try_pull_sample (GST_APP_SINK (sink.get ()), 0)) {
      gst_sample_unref (sample);
      frames++;
    }
  }
};

// A multicast client's data: after SETUP and PLAY, the camera's RTP arrives
// at the group and ports of the Transport reply and decodes into frames.
TEST (LauncherMulticast, MulticastPacketsDecodeIntoFrames)
{
  LoopbackCapture capture;
  if (!capture.ok ())
    GTEST_SKIP () << "cannot watch multicast on lo (" << capture.why ()
                  << "); this test needs CAP_NET_RAW";
  std::string why;
  if (!loopback_carries_multicast (capture, why))
    GTEST_SKIP () << "this machine does not carry multicast over lo: " << why;

  const std::string path = write_config (multicast_config (
      camera_entry ("east", "test://east?width=320&height=240") + "multicast = true\n\n"));
  Launcher camrelay ({"-c", path});
  const int port = camrelay.rtsp_port ();
  ASSERT_GT (port, 0) << camrelay.all_output ();

  RtspProbe probe (port);
  MulticastSetup s = setup_multicast (probe, "east");
  ASSERT_EQ (s.setup.status, "RTSP/1.0 200 OK") << camrelay.all_output ();
  const uint32_t group = ipv4 (transport_parameter (s.transport, "destination"));
  const auto rtp_port = static_cast<uint16_t> (std::atoi (transport_parameter (s.transport, "port").c_str ()));
  ASSERT_NE (group, 0u) << s.transport;
  ASSERT_EQ (probe.request ("PLAY", "east", {"Session: " + s.session}).status, "RTSP/1.0 200 OK");

  RtpDecoder decoder;
  const auto deadline = Clock::now () + 20s;
  std::vector<uint8_t> packet;
  int packets = 0;
  while (decoder.frames < 10 && capture.next (group, rtp_port, deadline, packet)) {
    packets++;
    decoder.push (packet);
  }
  EXPECT_GE (decoder.frames, 10) << packets << " RTP packets to the group\n" << camrelay.all_output ();

  EXPECT_EQ (probe.request ("TEARDOWN", "east", {"Session: " + s.session}).status,
      "RTSP/1.0 200 OK");
  expect_clean_stop (camrelay, path);
}

}  // namespace
