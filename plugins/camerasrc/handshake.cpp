// camerasrc's connection attempts against cameras that misbehave mid-handshake
// (see handshake.h): the step tracker and the retiring of inner chains.
#include "camerasrc/handshake.h"

#include <gst/rtsp/gstrtspmessage.h>

#include <condition_variable>
#include <cstdio>
#include <memory>

#include "common/gstref.h"

namespace camrelay::camerasrc {

void
Handshake::start (bool rtsp)
{
  std::lock_guard<std::mutex> lock (mutex_);
  rtsp_ = rtsp;
  followed_ = nullptr;
  method_.clear ();
  answered_ = false;
}

void
Handshake::request_sent (const void *rtspsrc, const std::string &method)
{
  std::lock_guard<std::mutex> lock (mutex_);
  if (rtspsrc != followed_)
    return;
  method_ = method;
  answered_ = false;
}

void
Handshake::progress (GstProgressType type, const std::string &code, const std::string &text)
{
  // rtspsrc: START "request" "Sending PLAY request" goes out when PLAY is
  // queued (before OPTIONS even), COMPLETE "request" "Sent PLAY request"
  // once its answer came; the OPEN command ("open") completes after SETUP.
  if (type != GST_PROGRESS_TYPE_COMPLETE || (code != "request" && code != "open"))
    return;
  std::lock_guard<std::mutex> lock (mutex_);
  if (!method_.empty () && text.find (method_) != std::string::npos)
    answered_ = true;
  else if (code == "open" && method_ == "SETUP")
    answered_ = true;
}

std::string
Handshake::pending_step (bool *answered) const
{
  std::lock_guard<std::mutex> lock (mutex_);
  if (answered)
    *answered = answered_;
  return method_;
}

std::string
Handshake::timeout_reason (guint64 connect_timeout) const
{
  bool rtsp;
  {
    std::lock_guard<std::mutex> lock (mutex_);
    rtsp = rtsp_;
  }
  if (!rtsp)
    return "no video within connect-timeout";
  bool answered = false;
  const std::string step = pending_step (&answered);
  const std::string within = " within " + duration_text (connect_timeout);
  if (step.empty ())
    return "no connection to the camera" + within + " (connect-timeout)";
  if (answered)
    return step + " answered but no video" + within + " (connect-timeout)";
  return "no complete answer to " + step + within + " (connect-timeout)";
}

void
Handshake::follow (GstElement *rtspsrc)
{
  // before-send (GStreamer 1.18): emitted on rtspsrc's task thread for every
  // request, just before it goes out.  Returning TRUE lets it go.
  {
    std::lock_guard<std::mutex> lock (mutex_);
    followed_ = rtspsrc;
  }
  g_signal_connect (rtspsrc, "before-send",
      G_CALLBACK (+[] (GstElement *src, GstRTSPMessage *message, gpointer data) -> gboolean {
        GstRTSPMethod method;
        if (message && gst_rtsp_message_get_type (message) == GST_RTSP_MESSAGE_REQUEST &&
            gst_rtsp_message_parse_request (message, &method, nullptr, nullptr) == GST_RTSP_OK)
          static_cast<Handshake *> (data)->request_sent (src, gst_rtsp_method_as_text (method));
        return TRUE;
      }),
      this);
}

std::string
duration_text (guint64 ns)
{
  char text[32];
  if (ns < GST_SECOND)
    std::snprintf (text, sizeof (text), "%u ms", static_cast<unsigned> (ns / GST_MSECOND));
  else
    std::snprintf (text, sizeof (text), "%g s", static_cast<double> (ns / GST_MSECOND) / 1000.0);
  return text;
}

namespace {

// A chain on its way to NULL on the thread pool, and who waits for it.
struct Retiring {
  std::vector<ElementPtr> elements;  // chain order, source first
  ElementPtr owner;                  // kept alive until the chain stopped
  bool barrier = false;              // pass the owner's state lock first
  std::shared_ptr<std::atomic<guint>> retiring;  // the owner's count of these
  struct Done {
    std::mutex mutex;
    std::condition_variable cond;
    bool done = false;
  };
  std::shared_ptr<Done> done = std::make_shared<Done> ();
};

void
stop_retiring (GstElement *, gpointer data)
{
  auto *retiring = static_cast<Retiring *> (data);
  if (retiring->barrier) {
    // A state change of the owner that started before the chain left the
    // bin is over once its state lock is free (see retire_chain).
    GST_STATE_LOCK (retiring->owner.get ());
    GST_STATE_UNLOCK (retiring->owner.get ());
  }
  // Sinks first, like a bin: a streaming thread blocked downstream is
  // released before its source waits for it.
  for (auto it = retiring->elements.rbegin (); it != retiring->elements.rend (); ++it)
    gst_element_set_state (it->get (), GST_STATE_NULL);
  retiring->elements.clear ();
  // Last: the owner may go with it (finalized on this thread).
  std::shared_ptr<Retiring::Done> done = retiring->done;
  retiring->owner.reset ();
  if (retiring->retiring)
    (*retiring->retiring)--;
  {
    std::lock_guard<std::mutex> lock (done->mutex);
    done->done = true;
  }
  done->cond.notify_all ();
}

}  // namespace

bool
retire_chain (GstBin *owner, std::vector<ElementPtr> elements, bool barrier,
    std::chrono::milliseconds bound, std::shared_ptr<std::atomic<guint>> count)
{
  if (elements.empty ())
    return true;
  auto *retiring = new Retiring;
  retiring->retiring = std::move (count);
  if (retiring->retiring)
    (*retiring->retiring)++;
  retiring->elements = std::move (elements);
  retiring->owner.reset (GST_ELEMENT (gst_object_ref (owner)));
  retiring->barrier = barrier;
  // Out of the bin before anything can block: from now on no state change
  // of the bin walks into these elements.  Our references keep them alive.
  for (const ElementPtr &e : retiring->elements)
    gst_bin_remove (owner, e.get ());
  std::shared_ptr<Retiring::Done> done = retiring->done;
  GstElement *first = retiring->elements.front ().get ();
  gst_element_call_async (first, stop_retiring, retiring,
      [] (gpointer data) { delete static_cast<Retiring *> (data); });
  std::unique_lock<std::mutex> lock (done->mutex);
  return done->cond.wait_for (lock, bound, [&done] { return done->done; });
}

}  // namespace camrelay::camerasrc
