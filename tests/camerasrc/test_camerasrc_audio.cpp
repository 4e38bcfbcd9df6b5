// camerasrc's audio pad: added when the camera has audio (and audio=true),
// carrying the camera's codec (from test://, from RTSP through the
// depayloader and parser, from a file), with running-time timestamps that
// increase and survive a reconnect; absent with audio=false.
#include <gst/app/app.h>
#include <gst/gst.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <thread>
#include <string>
#include <vector>

#include "common/element_names.h"
#include "common/gstref.h"
#include "camerasrc_test_util.h"
#include "fake_camera.h"

namespace {

using namespace std::chrono_literals;

struct AudioRecord {
  std::mutex mutex;
  std::condition_variable changed;
  std::vector<GstClockTime> timestamps;
  std::vector<bool> disconts;
  std::vector<std::chrono::steady_clock::time_point> arrivals;
  std::string caps_name;
  std::string caps;  // the last caps, whole
  bool no_more_pads = false;
  bool audio_pad = false;
  std::vector<std::string> pad_events;  // "audio" (pad-added), "no-more-pads", in order
};

// camerasrc's audio pad, linked to an appsink that records what arrives.
struct AudioPipeline {
  camrelay::ElementPtr pipeline{gst_pipeline_new (nullptr)};
  GstElement *camerasrc = nullptr;
  GstElement *audio_sink = nullptr;
  AudioRecord record;

  explicit AudioPipeline (const std::string &location, bool audio = true)
  {
    camerasrc = gst_element_factory_make ("camerasrc", "cam");
    GstElement *video_sink = gst_element_factory_make ("fakesink", "video_sink");
    audio_sink = gst_element_factory_make ("appsink", "audio_sink");
    g_object_set (camerasrc, "location", location.c_str (), "audio", audio, "retry-delay",
        static_cast<guint64> (100 * GST_MSECOND), "retry-delay-max",
        static_cast<guint64> (400 * GST_MSECOND), "fallback", 0, nullptr);
    g_object_set (video_sink, "sync", FALSE, nullptr);
    g_object_set (audio_sink, "sync", FALSE, "emit-signals", FALSE, nullptr);
    gst_bin_add_many (GST_BIN (pipeline.get ()), camerasrc, video_sink, audio_sink, nullptr);
    gst_element_link_pads (camerasrc, "video", video_sink, "sink");

    GstAppSinkCallbacks callbacks = {};
    callbacks.new_sample = [] (GstAppSink *sink, gpointer data) -> GstFlowReturn {
      auto *r = static_cast<AudioRecord *> (data);
      GstSample *sample = gst_app_sink_pull_sample (sink);
      if (!sample)
        return GST_FLOW_OK;
      GstBuffer *buffer = gst_sample_get_buffer (sample);
      GstCaps *caps = gst_sample_get_caps (sample);
      {
        std::lock_guard<std::mutex> lock (r->mutex);
        r->timestamps.push_back (GST_BUFFER_DTS_OR_PTS (buffer));
        r->disconts.push_back (GST_BUFFER_FLAG_IS_SET (buffer, GST_BUFFER_FLAG_DISCONT));
        r->arrivals.push_back (std::chrono::steady_clock::now ());
        if (caps) {
          r->caps_name = gst_structure_get_name (gst_caps_get_structure (caps, 0));
          camrelay::GCharPtr text{gst_caps_to_string (caps)};
          r->caps = text.get ();
        }
      }
      r->changed.notify_all ();
      gst_sample_unref (sample);
      return GST_FLOW_OK;
    };
    gst_app_sink_set_callbacks (GST_APP_SINK (audio_sink), &callbacks, &record, nullptr);

    g_signal_connect (camerasrc, "pad-added", G_CALLBACK (+[] (GstElement *, GstPad *pad,
                                                              gpointer data) {
      auto *self = static_cast<AudioPipeline *> (data);
      if (!g_str_equal (GST_PAD_NAME (pad), "audio"))
        return;
      camrelay::PadPtr sinkpad{gst_element_get_static_pad (self->audio_sink, "sink")};
      EXPECT_EQ (gst_pad_link (pad, sinkpad.get ()), GST_PAD_LINK_OK);
      {
        std::lock_guard<std::mutex> lock (self->record.mutex);
        self->record.audio_pad = true;
        self->record.pad_events.push_back ("audio");
      }
      self->record.changed.notify_all ();
    }),
        this);
    g_signal_connect (camerasrc, "no-more-pads", G_CALLBACK (+[] (GstElement *, gpointer data) {
      auto *r = static_cast<AudioRecord *> (data);
      {
        std::lock_guard<std::mutex> lock (r->mutex);
        r->no_more_pads = true;
        r->pad_events.push_back ("no-more-pads");
      }
      r->changed.notify_all ();
    }),
        &record);
  }

