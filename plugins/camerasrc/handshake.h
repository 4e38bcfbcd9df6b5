// camerasrc against cameras that misbehave mid-handshake: the step an attempt
// waits for (and the reason connect-timeout gives), and stopping chains unwaited.
#pragma once

#include <gst/gst.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/gstref.h"

namespace camrelay::camerasrc {

// The step one attempt is at.  Thread-safe, with a lock of its own held for
// no call out: requests are reported from rtspsrc's task thread, progress
// from whichever thread posts it, and the manager asks for the reason.
class Handshake {
 public:
  // A new attempt begins; `rtsp`: its chain speaks RTSP (only then are
  // requests and progress followed).
  void start (bool rtsp);
  // rtspsrc is about to send a request of `method` ("DESCRIBE"...).
  // From `rtspsrc` (compared only).
  void request_sent (const void *rtspsrc, const std::string &method);
  // A progress message of the chain (see GST_MESSAGE_PROGRESS): rtspsrc
  // says "request" COMPLETE once the answer to its PLAY came.
  void progress (GstProgressType type, const std::string &code, const std::string &text);

  // The method of the last request sent in this attempt ("" before the
  // first), and whether its answer came.
  std::string pending_step (bool *answered = nullptr) const;

  // Why connect-timeout (ns) ended the attempt, naming the step: "no complete
  // answer to DESCRIBE within 1 s", "no connection within 1 s", "PLAY
  // answered but no video within 1 s"; non-RTSP chains: "no video within
  // connect-timeout".
  std::string timeout_reason (guint64 connect_timeout) const;

  // Follows the requests of `rtspsrc`, the chain of this attempt (its
  // before-send signal); those of earlier chains, still stopping, are not
  // this attempt's.  This object must outlive the element's task: it does
  // when its owner does (see retire_chain).
  void follow (GstElement *rtspsrc);

 private:
  mutable std::mutex mutex_;
  bool rtsp_ = false;
  const void *followed_ = nullptr;  // the rtspsrc of this attempt (compared only)
  std::string method_;     // last request sent in this attempt
  bool answered_ = false;  // rtspsrc said that request's command completed
};

// "1 s", "1.5 s", "250 ms": a duration in ns for a reason text.
std::string duration_text (guint64 ns);

// Takes an inner chain out of `owner` and stops it (every element to NULL,
// sinks first, then its references dropped), waiting at most `bound` for
// that.  Takes over the references in `elements` (in chain order, source
// first).  Returns true when the chain stopped within `bound`.
//
// Why: rtspsrc's NULL can block for as long as the camera keeps a
// half-sent answer trickling in.  GstRTSPConnection stops honouring its
// cancellable once the first byte of a message has arrived (may_cancel =
// FALSE until the message is complete), so rtspsrc's own flush on PAUSED to
// READY interrupts nothing, and its tcp-timeout restarts with every byte.
// Its READY to NULL then waits for its task, holding its state lock all the
// while; and GstBin takes every child's state lock in its own state changes,
// locked-state children included (gst_bin_element_set_state), so the
// owner's PLAYING to PAUSED waited on it too.  So the chain leaves the bin
// first and goes to NULL on GStreamer's thread pool (gst_element_call_async,
// which gst_deinit waits for); nobody waits for it beyond `bound`.
//
// The owner is kept alive until the chain has stopped: the chain's signal
// handlers and callbacks point to it.
//
// `barrier`: the pool thread takes and releases the owner's state lock
// before it starts, so that a state change of the owner that was already
// walking its children (and may have picked one of these just before it
// left) is over before any of them can block.  Pass true from any thread but
// the owner's own state change.
//
// `retiring` counts the chains of the owner still stopping (up on entry,
// down once stopped): each holds a thread and a connection to the camera,
// so the owner starts no new attempt while too many are (a camera that
// trickles forever would otherwise collect one per attempt).
bool retire_chain (GstBin *owner, std::vector<ElementPtr> elements, bool barrier,
    std::chrono::milliseconds bound, std::shared_ptr<std::atomic<guint>> retiring);

}  // namespace camrelay::camerasrc
