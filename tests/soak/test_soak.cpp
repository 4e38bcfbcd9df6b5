// The soak and chaos run of the launcher (suite `soak`, opt-in): the real
// camrelay binary relaying four cameras to about fifty clients for
// CAMRELAY_SOAK_SECONDS (default 1800), while a schedule hurts it every
// 30 to 60 s:
//  - cameras of this process (FakeRtspCamera) are killed and restarted,
//    stalled, replaced by a server answering garbage, or change resolution;
//  - test:// cameras drop, stall, resize and send garbage by themselves;
//  - clients churn (closed and opened again), stall (PLAY, then never read)
//    and vanish without TEARDOWN, over TCP and UDP.
// Meanwhile the camrelay process is sampled every 5 s (RSS, threads, fds).
// It fails if a steady client (one that kept reading all along) got ERROR or
// EOS or went without frames for longer than kMaxSteadyGap, if RSS grew by
// more than CAMRELAY_SOAK_RSS_MB (default 20) after the warm-up, or if
// threads or fds did not come back near their warm-up level once the churn
// was over.  The fault schedule is random with a printed seed
// (CAMRELAY_SOAK_SEED to replay one).
#include <glib/gstdio.h>

#include <csignal>
#include <gst/gst.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "fake_camera.h"
#include "soak/soak_util.h"

namespace {

using namespace camrelay::launcher_test;
using namespace camrelay::soak_test;

// Longest a steady client may go without a frame.  The worst camera fault
// (a stall, noticed after camerasrc's 5 s timeout) leaves clients a few
// seconds without a new picture before the fallback repeats the last one.
constexpr double kMaxSteadyGap = 15.0;
// Threads and fds the relay may keep above its warm-up level at the end.
constexpr long kThreadSlack = 8;
constexpr long kFdSlack = 8;
// The relay's session timeout in this run: vanished clients are reaped
// after it, so the end of the run can wait for that.
constexpr int kSessionTimeout = 10;
constexpr int kWidth = 320;
constexpr int kHeight = 240;
constexpr int kSmallWidth = 176;
constexpr int kSmallHeight = 144;

double
seconds_since (Clock::time_point start)
{
  return std::chrono::duration<double> (Clock::now () - start).count ();
}

// A camera of this process that the schedule hurts.  One fault at a time.
struct ControlledCamera {
  std::string name;
  std::unique_ptr<camtest::FakeRtspCamera> camera;
  std::unique_ptr<camtest::TcpServer> garbage;  // on the camera's port while it answers garbage
  guint16 port = 0;
  bool small = false;
  double busy_until = 0;
};

// A client that must keep its session and its frames all along.
struct SteadyClient {
  std::string camera;
  std::string protocol;
  bool decode = false;
  std::unique_ptr<RtspClient> client;
  double first_frame_s = -1;
  double max_gap_s = 0;
  double worst_gap_at_s = 0;
  int errors = 0;
};

struct ChurnClient {
  std::string camera;
  const char *protocol;
  std::unique_ptr<RtspClient> client;
};

struct StalledClient {
  std::unique_ptr<PlayingProbe> probe;
  double until_s;
};

struct Counters {
  std::map<std::string, int> faults;  // kind -> how many
  int churned = 0;
  int stalled = 0;
  int vanished = 0;
  int refused = 0;  // probes the relay refused (camera without video yet...)
};

class Soak {
 public:
  Soak (long duration_s, unsigned seed) : duration_s_ (duration_s), random_ (seed) {}

