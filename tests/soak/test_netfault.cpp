// Network faults between a camera and the relay (suite `netfault`, opt-in).
// The camera is a second camrelay serving a test:// camera inside a network
// namespace of its own, reachable over a veth pair (10.200.N.2 in the
// namespace, 10.200.N.1 here); the relay runs in this namespace and takes it
// twice, over TCP and over UDP, each watched by a client on 127.0.0.1.
// Each test applies one fault to the link for a while, then removes it:
//  - 5 % packet loss and 200 ms ± 50 ms delay with reordering (tc netem, in
//    both directions);
//  - a cut link (`ip link set down` for 10 s, then up).
// The relay must stay up, its clients must keep their sessions (no ERROR or
// EOS) and get live video again (not only fallback pictures) within a bound
// after the fault, and the relay's log must show the camera's state changes
// for the cut.  Needs root and iproute2; the netem tests skip, naming what is
// missing, where the kernel has no sch_netem.
#include <glib/gstdio.h>
#include <unistd.h>

#include <csignal>
#include <gst/gst.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "launcher/launcher_test_util.h"

namespace {

using namespace camrelay::launcher_test;

// Live video at 15 fps, as opposed to the fallback's one picture a second:
// this many frames within kLiveWindow.
constexpr int kLiveFrames = 20;
constexpr auto kLiveWindow = 3s;

// Runs `command` (bounded by the command itself); its stdout and stderr
// together in `output`; true when it exited with status 0.
bool
shell (const std::string &command, std::string *output = nullptr)
{
  gchar *out = nullptr;
  gchar *err = nullptr;
  gint wait_status = 0;
  GError *error = nullptr;
  const std::string quoted = "sh -c '" + command + "'";
  if (!g_spawn_command_line_sync (quoted.c_str (), &out, &err, &wait_status, &error)) {
    if (output)
      *output = error->message;
    g_error_free (error);
    return false;
  }
  if (output)
    *output = std::string (out ? out : "") + (err ? err : "");
  g_free (out);
  g_free (err);
  return g_spawn_check_wait_status (wait_status, nullptr);
}

std::string
trimmed (std::string text)
{
  while (!text.empty () && (text.back () == '\n' || text.back () == ' '))
    text.pop_back ();
  return text;
}

// A network namespace joined to this one by a veth pair; both are removed
// when it goes, whatever happened in between.  Names carry this process's
// id so that runs side by side do not collide.
class CameraNetwork {
 public:
  CameraNetwork ()
  {
    const int id = getpid () % 100000;
    const int subnet = 1 + getpid () % 250;
    namespace_ = "camrelay-nf-" + std::to_string (id);
    host_if_ = "crnf" + std::to_string (id) + "h";
    camera_if_ = "crnf" + std::to_string (id) + "c";
    host_ip_ = "10.200." + std::to_string (subnet) + ".1";
    camera_ip_ = "10.200." + std::to_string (subnet) + ".2";
  }

  ~CameraNetwork ()
  {
    if (link_made_)
      shell ("ip link del " + host_if_);  // takes its peer with it
    if (namespace_made_)
      shell ("ip netns del " + namespace_);
  }

  // Makes the namespace and the link; false with the reason in failure ().
  bool create ()
  {
    if (geteuid () != 0)
      return fail ("needs root (ip netns, veth and tc change the system's network)");
    gchar *ip = g_find_program_in_path ("ip");
    if (!ip)
      return fail ("needs the ip command (iproute2)");
    g_free (ip);
    std::string out;
    if (!shell ("ip netns add " + namespace_, &out))
      return fail ("`ip netns add` failed: " + trimmed (out));
    namespace_made_ = true;
    if (!shell ("ip link add " + host_if_ + " type veth peer name " + camera_if_, &out))
      return fail ("cannot make a veth pair: " + trimmed (out));
    link_made_ = true;
    const std::string in_ns = "ip -n " + namespace_ + " ";
    for (const std::string &command : {
             "ip link set " + camera_if_ + " netns " + namespace_,
             "ip addr add " + host_ip_ + "/24 dev " + host_if_,
             "ip link set " + host_if_ + " up",
             in_ns + "addr add " + camera_ip_ + "/24 dev " + camera_if_,
             in_ns + "link set " + camera_if_ + " up",
             in_ns + "link set lo up",
         }) {
      if (!shell (command, &out))
        return fail ("`" + command + "` failed: " + trimmed (out));
    }
    return true;
  }

