// The launcher's HTTP endpoints: the Prometheus text and the JSON documents
// checked by small parsers of their own (strict about the formats), the
// conversion of the real elements' stats, and the server over a real socket
// on 127.0.0.1 with a port picked by the kernel.
#include <gio/gio.h>
#include <gst/gst.h>
#include <gtest/gtest.h>
#include <libsoup/soup.h>

#include <cmath>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "http.h"

#include "common/element_names.h"

using namespace camrelay;
using namespace camrelay::launcher;
namespace cs_names = camrelay::camerasrc_names;
namespace rq_names = camrelay::resilientqueue_names;

namespace {

// --- A strict JSON parser (RFC 8259) -------------------------------------------

struct Json {
  enum Kind { Null, Bool, Number, String, Array, Object } kind = Null;
  bool boolean = false;
  double number = 0;
  std::string text;  // a string's value, or a number's literal
  std::vector<Json> items;
  std::vector<std::pair<std::string, Json>> members;

  const Json *get (const std::string &key) const
  {
    for (const auto &member : members) {
      if (member.first == key)
        return &member.second;
    }
    return nullptr;
  }
};

class JsonParser {
 public:
  explicit JsonParser (const std::string &text) : text_ (text) {}

  // The whole text must be one value, optionally surrounded by whitespace.
  bool parse (Json &out, std::string &error)
  {
    if (!g_utf8_validate (text_.data (), static_cast<gssize> (text_.size ()), nullptr))
      return fail ("not UTF-8", error);
    skip_space ();
    if (!value (out, 0))
      return fail (error_, error);
    skip_space ();
    if (pos_ != text_.size ())
      return fail ("text after the value", error);
    return true;
  }

 private:
  bool fail (const std::string &what, std::string &error)
  {
    error = what + " at offset " + std::to_string (pos_);
    return false;
  }

  bool set_error (const char *what)
  {
    if (error_.empty ())
      error_ = what;
    return false;
  }

  void skip_space ()
  {
    while (pos_ < text_.size () && strchr (" \t\r\n", text_[pos_]) && text_[pos_] != '\0')
      pos_++;
  }

  bool literal (const char *word)
  {
    size_t length = strlen (word);
    if (text_.compare (pos_, length, word) != 0)
      return set_error ("bad literal");
    pos_ += length;
    return true;
  }

  bool value (Json &out, int depth)
  {
    if (depth > 64)
      return set_error ("nested too deep");
    if (pos_ >= text_.size ())
      return set_error ("unexpected end");
    char c = text_[pos_];
    if (c == '{')
      return object (out, depth);
    if (c == '[')
      return array (out, depth);
    if (c == '"') {
      out.kind = Json::String;
      return string (out.text);
    }
    if (c == 't') {
      out.kind = Json::Bool;
      out.boolean = true;
      return literal ("true");
    }
    if (c == 'f') {
      out.kind = Json::Bool;
      return literal ("false");
    }
    if (c == 'n') {
      out.kind = Json::Null;
      return literal ("null");
    }
    return number (out);
  }

  bool object (Json &out, int depth)
  {
    out.kind = Json::Object;
    pos_++;
    skip_space ();
    if (pos_ < text_.size () && text_[pos_] == '}') {
      pos_++;
      return true;
    }
    std::set<std::string> keys;
    while (true) {
      skip_space ();
      std::string key;
      if (pos_ >= text_.size () || text_[pos_] != '"' || !string (key))
        return set_error ("expected a key");
      if (!keys.insert (key).second)
        return set_error ("duplicate key");
      skip_space ();
      if (pos_ >= text_.size () || text_[pos_] != ':')
        return set_error ("expected ':'");
      pos_++;
      skip_space ();
      Json member;
      if (!value (member, depth + 1))
        return false;
      out.members.emplace_back (key, std::move (member));
      skip_space ();
      if (pos_ < text_.size () && text_[pos_] == ',') {
        pos_++;
        continue;
      }
      if (pos_ < text_.size () && text_[pos_] == '}') {
        pos_++;
        return true;
      }
      return set_error ("expected ',' or '}'");
    }
  }

  bool array (Json &out, int depth)
  {
    out.kind = Json::Array;
    pos_++;
    skip_space ();
    if (pos_ < text_.size () && text_[pos_] == ']') {
      pos_++;
      return true;
    }
    while (true) {
      skip_space ();
      Json item;
      if (!value (item, depth + 1))
        return false;
      out.items.push_back (std::move (item));
      skip_space ();
      if (pos_ < text_.size () && text_[pos_] == ',') {
        pos_++;
        continue;
      }
      if (pos_ < text_.size () && text_[pos_] == ']') {
        pos_++;
        return true;
      }
      return set_error ("expected ',' or ']'");
    }
  }

  static int hex_digit (char c)
  {
    return g_ascii_xdigit_value (c);
  }

  static void append_utf8 (std::string &out, gunichar c)
  {
    char buffer[6];
    out.append (buffer, static_cast<size_t> (g_unichar_to_utf8 (c, buffer)));
  }

  bool unicode_escape (gunichar &out)
  {
    if (pos_ + 4 > text_.size ())
      return set_error ("short \\u escape");
    out = 0;
    for (int i = 0; i < 4; i++) {
      int digit = hex_digit (text_[pos_++]);
      if (digit < 0)
        return set_error ("bad \\u escape");
      out = out * 16 + static_cast<gunichar> (digit);
    }
    return true;
  }

