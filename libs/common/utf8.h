#pragma once

// UTF-8 well-formedness, for text that comes from outside (SIP headers, HTTP, labels) before it
// goes where only UTF-8 is allowed (protobuf string fields, JSON, Prometheus text).

#include <string>
#include <string_view>

namespace sb {

// True when `text` is well-formed UTF-8 (no overlong forms, surrogates or code points past
// U+10FFFF).
bool IsValidUtf8(std::string_view text);

// Returns `text` with every byte that is not part of a well-formed UTF-8 sequence replaced by
// U+FFFD, so that text taken from the outside cannot make a protobuf message, a JSON document or a
// scrape unparsable.
std::string SanitizeUtf8(std::string_view text);

}  // namespace sb
