// A REGISTER load client on libs/sip: keeps --in_flight registrations going against a registrar,
// each one answering the 401 with SHA-256 digest (SIPp 3.6 can only answer MD5, and the registrar
// offers SHA-256 first, as RFC 8760 asks), for --seconds after --warmup, and prints what the
// server did in that window:
//
//   sip_register_load --server=127.0.0.1:5060 --domain=demo.sip.localhost --creds=creds.txt
//       [--in_flight=64] [--warmup=3] [--seconds=15] [--mode=challenge|reuse] [--pids=1,2]
//       [--expires=3600] [--contact_port=5999] [--first=1] [--count=0] [--once]
//
// --creds: "extension password" lines. Each extension has one dialog (one Call-ID, CSeq going
// up, as phones do) and at most one REGISTER in flight; slot s of --in_flight serves extensions
// s, s + in_flight, ... in turn. Modes:
//   challenge  every registration is REGISTER -> 401 -> REGISTER with credentials -> 200
//              (two requests, one digest check);
//   reuse      like a phone refreshing: the nonce of the last 401 is answered again with the next
//              nonce count (one request, one digest check); a 401 (stale nonce) is answered.
// --once registers each extension once (contact sip:EXT@127.0.0.1:--contact_port) and exits 0
// if every one got 200: how the benchmarks register the agent that SIPp plays.
// --pids: processes whose CPU time (user + system, every thread) in the window is reported, to
// give the rate per core of the server.
//
// Output: key=value lines (registrations, registrations_per_s, requests_per_s, status_NNN,
// latency_p50_ms / p99 of completed registrations, cpu_s_PID, client_cpu_s).
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "libs/sip/digest.h"
#include "libs/sip/stack.h"
#include "libs/testing/ports.h"

namespace {

namespace sip = ::sb::sip;
namespace digest = ::sb::sip::digest;

struct Flags {
  std::string server = "127.0.0.1:5060";
  std::string domain = "demo.sip.localhost";
  std::string creds = "creds.txt";
  int in_flight = 64;
  double warmup = 3;
  double seconds = 15;
  std::string mode = "challenge";
  std::vector<int> pids;
  int expires = 3600;
  int contact_port = 5999;
  int first = 1;  // 1-based line of --creds to start at
  int count = 0;  // 0: all lines from --first
  bool once = false;
};

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "sip_register_load: %s\n", what.c_str());
  std::exit(2);
}

// The value of `name="..."` (or name=token) in a challenge.
std::string ChallengeParam(const std::string& challenge, const std::string& name) {
  const std::string key = name + "=";
  size_t pos = 0;
  // Match whole parameter names only ("nonce=" must not match "cnonce=").
  for (;;) {
    pos = challenge.find(key, pos);
    if (pos == std::string::npos) return {};
    if (pos == 0 || challenge[pos - 1] == ' ' || challenge[pos - 1] == ',') break;
    pos += key.size();
  }
  pos += key.size();
  if (pos < challenge.size() && challenge[pos] == '"') {
    const size_t end = challenge.find('"', pos + 1);
    return challenge.substr(pos + 1, end - pos - 1);
  }
  const size_t end = challenge.find_first_of(", ", pos);
  return challenge.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
}

