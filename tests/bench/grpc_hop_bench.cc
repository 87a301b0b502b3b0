// One unary gRPC hop on loopback: Switchboard's runtime (libs/app: interceptors for call context,
// logging and metrics, health, reflection, resource quota) against a bare gRPC server with the
// same service, in the same run. Each server runs in its own process pinned to one core; the load
// generator (an async client with a fixed number of calls outstanding) is pinned to the other.
// Rounds alternate bare/runtime so drift on the machine hits both alike.
//
//   grpc_hop_bench [--seconds=3] [--rounds=3] [--outstanding=32]
//
// Prints QPS, p50 and p99 latency and server CPU time per RPC for each, and the runtime's cost.
#include <grpcpp/grpcpp.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "libs/app/app.h"
#include "libs/app/owning_module.h"
#include "libs/testing/child_process.h"
#include "libs/testing/ports.h"
#include "tests/support/echo_service.h"

namespace {

using ::switchboard::testing::v1::EchoRequest;
using ::switchboard::testing::v1::EchoResponse;
namespace echo = ::switchboard::testing::v1;

void PinToCpu(int cpu) {
  const int cpus = static_cast<int>(std::thread::hardware_concurrency());
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu % std::max(cpus, 1), &set);
  sched_setaffinity(0, sizeof set, &set);
}

int ServeBare(int port) {
  sb::testing::EchoService service;
  grpc::ServerBuilder builder;
  builder.AddListeningPort(absl::StrCat("127.0.0.1:", port), grpc::InsecureServerCredentials());
  builder.RegisterService(&service);
  auto server = builder.BuildAndStart();
  if (!server) return 1;
  server->Wait();
  return 0;
}

int ServeRuntime(int port) {
  const std::vector<sb::app::ModuleSpec> specs = {
      {.name = "echo",
       .create =
           [](sb::app::Platform& platform) -> absl::StatusOr<std::unique_ptr<sb::app::Module>> {
         auto module = std::make_unique<sb::app::OwningModule>();
         auto& service = module->Own(std::make_unique<sb::testing::EchoService>());
         platform.services().Add<echo::EchoService>(&service, {});
         return module;
       }}};
  std::string grpc_addr = absl::StrCat("--grpc_addr=127.0.0.1:", port);
  std::vector<std::string> args = {"grpc_hop_bench", grpc_addr, "--metrics_addr=127.0.0.1:0",
                                   "--log_level=info"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  return sb::app::RunMain(static_cast<int>(argv.size()), argv.data(), specs);
}

struct Result {
  double qps = 0;     // closed loop, `outstanding` calls in flight: the server's throughput
  double p50_us = 0;  // closed loop latency (queueing behind the other outstanding calls)
  double p99_us = 0;
  double server_cpu_us_per_rpc = 0;
  double paced_p50_us = 0;  // open loop at a fixed rate well below saturation: service latency
  double paced_p99_us = 0;
};

// Reads utime+stime of a process in microseconds.
double CpuMicros(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t close = text.rfind(')');
  if (close == std::string::npos) return 0;
  std::vector<std::string> fields;
  size_t pos = close + 2;
  while (pos < text.size()) {
    size_t next = text.find(' ', pos);
    if (next == std::string::npos) next = text.size();
    fields.push_back(text.substr(pos, next - pos));
    pos = next + 1;
  }
  double utime = 0, stime = 0;
  (void)absl::SimpleAtod(fields[11], &utime);
  (void)absl::SimpleAtod(fields[12], &stime);
  return (utime + stime) * 1e6 / static_cast<double>(sysconf(_SC_CLK_TCK));
}

Result Drive(int port, pid_t server_pid, double seconds, int outstanding) {
  auto channel =
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials());
  auto stub = echo::EchoService::NewStub(channel);
  // Wait until the server answers.
  for (int i = 0; i < 500; ++i) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(200));
    EchoRequest req;
    EchoResponse resp;
    if (stub->Echo(&ctx, req, &resp).ok()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }

  struct Call {
    grpc::ClientContext ctx;
    EchoResponse response;
    grpc::Status status;
    std::unique_ptr<grpc::ClientAsyncResponseReader<EchoResponse>> reader;
    std::chrono::steady_clock::time_point start;
  };
  grpc::CompletionQueue cq;
  EchoRequest request;
  request.set_message("ping");
  auto issue = [&](std::unique_ptr<Call>& call) {
    call = std::make_unique<Call>();
    call->start = std::chrono::steady_clock::now();
    call->reader = stub->PrepareAsyncEcho(&call->ctx, request, &cq);
    call->reader->StartCall();
    call->reader->Finish(&call->response, &call->status, call.get());
  };
  std::vector<std::unique_ptr<Call>> calls(outstanding);
  std::vector<double> latencies;
  latencies.reserve(1 << 20);
  const auto warmup_end = std::chrono::steady_clock::now() + std::chrono::milliseconds(500);
  std::chrono::steady_clock::time_point measure_start, end;
  bool measuring = false;
  double cpu_start = 0;
  for (auto& c : calls) issue(c);
  void* tag;
  bool ok;
  int64_t completed = 0;
  while (cq.Next(&tag, &ok)) {
    auto* call = static_cast<Call*>(tag);
    const auto now = std::chrono::steady_clock::now();
    if (!measuring && now >= warmup_end) {
      measuring = true;
      measure_start = now;
      end = now + std::chrono::microseconds(static_cast<int64_t>(seconds * 1e6));
      cpu_start = CpuMicros(server_pid);
    }
    if (measuring) {
      latencies.push_back(std::chrono::duration<double, std::micro>(now - call->start).count());
      ++completed;
    }
    if (!call->status.ok()) {
      std::fprintf(stderr, "rpc failed: %s\n", call->status.error_message().c_str());
      std::exit(1);
    }
    for (auto& c : calls) {
      if (c.get() == call) {
        if (!measuring || now < end) {
          issue(c);
        } else {
          c.reset();
        }
        break;
      }
    }
    if (std::all_of(calls.begin(), calls.end(), [](auto& c) { return c == nullptr; })) break;
  }
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - measure_start).count();
  const double cpu = CpuMicros(server_pid) - cpu_start;
  std::sort(latencies.begin(), latencies.end());
  Result r;
  r.qps = static_cast<double>(completed) / elapsed;
  r.p50_us = latencies[latencies.size() / 2];
  r.p99_us = latencies[latencies.size() * 99 / 100];
  r.server_cpu_us_per_rpc = cpu / static_cast<double>(completed);
  return r;
}

