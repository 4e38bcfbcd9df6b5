// The camrelay GStreamer plugin: registers every element of the project.
#include <gst/gst.h>

#include "camerasrc/gstcamerasrc.h"
#include "gopcache/gstgopcache.h"
#include "resilientqueue/gstresilientqueue.h"
#include "testcamerasrc/gsttestcamerasrc.h"

static gboolean
plugin_init (GstPlugin *plugin)
{
  gboolean registered = FALSE;
  registered |= GST_ELEMENT_REGISTER (camerasrc, plugin);
  registered |= GST_ELEMENT_REGISTER (gopcache, plugin);
  registered |= GST_ELEMENT_REGISTER (resilientqueue, plugin);
  registered |= GST_ELEMENT_REGISTER (testcamerasrc, plugin);
  return registered;
}

GST_PLUGIN_DEFINE (GST_VERSION_MAJOR, GST_VERSION_MINOR, camrelay,
    "camrelay: resilient camera restreaming elements", plugin_init, VERSION,
    "LGPL", GST_PACKAGE_NAME, GST_PACKAGE_ORIGIN)
