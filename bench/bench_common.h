// Helpers shared by the benchmarks under bench/.
#pragma once

#include <glib.h>
#include <time.h>

#include <algorithm>
#include <vector>

#ifndef CAMRELAY_BUILD_PLUGIN_DIR
#error "meson must define CAMRELAY_BUILD_PLUGIN_DIR"
#endif
#ifndef CAMRELAY_BENCH_REGISTRY
#error "meson must define CAMRELAY_BENCH_REGISTRY"
#endif

namespace camrelay::bench {

// With no plugin path or registry in the environment, use the plugin of the
// build tree this benchmark was built in (CAMRELAY_BUILD_PLUGIN_DIR and
// CAMRELAY_BENCH_REGISTRY come from bench/meson.build).  Call before gst_init().
inline void
default_to_build_tree ()
{
  if (!g_getenv ("GST_PLUGIN_PATH_1_0") && !g_getenv ("GST_PLUGIN_PATH"))
    g_setenv ("GST_PLUGIN_PATH_1_0", CAMRELAY_BUILD_PLUGIN_DIR, TRUE);
  if (!g_getenv ("GST_REGISTRY_1_0") && !g_getenv ("GST_REGISTRY"))
    g_setenv ("GST_REGISTRY_1_0", CAMRELAY_BENCH_REGISTRY, TRUE);
}

inline double
median (std::vector<double> values)
{
  if (values.empty ())
    return 0;
  std::sort (values.begin (), values.end ());
  const size_t n = values.size ();
  return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

// CPU time (user + system) this process has used, in seconds.
inline double
process_cpu_seconds ()
{
  timespec ts{};
  clock_gettime (CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double> (ts.tv_sec) + static_cast<double> (ts.tv_nsec) / 1e9;
}

}  // namespace camrelay::bench
