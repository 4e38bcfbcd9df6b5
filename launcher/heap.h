// The memory of a process that runs for months.  glibc's allocator keeps
// what the streaming threads free in per-thread arenas and rarely hands it
// back: with cameras coming and going and clients joining and leaving, the
// heap in use stays flat while the resident size climbs (measured: 23 MiB in
// use, 47 MiB free but kept, after ten minutes of camera faults).  camrelay
// bounds the arenas, sends large blocks (whole frames) to mmap so that they
// go back when freed, and returns free pages to the system periodically.
#pragma once

#include <glib.h>

#include <cstdint>

namespace camrelay::launcher {

struct HeapFigures {
  uint64_t in_use_bytes = 0;    // allocated and not yet freed
  uint64_t free_bytes = 0;      // freed, kept by the allocator
  uint64_t resident_bytes = 0;  // the process's resident set (/proc/self/statm)
};

// Allocator settings for a long-running relay; call before any thread
// starts.  An operator's MALLOC_ARENA_MAX / MALLOC_MMAP_THRESHOLD_ win.
void tune_heap ();

// Returns free memory to the system every `interval_s` seconds from
// `context`, until the returned source is destroyed.
GSource *start_heap_trim (GMainContext *context, unsigned interval_s);

HeapFigures heap_figures ();

}  // namespace camrelay::launcher