// Open loop: one call every 1/rate seconds whatever the answers do, latency counted from the
// moment each call was due (so a stalled server is not hidden by the client waiting for it).
std::pair<double, double> DrivePaced(int port, double rate, double seconds) {
  auto stub = echo::EchoService::NewStub(
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()));
  struct Call {
    grpc::ClientContext ctx;
    EchoResponse response;
    grpc::Status status;
    std::unique_ptr<grpc::ClientAsyncResponseReader<EchoResponse>> reader;
    std::chrono::steady_clock::time_point due;
  };
  grpc::CompletionQueue cq;
  std::vector<double> latencies;
  std::atomic<int64_t> done{0};
  std::thread collector([&] {
    void* tag;
    bool ok;
    while (cq.Next(&tag, &ok)) {
      std::unique_ptr<Call> call(static_cast<Call*>(tag));
      if (!call->status.ok()) {
        std::fprintf(stderr, "rpc failed: %s\n", call->status.error_message().c_str());
        std::exit(1);
      }
      latencies.push_back(
          std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - call->due)
              .count());
      done.fetch_add(1);
    }
  });
  EchoRequest request;
  request.set_message("ping");
  const auto interval = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(1.0 / rate));
  auto due = std::chrono::steady_clock::now();
  const auto end = due + std::chrono::microseconds(static_cast<int64_t>(seconds * 1e6));
  int64_t issued = 0;
  for (; due < end; due += interval, ++issued) {
    std::this_thread::sleep_until(due);
    auto* call = new Call;
    call->due = due;
    call->reader = stub->PrepareAsyncEcho(&call->ctx, request, &cq);
    call->reader->StartCall();
    call->reader->Finish(&call->response, &call->status, call);
  }
  while (done.load() < issued) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  cq.Shutdown();
  collector.join();
  // The first half second warms connections and caches up.
  const size_t skip = std::min(latencies.size() / 2, static_cast<size_t>(rate / 2));
  std::vector<double> kept(latencies.begin() + static_cast<ptrdiff_t>(skip), latencies.end());
  std::sort(kept.begin(), kept.end());
  return {kept[kept.size() / 2], kept[kept.size() * 99 / 100]};
}