  void run ()
  {
    for (const char *name : {"rtsp-a", "rtsp-b"}) {
      camtest::RtspCameraOptions options;
      options.width = kWidth;
      options.height = kHeight;
      options.fps = 15;
      auto camera = std::make_unique<ControlledCamera> ();
      camera->name = name;
      camera->camera = std::make_unique<camtest::FakeRtspCamera> (options);
      ASSERT_TRUE (camera->camera->start ());
      camera->port = camera->camera->port ();
      controlled_.push_back (std::move (camera));
    }
    // The synthetic cameras fault by themselves: synth-a drops its
    // connection every 47 s and changes size every 19 s; synth-b pauses 3 s
    // (shorter than the stall timeout: no reconnect) 20 s into each
    // connection, and sends garbage from 40 s on (a stall, then a reconnect).
    const std::string common = "width=" + std::to_string (kWidth) + "&height="
        + std::to_string (kHeight) + "&framerate=15&gop=15&bitrate=300";
    std::string cameras;
    for (auto &c : controlled_)
      cameras += camera_entry (c->name, c->camera->uri ());
    cameras += camera_entry ("synth-a", "test://synth-a?" + common + "&drop-after=47&resize-every=19");
    cameras += camera_entry ("synth-b",
        "test://synth-b?" + common + "&stall-after=20&stall-duration=3&garbage-after=40"
        + "&garbage-duration=8");
    config_path_ = write_config ("[server]\nbind = \"127.0.0.1\"\nport = 0\nsession_timeout = "
        + std::to_string (kSessionTimeout) + "\n\n[http]\nbind = \"127.0.0.1\"\nport = 0\n\n"
        + cameras);
    camera_names_ = {"rtsp-a", "rtsp-b", "synth-a", "synth-b"};

    relay_ = std::make_unique<Launcher> (std::vector<std::string>{"-c", config_path_});
    port_ = relay_->rtsp_port ();
    ASSERT_GT (port_, 0) << relay_->all_output ();
    http_port_ = relay_->http_port ();
    ASSERT_GT (http_port_, 0) << relay_->all_output ();
    pid_ = relay_->pid ();
    ASSERT_GT (pid_, 0);
    for (const std::string &name : camera_names_)
      ASSERT_NE (relay_->wait_line (name + ": connecting -> streaming", 30s), "")
          << relay_->all_output ();

    start_ = Clock::now ();
    open_clients ();
    const double warm_up_s = std::clamp (duration_s_ / 5.0, 20.0, 300.0);
    std::printf ("[soak] %ld s, warm-up %.0f s, %zu steady + %zu churning clients, "
                 "relay pid %d on port %d\n",
        duration_s_, warm_up_s, steady_.size (), churn_.size (), pid_, port_);

    double next_sample = 0;
    double next_event = uniform (30, 60);
    bool baseline_taken = false;
    while (seconds_since (start_) < duration_s_) {
      const double now = seconds_since (start_);
      if (relay_->exited ()) {
        ADD_FAILURE () << "camrelay exited during the run\n" << relay_->all_output ();
        break;
      }
      run_due (now);
      watch_steady (now);
      if (now >= next_sample) {
        samples_.push_back (sample ());
        next_sample += 5;
        if (!baseline_taken && now >= warm_up_s) {
          baseline_ = samples_.back ();
          baseline_taken = true;
        }
      }
      if (now >= next_event) {
        fault_event (now);
        next_event = now + uniform (30, 60);
      }
      std::this_thread::sleep_for (250ms);
    }
    if (!baseline_taken && !samples_.empty ())
      baseline_ = samples_.back ();

    finish ();
  }

 private:
  double uniform (double low, double high)
  {
    return std::uniform_real_distribution<double> (low, high) (random_);
  }
  size_t pick (size_t count) { return std::uniform_int_distribution<size_t> (0, count - 1) (random_); }

  ProcessSample sample ()
  {
    ProcessSample s = sample_process (pid_, seconds_since (start_));
    s.clients = relay_clients (http_port_);
    return s;
  }

  std::string url (const std::string &camera) const
  {
    return "rtsp://127.0.0.1:" + std::to_string (port_) + "/" + camera;
  }

  // Per camera: steady clients decoding over TCP and UDP and cheaper ones
  // that only depayload (5 x 4 = 20), and 5 churning clients (20).
  void open_clients ()
  {
    for (const std::string &camera : camera_names_) {
      const std::vector<std::pair<const char *, bool>> kinds = {
          {"tcp", true}, {"udp", true}, {"tcp", false}, {"udp", false}, {"tcp", false}};
      for (auto [protocol, decode] : kinds) {
        SteadyClient steady;
        steady.camera = camera;
        steady.protocol = protocol;
        steady.decode = decode;
        steady.client = std::make_unique<RtspClient> (url (camera), protocol, decode);
        steady_.push_back (std::move (steady));
      }
      for (int i = 0; i < 5; i++) {
        const char *protocol = i % 2 ? "udp" : "tcp";
        churn_.push_back (ChurnClient{camera, protocol,
            std::make_unique<RtspClient> (url (camera), protocol, false)});
      }
    }
  }

