// resilientqueue's item store on its own: levels, limits and the drops of
// each leaky mode, without an element, pads or threads.
#include <gst/gst.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "resilientqueue/itemstore.h"

using namespace camrelay::resilientqueue;

namespace {

// Buffer `n` (GST_BUFFER_OFFSET), a keyframe or a delta unit, timed at `pts`
// in a time segment starting at 0.
Item
buffer (guint64 n, bool keyframe, gsize size = 100, GstClockTime pts = GST_CLOCK_TIME_NONE)
{
  GstBuffer *b = gst_buffer_new_allocate (nullptr, size, nullptr);
  GST_BUFFER_OFFSET (b) = n;
  GST_BUFFER_PTS (b) = pts;
  if (!keyframe)
    GST_BUFFER_FLAG_SET (b, GST_BUFFER_FLAG_DELTA_UNIT);
  GstSegment segment;
  gst_segment_init (&segment, GST_FORMAT_TIME);
  return make_buffer_item (b, segment);
}

Item
event (GstEvent *e)
{
  return make_event_item (e);
}

GstEvent *
caps_event ()
{
  camrelay::CapsPtr caps{gst_caps_new_empty_simple ("video/x-test")};
  return gst_event_new_caps (caps.get ());
}

// The queue's contents as tokens: "K3" keyframe 3, "D4" delta 4, a "*"
// after a buffer flagged to go out DISCONT, events by type name.
std::string
contents (const ItemStore &store)
{
  std::string out;
  for (const Item &item : store.items ()) {
    if (!out.empty ())
      out += ' ';
    if (item.is_buffer ()) {
      out += item.keyframe ? 'K' : 'D';
      out += std::to_string (GST_BUFFER_OFFSET (GST_BUFFER_CAST (item.object.get ())));
      if (item.discont)
        out += '*';
    } else {
      out += GST_EVENT_TYPE_NAME (GST_EVENT_CAST (item.object.get ()));
    }
  }
  return out;
}

// Offers buffer `item` to the store as the element does; returns the answer.
Admission
offer (ItemStore &store, Item item)
{
  Admission admission = store.admit (item);
  if (admission == Admission::Queue)
    store.enqueue (std::move (item));
  return admission;
}

ItemStore
store_with_buffer_limit (GstResilientQueueLeaky leaky, guint buffers)
{
  ItemStore store;
  store.leaky = leaky;
  store.max_size_buffers = buffers;
  return store;
}

TEST (ItemStore, GopDropsTheOldestCompleteGopAndMarksTheNextKeyframe)
{
  ItemStore store = store_with_buffer_limit (GST_RESILIENT_QUEUE_LEAKY_GOP, 5);
  for (guint64 n = 1; n <= 5; n++)
    ASSERT_EQ (offer (store, buffer (n, n == 1 || n == 4)), Admission::Queue);
  EXPECT_EQ (contents (store), "K1 D2 D3 K4 D5");

  EXPECT_EQ (offer (store, buffer (6, false)), Admission::Queue);
  EXPECT_EQ (contents (store), "K4* D5 D6");
  EXPECT_EQ (store.level_buffers (), 3u);
  EXPECT_EQ (store.level_bytes (), 300u);
  EXPECT_EQ (store.stats ().dropped_buffers, 3u);
  EXPECT_EQ (store.stats ().dropped_gops, 1u);
  EXPECT_EQ (store.stats ().max_level_buffers, 5u);
  ASSERT_TRUE (store.has_pending_drops ());
  DropCounts drops = store.take_pending_drops ();
  EXPECT_EQ (drops.buffers, 3u);
  EXPECT_EQ (drops.bytes, 300u);
  EXPECT_EQ (drops.gops, 1u);
  EXPECT_FALSE (store.has_pending_drops ());
}

TEST (ItemStore, GopLargerThanTheLimitDropsDeltasUntilTheNextKeyframe)
{
  ItemStore store = store_with_buffer_limit (GST_RESILIENT_QUEUE_LEAKY_GOP, 3);
  for (guint64 n = 1; n <= 3; n++)
    ASSERT_EQ (offer (store, buffer (n, n == 1)), Admission::Queue);
  // The GOP being received cannot make room for its own delta units.
  EXPECT_EQ (offer (store, buffer (4, false)), Admission::Dropped);
  EXPECT_TRUE (store.dropping_deltas ());
  EXPECT_EQ (offer (store, buffer (5, false)), Admission::Dropped);
  EXPECT_EQ (contents (store), "K1 D2 D3");
  // A keyframe may drop the last GOP, and ends the drop.
  EXPECT_EQ (offer (store, buffer (6, true)), Admission::Queue);
  EXPECT_FALSE (store.dropping_deltas ());
  EXPECT_EQ (contents (store), "K6*");
  EXPECT_EQ (store.stats ().dropped_buffers, 5u);
}

TEST (ItemStore, EventsInADroppedGopKeepTheirPlace)
{
  ItemStore store = store_with_buffer_limit (GST_RESILIENT_QUEUE_LEAKY_GOP, 3);
  ASSERT_EQ (offer (store, buffer (1, true)), Admission::Queue);
  store.enqueue_serialized (event (caps_event ()));
  ASSERT_EQ (offer (store, buffer (2, false)), Admission::Queue);
  ASSERT_EQ (offer (store, buffer (3, true)), Admission::Queue);
  EXPECT_EQ (offer (store, buffer (4, true)), Admission::Queue);
  EXPECT_EQ (contents (store), "caps K3* K4");
  EXPECT_EQ (store.level_buffers (), 2u);
}

TEST (ItemStore, UpstreamDropsTheIncomingBufferAndMarksTheNextOne)
{
  ItemStore store = store_with_buffer_limit (GST_RESILIENT_QUEUE_LEAKY_UPSTREAM, 2);
  ASSERT_EQ (offer (store, buffer (1, true)), Admission::Queue);
  ASSERT_EQ (offer (store, buffer (2, false)), Admission::Queue);
  EXPECT_EQ (offer (store, buffer (3, false)), Admission::Dropped);
  store.pop_front ();
  EXPECT_EQ (offer (store, buffer (4, true)), Admission::Queue);
  EXPECT_EQ (contents (store), "D2 K4*");
}

TEST (ItemStore, DownstreamDropsTheOldestBuffers)
{
  ItemStore store = store_with_buffer_limit (GST_RESILIENT_QUEUE_LEAKY_DOWNSTREAM, 3);
  for (guint64 n = 1; n <= 5; n++)
    ASSERT_EQ (offer (store, buffer (n, n == 1)), Admission::Queue);
  EXPECT_EQ (contents (store), "D3* D4 D5");
  EXPECT_EQ (store.stats ().dropped_buffers, 2u);
  EXPECT_EQ (store.stats ().dropped_gops, 0u);
}

TEST (ItemStore, NoneWaitsThenDropsAsGop)
{
  ItemStore store = store_with_buffer_limit (GST_RESILIENT_QUEUE_LEAKY_NONE, 3);
  for (guint64 n = 1; n <= 3; n++)
    ASSERT_EQ (offer (store, buffer (n, n == 1)), Admission::Queue);
  Item delta = buffer (4, false);
  EXPECT_EQ (store.admit (delta), Admission::Wait);
  EXPECT_EQ (store.stats ().dropped_buffers, 0u) << "nothing dropped before the wait";
  EXPECT_EQ (store.admit_after_wait (delta), Admission::Dropped);

  Item key = buffer (5, true);
  EXPECT_EQ (store.admit (key), Admission::Wait);
  EXPECT_EQ (store.admit_after_wait (key), Admission::Queue);
  store.enqueue (std::move (key));
  EXPECT_EQ (contents (store), "K5*");

  // Room made meanwhile: queued without a drop.
  Item next = buffer (6, false);
  EXPECT_EQ (store.admit (next), Admission::Queue);
}

TEST (ItemStore, BufferLargerThanTheByteLimitIsDroppedWithItsGop)
{
  ItemStore store;
  store.leaky = GST_RESILIENT_QUEUE_LEAKY_GOP;
  store.max_size_bytes = 1000;
  ASSERT_EQ (offer (store, buffer (1, true, 400)), Admission::Queue);
  EXPECT_EQ (offer (store, buffer (2, true, 1001)), Admission::Dropped);
  EXPECT_EQ (offer (store, buffer (3, false, 10)), Admission::Dropped);
  EXPECT_EQ (contents (store), "K1") << "the queue was not emptied for it";
  EXPECT_EQ (store.stats ().dropped_gops, 1u);
}

TEST (ItemStore, TimeLevelSpansOldestToNewestRunningTime)
{
  ItemStore store;
  store.leaky = GST_RESILIENT_QUEUE_LEAKY_GOP;
  store.max_size_time = 2 * GST_SECOND;
  ASSERT_EQ (offer (store, buffer (1, true, 100, 0)), Admission::Queue);
  ASSERT_EQ (offer (store, buffer (2, false, 100, GST_SECOND)), Admission::Queue);
  ASSERT_EQ (offer (store, buffer (3, true, 100, 2 * GST_SECOND)), Admission::Queue);
  EXPECT_EQ (store.level_time (), 2 * GST_SECOND);
  EXPECT_FALSE (store.overflows_with (buffer (4, false, 100, 2 * GST_SECOND)));
  EXPECT_TRUE (store.overflows_with (buffer (4, false, 100, 3 * GST_SECOND)));
  ASSERT_EQ (offer (store, buffer (4, false, 100, 3 * GST_SECOND)), Admission::Queue);
  EXPECT_EQ (contents (store), "K3* D4");
  EXPECT_EQ (store.level_time (), GST_SECOND);
  EXPECT_EQ (store.stats ().max_level_time, 2 * GST_SECOND);
  store.pop_front ();
  EXPECT_EQ (store.level_time (), 0u) << "one timed buffer spans nothing";
}

TEST (ItemStore, LoweredLimitsTrimAsTheModeWouldHaveDropped)
{
  struct Case {
    GstResilientQueueLeaky leaky;
    const char *left;
  };
  for (const Case &c : {Case{GST_RESILIENT_QUEUE_LEAKY_GOP, "K4* D5"},
           Case{GST_RESILIENT_QUEUE_LEAKY_NONE, "K4* D5"},
           Case{GST_RESILIENT_QUEUE_LEAKY_DOWNSTREAM, "K4* D5"},
           Case{GST_RESILIENT_QUEUE_LEAKY_UPSTREAM, "K1 D2"}}) {
    ItemStore store = store_with_buffer_limit (c.leaky, 0);
    for (guint64 n = 1; n <= 5; n++)
      ASSERT_EQ (offer (store, buffer (n, n == 1 || n == 4)), Admission::Queue);
    store.max_size_buffers = 2;
    store.trim_to_limits ();
    EXPECT_EQ (contents (store), c.left) << "leaky " << c.leaky;
    EXPECT_FALSE (store.over_limits ());
  }
}

TEST (ItemStore, TrimDropsAnOversizedLastGopAndTheRestOfIt)
{
  ItemStore store = store_with_buffer_limit (GST_RESILIENT_QUEUE_LEAKY_GOP, 0);
  for (guint64 n = 1; n <= 4; n++)
    ASSERT_EQ (offer (store, buffer (n, n == 1)), Admission::Queue);
  store.max_size_buffers = 2;
  store.trim_to_limits ();
  EXPECT_EQ (contents (store), "");
  EXPECT_TRUE (store.dropping_deltas ());
  EXPECT_EQ (offer (store, buffer (5, false)), Admission::Dropped);
  EXPECT_EQ (offer (store, buffer (6, true)), Admission::Queue);
  EXPECT_EQ (contents (store), "K6*");
}

TEST (ItemStore, FlushKeepsStickyEventsButSegmentAndEos)
{
  ItemStore store;
  GstSegment segment;
  gst_segment_init (&segment, GST_FORMAT_TIME);
  store.enqueue_serialized (event (gst_event_new_segment (&segment)));
  store.enqueue_serialized (event (caps_event ()));
  ASSERT_EQ (offer (store, buffer (1, true)), Admission::Queue);
  store.enqueue_serialized (event (gst_event_new_tag (gst_tag_list_new_empty ())));
  store.enqueue_serialized (
      event (gst_event_new_custom (GST_EVENT_CUSTOM_DOWNSTREAM, gst_structure_new_empty ("x"))));
  store.enqueue_serialized (event (gst_event_new_eos ()));

  std::vector<camrelay::EventPtr> sticky = store.flush_keeping_sticky_events ();
  ASSERT_EQ (sticky.size (), 2u);
  EXPECT_EQ (GST_EVENT_TYPE (sticky[0].get ()), GST_EVENT_CAPS);
  EXPECT_EQ (GST_EVENT_TYPE (sticky[1].get ()), GST_EVENT_TAG);
  EXPECT_TRUE (store.empty ());
  EXPECT_EQ (store.level_buffers (), 0u);
  EXPECT_EQ (store.level_bytes (), 0u);
}

}  // namespace