  ~AudioPipeline () { gst_element_set_state (pipeline.get (), GST_STATE_NULL); }

  bool wait (const std::function<bool (const AudioRecord &)> &done, std::chrono::seconds timeout)
  {
    std::unique_lock<std::mutex> lock (record.mutex);
    return record.changed.wait_for (lock, timeout, [&] { return done (record); });
  }

  // Every ERROR or EOS that reached the pipeline's bus so far.
  int errors_and_eos ()
  {
    camrelay::BusPtr bus{gst_element_get_bus (pipeline.get ())};
    int count = 0;
    while (GstMessage *m = gst_bus_pop_filtered (bus.get (),
               static_cast<GstMessageType> (GST_MESSAGE_ERROR | GST_MESSAGE_EOS))) {
      count++;
      gst_message_unref (m);
    }
    return count;
  }
};

void
expect_increasing (const std::vector<GstClockTime> &timestamps)
{
  for (size_t i = 1; i < timestamps.size (); i++) {
    ASSERT_TRUE (GST_CLOCK_TIME_IS_VALID (timestamps[i])) << "buffer " << i;
    ASSERT_GT (timestamps[i], timestamps[i - 1]) << "buffer " << i;
  }
}

// The audio received so far: count, then timestamps (s) and arrival (s
// after the first) of the first buffers, D for DISCONT.  Lock held.
std::string
describe (const AudioRecord &r)
{
  std::string text = std::to_string (r.timestamps.size ()) + " buffers:";
  for (size_t i = 0; i < r.timestamps.size () && i < 60; i++) {
    char item[64];
    std::snprintf (item, sizeof (item), " %.3f@%.3f%s", double (r.timestamps[i]) / GST_SECOND,
        std::chrono::duration<double> (r.arrivals[i] - r.arrivals[0]).count (),
        r.disconts[i] ? "D" : "");
    text += item;
  }
  return text;
}

class CameraSrcAudio : public ::testing::TestWithParam<std::pair<const char *, const char *>> {};

TEST_P (CameraSrcAudio, TheCamerasAudioComesOutOnTheAudioPad)
{
  const auto [codec, caps_name] = GetParam ();
  AudioPipeline p (std::string ("test://cam?width=320&height=240&audio=") + codec);
  ASSERT_NE (gst_element_set_state (p.pipeline.get (), GST_STATE_PLAYING),
      GST_STATE_CHANGE_FAILURE);
  ASSERT_TRUE (p.wait ([] (const AudioRecord &r) { return r.timestamps.size () >= 20; }, 10s))
      << "no audio from a camera with " << codec << " audio";
  gst_element_set_state (p.pipeline.get (), GST_STATE_NULL);

  std::lock_guard<std::mutex> lock (p.record.mutex);
  EXPECT_TRUE (p.record.audio_pad);
  EXPECT_TRUE (p.record.no_more_pads);
  EXPECT_EQ (p.record.caps_name, caps_name);
  EXPECT_TRUE (p.record.disconts.front ()) << "the first audio buffer starts the stream";
  expect_increasing (p.record.timestamps);
  EXPECT_EQ (p.errors_and_eos (), 0);
}

INSTANTIATE_TEST_SUITE_P (Codecs, CameraSrcAudio,
    ::testing::Values (std::make_pair ("aac", "audio/mpeg"), std::make_pair ("alaw", "audio/x-alaw"),
        std::make_pair ("mulaw", "audio/x-mulaw"), std::make_pair ("opus", "audio/x-opus")));

// An RTSP camera with audio: rtspsrc's audio stream goes through the
// matching depayloader (and parser) to the audio pad.
struct RtspAudio {
  const char *audio;      // FakeRtspCamera's audio option
  const char *caps_name;  // what the audio pad carries
  std::vector<const char *> caps_fields;
};

void
PrintTo (const RtspAudio &param, std::ostream *os)
{
  *os << param.audio;
}

class CameraSrcRtspAudio : public ::testing::TestWithParam<RtspAudio> {};

TEST_P (CameraSrcRtspAudio, IsDepayloadedAndParsedOnTheAudioPad)
{
  const RtspAudio &param = GetParam ();
  camtest::RtspCameraOptions options;
  options.audio = param.audio;
  camtest::FakeRtspCamera camera (options);
  ASSERT_TRUE (camera.start ());
  AudioPipeline p (camera.uri ());
  ASSERT_NE (gst_element_set_state (p.pipeline.get (), GST_STATE_PLAYING),
      GST_STATE_CHANGE_FAILURE);
  // About a second (AAC frames are 64 ms at 16 kHz, G.711 buffers 20 ms).
  ASSERT_TRUE (p.wait ([] (const AudioRecord &r) { return r.timestamps.size () >= 15; }, 10s))
      << "no audio from an RTSP camera with " << param.audio << " audio";
  gst_element_set_state (p.pipeline.get (), GST_STATE_NULL);

  std::lock_guard<std::mutex> lock (p.record.mutex);
  EXPECT_TRUE (p.record.audio_pad);
  EXPECT_TRUE (p.record.no_more_pads);
  EXPECT_EQ (p.record.caps_name, param.caps_name);
  for (const char *field : param.caps_fields)
    EXPECT_NE (p.record.caps.find (field), std::string::npos) << p.record.caps;
  EXPECT_TRUE (p.record.disconts.front ()) << "the first audio buffer starts the stream";
  expect_increasing (p.record.timestamps);
  EXPECT_EQ (p.errors_and_eos (), 0);
}

// Parsed: AAC framed, raw (with its codec data), as aacparse gives it.
INSTANTIATE_TEST_SUITE_P (Codecs, CameraSrcRtspAudio,
    ::testing::Values (RtspAudio{"aac", "audio/mpeg",
                           {"framed=(boolean)true", "stream-format=(string)raw", "codec_data",
                               "rate=(int)16000"}},
        RtspAudio{"pcma", "audio/x-alaw", {"rate=(int)8000", "channels=(int)1"}}),
    [] (const ::testing::TestParamInfo<RtspAudio> &info) {
      return std::string (info.param.audio);
    });

// The file test's body, and what it checks.
void
expect_file_audio_played_live (const std::string &path)
{
  camrelay::GCharPtr uri{gst_filename_to_uri (path.c_str (), nullptr)};
  AudioPipeline p (uri.get ());
  ASSERT_NE (gst_element_set_state (p.pipeline.get (), GST_STATE_PLAYING),
      GST_STATE_CHANGE_FAILURE);
  // 2.5 s of 64 ms AAC frames: two loops of the one-second file and a half.
  ASSERT_TRUE (p.wait ([] (const AudioRecord &r) { return r.timestamps.size () >= 40; }, 10s))
      << "less than 2.5 s of audio in 10 s from a file with sound: " << describe (p.record);
  const GstClockTime now = gst_element_get_current_running_time (p.pipeline.get ());
  GstStructure *stats = nullptr;
  g_object_get (p.camerasrc, "stats", &stats, nullptr);
  guint64 reconnects = G_MAXUINT64;
  gst_structure_get_uint64 (stats, camrelay::camerasrc_names::STAT_RECONNECTS, &reconnects);
  gst_structure_free (stats);
  gst_element_set_state (p.pipeline.get (), GST_STATE_NULL);

  std::lock_guard<std::mutex> lock (p.record.mutex);
  EXPECT_TRUE (p.record.audio_pad);
  EXPECT_EQ (p.record.caps_name, "audio/mpeg");
  expect_increasing (p.record.timestamps);
  EXPECT_EQ (p.errors_and_eos (), 0);
  EXPECT_EQ (reconnects, 0u) << "a loop is not a reconnect";
  const auto &t = p.record.timestamps;
  // Live, not a burst: 40 frames are 2.5 s of sound and of wall time.
  const double span = std::chrono::duration<double> (
      p.record.arrivals[39] - p.record.arrivals[0]).count ();
  EXPECT_GT (span, 2.0);
  EXPECT_NEAR (double (t[39] - t[0]) / GST_SECOND, 2.5, 0.3);
  // In the pipeline's running time, like the video.
  EXPECT_NEAR (double (t.back ()) / GST_SECOND, double (now) / GST_SECOND, 1.0);
}

// A recording with sound, played live and looped: the audio keeps real
// time with the pipeline, across loops, without a reconnect.
TEST (CameraSrcAudioPad, FileAudioIsPlayedLiveAndLooped)
{
  const std::string path = camtest::recording_file (320, 180, 30, 1, "mp4", "aac");
  ASSERT_FALSE (path.empty ());
  expect_file_audio_played_live (path);
}

// Hides a plugin feature from autoplugging (rank none) while in scope.
class HiddenFeature {
 public:
  explicit HiddenFeature (const char *name)
      : feature_ (gst_registry_lookup_feature (gst_registry_get (), name))
  {
    if (feature_) {
      rank_ = gst_plugin_feature_get_rank (feature_.get ());
      gst_plugin_feature_set_rank (feature_.get (), GST_RANK_NONE);
    }
  }
  ~HiddenFeature ()
  {
    if (feature_)
      gst_plugin_feature_set_rank (feature_.get (), rank_);
  }
  bool found () const { return feature_ != nullptr; }

