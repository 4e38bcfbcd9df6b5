// camerasrc's private side, shared by the files of plugins/camerasrc/: the
// instance's private struct, its settings and outputs, and the functions one
// room of the element calls in another.  Not for the launcher or the tests.
#pragma once

#include <gio/gio.h>
#include <gst/app/app.h>
#include <gst/gst.h>

#include <chrono>
#include <atomic>
#include <condition_variable>
#include <memory>
#include <deque>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "camerasrc/faults.h"
#include "camerasrc/gstcamerasrc.h"
#include "camerasrc/handshake.h"
#include "camerasrc/statemachine.h"
#include "camerasrc/timeline.h"
#include "common/codecs.h"
#include "common/element_names.h"
#include "common/gstref.h"

GST_DEBUG_CATEGORY_EXTERN (camera_src_debug);
#define GST_CAT_DEFAULT camera_src_debug

namespace camrelay::camerasrc {

using Lock = std::unique_lock<std::mutex>;

constexpr guint DEFAULT_LATENCY_MS = 200;
constexpr guint64 DEFAULT_RETRY_DELAY = GST_SECOND;
constexpr guint64 DEFAULT_RETRY_DELAY_MAX = 30 * GST_SECOND;
constexpr gint DEFAULT_MAX_RETRIES = -1;
constexpr guint64 DEFAULT_TIMEOUT = 5 * GST_SECOND;
constexpr guint64 DEFAULT_CONNECT_TIMEOUT = 10 * GST_SECOND;
constexpr guint64 DEFAULT_FALLBACK_INTERVAL = 500 * GST_MSECOND;
// Fallback pictures start once no camera frame went out for this long.
constexpr guint64 DEFAULT_FALLBACK_AFTER = 500 * GST_MSECOND;
constexpr GstCameraSrcProtocols DEFAULT_PROTOCOLS = GST_CAMERA_SRC_PROTOCOLS_TCP;
constexpr GstCameraSrcFallback DEFAULT_FALLBACK = GST_CAMERA_SRC_FALLBACK_FREEZE;
// Streaming this long makes the next fault start the backoff from retry-delay.
constexpr guint64 DEFAULT_RETRY_RESET_TIME = 60 * GST_SECOND;
// Longest a teardown waits for the inner chain to stop; a chain stuck on a
// camera that trickles a never-ending answer stops in the background
// (see retire_chain in handshake.h).
constexpr auto RETIRE_BOUND = std::chrono::milliseconds (200);
// No new attempt while this many earlier chains are still stopping.
constexpr guint MAX_RETIRING = 2;

enum class StreamKind { Video, Audio };

// What an output of `kind` delivers: every codec of that kind (common/codecs.h).
GstCaps *output_caps (StreamKind kind);

struct Settings {
  std::string location;
  std::string user_id;
  std::string user_pw;
  GstCameraSrcProtocols protocols = DEFAULT_PROTOCOLS;
  guint latency_ms = DEFAULT_LATENCY_MS;
  bool audio = true;
  guint64 retry_delay = DEFAULT_RETRY_DELAY;
  guint64 retry_delay_max = DEFAULT_RETRY_DELAY_MAX;
  guint64 retry_reset_time = DEFAULT_RETRY_RESET_TIME;
  gint max_retries = DEFAULT_MAX_RETRIES;
  guint64 timeout = DEFAULT_TIMEOUT;
  guint64 connect_timeout = DEFAULT_CONNECT_TIMEOUT;
  GstCameraSrcFallback fallback = DEFAULT_FALLBACK;
  guint64 fallback_interval = DEFAULT_FALLBACK_INTERVAL;
  guint64 fallback_after = DEFAULT_FALLBACK_AFTER;
};

// What goes to an output appsrc, decided under the lock.
struct Outgoing {
  ElementPtr appsrc;
  CapsPtr new_caps;             // set when the caps changed
  ObjectPtr<GstStream> stream;  // with new caps: the stream they are for
  bool new_stream = false;      // another codec: a stream-start first
  guint32 group_id = 0;
  BufferPtr buffer;
};

// One output: a persistent appsrc ghosted to our pad, and the continuity
// state of what went out through it (its OutputTimeline).
struct Output : OutputTimeline {
  // What was stamped for this output, in the order it was stamped, waiting
  // to go to the appsrc, and whether a thread is pushing it (the element's
  // lock guards both).  Whoever queues while nobody pushes pushes it all,
  // with no lock of ours held (push_queued): the camera's frames and the
  // fallback pictures keep their order and timestamps, and the camera's
  // streaming thread never waits for the manager's push, nor the reverse.
  std::deque<Outgoing> queued;
  bool pushing = false;
  ElementPtr appsrc;             // a child of the bin; we hold a reference too
  CapsPtr caps;                  // last caps sent
  // The stream going out, a new one for each codec: announced downstream
  // by its stream-start, which carries it, and a stream-collection before
  // its first buffer (see on_output_data).
  ObjectPtr<GstStream> stream;
  guint32 group_id = 0;  // shared by the element's streams
};

struct Stats {
  guint64 connects = 0;
  guint64 reconnects = 0;
  guint64 bytes = 0;
  guint64 frames = 0;
  guint64 keyframes = 0;
  guint64 fallback_frames = 0;
  std::string last_error;
  std::optional<Clock::time_point> last_frame;
  gint width = 0;
  gint height = 0;
  gint fps_n = 0;
  gint fps_d = 1;
  std::string codec;
  std::deque<std::pair<Clock::time_point, gsize>> bitrate_window;
};

// A clock entry (GstClockID): neither a GstObject nor a mini object.
using ClockIdPtr = UniqueRef<void, gst_clock_id_unref>;

// Passed to the appsink and pad callbacks of one session.
struct SinkContext {
  GstCameraSrc *self;
  guint64 generation;
  StreamKind kind;
};

// A slate being made (fallback.cpp): a small pipeline of its own that encodes
// one "camera offline" picture in the background, while the manager goes on.
struct SlateBuild {
  ElementPtr pipeline;
  ElementPtr sink;
  std::string codec;
  gint width = 0;
  gint height = 0;
  Clock::time_point deadline = Clock::time_point::max ();
};

}  // namespace camrelay::camerasrc

