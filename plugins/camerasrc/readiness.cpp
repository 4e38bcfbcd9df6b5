// camerasrc's readiness check (see readiness.h): the one thread the checks
// share, and each check's tries.
#include "camerasrc/readiness.h"

#include <gio/gio.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "camerasrc/camerauri.h"
#include "common/gstref.h"
#include "common/uri_schemes.h"

GST_DEBUG_CATEGORY_EXTERN (camera_src_debug);
#define GST_CAT_DEFAULT camera_src_debug

namespace camrelay::camerasrc {

namespace {

// Longest the thread waits, once the last check is gone, for the tries it
// cancelled to finish (they do at the next iteration).
constexpr auto DRAIN_BOUND = std::chrono::milliseconds (500);
constexpr guint DRAIN_TICK_MS = 20;

// The thread every check runs on.  `mutex_` guards the start and the stop;
// the thread itself touches only the context and the atomics.
class Watcher {
 public:
  // The running thread's context (started with the first use); takes a use.
  GMainContext *acquire ()
  {
    std::lock_guard<std::mutex> lock (mutex_);
    if (users_++ == 0) {
      context_ = g_main_context_new ();
      stopping_ = false;
      thread_ = std::thread (&Watcher::run, this);
    }
    return context_;
  }

  // Gives a use back; the last one stops the thread and joins it.
  void release ()
  {
    std::lock_guard<std::mutex> lock (mutex_);
    if (--users_ > 0)
      return;
    stopping_ = true;
    g_main_context_wakeup (context_);
    thread_.join ();
    g_main_context_unref (context_);
    context_ = nullptr;
  }

  void try_started () { in_flight_++; }
  void try_done () { in_flight_--; }

 private:
  void run ()
  {
    // GSocketClient attaches its sources to the thread-default context.
    g_main_context_push_thread_default (context_);
    while (!stopping_)
      g_main_context_iteration (context_, TRUE);
    // The tries cancelled by the checks' destructors report back here.
    UniqueRef<GSource, g_source_unref> tick{g_timeout_source_new (DRAIN_TICK_MS)};
    g_source_set_callback (tick.get (), [] (gpointer) -> gboolean { return G_SOURCE_CONTINUE; }, nullptr,
        nullptr);
    g_source_attach (tick.get (), context_);
    const auto deadline = std::chrono::steady_clock::now () + DRAIN_BOUND;
    while (in_flight_ > 0 && std::chrono::steady_clock::now () < deadline)
      g_main_context_iteration (context_, TRUE);
    if (in_flight_ > 0)
      GST_WARNING ("%u readiness tries still under way at the end", in_flight_.load ());
    g_source_destroy (tick.get ());
    g_main_context_pop_thread_default (context_);
  }

  std::mutex mutex_;
  guint users_ = 0;
  GMainContext *context_ = nullptr;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::atomic<guint> in_flight_{0};
};

// Never destroyed: a thread still running at exit must not meet a destroyed
// std::thread.  Joined whenever no check runs.
Watcher &
watcher ()
{
  static Watcher *instance = new Watcher;
  return *instance;
}

}  // namespace

// One check.  The watcher thread owns `seen_down` and `in_flight`; `mutex`
// guards `finished` and the call of `ready` against the destructor.
struct ReadinessCheck::Probe {
  std::string uri;
  guint16 default_port = 0;
  std::string what;  // the URI without credentials, for the log
  GObjectPtr<GSocketClient> client;
  GObjectPtr<GCancellable> cancellable{g_cancellable_new ()};
  GSource *timer = nullptr;  // ours; destroyed by whoever finishes the check

  bool seen_down = false;  // a try failed: the next one that connects is the return
  guint in_flight = 0;
  guint quiet_ticks = 0;   // ticks to let pass: the camera accepted

  std::mutex mutex;
  bool finished = false;
  Ready ready;
  std::function<bool ()> wanted;  // set once, before the first try