 private:
  camrelay::ObjectPtr<GstPluginFeature> feature_;
  guint rank_ = 0;
};

// DISABLED: camerasrc never decodes, yet on a machine without an AAC decoder
// it loses the audio of a file: its file:// chain is parsebin, which
// exposes only the streams some decoder in the registry takes, and leaves
// aacparse's output as an unknown type.  No audio reaches the audio pad;
// after a few loops camerasrc warns that downstream is not reading and
// then takes each end of the file for a camera fault ("the camera ended
// the stream") and reconnects.  (The other tests have faad, an AAC
// decoder, in their plugin set.)  Enable once file:// audio needs no
// decoder.
TEST (CameraSrcAudioPad, DISABLED_FileAudioNeedsNoDecoder)
{
  const std::string path = camtest::recording_file (320, 180, 30, 1, "mp4", "aac");
  ASSERT_FALSE (path.empty ());
  HiddenFeature faad ("faad");
  ASSERT_TRUE (faad.found ());
  expect_file_audio_played_live (path);
}

TEST (CameraSrcAudioPad, AudioContinuesAcrossAReconnect)
{
  // The synthetic camera drops its connection after 1 s, every time.
  AudioPipeline p ("test://cam?width=320&height=240&audio=opus&drop-after=1");
  ASSERT_NE (gst_element_set_state (p.pipeline.get (), GST_STATE_PLAYING),
      GST_STATE_CHANGE_FAILURE);
  // More than one session's worth of audio (opus: 50 buffers a second).
  ASSERT_TRUE (p.wait ([] (const AudioRecord &r) {
    size_t disconts = 0;
    for (bool d : r.disconts)
      disconts += d;
    return disconts >= 2 && r.timestamps.size () >= 80;
  }, 15s)) << "audio did not come back after the camera reconnected";
  gst_element_set_state (p.pipeline.get (), GST_STATE_NULL);

  std::lock_guard<std::mutex> lock (p.record.mutex);
  expect_increasing (p.record.timestamps);
  EXPECT_EQ (p.errors_and_eos (), 0);
}

// The camera's video is late (its audio is not): fallback pictures go out
// while streaming, and the camera's audio keeps going out meanwhile.
TEST (CameraSrcAudioPad, AudioContinuesWhileTheVideoIsLate)
{
  camtest::RtspCameraOptions options;
  options.audio = "aac";
  camtest::FakeRtspCamera camera (options);
  ASSERT_TRUE (camera.start ());
  AudioPipeline p (camera.uri ());
  g_object_set (p.camerasrc, "timeout", static_cast<guint64> (30 * GST_SECOND), "fallback-after",
      static_cast<guint64> (300 * GST_MSECOND), "fallback-interval",
      static_cast<guint64> (100 * GST_MSECOND), nullptr);
  gst_util_set_object_arg (G_OBJECT (p.camerasrc), "fallback", "freeze");
  ASSERT_NE (gst_element_set_state (p.pipeline.get (), GST_STATE_PLAYING),
      GST_STATE_CHANGE_FAILURE);
  ASSERT_TRUE (p.wait ([] (const AudioRecord &r) { return r.timestamps.size () >= 15; }, 10s));

  camera.stall ();  // the video only: the fake camera's stalls do not stop its audio
  auto fallback_frames = [&p] {
    camrelay::StructurePtr stats = camtest::get_stats (p.camerasrc);
    return camtest::stat_u64 (stats.get (), camtest::names::STAT_FALLBACK_FRAMES);
  };
  const auto give_up = std::chrono::steady_clock::now () + 10s;
  while (fallback_frames () < 2 && std::chrono::steady_clock::now () < give_up)
    g_usleep (10000);
  ASSERT_GE (fallback_frames (), 2u);
  size_t before;
  {
    std::lock_guard<std::mutex> lock (p.record.mutex);
    before = p.record.timestamps.size ();
  }
  // About a second of AAC (64 ms frames).
  EXPECT_TRUE (p.wait ([before] (const AudioRecord &r) {
    return r.timestamps.size () >= before + 15;
  }, 5s)) << "the audio stopped while the video was late";
  EXPECT_EQ (camtest::state_property (p.camerasrc), "streaming");
  gst_element_set_state (p.pipeline.get (), GST_STATE_NULL);
  std::lock_guard<std::mutex> lock (p.record.mutex);
  expect_increasing (p.record.timestamps);
  EXPECT_EQ (p.errors_and_eos (), 0);
}

// A camera that gains audio after the first session (here: a switch to a
// camera with audio) adds the audio pad once no-more-pads is out: the set of
// pads changed, so no-more-pads follows the new pad, as gst-rtsp-server's
// dynamic payloaders and decodebin wait for it.
TEST (CameraSrcAudioPad, NoMorePadsFollowsAnAudioPadAddedLater)
{
  AudioPipeline p ("test://cam?width=320&height=240");
  ASSERT_NE (gst_element_set_state (p.pipeline.get (), GST_STATE_PLAYING),
      GST_STATE_CHANGE_FAILURE);
  ASSERT_TRUE (p.wait ([] (const AudioRecord &r) { return r.no_more_pads; }, 10s));
  g_object_set (p.camerasrc, "location", "test://cam?width=320&height=240&audio=opus", nullptr);
  const bool announced = p.wait ([] (const AudioRecord &r) {
    auto audio = std::find (r.pad_events.begin (), r.pad_events.end (), "audio");
    return audio != r.pad_events.end ()
        && std::find (audio, r.pad_events.end (), "no-more-pads") != r.pad_events.end ();
  }, 10s);
  gst_element_set_state (p.pipeline.get (), GST_STATE_NULL);
  std::lock_guard<std::mutex> lock (p.record.mutex);
  std::string events;
  for (const std::string &e : p.record.pad_events)
    events += e + " ";
  EXPECT_TRUE (announced) << "pad events: " << events;
  EXPECT_TRUE (p.record.audio_pad);
  EXPECT_EQ (p.errors_and_eos (), 0);
}

TEST (CameraSrcAudioPad, NoAudioPadWhenAudioIsOff)
{
  AudioPipeline p ("test://cam?width=320&height=240&audio=opus", false);
  ASSERT_NE (gst_element_set_state (p.pipeline.get (), GST_STATE_PLAYING),
      GST_STATE_CHANGE_FAILURE);
  // The pad set is final once no-more-pads is out.
  ASSERT_TRUE (p.wait ([] (const AudioRecord &r) { return r.no_more_pads; }, 10s));
  // The camera's audio, not delivered, must not break the connection: two
  // seconds of video (60 frames) on the first connection.
  auto stat = [&] (const char *field) {
    GstStructure *stats = nullptr;
    g_object_get (p.camerasrc, "stats", &stats, nullptr);
    guint64 value = 0;
    gst_structure_get_uint64 (stats, field, &value);
    gst_structure_free (stats);
    return value;
  };
  for (int i = 0; i < 200 && stat (camrelay::camerasrc_names::STAT_FRAMES) < 60; i++)
    std::this_thread::sleep_for (50ms);  // polling a counter: no event to wait on
  EXPECT_GE (stat (camrelay::camerasrc_names::STAT_FRAMES), 60u);
  EXPECT_EQ (stat (camrelay::camerasrc_names::STAT_CONNECTS), 1u)
      << "the unused audio stream broke the connection";
  gst_element_set_state (p.pipeline.get (), GST_STATE_NULL);
  std::lock_guard<std::mutex> lock (p.record.mutex);
  EXPECT_FALSE (p.record.audio_pad);
  EXPECT_TRUE (p.record.timestamps.empty ());
  camrelay::PadPtr pad{gst_element_get_static_pad (p.camerasrc, "audio")};
  EXPECT_EQ (pad, nullptr);
}

}  // namespace
