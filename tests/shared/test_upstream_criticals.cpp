// The filter of known upstream CRITICALs (plugins/common/upstream_criticals.h):
// exactly the listed ones stop being fatal, nothing else.  The test main
// installs it, and this test runs with G_DEBUG=fatal-criticals like every
// other: the in-process case aborts the test if the filter does not work.
#include <gst/gst.h>
#include <gtest/gtest.h>

#include "common/upstream_criticals.h"

namespace {

const GLogLevelFlags kCritical = static_cast<GLogLevelFlags> (G_LOG_LEVEL_CRITICAL | G_LOG_FLAG_FATAL);

TEST (UpstreamCriticals, TheRtspsrcSeqnumRaceIsNotFatal)
{
  EXPECT_FALSE (camrelay::upstream_critical_is_fatal ("GStreamer", kCritical,
      "gst_event_set_seqnum: assertion 'seqnum != GST_SEQNUM_INVALID' failed", nullptr));
}

TEST (UpstreamCriticals, OtherCriticalsStayFatal)
{
  EXPECT_TRUE (camrelay::upstream_critical_is_fatal ("GStreamer", kCritical,
      "gst_mini_object_ref: assertion 'mini_object != NULL' failed", nullptr));
  EXPECT_TRUE (camrelay::upstream_critical_is_fatal ("GLib", kCritical,
      "gst_event_set_seqnum: assertion 'seqnum != GST_SEQNUM_INVALID' failed", nullptr));
  EXPECT_TRUE (camrelay::upstream_critical_is_fatal (nullptr, kCritical, nullptr, nullptr));
}

// The real CRITICAL, raised here: with fatal-criticals this process would
// end on it without the filter the test main installed.
TEST (UpstreamCriticals, RaisedInProcessTheTestGoesOn)
{
  GstEvent *event = gst_event_new_eos ();
  const guint32 seqnum = gst_event_get_seqnum (event);
  gst_event_set_seqnum (event, GST_SEQNUM_INVALID);
  EXPECT_EQ (gst_event_get_seqnum (event), seqnum);
  gst_event_unref (event);
}

}  // namespace
