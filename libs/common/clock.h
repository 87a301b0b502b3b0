#pragma once

// Clock is the one source of time for Switchboard's domain code, so that tests can drive time with
// FakeClock instead of sleeping. Implementations are thread-safe.

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace sb {

class Clock {
 public:
  virtual ~Clock() = default;
  // The current wall-clock time.
  virtual absl::Time Now() const = 0;
};

// The real clock.
class SystemClock final : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }
};

}  // namespace sb
