#include "libs/common/log.h"

#include <spdlog/formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <ctime>
#include <memory>

#include "absl/strings/str_cat.h"

namespace sb {
namespace {

thread_local std::vector<std::pair<std::string, std::string>> t_fields;

void AppendEscapedTo(std::string_view text, spdlog::memory_buf_t& dest) {
  std::string escaped;
  AppendJsonEscaped(text, escaped);
  dest.append(escaped.data(), escaped.data() + escaped.size());
}

void Append(std::string_view text, spdlog::memory_buf_t& dest) {
  dest.append(text.data(), text.data() + text.size());
}

class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    using namespace std::chrono;
    const auto since_epoch = msg.time.time_since_epoch();
    const auto secs = duration_cast<seconds>(since_epoch);
    const auto micros = duration_cast<microseconds>(since_epoch - secs).count();
    std::time_t t = secs.count();
    std::tm tm{};
    gmtime_r(&t, &tm);
    char ts[96];
    std::snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                  static_cast<long>(micros));
    Append("{\"ts\":\"", dest);
    Append(ts, dest);
    Append("\",\"level\":\"", dest);
    const auto level = spdlog::level::to_string_view(msg.level);
    Append(std::string_view(level.data(), level.size()), dest);
    Append("\",\"msg\":\"", dest);
    AppendEscapedTo(std::string_view(msg.payload.data(), msg.payload.size()), dest);
    Append("\"", dest);
    for (const auto& [key, value] : t_fields) {
      Append(",\"", dest);
      AppendEscapedTo(key, dest);
      Append("\":\"", dest);
      AppendEscapedTo(value, dest);
      Append("\"", dest);
    }
    Append("}\n", dest);
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>();
  }
};

}  // namespace

void AppendJsonEscaped(std::string_view text, std::string& out) {
  for (const char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned char>(c));
          out += buf;
        } else {
          out += c;
        }
    }
  }
}

absl::Status InitLogging(std::string_view level) {
  const auto parsed = spdlog::level::from_str(std::string(level));
  // from_str maps unknown names to "off"; only accept "off" when asked for by name.
  if (parsed == spdlog::level::off && level != "off") {
    return absl::InvalidArgumentError(
        absl::StrCat("log level '", std::string(level),
                     "' is not one of trace, debug, info, warn, error, critical, off"));
  }
  spdlog::drop("switchboard");
  auto logger = spdlog::stderr_logger_mt("switchboard");
  logger->set_formatter(std::make_unique<JsonFormatter>());
  logger->set_level(parsed);
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(std::move(logger));
  return absl::OkStatus();
}

ScopedLogFields::ScopedLogFields(
    std::initializer_list<std::pair<std::string_view, std::string_view>> fields) {
  for (const auto& [key, value] : fields) {
    if (value.empty()) continue;
    t_fields.emplace_back(std::string(key), std::string(value));
    ++added_;
  }
}

ScopedLogFields::~ScopedLogFields() { t_fields.resize(t_fields.size() - added_); }

}  // namespace sb
