// The names the elements report under: camerasrc's state message and its
// fields, its stats structure and fields, the nicks of its enums;
// resilientqueue's drop message, its stats structure and their fields.  One
// definition for the elements, the launcher and the tests (header-only).
#pragma once

namespace camrelay::camerasrc_names {

// Element message on every state change.
inline constexpr char STATE_MESSAGE[] = "camerasrc-state";
inline constexpr char FIELD_STATE[] = "state";        // GstCameraSrcState
inline constexpr char FIELD_PREVIOUS[] = "previous";  // GstCameraSrcState
inline constexpr char FIELD_REASON[] = "reason";      // string
inline constexpr char FIELD_ATTEMPT[] = "attempt";    // guint
inline constexpr char FIELD_RETRY_IN[] = "retry-in";  // guint64, ns
inline constexpr char FIELD_LOCATION[] = "location";  // string, credentials removed

// The nicks of GstCameraSrcState, in the order of its values.
inline constexpr char STATE_STOPPED[] = "stopped";
inline constexpr char STATE_CONNECTING[] = "connecting";
inline constexpr char STATE_STREAMING[] = "streaming";
inline constexpr char STATE_RECONNECTING[] = "reconnecting";
inline constexpr char STATE_FAILED[] = "failed";
inline constexpr const char *STATES[] = {STATE_STOPPED, STATE_CONNECTING, STATE_STREAMING,
    STATE_RECONNECTING, STATE_FAILED};

// The nicks of GstCameraSrcProtocols (property `protocols`) and of
// GstCameraSrcFallback (property `fallback`), in the order of their values:
// the launcher's configuration takes the same words.
inline constexpr char PROTOCOLS_TCP[] = "tcp";
inline constexpr char PROTOCOLS_UDP[] = "udp";
inline constexpr char PROTOCOLS_AUTO[] = "auto";
inline constexpr const char *PROTOCOLS[] = {PROTOCOLS_TCP, PROTOCOLS_UDP, PROTOCOLS_AUTO};
inline constexpr char FALLBACK_NONE[] = "none";
inline constexpr char FALLBACK_FREEZE[] = "freeze";
inline constexpr char FALLBACK_SLATE[] = "slate";
inline constexpr const char *FALLBACKS[] = {FALLBACK_NONE, FALLBACK_FREEZE, FALLBACK_SLATE};

// The `stats` property: a structure of this name with these fields.
inline constexpr char STATS[] = "application/x-camerasrc-stats";
inline constexpr char STAT_CONNECTS[] = "connects";                // guint64
inline constexpr char STAT_RECONNECTS[] = "reconnects";            // guint64
inline constexpr char STAT_ATTEMPT[] = "attempt";                  // guint
inline constexpr char STAT_BYTES[] = "bytes";                      // guint64
inline constexpr char STAT_FRAMES[] = "frames";                    // guint64
inline constexpr char STAT_KEYFRAMES[] = "keyframes";              // guint64
inline constexpr char STAT_FALLBACK_FRAMES[] = "fallback-frames";  // guint64
inline constexpr char STAT_LAST_ERROR[] = "last-error";            // string
inline constexpr char STAT_STREAMING_TIME[] = "streaming-time";    // guint64, ns
inline constexpr char STAT_DOWN_TIME[] = "down-time";              // guint64, ns
inline constexpr char STAT_LAST_FRAME_AGE[] = "last-frame-age";    // guint64, ns
inline constexpr char STAT_WIDTH[] = "width";                      // gint
inline constexpr char STAT_HEIGHT[] = "height";                    // gint
inline constexpr char STAT_FRAMERATE[] = "framerate";              // GstFraction
inline constexpr char STAT_BITRATE[] = "bitrate";                  // guint64, bit/s
inline constexpr char STAT_CODEC[] = "codec";                      // string (CodecRow::short_name)
// The guint64 fields.
inline constexpr const char *STATS_U64[] = {STAT_CONNECTS, STAT_RECONNECTS, STAT_BYTES,
    STAT_FRAMES, STAT_KEYFRAMES, STAT_FALLBACK_FRAMES, STAT_STREAMING_TIME, STAT_DOWN_TIME,
    STAT_LAST_FRAME_AGE, STAT_BITRATE};

}  // namespace camrelay::camerasrc_names

namespace camrelay::resilientqueue_names {

// Element message on drops (rate-limited), with the counts since the previous
// one; the `stats` structure shares the dropped-* fields.
inline constexpr char DROP_MESSAGE[] = "resilientqueue-dropped";
inline constexpr char FIELD_DROPPED_BUFFERS[] = "dropped-buffers";  // guint64
inline constexpr char FIELD_DROPPED_BYTES[] = "dropped-bytes";      // guint64
inline constexpr char FIELD_DROPPED_GOPS[] = "dropped-gops";        // guint64
inline constexpr char FIELD_LEAKY[] = "leaky";  // GstResilientQueueLeaky (message only)

// The `stats` property: a structure of this name, every field a guint64,
// the dropped-* ones above among them.
inline constexpr char STATS[] = "application/x-resilientqueue-stats";
inline constexpr char STAT_RECEIVED_BUFFERS[] = "received-buffers";
inline constexpr char STAT_PUSHED_BUFFERS[] = "pushed-buffers";
inline constexpr char STAT_MAX_LEVEL_TIME[] = "max-level-time";  // ns
inline constexpr char STAT_MAX_LEVEL_BYTES[] = "max-level-bytes";
inline constexpr char STAT_MAX_LEVEL_BUFFERS[] = "max-level-buffers";
inline constexpr char STAT_TIME_BLOCKED[] = "time-blocked";  // ns
inline constexpr char STAT_OVERRUNS[] = "overruns";
inline constexpr char STAT_UNDERRUNS[] = "underruns";
inline constexpr char STAT_CURRENT_LEVEL_TIME[] = "current-level-time";  // ns
inline constexpr char STAT_CURRENT_LEVEL_BYTES[] = "current-level-bytes";
inline constexpr char STAT_CURRENT_LEVEL_BUFFERS[] = "current-level-buffers";
// Every field, in the structure's order.
inline constexpr const char *STATS_FIELDS[] = {STAT_RECEIVED_BUFFERS, STAT_PUSHED_BUFFERS,
    FIELD_DROPPED_BUFFERS, FIELD_DROPPED_BYTES, FIELD_DROPPED_GOPS, STAT_MAX_LEVEL_TIME,
    STAT_MAX_LEVEL_BYTES, STAT_MAX_LEVEL_BUFFERS, STAT_TIME_BLOCKED, STAT_OVERRUNS,
    STAT_UNDERRUNS, STAT_CURRENT_LEVEL_TIME, STAT_CURRENT_LEVEL_BYTES,
    STAT_CURRENT_LEVEL_BUFFERS};

}  // namespace camrelay::resilientqueue_names