  // netem with `parameters` on both ends of the link (each end delays or
  // drops what it sends); false with the reason in failure ().
  bool netem (const std::string &parameters)
  {
    std::string out;
    for (const std::string &command : {
             "tc qdisc replace dev " + host_if_ + " root netem " + parameters,
             "ip netns exec " + namespace_ + " tc qdisc replace dev " + camera_if_ + " root netem "
                 + parameters,
         }) {
      if (!shell (command, &out))
        return fail ("`" + command + "` failed: " + trimmed (out)
            + " (tc netem needs the kernel's sch_netem module)");
    }
    return true;
  }

  void clear_netem ()
  {
    shell ("tc qdisc del dev " + host_if_ + " root");
    shell ("ip netns exec " + namespace_ + " tc qdisc del dev " + camera_if_ + " root");
  }

  bool set_link (bool up)
  {
    return shell ("ip link set " + host_if_ + (up ? " up" : " down"));
  }

  const std::string &name () const { return namespace_; }
  const std::string &camera_ip () const { return camera_ip_; }
  const std::string &failure () const { return failure_; }

 private:
  bool fail (const std::string &why)
  {
    failure_ = why;
    return false;
  }

  std::string namespace_, host_if_, camera_if_, host_ip_, camera_ip_;
  bool namespace_made_ = false;
  bool link_made_ = false;
  std::string failure_;
};

// Waits until `client` gets live video: kLiveFrames frames within
// kLiveWindow.  Returns how long that took, or a negative value on timeout
// or if the client got ERROR or EOS.
double
wait_live (RtspClient &client, std::chrono::seconds timeout)
{
  const auto start = Clock::now ();
  std::deque<std::pair<Clock::time_point, int>> history;
  while (Clock::now () - start < timeout) {
    if (client.errors_or_eos () > 0)
      return -1;
    const auto now = Clock::now ();
    history.emplace_back (now, client.frames.load ());
    while (now - history.front ().first > kLiveWindow)
      history.pop_front ();
    if (history.back ().second - history.front ().second >= kLiveFrames)
      return std::chrono::duration<double> (now - start).count ();
    std::this_thread::sleep_for (100ms);
  }
  return -1;
}

// The camera in its namespace, the relay here taking it over TCP and UDP,
// and one client per relayed camera.
class NetFault : public ::testing::Test {
 protected:
  void SetUp () override
  {
    if (!network_.create ())
      GTEST_SKIP () << "network faults need a network namespace: " << network_.failure ();
  }

  // Starts the camera, the relay and the clients, and waits for live video.
  void start ()
  {
    camera_config_ = write_config ("[server]\nbind = \"" + network_.camera_ip ()
        + "\"\nport = 0\n\n[http]\nenabled = false\n\n"
        + camera_entry ("cam", "test://cam?width=320&height=240&framerate=15&gop=15&bitrate=300"));
    camera_ = std::make_unique<Launcher> (
        std::vector<std::string>{"ip", "netns", "exec", network_.name ()},
        std::vector<std::string>{"-c", camera_config_});
    const int camera_port = camera_->rtsp_port ();
    ASSERT_GT (camera_port, 0) << camera_->all_output ();
    ASSERT_NE (camera_->wait_line ("cam: connecting -> streaming", 20s), "") << camera_->all_output ();

    const std::string upstream = "rtsp://" + network_.camera_ip () + ":"
        + std::to_string (camera_port) + "/cam";
    relay_config_ = write_config ("[server]\nbind = \"127.0.0.1\"\nport = 0\n\n[http]\n"
                                  "enabled = false\n\n"
        + camera_entry ("over-tcp", upstream) + "transport = \"tcp\"\n\n"
        + camera_entry ("over-udp", upstream) + "transport = \"udp\"\n\n");
    relay_ = std::make_unique<Launcher> (std::vector<std::string>{"-c", relay_config_});
    const int port = relay_->rtsp_port ();
    ASSERT_GT (port, 0) << relay_->all_output ();
    for (const char *name : {"over-tcp", "over-udp"})
      ASSERT_NE (relay_->wait_line (std::string (name) + ": connecting -> streaming", 30s), "")
          << relay_->all_output ();
    const std::string base = "rtsp://127.0.0.1:" + std::to_string (port) + "/";
    clients_.push_back ({"over-tcp", std::make_unique<RtspClient> (base + "over-tcp", "tcp")});
    clients_.push_back ({"over-udp", std::make_unique<RtspClient> (base + "over-udp", "udp")});
    for (auto &[name, client] : clients_)
      ASSERT_GE (wait_live (*client, 30s), 0) << name << "\n" << relay_->all_output ();
  }