  bool string (std::string &out)
  {
    pos_++;  // the opening quote
    while (pos_ < text_.size ()) {
      unsigned char c = static_cast<unsigned char> (text_[pos_++]);
      if (c == '"')
        return true;
      if (c < 0x20)
        return set_error ("unescaped control character in a string");
      if (c != '\\') {
        out += static_cast<char> (c);
        continue;
      }
      if (pos_ >= text_.size ())
        break;
      char escape = text_[pos_++];
      switch (escape) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          gunichar code;
          if (!unicode_escape (code))
            return false;
          if (code >= 0xd800 && code < 0xdc00) {
            gunichar low;
            if (text_.compare (pos_, 2, "\\u") != 0)
              return set_error ("lone high surrogate");
            pos_ += 2;
            if (!unicode_escape (low) || low < 0xdc00 || low >= 0xe000)
              return set_error ("bad low surrogate");
            code = 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00);
          } else if (code >= 0xdc00 && code < 0xe000) {
            return set_error ("lone low surrogate");
          }
          append_utf8 (out, code);
          break;
        }
        default:
          return set_error ("bad escape");
      }
    }
    return set_error ("unterminated string");
  }

  bool digits ()
  {
    size_t start = pos_;
    while (pos_ < text_.size () && g_ascii_isdigit (text_[pos_]))
      pos_++;
    return pos_ > start;
  }

  // -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?
  bool number (Json &out)
  {
    size_t start = pos_;
    if (text_[pos_] == '-')
      pos_++;
    if (pos_ < text_.size () && text_[pos_] == '0') {
      pos_++;
    } else if (pos_ < text_.size () && text_[pos_] >= '1' && text_[pos_] <= '9') {
      digits ();
    } else {
      return set_error ("unexpected character");
    }
    if (pos_ < text_.size () && text_[pos_] == '.') {
      pos_++;
      if (!digits ())
        return set_error ("no digits after '.'");
    }
    if (pos_ < text_.size () && (text_[pos_] == 'e' || text_[pos_] == 'E')) {
      pos_++;
      if (pos_ < text_.size () && (text_[pos_] == '+' || text_[pos_] == '-'))
        pos_++;
      if (!digits ())
        return set_error ("no digits in the exponent");
    }
    out.kind = Json::Number;
    out.text = text_.substr (start, pos_ - start);
    out.number = g_ascii_strtod (out.text.c_str (), nullptr);
    return true;
  }

  const std::string &text_;
  size_t pos_ = 0;
  std::string error_;
};

Json
parse_json (const std::string &text)
{
  Json out;
  std::string error;
  EXPECT_TRUE (JsonParser (text).parse (out, error)) << error << "\n" << text;
  return out;
}

// --- A strict Prometheus text format 0.0.4 parser ------------------------------

struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  std::string value;
};

struct Family {
  std::string help;
  std::string type;
  std::vector<Sample> samples;
};

struct Exposition {
  std::map<std::string, Family> families;

  // The value of the one sample of `name` with exactly `labels`, or "" if none.
  std::string value (const std::string &name, const std::map<std::string, std::string> &labels = {}) const
  {
    auto family = families.find (name);
    if (family == families.end ())
      return "";
    for (const Sample &sample : family->second.samples) {
      if (sample.labels == labels)
        return sample.value;
    }
    return "";
  }
};

bool
valid_metric_name (const std::string &name)
{
  if (name.empty () || !(g_ascii_isalpha (name[0]) || name[0] == '_' || name[0] == ':'))
    return false;
  for (char c : name) {
    if (!(g_ascii_isalnum (c) || c == '_' || c == ':'))
      return false;
  }
  return true;
}

bool
valid_label_name (const std::string &name)
{
  if (name.empty () || !(g_ascii_isalpha (name[0]) || name[0] == '_'))
    return false;
  for (char c : name) {
    if (!(g_ascii_isalnum (c) || c == '_'))
      return false;
  }
  return name.compare (0, 2, "__") != 0;
}

bool
valid_sample_value (const std::string &value)
{
  if (value == "NaN" || value == "+Inf" || value == "-Inf")
    return true;
  if (value.empty ())
    return false;
  char *end = nullptr;
  g_ascii_strtod (value.c_str (), &end);
  return end == value.c_str () + value.size ();
}

class PrometheusParser {
 public:
  bool parse (const std::string &text, Exposition &out, std::string &error)
  {
    if (!g_utf8_validate (text.data (), static_cast<gssize> (text.size ()), nullptr))
      return fail ("not UTF-8", error);
    if (text.empty () || text.back () != '\n')
      return fail ("the text does not end with a line feed", error);
    size_t start = 0;
    while (start < text.size ()) {
      size_t end = text.find ('\n', start);
      line_number_++;
      std::string line = text.substr (start, end - start);
      start = end + 1;
      if (!this->line (line, out))
        return fail (error_ + ": " + line, error);
    }
    for (const auto &[name, family] : out.families) {
      if (family.help.empty () || family.type.empty ())
        return fail (name + " has no HELP or no TYPE", error);
    }
    return true;
  }

 private:
  bool fail (const std::string &what, std::string &error)
  {
    error = "line " + std::to_string (line_number_) + ": " + what;
    return false;
  }

  bool line (const std::string &line, Exposition &out)
  {
    if (line.empty ())
      return true;
    if (line.rfind ("# HELP ", 0) == 0 || line.rfind ("# TYPE ", 0) == 0)
      return descriptor (line, out);
    if (line[0] == '#')
      return true;
    return sample (line, out);
  }

  bool descriptor (const std::string &line, Exposition &out)
  {
    bool is_help = line[2] == 'H';
    size_t name_end = line.find (' ', 7);
    if (name_end == std::string::npos)
      return set_error ("no text after the name");
    std::string name = line.substr (7, name_end - 7);
    std::string rest = line.substr (name_end + 1);
    if (!valid_metric_name (name))
      return set_error ("bad metric name");
    if (closed_.count (name))
      return set_error ("descriptor of a family whose samples are over");
    Family &family = out.families[name];
    if (is_help) {
      if (!family.help.empty ())
        return set_error ("second HELP");
      if (rest.empty ())
        return set_error ("empty HELP");
      for (size_t i = 0; i < rest.size (); i++) {
        if (rest[i] == '\\' && (i + 1 >= rest.size () || (rest[i + 1] != '\\' && rest[i + 1] != 'n')))
          return set_error ("bad escape in HELP");
        if (rest[i] == '\\')
          i++;
      }
      family.help = rest;
    } else {
      if (!family.type.empty ())
        return set_error ("second TYPE");
      if (!family.samples.empty ())
        return set_error ("TYPE after samples");
      static const std::set<std::string> kTypes = {"counter", "gauge", "histogram", "summary", "untyped"};
      if (!kTypes.count (rest))
        return set_error ("unknown TYPE");
      family.type = rest;
    }
    enter (name);
    return true;
  }

  void enter (const std::string &family)
  {
    if (family != current_ && !current_.empty ())
      closed_.insert (current_);
    current_ = family;
  }

