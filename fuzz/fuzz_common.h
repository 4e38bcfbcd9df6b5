// What every fuzz target shares: GStreamer started once, with no plugin
// registry (the targets use no plugin), and a check that aborts with a
// message, which libFuzzer reports as a crash with its input.
#pragma once

#include <gst/gst.h>

#include <cstdio>
#include <cstdlib>

namespace camrelay::fuzz {

inline void
init_gstreamer ()
{
  g_setenv ("GST_REGISTRY_DISABLE", "yes", TRUE);
  gst_init (nullptr, nullptr);
}

// Like assert(), but kept in every build and saying which property broke.
#define FUZZ_CHECK(condition, what)                                                    \
  do {                                                                                 \
    if (!(condition)) {                                                                \
      std::fprintf (stderr, "fuzz check failed at %s:%d: %s (%s)\n", __FILE__,        \
          __LINE__, what, #condition);                                                 \
      std::abort ();                                                                   \
    }                                                                                  \
  } while (0)

}  // namespace camrelay::fuzz
