#include "services/sip/keepalive.h"

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace sb::sip {

Keepalive::Keepalive(Stack& stack, BoundedExecutor& executor, RegistrationStore& store,
                     const Clock& clock, Options options)
    : stack_(stack),
      executor_(executor),
      store_(store),
      clock_(clock),
      options_(std::move(options)) {
  timer_ = stack_.After(options_.interval, [this] { Tick(); });
}

Keepalive::~Keepalive() = default;

void Keepalive::Update(const std::string& tenant_id, const std::string& extension,
                       const std::vector<v1::Registration>& bindings) {
  const std::string key = absl::StrCat(tenant_id, "/", extension);
  std::vector<v1::Registration> ours;
  for (const v1::Registration& r : bindings) {
    if (r.node_id() == options_.node_id) ours.push_back(r);
  }
  if (ours.empty()) {
    bindings_.erase(key);
  } else {
    bindings_[key] = std::move(ours);
  }
}

size_t Keepalive::contacts() const {
  size_t n = 0;
  for (const auto& [key, list] : bindings_) n += list.size();
  return n;
}

void Keepalive::Tick() {
  timer_ = stack_.After(options_.interval, [this] { Tick(); });
  // Finished probes go; one still waiting keeps its transaction until nta's timeout (32 s) gives
  // it a 408.
  std::erase_if(probes_, [](const auto& p) { return p->done; });
  const int64_t now_s = absl::ToUnixSeconds(clock_.Now());
  for (auto it = bindings_.begin(); it != bindings_.end();) {
    std::erase_if(it->second,
                  [&](const v1::Registration& r) { return r.expires_at().seconds() <= now_s; });
    if (it->second.empty()) {
      bindings_.erase(it++);
      continue;
    }
    for (const v1::Registration& r : it->second) {
      auto probe = std::make_unique<Probe>();
      auto dialog =
          Dialog::Create(stack_,
                         {.from = absl::StrCat("<sip:keepalive@", stack_.public_host(), ">"),
                          .to = absl::StrCat("<", r.aor(), ">")},
                         [](ServerTransactionPtr in) { in->Reply(481); });
      if (!dialog.ok()) continue;
      probe->dialog = *dialog;
      const absl::Time sent = clock_.Now();
      Probe* p = probe.get();
      auto tx = probe->dialog->Send(
          {.method = "OPTIONS", .request_uri = r.contact_uri(), .next_hop = NextHop(r)},
          [this, r, sent, p](const Message& response) {
            if (response.status() < 200 || p->done) return;
            p->done = true;
            Answered(r, sent, response);
          });
      if (!tx.ok()) continue;
      probe->options = *tx;
      probes_.push_back(std::move(probe));
    }
    ++it;
  }
}

void Keepalive::Answered(const v1::Registration& binding, absl::Time sent,
                         const Message& response) {
  // Our own stack answers 408 on a timeout and 503 when it cannot send; neither came from the
  // phone (a response from the phone has a source address).
  const bool local = response.source_ip().empty();
  const bool reachable = !(response.status() == 408 || (local && response.status() == 503));
  const absl::Duration rtt = reachable ? clock_.Now() - sent : absl::ZeroDuration();
  if (!reachable) {
    spdlog::info("sip: {} ({}) does not answer keepalives", binding.contact_uri(),
                 binding.extension());
  }
  const std::string tenant = binding.tenant_id();
  const std::string extension = binding.extension();
  const std::string key = RegistrationStore::BindingKey(binding);
  executor_.TrySubmit([this, tenant, extension, key, reachable, rtt] {
    if (absl::Status s = store_.SetReachability(tenant, extension, key, reachable, rtt); !s.ok()) {
      spdlog::debug("sip: keepalive result not stored: {}", std::string(s.message()));
    }
  });
}

}  // namespace sb::sip
