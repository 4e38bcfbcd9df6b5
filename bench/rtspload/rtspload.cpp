// rtspload: hundreds of RTSP clients from one process, to measure an RTSP
// server (camrelay, or a baseline relay) rather than itself.
//
//   rtspload --url rtsp://127.0.0.1:8554/test --clients 400 --duration 20 --transport tcp
//
// Each client does DESCRIBE, SETUP (TCP-interleaved or UDP), PLAY, then counts
// what arrives: RTP sequence gaps, frames (a new RTP timestamp), keyframes,
// time to the first packet and keyframe, the longest gap between frames, bytes.
// At the end it prints one aggregate block (and per-client lines with
// --verbose, and everything with --json).  See bench/README.md.
#include <getopt.h>
#include <netdb.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "rtsp_client.h"
#include "worker.h"

using namespace rtspload;

namespace {

std::atomic<bool> interrupted{false};

void
on_signal (int)
{
  interrupted.store (true);
}

// SIGUSR1: mark this instant (clock_gettime is async-signal-safe).
void
on_mark (int)
{
  mark_us.store (now_us ());
}

struct Options {
  std::string url;
  int clients = 1;
  bool udp = false;
  double duration_s = 10, ramp_s = 0;
  std::string user, password;
  int stall_clients = 0;
  double stall_after_s = 5, stall_for_s = 5;
  double churn_s = 0;
  int threads = 1;
  std::string json;
  bool quiet = false, verbose = false;
  int watch_pid = 0;
  double request_timeout_s = 10;
  double poll_interval_ms = 0;
  bool mark_at_start = false;
};

void
usage (FILE *out)
{
  fprintf (out,
      "Usage: rtspload --url rtsp://HOST[:PORT]/PATH [options]\n"
      "\n"
      "  -u, --url URL          the stream (required); rtsp://user:password@... also works\n"
      "  -n, --clients N        clients (default 1)\n"
      "  -t, --transport T      tcp (RTP interleaved in the RTSP connection, default) or udp\n"
      "  -d, --duration S       length of the run in seconds, ramp included (default 10)\n"
      "  -r, --ramp S           start the clients evenly over S seconds (default 0: at once)\n"
      "      --user NAME        for Basic or Digest authentication after a 401\n"
      "      --password TEXT\n"
      "      --stall K          K clients (spread over the range) stop reading their socket...\n"
      "      --stall-after S    ...S seconds after the start (default 5)...\n"
      "      --stall-for S      ...for S seconds (default 5); they are reported apart\n"
      "      --churn S          each client drops its connection (no TEARDOWN) and reconnects\n"
      "                         every S seconds, +-20 %% (default 0: never)\n"
      "      --threads N        worker threads, each with its own epoll and 1/N of the clients\n"
      "                         (default 1)\n"
      "      --timeout S        a set-up request unanswered for S seconds fails (default 10)\n"
      "      --poll-interval MS wait at least MS ms between two polls, so that one recv takes\n"
      "                         several packets: less CPU, arrival times MS ms coarser\n"
      "                         (default 0)\n"
      "      --watch-pid PID    also report the CPU use of process PID over the run\n"
      "      --json FILE        write the settings, the aggregate and every client to FILE\n"
      "  -q, --quiet            print the aggregate block only\n"
      "\n"
      "SIGUSR1 marks an instant (send it once, e.g. when the camera comes back): each\n"
      "client then reports the time from the mark to its first frame and to live video\n"
      "(the first of two frames at most 100 ms apart, the second not a keyframe).\n"
      "      --mark-at-start    the mark is the start of the run (no signal needed)\n"
      "\n"
      "  -v, --verbose          also print one line per client\n"
      "  -h, --help\n"
      "\n"
      "Exit status: 0 when the run completed (whatever the clients saw), 2 on bad options,\n"
      "1 when the run could not start.\n");
}

bool
parse_number (const char *text, double &value, double min)
{
  char *end = nullptr;
  errno = 0;
  value = strtod (text, &end);
  return errno == 0 && end != text && *end == '\0' && std::isfinite (value) && value >= min;
}

bool
parse_count (const char *text, int &value, int min)
{
  double number = 0;
  if (!parse_number (text, number, min) || number != std::floor (number) || number > 1e6)
    return false;
  value = int (number);
  return true;
}

// Returns 0 to go on, or the exit status.
int
parse_options (int argc, char **argv, Options &options)
{
  enum { kUser = 1000, kPassword, kStall, kStallAfter, kStallFor, kChurn, kThreads, kJson,
         kWatchPid, kTimeout, kPollInterval, kMarkAtStart };
  static const option long_options[] = {
    {"url", required_argument, nullptr, 'u'},
    {"clients", required_argument, nullptr, 'n'},
    {"transport", required_argument, nullptr, 't'},
    {"duration", required_argument, nullptr, 'd'},
    {"ramp", required_argument, nullptr, 'r'},
    {"user", required_argument, nullptr, kUser},
    {"password", required_argument, nullptr, kPassword},
    {"stall", required_argument, nullptr, kStall},
    {"stall-after", required_argument, nullptr, kStallAfter},
    {"stall-for", required_argument, nullptr, kStallFor},
    {"churn", required_argument, nullptr, kChurn},
    {"threads", required_argument, nullptr, kThreads},
    {"timeout", required_argument, nullptr, kTimeout},
    {"poll-interval", required_argument, nullptr, kPollInterval},
    {"watch-pid", required_argument, nullptr, kWatchPid},
    {"mark-at-start", no_argument, nullptr, kMarkAtStart},
    {"json", required_argument, nullptr, kJson},
    {"quiet", no_argument, nullptr, 'q'},
    {"verbose", no_argument, nullptr, 'v'},
    {"help", no_argument, nullptr, 'h'},
    {nullptr, 0, nullptr, 0},
  };
  int option_char;
  while ((option_char = getopt_long (argc, argv, "u:n:t:d:r:qvh", long_options, nullptr)) != -1) {
    bool ok = true;
    switch (option_char) {
      case 'u': options.url = optarg; break;
      case 'n': ok = parse_count (optarg, options.clients, 1); break;
      case 't':
        ok = strcmp (optarg, "tcp") == 0 || strcmp (optarg, "udp") == 0;
        options.udp = strcmp (optarg, "udp") == 0;
        break;
      case 'd': ok = parse_number (optarg, options.duration_s, 0.1); break;
      case 'r': ok = parse_number (optarg, options.ramp_s, 0); break;
      case kUser: options.user = optarg; break;
      case kPassword: options.password = optarg; break;
      case kStall: ok = parse_count (optarg, options.stall_clients, 0); break;
      case kStallAfter: ok = parse_number (optarg, options.stall_after_s, 0); break;
      case kStallFor: ok = parse_number (optarg, options.stall_for_s, 0); break;
      case kChurn: ok = parse_number (optarg, options.churn_s, 0); break;
      case kThreads: ok = parse_count (optarg, options.threads, 1) && options.threads <= 64; break;
      case kTimeout: ok = parse_number (optarg, options.request_timeout_s, 0.1); break;
      case kPollInterval:
        ok = parse_number (optarg, options.poll_interval_ms, 0) && options.poll_interval_ms <= 100;
        break;
      case kWatchPid: ok = parse_count (optarg, options.watch_pid, 1); break;
      case kJson: options.json = optarg; break;
      case kMarkAtStart: options.mark_at_start = true; break;
      case 'q': options.quiet = true; break;
      case 'v': options.verbose = true; break;
      case 'h': usage (stdout); return -1;
      default: usage (stderr); return 2;
    }
    if (!ok) {
      const char *name = "?";
      for (const option *o = long_options; o->name; o++)
        if (o->val == option_char)
          name = o->name;
      fprintf (stderr, "rtspload: bad value for --%s: %s\n", name, optarg);
      return 2;
    }
  }
  if (optind < argc) {
    fprintf (stderr, "rtspload: unexpected argument: %s\n", argv[optind]);
    return 2;
  }
  if (options.url.empty ()) {
    fprintf (stderr, "rtspload: --url is required\n");
    usage (stderr);
    return 2;
  }
  if (options.stall_clients > options.clients) {
    fprintf (stderr, "rtspload: --stall %d is more than --clients %d\n", options.stall_clients,
        options.clients);
    return 2;
  }
  if (options.churn_s > 0 && options.churn_s < 0.1) {
    fprintf (stderr, "rtspload: --churn below 0.1 s\n");
    return 2;
  }
  return 0;
}

// user + system CPU of this process, in microseconds.
int64_t
own_cpu_us ()
{
  rusage usage{};
  getrusage (RUSAGE_SELF, &usage);
  return int64_t (usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1'000'000
      + usage.ru_utime.tv_usec + usage.ru_stime.tv_usec;
}

// user + system CPU of process `pid` from /proc, in microseconds; -1 if gone.
int64_t
process_cpu_us (int pid)
{
  std::ifstream file ("/proc/" + std::to_string (pid) + "/stat");
  std::string text;
  if (!std::getline (file, text))
    return -1;
  // The command name is in parentheses and may hold spaces: count fields after it.
  const size_t close = text.rfind (')');
  if (close == std::string::npos)
    return -1;
  const char *at = text.c_str () + close + 2;
  unsigned long long utime = 0, stime = 0;
  // Fields 3.. : state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime
  if (sscanf (at, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2)
    return -1;
  return int64_t (utime + stime) * 1'000'000 / sysconf (_SC_CLK_TCK);
}

struct Distribution {
  std::vector<double> values;
  void add (double value) { values.push_back (value); }
  double at (double quantile)
  {
    if (values.empty ())
      return 0;
    std::sort (values.begin (), values.end ());
    size_t rank = size_t (std::ceil (quantile * values.size ()));
    return values[std::clamp<size_t> (rank, 1, values.size ()) - 1];
  }
};

std::string
json_string (const std::string &text)
{
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\')
      out += '\\', out += c;
    else if (static_cast<unsigned char> (c) < 0x20) {
      char escaped[8];
      snprintf (escaped, sizeof escaped, "\\u%04x", c);
      out += escaped;
    } else
      out += c;
  }
  return out + "\"";
}

// One group of clients (the normal ones, or the stalled ones) summed up.
struct Summary {
  int clients = 0, connected = 0, failed = 0, playing_at_end = 0, disconnected = 0;
  std::map<std::string, int> outcomes;
  uint64_t attempts = 0, connects = 0, churns = 0;
  uint64_t packets = 0, bytes = 0, frames = 0, keyframes = 0, lost = 0, reordered = 0,
           malformed = 0, frames_after_stall = 0;
  unsigned sessions_without_keyframe = 0;
  Distribution fps, first_packet_ms, join_ms, max_gap_ms, after_stall;
  Distribution frame_after_mark_ms, video_after_mark_ms;  // clients that got one
  Distribution decodable_ms, live_ms, max_packet_gap_ms;
  double playing_s = 0;

  void add (const ClientStats &s)
  {
    clients++;
    if (s.connects > 0)
      connected++;
    else
      failed++;
    if (s.playing_at_end)
      playing_at_end++;
    if (s.disconnects > 0)
      disconnected++;
    outcomes[s.outcome.empty () ? "none" : s.outcome]++;
    attempts += s.attempts;
    connects += s.connects;
    churns += s.churns;
    packets += s.packets;
    bytes += s.bytes;
    frames += s.frames;
    keyframes += s.keyframes;
    lost += s.lost;
    reordered += s.reordered;
    malformed += s.malformed;
    frames_after_stall += s.frames_after_stall;
    after_stall.add (s.frames_after_stall);
    sessions_without_keyframe += s.sessions_without_keyframe;
    if (s.connects > 0) {
      fps.add (s.playing_us > 0 ? s.frames * 1e6 / s.playing_us : 0);
      max_gap_ms.add (s.max_frame_gap_us / 1000.0);
      max_packet_gap_ms.add (s.max_packet_gap_us / 1000.0);
      playing_s += s.playing_us / 1e6;
    }
    if (s.first_packet_us >= 0)
      first_packet_ms.add (s.first_packet_us / 1000.0);
    if (s.decodable_keyframe_us >= 0)
      decodable_ms.add (s.decodable_keyframe_us / 1000.0);
    if (s.live_us >= 0)
      live_ms.add (s.live_us / 1000.0);
    for (int64_t join : s.join_us)
      join_ms.add (join / 1000.0);
    if (s.first_frame_after_mark_us >= 0)
      frame_after_mark_ms.add (s.first_frame_after_mark_us / 1000.0);
    if (s.video_after_mark_us >= 0)
      video_after_mark_ms.add (s.video_after_mark_us / 1000.0);
  }

  std::string outcomes_text () const
  {
    std::string text = "{";
    for (const auto &[outcome, count] : outcomes)
      text += (text.size () > 1 ? "," : "") + outcome + ":" + std::to_string (count);
    return text + "}";
  }

  double loss_percent () const
  {
    return packets + lost > 0 ? 100.0 * lost / double (packets + lost) : 0;
  }
};

std::string
triple (Distribution &d, const char *format = "%.1f")
{
  char text[96], a[24], b[24], c[24];
  snprintf (a, sizeof a, format, d.at (0.5));
  snprintf (b, sizeof b, format, d.at (0.95));
  snprintf (c, sizeof c, format, d.at (1.0));
  snprintf (text, sizeof text, "%s/%s/%s", a, b, c);
  return text;
}

std::string
min_median_max (Distribution &d)
{
  char text[96];
  snprintf (text, sizeof text, "%.1f/%.1f/%.1f", d.at (0.0), d.at (0.5), d.at (1.0));
  return text;
}

// Milliseconds from microseconds; -1 stays -1 ("never").
double
ms (int64_t us)
{
  return us < 0 ? -1 : us / 1000.0;
}

std::string
json_ms (int64_t us)
{
  char text[32];
  snprintf (text, sizeof text, "%.2f", us / 1000.0);
  return us < 0 ? "null" : text;
}

void
print_client (FILE *out, const ClientStats &s)
{
  fprintf (out,
      "client %d outcome %s connects %u attempts %u frames %llu fps %.1f keyframes %llu "
      "packets %llu lost %llu reordered %llu first-packet-ms %.1f first-keyframe-ms %.1f "
      "max-gap-ms %.1f bytes %llu%s%s%s\n",
      s.id, s.outcome.empty () ? "none" : s.outcome.c_str (), s.connects, s.attempts,
      (unsigned long long) s.frames, s.playing_us > 0 ? s.frames * 1e6 / s.playing_us : 0.0,
      (unsigned long long) s.keyframes, (unsigned long long) s.packets,
      (unsigned long long) s.lost, (unsigned long long) s.reordered,
      ms (s.first_packet_us), ms (s.first_keyframe_us), ms (s.max_frame_gap_us),
      (unsigned long long) s.bytes, s.stall_client ? " stalled" : "",
      s.error.empty () ? "" : " error: ", s.error.c_str ());
}

void
write_json (const std::string &path, const Options &options, Summary &normal, Summary &stalled,
    double wall_s, double cpu_percent, double server_cpu_percent, double mark_s,
    const std::vector<const ClientStats *> &all)
{
  FILE *out = fopen (path.c_str (), "w");
  if (!out) {
    fprintf (stderr, "rtspload: cannot write %s: %s\n", path.c_str (), strerror (errno));
    return;
  }
  auto summary = [&] (Summary &s) {
    fprintf (out,
        "{\"clients\": %d, \"connected\": %d, \"failed\": %d, \"playing_at_end\": %d, "
        "\"disconnected\": %d, \"outcomes\": {",
        s.clients, s.connected, s.failed, s.playing_at_end, s.disconnected);
    bool first = true;
    for (const auto &[outcome, count] : s.outcomes) {
      fprintf (out, "%s%s: %d", first ? "" : ", ", json_string (outcome).c_str (), count);
      first = false;
    }
    fprintf (out,
        "}, \"attempts\": %llu, \"connects\": %llu, \"churns\": %llu, \"frames\": %llu, "
        "\"keyframes\": %llu, \"packets\": %llu, \"lost\": %llu, \"loss_percent\": %.4f, "
        "\"reordered\": %llu, \"bytes\": %llu, "
        "\"fps\": {\"min\": %.2f, \"median\": %.2f, \"max\": %.2f}, "
        "\"first_packet_ms\": {\"p50\": %.2f, \"p95\": %.2f, \"max\": %.2f}, "
        "\"first_keyframe_ms\": {\"p50\": %.2f, \"p95\": %.2f, \"max\": %.2f, \"sessions\": %zu, "
        "\"without_keyframe\": %u}, "
        "\"max_frame_gap_ms\": {\"p50\": %.2f, \"p95\": %.2f, \"max\": %.2f}, "
        "\"frames_after_stall\": %llu, "
        "\"after_mark_ms\": {\"first_frame\": {\"clients\": %zu, \"p50\": %.2f, \"p95\": %.2f, "
        "\"max\": %.2f}, \"video\": {\"clients\": %zu, \"p50\": %.2f, \"p95\": %.2f, \"max\": %.2f}}}",
        (unsigned long long) s.attempts, (unsigned long long) s.connects,
        (unsigned long long) s.churns, (unsigned long long) s.frames,
        (unsigned long long) s.keyframes, (unsigned long long) s.packets,
        (unsigned long long) s.lost, s.loss_percent (), (unsigned long long) s.reordered,
        (unsigned long long) s.bytes, s.fps.at (0), s.fps.at (0.5), s.fps.at (1),
        s.first_packet_ms.at (0.5), s.first_packet_ms.at (0.95), s.first_packet_ms.at (1),
        s.join_ms.at (0.5), s.join_ms.at (0.95), s.join_ms.at (1), s.join_ms.values.size (),
        s.sessions_without_keyframe, s.max_gap_ms.at (0.5), s.max_gap_ms.at (0.95),
        s.max_gap_ms.at (1), (unsigned long long) s.frames_after_stall,
        s.frame_after_mark_ms.values.size (), s.frame_after_mark_ms.at (0.5),
        s.frame_after_mark_ms.at (0.95), s.frame_after_mark_ms.at (1),
        s.video_after_mark_ms.values.size (), s.video_after_mark_ms.at (0.5),
        s.video_after_mark_ms.at (0.95), s.video_after_mark_ms.at (1));
  };
  fprintf (out,
      "{\n\"settings\": {\"url\": %s, \"clients\": %d, \"transport\": \"%s\", \"duration_s\": %g, "
      "\"ramp_s\": %g, \"stall\": %d, \"stall_after_s\": %g, \"stall_for_s\": %g, "
      "\"churn_s\": %g, \"threads\": %d},\n",
      json_string (options.url).c_str (), options.clients, options.udp ? "udp" : "tcp",
      options.duration_s, options.ramp_s, options.stall_clients, options.stall_after_s,
      options.stall_for_s, options.churn_s, options.threads);
  fprintf (out, "\"wall_s\": %.3f, \"load_cpu_percent\": %.2f, ", wall_s, cpu_percent);
  if (mark_s >= 0)  // also on CLOCK_MONOTONIC, to compare runs of two processes
    fprintf (out, "\"mark_s\": %.3f, \"mark_monotonic_s\": %.6f, ", mark_s,
        mark_us.load () / 1e6);
  if (options.watch_pid > 0)
    fprintf (out, "\"server_pid\": %d, \"server_cpu_percent\": %.2f, ", options.watch_pid,
        server_cpu_percent);
  fprintf (out, "\n\"aggregate\": ");
  summary (normal);
  fprintf (out, ",\n\"stalled\": ");
  summary (stalled);
  fprintf (out, ",\n\"clients\": [\n");
  for (size_t i = 0; i < all.size (); i++) {
    const ClientStats &s = *all[i];
    fprintf (out,
        "{\"id\": %d, \"stalled\": %s, \"outcome\": %s, \"error\": %s, \"codec\": \"%s\", "
        "\"attempts\": %u, \"connects\": %u, \"disconnects\": %u, \"churns\": %u, "
        "\"playing_at_end\": %s, \"packets\": %llu, \"bytes\": %llu, \"frames\": %llu, "
        "\"keyframes\": %llu, \"lost\": %llu, \"reordered\": %llu, \"malformed\": %llu, "
        "\"first_packet_ms\": %s, \"first_keyframe_ms\": %s, \"max_frame_gap_ms\": %.2f, "
        "\"playing_s\": %.3f, \"fps\": %.2f, \"frames_after_stall\": %llu, "
        "\"first_frame_after_mark_ms\": %s, \"video_after_mark_ms\": %s, "
        "\"keyframe_after_mark_ms\": %s, \"decodable_keyframe_ms\": %s, \"live_ms\": %s, "
        "\"max_packet_gap_ms\": %.2f}%s\n",
        s.id, s.stall_client ? "true" : "false", json_string (s.outcome).c_str (),
        json_string (s.error).c_str (), codec_name (s.codec), s.attempts, s.connects,
        s.disconnects, s.churns, s.playing_at_end ? "true" : "false",
        (unsigned long long) s.packets, (unsigned long long) s.bytes,
        (unsigned long long) s.frames, (unsigned long long) s.keyframes,
        (unsigned long long) s.lost, (unsigned long long) s.reordered,
        (unsigned long long) s.malformed, json_ms (s.first_packet_us).c_str (),
        json_ms (s.first_keyframe_us).c_str (), s.max_frame_gap_us / 1000.0, s.playing_us / 1e6,
        s.playing_us > 0 ? s.frames * 1e6 / s.playing_us : 0.0,
        (unsigned long long) s.frames_after_stall, json_ms (s.first_frame_after_mark_us).c_str (),
        json_ms (s.video_after_mark_us).c_str (), json_ms (s.keyframe_after_mark_us).c_str (),
        json_ms (s.decodable_keyframe_us).c_str (), json_ms (s.live_us).c_str (),
        s.max_packet_gap_us / 1000.0, i + 1 < all.size () ? "," : "");
  }
  fprintf (out, "]\n}\n");
  fclose (out);
}

}  // namespace

int
main (int argc, char **argv)
{
  Options options;
  if (int status = parse_options (argc, argv, options); status != 0)
    return status < 0 ? 0 : status;

  Settings settings;
  if (!parse_url (options.url, settings.url)) {
    fprintf (stderr, "rtspload: not an rtsp:// URL: %s\n", options.url.c_str ());
    return 2;
  }
  settings.udp = options.udp;
  settings.user = options.user;
  settings.password = options.password;
  settings.churn_us = int64_t (options.churn_s * 1e6);
  settings.request_timeout_us = int64_t (options.request_timeout_s * 1e6);

  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo *found = nullptr;
  const std::string port = std::to_string (settings.url.port);
  if (int error = getaddrinfo (settings.url.host.c_str (), port.c_str (), &hints, &found); error != 0) {
    fprintf (stderr, "rtspload: cannot resolve %s: %s\n", settings.url.host.c_str (),
        gai_strerror (error));
    return 1;
  }
  memcpy (&settings.address, found->ai_addr, found->ai_addrlen);
  settings.address_size = found->ai_addrlen;
  freeaddrinfo (found);

  // Every client holds one socket (three with UDP); the soft limit is often 1024.
  rlimit files{};
  getrlimit (RLIMIT_NOFILE, &files);
  files.rlim_cur = files.rlim_max;
  setrlimit (RLIMIT_NOFILE, &files);
  getrlimit (RLIMIT_NOFILE, &files);
  const rlim_t needed = rlim_t (options.clients) * (options.udp ? 3 : 1) + 64;
  if (files.rlim_cur < needed && !options.quiet)
    fprintf (stderr, "rtspload: warning: %llu clients need about %llu file descriptors, the "
        "limit is %llu\n", (unsigned long long) options.clients,
        (unsigned long long) needed, (unsigned long long) files.rlim_cur);

  struct sigaction action{};
  action.sa_handler = on_signal;
  sigaction (SIGINT, &action, nullptr);
  sigaction (SIGTERM, &action, nullptr);
  signal (SIGPIPE, SIG_IGN);
  struct sigaction mark_action{};
  mark_action.sa_handler = on_mark;
  mark_action.sa_flags = SA_RESTART;
  sigaction (SIGUSR1, &mark_action, nullptr);

  // Stall clients are spread over the range of ids, so they are not all the
  // first to start.
  std::vector<bool> stall (options.clients, false);
  for (int k = 0; k < options.stall_clients; k++)
    stall[size_t (int64_t (k) * options.clients / options.stall_clients)] = true;

  const int threads = std::min (options.threads, options.clients);
  std::vector<std::unique_ptr<Worker>> workers;
  for (int t = 0; t < threads; t++)
    workers.push_back (std::make_unique<Worker> ());
  for (int i = 0; i < options.clients; i++) {
    auto client = std::make_unique<Client> (settings, i);
    client->stats.stall_client = stall[i];
    workers[i % threads]->add (std::move (client));
  }

  Plan plan;
  plan.start = now_us () + 20'000;
  plan.end = plan.start + int64_t (options.duration_s * 1e6);
  plan.ramp = int64_t (options.ramp_s * 1e6);
  plan.total_clients = options.clients;
  plan.poll_interval = int64_t (options.poll_interval_ms * 1000);
  if (options.mark_at_start)
    mark_us.store (plan.start);
  if (options.stall_clients > 0) {
    plan.stall_start = plan.start + int64_t (options.stall_after_s * 1e6);
    plan.stall_end = plan.stall_start + int64_t (options.stall_for_s * 1e6);
  }
  if (!options.quiet)
    fprintf (stderr, "rtspload: %d %s clients of %s for %g s (ramp %g s, %d thread%s)\n",
        options.clients, options.udp ? "UDP" : "TCP", settings.url.text.c_str (),
        options.duration_s, options.ramp_s, threads, threads > 1 ? "s" : "");

  const int64_t cpu_start = own_cpu_us ();
  const int64_t server_cpu_start = options.watch_pid > 0 ? process_cpu_us (options.watch_pid) : -1;
  const int64_t wall_start = now_us ();
  std::vector<std::thread> running;
  for (int t = 1; t < threads; t++)
    running.emplace_back ([&, t] { workers[t]->run (plan, interrupted); });
  workers[0]->run (plan, interrupted);
  for (std::thread &thread : running)
    thread.join ();
  // The window closes after the drain: TEARDOWN is part of the run's cost.
  const int64_t wall_us = now_us () - wall_start;
  const int64_t cpu_us = own_cpu_us () - cpu_start;
  const int64_t server_cpu_end = options.watch_pid > 0 ? process_cpu_us (options.watch_pid) : -1;
  const double cpu_percent = wall_us > 0 ? 100.0 * cpu_us / wall_us : 0;
  const double server_cpu_percent = server_cpu_start >= 0 && server_cpu_end >= 0 && wall_us > 0
      ? 100.0 * (server_cpu_end - server_cpu_start) / wall_us
      : -1;

  std::vector<const ClientStats *> all (options.clients);
  for (auto &worker : workers)
    for (auto &client : worker->clients)
      all[client->stats.id] = &client->stats;
  Summary normal, stalled;
  for (const ClientStats *s : all)
    (s->stall_client ? stalled : normal).add (*s);

  FILE *out = stdout;
  if (options.verbose)
    for (const ClientStats *s : all)
      print_client (out, *s);
  const double run_s = std::max (1e-3, (plan.end - plan.start) / 1e6);
  fprintf (out, "rtspload url %s transport %s clients %d duration-s %.1f ramp-s %.1f threads %d%s\n",
      settings.url.text.c_str (), options.udp ? "udp" : "tcp", options.clients, options.duration_s,
      options.ramp_s, threads, interrupted ? " interrupted" : "");
  fprintf (out, "clients %d connected %d failed %d statuses %s\n", normal.clients,
      normal.connected, normal.failed, normal.outcomes_text ().c_str ());
  fprintf (out, "sessions attempts %llu played %llu churned %llu disconnected %d playing-at-end %d\n",
      (unsigned long long) normal.attempts, (unsigned long long) normal.connects,
      (unsigned long long) normal.churns, normal.disconnected, normal.playing_at_end);
  fprintf (out, "frames total %llu keyframes %llu per-client fps min/median/max %s\n",
      (unsigned long long) normal.frames, (unsigned long long) normal.keyframes,
      min_median_max (normal.fps).c_str ());
  fprintf (out, "rtp packets %llu lost %llu (%.2f %%) reordered %llu malformed %llu\n",
      (unsigned long long) normal.packets, (unsigned long long) normal.lost,
      normal.loss_percent (), (unsigned long long) normal.reordered,
      (unsigned long long) normal.malformed);
  fprintf (out, "first packet ms p50/p95/max %s\n", triple (normal.first_packet_ms).c_str ());
  fprintf (out, "first keyframe ms p50/p95/max %s sessions %zu without-keyframe %u\n",
      triple (normal.join_ms).c_str (), normal.join_ms.values.size (),
      normal.sessions_without_keyframe);
  fprintf (out, "decodable keyframe ms p50/p95/max %s clients %zu live ms p50/p95/max %s\n",
      triple (normal.decodable_ms).c_str (), normal.decodable_ms.values.size (),
      triple (normal.live_ms).c_str ());
  fprintf (out, "max frame gap ms p50/p95/max %s packet gap %s\n",
      triple (normal.max_gap_ms).c_str (), triple (normal.max_packet_gap_ms).c_str ());
  fprintf (out, "bytes %llu aggregate-mbit-s %.1f per-client-mbit-s %.2f\n",
      (unsigned long long) normal.bytes, normal.bytes * 8 / run_s / 1e6,
      normal.playing_s > 0 ? normal.bytes * 8 / normal.playing_s / 1e6 : 0.0);
  if (options.stall_clients > 0)
    fprintf (out,
        "stalled clients %d connected %d playing-at-end %d disconnected %d frames %llu "
        "frames-after-stall min/median/max %s lost %llu (%.2f %%) max frame gap ms "
        "p50/p95/max %s\n",
        stalled.clients, stalled.connected, stalled.playing_at_end, stalled.disconnected,
        (unsigned long long) stalled.frames, min_median_max (stalled.after_stall).c_str (),
        (unsigned long long) stalled.lost, stalled.loss_percent (),
        triple (stalled.max_gap_ms).c_str ());
  fprintf (out, "load cpu %% of one core %.1f cpu-s %.2f wall-s %.2f\n", cpu_percent,
      cpu_us / 1e6, wall_us / 1e6);
  const int64_t mark = mark_us.load ();
  const double mark_s = mark >= 0 ? (mark - plan.start) / 1e6 : -1;
  if (mark >= 0)
    fprintf (out,
        "after mark at-s %.2f first frame ms p50/p95/max %s clients %zu live video ms "
        "p50/p95/max %s clients %zu of %d\n",
        mark_s, triple (normal.frame_after_mark_ms).c_str (),
        normal.frame_after_mark_ms.values.size (), triple (normal.video_after_mark_ms).c_str (),
        normal.video_after_mark_ms.values.size (), normal.clients);
  if (options.watch_pid > 0)
    fprintf (out, "server cpu %% of one core %.1f pid %d%s\n", server_cpu_percent,
        options.watch_pid, server_cpu_end < 0 ? " (gone)" : "");
  fflush (out);

  if (!options.json.empty ())
    write_json (options.json, options, normal, stalled, wall_us / 1e6, cpu_percent,
        server_cpu_percent, mark_s, all);
  return 0;
}
