#include "libs/events/stream.h"

#include "absl/strings/str_cat.h"

namespace sb::events {

std::vector<std::string> XAddCommand(const ::switchboard::common::v1::Event& event,
                                     const std::string& stream) {
  return {"XADD",
          stream,
          "MAXLEN",
          "~",
          absl::StrCat(kStreamMaxLen),
          "*",
          kEventField,
          event.SerializeAsString()};
}

}  // namespace sb::events
