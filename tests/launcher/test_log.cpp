// The launcher's log (launcher/log.h): how log_value() shows a client's value
// and how log_line() escapes and cuts the line it writes on stderr.
#include <gtest/gtest.h>

#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <functional>
#include <string>

#include "log.h"

using camrelay::launcher::log_line;
using camrelay::launcher::LOG_LINE_MAX;
using camrelay::launcher::log_value;
using camrelay::launcher::LOG_VALUE_MAX;

namespace {

// Whether `text` holds a byte that a terminal or a log reader would act on.
bool
has_control_byte (const std::string &text)
{
  for (const char ch : text) {
    const auto c = static_cast<unsigned char> (ch);
    if (c < 0x20 || c == 0x7f)
      return true;
  }
  return false;
}

// Sends what is written on stderr (file descriptor 2) to a file of its own
// while it lives; text() gives it back and restores stderr.
class StderrCapture {
 public:
  StderrCapture ()
  {
    char path[] = "/tmp/camrelay-test-log-XXXXXX";
    file_ = mkstemp (path);
    if (file_ < 0)
      return;
    unlink (path);
    std::fflush (stderr);
    saved_ = dup (STDERR_FILENO);
    dup2 (file_, STDERR_FILENO);
  }
  ~StderrCapture ()
  {
    restore ();
    if (file_ >= 0)
      close (file_);
  }
  StderrCapture (const StderrCapture &) = delete;
  StderrCapture &operator= (const StderrCapture &) = delete;

  bool ok () const { return file_ >= 0 && saved_ >= 0; }

  std::string text ()
  {
    restore ();
    std::string out;
    if (file_ < 0 || lseek (file_, 0, SEEK_SET) != 0)
      return out;
    char chunk[4096];
    for (ssize_t n; (n = read (file_, chunk, sizeof (chunk))) > 0;)
      out.append (chunk, static_cast<size_t> (n));
    return out;
  }

 private:
  void restore ()
  {
    if (saved_ < 0)
      return;
    dup2 (saved_, STDERR_FILENO);
    close (saved_);
    saved_ = -1;
  }