struct GstCameraSrcPrivate {
  std::mutex lock;
  std::condition_variable wake;  // the manager thread waits on it

  camrelay::camerasrc::Settings settings;

  GstCameraSrcState state = GST_CAMERA_SRC_STATE_STOPPED;
  guint attempt = 0;
  std::string state_reason;

  // Manager thread and its inbox; guarded by `lock`.
  std::thread manager;
  bool running = false;
  bool location_changed = false;
  camrelay::camerasrc::FaultSlot fault;  // reported by a child or a callback
  std::string session_warning;       // the session's last warning, redacted
  camrelay::GObjectPtr<GCancellable> diagnosis;  // the diagnosis under way (see diagnose_http)
  bool end_of_file = false;          // file:// reached its end: loop
  bool first_frame = false;          // the session delivered its first keyframe
  bool camera_back = false;          // the readiness check saw the camera accept again
  bool reconsider = false;           // a setting next_wake () reads changed
  // The step the current attempt is at (handshake.h); its own lock.
  camrelay::camerasrc::Handshake handshake;
  // Earlier chains still stopping in the background (retire_chain).
  std::shared_ptr<std::atomic<guint>> retiring = std::make_shared<std::atomic<guint>> (0);

  // The current inner chain.  `generation` changes whenever it is torn down,
  // so that late callbacks of an old chain are ignored.
  guint64 generation = 0;
  std::vector<camrelay::ElementPtr> session_elements;
  bool session_is_file = false;
  bool no_more_pads_sent = false;

  camrelay::camerasrc::Output video;
  camrelay::camerasrc::Output audio;

  // Fallback material.
  camrelay::BufferPtr last_keyframe;
  camrelay::CapsPtr last_keyframe_caps;
  camrelay::SamplePtr slate;