  ~Probe ()
  {
    if (timer)
      g_source_unref (timer);
  }
};

using ProbeRef = std::shared_ptr<ReadinessCheck::Probe>;

static void
free_probe_ref (gpointer data)
{
  delete static_cast<ProbeRef *> (data);
}

// A try connected: the camera accepts.
static void
on_accepted (ReadinessCheck::Probe &probe)
{
  if (!probe.seen_down) {
    // Reachable all along: the fault lies beyond TCP, and its backoff runs
    // on.  Tried now and then only, in case it goes away and comes back.
    GST_LOG ("%s accepts connections: no return to wait for", probe.what.c_str ());
    probe.quiet_ticks = static_cast<guint> (READINESS_QUIET_INTERVAL / READINESS_INTERVAL) - 1;
    return;
  }
  std::lock_guard<std::mutex> lock (probe.mutex);
  if (probe.finished)
    return;
  probe.finished = true;
  g_source_destroy (probe.timer);
  GST_INFO ("%s accepts connections again", probe.what.c_str ());
  probe.ready ();
}

static void
on_connected (GObject *source, GAsyncResult *result, gpointer data)
{
  std::unique_ptr<ProbeRef> ref (static_cast<ProbeRef *> (data));
  ReadinessCheck::Probe &probe = **ref;
  GError *error = nullptr;
  GObjectPtr<GSocketConnection> connection{
      g_socket_client_connect_to_uri_finish (G_SOCKET_CLIENT (source), result, &error)};
  GErrorPtr owned{error};
  probe.in_flight--;
  watcher ().try_done ();
  if (connection) {
    g_io_stream_close (G_IO_STREAM (connection.get ()), nullptr, nullptr);
    on_accepted (probe);
  } else if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
    GST_LOG ("%s: %s", probe.what.c_str (), error ? error->message : "not reachable");
    probe.seen_down = true;
  }
}

// Tries under way at once: a new one every interval, even while earlier ones
// wait for an answer (their SYNs lost in a network cut, retransmitted by the
// kernel only 1 s later), so that a network that heals is seen within one.
constexpr guint MAX_TRIES_IN_FLIGHT =
    READINESS_CONNECT_TIMEOUT_S * 1000 / static_cast<guint> (READINESS_INTERVAL.count ());

// One try (watcher thread), unless too many are under way or the check is over.
static void
try_connect (const ProbeRef &probe)
{
  {
    std::lock_guard<std::mutex> lock (probe->mutex);
    if (probe->finished)
      return;
  }
  if (probe->in_flight >= MAX_TRIES_IN_FLIGHT || (probe->wanted && !probe->wanted ()))
    return;
  if (probe->quiet_ticks > 0) {
    probe->quiet_ticks--;
    return;
  }
  probe->in_flight++;
  watcher ().try_started ();
  g_socket_client_connect_to_uri_async (probe->client.get (), probe->uri.c_str (),
      probe->default_port, probe->cancellable.get (), on_connected, new ProbeRef (probe));
}

static gboolean
on_tick (gpointer data)
{
  try_connect (*static_cast<ProbeRef *> (data));
  return G_SOURCE_CONTINUE;
}

std::unique_ptr<ReadinessCheck>
ReadinessCheck::start (const std::string &location, Ready ready,
    std::chrono::milliseconds first_after, std::function<bool ()> wanted)
{
  const UriParts parts = split_uri (location, "", "");
  const UriSchemeRow *row = camera_uri_scheme (parts.scheme.c_str ());
  if (!row || !is_network_scheme (*row))
    return nullptr;
  auto probe = std::make_shared<Probe> ();
  probe->uri = location;
  probe->default_port = row->default_port;
  probe->what = parts.without_userinfo;
  probe->ready = std::move (ready);
  probe->wanted = std::move (wanted);
  probe->quiet_ticks = static_cast<guint> (first_after / READINESS_INTERVAL);
  // Straight to the camera, as its own client connects; a try that hangs
  // (a host that drops SYNs) counts as down after the timeout.
  probe->client.reset (g_socket_client_new ());
  g_object_set (probe->client.get (), "timeout", READINESS_CONNECT_TIMEOUT_S, "enable-proxy",
      FALSE, nullptr);
  GMainContext *context = watcher ().acquire ();
  probe->timer = g_timeout_source_new (static_cast<guint> (READINESS_INTERVAL.count ()));
  g_source_set_callback (probe->timer, on_tick, new ProbeRef (probe), free_probe_ref);
  g_source_attach (probe->timer, context);
  if (first_after.count () == 0) {
    // The first try at once, not one interval later.
    UniqueRef<GSource, g_source_unref> first{g_idle_source_new ()};
    g_source_set_callback (first.get (), [] (gpointer data) -> gboolean {
      try_connect (*static_cast<ProbeRef *> (data));
      return G_SOURCE_REMOVE;
    }, new ProbeRef (probe), free_probe_ref);
    g_source_attach (first.get (), context);
  }
  GST_DEBUG ("checking whether %s accepts connections", probe->what.c_str ());
  return std::unique_ptr<ReadinessCheck> (new ReadinessCheck (std::move (probe)));
}

ReadinessCheck::~ReadinessCheck ()
{
  {
    std::lock_guard<std::mutex> lock (probe_->mutex);
    probe_->finished = true;
  }
  g_cancellable_cancel (probe_->cancellable.get ());
  g_source_destroy (probe_->timer);
  probe_.reset ();
  watcher ().release ();
}

}  // namespace camrelay::camerasrc
