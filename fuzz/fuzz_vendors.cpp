// gst-presets/vendors.toml as the launcher reads it when a camera names a
// vendor: toml++, then the checks of every vendor table, alias and URL
// template (placeholders expanded, the result checked as a location).
#include "config.h"

#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_common.h"

extern "C" int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  using namespace camrelay::launcher;
  const std::string text (reinterpret_cast<const char *> (data), size);
  for (const ConfigError &error : check_vendor_templates (text, "vendors.toml")) {
    FUZZ_CHECK (!error.message.empty (), "every error says what is wrong");
    FUZZ_CHECK (error.file == "vendors.toml", "every error names the file");
  }
  return 0;
}
