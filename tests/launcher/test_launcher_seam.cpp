// Clients that join a camera in the middle of a long GOP (instant start,
// docs/configuration.md `instant_start`): the first packet starts a keyframe
// from the GOP cache, RTP-Info matches it, sequence numbers run on unbroken
// into live video, and real players (ffmpeg, rtspsrc) decode at once, cleanly.
// With instant_start = false, the old behaviour: the next keyframe of the camera.
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "fake_camera.h"
#include "ffmpeg_client.h"
#include "rtp_client.h"

namespace {

using namespace camrelay::launcher_test;

// The camera: a 4 s GOP, as many cameras send; clients join 1.5 s after one
// of its keyframes, so that the next comes 2.5 s after they join.
constexpr int FPS = 30;
constexpr int GOP_FRAMES = 4 * FPS;
constexpr auto JOIN_AFTER_KEYFRAME = 1500ms;
// A first picture within this of PLAY can only have come from the cache (the
// camera's next keyframe is 2.5 s away); generous for a loaded machine.
constexpr auto FROM_CACHE = 1000ms;
// Packets whose sequence numbers must follow each other from the first on.
constexpr size_t CONTINUOUS_PACKETS = 400;

long long
ms_between (Clock::time_point from, Clock::time_point to)
{
  return std::chrono::duration_cast<std::chrono::milliseconds> (to - from).count ();
}

struct Case {
  const char *codec;
  bool tcp;
};

void
PrintTo (const Case &c, std::ostream *out)
{
  *out << c.codec << (c.tcp ? " over TCP" : " over UDP");
}

std::string
case_name (const ::testing::TestParamInfo<Case> &info)
{
  return std::string (info.param.codec) + (info.param.tcp ? "_tcp" : "_udp");
}

// camrelay relaying a fake camera with a 4 s GOP, and one client (the
// anchor) already playing it, so that the media is live and the anchor
// tells when the camera's keyframes come through.
class SeamTest : public ::testing::TestWithParam<Case> {
 protected:
  // `server_keys`, `camera_keys`: lines added to [server] and to the camera.
  // With `tls`, camrelay serves RTSPS only, and the anchor is an rtspsrc
  // client (the camera's own frame count then tells its keyframes).
  void start (const std::string &codec, const std::string &server_keys = "",
      const std::string &camera_keys = "", bool tls = false)
  {
    codec_ = codec;
    camtest::RtspCameraOptions options;
    options.width = 320;
    options.height = 240;
    options.fps = FPS;
    options.gop = GOP_FRAMES;
    options.codec = codec;
    camera_ = std::make_unique<camtest::FakeRtspCamera> (options);
    ASSERT_TRUE (camera_->start ());
    std::string camera = camera_entry ("cam", camera_->uri ());
    camera.insert (camera.size () - 1, camera_keys.empty () ? "" : camera_keys + "\n");
    std::string text = config_text (camera);
    std::string server = server_keys;
    if (tls) {
      const camtest::TlsIdentity *identity = camtest::tls_identity ();
      ASSERT_NE (identity, nullptr) << "no certificate (is openssl installed?)";
      server += "\ntls_cert = \"" + identity->certificate_file + "\"\ntls_key = \""
          + identity->key_file + "\"";
      scheme_ = "rtsps";
      rtspsrc_options_ = " tls-validation-flags=0";
    }
    text.insert (text.find ("\n\n[http]"), "\n" + server);
    config_ = write_config (text);
    camrelay_ = std::make_unique<Launcher> (std::vector<std::string>{"-c", config_});
    port_ = camrelay_->rtsp_port ();
    ASSERT_GT (port_, 0) << camrelay_->all_output ();
    http_port_ = camrelay_->http_port ();
    if (tls) {
      tls_anchor_ = std::make_unique<RtspClient> (url () + rtspsrc_options_, "tcp", false);
      ASSERT_TRUE (tls_anchor_->wait_frames (10, 20s)) << camrelay_->all_output ();
      return;
    }
    anchor_ = std::make_unique<RtpClient> (port_, codec, true);
    ASSERT_TRUE (anchor_->play ()) << anchor_->failure () << camrelay_->all_output ();
  }