  // Records each steady client's first frame, its longest gap between
  // frames, and any ERROR or EOS.
  void watch_steady (double now)
  {
    const gint64 now_us = g_get_monotonic_time ();
    for (SteadyClient &s : steady_) {
      s.errors += s.client->errors_or_eos ();
      if (s.client->frames == 0)
        continue;
      if (s.first_frame_s < 0)
        s.first_frame_s = now;
      const double gap = (now_us - s.client->last_frame_us) / 1e6;
      if (gap > s.max_gap_s) {
        s.max_gap_s = gap;
        s.worst_gap_at_s = now;
      }
    }
  }

  void at (double when, std::function<void ()> action) { pending_.push_back ({when, std::move (action)}); }

  void run_due (double now)
  {
    // Actions may schedule more: run those whose time came, then keep the rest.
    std::vector<std::pair<double, std::function<void ()>>> due;
    auto later = std::stable_partition (pending_.begin (), pending_.end (),
        [now] (const auto &p) { return p.first > now; });
    std::move (later, pending_.end (), std::back_inserter (due));
    pending_.erase (later, pending_.end ());
    for (auto &[when, action] : due)
      action ();
    for (auto it = stalled_.begin (); it != stalled_.end ();) {
      if (it->until_s <= now)
        it = stalled_.erase (it);  // the connection closes, no TEARDOWN
      else
        ++it;
    }
  }

  // One camera fault on an idle camera of this process, and client churn.
  void fault_event (double now)
  {
    std::vector<ControlledCamera *> idle;
    for (auto &c : controlled_)
      if (c->busy_until <= now)
        idle.push_back (c.get ());
    if (!idle.empty ()) {
      if (deck_.empty ()) {
        deck_ = {"reboot", "stall", "garbage", "resize"};
        std::shuffle (deck_.begin (), deck_.end (), random_);
      }
      const std::string kind = deck_.back ();
      deck_.pop_back ();
      camera_fault (*idle[pick (idle.size ())], kind, now);
    }
    churn (now);
  }

  void camera_fault (ControlledCamera &c, const std::string &kind, double now)
  {
    const double length = uniform (5, 15);
    counters_.faults[kind]++;
    std::printf ("[soak] %6.1f s: %s: %s", now, c.name.c_str (), kind.c_str ());
    if (kind == "reboot") {
      std::printf (" for %.1f s\n", length);
      c.camera->stop ();
      at (now + length, [&c] { EXPECT_TRUE (c.camera->restart ()) << c.name; });
    } else if (kind == "stall") {
      std::printf (" for %.1f s\n", length);
      c.camera->stall ();
      at (now + length, [&c] { c.camera->resume (); });
    } else if (kind == "garbage") {
      std::printf (" for %.1f s\n", length);
      c.camera->stop ();
      c.garbage = std::make_unique<camtest::TcpServer> (camtest::garbage_handler ());
      EXPECT_TRUE (c.garbage->start (c.port)) << c.name;
      at (now + length, [&c] {
        c.garbage->stop ();
        c.garbage.reset ();
        EXPECT_TRUE (c.camera->restart ()) << c.name;
      });
    } else {
      c.small = !c.small;
      std::printf (" to %dx%d\n", c.small ? kSmallWidth : kWidth, c.small ? kSmallHeight : kHeight);
      EXPECT_TRUE (c.camera->switch_resolution (c.small ? kSmallWidth : kWidth,
          c.small ? kSmallHeight : kHeight));
    }
    c.busy_until = now + length + 1;
  }

