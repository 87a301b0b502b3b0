#include "services/sip/call_state.h"

#include <pthread.h>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "libs/common/status_macros.h"
#include "libs/events/stream.h"
#include "spdlog/spdlog.h"

namespace sb::sip {

CallStateWriter::CallStateWriter(redis::Client& redis, Options options)
    : redis_(redis), options_(std::move(options)) {
  thread_ = std::thread([this] { Run(); });
}

CallStateWriter::~CallStateWriter() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  thread_.join();
}

bool CallStateWriter::Write(const v1::ActiveCall& call, std::vector<cv1::Event> events,
                            bool ended) {
  absl::MutexLock lock(&mu_);
  if (queue_.size() >= options_.capacity) {
    ++dropped_;
    return false;
  }
  queue_.push_back({call, std::move(events), ended});
  ++queued_;
  return true;
}

size_t CallStateWriter::backlog() const {
  absl::MutexLock lock(&mu_);
  return queue_.size();
}

uint64_t CallStateWriter::dropped() const {
  absl::MutexLock lock(&mu_);
  return dropped_;
}

void CallStateWriter::Flush() {
  absl::MutexLock lock(&mu_);
  struct Arg {
    CallStateWriter* self;
    uint64_t target;
  } arg{this, queued_};
  mu_.AwaitWithTimeout(
      absl::Condition(
          +[](Arg* a) ABSL_NO_THREAD_SAFETY_ANALYSIS { return a->self->written_ >= a->target; },
          &arg),
      absl::Seconds(10));
}

void CallStateWriter::Run() {
  pthread_setname_np(pthread_self(), "sip-state");
  absl::Duration backoff = absl::Milliseconds(50);
  for (;;) {
    std::vector<Item> batch;
    {
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithTimeout(absl::Condition(
                               +[](CallStateWriter* self) ABSL_NO_THREAD_SAFETY_ANALYSIS {
                                 return !self->queue_.empty() || self->stop_;
                               },
                               this),
                           absl::Seconds(1));
      if (queue_.empty()) {
        if (stop_) return;
        continue;
      }
      const size_t n = std::min<size_t>(queue_.size(), 256);
      for (size_t i = 0; i < n; ++i) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    // Retry the same batch until Redis takes it (bounded when stopping).
    for (int attempt = 0;; ++attempt) {
      absl::Status s = WriteBatch(batch);
      if (s.ok()) {
        backoff = absl::Milliseconds(50);
        break;
      }
      bool stopping;
      {
        absl::MutexLock lock(&mu_);
        stopping = stop_;
      }
      spdlog::warn("sip: cannot write call state ({} changes): {}", batch.size(),
                   std::string(s.message()));
      if (stopping && attempt >= 3) {
        absl::MutexLock lock(&mu_);
        dropped_ += batch.size();
        break;
      }
      absl::SleepFor(backoff);
      backoff = std::min(backoff * 2, absl::Seconds(2));
    }
    absl::MutexLock lock(&mu_);
    written_ += batch.size();
  }
}

absl::Status CallStateWriter::WriteBatch(std::vector<Item>& batch) {
  // 1. Sequence numbers for the events of each call, one INCRBY per call in the batch. Events
  // that already have one (a retried batch) keep it.
  absl::flat_hash_map<std::string, int64_t> wanted;
  std::vector<std::string> order;
  for (const Item& item : batch) {
    for (const cv1::Event& e : item.events) {
      if (e.call_sequence() != 0) continue;
      if (wanted[item.call.call_id()]++ == 0) order.push_back(item.call.call_id());
    }
  }
  if (!order.empty()) {
    std::vector<std::vector<std::string>> incr;
    for (const std::string& id : order) {
      incr.push_back({"INCRBY", CallKey(id) + ":seq", absl::StrCat(wanted[id])});
    }
    for (const std::string& id : order) {
      incr.push_back({"PEXPIRE", CallKey(id) + ":seq",
                      absl::StrCat(absl::ToInt64Milliseconds(options_.live_ttl))});
    }
    SB_ASSIGN_OR_RETURN(auto replies, redis_.Pipeline(incr));
    absl::flat_hash_map<std::string, int64_t> next;
    for (size_t i = 0; i < order.size(); ++i) {
      SB_RETURN_IF_ERROR(replies[i].ToStatus());
      next[order[i]] = replies[i].integer() - wanted[order[i]] + 1;
    }
    for (Item& item : batch) {
      for (cv1::Event& e : item.events) {
        if (e.call_sequence() == 0) e.set_call_sequence(next[item.call.call_id()]++);
      }
    }
  }
  // 2. State, indexes and events, in the order they happened.
  std::vector<std::vector<std::string>> cmds;
  const std::string stream = options_.stream.empty() ? events::kStreamKey : options_.stream;
  for (const Item& item : batch) {
    const v1::ActiveCall& c = item.call;
    const absl::Duration ttl = item.ended ? options_.ended_ttl : options_.live_ttl;
    cmds.push_back({"SET", CallKey(c.call_id()), c.SerializeAsString(), "PX",
                    absl::StrCat(absl::ToInt64Milliseconds(ttl))});
    if (item.ended) {
      cmds.push_back({"ZREM", TenantIndexKey(c.tenant_id()), c.call_id()});
      cmds.push_back({"SREM", NodeIndexKey(c.node_id()), c.call_id()});
    } else {
      cmds.push_back(
          {"ZADD", TenantIndexKey(c.tenant_id()),
           absl::StrCat(c.created_at().seconds() * 1000 + c.created_at().nanos() / 1000000),
           c.call_id()});
      cmds.push_back({"SADD", NodeIndexKey(c.node_id()), c.call_id()});
    }
    for (const cv1::Event& e : item.events) cmds.push_back(events::XAddCommand(e, stream));
  }
  SB_ASSIGN_OR_RETURN(auto replies, redis_.Pipeline(cmds));
  for (const redis::Reply& r : replies) SB_RETURN_IF_ERROR(r.ToStatus());
  return absl::OkStatus();
}

}  // namespace sb::sip
