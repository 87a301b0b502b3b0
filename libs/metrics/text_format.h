#pragma once

// Pieces of the Prometheus text exposition format 0.0.4
// (https://prometheus.io/docs/instrumenting/exposition_formats/) that Registry::Render() is built
// from: name validation, escaping and number formatting. Public so that tests and other writers
// of the format (none yet) share one definition. All functions are pure and thread-safe.

#include <string>
#include <string_view>

#include "libs/common/utf8.h"

namespace sb::metrics {

using ::sb::IsValidUtf8;
using ::sb::SanitizeUtf8;

// The content type of Registry::Render()'s output, for HTTP responses.
inline constexpr char kTextFormatContentType[] = "text/plain; version=0.0.4; charset=utf-8";

// True when `name` matches [a-zA-Z_:][a-zA-Z0-9_:]* (the Prometheus data model's metric names).
bool IsValidMetricName(std::string_view name);

// True when `name` matches [a-zA-Z_][a-zA-Z0-9_]* and does not start with "__" (reserved for
// Prometheus' internal labels).
bool IsValidLabelName(std::string_view name);

// Appends `help` as a # HELP line's text: backslash -> \\, newline -> \n.
void AppendEscapedHelp(std::string_view help, std::string& out);

// Appends `value` as the inside of a quoted label value: backslash -> \\, " -> \", newline -> \n.
void AppendEscapedLabelValue(std::string_view value, std::string& out);

// Formats a sample value or bucket bound so that parsing it gives back the same double:
// the shortest round-trip form ("0.1", "3", "1e+21"), or "+Inf", "-Inf", "NaN".
std::string FormatValue(double value);
void AppendValue(double value, std::string& out);

}  // namespace sb::metrics
