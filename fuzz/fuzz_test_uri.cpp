// testcamerasrc's test:// URIs, through the element's GstURIHandler as
// camerasrc and gst-launch-1.0 use it: parse_uri() and build_uri() of
// plugins/testcamerasrc.  An accepted URI must give back a canonical URI that
// is accepted in turn and gives back itself.
#include "testcamerasrc/gsttestcamerasrc.h"

#include <gst/gst.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "common/gstref.h"
#include "fuzz_common.h"

namespace {
GstElement *element;  // one for every input: setting location resets every property
}

extern "C" int
LLVMFuzzerInitialize (int *, char ***)
{
  camrelay::fuzz::init_gstreamer ();
  element = GST_ELEMENT (gst_object_ref_sink (g_object_new (GST_TYPE_TEST_CAMERA_SRC, nullptr)));
  return 0;
}

extern "C" int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  const std::string uri (reinterpret_cast<const char *> (data), size);
  if (uri.find ('\0') != std::string::npos)
    return 0;  // a C string cannot hold it
  GstURIHandler *handler = GST_URI_HANDLER (element);
  GError *error = nullptr;
  if (!gst_uri_handler_set_uri (handler, uri.c_str (), &error)) {
    FUZZ_CHECK (error && error->message && error->message[0], "a refused URI says why");
    g_clear_error (&error);
    return 0;
  }
  camrelay::GCharPtr canonical{gst_uri_handler_get_uri (handler)};
  FUZZ_CHECK (canonical, "an accepted URI has a canonical form");
  FUZZ_CHECK (gst_uri_handler_set_uri (handler, canonical.get (), &error),
      "the canonical URI is accepted");
  camrelay::GCharPtr again{gst_uri_handler_get_uri (handler)};
  FUZZ_CHECK (g_strcmp0 (canonical.get (), again.get ()) == 0,
      "the canonical URI gives back itself");
  return 0;
}
