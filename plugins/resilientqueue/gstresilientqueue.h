// resilientqueue: a bounded queue that never blocks its producer for long and
// drops whole GOPs when full.  See gstresilientqueue.cpp for the contract.
#pragma once

#include <gst/gst.h>

G_BEGIN_DECLS

/**
 * GstResilientQueueLeaky:
 * @GST_RESILIENT_QUEUE_LEAKY_NONE: block upstream up to max-block-time, then drop as gop
 * @GST_RESILIENT_QUEUE_LEAKY_UPSTREAM: drop the incoming buffer
 * @GST_RESILIENT_QUEUE_LEAKY_DOWNSTREAM: drop the oldest buffers
 * @GST_RESILIENT_QUEUE_LEAKY_GOP: drop the oldest whole GOPs
 */
typedef enum {
  GST_RESILIENT_QUEUE_LEAKY_NONE = 0,
  GST_RESILIENT_QUEUE_LEAKY_UPSTREAM = 1,
  GST_RESILIENT_QUEUE_LEAKY_DOWNSTREAM = 2,
  GST_RESILIENT_QUEUE_LEAKY_GOP = 3,
} GstResilientQueueLeaky;

#define GST_TYPE_RESILIENT_QUEUE_LEAKY (gst_resilient_queue_leaky_get_type ())
GType gst_resilient_queue_leaky_get_type (void);

#define GST_TYPE_RESILIENT_QUEUE (gst_resilient_queue_get_type ())
G_DECLARE_FINAL_TYPE (GstResilientQueue, gst_resilient_queue, GST, RESILIENT_QUEUE, GstElement)

GST_ELEMENT_REGISTER_DECLARE (resilientqueue);

G_END_DECLS
