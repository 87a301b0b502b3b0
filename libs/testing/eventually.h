#pragma once

// Eventually: polls a condition until it holds or a generous bound passes, so that tests wait for
// what they can observe instead of sleeping for a guessed time.

#include <chrono>
#include <thread>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace sb::testing {

// Polls `condition` every `poll` until it returns true or `timeout` passes; returns whether it
// held (checked once more at the deadline).
template <typename Condition>
bool Eventually(Condition condition, absl::Duration timeout = absl::Seconds(10),
                absl::Duration poll = absl::Milliseconds(10)) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(absl::ToChronoMicroseconds(poll));
  }
  return condition();
}

}  // namespace sb::testing