  void TearDown () override
  {
    anchor_.reset ();
    tls_anchor_.reset ();
    if (camrelay_)
      expect_clean_stop (*camrelay_, config_);
    camrelay_.reset ();
    if (camera_)
      camera_->stop ();
  }

  // Waits for a keyframe of the camera to reach the anchor live, then until
  // JOIN_AFTER_KEYFRAME after it: the moment to join, mid-GOP.
  void wait_mid_gop ()
  {
    if (!anchor_) {
      // The camera's frames count from its one media's first keyframe.
      ASSERT_EQ (camera_->media_created (), 1u);
      const guint64 gop = camera_->frames_sent () / GOP_FRAMES;
      const auto deadline = Clock::now () + std::chrono::milliseconds (GOP_FRAMES * 1000 / FPS) + 5s;
      while (camera_->frames_sent () / GOP_FRAMES == gop && Clock::now () < deadline)
        std::this_thread::sleep_for (5ms);  // polling a counter: no event to wait on
      ASSERT_NE (camera_->frames_sent () / GOP_FRAMES, gop) << "the camera sent no keyframe";
      std::this_thread::sleep_for (JOIN_AFTER_KEYFRAME);
      return;
    }
    // Not the anchor's first keyframe: that one may be the cache's.
    const auto from = Clock::now ();
    std::optional<Clock::time_point> keyframe;
    ASSERT_TRUE (anchor_->wait (
        [&] (const std::vector<Packet> &packets) {
          const std::vector<size_t> starts = keyframe_starts (packets);
          for (size_t k = 1; k < starts.size (); k++)
            if (packets[starts[k]].arrived > from) {
              keyframe = packets[starts[k]].arrived;
              return true;
            }
          return false;
        },
        2 * std::chrono::milliseconds (GOP_FRAMES * 1000 / FPS) + 10s))
        << "no keyframe reached the anchor\n" << camrelay_->all_output ();
    // Not synchronisation: the join's place in the GOP is what is tested.
    std::this_thread::sleep_until (*keyframe + JOIN_AFTER_KEYFRAME);
  }

  // When the first keyframe after `t` reached the anchor (waiting for it).
  std::optional<Clock::time_point> anchor_keyframe_after (Clock::time_point t)
  {
    std::optional<Clock::time_point> found;
    anchor_->wait (
        [&] (const std::vector<Packet> &packets) {
          for (size_t i : keyframe_starts (packets))
            if (packets[i].arrived > t) {
              found = packets[i].arrived;
              return true;
            }
          return false;
        },
        std::chrono::milliseconds (GOP_FRAMES * 1000 / FPS) + 5s);
    return found;
  }

  std::string url () const
  {
    return scheme_ + "://127.0.0.1:" + std::to_string (port_) + "/cam";
  }

  // The camera's sample of `family` in /metrics, if there is one.
  std::optional<long> metric (const std::string &family)
  {
    int status = 0;
    const std::string text = http_get (http_port_, "/metrics", status);
    const std::string sample = "\n" + family + "{camera=\"cam\"} ";
    const size_t at = text.find (sample);
    if (at == std::string::npos)
      return std::nullopt;
    return std::atol (text.c_str () + at + sample.size ());
  }
  std::optional<long> gop_cache_bytes () { return metric ("camrelay_camera_gop_cache_bytes"); }

  void raw_client_joins_from_cache (bool tcp);
  // `from_mid_gop`: the client must start on the live packets of the GOP
  // under way, as before instant start (not only wait for its keyframe).
  void raw_client_waits_for_the_next_keyframe (bool tcp, bool from_mid_gop = true);
  void ffmpeg_joins_cleanly (bool tcp);
  void rtspsrc_joins_cleanly (bool tcp);

