#pragma once

// Opaque page tokens bound to their query (proto/README.md, "Paging"): a token carries the offset
// of the next page and a fingerprint of the filters, so a token used with other filters is
// refused instead of silently paging through a different list.

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace sb::app {

struct Page {
  int limit = 50;
  int64_t offset = 0;
};

// Reads page_size (0: 50; 1..max) and page_token; `fingerprint` is any string that identifies
// the filters. InvalidArgument naming page_size or page_token.
absl::StatusOr<Page> ParsePage(int32_t page_size, std::string_view page_token,
                               std::string_view fingerprint, int max = 1000);
// The token of the page after `page` when `total` rows match, or "" when it was the last page.
std::string NextPageToken(const Page& page, int64_t total, std::string_view fingerprint);

}  // namespace sb::app
