// camerasrc's retry policy: the delay before a reconnect attempt (doubling,
// capped, with jitter) and how attempts are counted.  Plain logic, no element:
// tests/camerasrc/test_camerasrc_logic.cpp.
#pragma once

#include <gst/gst.h>

#include <chrono>
#include <optional>
#include <random>

namespace camrelay::camerasrc {

// The delay is spread by ±BACKOFF_JITTER, so that cameras lost together do
// not all come back at the same instant.
constexpr double BACKOFF_JITTER = 0.2;

// Delay (ns) before attempt `attempt` (1-based): `retry_delay` doubled per
// earlier attempt, capped at `retry_delay_max`, then ±20% jitter, and never
// over `retry_delay_max`.
guint64 backoff_delay (guint64 retry_delay, guint64 retry_delay_max, guint attempt,
    std::mt19937_64 &random);

// The attempt a fault starts: the next one, or the first again when the
// camera had been streaming for at least `retry_reset_time` (ns) before it.
// `streamed` is how long it streamed, unset when it was not streaming.
guint next_attempt (guint attempt, std::optional<std::chrono::nanoseconds> streamed,
    guint64 retry_reset_time);

// Whether `attempt` is beyond what `max_retries` (-1 = forever) allows.
bool retries_exhausted (guint attempt, gint max_retries);

// `value` nanoseconds as a duration, saturated at what it can hold.
std::chrono::nanoseconds ns (guint64 value);

}  // namespace camrelay::camerasrc
