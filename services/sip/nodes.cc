#include "services/sip/nodes.h"

#include <pthread.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/time_util.h"
#include "libs/common/ids.h"
#include "spdlog/spdlog.h"

namespace sb::sip {
namespace {

using google::protobuf::util::TimeUtil;

google::protobuf::Timestamp Stamp(absl::Time t) {
  return TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(t));
}

}  // namespace

NodeRegistry::NodeRegistry(redis::Client& redis, const Clock& clock, Options options,
                           std::function<v1::SipNode()> describe,
                           std::function<absl::StatusOr<int>(const std::string&)> close_dead)
    : redis_(redis),
      clock_(clock),
      options_(std::move(options)),
      describe_(std::move(describe)),
      close_dead_(std::move(close_dead)),
      started_at_(clock_.Now()) {
  thread_ = std::thread([this] { Run(); });
  if (options_.sweep_interval > absl::ZeroDuration() && close_dead_ != nullptr) {
    sweeper_ = std::thread([this] { RunSweeper(); });
  }
}

NodeRegistry::~NodeRegistry() {
  stop_.Notify();
  thread_.join();
  if (sweeper_.joinable()) sweeper_.join();
  auto removed =
      redis_.Pipeline({{"DEL", NodeKey(options_.node_id)}, {"ZREM", IndexKey(), options_.node_id}});
  if (!removed.ok()) {
    spdlog::warn("sip: cannot remove node {} from Redis: {}", options_.node_id,
                 std::string(removed.status().message()));
  }
}

void NodeRegistry::Run() {
  pthread_setname_np(pthread_self(), "sip-heartbeat");
  do {
    if (absl::Status s = Beat(); !s.ok()) {
      spdlog::warn("sip: node heartbeat failed: {}", std::string(s.message()));
    }
  } while (!stop_.WaitForNotificationWithTimeout(options_.heartbeat));
}

void NodeRegistry::RunSweeper() {
  pthread_setname_np(pthread_self(), "sip-sweeper");
  // Sweeps apart from the heartbeat: closing out a node with many calls takes a while, and this
  // node must not look dead meanwhile.
  while (!stop_.WaitForNotificationWithTimeout(options_.sweep_interval)) {
    if (auto swept = Sweep(); !swept.ok()) {
      spdlog::warn("sip: sweep for dead nodes failed: {}", std::string(swept.status().message()));
    }
  }
}