  // During a fault of `length`: the relay stays up and the clients get no
  // ERROR or EOS; they may get fallback pictures only.
  void ride_out (std::chrono::seconds length)
  {
    const auto end = Clock::now () + length;
    std::vector<int> before;
    for (auto &[name, client] : clients_)
      before.push_back (client->frames);
    while (Clock::now () < end) {
      ASSERT_FALSE (relay_->exited ()) << relay_->all_output ();
      for (auto &[name, client] : clients_)
        ASSERT_EQ (client->errors_or_eos (), 0) << name << " lost its session\n"
                                                << relay_->all_output ();
      std::this_thread::sleep_for (250ms);
    }
    for (size_t i = 0; i < clients_.size (); i++)
      std::printf ("[netfault] %s: %d frames during the fault\n", clients_[i].first.c_str (),
          clients_[i].second->frames - before[i]);
  }

  // After a fault: every client has live video again within `bound`.
  void expect_recovery (std::chrono::seconds bound)
  {
    for (auto &[name, client] : clients_) {
      const double took = wait_live (*client, bound);
      EXPECT_GE (took, 0) << name << ": no live video within " << bound.count ()
                          << " s after the fault\n" << relay_->all_output ();
      std::printf ("[netfault] %s: live video %.1f s after the fault ended (%d frames in all)\n",
          name.c_str (), took, client->frames.load ());
    }
  }

  void print_state_changes ()
  {
    const std::string log = relay_->all_output ();
    size_t at = 0;
    while ((at = log.find (" -> ", at)) != std::string::npos) {
      const size_t begin = log.rfind ('\n', at) + 1;
      const size_t end = log.find ('\n', at);
      std::printf ("[netfault] relay: %s\n", log.substr (begin, end - begin).c_str ());
      at = end;
    }
  }

  void TearDown () override
  {
    clients_.clear ();
    if (relay_)
      expect_clean_stop (*relay_, relay_config_);
    if (camera_)
      expect_clean_stop (*camera_, camera_config_);
  }

  CameraNetwork network_;  // declared first: removed after every process in it has stopped
  std::string camera_config_, relay_config_;
  std::unique_ptr<Launcher> camera_;
  std::unique_ptr<Launcher> relay_;
  std::vector<std::pair<std::string, std::unique_ptr<RtspClient>>> clients_;
};

TEST_F (NetFault, PacketLossOfFivePercent)
{
  if (!network_.netem ("loss 5%"))
    GTEST_SKIP () << network_.failure ();
  network_.clear_netem ();
  ASSERT_NO_FATAL_FAILURE (start ());
  ASSERT_TRUE (network_.netem ("loss 5%")) << network_.failure ();
  ASSERT_NO_FATAL_FAILURE (ride_out (20s));
  network_.clear_netem ();
  expect_recovery (20s);
  print_state_changes ();
}

TEST_F (NetFault, DelayWithJitterAndReordering)
{
  const std::string delay = "delay 200ms 50ms reorder 25% 50%";
  if (!network_.netem (delay))
    GTEST_SKIP () << network_.failure ();
  network_.clear_netem ();
  ASSERT_NO_FATAL_FAILURE (start ());
  ASSERT_TRUE (network_.netem (delay)) << network_.failure ();
  ASSERT_NO_FATAL_FAILURE (ride_out (20s));
  network_.clear_netem ();
  expect_recovery (20s);
  print_state_changes ();
}

// The link is cut for 10 s: longer than the stall timeout, so both relayed
// cameras go reconnecting, and they stream again once it is back.
TEST_F (NetFault, CutLinkForTenSeconds)
{
  ASSERT_NO_FATAL_FAILURE (start ());
  ASSERT_TRUE (network_.set_link (false));
  ASSERT_NO_FATAL_FAILURE (ride_out (10s));
  ASSERT_TRUE (network_.set_link (true));
  for (const char *name : {"over-tcp", "over-udp"}) {
    EXPECT_NE (relay_->wait_line (std::string (name) + ": streaming -> reconnecting", 1s), "")
        << relay_->all_output ();
    // Back: a second "connecting -> streaming" (backoff may be up to 16 s by now).
    EXPECT_TRUE (relay_->wait_count (std::string (name) + ": connecting -> streaming", 2, 45s))
        << relay_->all_output ();
  }
  expect_recovery (20s);
  print_state_changes ();
}

}  // namespace
