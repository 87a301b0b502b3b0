#include "libs/app/paging.h"

#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "libs/app/rpc_errors.h"

namespace sb::app {
namespace {

// FNV-1a: stable across processes and replicas (absl::Hash is seeded per process).
std::string Fp(std::string_view fingerprint) {
  uint64_t h = 14695981039346656037ULL;
  for (unsigned char c : fingerprint) h = (h ^ c) * 1099511628211ULL;
  return absl::StrCat(h & 0xffffffffffffULL);
}

}  // namespace

absl::StatusOr<Page> ParsePage(int32_t page_size, std::string_view page_token,
                               std::string_view fingerprint, int max) {
  Page page;
  if (page_size < 0 || page_size > max) {
    return FieldError("page_size", "OUT_OF_RANGE", absl::StrCat("must be 0..", max));
  }
  if (page_size > 0) page.limit = page_size;
  if (page_token.empty()) return page;
  std::string raw;
  std::vector<std::string> parts;
  if (absl::WebSafeBase64Unescape(absl::string_view(page_token.data(), page_token.size()), &raw)) {
    parts = absl::StrSplit(raw, ':');
  }
  if (parts.size() != 2 || parts[1] != Fp(fingerprint) ||
      !absl::SimpleAtoi(parts[0], &page.offset) || page.offset < 0 ||
      page.offset > (int64_t{1} << 40)) {
    return FieldError("page_token", "INVALID_PAGE_TOKEN",
                      "is not a token of this list with these filters");
  }
  return page;
}

std::string NextPageToken(const Page& page, int64_t total, std::string_view fingerprint) {
  const int64_t next = page.offset + page.limit;
  if (next >= total) return "";
  return absl::WebSafeBase64Escape(absl::StrCat(next, ":", Fp(fingerprint)));
}

}  // namespace sb::app
