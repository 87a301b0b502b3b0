#pragma once

// Script: a Lua script for Client::Eval, holding its source and the SHA1 Redis will know it by
// (computed here, so EVALSHA needs no SCRIPT LOAD round trip).
//
//   const Script kReserveAgent(R"lua(
//     if redis.call('GET', KEYS[1]) ~= 'available' then return 0 end
//     redis.call('SET', KEYS[1], 'ringing')
//     return 1
//   )lua");
//   SB_ASSIGN_OR_RETURN(Reply reply, client.Eval(kReserveAgent, {agent_key}, {}));
//
// Thread-safety: immutable after construction; share freely.

#include <string>

namespace sb::redis {

class Script {
 public:
  explicit Script(std::string source);

  const std::string& source() const { return source_; }
  // 40 lowercase hex digits, as SCRIPT LOAD returns.
  const std::string& sha1() const { return sha1_; }

 private:
  std::string source_;
  std::string sha1_;
};

}  // namespace sb::redis
