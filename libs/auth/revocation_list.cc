#include "libs/auth/revocation_list.h"

#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "libs/redis/client.h"
#include "spdlog/spdlog.h"

namespace sb::auth {
namespace {

std::string Member(const Revocation& r) {
  switch (r.kind) {
    case Revocation::Kind::kSession:
      return absl::StrCat("s|", r.subject_id);
    case Revocation::Kind::kUser:
      return absl::StrCat("u|", r.subject_id, "|", absl::ToUnixMillis(r.at));
    case Revocation::Kind::kApiKey:
      return absl::StrCat("k|", r.subject_id);
  }
  return "";
}

}  // namespace

RedisRevocationList::RedisRevocationList(redis::Client& redis, const Clock& clock,
                                         RedisRevocationListOptions options)
    : redis_(redis), clock_(clock), options_(std::move(options)) {}

RedisRevocationList::~RedisRevocationList() { Stop(); }

absl::Status RedisRevocationList::Publish(redis::Client& redis, const Revocation& revocation,
                                          const RedisRevocationListOptions& options) {
  const int64_t ms = absl::ToUnixMillis(revocation.at);
  const int64_t horizon = ms - absl::ToInt64Milliseconds(options.retention);
  absl::StatusOr<std::vector<redis::Reply>> replies = redis.Pipeline({
      {"ZADD", options.key, absl::StrCat(ms), Member(revocation)},
      {"ZREMRANGEBYSCORE", options.key, "-inf", absl::StrCat("(", horizon)},
  });
  if (!replies.ok()) return replies.status();
  return (*replies)[0].ToStatus();
}

void RedisRevocationList::Apply(const std::string& member, int64_t score_ms) {
  const absl::Time at = absl::FromUnixMillis(score_ms);
  std::vector<std::string> parts = absl::StrSplit(member, '|');
  if (parts.size() == 2 && parts[0] == "s") {
    sessions_[parts[1]] = at;
  } else if (parts.size() == 2 && parts[0] == "k") {
    api_keys_[parts[1]] = at;
  } else if (parts.size() == 3 && parts[0] == "u") {
    int64_t before_ms = 0;
    if (!absl::SimpleAtoi(parts[2], &before_ms)) return;
    const absl::Time before = absl::FromUnixMillis(before_ms);
    auto [it, inserted] = users_before_.emplace(parts[1], before);
    if (!inserted && it->second < before) it->second = before;
  }
}

void RedisRevocationList::Prune(absl::Time now) {
  const absl::Time horizon = now - options_.retention;
  absl::erase_if(sessions_, [&](const auto& kv) { return kv.second < horizon; });
  absl::erase_if(api_keys_, [&](const auto& kv) { return kv.second < horizon; });
  absl::erase_if(users_before_, [&](const auto& kv) { return kv.second < horizon; });
}

absl::Status RedisRevocationList::PollOnce() {
  // The whole retention window, every time: an entry's score is when its change happened, and a
  // long transaction (suspending a big tenant) can publish entries older than ones already seen,
  // so a cursor would skip them. The set holds only the last `retention` of revocations.
  const absl::Time now = clock_.Now();
  const int64_t from = absl::ToUnixMillis(now - options_.retention);
  absl::StatusOr<redis::Reply> reply =
      redis_.Command({"ZRANGEBYSCORE", options_.key, absl::StrCat(from), "+inf", "WITHSCORES"});
  if (!reply.ok()) return reply.status();
  if (!reply->is_array() || reply->elements().size() % 2 != 0) {
    return absl::InternalError("ZRANGEBYSCORE: unexpected reply " + reply->DebugString());
  }
  std::lock_guard lock(mu_);
  const auto& e = reply->elements();
  for (size_t i = 0; i + 1 < e.size(); i += 2) {
    double score = 0;
    if (!e[i + 1].is_string() || !absl::SimpleAtod(e[i + 1].str(), &score)) continue;
    Apply(e[i].str(), static_cast<int64_t>(score));
  }
  Prune(now);
  last_success_ = now;
  return absl::OkStatus();
}

absl::Status RedisRevocationList::Check(const Principal& principal) const {
  std::lock_guard lock(mu_);
  if (clock_.Now() - last_success_ > options_.max_staleness) {
    return absl::UnavailableError("token revocations cannot be read (Redis unreachable)");
  }
  if (!principal.session_id.empty() && sessions_.contains(principal.session_id)) {
    return absl::UnauthenticatedError("token revoked");
  }
  if (!principal.api_key_id.empty() && api_keys_.contains(principal.api_key_id)) {
    return absl::UnauthenticatedError("API key revoked");
  }
  if (!principal.user_id.empty() && principal.kind == Principal::Kind::kUser) {
    auto it = users_before_.find(principal.user_id);
    if (it != users_before_.end() && principal.issued_at < it->second) {
      return absl::UnauthenticatedError("token revoked");
    }
  }
  return absl::OkStatus();
}

void RedisRevocationList::Start() {
  std::lock_guard lock(run_mu_);
  if (poller_.joinable()) return;
  stopping_ = false;
  poller_ = std::thread([this] {
    bool failing = false;
    std::unique_lock lock(run_mu_);
    while (!stopping_) {
      lock.unlock();
      absl::Status s = PollOnce();
      if (!s.ok() && !failing) spdlog::warn("token revocations: poll failed: {}", s.ToString());
      if (s.ok() && failing) spdlog::info("token revocations: polling again");
      failing = !s.ok();
      lock.lock();
      wake_.wait_for(lock, absl::ToChronoMilliseconds(options_.poll_interval),
                     [this] { return stopping_; });
    }
  });
}

void RedisRevocationList::Stop() {
  {
    std::lock_guard lock(run_mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (poller_.joinable()) poller_.join();
}

}  // namespace sb::auth