  bool sample (const std::string &line, Exposition &out)
  {
    size_t pos = 0;
    while (pos < line.size () && line[pos] != '{' && line[pos] != ' ')
      pos++;
    Sample sample;
    sample.name = line.substr (0, pos);
    if (!valid_metric_name (sample.name))
      return set_error ("bad metric name");
    if (pos < line.size () && line[pos] == '{') {
      pos++;
      while (true) {
        if (pos < line.size () && line[pos] == '}') {
          pos++;
          break;
        }
        size_t equals = line.find ('=', pos);
        if (equals == std::string::npos)
          return set_error ("label without '='");
        std::string label = line.substr (pos, equals - pos);
        if (!valid_label_name (label))
          return set_error ("bad label name");
        pos = equals + 1;
        if (pos >= line.size () || line[pos] != '"')
          return set_error ("label value not quoted");
        pos++;
        std::string value;
        while (true) {
          if (pos >= line.size ())
            return set_error ("unterminated label value");
          char c = line[pos++];
          if (c == '"')
            break;
          if (c == '\\') {
            if (pos >= line.size ())
              return set_error ("unterminated escape");
            char escape = line[pos++];
            if (escape == '\\')
              value += '\\';
            else if (escape == '"')
              value += '"';
            else if (escape == 'n')
              value += '\n';
            else
              return set_error ("bad escape in a label value");
            continue;
          }
          value += c;
        }
        if (!sample.labels.emplace (label, value).second)
          return set_error ("repeated label");
        if (pos < line.size () && line[pos] == ',')
          pos++;
        else if (pos >= line.size () || line[pos] != '}')
          return set_error ("expected ',' or '}' after a label");
      }
    }
    if (pos >= line.size () || line[pos] != ' ')
      return set_error ("no space before the value");
    sample.value = line.substr (pos + 1);
    size_t timestamp = sample.value.find (' ');
    if (timestamp != std::string::npos)
      sample.value.resize (timestamp);
    if (!valid_sample_value (sample.value))
      return set_error ("bad value");

    // Counters and gauges: the sample's name is the family's name.
    auto family = out.families.find (sample.name);
    if (family == out.families.end () || family->second.type.empty ())
      return set_error ("sample before its family's TYPE");
    if (closed_.count (sample.name))
      return set_error ("samples of one family are not together");
    for (const Sample &other : family->second.samples) {
      if (other.labels == sample.labels)
        return set_error ("duplicate series");
    }
    if (family->second.type == "counter" && g_ascii_strtod (sample.value.c_str (), nullptr) < 0)
      return set_error ("negative counter");
    enter (sample.name);
    family->second.samples.push_back (std::move (sample));
    return true;
  }

  bool set_error (const char *what)
  {
    error_ = what;
    return false;
  }

  int line_number_ = 0;
  std::string current_;
  std::set<std::string> closed_;
  std::string error_;
};

Exposition
parse_metrics (const std::string &text)
{
  Exposition out;
  std::string error;
  EXPECT_TRUE (PrometheusParser ().parse (text, out, error)) << error << "\n" << text;
  return out;
}

// --- Sample statuses -----------------------------------------------------------

const char kAwkwardName[] = "yard \"north\"\\gate\nline 2 \xc3\xa9";

StructurePtr
camerasrc_stats_like (guint64 last_frame_age)
{
  return StructurePtr (gst_structure_new (cs_names::STATS,
      cs_names::STAT_CONNECTS, G_TYPE_UINT64, G_GUINT64_CONSTANT (3),
      cs_names::STAT_RECONNECTS, G_TYPE_UINT64, G_GUINT64_CONSTANT (2),
      cs_names::STAT_ATTEMPT, G_TYPE_UINT, 0u,
      cs_names::STAT_BYTES, G_TYPE_UINT64, G_GUINT64_CONSTANT (123456789012),
      cs_names::STAT_FRAMES, G_TYPE_UINT64, G_GUINT64_CONSTANT (9000),
      cs_names::STAT_KEYFRAMES, G_TYPE_UINT64, G_GUINT64_CONSTANT (300),
      cs_names::STAT_FALLBACK_FRAMES, G_TYPE_UINT64, G_GUINT64_CONSTANT (4),
      cs_names::STAT_LAST_ERROR, G_TYPE_STRING, "rtspsrc: \"Could not\\read\"\n\ttab\x01",
      cs_names::STAT_STREAMING_TIME, G_TYPE_UINT64, G_GUINT64_CONSTANT (300000000000),
      cs_names::STAT_DOWN_TIME, G_TYPE_UINT64, G_GUINT64_CONSTANT (2000000000),
      cs_names::STAT_LAST_FRAME_AGE, G_TYPE_UINT64, last_frame_age,
      cs_names::STAT_WIDTH, G_TYPE_INT, 1920,
      cs_names::STAT_HEIGHT, G_TYPE_INT, 1080,
      cs_names::STAT_FRAMERATE, GST_TYPE_FRACTION, 30000, 1001,
      cs_names::STAT_BITRATE, G_TYPE_UINT64, G_GUINT64_CONSTANT (4000000),
      cs_names::STAT_CODEC, G_TYPE_STRING, "h264",
      nullptr));
}

StructurePtr
resilientqueue_stats_like ()
{
  return StructurePtr (gst_structure_new (rq_names::STATS,
      rq_names::STAT_RECEIVED_BUFFERS, G_TYPE_UINT64, G_GUINT64_CONSTANT (9000),
      rq_names::STAT_PUSHED_BUFFERS, G_TYPE_UINT64, G_GUINT64_CONSTANT (8971),
      rq_names::FIELD_DROPPED_BUFFERS, G_TYPE_UINT64, G_GUINT64_CONSTANT (29),
      rq_names::FIELD_DROPPED_BYTES, G_TYPE_UINT64, G_GUINT64_CONSTANT (235201),
      rq_names::FIELD_DROPPED_GOPS, G_TYPE_UINT64, G_GUINT64_CONSTANT (1),
      nullptr));
}

Status
sample_status ()
{
  Status status;
  status.version = "0.1.0";
  status.uptime_seconds = 3725.25;
  status.clients = 3;
  status.clients_cut = 7;
  status.resident_bytes = 52428800;
  status.heap_in_use_bytes = 24117248;
  status.heap_free_bytes = 1048576;

  CameraStatus door;
  door.name = "door";
  door.mount = "/door";
  door.state = cs_names::STATE_STREAMING;
  door.up = true;
  door.reconnects = 2;
  door.bytes_in = 123456789012;
  door.frames_in = 9000;
  door.frames_dropped = 29;
  door.clients = 3;
  door.bytes_out = G_GUINT64_CONSTANT (18446744073709551614);  // no float rounding
  door.gop_cache_bytes = 524288;
  door.instant_starts = 11;
  door.live_starts = 4;
  door.camerasrc_stats = camerasrc_stats_like (33000000);
  door.resilientqueue_stats = resilientqueue_stats_like ();
  status.cameras.push_back (std::move (door));

  CameraStatus yard;
  yard.name = kAwkwardName;
  yard.mount = "/yard";
  yard.state = cs_names::STATE_RECONNECTING;
  status.cameras.push_back (std::move (yard));

  CameraStatus garage;  // a state camerasrc does not have, from the launcher
  garage.name = "garage";
  garage.mount = "/garage";
  garage.state = "idle";
  status.cameras.push_back (std::move (garage));
  return status;
}