absl::StatusOr<int> NodeRegistry::Sweep() {
  auto nodes = List(/*include_dead=*/true);
  if (!nodes.ok()) return nodes.status();
  int swept = 0;
  for (const v1::SipNode& node : *nodes) {
    if (node.state() != v1::SipNode::STATE_DEAD || node.node_id() == options_.node_id) continue;
    // One live node closes a dead one out; the claim lapses, so that another node takes over if
    // this one dies halfway.
    const std::string claim = options_.prefix + "sip:closeout:" + node.node_id();
    const int64_t hold_ms =
        std::max<int64_t>(60'000, 4 * absl::ToInt64Milliseconds(options_.sweep_interval));
    auto claimed =
        redis_.Command({"SET", claim, options_.node_id, "NX", "PX", absl::StrCat(hold_ms)});
    if (!claimed.ok()) return claimed.status();
    if (claimed->is_nil()) continue;  // another node has it
    absl::StatusOr<int> closed = close_dead_(node.node_id());
    if (!closed.ok()) {
      (void)redis_.Command({"DEL", claim});  // the next sweep (here or elsewhere) tries again
      spdlog::warn("sip: cannot close out the calls of dead node {}: {}", node.node_id(),
                   std::string(closed.status().message()));
      continue;
    }
    spdlog::info("sip: node {} is dead (no heartbeat for {}): closed out {} of its calls",
                 node.node_id(), absl::FormatDuration(options_.dead_after), *closed);
    ++swept;
  }
  return swept;
}

absl::Status NodeRegistry::Beat() {
  v1::SipNode node = describe_();
  node.set_node_id(options_.node_id);
  node.set_state(v1::SipNode::STATE_ACTIVE);
  *node.mutable_started_at() = Stamp(started_at_);
  const absl::Time now = clock_.Now();
  *node.mutable_last_heartbeat_at() = Stamp(now);
  // The record outlives a dead node long enough to be seen DEAD and closed out.
  const int64_t keep = absl::ToInt64Seconds(options_.dead_after) * 30 + 60;
  auto r = redis_.Pipeline(
      {{"SET", NodeKey(options_.node_id), node.SerializeAsString(), "EX", absl::StrCat(keep)},
       {"ZADD", IndexKey(), absl::StrCat(absl::ToUnixMillis(now)), options_.node_id}});
  return r.status();
}

v1::SipNode NodeRegistry::WithState(v1::SipNode node, int64_t heartbeat_ms) const {
  const absl::Duration age = clock_.Now() - absl::FromUnixMillis(heartbeat_ms);
  if (age > options_.dead_after) node.set_state(v1::SipNode::STATE_DEAD);
  return node;
}

absl::StatusOr<std::vector<v1::SipNode>> NodeRegistry::List(bool include_dead) const {
  auto ids = redis_.Command({"ZRANGE", IndexKey(), "0", "-1", "WITHSCORES"});
  if (!ids.ok()) return ids.status();
  std::vector<v1::SipNode> out;
  const auto& e = ids->elements();
  for (size_t i = 0; i + 1 < e.size(); i += 2) {
    const std::string id = e[i].str();
    const int64_t beat = std::stoll(e[i + 1].str());
    auto record = redis_.Command({"GET", NodeKey(id)});
    if (!record.ok()) return record.status();
    v1::SipNode node;
    if (record->is_nil() || !node.ParseFromString(record->str())) {
      node.set_node_id(id);  // its record expired: only the index remembers it
    }
    node = WithState(std::move(node), beat);
    if (node.state() == v1::SipNode::STATE_DEAD && !include_dead) continue;
    out.push_back(std::move(node));
  }
  return out;
}

absl::StatusOr<v1::SipNode> NodeRegistry::Get(const std::string& node_id) const {
  auto beat = redis_.Command({"ZSCORE", IndexKey(), node_id});
  if (!beat.ok()) return beat.status();
  if (beat->is_nil()) return absl::NotFoundError(absl::StrCat("no SIP node ", node_id));
  auto record = redis_.Command({"GET", NodeKey(node_id)});
  if (!record.ok()) return record.status();
  v1::SipNode node;
  if (record->is_nil() || !node.ParseFromString(record->str())) node.set_node_id(node_id);
  return WithState(std::move(node), std::stoll(beat->str()));
}

absl::StatusOr<int> NodeRegistry::CloseNodeCalls(
    const std::string& node_id, CallStateWriter& writer,
    const std::function<void(const v1::ActiveCall&)>& ended) {
  auto node = Get(node_id);
  if (node.ok() && node->state() != v1::SipNode::STATE_DEAD) {
    return absl::FailedPreconditionError(
        absl::StrCat("SIP node ", node_id, " is alive; it ends its own calls"));
  }
  if (!node.ok() && node.status().code() != absl::StatusCode::kNotFound) return node.status();
  return CloseOut(redis_, clock_, options_.prefix, options_.node_id, node_id, writer, ended);
}

absl::StatusOr<int> NodeRegistry::CloseLeftovers(
    redis::Client& redis, const Clock& clock, const std::string& prefix, const std::string& node_id,
    CallStateWriter& writer, const std::function<void(const v1::ActiveCall&)>& ended) {
  return CloseOut(redis, clock, prefix, node_id, node_id, writer, ended);
}

absl::StatusOr<int> NodeRegistry::CloseOut(
    redis::Client& redis, const Clock& clock, const std::string& prefix, const std::string& by,
    const std::string& node_id, CallStateWriter& writer,
    const std::function<void(const v1::ActiveCall&)>& ended) {
  auto ids = redis.Command({"SMEMBERS", writer.NodeIndexKey(node_id)});
  if (!ids.ok()) return ids.status();
  int closed = 0;
  const absl::Time now = clock.Now();
  for (const redis::Reply& id : ids->elements()) {
    auto record = redis.Command({"GET", writer.CallKey(id.str())});
    if (!record.ok()) return record.status();
    v1::ActiveCall call;
    if (record->is_nil() || !call.ParseFromString(record->str()) ||
        call.state() == cv1::CALL_STATE_ENDED) {
      // Already over (or gone): only the index entry is left.
      auto removed = redis.Command({"SREM", writer.NodeIndexKey(node_id), id.str()});
      if (!removed.ok()) return removed.status();
      continue;
    }
    call.set_state(cv1::CALL_STATE_ENDED);
    for (auto& leg : *call.mutable_legs()) leg.set_state(v1::LEG_STATE_ENDED);
    cv1::Event e;
    e.set_event_id(NewUuidV7(now));
    e.set_type(cv1::EVENT_TYPE_CALL_ENDED);
    e.set_tenant_id(call.tenant_id());
    e.set_call_id(call.call_id());
    *e.mutable_occurred_at() = Stamp(now);
    e.set_source(absl::StrCat("sip/", by));
    e.set_queue_id(call.queue_id());
    e.set_project_id(call.project_id());
    auto* c = e.mutable_call();
    c->set_direction(call.direction());
    c->set_node_id(node_id);
    auto* end = c->mutable_ended();
    end->set_cause(cv1::HANGUP_CAUSE_NODE_FAILURE);
    end->set_hangup_by(cv1::HANGUP_PARTY_SYSTEM);
    end->set_reason(by == node_id ? "NODE_FAILURE: the node restarted"
                                  : absl::StrCat("NODE_FAILURE: closed out by ", by));
    end->set_outcome(call.has_answered_at() ? cv1::CALL_OUTCOME_ANSWERED
                                            : cv1::CALL_OUTCOME_FAILED);
    for (const std::string& user : call.agent_user_ids()) e.add_user_ids(user);
    if (!writer.Write(call, {e}, /*ended=*/true)) {
      return absl::ResourceExhaustedError("the call state queue is full; try again");
    }
    ended(call);
    ++closed;
  }
  writer.Flush();
  if (by == node_id) return closed;  // the node lives on
  auto forgotten =
      redis.Pipeline({{"DEL", NodeKey(prefix, node_id)}, {"ZREM", IndexKey(prefix), node_id}});
  if (!forgotten.ok()) return forgotten.status();
  return closed;
}

}  // namespace sb::sip
