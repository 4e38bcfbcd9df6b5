#include "heap.h"

#include <malloc.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

namespace camrelay::launcher {

namespace {

// Two arenas per core: enough that streaming threads rarely wait on each
// other, few enough that freed memory is found again by the next allocation.
constexpr int kArenasPerCore = 2;
// A frame larger than this (an H.264 keyframe at 720p and above) is mapped
// on its own and unmapped when freed, instead of leaving a hole in an arena.
// A fixed threshold also stops glibc from raising it after each large free.
constexpr int kMmapThreshold = 128 * 1024;

gboolean
trim (gpointer)
{
  malloc_trim (0);
  return G_SOURCE_CONTINUE;
}

}  // namespace

void
tune_heap ()
{
  if (!std::getenv ("MALLOC_ARENA_MAX")) {
    long cores = sysconf (_SC_NPROCESSORS_ONLN);
    mallopt (M_ARENA_MAX, static_cast<int> (kArenasPerCore * (cores > 0 ? cores : 1)));
  }
  if (!std::getenv ("MALLOC_MMAP_THRESHOLD_"))
    mallopt (M_MMAP_THRESHOLD, kMmapThreshold);
}

GSource *
start_heap_trim (GMainContext *context, unsigned interval_s)
{
  GSource *source = g_timeout_source_new_seconds (interval_s);
  g_source_set_callback (source, trim, nullptr, nullptr);
  g_source_attach (source, context);
  return source;
}

HeapFigures
heap_figures ()
{
  HeapFigures figures;
  struct mallinfo2 info = mallinfo2 ();
  figures.in_use_bytes = info.uordblks + info.hblkhd;
  figures.free_bytes = info.fordblks;
  if (FILE *statm = std::fopen ("/proc/self/statm", "r")) {
    unsigned long size = 0, resident = 0;
    if (std::fscanf (statm, "%lu %lu", &size, &resident) == 2)
      figures.resident_bytes = static_cast<uint64_t> (resident) * static_cast<uint64_t> (sysconf (_SC_PAGESIZE));
    std::fclose (statm);
  }
  return figures;
}

}  // namespace camrelay::launcher