// --- Rendering -----------------------------------------------------------------

TEST (Metrics, ParsesStrictlyWithHelpAndTypeForEveryFamily)
{
  Exposition metrics = parse_metrics (render_metrics (sample_status ()));

  const std::map<std::string, std::string> expected_types = {
    {"camrelay_build_info", "gauge"},
    {"camrelay_uptime_seconds", "gauge"},
    {"camrelay_clients", "gauge"},
    {"camrelay_clients_cut_total", "counter"},
    {"process_resident_memory_bytes", "gauge"},
    {"camrelay_heap_bytes", "gauge"},
    {"camrelay_camera_up", "gauge"},
    {"camrelay_camera_state", "gauge"},
    {"camrelay_camera_reconnects_total", "counter"},
    {"camrelay_camera_bytes_in_total", "counter"},
    {"camrelay_camera_frames_in_total", "counter"},
    {"camrelay_camera_frames_dropped_total", "counter"},
    {"camrelay_camera_clients", "gauge"},
    {"camrelay_camera_bytes_out_total", "counter"},
    {"camrelay_camera_gop_cache_bytes", "gauge"},
    {"camrelay_camera_instant_starts_total", "counter"},
    {"camrelay_camera_live_starts_total", "counter"},
  };
  ASSERT_EQ (metrics.families.size (), expected_types.size ());
  for (const auto &[name, type] : expected_types) {
    ASSERT_TRUE (metrics.families.count (name)) << name;
    EXPECT_EQ (metrics.families.at (name).type, type) << name;
    EXPECT_FALSE (metrics.families.at (name).help.empty ()) << name;
    // Ours, or the name Prometheus' own clients give a process figure.
    EXPECT_TRUE (name.rfind ("camrelay_", 0) == 0 || name.rfind ("process_", 0) == 0) << name;
    EXPECT_EQ (type == "counter", g_str_has_suffix (name.c_str (), "_total")) << name;
  }
}

TEST (Metrics, ProcessValues)
{
  Exposition metrics = parse_metrics (render_metrics (sample_status ()));
  EXPECT_EQ (metrics.value ("camrelay_build_info", {{"version", "0.1.0"}}), "1");
  EXPECT_EQ (metrics.value ("camrelay_uptime_seconds"), "3725.250");
  EXPECT_EQ (metrics.value ("camrelay_clients"), "3");
  EXPECT_EQ (metrics.value ("camrelay_clients_cut_total"), "7");
  EXPECT_EQ (metrics.value ("process_resident_memory_bytes"), "52428800");
  EXPECT_EQ (metrics.value ("camrelay_heap_bytes", {{"state", "in_use"}}), "24117248");
  EXPECT_EQ (metrics.value ("camrelay_heap_bytes", {{"state", "free"}}), "1048576");
}

TEST (Metrics, PerCameraValues)
{
  Exposition metrics = parse_metrics (render_metrics (sample_status ()));
  const std::map<std::string, std::string> door = {{"camera", "door"}};
  EXPECT_EQ (metrics.value ("camrelay_camera_up", door), "1");
  EXPECT_EQ (metrics.value ("camrelay_camera_reconnects_total", door), "2");
  EXPECT_EQ (metrics.value ("camrelay_camera_bytes_in_total", door), "123456789012");
  EXPECT_EQ (metrics.value ("camrelay_camera_frames_in_total", door), "9000");
  EXPECT_EQ (metrics.value ("camrelay_camera_frames_dropped_total", door), "29");
  EXPECT_EQ (metrics.value ("camrelay_camera_clients", door), "3");
  EXPECT_EQ (metrics.value ("camrelay_camera_bytes_out_total", door), "18446744073709551614");
  EXPECT_EQ (metrics.value ("camrelay_camera_gop_cache_bytes", door), "524288");
  EXPECT_EQ (metrics.value ("camrelay_camera_instant_starts_total", door), "11");
  EXPECT_EQ (metrics.value ("camrelay_camera_live_starts_total", door), "4");

  const std::map<std::string, std::string> yard = {{"camera", kAwkwardName}};
  EXPECT_EQ (metrics.value ("camrelay_camera_up", yard), "0");
  EXPECT_EQ (metrics.value ("camrelay_camera_reconnects_total", yard), "0");
  // Every metric family has one sample per camera (state: one per state).
  for (const auto &[name, family] : metrics.families) {
    if (name.rfind ("camrelay_camera_", 0) == 0 && name != "camrelay_camera_state") {
      EXPECT_EQ (family.samples.size (), 3u) << name;
    }
  }
}

TEST (Metrics, StateIsOneLabelPerStateWithOneForTheCurrent)
{
  Exposition metrics = parse_metrics (render_metrics (sample_status ()));
  for (const char *state : cs_names::STATES) {
    EXPECT_EQ (metrics.value ("camrelay_camera_state", {{"camera", "door"}, {"state", state}}),
        strcmp (state, cs_names::STATE_STREAMING) == 0 ? "1" : "0") << state;
    EXPECT_EQ (metrics.value ("camrelay_camera_state", {{"camera", kAwkwardName}, {"state", state}}),
        strcmp (state, cs_names::STATE_RECONNECTING) == 0 ? "1" : "0") << state;
    EXPECT_EQ (metrics.value ("camrelay_camera_state", {{"camera", "garage"}, {"state", state}}), "0");
  }
  // A state of the launcher's own is exported too, as the only 1.
  EXPECT_EQ (metrics.value ("camrelay_camera_state", {{"camera", "garage"}, {"state", "idle"}}), "1");
  EXPECT_EQ (metrics.families.at ("camrelay_camera_state").samples.size (), 5u + 5u + 6u);
}

TEST (Metrics, LabelValuesAreEscaped)
{
  std::string text = render_metrics (sample_status ());
  // The raw text holds the escaped form; the parser (above) gave back the
  // original, so the round trip is exact.
  EXPECT_NE (text.find ("camera=\"yard \\\"north\\\"\\\\gate\\nline 2 \xc3\xa9\""), std::string::npos) << text;

  Status status;
  status.version = "1.0 \"beta\"\\\n";
  Exposition metrics = parse_metrics (render_metrics (status));
  EXPECT_EQ (metrics.value ("camrelay_build_info", {{"version", status.version}}), "1");
}

