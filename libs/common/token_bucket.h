#pragma once

// TokenBucket: admits at most `rate` events per second on average, with bursts of up to `burst`
// (the bucket starts full). Not thread-safe: the owner serialises calls (the SIP loop does).
// A rate of zero admits everything.

#include <algorithm>

#include "absl/time/time.h"

namespace sb {

class TokenBucket {
 public:
  TokenBucket(double rate, double burst)
      : rate_(rate), burst_(std::max(1.0, burst)), tokens_(burst_) {}

  // Takes a token if one is there at `now` (times need not be increasing; earlier ones add
  // nothing).
  bool Take(absl::Time now) {
    if (rate_ <= 0) return true;
    if (now > last_) {
      if (last_ != absl::InfinitePast()) {
        tokens_ = std::min(burst_, tokens_ + absl::ToDoubleSeconds(now - last_) * rate_);
      }
      last_ = now;
    }
    if (tokens_ < 1.0) return false;
    tokens_ -= 1.0;
    return true;
  }

 private:
  double rate_;
  double burst_;
  double tokens_;
  absl::Time last_ = absl::InfinitePast();
};

}  // namespace sb