  // A quarter of the churning clients are closed and opened again; two
  // raw clients start playing and stall for 15 to 45 s; two play and vanish
  // at once (one over TCP, one asking for UDP to ports nobody reads).
  void churn (double now)
  {
    for (size_t i = 0; i < churn_.size () / 4; i++) {
      ChurnClient &c = churn_[pick (churn_.size ())];
      c.client.reset ();
      c.client = std::make_unique<RtspClient> (url (c.camera), c.protocol, false);
      counters_.churned++;
    }
    for (int i = 0; i < 2; i++) {
      auto probe = std::make_unique<PlayingProbe> (port_, camera_names_[pick (camera_names_.size ())],
          "RTP/AVP/TCP;unicast;interleaved=0-1");
      if (!probe->playing ()) {
        counters_.refused++;
        continue;
      }
      stalled_.push_back ({std::move (probe), now + uniform (15, 45)});
      counters_.stalled++;
    }
    for (const char *transport : {"RTP/AVP/TCP;unicast;interleaved=0-1",
             "RTP/AVP;unicast;client_port=9-10"}) {
      PlayingProbe probe (port_, camera_names_[pick (camera_names_.size ())], transport);
      if (probe.playing ())
        counters_.vanished++;
      else
        counters_.refused++;
    }
    std::printf ("[soak] %6.1f s: churn: %zu clients reopened, %zu stalled now, %d vanished so far\n",
        now, churn_.size () / 4, stalled_.size (), counters_.vanished);
  }

  // Ends the faults, lets every camera recover, closes the churning and
  // stalled clients, waits (bounded) for the relay to free what they held,
  // then checks the steady clients and the resources.
  void finish ()
  {
    double now = seconds_since (start_);
    // Faults in progress end now (restarts, resumes).
    for (auto &p : pending_)
      p.second ();
    pending_.clear ();
    churn_.clear ();
    stalled_.clear ();

    // Every steady client gets frames again.
    const double recovery_start = seconds_since (start_);
    while (seconds_since (start_) < recovery_start + 30) {
      watch_steady (seconds_since (start_));
      bool all = true;
      for (SteadyClient &s : steady_)
        all = all && s.client->frames > 0
            && g_get_monotonic_time () - s.client->last_frame_us < 2 * G_USEC_PER_SEC;
      if (all)
        break;
      std::this_thread::sleep_for (250ms);
    }

    // Sessions of vanished clients time out: wait until the relay holds
    // only the steady clients' sessions, and threads and fds are back near
    // the warm-up level (bounded: the session timeout, the relay's cleanup
    // period and some slack).
    ProcessSample last;
    const double settle_start = seconds_since (start_);
    while (true) {
      now = seconds_since (start_);
      watch_steady (now);
      last = sample ();
      if (last.valid () && last.clients == static_cast<long> (steady_.size ())
          && last.threads <= baseline_.threads + kThreadSlack
          && last.fds <= baseline_.fds + kFdSlack)
        break;
      if (now > settle_start + kSessionTimeout + 30)
        break;
      std::this_thread::sleep_for (1s);
    }
    samples_.push_back (last);
    const double settle_s = seconds_since (start_) - settle_start;

    print_summary (settle_s);

    const long rss_bound_kib = env_long ("CAMRELAY_SOAK_RSS_MB", 20) * 1024;
    ASSERT_TRUE (last.valid ()) << "camrelay is gone\n" << relay_->all_output ();
    EXPECT_LE (last.rss_kib - baseline_.rss_kib, rss_bound_kib)
        << "RSS grew after the warm-up (KiB)";
    EXPECT_LE (last.threads, baseline_.threads + kThreadSlack) << "threads grew";
    EXPECT_LE (last.fds, baseline_.fds + kFdSlack) << "fds grew";
    EXPECT_EQ (last.clients, static_cast<long> (steady_.size ()))
        << "the relay still holds sessions of clients that left";
    for (size_t i = 0; i < steady_.size (); i++) {
      const SteadyClient &s = steady_[i];
      EXPECT_EQ (s.errors, 0) << "steady client " << i << " (" << s.camera << ", " << s.protocol
                              << ") got ERROR or EOS";
      EXPECT_GT (s.client->frames, 0) << "steady client " << i << " (" << s.camera
                                      << ") never got a frame";
      EXPECT_LE (s.max_gap_s, kMaxSteadyGap)
          << "steady client " << i << " (" << s.camera << ", " << s.protocol
          << ") went " << s.max_gap_s << " s without a frame, until " << s.worst_gap_at_s << " s";
    }
    steady_.clear ();
    expect_clean_stop (*relay_, config_path_);
    for (auto &c : controlled_) {
      if (c->garbage)
        c->garbage->stop ();
      c->camera->stop ();
    }
  }

