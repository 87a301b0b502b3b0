#include "libs/metrics/text_format.h"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <system_error>

#include "libs/common/check.h"
#include "libs/common/utf8.h"

namespace sb::metrics {
namespace {

bool IsAsciiLetter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool IsAsciiDigit(char c) { return c >= '0' && c <= '9'; }

}  // namespace

bool IsValidMetricName(std::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    if (!(IsAsciiLetter(c) || c == '_' || c == ':' || (i > 0 && IsAsciiDigit(c)))) return false;
  }
  return true;
}

bool IsValidLabelName(std::string_view name) {
  if (name.empty() || name.substr(0, 2) == "__") return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    if (!(IsAsciiLetter(c) || c == '_' || (i > 0 && IsAsciiDigit(c)))) return false;
  }
  return true;
}

void AppendEscapedHelp(std::string_view help, std::string& out) {
  for (const char c : help) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
}

void AppendEscapedLabelValue(std::string_view value, std::string& out) {
  for (const char c : value) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
}

void AppendValue(double value, std::string& out) {
  if (std::isnan(value)) {
    out += "NaN";
    return;
  }
  if (std::isinf(value)) {
    out += value > 0 ? "+Inf" : "-Inf";
    return;
  }
  // Shortest representation that parses back to the same double (e.g. "0.1", "1e+21").
  char buf[32];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
  SB_CHECK(ec == std::errc()) << "to_chars failed for a finite double";
  out.append(buf, end);
}

std::string FormatValue(double value) {
  std::string out;
  AppendValue(value, out);
  return out;
}

}  // namespace sb::metrics