  std::string codec_;
  std::unique_ptr<camtest::FakeRtspCamera> camera_;
  std::string config_;
  std::unique_ptr<Launcher> camrelay_;
  int port_ = 0;
  int http_port_ = 0;
  std::unique_ptr<RtpClient> anchor_;
  std::unique_ptr<RtspClient> tls_anchor_;  // with tls, instead of anchor_
  std::string scheme_ = "rtsp";
  std::string rtspsrc_options_;  // added to the joining rtspsrc's properties
};

// (1) A raw client: RTP-Info names its first packet, which starts a keyframe
// of the cache; then CONTINUOUS_PACKETS packets without a gap or duplicate.
void
SeamTest::raw_client_joins_from_cache (bool tcp)
{
  SCOPED_TRACE (std::string ("raw RTP client over ") + (tcp ? "TCP" : "UDP"));
  wait_mid_gop ();
  RtpClient client (port_, codec_, tcp);
  ASSERT_TRUE (client.play ()) << client.failure () << camrelay_->all_output ();
  client.wait ([] (const std::vector<Packet> &p) { return p.size () >= CONTINUOUS_PACKETS; }, 20s);
  const std::vector<Packet> packets = client.packets ();
  ASSERT_GE (packets.size (), CONTINUOUS_PACKETS) << camrelay_->all_output ();

  const auto seq = client.rtp_info_value ("seq");
  const auto rtptime = client.rtp_info_value ("rtptime");
  ASSERT_TRUE (seq && rtptime) << "RTP-Info: " << client.rtp_info ();
  EXPECT_EQ (*seq, packets[0].seq) << "RTP-Info's seq is not the first packet's";
  EXPECT_EQ (*rtptime, packets[0].rtptime) << "RTP-Info's rtptime is not the first packet's";
  const std::vector<size_t> keyframes = keyframe_starts (packets);
  ASSERT_FALSE (keyframes.empty ());
  EXPECT_EQ (keyframes[0], 0u) << "the first packet does not start a keyframe";
  size_t breaks = 0;
  for (size_t i = 1; i < CONTINUOUS_PACKETS; i++)
    if (packets[i].seq != static_cast<guint16> (packets[i - 1].seq + 1)) {
      if (breaks++ < 5)
        ADD_FAILURE () << "packet " << i << ": seq " << packets[i].seq << " after "
                       << packets[i - 1].seq;
    }
  EXPECT_EQ (breaks, 0u) << "sequence numbers not continuous";

  const auto first_keyframe = packets[keyframes[0]].arrived;
  const auto camera_keyframe = anchor_keyframe_after (client.played ());
  ASSERT_TRUE (camera_keyframe);
  std::printf ("%s %s: PLAY -> first keyframe %lld ms (the camera's next: %lld ms)\n",
      codec_.c_str (), tcp ? "tcp" : "udp", ms_between (client.played (), first_keyframe),
      ms_between (client.played (), *camera_keyframe));
  EXPECT_LE (ms_between (client.played (), first_keyframe), FROM_CACHE.count ())
      << "the first keyframe is not the cache's";
  EXPECT_LT (ms_between (client.played (), first_keyframe),
      ms_between (client.played (), *camera_keyframe) - 500)
      << "the first keyframe is the camera's next";
  const auto cached = gop_cache_bytes ();
  EXPECT_TRUE (cached && *cached > 0 && *cached <= 8 << 20)
      << "camrelay_camera_gop_cache_bytes: " << (cached ? std::to_string (*cached) : "none");
}

// A first decoded picture within this of a player's start came from the
// cache (the camera's next keyframe is 2.5 s away); it includes the player's
// own start-up (process, probing), hence more than FROM_CACHE.
constexpr auto FIRST_PICTURE = 1500ms;
constexpr size_t PICTURES = 60;

// (2) ffmpeg joins mid-GOP and decodes from its first picture on, at once,
// with no decoding error, concealment or lost packet.
void
SeamTest::ffmpeg_joins_cleanly (bool tcp)
{
  SCOPED_TRACE (std::string ("ffmpeg over ") + (tcp ? "TCP" : "UDP"));
  wait_mid_gop ();
  std::vector<std::string> args{"-hide_banner", "-loglevel", "warning", "-rtsp_transport",
      tcp ? "tcp" : "udp", "-i", url (), "-frames:v", std::to_string (PICTURES)};
  for (const std::string &a : framemd5_output ())
    args.push_back (a);
  FfmpegClient ffmpeg (args);
  ffmpeg.wait_frames ([] (const std::vector<DecodedFrame> &f) { return f.size () >= PICTURES; }, 20s);
  EXPECT_EQ (ffmpeg.wait_exit (10s), 0) << ffmpeg.messages ();
  const std::vector<DecodedFrame> frames = ffmpeg.frames ();
  ASSERT_GE (frames.size (), PICTURES) << ffmpeg.messages () << camrelay_->all_output ();
  std::printf ("%s %s: ffmpeg start -> first picture %lld ms\n", codec_.c_str (),
      tcp ? "tcp" : "udp", ms_between (ffmpeg.started (), frames[0].arrived));
  EXPECT_LE (ms_between (ffmpeg.started (), frames[0].arrived), FIRST_PICTURE.count ())
      << "ffmpeg's first picture did not come from the cache";
  // What ffmpeg's decoders and RTP reader say of a start without a keyframe
  // or its parameter sets, of concealed pictures, and of lost packets.
  const std::string messages = ffmpeg.messages ();
  std::string said;
  for (const char *bad : {"decode_slice_header", "concealing", "error while decoding",
           "non-existing PPS", "no frame!", "Missing reference", "Could not find ref",
           "PPS id out of range", "missed", "too late", "Error"})
    if (messages.find (bad) != std::string::npos)
      said += std::string (said.empty () ? "" : ", ") + "'" + bad + "'";
  EXPECT_EQ (said, "") << "ffmpeg said:\n" << messages;
}

// What rtspsrc's jitterbuffer took in and gave out (the packets it drops
// before seqnum-base are in no statistic of its own).  Written by streaming
// threads, read by the test under the lock.
struct RtspsrcWatch {
  std::mutex mutex;
  camrelay::ElementPtr jitterbuffer;
  std::optional<guint16> first_in;
  std::optional<guint16> first_out;
  guint64 in = 0;
  guint64 out = 0;
  guint64 out_breaks = 0;  // packets out whose seq does not follow the one before
  guint16 last_out = 0;
  std::optional<Clock::time_point> first_picture;
  std::optional<bool> first_unit_is_keyframe;  // the depayloader's first access unit
  std::optional<Clock::time_point> first_keyframe;  // out of the depayloader

