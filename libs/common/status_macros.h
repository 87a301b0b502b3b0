#pragma once

// SB_RETURN_IF_ERROR and SB_ASSIGN_OR_RETURN with the meaning of the newest Abseil's status macros
// (Abseil 20220623, the one Debian 12 ships, has none).
//
//   SB_RETURN_IF_ERROR(store.Insert(team));
//   SB_ASSIGN_OR_RETURN(Team team, store.Get(id));
//   SB_ASSIGN_OR_RETURN(auto rows, tx.Query(sql));

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace sb::internal {

inline const absl::Status& AsStatus(const absl::Status& status) { return status; }
template <typename T>
const absl::Status& AsStatus(const absl::StatusOr<T>& status_or) {
  return status_or.status();
}

}  // namespace sb::internal

#define SB_STATUS_CONCAT_INNER_(a, b) a##b
#define SB_STATUS_CONCAT_(a, b) SB_STATUS_CONCAT_INNER_(a, b)

// Evaluates `expr` (an absl::Status or absl::StatusOr<T>); returns its status from the enclosing
// function when it is not OK.
#define SB_RETURN_IF_ERROR(expr)                                                \
  do {                                                                          \
    if (auto sb_status_ = (expr); !::sb::internal::AsStatus(sb_status_).ok()) { \
      return ::absl::Status(::sb::internal::AsStatus(sb_status_));              \
    }                                                                           \
  } while (false)

// Evaluates `rexpr` (an absl::StatusOr<T>); on error returns its status, otherwise moves the value
// into `lhs`, which may be a declaration (`auto x`, `Team team`) or an existing variable.
#define SB_ASSIGN_OR_RETURN(lhs, rexpr) \
  SB_ASSIGN_OR_RETURN_IMPL_(SB_STATUS_CONCAT_(sb_statusor_, __LINE__), lhs, rexpr)

#define SB_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                              \
  if (!statusor.ok()) {                                 \
    return ::absl::Status(statusor.status());           \
  }                                                     \
  lhs = std::move(statusor).value()
