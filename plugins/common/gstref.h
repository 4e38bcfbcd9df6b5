// Owning smart pointers for GStreamer and GLib references.
//
// GStreamer has no C++ RAII of its own; these unique owners release a
// reference with the right unref function when they go out of scope, so that
// early returns and exceptions never leak.  Use `adopt` style construction:
//   camrelay::ElementPtr sink{gst_element_factory_make ("fakesink", nullptr)};
#pragma once

#include <gst/gst.h>

#include <memory>

namespace camrelay {

template <auto Unref>
struct UnrefDeleter {
  template <typename T>
  void operator() (T *ptr) const noexcept
  {
    if (ptr)
      Unref (ptr);
  }
};

template <typename T, auto Unref>
using UniqueRef = std::unique_ptr<T, UnrefDeleter<Unref>>;

template <typename T>
using ObjectPtr = UniqueRef<T, gst_object_unref>;
using ElementPtr = ObjectPtr<GstElement>;
using PadPtr = ObjectPtr<GstPad>;
using BusPtr = ObjectPtr<GstBus>;
using ClockPtr = ObjectPtr<GstClock>;

using CapsPtr = UniqueRef<GstCaps, gst_caps_unref>;
using BufferPtr = UniqueRef<GstBuffer, gst_buffer_unref>;
using EventPtr = UniqueRef<GstEvent, gst_event_unref>;
using MessagePtr = UniqueRef<GstMessage, gst_message_unref>;
using QueryPtr = UniqueRef<GstQuery, gst_query_unref>;
using StructurePtr = UniqueRef<GstStructure, gst_structure_free>;
using GCharPtr = UniqueRef<gchar, g_free>;
using GErrorPtr = UniqueRef<GError, g_error_free>;

// Takes a new reference on a GstObject and returns its owner.
template <typename T>
ObjectPtr<T>
ref_object (T *object)
{
  return ObjectPtr<T> (object ? static_cast<T *> (gst_object_ref (object)) : nullptr);
}

}  // namespace camrelay
