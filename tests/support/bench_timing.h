#pragma once

// Timing helpers for the CPU-bound benchmarks in tests/bench/.
//
//   const double rate = sb::testing::OpsPerSecond(2.0, [&] { return signer.Sign(claims).ok(); });
//   sb::testing::DoNotOptimize(result);   // keeps `result` (and the work behind it) alive

#include <time.h>

#include <cstdio>
#include <cstdlib>

namespace sb::testing {

// Keeps the compiler from dropping a computation whose result is otherwise unused.
template <typename T>
inline void DoNotOptimize(const T& value) {
  asm volatile("" : : "r,m"(value) : "memory");
}

// CPU time of the calling thread, in seconds.
inline double ThreadCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// Runs `op` (which returns false on an unexpected failure) in batches of `batch` until the
// calling thread has used `seconds` of CPU, and returns operations per CPU second: the rate of one
// core, which other processes sharing the machine do not lower (wall-clock rates do). For
// operations that do not block. Exits the process when an operation failed. A larger batch reads
// the clock less often, for operations of a few nanoseconds.
template <typename Op>
double OpsPerSecond(double seconds, Op op, int batch = 64) {
  const double start = ThreadCpuSeconds();
  long ops = 0;
  double now = start;
  do {
    for (int i = 0; i < batch; ++i) {
      if (!op()) {
        std::fprintf(stderr, "operation failed\n");
        std::exit(1);
      }
    }
    ops += batch;
    now = ThreadCpuSeconds();
  } while (now - start < seconds);
  return static_cast<double>(ops) / (now - start);
}

}  // namespace sb::testing
