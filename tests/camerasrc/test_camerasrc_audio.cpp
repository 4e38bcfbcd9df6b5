// camerasrc's audio pad: added when the camera has audio (and audio=true),
// carrying the camera's codec, with running-time timestamps that increase and
// survive a reconnect; absent with audio=false.
#include <gst/app/app.h>
#include <gst/gst.h>
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <string>
#include <vector>

#include "common/gstref.h"

namespace {

using namespace std::chrono_literals;

struct AudioRecord {
  std::mutex mutex;
  std::condition_variable changed;
  std::vector<GstClockTime> timestamps;
  std::vector<bool> disconts;
  std::string caps_name;
  bool no_more_pads = false;
  bool audio_pad = false;
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
        if (caps)
          r->caps_name = gst_structure_get_name (gst_caps_get_structure (caps, 0));
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
      std::lock_guard<std::mutex> lock (self->record.mutex);
      self->record.audio_pad = true;
    }),
        this);
    g_signal_connect (camerasrc, "no-more-pads", G_CALLBACK (+[] (GstElement *, gpointer data) {
      auto *r = static_cast<AudioRecord *> (data);
      {
        std::lock_guard<std::mutex> lock (r->mutex);
        r->no_more_pads = true;
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
  for (int i = 0; i < 200 && stat ("frames") < 60; i++)
    std::this_thread::sleep_for (50ms);  // polling a counter: no event to wait on
  EXPECT_GE (stat ("frames"), 60u);
  EXPECT_EQ (stat ("connects"), 1u) << "the unused audio stream broke the connection";
  gst_element_set_state (p.pipeline.get (), GST_STATE_NULL);
  std::lock_guard<std::mutex> lock (p.record.mutex);
  EXPECT_FALSE (p.record.audio_pad);
  EXPECT_TRUE (p.record.timestamps.empty ());
  camrelay::PadPtr pad{gst_element_get_static_pad (p.camerasrc, "audio")};
  EXPECT_EQ (pad, nullptr);
}

}  // namespace
