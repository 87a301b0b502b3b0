#pragma once

// FlagSet: the process's configuration. Every flag has an environment-variable twin named
// SB_<NAME IN UPPER CASE> (--pg_dsn / SB_PG_DSN); a command-line flag wins over its twin, and the
// twin over the default. Modules declare their flags into the one FlagSet before parsing, binding
// each to a field of their own config struct, so `switchboard --help` lists every flag.
//
//   FlagSet flags;
//   flags.Add("pg_dsn", &config.pg_dsn, "PostgreSQL connection string");
//   flags.Add("grpc_max_threads", &config.max_threads, "...", Positive());
//   absl::Status s = flags.Parse(args, env);   // InvalidArgument naming the flag on bad input
//
// Not thread-safe: declare and parse on the main thread before starting anything.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace sb::app {

// Environment lookup, so tests can pass their own.
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;
EnvLookup ProcessEnv();

// A validator returns an error message (empty when the value is fine).
template <typename T>
using Validator = std::function<std::string(const T&)>;

Validator<int64_t> InRange(int64_t min, int64_t max);
Validator<absl::Duration> PositiveDuration();
Validator<std::string> NonEmpty();
Validator<std::string> OneOf(std::vector<std::string> allowed);
// "host:port" with a port in 0..65535 (0 = any free port); host may be empty, a name, IPv4 or
// [IPv6].
Validator<std::string> HostPort();

class FlagSet {
 public:
  void Add(std::string name, std::string* target, std::string help,
           Validator<std::string> validate = nullptr);
  void Add(std::string name, int64_t* target, std::string help,
           Validator<int64_t> validate = nullptr);
  void Add(std::string name, bool* target, std::string help);
  void Add(std::string name, absl::Duration* target, std::string help,
           Validator<absl::Duration> validate = nullptr);

  // Parses `args` (without argv[0]) and the environment. Accepts --name=value, --name value, and
  // bare --name / --noname for booleans. Positional arguments are returned in `positional`.
  // Returns InvalidArgument naming the flag (and its twin when the value came from it) for an
  // unknown flag, a malformed value, or a value the validator rejects.
  absl::Status Parse(const std::vector<std::string>& args, const EnvLookup& env,
                     std::vector<std::string>* positional = nullptr);

  // True when --help or -h was given.
  bool help_requested() const { return help_requested_; }
  // One block per flag: name, env twin, default, help.
  std::string Help() const;

  static std::string EnvName(const std::string& flag_name);

 private:
  struct Flag {
    std::string name;
    std::string help;
    std::string default_text;
    bool is_bool = false;
    // Parses and validates; returns an error message or "".
    std::function<std::string(const std::string& text)> set;
  };
  void AddFlag(Flag flag);

  std::map<std::string, Flag> flags_;
  bool help_requested_ = false;
};

}  // namespace sb::app