// CPU seconds (user + system, all threads) of a process, from /proc/PID/stat; -1 if unreadable.
double ProcessCpuSeconds(int pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string line;
  if (!std::getline(in, line)) return -1;
  // The command name is in parentheses and may hold spaces: fields count from after it.
  const size_t close = line.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream rest(line.substr(close + 2));
  std::string field;
  double utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::atof(field.c_str());
    if (i == 15) stime = std::atof(field.c_str());
  }
  return (utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double SelfCpuSeconds() {
  rusage u;
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6;
}

struct Extension {
  std::string user;
  std::string password;
  std::string ha1;  // SHA-256, once the realm is known
  std::string realm;
  std::string nonce;
  uint32_t nc = 0;
  sip::DialogPtr dialog;
  sip::ClientTransactionPtr tx;
};

struct Counters {
  uint64_t requests = 0;
  uint64_t registrations = 0;
  std::map<int, uint64_t> statuses;
};

class Load {
 public:
  Load(const Flags& flags, std::vector<Extension> extensions)
      : flags_(flags), extensions_(std::move(extensions)) {
    uri_ = absl::StrCat("sip:", flags_.domain);
    hop_ = absl::StrCat("sip:", flags_.server);
  }

  int Run() {
    auto stack = sip::Stack::Start(
        {.name = "sip_register_load", .port = sb::testing::FreeTcpUdpPort(), .tcp = false},
        [](sip::ServerTransactionPtr tx) { tx->Reply(481); });
    if (!stack.ok()) Die(std::string(stack.status().message()));
    stack_ = stack->get();
    const int slots = flags_.once
                          ? static_cast<int>(extensions_.size())
                          : std::min<int>(flags_.in_flight, static_cast<int>(extensions_.size()));
    absl::Notification done;
    std::unique_ptr<sip::Timer> warmup_timer, end_timer, guard_timer;
    stack_->Post([&] {
      start_ = absl::Now();
      if (flags_.once) {
        measuring_ = true;
        window_start_ = start_;
        guard_timer = stack_->After(absl::Seconds(30), [&] {
          stopping_ = true;
          done.Notify();
        });
      } else {
        warmup_timer = stack_->After(absl::Seconds(flags_.warmup), [&] { BeginWindow(); });
        end_timer = stack_->After(absl::Seconds(flags_.warmup + flags_.seconds), [&] {
          EndWindow();
          stopping_ = true;
          done.Notify();
        });
      }
      on_all_done_ = [&] { done.Notify(); };
      for (int s = 0; s < slots; ++s) {
        next_of_slot_.push_back(static_cast<size_t>(s));
        Next(s);
      }
    });
    done.WaitForNotification();
    if (flags_.once) EndWindowFromMain();
    (*stack)->Stop([&] {
      warmup_timer.reset();
      end_timer.reset();
      guard_timer.reset();
      for (Extension& e : extensions_) {
        e.tx.reset();
        e.dialog.reset();
      }
    });
    stack->reset();
    return Report();
  }

 private:
  // Starts the next registration of slot `slot`.
  void Next(int slot) {
    if (stopping_) return;
    size_t& i = next_of_slot_[static_cast<size_t>(slot)];
    if (flags_.once) {
      if (started_once_[i]) return;
      started_once_[i] = true;
    }
    Extension& e = extensions_[i];
    const size_t index = i;
    if (!flags_.once) {
      i += static_cast<size_t>(flags_.in_flight);
      if (i >= extensions_.size()) i %= static_cast<size_t>(flags_.in_flight);
      if (i >= extensions_.size()) i = static_cast<size_t>(slot);
    }
    began_[index] = absl::Now();
    if (flags_.mode == "reuse" && !e.nonce.empty()) {
      Send(slot, index, Authorization(e));
    } else {
      Send(slot, index, "");
    }
  }

  std::string Authorization(Extension& e) {
    ++e.nc;
    const std::string nc = absl::StrFormat("%08x", e.nc);
    const std::string cnonce = absl::StrFormat("bench%08x", e.nc);
    const std::string reply = digest::ComputeResponse(digest::Algorithm::kSha256, e.ha1, "REGISTER",
                                                      uri_, e.nonce, nc, cnonce, "auth");
    return absl::StrCat("Digest username=\"", e.user, "\", realm=\"", e.realm, "\", nonce=\"",
                        e.nonce, "\", uri=\"", uri_, "\", response=\"", reply,
                        "\", algorithm=SHA-256, qop=auth, nc=", nc, ", cnonce=\"", cnonce, "\"");
  }

  void Send(int slot, size_t index, const std::string& authorization) {
    Extension& e = extensions_[index];
    if (e.dialog == nullptr) {
      const std::string aor = absl::StrCat("<sip:", e.user, "@", flags_.domain, ">");
      auto d = sip::Dialog::Create(*stack_, {.from = aor, .to = aor}, nullptr);
      if (!d.ok()) Die(std::string(d.status().message()));
      e.dialog = *d;
    }
    std::vector<sip::Header> headers = {{"Expires", std::to_string(flags_.expires)}};
    if (!authorization.empty()) headers.push_back({"Authorization", authorization});
    auto tx = e.dialog->Send(
        {.method = "REGISTER",
         .request_uri = uri_,
         .next_hop = hop_,
         .headers = std::move(headers),
         .contact = absl::StrCat("<sip:", e.user, "@127.0.0.1:", flags_.contact_port, ">")},
        [this, slot, index, authed = !authorization.empty()](const sip::Message& response) {
          OnResponse(slot, index, authed, response);
        });
    if (!tx.ok()) Die(std::string(tx.status().message()));
    e.tx = *tx;
    if (measuring_) ++window_.requests;
  }

  void OnResponse(int slot, size_t index, bool authed, const sip::Message& response) {
    const int status = response.status();
    if (status < 200) return;
    Extension& e = extensions_[index];
    if (measuring_) ++window_.statuses[status];
    if (status == 401 && !stopping_) {
      std::string challenge;
      for (const std::string& c : response.headers("WWW-Authenticate")) {
        if (absl::StrContains(c, "SHA-256")) challenge = c;
      }
      const std::string realm = ChallengeParam(challenge, "realm");
      if (realm != e.realm || e.ha1.empty()) {
        e.realm = realm;
        e.ha1 = digest::ComputeHa1(digest::Algorithm::kSha256, e.user, realm, e.password);
      }
      e.nonce = ChallengeParam(challenge, "nonce");
      e.nc = 0;
      // A 401 to our answer means a wrong password (or a stale nonce, answered once more).
      if (authed && !absl::StrContains(challenge, "stale=true")) {
        ++failures_;
        if (failures_ > 100) Die("too many refused answers: wrong credentials?");
      }
      Send(slot, index, Authorization(e));
      return;
    }
    if (status == 200) {
      if (measuring_) {
        ++window_.registrations;
        latencies_us_.push_back(absl::ToInt64Microseconds(absl::Now() - began_[index]));
      }
      if (flags_.once) {
        ++once_ok_;
        if (once_ok_ + once_failed_ == extensions_.size()) {
          stopping_ = true;
          on_all_done_();
        }
        return;
      }
    } else if (flags_.once) {
      std::fprintf(stderr, "sip_register_load: %s got %d\n", e.user.c_str(), status);
      ++once_failed_;
      if (once_ok_ + once_failed_ == extensions_.size()) {
        stopping_ = true;
        on_all_done_();
      }
      return;
    }
    Next(slot);
  }

  void BeginWindow() {
    measuring_ = true;
    window_start_ = absl::Now();
    client_cpu_start_ = SelfCpuSeconds();
    for (int pid : flags_.pids) cpu_start_[pid] = ProcessCpuSeconds(pid);
  }

  void EndWindow() {
    measuring_ = false;
    window_end_ = absl::Now();
    client_cpu_end_ = SelfCpuSeconds();
    for (int pid : flags_.pids) cpu_end_[pid] = ProcessCpuSeconds(pid);
  }

  void EndWindowFromMain() {
    window_end_ = absl::Now();
    client_cpu_end_ = SelfCpuSeconds();
  }

  int Report() {
    const double seconds = absl::ToDoubleSeconds(window_end_ - window_start_);
    std::sort(latencies_us_.begin(), latencies_us_.end());
    auto pct = [&](double p) {
      if (latencies_us_.empty()) return 0.0;
      const size_t k = std::min(latencies_us_.size() - 1,
                                static_cast<size_t>(p * static_cast<double>(latencies_us_.size())));
      return static_cast<double>(latencies_us_[k]) / 1000.0;
    };
    std::printf("mode=%s\nin_flight=%d\nextensions=%zu\nwindow_s=%.3f\n",
                flags_.once ? "once" : flags_.mode.c_str(), flags_.in_flight, extensions_.size(),
                seconds);
    std::printf("registrations=%llu\nrequests=%llu\n",
                static_cast<unsigned long long>(window_.registrations),
                static_cast<unsigned long long>(window_.requests));
    if (seconds > 0) {
      std::printf("registrations_per_s=%.1f\nrequests_per_s=%.1f\n",
                  static_cast<double>(window_.registrations) / seconds,
                  static_cast<double>(window_.requests) / seconds);
    }
    for (const auto& [status, n] : window_.statuses) {
      std::printf("status_%d=%llu\n", status, static_cast<unsigned long long>(n));
    }
    std::printf("latency_p50_ms=%.3f\nlatency_p99_ms=%.3f\n", pct(0.50), pct(0.99));
    for (int pid : flags_.pids) {
      std::printf("cpu_s_%d=%.3f\n", pid, cpu_end_[pid] - cpu_start_[pid]);
    }
    std::printf("client_cpu_s=%.3f\n", client_cpu_end_ - client_cpu_start_);
    if (flags_.once) return once_ok_ == extensions_.size() ? 0 : 1;
    return window_.registrations > 0 ? 0 : 1;
  }

  const Flags flags_;
  std::vector<Extension> extensions_;
  std::string uri_;
  std::string hop_;
  sip::Stack* stack_ = nullptr;
  std::vector<size_t> next_of_slot_;
  std::map<size_t, bool> started_once_;
  std::map<size_t, absl::Time> began_;
  std::function<void()> on_all_done_;
  bool measuring_ = false;
  bool stopping_ = false;
  uint64_t failures_ = 0;
  size_t once_ok_ = 0;
  size_t once_failed_ = 0;
  Counters window_;
  std::vector<int64_t> latencies_us_;
  absl::Time start_, window_start_, window_end_;
  double client_cpu_start_ = 0, client_cpu_end_ = 0;
  std::map<int, double> cpu_start_, cpu_end_;
};

std::vector<Extension> ReadCreds(const Flags& flags) {
  std::ifstream in(flags.creds);
  if (!in) Die("cannot read --creds " + flags.creds);
  std::vector<Extension> out;
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    std::vector<std::string> parts = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (parts.size() != 2) continue;
    ++n;
    if (n < flags.first) continue;
    if (flags.count > 0 && static_cast<int>(out.size()) >= flags.count) break;
    out.push_back({.user = parts[0], .password = parts[1]});
  }
  if (out.empty()) Die("no credentials selected from " + flags.creds);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const size_t eq = arg.find('=');
    const std::string key = arg.substr(0, eq);
    const std::string value = eq == std::string::npos ? "" : arg.substr(eq + 1);
    auto number = [&](auto* out) {
      if (!absl::SimpleAtoi(value, out)) Die(key + ": a number");
    };
    auto real = [&](double* out) {
      if (!absl::SimpleAtod(value, out) || *out < 0) Die(key + ": seconds");
    };
    if (key == "--server") {
      flags.server = value;
    } else if (key == "--domain") {
      flags.domain = value;
    } else if (key == "--creds") {
      flags.creds = value;
    } else if (key == "--in_flight") {
      number(&flags.in_flight);
      if (flags.in_flight < 1) Die("--in_flight: at least 1");
    } else if (key == "--warmup") {
      real(&flags.warmup);
    } else if (key == "--seconds") {
      real(&flags.seconds);
    } else if (key == "--mode") {
      if (value != "challenge" && value != "reuse") Die("--mode: challenge or reuse");
      flags.mode = value;
    } else if (key == "--pids") {
      for (absl::string_view p : absl::StrSplit(value, ',', absl::SkipEmpty())) {
        int pid = 0;
        if (!absl::SimpleAtoi(p, &pid)) Die("--pids: comma-separated process ids");
        flags.pids.push_back(pid);
      }
    } else if (key == "--expires") {
      number(&flags.expires);
    } else if (key == "--contact_port") {
      number(&flags.contact_port);
    } else if (key == "--first") {
      number(&flags.first);
    } else if (key == "--count") {
      number(&flags.count);
    } else if (key == "--once") {
      flags.once = true;
    } else {
      Die("unknown flag " + arg);
    }
  }
  return Load(flags, ReadCreds(flags)).Run();
}