  static std::optional<guint16> seq_of (GstBuffer *buffer)
  {
    guint8 header[4];
    if (gst_buffer_extract (buffer, 0, header, 4) != 4)
      return std::nullopt;
    return static_cast<guint16> ((header[2] << 8) | header[3]);
  }

  void count (GstBuffer *buffer, bool into)
  {
    const auto seq = seq_of (buffer);
    if (!seq)
      return;
    std::lock_guard<std::mutex> lock (mutex);
    if (into) {
      in++;
      if (!first_in)
        first_in = seq;
      return;
    }
    out++;
    if (!first_out)
      first_out = seq;
    else if (*seq != static_cast<guint16> (last_out + 1))
      out_breaks++;
    last_out = *seq;
  }

  static GstPadProbeReturn probe (GstPad *pad, GstPadProbeInfo *info, gpointer data)
  {
    auto *self = static_cast<RtspsrcWatch *> (data);
    const bool into = GST_PAD_DIRECTION (pad) == GST_PAD_SINK;
    if (info->type & GST_PAD_PROBE_TYPE_BUFFER) {
      self->count (GST_PAD_PROBE_INFO_BUFFER (info), into);
    } else if (info->type & GST_PAD_PROBE_TYPE_BUFFER_LIST) {
      GstBufferList *list = GST_PAD_PROBE_INFO_BUFFER_LIST (info);
      for (guint i = 0; i < gst_buffer_list_length (list); i++)
        self->count (gst_buffer_list_get (list, i), into);
    }
    return GST_PAD_PROBE_OK;
  }

  static void on_jitterbuffer (GstElement *, GstElement *jitterbuffer, guint session, guint,
      gpointer data)
  {
    auto *self = static_cast<RtspsrcWatch *> (data);
    if (session != 0)
      return;
    {
      std::lock_guard<std::mutex> lock (self->mutex);
      if (self->jitterbuffer)
        return;
      self->jitterbuffer.reset (GST_ELEMENT (gst_object_ref (jitterbuffer)));
    }
    for (const char *name : {"sink", "src"}) {
      camrelay::PadPtr pad{gst_element_get_static_pad (jitterbuffer, name)};
      gst_pad_add_probe (pad.get (),
          static_cast<GstPadProbeType> (GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST),
          probe, self, nullptr);
    }
  }

