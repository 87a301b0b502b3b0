#include "libs/app/flags.h"

#include <cstdlib>
#include <regex>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "libs/common/check.h"

namespace sb::app {
EnvLookup ProcessEnv() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* value = std::getenv(name.c_str());
    if (value == nullptr) return std::nullopt;
    return std::string(value);
  };
}

Validator<int64_t> InRange(int64_t min, int64_t max) {
  return [min, max](const int64_t& v) -> std::string {
    if (v < min || v > max) return absl::StrCat("must be between ", min, " and ", max);
    return "";
  };
}

Validator<absl::Duration> PositiveDuration() {
  return [](const absl::Duration& d) -> std::string {
    return d > absl::ZeroDuration() ? "" : "must be a positive duration such as 500ms or 5s";
  };
}

Validator<std::string> NonEmpty() {
  return [](const std::string& s) -> std::string { return s.empty() ? "must not be empty" : ""; };
}

Validator<std::string> OneOf(std::vector<std::string> allowed) {
  return [allowed = std::move(allowed)](const std::string& s) -> std::string {
    for (const auto& a : allowed) {
      if (s == a) return "";
    }
    return absl::StrCat("must be one of ", absl::StrJoin(allowed, ", "));
  };
}

Validator<std::string> HostPort() {
  return [](const std::string& s) -> std::string {
    static const std::regex kHostPort(R"(^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]*):([0-9]{1,5})$)");
    std::smatch m;
    if (!std::regex_match(s, m, kHostPort)) return "must be host:port, e.g. 127.0.0.1:9090";
    int port = 0;
    if (!absl::SimpleAtoi(m[2].str(), &port) || port > 65535) {
      return "port must be between 0 and 65535";
    }
    return "";
  };
}

std::string FlagSet::EnvName(const std::string& flag_name) {
  return "SB_" + absl::AsciiStrToUpper(flag_name);
}

void FlagSet::AddFlag(Flag flag) {
  const std::string name = flag.name;
  SB_CHECK(!flags_.contains(name)) << "flag --" << name << " declared twice";
  flags_.emplace(name, std::move(flag));
}

void FlagSet::Add(std::string name, std::string* target, std::string help,
                  Validator<std::string> validate) {
  AddFlag({.name = std::move(name),
           .help = std::move(help),
           .default_text = *target,
           .set = [target, validate](const std::string& text) -> std::string {
             if (validate) {
               if (std::string err = validate(text); !err.empty()) return err;
             }
             *target = text;
             return "";
           }});
}

void FlagSet::Add(std::string name, int64_t* target, std::string help,
                  Validator<int64_t> validate) {
  AddFlag({.name = std::move(name),
           .help = std::move(help),
           .default_text = absl::StrCat(*target),
           .set = [target, validate](const std::string& text) -> std::string {
             int64_t v = 0;
             if (!absl::SimpleAtoi(text, &v)) return "must be an integer";
             if (validate) {
               if (std::string err = validate(v); !err.empty()) return err;
             }
             *target = v;
             return "";
           }});
}

void FlagSet::Add(std::string name, bool* target, std::string help) {
  AddFlag({.name = std::move(name),
           .help = std::move(help),
           .default_text = *target ? "true" : "false",
           .is_bool = true,
           .set = [target](const std::string& text) -> std::string {
             const std::string t = absl::AsciiStrToLower(text);
             if (t == "true" || t == "1" || t == "yes") {
               *target = true;
             } else if (t == "false" || t == "0" || t == "no") {
               *target = false;
             } else {
               return "must be true or false";
             }
             return "";
           }});
}

void FlagSet::Add(std::string name, absl::Duration* target, std::string help,
                  Validator<absl::Duration> validate) {
  AddFlag({.name = std::move(name),
           .help = std::move(help),
           .default_text = absl::FormatDuration(*target),
           .set = [target, validate](const std::string& text) -> std::string {
             absl::Duration d;
             if (!absl::ParseDuration(text, &d)) {
               return "must be a duration such as 250ms, 5s or 1m30s";
             }
             if (validate) {
               if (std::string err = validate(d); !err.empty()) return err;
             }
             *target = d;
             return "";
           }});
}

absl::Status FlagSet::Parse(const std::vector<std::string>& args, const EnvLookup& env,
                            std::vector<std::string>* positional) {
  // The command line first; then the environment twins of the flags it did not set (so a bad
  // twin is no error when the command line overrides it).
  std::set<std::string> from_command_line;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--help" || arg == "-h" || arg == "-help") {
      help_requested_ = true;
      continue;
    }
    if (arg.size() < 2 || arg[0] != '-') {
      if (positional == nullptr) {
        return absl::InvalidArgumentError(absl::StrCat("unexpected argument '", arg, "'"));
      }
      positional->push_back(arg);
      continue;
    }
    std::string body = arg.substr(arg[1] == '-' ? 2 : 1);
    std::optional<std::string> value;
    if (const size_t eq = body.find('='); eq != std::string::npos) {
      value = body.substr(eq + 1);
      body = body.substr(0, eq);
    }
    auto it = flags_.find(body);
    if (it == flags_.end() && !value && body.starts_with("no")) {
      auto negated = flags_.find(body.substr(2));
      if (negated != flags_.end() && negated->second.is_bool) {
        negated->second.set("false");
        from_command_line.insert(negated->first);
        continue;
      }
    }
    if (it == flags_.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown flag --", body, " (see --help for the list)"));
    }
    Flag& flag = it->second;
    if (!value) {
      if (flag.is_bool) {
        value = "true";
      } else if (i + 1 < args.size()) {
        value = args[++i];
      } else {
        return absl::InvalidArgumentError(absl::StrCat("flag --", body, " needs a value"));
      }
    }
    if (std::string err = flag.set(*value); !err.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("invalid value for --", body, "='", *value, "': ", err));
    }
    from_command_line.insert(body);
  }
  for (auto& [name, flag] : flags_) {
    if (from_command_line.contains(name)) continue;
    const std::string env_name = EnvName(name);
    if (auto value = env(env_name)) {
      if (std::string err = flag.set(*value); !err.empty()) {
        return absl::InvalidArgumentError(absl::StrCat("invalid value for --", name, " (from ",
                                                       env_name, "='", *value, "'): ", err));
      }
    }
  }
  return absl::OkStatus();
}

std::string FlagSet::Help() const {
  std::string out;
  for (const auto& [name, flag] : flags_) {
    absl::StrAppend(&out, "  --", name, " (env ", EnvName(name), ", default \"", flag.default_text,
                    "\")\n      ", flag.help, "\n");
  }
  return out;
}

}  // namespace sb::app
