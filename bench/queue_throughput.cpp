// queue_throughput: buffers per second through resilientqueue and through
// GStreamer's queue, in the same pipeline shape and the same process run.
//
//   fakesrc num-buffers=N sizetype=fixed format=time datarate=... ! ELEMENT ! fakesink sync=false
//
// Each configuration runs both elements several times, alternating which goes
// first so that neither always gets the warmer caches, and reports the median.
// It prints figures and never fails on them: a ratio below target is for a
// human to read, not an assertion (timings depend on the machine and its load).
//
// Run it from the build tree:
//   meson compile -C build bench-queue
// or directly (it then finds the plugin in the build tree by itself):
//   build/bench/queue_throughput [--buffers N] [--runs R] [--verbose]
//
// The elements are used by factory name and properties only, as any
// application would use them; this program does not include their headers.
#include <gst/gst.h>

#include "bench_common.h"
#include "common/element_names.h"
#include "common/gstref.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <string>
#include <thread>
#include <vector>

namespace {

using camrelay::bench::default_to_build_tree;
using camrelay::bench::median;
using camrelay::bench::process_cpu_seconds;

using camrelay::BusPtr;
using camrelay::ElementPtr;
using camrelay::GErrorPtr;
using camrelay::GCharPtr;
using camrelay::MessagePtr;
using camrelay::ObjectPtr;
using camrelay::PadPtr;
using camrelay::StructurePtr;

constexpr const char *kCandidate = "resilientqueue";
constexpr const char *kBaseline = "queue";

struct Options {
  gint buffers = 1000000;
  gint runs = 5;
  gint buffer_size = 64;
  gint gop_length = 30;
  gint timeout_s = 120;
  gboolean verbose = FALSE;
};

// One way of configuring both elements for a comparison.
struct Configuration {
  const char *name;
  const char *description;
  void (*setup_baseline) (GstElement *queue);
  void (*setup_candidate) (GstElement *resilientqueue);
};

void
setup_equal_limits_queue (GstElement *queue)
{
  g_object_set (queue, "max-size-buffers", 200u, "max-size-bytes", 0u,
      "max-size-time", static_cast<guint64> (0), nullptr);
  gst_util_set_object_arg (G_OBJECT (queue), "leaky", "no");
}

void
setup_equal_limits_resilientqueue (GstElement *resilientqueue)
{
  g_object_set (resilientqueue, "max-size-buffers", 200u, "max-size-bytes", 0u,
      "max-size-time", static_cast<guint64> (0), nullptr);
  // Block like queue does, so that both move exactly the same buffers.
  gst_util_set_object_arg (G_OBJECT (resilientqueue), "leaky", "none");
}

void
setup_defaults (GstElement *)
{
}

const Configuration kConfigurations[] = {
  {"equal limits",
      "both max-size-buffers=200, bytes and time 0; queue leaky=no, resilientqueue leaky=none",
      setup_equal_limits_queue, setup_equal_limits_resilientqueue},
  {"defaults",
      "each element's defaults: queue 200 buffers/10 MB/1 s, blocking; "
      "resilientqueue 20 s/64 MiB, leaky=gop",
      setup_defaults, setup_defaults},
};

struct RunResult {
  double seconds = 0;
  double cpu_seconds = 0;
  guint64 delivered = 0;   // buffers rendered by fakesink
  guint64 dropped = 0;     // buffers the element under test dropped, if it says
  guint64 overruns = 0;
};

// Marks all but every gop_length-th buffer as a delta unit, so that the
// stream looks like video with one keyframe per GOP (fakesrc sets no flags).
struct GopMarker {
  guint64 index = 0;
  guint64 gop_length = 1;
};

GstPadProbeReturn
mark_delta_units (GstPad *, GstPadProbeInfo *info, gpointer user_data)
{
  auto *marker = static_cast<GopMarker *> (user_data);
  GstBuffer *buffer = gst_buffer_make_writable (GST_PAD_PROBE_INFO_BUFFER (info));
  GST_PAD_PROBE_INFO_DATA (info) = buffer;
  if (marker->index++ % marker->gop_length == 0)
    GST_BUFFER_FLAG_UNSET (buffer, GST_BUFFER_FLAG_DELTA_UNIT);
  else
    GST_BUFFER_FLAG_SET (buffer, GST_BUFFER_FLAG_DELTA_UNIT);
  return GST_PAD_PROBE_OK;
}

guint64
stats_field (GObject *object, const char *property, const char *field)
{
  if (!g_object_class_find_property (G_OBJECT_GET_CLASS (object), property))
    return 0;
  GstStructure *raw = nullptr;
  g_object_get (object, property, &raw, nullptr);
  StructurePtr stats{raw};
  guint64 value = 0;
  if (stats && !gst_structure_get_uint64 (stats.get (), field, &value))
    g_printerr ("warning: %s has no guint64 field '%s' in '%s'\n",
        GST_OBJECT_NAME (object), field, property);
  return value;
}

ElementPtr
make_element (const char *factory, const char *name)
{
  GstElement *element = gst_element_factory_make (factory, name);
  if (!element) {
    g_printerr ("error: no element '%s'\n", factory);
    return nullptr;
  }
  return ElementPtr{GST_ELEMENT (gst_object_ref_sink (element))};
}

// Runs fakesrc ! factory ! fakesink once; returns false on error or timeout.
bool
run_once (const Options &options, gint buffers, const char *factory,
    void (*setup) (GstElement *), RunResult &result)
{
  ElementPtr pipeline{GST_ELEMENT (gst_object_ref_sink (gst_pipeline_new ("bench")))};
  ElementPtr source = make_element ("fakesrc", "source");
  ElementPtr element = make_element (factory, "under-test");
  ElementPtr sink = make_element ("fakesink", "sink");
  if (!source || !element || !sink)
    return false;

  // datarate gives every buffer a PTS, DTS and duration 1 ms apart, so that
  // time limits and time levels are exercised as with a real stream.
  g_object_set (source.get (), "num-buffers", buffers, "sizemax", options.buffer_size,
      "datarate", options.buffer_size * 1000, "silent", TRUE, nullptr);
  gst_util_set_object_arg (G_OBJECT (source.get ()), "sizetype", "fixed");
  gst_util_set_object_arg (G_OBJECT (source.get ()), "format", "time");
  g_object_set (sink.get (), "sync", FALSE, "async", FALSE, "silent", TRUE,
      "enable-last-sample", FALSE, nullptr);
  setup (element.get ());

  // The elements are no longer floating, so the bin takes a reference of its
  // own and ours stay with the smart pointers.
  gst_bin_add_many (GST_BIN (pipeline.get ()), source.get (), element.get (), sink.get (),
      nullptr);
  if (!gst_element_link_many (source.get (), element.get (), sink.get (), nullptr)) {
    g_printerr ("error: cannot link fakesrc ! %s ! fakesink\n", factory);
    return false;
  }

  GopMarker marker;
  marker.gop_length = static_cast<guint64> (std::max (options.gop_length, 1));
  PadPtr source_pad{gst_element_get_static_pad (source.get (), "src")};
  gst_pad_add_probe (source_pad.get (), GST_PAD_PROBE_TYPE_BUFFER, mark_delta_units,
      &marker, nullptr);

  BusPtr bus{gst_element_get_bus (pipeline.get ())};
  const double cpu_start = process_cpu_seconds ();
  const auto start = std::chrono::steady_clock::now ();
  if (gst_element_set_state (pipeline.get (), GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
    g_printerr ("error: %s pipeline does not go to PLAYING\n", factory);
    gst_element_set_state (pipeline.get (), GST_STATE_NULL);
    return false;
  }
  MessagePtr message{gst_bus_timed_pop_filtered (bus.get (),
      static_cast<GstClockTime> (options.timeout_s) * GST_SECOND,
      static_cast<GstMessageType> (GST_MESSAGE_EOS | GST_MESSAGE_ERROR))};
  const auto end = std::chrono::steady_clock::now ();
  const double cpu_end = process_cpu_seconds ();

  bool ok = true;
  if (!message) {
    g_printerr ("error: %s: no EOS after %d s (stalled?)\n", factory, options.timeout_s);
    ok = false;
  } else if (GST_MESSAGE_TYPE (message.get ()) == GST_MESSAGE_ERROR) {
    GError *raw_error = nullptr;
    gchar *raw_debug = nullptr;
    gst_message_parse_error (message.get (), &raw_error, &raw_debug);
    GErrorPtr error{raw_error};
    GCharPtr debug{raw_debug};
    g_printerr ("error: %s: %s (%s)\n", factory, error->message,
        debug ? debug.get () : "no details");
    ok = false;
  } else {
    result.seconds = std::chrono::duration<double> (end - start).count ();
    result.cpu_seconds = cpu_end - cpu_start;
    result.delivered = stats_field (G_OBJECT (sink.get ()), "stats", "rendered");
    if (g_str_equal (factory, kCandidate)) {
      result.dropped = stats_field (G_OBJECT (element.get ()), "stats",
          camrelay::resilientqueue_names::FIELD_DROPPED_BUFFERS);
      result.overruns = stats_field (G_OBJECT (element.get ()), "stats",
          camrelay::resilientqueue_names::STAT_OVERRUNS);
    }
  }
  gst_element_set_state (pipeline.get (), GST_STATE_NULL);
  return ok;
}

struct Summary {
  std::vector<double> rates;   // delivered buffers per second, one per run
  std::vector<double> cpu_ns_per_buffer;
  guint64 delivered_min = G_MAXUINT64;
  guint64 dropped_max = 0;
  guint64 overruns_max = 0;

  void add (const RunResult &run, gint offered)
  {
    rates.push_back (static_cast<double> (run.delivered) / run.seconds);
    cpu_ns_per_buffer.push_back (run.cpu_seconds * 1e9 / offered);
    delivered_min = std::min (delivered_min, run.delivered);
    dropped_max = std::max (dropped_max, run.dropped);
    overruns_max = std::max (overruns_max, run.overruns);
  }
};

void
print_row (const char *configuration, const char *element, const Summary &summary)
{
  const auto [low, high] = std::minmax_element (summary.rates.begin (), summary.rates.end ());
  std::printf ("%-13s %-15s %12.0f %12.0f %12.0f %9.0f %10" G_GUINT64_FORMAT
      " %8" G_GUINT64_FORMAT "\n",
      configuration, element, median (summary.rates), *low, *high,
      median (summary.cpu_ns_per_buffer), summary.delivered_min, summary.dropped_max);
}

// Without an explicit plugin path, use the build tree's plugin and a registry
// file of our own, so that a stale installed copy is never measured and the
// user's registry is left alone.  Must run before gst_init.
bool
parse_options (int &argc, char **&argv, Options &options)
{
  const GOptionEntry entries[] = {
    {"buffers", 'n', 0, G_OPTION_ARG_INT, &options.buffers,
        "Buffers per run (default 1000000)", "N"},
    {"runs", 'r', 0, G_OPTION_ARG_INT, &options.runs,
        "Measured runs per element and configuration (default 5)", "R"},
    {"buffer-size", 's', 0, G_OPTION_ARG_INT, &options.buffer_size,
        "Bytes per buffer (default 64)", "BYTES"},
    {"gop-length", 'g', 0, G_OPTION_ARG_INT, &options.gop_length,
        "One keyframe every this many buffers, the rest delta units; 1 = all keyframes "
        "(default 30)", "N"},
    {"timeout", 't', 0, G_OPTION_ARG_INT, &options.timeout_s,
        "Give up on a run that has not reached EOS after this many seconds (default 120)",
        "SECONDS"},
    {"verbose", 'v', 0, G_OPTION_ARG_NONE, &options.verbose, "Print every run", nullptr},
    {nullptr, 0, 0, G_OPTION_ARG_NONE, nullptr, nullptr, nullptr},
  };
  GOptionContext *context =
      g_option_context_new ("- buffers per second through resilientqueue and queue");
  g_option_context_add_main_entries (context, entries, nullptr);
  g_option_context_add_group (context, gst_init_get_option_group ());
  GError *raw_error = nullptr;
  const gboolean parsed = g_option_context_parse (context, &argc, &argv, &raw_error);
  g_option_context_free (context);
  GErrorPtr error{raw_error};
  if (!parsed) {
    g_printerr ("%s\n", error->message);
    return false;
  }
  if (options.buffers < 1 || options.runs < 1 || options.buffer_size < 1
      || options.buffer_size > G_MAXINT / 1000 || options.gop_length < 1
      || options.timeout_s < 1) {
    g_printerr ("buffers, runs, buffer-size, gop-length and timeout must be positive\n");
    return false;
  }
  return true;
}

// Prints which file the element under test comes from, so that the figures
// can be attributed to a build.
bool
report_candidate_origin ()
{
  ObjectPtr<GstElementFactory> factory{gst_element_factory_find (kCandidate)};
  if (!factory) {
    g_printerr ("error: element '%s' not found; build the plugin (ninja -C build) and run "
        "with GST_PLUGIN_PATH=build/plugins, or use `meson compile -C build bench-queue`\n",
        kCandidate);
    return false;
  }
  ObjectPtr<GstPlugin> plugin{gst_plugin_feature_get_plugin (GST_PLUGIN_FEATURE (factory.get ()))};
  std::printf ("%s from %s\n", kCandidate,
      plugin && gst_plugin_get_filename (plugin.get ()) ? gst_plugin_get_filename (plugin.get ())
                                                        : "(unknown)");
  return true;
}

}  // namespace

int
main (int argc, char **argv)
{
  default_to_build_tree ();
  Options options;
  if (!parse_options (argc, argv, options))
    return 2;
  gst_init (&argc, &argv);

  GCharPtr version{gst_version_string ()};
  std::printf ("queue_throughput: fakesrc ! ELEMENT ! fakesink sync=false, %d buffers of %d "
      "bytes, 1 ms apart, one keyframe every %d buffers\n"
      "%s, %u CPUs; median of %d runs per element, alternating order, after one warm-up\n",
      options.buffers, options.buffer_size, options.gop_length, version.get (),
      std::thread::hardware_concurrency (), options.runs);
  if (!report_candidate_origin ())
    return 1;

  std::vector<std::pair<std::string, double>> ratios;
  bool failed = false;
  for (const Configuration &configuration : kConfigurations) {
    std::printf ("\n%s: %s\n", configuration.name, configuration.description);
    std::fflush (stdout);

    // Warm up both elements (plugin loading, allocator, caches) off the record.
    RunResult warm_up;
    const gint warm_up_buffers = std::max (options.buffers / 10, 1);
    if (!run_once (options, warm_up_buffers, kBaseline, configuration.setup_baseline, warm_up)
        || !run_once (options, warm_up_buffers, kCandidate, configuration.setup_candidate,
            warm_up)) {
      failed = true;
      continue;
    }

    Summary baseline, candidate;
    for (gint run = 0; run < options.runs && !failed; run++) {
      const bool candidate_first = run % 2 == 1;
      for (int turn = 0; turn < 2; turn++) {
        const bool is_candidate = (turn == 0) == candidate_first;
        const char *factory = is_candidate ? kCandidate : kBaseline;
        RunResult result;
        if (!run_once (options, options.buffers, factory,
                is_candidate ? configuration.setup_candidate : configuration.setup_baseline,
                result)) {
          failed = true;
          break;
        }
        (is_candidate ? candidate : baseline).add (result, options.buffers);
        if (options.verbose)
          std::printf ("  run %d %-15s %8.3f s %12.0f buffers/s  delivered %" G_GUINT64_FORMAT
              " dropped %" G_GUINT64_FORMAT " overruns %" G_GUINT64_FORMAT "\n",
              run + 1, factory, result.seconds,
              static_cast<double> (result.delivered) / result.seconds, result.delivered,
              result.dropped, result.overruns);
      }
    }
    if (failed)
      break;

    std::printf ("%-13s %-15s %12s %12s %12s %9s %10s %8s\n", "configuration", "element",
        "buffers/s", "min", "max", "cpu ns/b", "delivered", "dropped");
    print_row (configuration.name, kBaseline, baseline);
    print_row ("", kCandidate, candidate);
    const double ratio = median (candidate.rates) / median (baseline.rates);
    std::printf ("%-13s ratio %s/%s = %.2f\n", "", kCandidate, kBaseline, ratio);
    if (candidate.dropped_max > 0
        || candidate.delivered_min < static_cast<guint64> (options.buffers))
      std::printf ("%-13s note: %s dropped buffers (up to %" G_GUINT64_FORMAT
          " in a run, %" G_GUINT64_FORMAT " overruns): its figure counts delivered buffers only\n",
          "", kCandidate, candidate.dropped_max, candidate.overruns_max);
    ratios.emplace_back (configuration.name, ratio);
  }

  if (!ratios.empty ()) {
    std::printf ("\nsummary (target: %s at least 0.90x %s)\n", kCandidate, kBaseline);
    for (const auto &[name, ratio] : ratios)
      std::printf ("  %-13s %.2f\n", name.c_str (), ratio);
  }
  gst_deinit ();
  return failed ? 1 : 0;
}