  void print_summary (double settle_s)
  {
    std::printf ("\n[soak] resources of camrelay (pid %d), every 5 s:\n", pid_);
    std::printf ("[soak] %8s %10s %8s %6s %8s\n", "t (s)", "RSS (KiB)", "threads", "fds", "clients");
    // At most ~40 rows: long runs print every n-th sample, and the last.
    const size_t step = std::max<size_t> (1, samples_.size () / 40);
    for (size_t i = 0; i < samples_.size (); i++)
      if (i % step == 0 || i + 1 == samples_.size ())
        std::printf ("[soak] %8.1f %10ld %8ld %6ld %8ld%s\n", samples_[i].at_s,
            samples_[i].rss_kib, samples_[i].threads, samples_[i].fds, samples_[i].clients,
            samples_[i].at_s == baseline_.at_s ? "  <- end of warm-up (baseline)"
                : i + 1 == samples_.size () ? "  <- end, churn over" : "");
    const ProcessSample &last = samples_.back ();
    long peak_rss = 0;
    for (const ProcessSample &s : samples_)
      peak_rss = std::max (peak_rss, s.rss_kib);
    std::printf ("[soak] RSS %ld -> %ld KiB (%+ld KiB after warm-up, peak %ld), threads %ld -> %ld, "
                 "fds %ld -> %ld, relay clients %ld -> %ld (settled in %.0f s)\n",
        baseline_.rss_kib, last.rss_kib, last.rss_kib - baseline_.rss_kib, peak_rss,
        baseline_.threads, last.threads, baseline_.fds, last.fds, baseline_.clients, last.clients,
        settle_s);
    std::printf ("[soak] first sample: RSS %ld KiB, threads %ld, fds %ld\n", samples_[0].rss_kib,
        samples_[0].threads, samples_[0].fds);
    std::printf ("[soak] faults:");
    for (auto &[kind, count] : counters_.faults)
      std::printf (" %s %d", kind.c_str (), count);
    std::printf ("; clients reopened %d, stalled %d, vanished %d, refused %d\n", counters_.churned,
        counters_.stalled, counters_.vanished, counters_.refused);
    std::printf ("[soak] steady clients: camera  protocol decode  frames  longest gap (s)\n");
    for (const SteadyClient &s : steady_)
      std::printf ("[soak]   %-8s %-4s %-5s %7d %6.1f\n", s.camera.c_str (), s.protocol.c_str (),
          s.decode ? "yes" : "no", s.client->frames.load (), s.max_gap_s);
    std::fflush (stdout);
  }

  long duration_s_;
  std::mt19937 random_;
  std::vector<std::unique_ptr<ControlledCamera>> controlled_;
  std::vector<std::string> camera_names_;
  std::string config_path_;
  std::unique_ptr<Launcher> relay_;
  int port_ = 0;
  int http_port_ = 0;
  int pid_ = 0;
  Clock::time_point start_;
  std::vector<SteadyClient> steady_;
  std::vector<ChurnClient> churn_;
  std::vector<StalledClient> stalled_;
  std::vector<std::pair<double, std::function<void ()>>> pending_;
  std::vector<std::string> deck_;
  std::vector<ProcessSample> samples_;
  ProcessSample baseline_;
  Counters counters_;
};

TEST (Soak, FaultsAndChurnKeepSteadyClientsAndResourcesFlat)
{
  setvbuf (stdout, nullptr, _IOLBF, 0);  // progress lines as they come, under meson -v
  const long duration_s = env_long ("CAMRELAY_SOAK_SECONDS", 1800);
  const unsigned seed = static_cast<unsigned> (env_long ("CAMRELAY_SOAK_SEED", 20240611));
  std::printf ("[soak] seed %u (CAMRELAY_SOAK_SEED=%u replays this schedule)\n", seed, seed);
  Soak soak (duration_s, seed);
  soak.run ();
}

}  // namespace
