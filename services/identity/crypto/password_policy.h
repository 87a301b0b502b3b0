#pragma once

// The rules a new password must meet, checked before it is hashed: length (counted in Unicode code
// points, as a user counts characters), no control characters, not one of the most common
// passwords, not a single repeated character or a plain run like "abcdef"/"987654", and not built
// from the user's own login name, email address or name.
//
//   SB_RETURN_IF_ERROR(CheckPassword(request.password(), tenant.min_password_length(),
//                                    {user.login_name, user.email, user.first_name,
//                                     user.last_name}));
//
// Status codes: OK, or InvalidArgument whose message starts with `field` and a colon and says what
// to change, e.g. "password: must be at least 10 characters". Messages never echo the password.
//
// Thread-safety: pure functions of their arguments; safe from any number of threads.

#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace sb::identity {

// What is known about the user whose password is checked; empty fields are skipped.
struct PasswordContext {
  std::string login_name;
  std::string email;
  std::string first_name;
  std::string last_name;
};

// Longest password accepted, in bytes. Argon2 would take more, but nobody types this much and a
// bound keeps hashing requests cheap to reject.
inline constexpr size_t kMaxPasswordBytes = 256;

// Checks `password` against the rules above, in this order, and reports the first one broken:
//   - at most kMaxPasswordBytes bytes, and valid UTF-8;
//   - no control characters (U+0000-U+001F, U+007F-U+009F);
//   - not empty, and at least `min_length` code points ("ééééé" is 5, not 10);
//   - not one character repeated ("aaaaaaaaaa");
//   - not only an ascending or descending run of letters or digits ("abcdefghij", "9876543210",
//     digits may wrap: "7890123456");
//   - not in the built-in list of ~240 most common passwords (ASCII case-insensitive);
//   - neither equal to nor containing (ASCII case-insensitive) the login name or the local part of
//     the email address when that is 3+ code points, or the first or last name when that is 4+
//     (shorter names are substrings of too many good passwords).
absl::Status CheckPassword(std::string_view password, int min_length, const PasswordContext& ctx,
                           std::string_view field = "password");

// InvalidArgument "<field>: does not match the password" when `confirmation` is given (non-empty)
// and differs from `password`. An empty confirmation means the client did not ask for one: OK.
absl::Status CheckPasswordConfirmation(std::string_view password, std::string_view confirmation,
                                       std::string_view field = "password_confirmation");

}  // namespace sb::identity
