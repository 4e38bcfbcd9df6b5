// A pipeline under test that ends in an appsink named "sink": records every
// frame (timestamps, flags, caps, arrival time), the sticky events reaching
// the sink, and every bus message (errors, warnings, EOS, element messages
// such as camerasrc-state), and lets the test wait for them with a bound.
#pragma once

#include <gst/app/gstappsink.h>
#include <gst/gst.h>
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "common/element_names.h"
#include "common/enums.h"
#include "common/gstref.h"

namespace camtest {

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

inline double
seconds_between (SteadyClock::time_point from, SteadyClock::time_point to)
{
  return std::chrono::duration<double> (to - from).count ();
}

struct FrameRecord {
  GstClockTime pts = GST_CLOCK_TIME_NONE;
  GstClockTime dts = GST_CLOCK_TIME_NONE;
  bool keyframe = false;
  bool discont = false;
  gsize size = 0;
  guint64 checksum = 0;  // FNV-1a of the bytes: tells two pictures apart
  int width = 0;
  int height = 0;
  std::string media_type;
  int caps_generation = 0;  // 1 for the first caps, +1 on every caps change
  SteadyClock::time_point arrival;
};

struct MessageRecord {
  GstMessageType type = GST_MESSAGE_UNKNOWN;
  std::string source;     // name of the object that posted it
  std::string name;       // structure name for element messages
  std::string text;       // error/warning: message + debug; element: structure string
  GQuark domain = 0;      // error/warning domain
  int code = 0;
  SteadyClock::time_point arrival;
  // camerasrc-state fields ("" / 0 when absent)
  std::string state;
  std::string previous;
  std::string reason;
  guint attempt = 0;
  guint64 retry_in = 0;
  std::string location;
};

// Nick of an enum field (or the string itself when the field is a string).
inline std::string
enum_field_nick (const GstStructure *structure, const char *field)
{
  const GValue *value = gst_structure_get_value (structure, field);
  if (!value)
    return "";
  if (G_VALUE_HOLDS_STRING (value))
    return g_value_get_string (value) ? g_value_get_string (value) : "";
  const char *nick = camrelay::enum_nick (value);
  return nick ? nick : "?";
}

class TestPipeline {
 public:
  TestPipeline () = default;
  ~TestPipeline () { stop (); }
  TestPipeline (const TestPipeline &) = delete;
  TestPipeline &operator= (const TestPipeline &) = delete;

  // Builds the pipeline; it must contain an appsink named "sink" (or none).
  bool launch (const std::string &description)
  {
    GError *error = nullptr;
    GstElement *pipeline = gst_parse_launch (description.c_str (), &error);
    if (error) {
      ADD_FAILURE () << "gst_parse_launch '" << description << "': " << error->message;
      g_error_free (error);
      if (pipeline)
        gst_object_unref (pipeline);
      return false;
    }
    pipeline_.reset (pipeline);
    camrelay::BusPtr bus{gst_element_get_bus (pipeline)};
    gst_bus_set_sync_handler (bus.get (), on_message, this, nullptr);
    sink_.reset (gst_bin_get_by_name (GST_BIN (pipeline), "sink"));
    if (sink_) {
      GstAppSinkCallbacks callbacks = {};
      callbacks.new_sample = on_new_sample;
      gst_app_sink_set_callbacks (GST_APP_SINK (sink_.get ()), &callbacks, this, nullptr);
      camrelay::PadPtr pad{gst_element_get_static_pad (sink_.get (), "sink")};
      gst_pad_add_probe (pad.get (), GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM, on_event, this, nullptr);
    }
    return true;
  }

  GstElement *pipeline () const { return pipeline_.get (); }
  GstElement *sink () const { return sink_.get (); }
  GstElement *by_name (const char *name) const
  {
    // Borrowed: the pipeline keeps its children alive.
    camrelay::ElementPtr element{gst_bin_get_by_name (GST_BIN (pipeline_.get ()), name)};
    return element.get ();
  }