Result RunOne(const std::string& self, const std::string& kind, double seconds, int outstanding,
              double rate) {
  const int port = sb::testing::FreeTcpPort();
  auto child = sb::testing::ChildProcess::Start(
      {.argv = {self, "--serve=" + kind, absl::StrCat("--port=", port)},
       .stderr_path = "/dev/null"});
  if (!child.ok()) {
    std::fprintf(stderr, "cannot start server: %s\n", child.status().ToString().c_str());
    std::exit(1);
  }
  Result r = Drive(port, child->pid(), seconds, outstanding);
  std::tie(r.paced_p50_us, r.paced_p99_us) = DrivePaced(port, rate, seconds);
  child->Signal(SIGTERM);
  (void)child->Wait(absl::Seconds(15));
  return r;
}

Result Median(std::vector<Result> rs) {
  auto med = [&](auto field) {
    std::vector<double> v;
    for (auto& r : rs) v.push_back(r.*field);
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  return {med(&Result::qps),          med(&Result::p50_us),
          med(&Result::p99_us),       med(&Result::server_cpu_us_per_rpc),
          med(&Result::paced_p50_us), med(&Result::paced_p99_us)};
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 3;
  int rounds = 3;
  int outstanding = 32;
  double rate = 5000;
  std::string serve;
  int port = 0;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const char* prefix) { return a.substr(std::strlen(prefix)); };
    if (a.rfind("--serve=", 0) == 0)
      serve = value("--serve=");
    else if (a.rfind("--port=", 0) == 0)
      (void)absl::SimpleAtoi(value("--port="), &port);
    else if (a.rfind("--seconds=", 0) == 0)
      (void)absl::SimpleAtod(value("--seconds="), &seconds);
    else if (a.rfind("--rounds=", 0) == 0)
      (void)absl::SimpleAtoi(value("--rounds="), &rounds);
    else if (a.rfind("--rate=", 0) == 0)
      (void)absl::SimpleAtod(value("--rate="), &rate);
    else if (a.rfind("--outstanding=", 0) == 0)
      (void)absl::SimpleAtoi(value("--outstanding="), &outstanding);
  }
  if (!serve.empty()) {
    PinToCpu(0);
    return serve == "bare" ? ServeBare(port) : ServeRuntime(port);
  }
  PinToCpu(1);
  std::vector<Result> bare, runtime;
  for (int round = 0; round < rounds; ++round) {
    bare.push_back(RunOne(argv[0], "bare", seconds, outstanding, rate));
    runtime.push_back(RunOne(argv[0], "runtime", seconds, outstanding, rate));
  }
  const Result b = Median(bare);
  const Result r = Median(runtime);
  std::printf("grpc unary hop, loopback, server pinned to 1 core, median of %d x %.0f s\n", rounds,
              seconds);
  const std::string closed = absl::StrCat("closed loop, ", outstanding, " outstanding");
  const std::string open = absl::StrCat("open loop at ", static_cast<int>(rate), "/s");
  std::printf("%-20s | %-38s | %s\n", "", closed.c_str(), open.c_str());
  std::printf("%-20s | %8s %8s %8s %11s | %8s %8s\n", "server", "QPS", "p50 us", "p99 us",
              "CPU us/RPC", "p50 us", "p99 us");
  for (const auto& [name, x] : {std::pair<const char*, Result>{"bare gRPC", b},
                                std::pair<const char*, Result>{"switchboard runtime", r}}) {
    std::printf("%-20s | %8.0f %8.1f %8.1f %11.1f | %8.1f %8.1f\n", name, x.qps, x.p50_us, x.p99_us,
                x.server_cpu_us_per_rpc, x.paced_p50_us, x.paced_p99_us);
  }
  auto pct = [](double runtime, double bare) { return (runtime / bare - 1) * 100; };
  std::printf("%-20s | %+7.1f%% %+7.1f%% %+7.1f%% %+10.1f%% | %+7.1f%% %+7.1f%%\n", "runtime cost",
              pct(r.qps, b.qps), pct(r.p50_us, b.p50_us), pct(r.p99_us, b.p99_us),
              pct(r.server_cpu_us_per_rpc, b.server_cpu_us_per_rpc),
              pct(r.paced_p50_us, b.paced_p50_us), pct(r.paced_p99_us, b.paced_p99_us));
  return 0;
}
