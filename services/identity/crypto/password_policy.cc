#include "services/identity/crypto/password_policy.h"

#include <algorithm>
#include <iterator>
#include <optional>
#include <vector>

#include "absl/strings/ascii.h"

namespace sb::identity {
namespace {

// The most common passwords of the public breach corpora (RockYou, the yearly "worst passwords"
// lists) plus a few that suggest themselves on a call-center platform. Lowercase: compared with
// an ASCII-lowercased password. Many are shorter than any sane minimum; they stay for tenants that
// configure a low one.
constexpr std::string_view kCommonPasswords[] = {
    "123456",       "123456789",     "12345678",    "password",      "qwerty",       "123123",
    "12345",        "1234567",       "111111",      "1234567890",    "000000",       "abc123",
    "password1",    "iloveyou",      "1q2w3e4r",    "1q2w3e4r5t",    "1qaz2wsx",     "qwertyuiop",
    "qwerty123",    "654321",        "555555",      "666666",        "777777",       "888888",
    "999999",       "123321",        "112233",      "121212",        "123qwe",       "qwe123",
    "zxcvbnm",      "asdfghjkl",     "asdfgh",      "qazwsx",        "monkey",       "dragon",
    "letmein",      "football",      "baseball",    "welcome",       "welcome1",     "welcome123",
    "login",        "admin",         "admin123",    "administrator", "root",         "toor",
    "passw0rd",     "p@ssw0rd",      "p@ssword",    "pa$$word",      "password123",  "password12",
    "password!",    "passw0rd1",     "master",      "sunshine",      "princess",     "shadow",
    "superman",     "batman",        "trustno1",    "michael",       "jennifer",     "jordan",
    "jordan23",     "hunter",        "hunter2",     "charlie",       "daniel",       "thomas",
    "robert",       "jessica",       "ashley",      "nicole",        "michelle",     "hannah",
    "killer",       "soccer",        "hockey",      "basketball",    "starwars",     "pokemon",
    "whatever",     "freedom",       "secret",      "access",        "mustang",      "harley",
    "ranger",       "buster",        "tigger",      "pepper",        "ginger",       "cookie",
    "chocolate",    "summer",        "winter",      "spring",        "autumn",       "flower",
    "lovely",       "loveme",        "iloveyou1",   "iloveu",        "fuckyou",      "696969",
    "11111111",     "00000000",      "12341234",    "87654321",      "1111111111",   "0987654321",
    "9876543210",   "147258369",     "159753",      "741852963",     "789456123",    "123654",
    "147258",       "987654321",     "abcd1234",    "abcdef",        "abcdefg",      "abcdefgh",
    "abc12345",     "a123456",       "aa123456",    "qwerty1",       "qwertyui",     "q1w2e3r4",
    "q1w2e3r4t5",   "zaq12wsx",      "1qazxsw2",    "asdf1234",      "asdfasdf",     "qweasd",
    "qweasdzxc",    "zxcvbn",        "changeme",    "default",       "guest",        "test",
    "test123",      "testing",       "demo",        "user",          "temp",         "temppass",
    "secret123",    "letmein1",      "welcome1!",   "computer",      "internet",     "samsung",
    "google",       "apple",         "microsoft",   "linux",         "ubuntu",       "oracle",
    "cisco",        "huawei",        "london",      "berlin",        "paris",        "america",
    "canada",       "india",         "1234qwer",    "123abc",        "abc123456",    "123456a",
    "123456q",      "1234abcd",      "football1",   "monkey1",       "dragon1",      "baseball1",
    "superman1",    "princess1",     "sunshine1",   "shadow1",       "master1",      "12345678910",
    "123456789a",   "1234567890a",   "1a2b3c4d",    "a1b2c3d4",      "qwerty12345",  "1qaz!qaz",
    "!qaz2wsx",     "zaq1@wsx",      "password2",   "password3",     "blink182",     "matrix",
    "merlin",       "corvette",      "ferrari",     "porsche",       "yankees",      "dallas",
    "chelsea",      "arsenal",       "liverpool",   "barcelona",     "realmadrid",   "iloveyou2",
    "babygirl",     "lovelove",      "angel",       "friends",       "family",       "jesus",
    "jesus1",       "blessed",       "heaven",      "123456789q",    "asd123",       "1password",
    "mypassword",   "mypass",        "pass",        "pass123",       "pass1234",     "passpass",
    "changeme123",  "qwertyuiop123", "letmein123",  "welcome2024",   "welcome2025",  "password2024",
    "password2025", "callcenter",    "callcenter1", "switchboard",   "switchboard1",
};

absl::Status Invalid(std::string_view field, std::string_view what) {
  std::string message;
  message.reserve(field.size() + 2 + what.size());
  message.append(field).append(": ").append(what);
  return absl::InvalidArgumentError(message);
}

// Decodes UTF-8 strictly (no overlong forms, no surrogates, nothing above U+10FFFF); nullopt when
// `text` is not valid UTF-8.
std::optional<std::vector<char32_t>> DecodeUtf8(std::string_view text) {
  std::vector<char32_t> out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    const auto b0 = static_cast<unsigned char>(text[i]);
    int extra;
    char32_t cp;
    char32_t min;
    if (b0 < 0x80) {
      out.push_back(b0);
      ++i;
      continue;
    } else if ((b0 & 0xe0) == 0xc0) {
      extra = 1;
      cp = b0 & 0x1f;
      min = 0x80;
    } else if ((b0 & 0xf0) == 0xe0) {
      extra = 2;
      cp = b0 & 0x0f;
      min = 0x800;
    } else if ((b0 & 0xf8) == 0xf0) {
      extra = 3;
      cp = b0 & 0x07;
      min = 0x10000;
    } else {
      return std::nullopt;
    }
    if (text.size() - i <= static_cast<size_t>(extra)) return std::nullopt;
    for (int k = 1; k <= extra; ++k) {
      const auto b = static_cast<unsigned char>(text[i + k]);
      if ((b & 0xc0) != 0x80) return std::nullopt;
      cp = (cp << 6) | (b & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return std::nullopt;
    out.push_back(cp);
    i += extra + 1;
  }
  return out;
}

size_t CodePointCount(std::string_view utf8_text) {
  // Every byte that is not a continuation byte starts a code point (the text is valid UTF-8 here).
  return static_cast<size_t>(std::count_if(utf8_text.begin(), utf8_text.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xc0) != 0x80;
  }));
}

bool IsControl(char32_t cp) { return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f); }