TEST (Metrics, NoCamerasStillDeclaresEveryFamily)
{
  Status status;
  status.version = "0.1.0";
  Exposition metrics = parse_metrics (render_metrics (status));
  EXPECT_EQ (metrics.families.size (), 17u);
  EXPECT_TRUE (metrics.families.at ("camrelay_camera_up").samples.empty ());
}

TEST (Metrics, NonFiniteUptime)
{
  Status status;
  status.uptime_seconds = NAN;
  EXPECT_EQ (parse_metrics (render_metrics (status)).value ("camrelay_uptime_seconds"), "NaN");
  status.uptime_seconds = INFINITY;
  EXPECT_EQ (parse_metrics (render_metrics (status)).value ("camrelay_uptime_seconds"), "+Inf");
}

TEST (Json, QuoteEscapesWhatJsonRequires)
{
  EXPECT_EQ (json_quote ("plain"), "\"plain\"");
  EXPECT_EQ (json_quote ("a\"b\\c/d"), "\"a\\\"b\\\\c/d\"");
  EXPECT_EQ (json_quote ("\n\r\t\b\f"), "\"\\n\\r\\t\\b\\f\"");
  EXPECT_EQ (json_quote (std::string ("\x01\x1f\x7f", 3)), "\"\\u0001\\u001f\x7f\"");
  EXPECT_EQ (json_quote (std::string ("nul\0byte", 8)), "\"nul\\u0000byte\"");
  EXPECT_EQ (json_quote ("caf\xc3\xa9 \xe2\x82\xac"), "\"caf\xc3\xa9 \xe2\x82\xac\"");
  // Invalid UTF-8 is replaced, never passed on.
  EXPECT_EQ (json_quote ("bad \xff\xfe end"), "\"bad \xef\xbf\xbd\xef\xbf\xbd end\"");

  for (const std::string &text : {std::string ("\x01\x02\"\\\n"), std::string ("\xc3\xa9\xff")}) {
    Json parsed = parse_json (json_quote (text));
    EXPECT_EQ (parsed.kind, Json::String);
  }
  EXPECT_EQ (parse_json (json_quote (kAwkwardName)).text, kAwkwardName);
}

TEST (Json, HealthSummary)
{
  Json health = parse_json (render_health_json (sample_status ()));
  ASSERT_EQ (health.kind, Json::Object);
  ASSERT_EQ (health.members.size (), 6u);
  EXPECT_EQ (health.get ("status")->text, "ok");
  EXPECT_EQ (health.get ("version")->text, "0.1.0");
  EXPECT_EQ (health.get ("uptime_seconds")->kind, Json::Number);
  EXPECT_DOUBLE_EQ (health.get ("uptime_seconds")->number, 3725.25);
  EXPECT_EQ (health.get ("cameras")->text, "3");
  EXPECT_EQ (health.get ("cameras_up")->text, "1");
  EXPECT_EQ (health.get ("clients")->text, "3");

  Status empty;
  empty.uptime_seconds = NAN;
  Json idle = parse_json (render_health_json (empty));
  EXPECT_EQ (idle.get ("status")->text, "ok");
  EXPECT_EQ (idle.get ("cameras")->text, "0");
  EXPECT_EQ (idle.get ("uptime_seconds")->kind, Json::Null);
}

TEST (Json, CamerasArray)
{
  Json cameras = parse_json (render_cameras_json (sample_status ()));
  ASSERT_EQ (cameras.kind, Json::Array);
  ASSERT_EQ (cameras.items.size (), 3u);

  const Json &door = cameras.items[0];
  EXPECT_EQ (door.get ("name")->text, "door");
  EXPECT_EQ (door.get ("mount")->text, "/door");
  EXPECT_EQ (door.get ("state")->text, cs_names::STATE_STREAMING);
  EXPECT_EQ (door.get ("up")->kind, Json::Bool);
  EXPECT_TRUE (door.get ("up")->boolean);
  EXPECT_EQ (door.get ("reconnects")->text, "2");
  EXPECT_EQ (door.get ("bytes_in")->text, "123456789012");
  EXPECT_EQ (door.get ("frames_in")->text, "9000");
  EXPECT_EQ (door.get ("frames_dropped")->text, "29");
  EXPECT_EQ (door.get ("clients")->text, "3");
  EXPECT_EQ (door.get ("bytes_out")->text, "18446744073709551614");
  EXPECT_EQ (door.get ("camerasrc")->kind, Json::Object);
  EXPECT_EQ (door.get ("resilientqueue")->kind, Json::Object);

  const Json &yard = cameras.items[1];
  EXPECT_EQ (yard.get ("name")->text, kAwkwardName);
  EXPECT_FALSE (yard.get ("up")->boolean);
  EXPECT_EQ (yard.get ("camerasrc")->kind, Json::Null);
  EXPECT_EQ (yard.get ("resilientqueue")->kind, Json::Null);

  Status empty;
  EXPECT_EQ (parse_json (render_cameras_json (empty)).items.size (), 0u);
}

TEST (Json, CamerasrcStatsFieldByField)
{
  Json cameras = parse_json (render_cameras_json (sample_status ()));
  const Json &stats = *cameras.items[0].get ("camerasrc");
  ASSERT_EQ (stats.members.size (), 16u);
  // Field order is the structure's.
  EXPECT_EQ (stats.members.front ().first, cs_names::STAT_CONNECTS);
  EXPECT_EQ (stats.members.back ().first, cs_names::STAT_CODEC);

  const std::map<std::string, std::string> numbers = {
    {cs_names::STAT_CONNECTS, "3"}, {cs_names::STAT_RECONNECTS, "2"},
    {cs_names::STAT_ATTEMPT, "0"}, {cs_names::STAT_BYTES, "123456789012"},
    {cs_names::STAT_FRAMES, "9000"}, {cs_names::STAT_KEYFRAMES, "300"},
    {cs_names::STAT_FALLBACK_FRAMES, "4"}, {cs_names::STAT_STREAMING_TIME, "300000000000"},
    {cs_names::STAT_DOWN_TIME, "2000000000"}, {cs_names::STAT_LAST_FRAME_AGE, "33000000"},
    {cs_names::STAT_WIDTH, "1920"}, {cs_names::STAT_HEIGHT, "1080"},
    {cs_names::STAT_BITRATE, "4000000"},
  };
  for (const auto &[field, value] : numbers) {
    ASSERT_NE (stats.get (field), nullptr) << field;
    EXPECT_EQ (stats.get (field)->kind, Json::Number) << field;
    EXPECT_EQ (stats.get (field)->text, value) << field;
  }
  EXPECT_EQ (stats.get (cs_names::STAT_FRAMERATE)->kind, Json::String);
  EXPECT_EQ (stats.get (cs_names::STAT_FRAMERATE)->text, "30000/1001");
  EXPECT_EQ (stats.get (cs_names::STAT_CODEC)->text, "h264");
  EXPECT_EQ (stats.get (cs_names::STAT_LAST_ERROR)->text,
      "rtspsrc: \"Could not\\read\"\n\ttab\x01");
}

