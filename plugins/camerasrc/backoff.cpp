// camerasrc's retry policy (see backoff.h).
#include "camerasrc/backoff.h"

#include <algorithm>

namespace camrelay::camerasrc {

guint64
backoff_delay (guint64 retry_delay, guint64 retry_delay_max, guint attempt,
    std::mt19937_64 &random)
{
  double delay = static_cast<double> (retry_delay);
  for (guint i = 1; i < attempt && delay < static_cast<double> (retry_delay_max); i++)
    delay *= 2;
  delay = std::min (delay, static_cast<double> (retry_delay_max));
  std::uniform_real_distribution<double> jitter (1.0 - BACKOFF_JITTER, 1.0 + BACKOFF_JITTER);
  return static_cast<guint64> (
      std::min (delay * jitter (random), static_cast<double> (retry_delay_max)));
}

guint
next_attempt (guint attempt, std::optional<std::chrono::nanoseconds> streamed,
    guint64 retry_reset_time)
{
  if (streamed && *streamed >= ns (retry_reset_time))
    attempt = 0;
  return attempt + 1;
}

bool
retries_exhausted (guint attempt, gint max_retries)
{
  return max_retries >= 0 && attempt > static_cast<guint> (max_retries);
}

std::chrono::nanoseconds
ns (guint64 value)
{
  return std::chrono::nanoseconds (static_cast<std::chrono::nanoseconds::rep> (
      std::min<guint64> (value, G_MAXINT64)));
}

}  // namespace camrelay::camerasrc
