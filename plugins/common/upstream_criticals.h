// GLib CRITICALs that GStreamer 1.22 itself raises on a path camrelay cannot
// avoid, and that are harmless there.  Processes run with
// G_DEBUG=fatal-criticals (the tests; an operator hunting a bug) would abort
// on them; install_upstream_critical_filter() keeps such a CRITICAL in the
// log but not fatal.  Every other CRITICAL stays as fatal as it was.
//
// - rtspsrc, TCP transport: going from PAUSED to READY sets its seek seqnum
//   to GST_SEQNUM_INVALID, then closes the connection; an EOS its streaming
//   thread is pushing at that moment (the server closed the connection at the
//   same time: a camera rebooting as camerasrc tears the session down, or a
//   relay closing a client that is stopping) is stamped with that seqnum and
//   gst_event_set_seqnum() refuses it.  The event goes on with its own seqnum.
#pragma once

#include <glib.h>

#include <cstring>

namespace camrelay {

inline gboolean
upstream_critical_is_fatal (const gchar *log_domain, GLogLevelFlags, const gchar *message, gpointer)
{
  static const char *const known[] = {
    "gst_event_set_seqnum: assertion 'seqnum != GST_SEQNUM_INVALID' failed",
  };
  if (log_domain && std::strcmp (log_domain, "GStreamer") == 0 && message)
    for (const char *k : known)
      if (std::strstr (message, k))
        return FALSE;
  return TRUE;
}

inline void
install_upstream_critical_filter ()
{
  g_test_log_set_fatal_handler (upstream_critical_is_fatal, nullptr);
}

}  // namespace camrelay