  // Time (manager.cpp, element_now): the element's clock (set_clock), or
  // the steady clock while it has none, shifted by `clock_offset` so that
  // it runs on without a jump when the clock changes.  The manager's
  // deadlines, the stats' times and `times` are all on it, so that a test
  // drives them with a GstTestClock.  What bounds real work (a handshake,
  // a teardown, the HTTP diagnosis) stays on real time.
  camrelay::ClockPtr clock;
  std::chrono::nanoseconds clock_offset{0};
  // The manager's wake-up on `clock`, a single-shot entry, and whether it fired.
  camrelay::camerasrc::ClockIdPtr wake_entry;
  bool wake_due = false;

  camrelay::camerasrc::Stats stats;
  // When the camera last delivered a video frame that went out (delta frames
  // held until a keyframe are no sign of life): the stall timeout counts
  // from it.
  std::optional<camrelay::camerasrc::Clock::time_point> last_video_in;
  // When the current attempt's video data began to come (session.cpp: a
  // probe on the depayloader): connecting, the camera delivers.
  std::optional<camrelay::camerasrc::Clock::time_point> attempt_first_data;
  camrelay::camerasrc::StateTimes times;
  std::optional<camrelay::camerasrc::Clock::time_point> last_warning;
};

struct _GstCameraSrc {
  GstBin parent;
  GstPad *video_pad;
  GstPad *audio_pad;
  GstCameraSrcPrivate *priv;
};

namespace camrelay::camerasrc {

// ---- output.cpp: the outputs, their timestamps and their streams -------------

Output &output_for (GstCameraSrcPrivate &p, StreamKind kind);
// The pipeline's running time now, or NONE without a clock.
GstClockTime running_time_now (GstElement *element);
bool prepare_buffer (Output &out, const Output *leader, GstBuffer *buffer, GstCaps *caps,
    GstClockTime pts, GstClockTime dts, bool from_camera, Outgoing &outgoing);
// Pushes what is queued for `out` unless another thread is at it (lock not held).
void push_queued (GstCameraSrc *self, Output &out);
void on_camera_sample (GstCameraSrc *self, const SinkContext &ctx, GstSample *sample);
ElementPtr make_output_appsrc (const char *name, guint latency_ms);
ObjectPtr<GstStream> init_output_stream (GstCameraSrc *self, GstElement *appsrc, StreamKind kind);
// Ghosts `appsrc` to the element's pad of template `name` ("video", "audio").
GstPad *ghost_output (GstCameraSrc *self, GstElement *appsrc, const char *name);
void ensure_audio_output (GstCameraSrc *self);

// ---- session.cpp: building and tearing down the inner chain -----------------

std::optional<std::string> build_session (GstCameraSrc *self, guint64 generation,
    const Settings &settings);
// `in_state_change`: called from the element's own state change, not from
// the manager thread.  `wait`: how long to wait for the chain to stop.
void teardown_session (GstCameraSrc *self, bool in_state_change = false,
    std::chrono::milliseconds wait = RETIRE_BOUND);
void report_fault (GstCameraSrc *self, guint64 generation, std::string reason,
    const FaultOrigin &origin = FaultOrigin ());

// ---- fallback.cpp: pictures while the camera is away ------------------------

void drop_slate (SlateBuild &build);
void poll_slate (GstCameraSrc *self, SlateBuild &build);
void start_slate (GstCameraSrc *self, SlateBuild &build);
void send_fallback (GstCameraSrc *self);

// ---- diagnosis.cpp: why an HTTP camera cannot be reached --------------------

std::string explain_generic_fault (GstCameraSrc *self, const std::string &reason,
    const std::string &warning, bool had_video, const Settings &settings);
void cancel_diagnosis (GstCameraSrcPrivate &p);

// ---- manager.cpp: the manager thread and the element's state -----------------

void start_manager (GstCameraSrc *self);
// The element's time now (see GstCameraSrcPrivate::clock); lock held, or not.
Clock::time_point now_locked (GstCameraSrcPrivate &p);
Clock::time_point element_now (GstCameraSrcPrivate &p);
// Time follows `clock` from now on (set_clock); the manager re-arms its wake-up.
void use_clock (GstCameraSrc *self, GstClock *clock);
void stop_manager (GstCameraSrc *self);

}  // namespace camrelay::camerasrc