  static void on_manager (GstElement *, GstElement *manager, gpointer data)
  {
    g_signal_connect (manager, "new-jitterbuffer", G_CALLBACK (on_jitterbuffer), data);
  }

  static GstPadProbeReturn on_access_unit (GstPad *, GstPadProbeInfo *info, gpointer data)
  {
    auto *self = static_cast<RtspsrcWatch *> (data);
    const bool keyframe =
        !GST_BUFFER_FLAG_IS_SET (GST_PAD_PROBE_INFO_BUFFER (info), GST_BUFFER_FLAG_DELTA_UNIT);
    std::lock_guard<std::mutex> lock (self->mutex);
    if (!self->first_unit_is_keyframe)
      self->first_unit_is_keyframe = keyframe;
    if (keyframe && !self->first_keyframe)
      self->first_keyframe = Clock::now ();
    return GST_PAD_PROBE_OK;
  }

  static void on_picture (GstElement *, GstBuffer *, GstPad *, gpointer data)
  {
    auto *self = static_cast<RtspsrcWatch *> (data);
    std::lock_guard<std::mutex> lock (self->mutex);
    if (!self->first_picture)
      self->first_picture = Clock::now ();
  }
};

// (3) rtspsrc joins mid-GOP: its first access unit is a keyframe and comes
// at once, so does its first decoded picture; its jitterbuffer drops nothing (the first packet in is the first out, none
// lost, late or duplicated) and nothing warns.
void
SeamTest::rtspsrc_joins_cleanly (bool tcp)
{
  SCOPED_TRACE (std::string ("rtspsrc over ") + (tcp ? "TCP" : "UDP"));
  wait_mid_gop ();
  const std::string depay_name = codec_ == "h265" ? "rtph265depay" : "rtph264depay";
  const std::string decoder = codec_ == "h265" ? "avdec_h265" : "avdec_h264";
  const std::string description = "rtspsrc name=src latency=200 location=" + url () + rtspsrc_options_
      + " protocols=" + (tcp ? "tcp" : "udp") + " ! " + depay_name + " name=depay ! " + decoder
      + " ! fakesink name=sink sync=false signal-handoffs=true";
  GError *error = nullptr;
  camrelay::ElementPtr pipeline{gst_parse_launch (description.c_str (), &error)};
  ASSERT_EQ (error, nullptr) << error->message;
  RtspsrcWatch watch;
  camrelay::ElementPtr source{gst_bin_get_by_name (GST_BIN (pipeline.get ()), "src")};
  camrelay::ElementPtr sink{gst_bin_get_by_name (GST_BIN (pipeline.get ()), "sink")};
  g_signal_connect (source.get (), "new-manager", G_CALLBACK (RtspsrcWatch::on_manager), &watch);
  g_signal_connect (sink.get (), "handoff", G_CALLBACK (RtspsrcWatch::on_picture), &watch);
  // avdec decodes delta frames without their references too (grey, smeared
  // pictures, no warning): what proves a clean start is a keyframe first.
  camrelay::ElementPtr depayloader{gst_bin_get_by_name (GST_BIN (pipeline.get ()), "depay")};
  camrelay::PadPtr units{gst_element_get_static_pad (depayloader.get (), "src")};
  gst_pad_add_probe (units.get (), GST_PAD_PROBE_TYPE_BUFFER, RtspsrcWatch::on_access_unit,
      &watch, nullptr);
  const auto started = Clock::now ();
  gst_element_set_state (pipeline.get (), GST_STATE_PLAYING);

  // PICTURES decoded pictures (the handoffs after the first are counted by
  // the packets out of the jitterbuffer: enough of them to span the seam).
  camrelay::BusPtr bus{gst_element_get_bus (pipeline.get ())};
  std::vector<std::string> problems;
  const auto deadline = Clock::now () + 20s;
  while (Clock::now () < deadline) {
    camrelay::MessagePtr message{gst_bus_timed_pop_filtered (bus.get (), 50 * GST_MSECOND,
        static_cast<GstMessageType> (GST_MESSAGE_ERROR | GST_MESSAGE_WARNING))};
    if (message) {
      GError *e = nullptr;
      if (GST_MESSAGE_TYPE (message.get ()) == GST_MESSAGE_ERROR)
        gst_message_parse_error (message.get (), &e, nullptr);
      else
        gst_message_parse_warning (message.get (), &e, nullptr);
      problems.push_back (std::string (GST_MESSAGE_TYPE_NAME (message.get ())) + ": "
          + (e ? e->message : "?"));
      g_clear_error (&e);
    }
    std::lock_guard<std::mutex> lock (watch.mutex);
    if (watch.first_picture && watch.first_keyframe && watch.out >= CONTINUOUS_PACKETS)
      break;
  }
  std::unique_ptr<GstStructure, decltype (&gst_structure_free)> stats{nullptr, gst_structure_free};
  {
    std::lock_guard<std::mutex> lock (watch.mutex);
    GstStructure *structure = nullptr;
    if (watch.jitterbuffer)
      g_object_get (watch.jitterbuffer.get (), "stats", &structure, nullptr);
    stats.reset (structure);
  }
  gst_element_set_state (pipeline.get (), GST_STATE_NULL);

  EXPECT_TRUE (problems.empty ()) << problems.front ();
  std::lock_guard<std::mutex> lock (watch.mutex);
  ASSERT_TRUE (watch.first_picture) << "rtspsrc decoded nothing\n" << camrelay_->all_output ();
  std::printf ("%s %s: rtspsrc start -> first picture %lld ms; jitterbuffer %" G_GUINT64_FORMAT
               " in, %" G_GUINT64_FORMAT " out\n",
      codec_.c_str (), tcp ? "tcp" : "udp", ms_between (started, *watch.first_picture), watch.in,
      watch.out);
  EXPECT_TRUE (watch.first_unit_is_keyframe.value_or (false))
      << "rtspsrc's first access unit is not a keyframe";
  ASSERT_TRUE (watch.first_keyframe);
  std::printf ("%s %s: rtspsrc start -> first keyframe %lld ms\n", codec_.c_str (),
      tcp ? "tcp" : "udp", ms_between (started, *watch.first_keyframe));
  EXPECT_LE (ms_between (started, *watch.first_keyframe), FIRST_PICTURE.count ())
      << "rtspsrc's first keyframe did not come from the cache";
  EXPECT_LE (ms_between (started, *watch.first_picture), FIRST_PICTURE.count ());
  ASSERT_TRUE (watch.first_in && watch.first_out);
  EXPECT_EQ (*watch.first_in, *watch.first_out) << "the jitterbuffer dropped the first packets";
  EXPECT_EQ (watch.out_breaks, 0u) << "the jitterbuffer's output has gaps";
  ASSERT_NE (stats, nullptr);
  for (const char *field : {"num-lost", "num-late", "num-duplicates"}) {
    guint64 value = 0;
    EXPECT_TRUE (gst_structure_get_uint64 (stats.get (), field, &value)) << field;
    EXPECT_EQ (value, 0u) << field;
  }
}

TEST_P (SeamTest, ClientsJoiningMidGopStartFromTheCache)
{
  // Instant start is on by default.
  start (GetParam ().codec);
  if (HasFatalFailure ())
    return;
  raw_client_joins_from_cache (GetParam ().tcp);
  ffmpeg_joins_cleanly (GetParam ().tcp);
  rtspsrc_joins_cleanly (GetParam ().tcp);
}

INSTANTIATE_TEST_SUITE_P (Codecs, SeamTest,
    ::testing::Values (Case{"h264", true}, Case{"h264", false}, Case{"h265", true},
        Case{"h265", false}),
    case_name);

// Instant start off: the behaviour the cache must beat.  A client joining
// mid-GOP gets live packets at once, from the middle of the GOP, and its
// first keyframe is the camera's next one.
using SeamOffTest = SeamTest;

void
SeamTest::raw_client_waits_for_the_next_keyframe (bool tcp, bool from_mid_gop)
{
  SCOPED_TRACE (std::string ("raw RTP client over ") + (tcp ? "TCP" : "UDP"));
  wait_mid_gop ();
  RtpClient client (port_, codec_, tcp);
  ASSERT_TRUE (client.play ()) << client.failure () << camrelay_->all_output ();
  const auto camera_keyframe = anchor_keyframe_after (client.played ());
  ASSERT_TRUE (camera_keyframe);
  client.wait ([] (const std::vector<Packet> &p) { return !keyframe_starts (p).empty (); }, 10s);
  const std::vector<Packet> packets = client.packets ();
  const std::vector<size_t> keyframes = keyframe_starts (packets);
  ASSERT_FALSE (keyframes.empty ());
  if (from_mid_gop) {
    EXPECT_NE (keyframes[0], 0u) << "the first packet starts a keyframe";
  }
  const auto first_keyframe = packets[keyframes[0]].arrived;
  std::printf ("%s %s, no burst: PLAY -> first keyframe %lld ms (the camera's next: "
               "%lld ms)\n",
      codec_.c_str (), tcp ? "tcp" : "udp", ms_between (client.played (), first_keyframe),
      ms_between (client.played (), *camera_keyframe));
  EXPECT_GE (ms_between (client.played (), first_keyframe),
      ms_between (client.played (), *camera_keyframe) - 500)
      << "a keyframe before the camera's next";
  // The cache keeps its GOP all the same (a reload may turn instant start
  // on); no client started from it.
  const auto bursts = metric ("camrelay_camera_instant_starts_total");
  if (from_mid_gop) {
    EXPECT_TRUE (!bursts || *bursts == 0) << "camrelay_camera_instant_starts_total: " << *bursts;
  }
}

TEST_P (SeamOffTest, ClientsJoiningMidGopWaitForTheNextKeyframe)
{
  start (GetParam ().codec, "instant_start = false");
  if (!HasFatalFailure ())
    raw_client_waits_for_the_next_keyframe (GetParam ().tcp);
}

INSTANTIATE_TEST_SUITE_P (Codecs, SeamOffTest,
    ::testing::Values (Case{"h264", true}, Case{"h264", false}), case_name);

// A camera's instant_start overrides the server's, either way.
using SeamKeyTest = SeamTest;

TEST_P (SeamKeyTest, CameraKeyTurnsInstantStartOn)
{
  start (GetParam ().codec, "instant_start = false", "instant_start = true");
  if (!HasFatalFailure ())
    raw_client_joins_from_cache (GetParam ().tcp);
}

TEST_P (SeamKeyTest, CameraKeyTurnsInstantStartOff)
{
  start (GetParam ().codec, "instant_start = true", "instant_start = false");
  if (!HasFatalFailure ())
    raw_client_waits_for_the_next_keyframe (GetParam ().tcp);
}

// A GOP over a limit (the camera's: about 400 kB in 4 s) is not burst: the
// client starts with the camera's next keyframe, as without instant start.
TEST_P (SeamKeyTest, GopOverTheCacheLimitStartsAtTheNextKeyframe)
{
  start (GetParam ().codec, "gop_cache_max_bytes = 10000");
  if (!HasFatalFailure ())
    raw_client_waits_for_the_next_keyframe (GetParam ().tcp, false);
}

TEST_P (SeamKeyTest, GopOverTheBurstLimitStartsAtTheNextKeyframe)
{
  start (GetParam ().codec, "burst_max_bytes = 10000");
  if (!HasFatalFailure ())
    raw_client_waits_for_the_next_keyframe (GetParam ().tcp, false);
}

// RTSPS (TCP-interleaved inside TLS): players start from the cache too.
TEST_P (SeamKeyTest, RtspsClientsJoiningMidGopStartFromTheCache)
{
  start (GetParam ().codec, "", "", true);
  if (HasFatalFailure ())
    return;
  ffmpeg_joins_cleanly (true);
  rtspsrc_joins_cleanly (true);
}

INSTANTIATE_TEST_SUITE_P (Codecs, SeamKeyTest, ::testing::Values (Case{"h264", true}), case_name);

}  // namespace
