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
// A plain GObject (not a GstObject): gst-rtsp-server's media, factory...
template <typename T>
using GObjectPtr = UniqueRef<T, g_object_unref>;
using ElementPtr = ObjectPtr<GstElement>;
using PadPtr = ObjectPtr<GstPad>;
using BusPtr = ObjectPtr<GstBus>;
using ClockPtr = ObjectPtr<GstClock>;

// GStreamer's mini-object unrefs (gst_caps_unref...) are static inline
// functions; a deleter type of our own keeps these pointers usable as members
// of classes declared in headers.
struct MiniObjectUnref {
  void operator() (void *ptr) const noexcept
  {
    if (ptr)
      gst_mini_object_unref (GST_MINI_OBJECT_CAST (ptr));
  }
};
template <typename T>
using MiniObjectPtr = std::unique_ptr<T, MiniObjectUnref>;
using CapsPtr = MiniObjectPtr<GstCaps>;
using BufferPtr = MiniObjectPtr<GstBuffer>;
using EventPtr = MiniObjectPtr<GstEvent>;
using MessagePtr = MiniObjectPtr<GstMessage>;
using QueryPtr = MiniObjectPtr<GstQuery>;
using SamplePtr = MiniObjectPtr<GstSample>;
using UriPtr = MiniObjectPtr<GstUri>;
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