TEST (Json, LastFrameAgeBeforeTheFirstFrameIsNull)
{
  StructurePtr stats = camerasrc_stats_like (G_MAXUINT64);
  Json parsed = parse_json (structure_to_json (stats.get ()));
  ASSERT_NE (parsed.get (cs_names::STAT_LAST_FRAME_AGE), nullptr);
  EXPECT_EQ (parsed.get (cs_names::STAT_LAST_FRAME_AGE)->kind, Json::Null);
  EXPECT_EQ (structure_to_json (nullptr), "null");
}

TEST (Json, ResilientqueueStatsFieldByField)
{
  Json cameras = parse_json (render_cameras_json (sample_status ()));
  const Json &stats = *cameras.items[0].get ("resilientqueue");
  ASSERT_EQ (stats.members.size (), 5u);
  EXPECT_EQ (stats.get (rq_names::STAT_RECEIVED_BUFFERS)->text, "9000");
  EXPECT_EQ (stats.get (rq_names::STAT_PUSHED_BUFFERS)->text, "8971");
  EXPECT_EQ (stats.get (rq_names::FIELD_DROPPED_BUFFERS)->text, "29");
  EXPECT_EQ (stats.get (rq_names::FIELD_DROPPED_BYTES)->text, "235201");
  EXPECT_EQ (stats.get (rq_names::FIELD_DROPPED_GOPS)->text, "1");
}

TEST (Json, OtherValueTypes)
{
  StructurePtr nested{gst_structure_new ("inner", "x", G_TYPE_INT, -5, nullptr)};
  GValue list = G_VALUE_INIT;
  gst_value_list_init (&list, 2);
  GValue item = G_VALUE_INIT;
  g_value_init (&item, G_TYPE_STRING);
  g_value_set_string (&item, "a");
  gst_value_list_append_value (&list, &item);
  g_value_set_string (&item, "b\"");
  gst_value_list_append_value (&list, &item);
  g_value_unset (&item);

  StructurePtr structure{gst_structure_new ("test",
      "yes", G_TYPE_BOOLEAN, TRUE,
      "ratio", G_TYPE_DOUBLE, 0.25,
      "tenth", G_TYPE_DOUBLE, 0.1,
      "third", G_TYPE_DOUBLE, 1.0 / 3.0,
      "big", G_TYPE_DOUBLE, 1e20,
      "whole", G_TYPE_FLOAT, 2.0f,
      "infinite", G_TYPE_DOUBLE, INFINITY,
      "negative", G_TYPE_INT64, G_GINT64_CONSTANT (-9000000000),
      "state", GST_TYPE_STATE, GST_STATE_PLAYING,
      "none", G_TYPE_STRING, nullptr,
      "inner", GST_TYPE_STRUCTURE, nested.get (),
      nullptr)};
  gst_structure_take_value (structure.get (), "list", &list);

  Json parsed = parse_json (structure_to_json (structure.get ()));
  EXPECT_TRUE (parsed.get ("yes")->boolean);
  EXPECT_EQ (parsed.get ("ratio")->text, "0.25");
  EXPECT_EQ (parsed.get ("tenth")->text, "0.1");
  EXPECT_EQ (parsed.get ("third")->text, "0.3333333333333333");
  EXPECT_EQ (parsed.get ("big")->text, "1e+20");
  EXPECT_EQ (parsed.get ("whole")->text, "2");
  EXPECT_EQ (parsed.get ("infinite")->kind, Json::Null);
  EXPECT_EQ (parsed.get ("negative")->text, "-9000000000");
  EXPECT_EQ (parsed.get ("state")->text, "playing");
  EXPECT_EQ (parsed.get ("none")->kind, Json::Null);
  EXPECT_EQ (parsed.get ("inner")->get ("x")->text, "-5");
  ASSERT_EQ (parsed.get ("list")->items.size (), 2u);
  EXPECT_EQ (parsed.get ("list")->items[1].text, "b\"");
}

// The real elements' stats, so that a field added to either element later is
// converted too (every documented field present, numbers as numbers).
TEST (Json, RealElementStats)
{
  ElementPtr camerasrc{gst_element_factory_make ("camerasrc", nullptr)};
  ElementPtr queue{gst_element_factory_make ("resilientqueue", nullptr)};
  ASSERT_TRUE (camerasrc && queue) << "the camrelay plugin is not in GST_PLUGIN_PATH_1_0";

  GstStructure *raw = nullptr;
  g_object_get (camerasrc.get (), "stats", &raw, nullptr);
  StructurePtr camerasrc_stats{raw};
  g_object_get (queue.get (), "stats", &raw, nullptr);
  StructurePtr queue_stats{raw};
  ASSERT_TRUE (camerasrc_stats && queue_stats);

  Json camera = parse_json (structure_to_json (camerasrc_stats.get ()));
  // Every number but last-frame-age, which is null until a frame arrives.
  std::vector<const char *> camera_numbers = {cs_names::STAT_ATTEMPT, cs_names::STAT_WIDTH,
      cs_names::STAT_HEIGHT};
  for (const char *field : cs_names::STATS_U64)
    if (strcmp (field, cs_names::STAT_LAST_FRAME_AGE) != 0)
      camera_numbers.push_back (field);
  for (const char *field : camera_numbers) {
    ASSERT_NE (camera.get (field), nullptr) << field;
    EXPECT_EQ (camera.get (field)->kind, Json::Number) << field;
  }
  EXPECT_EQ (camera.get (cs_names::STAT_LAST_FRAME_AGE)->kind, Json::Null);  // never ran
  EXPECT_EQ (camera.get (cs_names::STAT_FRAMERATE)->text, "0/1");
  EXPECT_EQ (camera.get (cs_names::STAT_LAST_ERROR)->kind, Json::String);
  EXPECT_EQ (camera.get (cs_names::STAT_CODEC)->kind, Json::String);

  Json queue_json = parse_json (structure_to_json (queue_stats.get ()));
  EXPECT_EQ (queue_json.members.size (), G_N_ELEMENTS (rq_names::STATS_FIELDS));
  for (const auto &[field, value] : queue_json.members)
    EXPECT_EQ (value.kind, Json::Number) << field;
}