  GstStateChangeReturn set_state (GstState state)
  {
    return gst_element_set_state (pipeline_.get (), state);
  }
  bool play () { return set_state (GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE; }

  // To NULL; returns how long it took.
  double stop ()
  {
    if (!pipeline_)
      return 0;
    auto start = SteadyClock::now ();
    gst_element_set_state (pipeline_.get (), GST_STATE_NULL);
    double seconds = seconds_between (start, SteadyClock::now ());
    camrelay::BusPtr bus{gst_element_get_bus (pipeline_.get ())};
    gst_bus_set_sync_handler (bus.get (), nullptr, nullptr, nullptr);
    sink_.reset ();
    pipeline_.reset ();
    gst_caps_replace (&last_caps_, nullptr);
    return seconds;
  }

  // Waits until `predicate` (called with the lock held) holds, at most `timeout`.
  bool wait_until (const std::function<bool ()> &predicate, std::chrono::milliseconds timeout)
  {
    std::unique_lock<std::mutex> lock (mutex_);
    return cond_.wait_for (lock, timeout, predicate);
  }
  bool wait_frames (size_t count, std::chrono::milliseconds timeout)
  {
    return wait_until ([&] { return frames_.size () >= count; }, timeout);
  }
  // Waits for a frame that arrived after `after`; returns its index or -1.
  long wait_frame_after (SteadyClock::time_point after, std::chrono::milliseconds timeout)
  {
    long index = -1;
    wait_until ([&] {
      for (size_t i = frames_.size (); i-- > 0;) {
        if (frames_[i].arrival <= after)
          break;
        index = static_cast<long> (i);
      }
      return index >= 0;
    }, timeout);
    return index;
  }
  bool wait_message (const std::function<bool (const MessageRecord &)> &match,
      std::chrono::milliseconds timeout, size_t from = 0)
  {
    return wait_until ([&] {
      for (size_t i = from; i < messages_.size (); i++)
        if (match (messages_[i]))
          return true;
      return false;
    }, timeout);
  }
  bool wait_error (std::chrono::milliseconds timeout)
  {
    return wait_message ([] (const MessageRecord &m) { return m.type == GST_MESSAGE_ERROR; },
        timeout);
  }
  bool wait_error_or_eos (std::chrono::milliseconds timeout)
  {
    return wait_message ([] (const MessageRecord &m) {
      return m.type == GST_MESSAGE_ERROR || m.type == GST_MESSAGE_EOS;
    }, timeout);
  }
  // Waits for a camerasrc-state message with this state, among the state
  // messages from the `from`th one on (see state_messages ()).
  // With `count`, waits for that many of them.
  bool wait_state (const std::string &state, std::chrono::milliseconds timeout, size_t from = 0,
      size_t count = 1)
  {
    return wait_until ([&] {
      size_t index = 0, seen = 0;
      for (const auto &m : messages_) {
        if (m.name != camrelay::camerasrc_names::STATE_MESSAGE)
          continue;
        if (index++ >= from && m.state == state && ++seen >= count)
          return true;
      }
      return false;
    }, timeout);
  }

  std::vector<FrameRecord> frames () const
  {
    std::lock_guard<std::mutex> lock (mutex_);
    return frames_;
  }
  size_t frame_count () const
  {
    std::lock_guard<std::mutex> lock (mutex_);
    return frames_.size ();
  }
  std::vector<MessageRecord> messages () const
  {
    std::lock_guard<std::mutex> lock (mutex_);
    return messages_;
  }
  size_t message_count () const
  {
    std::lock_guard<std::mutex> lock (mutex_);
    return messages_.size ();
  }
  std::vector<MessageRecord> messages_of (GstMessageType type) const
  {
    std::vector<MessageRecord> out;
    for (auto &m : messages ())
      if (m.type == type)
        out.push_back (m);
    return out;
  }
  std::vector<MessageRecord> state_messages () const
  {
    std::vector<MessageRecord> out;
    for (auto &m : messages ())
      if (m.name == camrelay::camerasrc_names::STATE_MESSAGE)
        out.push_back (m);
    return out;
  }
  // "connecting", "streaming", ... in order.
  std::vector<std::string> states () const
  {
    std::vector<std::string> out;
    for (auto &m : state_messages ())
      out.push_back (m.state);
    return out;
  }
  int event_count (GstEventType type) const
  {
    std::lock_guard<std::mutex> lock (mutex_);
    int count = 0;
    for (auto t : events_)
      if (t == type)
        count++;
    return count;
  }
  std::string describe_messages () const
  {
    std::string out;
    for (auto &m : messages ()) {
      if (m.type != GST_MESSAGE_ERROR && m.type != GST_MESSAGE_WARNING &&
          m.type != GST_MESSAGE_EOS && m.type != GST_MESSAGE_ELEMENT)
        continue;
      out += std::string ("  ") + GST_MESSAGE_TYPE_NAME_OF (m.type) + " from " + m.source + ": " +
             m.text + "\n";
    }
    return out;
  }

 private:
  static const char *GST_MESSAGE_TYPE_NAME_OF (GstMessageType type)
  {
    return gst_message_type_get_name (type);
  }

  static guint64 checksum (GstBuffer *buffer)
  {
    guint64 hash = 14695981039346656037ull;
    GstMapInfo map;
    if (!gst_buffer_map (buffer, &map, GST_MAP_READ))
      return 0;
    for (gsize i = 0; i < map.size; i++)
      hash = (hash ^ map.data[i]) * 1099511628211ull;
    gst_buffer_unmap (buffer, &map);
    return hash;
  }

  static GstFlowReturn on_new_sample (GstAppSink *appsink, gpointer user_data)
  {
    auto *self = static_cast<TestPipeline *> (user_data);
    GstSample *sample = gst_app_sink_pull_sample (appsink);
    if (!sample)
      return GST_FLOW_FLUSHING;
    FrameRecord frame;
    frame.arrival = SteadyClock::now ();
    GstBuffer *buffer = gst_sample_get_buffer (sample);
    frame.pts = GST_BUFFER_PTS (buffer);
    frame.dts = GST_BUFFER_DTS (buffer);
    frame.keyframe = !GST_BUFFER_FLAG_IS_SET (buffer, GST_BUFFER_FLAG_DELTA_UNIT);
    frame.discont = GST_BUFFER_FLAG_IS_SET (buffer, GST_BUFFER_FLAG_DISCONT);
    frame.size = gst_buffer_get_size (buffer);
    frame.checksum = checksum (buffer);
    GstCaps *caps = gst_sample_get_caps (sample);
    {
      std::lock_guard<std::mutex> lock (self->mutex_);
      if (caps) {
        if (!self->last_caps_ || !gst_caps_is_equal (caps, self->last_caps_)) {
          gst_caps_replace (&self->last_caps_, caps);
          self->caps_generation_++;
        }
        const GstStructure *s = gst_caps_get_structure (caps, 0);
        frame.media_type = gst_structure_get_name (s);
        gst_structure_get_int (s, "width", &frame.width);
        gst_structure_get_int (s, "height", &frame.height);
      }
      frame.caps_generation = self->caps_generation_;
      self->frames_.push_back (frame);
    }
    gst_sample_unref (sample);
    self->cond_.notify_all ();
    return GST_FLOW_OK;
  }

  static GstPadProbeReturn on_event (GstPad *, GstPadProbeInfo *info, gpointer user_data)
  {
    auto *self = static_cast<TestPipeline *> (user_data);
    {
      std::lock_guard<std::mutex> lock (self->mutex_);
      self->events_.push_back (GST_EVENT_TYPE (GST_PAD_PROBE_INFO_EVENT (info)));
    }
    self->cond_.notify_all ();
    return GST_PAD_PROBE_OK;
  }

  // A sync handler that returns GST_BUS_DROP owns the message and must
  // unref it: without that, every message and the objects it refers to (the
  // pipeline and its elements) stayed alive for good.
  static GstBusSyncReply on_message (GstBus *, GstMessage *message, gpointer user_data)
  {
    record_message (message, static_cast<TestPipeline *> (user_data));
    gst_message_unref (message);
    return GST_BUS_DROP;
  }

  static void record_message (GstMessage *message, TestPipeline *self)
  {
    MessageRecord record;
    record.type = GST_MESSAGE_TYPE (message);
    record.arrival = SteadyClock::now ();
    if (GST_MESSAGE_SRC (message))
      record.source = GST_OBJECT_NAME (GST_MESSAGE_SRC (message)) ? GST_OBJECT_NAME (GST_MESSAGE_SRC (message)) : "";
    switch (GST_MESSAGE_TYPE (message)) {
      case GST_MESSAGE_ERROR:
      case GST_MESSAGE_WARNING: {
        GError *error = nullptr;
        gchar *debug = nullptr;
        if (GST_MESSAGE_TYPE (message) == GST_MESSAGE_ERROR)
          gst_message_parse_error (message, &error, &debug);
        else
          gst_message_parse_warning (message, &error, &debug);
        record.text = std::string (error->message) + " (" + (debug ? debug : "") + ")";
        record.domain = error->domain;
        record.code = error->code;
        g_error_free (error);
        g_free (debug);
        break;
      }
      case GST_MESSAGE_ELEMENT: {
        const GstStructure *s = gst_message_get_structure (message);
        if (!s)
          break;
        record.name = gst_structure_get_name (s);
        camrelay::GCharPtr text{gst_structure_to_string (s)};
        record.text = text.get ();
        namespace names = camrelay::camerasrc_names;
        if (record.name == names::STATE_MESSAGE) {
          record.state = enum_field_nick (s, names::FIELD_STATE);
          record.previous = enum_field_nick (s, names::FIELD_PREVIOUS);
          if (const gchar *reason = gst_structure_get_string (s, names::FIELD_REASON))
            record.reason = reason;
          if (const gchar *location = gst_structure_get_string (s, names::FIELD_LOCATION))
            record.location = location;
          gst_structure_get_uint (s, names::FIELD_ATTEMPT, &record.attempt);
          gst_structure_get_uint64 (s, names::FIELD_RETRY_IN, &record.retry_in);
        }
        break;
      }
      case GST_MESSAGE_LATENCY:
        // What gst-launch does, off the streaming thread that posted it.
        gst_element_call_async (self->pipeline_.get (), [] (GstElement *pipeline, gpointer) {
          gst_bin_recalculate_latency (GST_BIN (pipeline));
        }, nullptr, nullptr);
        return;
      case GST_MESSAGE_EOS:
      case GST_MESSAGE_STATE_CHANGED:
      case GST_MESSAGE_STREAM_START:
        break;
      default:
        return;
    }
    {
      std::lock_guard<std::mutex> lock (self->mutex_);
      self->messages_.push_back (std::move (record));
    }
    self->cond_.notify_all ();
  }

  camrelay::ElementPtr pipeline_;
  camrelay::ElementPtr sink_;
  mutable std::mutex mutex_;
  std::condition_variable cond_;
  std::vector<FrameRecord> frames_;
  std::vector<MessageRecord> messages_;
  std::vector<GstEventType> events_;
  GstCaps *last_caps_ = nullptr;  // owned (CapsPtr's inline deleter cannot be a member here)
  int caps_generation_ = 0;
};

}  // namespace camtest