bool IsCommon(const std::string& lowered) {
  return std::find(std::begin(kCommonPasswords), std::end(kCommonPasswords), lowered) !=
         std::end(kCommonPasswords);
}

bool IsRepeatedCharacter(const std::vector<char32_t>& cps) {
  return cps.size() >= 2 &&
         std::all_of(cps.begin(), cps.end(), [&](char32_t cp) { return cp == cps.front(); });
}

// One step of a run: the next letter or digit in `direction` (+1 or -1); digits wrap (9 -> 0).
bool IsNextInRun(char32_t prev, char32_t next, int direction) {
  const bool digits = prev >= '0' && prev <= '9' && next >= '0' && next <= '9';
  const bool letters = prev >= 'a' && prev <= 'z' && next >= 'a' && next <= 'z';
  if (digits) {
    return static_cast<int>((next - '0' + 10 - (prev - '0')) % 10) == (direction + 10) % 10;
  }
  return letters && static_cast<int>(next) - static_cast<int>(prev) == direction;
}

bool IsSimpleRun(const std::vector<char32_t>& lowered_cps) {
  if (lowered_cps.size() < 3) return false;
  for (int direction : {1, -1}) {
    bool run = true;
    for (size_t i = 1; i < lowered_cps.size() && run; ++i) {
      run = IsNextInRun(lowered_cps[i - 1], lowered_cps[i], direction);
    }
    if (run) return true;
  }
  return false;
}

// True when `lowered_password` contains `value` (ASCII-lowercased) and `value` has at least
// `min_code_points` code points.
bool ContainsPersonal(const std::string& lowered_password, std::string_view value,
                      size_t min_code_points) {
  if (CodePointCount(value) < min_code_points) return false;
  const std::string lowered_value =
      absl::AsciiStrToLower(absl::string_view(value.data(), value.size()));
  return lowered_password.find(lowered_value) != std::string::npos;
}

std::string_view EmailLocalPart(std::string_view email) {
  const size_t at = email.rfind('@');
  return at == std::string_view::npos ? email : email.substr(0, at);
}

}  // namespace

absl::Status CheckPassword(std::string_view password, int min_length, const PasswordContext& ctx,
                           std::string_view field) {
  if (password.size() > kMaxPasswordBytes) {
    return Invalid(field, "must be at most " + std::to_string(kMaxPasswordBytes) + " bytes long");
  }
  const std::optional<std::vector<char32_t>> cps = DecodeUtf8(password);
  if (!cps.has_value()) return Invalid(field, "must be valid UTF-8 text");
  if (std::any_of(cps->begin(), cps->end(), IsControl)) {
    return Invalid(field, "must not contain control characters");
  }
  if (cps->empty()) return Invalid(field, "must not be empty");
  if (min_length > 0 && cps->size() < static_cast<size_t>(min_length)) {
    return Invalid(field, "must be at least " + std::to_string(min_length) + " characters");
  }

  // The two pattern rules come before the list, whose entries they would also catch
  // ("1111111111", "123456789"), because their messages say more about what to change.
  if (IsRepeatedCharacter(*cps)) return Invalid(field, "must not be one character repeated");
  std::vector<char32_t> lowered_cps = *cps;
  for (char32_t& cp : lowered_cps) {
    if (cp >= 'A' && cp <= 'Z') cp = cp - 'A' + 'a';
  }
  if (IsSimpleRun(lowered_cps)) {
    return Invalid(field, "must not be a simple sequence such as abcdef or 987654");
  }
  const std::string lowered =
      absl::AsciiStrToLower(absl::string_view(password.data(), password.size()));
  if (IsCommon(lowered)) return Invalid(field, "is one of the most common passwords");

  if (ContainsPersonal(lowered, ctx.login_name, 3)) {
    return Invalid(field, "must not contain your login name");
  }
  if (ContainsPersonal(lowered, EmailLocalPart(ctx.email), 3)) {
    return Invalid(field, "must not contain your email address");
  }
  if (ContainsPersonal(lowered, ctx.first_name, 4) || ContainsPersonal(lowered, ctx.last_name, 4)) {
    return Invalid(field, "must not contain your name");
  }
  return absl::OkStatus();
}

absl::Status CheckPasswordConfirmation(std::string_view password, std::string_view confirmation,
                                       std::string_view field) {
  if (confirmation.empty() || confirmation == password) return absl::OkStatus();
  return Invalid(field, "does not match the password");
}

}  // namespace sb::identity