// --- The server ----------------------------------------------------------------

constexpr gint64 kWaitUs = 5 * G_USEC_PER_SEC;

// A private main context, made thread-default on the test's thread as the
// launcher's loop thread does, with the server and a libsoup client in it.
class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp () override
  {
    context_ = g_main_context_new ();
    g_main_context_push_thread_default (context_);
    session_ = soup_session_new_with_options ("timeout", 5u, "idle-timeout", 5u, nullptr);
  }

  void TearDown () override
  {
    server_.reset ();
    soup_session_abort (session_);
    g_object_unref (session_);
    // Let the aborted connections finish closing, bounded.
    gint64 deadline = g_get_monotonic_time () + G_USEC_PER_SEC / 10;
    while (g_get_monotonic_time () < deadline && g_main_context_iteration (context_, FALSE)) {
    }
    g_main_context_pop_thread_default (context_);
    g_main_context_unref (context_);
  }

  void start_server ()
  {
    server_ = std::make_unique<HttpServer> ([this] () {
      provider_calls_++;
      provider_thread_ = std::this_thread::get_id ();
      return sample_status ();
    });
    std::string error;
    ASSERT_TRUE (server_->start ("127.0.0.1", 0, context_, error)) << error;
    ASSERT_NE (server_->port (), 0);
  }

  struct Response {
    guint status = 0;
    std::string content_type;
    std::string allow;
    std::string connection;
    std::string body;
    bool done = false;
  };

  // Iterates the context until `done` is true or 5 s have passed.
  template <typename Predicate>
  bool iterate_until (Predicate done)
  {
    gint64 deadline = g_get_monotonic_time () + kWaitUs;
    while (!done ()) {
      if (g_get_monotonic_time () >= deadline)
        return false;
      // A timeout source bounds the blocking iteration.
      GSource *tick = g_timeout_source_new (50);
      g_source_set_callback (tick, [] (gpointer) { return G_SOURCE_REMOVE; }, nullptr, nullptr);
      g_source_attach (tick, context_);
      g_main_context_iteration (context_, TRUE);
      g_source_destroy (tick);
      g_source_unref (tick);
    }
    return true;
  }

  Response fetch (const char *method, const std::string &path)
  {
    return fetch_uri (method, "http://127.0.0.1:" + std::to_string (server_->port ()) + path);
  }

  Response fetch_uri (const char *method, const std::string &uri)
  {
    SoupMessage *message = soup_message_new (method, uri.c_str ());
    Response response;
    struct Call {
      Response *response;
      SoupMessage *message;
    } call{&response, message};

    soup_session_send_and_read_async (session_, message, G_PRIORITY_DEFAULT, nullptr,
        [] (GObject *source, GAsyncResult *result, gpointer user_data) {
          Call *call = static_cast<Call *> (user_data);
          GError *error = nullptr;
          GBytes *bytes = soup_session_send_and_read_finish (SOUP_SESSION (source), result, &error);
          if (bytes) {
            gsize size = 0;
            const char *data = static_cast<const char *> (g_bytes_get_data (bytes, &size));
            call->response->body.assign (data ? data : "", size);
            g_bytes_unref (bytes);
          } else {
            ADD_FAILURE () << "request failed: " << error->message;
            g_error_free (error);
          }
          call->response->status = soup_message_get_status (call->message);
          SoupMessageHeaders *headers = soup_message_get_response_headers (call->message);
          const char *content_type = soup_message_headers_get_one (headers, "Content-Type");
          const char *allow = soup_message_headers_get_one (headers, "Allow");
          call->response->content_type = content_type ? content_type : "";
          call->response->allow = allow ? allow : "";
          const char *connection = soup_message_headers_get_one (headers, "Connection");
          call->response->connection = connection ? connection : "";
          call->response->done = true;
        },
        &call);

    bool finished = iterate_until ([&response] () { return response.done; });
    EXPECT_TRUE (finished) << method << " " << uri << " got no answer within 5 s";
    if (!finished) {
      soup_session_abort (session_);
      iterate_until ([&response] () { return response.done; });
    }
    g_object_unref (message);
    return response;
  }

  GMainContext *context_ = nullptr;
  SoupSession *session_ = nullptr;
  std::unique_ptr<HttpServer> server_;
  int provider_calls_ = 0;
  std::thread::id provider_thread_;
};

TEST_F (HttpServerTest, Healthz)
{
  start_server ();
  Response response = fetch ("GET", "/healthz");
  EXPECT_EQ (response.status, 200u);
  EXPECT_EQ (response.content_type, "application/json");
  Json health = parse_json (response.body);
  EXPECT_EQ (health.get ("status")->text, "ok");
  EXPECT_EQ (health.get ("cameras")->text, "3");
  EXPECT_EQ (provider_calls_, 1);
  EXPECT_EQ (provider_thread_, std::this_thread::get_id ());
}

TEST_F (HttpServerTest, Metrics)
{
  start_server ();
  Response response = fetch ("GET", "/metrics");
  EXPECT_EQ (response.status, 200u);
  EXPECT_EQ (response.content_type, "text/plain; version=0.0.4; charset=utf-8");
  Exposition metrics = parse_metrics (response.body);
  EXPECT_EQ (metrics.value ("camrelay_camera_up", {{"camera", "door"}}), "1");
}

TEST_F (HttpServerTest, ApiCameras)
{
  start_server ();
  Response response = fetch ("GET", "/api/cameras");
  EXPECT_EQ (response.status, 200u);
  EXPECT_EQ (response.content_type, "application/json");
  Json cameras = parse_json (response.body);
  ASSERT_EQ (cameras.items.size (), 3u);
  EXPECT_EQ (cameras.items[0].get ("camerasrc")->get ("framerate")->text, "30000/1001");
  // A query string does not change the endpoint.
  EXPECT_EQ (fetch ("GET", "/api/cameras?pretty=1").status, 200u);
}