  int file_ = -1;
  int saved_ = -1;
};

// What `write` wrote on stderr.
std::string
written (const std::function<void ()> &write)
{
  StderrCapture capture;
  if (!capture.ok ()) {
    ADD_FAILURE () << "cannot capture stderr";
    return "";
  }
  write ();
  return capture.text ();
}

// ---- log_value -------------------------------------------------------------------

TEST (LogValue, PlainValuesAreShownAsTheyAre)
{
  EXPECT_EQ (log_value ("alice"), "alice");
  EXPECT_EQ (log_value ("front/stream=0"), "front/stream=0");
  EXPECT_EQ (log_value ("a.b_c-d/e@f:g+h=i~j"), "a.b_c-d/e@f:g+h=i~j");
  EXPECT_EQ (log_value ("127.0.0.1:8554"), "127.0.0.1:8554");
  EXPECT_EQ (log_value (std::string (LOG_VALUE_MAX, 'x')), std::string (LOG_VALUE_MAX, 'x'))
      << "a value of exactly the cap is shown whole";
}

TEST (LogValue, OtherValuesAreQuoted)
{
  EXPECT_EQ (log_value (""), "\"\"") << "an empty value must be visible";
  EXPECT_EQ (log_value ("two words"), "\"two words\"");
  EXPECT_EQ (log_value ("a,b;c"), "\"a,b;c\"");
}

TEST (LogValue, ControlCharactersAreEscaped)
{
  EXPECT_EQ (log_value ("a\tb"), "\"a\\x09b\"");
  EXPECT_EQ (log_value (std::string ("a\0b", 3)), "\"a\\x00b\"");
  EXPECT_EQ (log_value ("\x01\x1f\x7f"), "\"\\x01\\x1f\\x7f\"");
}

TEST (LogValue, LineBreaksCannotStartALineOfTheirOwn)
{
  EXPECT_EQ (log_value ("evil\r\nclient 10.0.0.99: forged"),
      "\"evil\\x0d\\x0aclient 10.0.0.99: forged\"");
  EXPECT_EQ (log_value ("\n"), "\"\\x0a\"");
  EXPECT_EQ (log_value ("\r"), "\"\\x0d\"");
}

TEST (LogValue, EscapeSequencesAreShownNotPlayed)
{
  EXPECT_EQ (log_value ("\x1b[2J\x1b[31mred\x1b[0m"), "\"\\x1b[2J\\x1b[31mred\\x1b[0m\"");
}

TEST (LogValue, QuotesAndBackslashesAreEscaped)
{
  EXPECT_EQ (log_value ("quote\"back\\slash"), "\"quote\\\"back\\\\slash\"");
  // A value cannot end the quotes early: a quote, then what looks like more of the line.
  EXPECT_EQ (log_value ("x\" user \"root"), "\"x\\\" user \\\"root\"");
}

TEST (LogValue, BytesOutsidePrintableAsciiAreEscaped)
{
  EXPECT_EQ (log_value ("caf\xc3\xa9"), "\"caf\\xc3\\xa9\"");
  EXPECT_EQ (log_value ("\xff"), "\"\\xff\"");
}

TEST (LogValue, EveryByteComesOutPrintable)
{
  for (int c = 0; c < 256; c++) {
    const std::string shown = log_value (std::string (1, static_cast<char> (c)));
    EXPECT_FALSE (has_control_byte (shown)) << "byte " << c << ": " << shown;
    for (const char ch : shown)
      EXPECT_LT (static_cast<unsigned char> (ch), 0x80) << "byte " << c << ": " << shown;
  }
}

TEST (LogValue, LongValuesAreCutWithANoteOfTheirLength)
{
  EXPECT_EQ (log_value (std::string (LOG_VALUE_MAX + 1, 'x')),
      "\"" + std::string (LOG_VALUE_MAX, 'x') + "\"...(" + std::to_string (LOG_VALUE_MAX + 1)
          + " bytes)");
  EXPECT_EQ (log_value (std::string (3000, 'x')),
      "\"" + std::string (LOG_VALUE_MAX, 'x') + "\"...(3000 bytes)");
  // The cap counts the value's bytes, not their escaped form.
  std::string escaped;
  for (size_t i = 0; i < LOG_VALUE_MAX; i++)
    escaped += "\\x0a";
  EXPECT_EQ (log_value (std::string (150, '\n')), "\"" + escaped + "\"...(150 bytes)");
  EXPECT_EQ (log_value (std::string (LOG_VALUE_MAX, 'x') + "\r\n"),
      "\"" + std::string (LOG_VALUE_MAX, 'x') + "\"...(" + std::to_string (LOG_VALUE_MAX + 2)
          + " bytes)")
      << "what is cut off is not shown";
}

// ---- log_line --------------------------------------------------------------------

TEST (LogLine, WritesOneLine)
{
  EXPECT_EQ (written ([] { log_line ("client %s: connected", "127.0.0.1"); }),
      "client 127.0.0.1: connected\n");
}

TEST (LogLine, ControlCharactersAreEscaped)
{
  EXPECT_EQ (written ([] { log_line ("user %s", "evil\r\nclient 10.0.0.99: forged\x1b[2J\t\x7f"); }),
      "user evil\\x0d\\x0aclient 10.0.0.99: forged\\x1b[2J\\x09\\x7f\n");
}

TEST (LogLine, PrintableTextIsKept)
{
  // Quotes, backslashes and UTF-8 are the caller's (log_value's) business.
  EXPECT_EQ (written ([] { log_line ("camera %s: \"x\\y\" caf\xc3\xa9", "front"); }),
      "camera front: \"x\\y\" caf\xc3\xa9\n");
}

TEST (LogLine, WithAClientValue)
{
  EXPECT_EQ (written ([] {
    log_line ("client %s: authentication failed for user %s", "127.0.0.1",
        log_value ("evil\r\nclient 10.0.0.99").c_str ());
  }), "client 127.0.0.1: authentication failed for user \"evil\\x0d\\x0aclient 10.0.0.99\"\n");
}

TEST (LogLine, LongLinesAreCut)
{
  EXPECT_EQ (written ([] { log_line ("%s", std::string (3 * LOG_LINE_MAX, 'x').c_str ()); }),
      std::string (LOG_LINE_MAX, 'x') + "\n");
}

TEST (LogLine, LongEscapedLinesAreCutToo)
{
  const std::string text =
      written ([] { log_line ("%s", std::string (LOG_LINE_MAX, '\n').c_str ()); });
  ASSERT_EQ (text.size (), LOG_LINE_MAX + 1);
  EXPECT_EQ (text.back (), '\n');
  EXPECT_FALSE (has_control_byte (text.substr (0, LOG_LINE_MAX))) << text;
  EXPECT_EQ (text.rfind ("\\x0a", 0), 0u);
}

TEST (LogLine, AnEscapeAtTheCapIsCut)
{
  const std::string text =
      written ([] { log_line ("%s\n", std::string (LOG_LINE_MAX - 1, 'x').c_str ()); });
  ASSERT_EQ (text.size (), LOG_LINE_MAX + 1) << "the escaped LF went past the cap";
  EXPECT_EQ (text.back (), '\n');
  EXPECT_FALSE (has_control_byte (text.substr (0, LOG_LINE_MAX)));
}

}  // namespace
