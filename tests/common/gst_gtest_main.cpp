// Shared main() of the gtest suites: initialises GStreamer, runs the tests,
// then shuts GStreamer down with warnings made fatal, so that the `leaks`
// tracer (GST_TRACERS=leaks, set by meson) fails the run when a test leaked a
// GstObject or GstMiniObject.  Known harmless CRITICALs of GStreamer itself
// are not fatal (plugins/common/upstream_criticals.h).
#include <gst/gst.h>
#include <gtest/gtest.h>

#include "common/upstream_criticals.h"

int
main (int argc, char **argv)
{
  ::testing::InitGoogleTest (&argc, argv);
  gst_init (&argc, &argv);
  camrelay::install_upstream_critical_filter ();

  int result = RUN_ALL_TESTS ();

  // The leaks tracer reports at deinit with a g_warning: make it fatal.
  g_log_set_always_fatal (static_cast<GLogLevelFlags> (
      G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING));
  gst_deinit ();
  return result;
}