TEST_F (HttpServerTest, HeadHasNoBody)
{
  start_server ();
  Response response = fetch ("HEAD", "/metrics");
  EXPECT_EQ (response.status, 200u);
  EXPECT_EQ (response.content_type, "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_TRUE (response.body.empty ());
}

// Every answer closes its connection: with libsoup 3.2, a kept-alive
// connection closed by the client while idle is never freed on the server.
TEST_F (HttpServerTest, EveryAnswerClosesItsConnection)
{
  start_server ();
  for (const char *path : {"/healthz", "/metrics", "/api/cameras", "/nothing"}) {
    Response response = fetch ("GET", path);
    EXPECT_EQ (response.connection, "close") << path;
  }
}

TEST_F (HttpServerTest, UnknownPathsAre404)
{
  start_server ();
  for (const char *path : {"/", "/metrics/", "/health", "/api", "/api/cameras/door", "/api/cameras%2F"}) {
    Response response = fetch ("GET", path);
    EXPECT_EQ (response.status, 404u) << path;
    EXPECT_EQ (response.content_type, "text/plain; charset=utf-8") << path;
  }
  EXPECT_EQ (fetch ("POST", "/nothing").status, 404u);
  // A request libsoup cannot parse is refused before it reaches us.
  EXPECT_EQ (fetch ("GET", "/%00").status, 400u);
  EXPECT_EQ (provider_calls_, 0);
}

TEST_F (HttpServerTest, OtherMethodsAre405)
{
  start_server ();
  for (const char *method : {"POST", "PUT", "DELETE", "PATCH", "OPTIONS"}) {
    for (const char *path : {"/healthz", "/metrics", "/api/cameras"}) {
      Response response = fetch (method, path);
      EXPECT_EQ (response.status, 405u) << method << " " << path;
      EXPECT_EQ (response.allow, "GET, HEAD") << method << " " << path;
    }
  }
  EXPECT_EQ (provider_calls_, 0);
}

TEST_F (HttpServerTest, ProviderFailureIs500)
{
  server_ = std::make_unique<HttpServer> ([] () -> Status { throw std::runtime_error ("no status"); });
  std::string error;
  ASSERT_TRUE (server_->start ("127.0.0.1", 0, context_, error)) << error;
  Response response = fetch ("GET", "/metrics");
  EXPECT_EQ (response.status, 500u);
  EXPECT_NE (response.body.find ("no status"), std::string::npos);
}

// A client that sends half a request and then nothing must not hold the
// others: the server only ever reads what is there.
TEST_F (HttpServerTest, StalledClientDoesNotBlockOthers)
{
  start_server ();
  GSocketClient *client = g_socket_client_new ();
  g_socket_client_set_timeout (client, 5);
  GError *error = nullptr;
  GSocketConnection *stalled = g_socket_client_connect_to_host (client, "127.0.0.1",
      server_->port (), nullptr, &error);
  ASSERT_NE (stalled, nullptr) << error->message;
  const char partial[] = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  gsize written = 0;
  ASSERT_TRUE (g_output_stream_write_all (g_io_stream_get_output_stream (G_IO_STREAM (stalled)),
      partial, sizeof partial - 1, &written, nullptr, &error));

  for (int i = 0; i < 3; i++)
    EXPECT_EQ (fetch ("GET", "/healthz").status, 200u);

  g_io_stream_close (G_IO_STREAM (stalled), nullptr, nullptr);
  g_object_unref (stalled);
  g_object_unref (client);
}

TEST_F (HttpServerTest, ManyRequestsOnOneConnection)
{
  start_server ();
  for (int i = 0; i < 50; i++)
    ASSERT_EQ (fetch ("GET", i % 2 ? "/metrics" : "/api/cameras").status, 200u);
  EXPECT_EQ (provider_calls_, 50);
}

TEST_F (HttpServerTest, BindFailureIsOneLineNamingTheAddress)
{
  // Hold a port with a listening socket of our own.
  GError *error = nullptr;
  GSocket *holder = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
      G_SOCKET_PROTOCOL_TCP, &error);
  ASSERT_NE (holder, nullptr);
  GInetAddress *loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  GSocketAddress *any_port = g_inet_socket_address_new (loopback, 0);
  ASSERT_TRUE (g_socket_bind (holder, any_port, FALSE, &error));
  ASSERT_TRUE (g_socket_listen (holder, &error));
  GSocketAddress *bound = g_socket_get_local_address (holder, &error);
  uint16_t port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));

  HttpServer server ([] () { return Status (); });
  std::string message;
  EXPECT_FALSE (server.start ("127.0.0.1", port, context_, message));
  EXPECT_EQ (message, "HTTP 127.0.0.1:" + std::to_string (port) + ": Address already in use");
  EXPECT_EQ (server.port (), 0);

  // The same server object can still start elsewhere.
  EXPECT_TRUE (server.start ("127.0.0.1", 0, context_, message)) << message;

  g_object_unref (bound);
  g_object_unref (any_port);
  g_object_unref (loopback);
  g_socket_close (holder, nullptr);
  g_object_unref (holder);
}

TEST_F (HttpServerTest, BadAddress)
{
  HttpServer server ([] () { return Status (); });
  std::string message;
  EXPECT_FALSE (server.start ("localhost", 8080, context_, message));
  EXPECT_EQ (message, "HTTP localhost:8080: not an IP address");
  EXPECT_FALSE (server.start ("192.0.2.1", 0, context_, message));  // not ours
  EXPECT_EQ (message, "HTTP 192.0.2.1:0: Cannot assign requested address");
}

TEST_F (HttpServerTest, StopClosesThePortAndIsIdempotent)
{
  start_server ();
  uint16_t port = server_->port ();
  ASSERT_EQ (fetch ("GET", "/healthz").status, 200u);
  server_->stop ();
  server_->stop ();
  EXPECT_EQ (server_->port (), 0);

  // Nothing listens any more: a new server can take the very same port.
  HttpServer again ([] () { return Status (); });
  std::string error;
  EXPECT_TRUE (again.start ("127.0.0.1", port, context_, error)) << error;
  EXPECT_EQ (again.port (), port);
  again.stop ();

  // And starting twice is refused.
  EXPECT_TRUE (again.start ("127.0.0.1", 0, context_, error)) << error;
  EXPECT_FALSE (again.start ("127.0.0.1", 0, context_, error));
  EXPECT_NE (error.find ("already serving"), std::string::npos) << error;
}

TEST_F (HttpServerTest, Ipv6Loopback)
{
  HttpServer server ([] () { return sample_status (); });
  std::string error;
  if (!server.start ("::1", 0, context_, error))
    GTEST_SKIP () << "no IPv6 loopback here: " << error;
  Response response = fetch_uri ("GET", "http://[::1]:" + std::to_string (server.port ()) + "/healthz");
  EXPECT_EQ (response.status, 200u);
}

}  // namespace
