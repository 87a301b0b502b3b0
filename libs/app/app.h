#pragma once

// App runs a Switchboard process: it resolves the chosen targets into modules, creates them in
// dependency order (applying each service's migrations first), serves all their gRPC services from
// one server with health, reflection and the default interceptors (and the same services once more
// without a port, to the modules' own in-process channels: Platform::ChannelTo), serves /metrics,
// /healthz and /readyz over HTTP, starts the modules, and on Shutdown() drains: health goes
// NOT_SERVING, the server stops taking new RPCs and finishes those in flight (up to
// --shutdown_grace), then modules stop in reverse order (still reaching each other in-process),
// then the in-process server ends.
//
// RunMain() is the whole of main(): flags and environment, --help, signals, exit codes
// (0 clean shutdown, 1 start-up failure, 2 bad configuration or unknown target).

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "libs/app/flags.h"
#include "libs/app/module.h"
#include "libs/app/platform.h"

namespace sb::app {

// Declares the process-wide flags (--target, --grpc_addr, ...) bound to `config`.
void DeclareProcessFlags(FlagSet& flags, ProcessConfig& config);

class App {
 public:
  // `specs` must outlive the App.
  App(const std::vector<ModuleSpec>& specs, const ProcessConfig& config);
  ~App();

  // Starts everything. InvalidArgument for configuration problems (unknown target), other codes
  // for start-up failures (a port in use, a database that never came up); on failure everything
  // already started is stopped again. With --migrate_only, applies migrations and returns.
  absl::Status Start();
  // Drains and stops. Idempotent.
  void Shutdown();

  // Asks a Start() in progress to give up (it returns Cancelled) and wakes WaitForStopRequest().
  // Thread-safe; called from the signal thread.
  void RequestStop();
  // Blocks until RequestStop() is called.
  void WaitForStopRequest();

  // The bound ports (useful when the flags asked for port 0).
  int grpc_port() const;
  int metrics_port() const;
  // Names of the created modules in start order.
  std::vector<std::string> module_names() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// main() of the switchboard binary and of test binaries built on the same runtime.
int RunMain(int argc, char** argv, const std::vector<ModuleSpec>& specs);

}  // namespace sb::app
