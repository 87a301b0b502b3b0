#include "libs/phone/e164.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "libs/app/rpc_errors.h"
#include "libs/common/status_macros.h"
#include "libs/phone/countries.h"

namespace sb::phone {
namespace {

// Longer inputs are refused before they are read (a number with every separator doubled fits).
constexpr size_t kMaxInputChars = 80;

// Separators that are more than one byte in UTF-8.
constexpr std::string_view kWideSeparators[] = {
    "\xC2\xA0",      // U+00A0 no-break space
    "\xE2\x80\x89",  // U+2009 thin space
    "\xE2\x80\xAF",  // U+202F narrow no-break space
    "\xE2\x80\x90",  // U+2010 hyphen
    "\xE2\x80\x91",  // U+2011 non-breaking hyphen
    "\xE2\x80\x93",  // U+2013 en dash
    "\xE2\x80\x94",  // U+2014 em dash
};

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

absl::string_view Absl(std::string_view s) { return absl::string_view(s.data(), s.size()); }

bool StartsWithIgnoreCase(std::string_view s, std::string_view prefix) {
  return absl::StartsWithIgnoreCase(Absl(s), Absl(prefix));
}

std::string_view Trim(std::string_view s) {
  const absl::string_view t = absl::StripAsciiWhitespace(Absl(s));
  return std::string_view(t.data(), t.size());
}

struct Scanned {
  bool plus = false;
  std::string digits;
};

absl::StatusOr<Scanned> Scan(std::string_view s, std::string_view field) {
  Scanned out;
  for (size_t i = 0; i < s.size();) {
    const char c = s[i];
    if (IsDigit(c)) {
      out.digits.push_back(c);
      ++i;
      continue;
    }
    if (c == ' ' || c == '\t' || c == '.' || c == '-' || c == '/' || c == '(' || c == ')') {
      ++i;
      continue;
    }
    if (c == '+') {
      if (out.plus || !out.digits.empty()) {
        return app::FieldError(field, "NOT_E164", "'+' may only stand before the country code");
      }
      out.plus = true;
      ++i;
      continue;
    }
    bool separator = false;
    for (std::string_view wide : kWideSeparators) {
      if (s.substr(i, wide.size()) == wide) {
        i += wide.size();
        separator = true;
        break;
      }
    }
    if (separator) continue;
    if (absl::ascii_isalpha(static_cast<unsigned char>(c))) {
      return app::FieldError(field, "NOT_E164",
                             "must be a phone number in digits (no letters or extensions)");
    }
    return app::FieldError(field, "NOT_E164",
                           "must be a phone number: digits, optionally with '+' in front and "
                           "spaces or . - / ( ) between them");
  }
  return out;
}

enum class Problem { kNone, kTooShort, kTooLong, kLeadingZero, kNotNanp };

bool HasTrunkPrefix(const CountryInfo& c) { return !c.trunk_prefixes.empty(); }

bool Fits(size_t length, const CountryInfo& c) {
  return static_cast<int>(length) >= c.min_length && static_cast<int>(length) <= c.max_length;
}

// What is wrong with national significant number `nsn` under `cc` (`info`: the table's entry for
// the code, or null).
Problem CheckNsn(std::string_view cc, std::string_view nsn, const CountryInfo* info) {
  const size_t total = cc.size() + nsn.size();
  if (total > static_cast<size_t>(kMaxE164Digits)) return Problem::kTooLong;
  if (info != nullptr) {
    if (static_cast<int>(nsn.size()) < info->min_length) return Problem::kTooShort;
    if (static_cast<int>(nsn.size()) > info->max_length) return Problem::kTooLong;
    // Where a trunk prefix exists it starts with 0 or is not 0 at all, and national numbers
    // never start with 0: a 0 there is a mistyped prefix.
    if (HasTrunkPrefix(*info) && nsn[0] == '0') return Problem::kLeadingZero;
    // NANP: NPA-NXX-XXXX with N = 2..9.
    if (cc == "1" && (nsn[0] < '2' || nsn[3] < '2')) return Problem::kNotNanp;
  }
  if (total < static_cast<size_t>(kMinE164Digits)) return Problem::kTooShort;
  return Problem::kNone;
}

// Drops a trunk prefix from the front of `nsn`: a prefix that starts with 0 always (national
// numbers never do), another one ("1", "8") only when the number is too long with it and fits
// without it ("+7 812 ..." is St Petersburg, "8 812 ..." the same number dialled nationally).
std::string_view StripTrunkPrefix(std::string_view nsn, const CountryInfo& info) {
  for (std::string_view tp : info.trunk_prefixes) {
    if (nsn.size() <= tp.size() || nsn.substr(0, tp.size()) != tp) continue;
    if (tp[0] == '0' || (!Fits(nsn.size(), info) && Fits(nsn.size() - tp.size(), info))) {
      return nsn.substr(tp.size());
    }
  }
  return nsn;
}

absl::Status ProblemError(Problem problem, std::string_view cc, std::string_view nsn,
                          const CountryInfo* info, std::string_view field) {
  const std::string code = absl::StrCat("+", std::string(cc));
  switch (problem) {
    case Problem::kNone:
      return absl::OkStatus();
    case Problem::kTooShort:
      if (info != nullptr && static_cast<int>(nsn.size()) < info->min_length) {
        return app::FieldError(field, "TOO_SHORT",
                               absl::StrCat("is too short for a number of ", code, " (at least ",
                                            info->min_length, " digits after ", code, ")"));
      }
      return app::FieldError(field, "TOO_SHORT",
                             absl::StrCat("is too short: a phone number has at least ",
                                          kMinE164Digits, " digits with the country code"));
    case Problem::kTooLong:
      if (info != nullptr && static_cast<int>(nsn.size()) > info->max_length) {
        return app::FieldError(field, "TOO_LONG",
                               absl::StrCat("is too long for a number of ", code, " (at most ",
                                            info->max_length, " digits after ", code, ")"));
      }
      return app::FieldError(
          field, "TOO_LONG",
          absl::StrCat("is too long: E.164 numbers have at most ", kMaxE164Digits, " digits"));
    case Problem::kLeadingZero:
      return app::FieldError(
          field, "NOT_E164",
          absl::StrCat("is not a number of ", code, ": the national number cannot start with 0",
                       " (the trunk prefix there is ", std::string(info->trunk_prefixes[0]), ")"));
    case Problem::kNotNanp:
      return app::FieldError(field, "NOT_E164",
                             "is not a North American number: the area code and the exchange "
                             "start with 2-9");
  }
  return absl::OkStatus();
}

// `intl`: the digits after "+" or after an international prefix.
absl::StatusOr<std::string> FromInternational(std::string_view intl, std::string_view field) {
  if (intl.empty()) return app::FieldError(field, "TOO_SHORT", "has no digits after the '+'");
  if (intl.size() > static_cast<size_t>(kMaxE164Digits) + 2) {
    return app::FieldError(
        field, "TOO_LONG",
        absl::StrCat("is too long: E.164 numbers have at most ", kMaxE164Digits, " digits"));
  }
  const std::string_view cc = CallingCodePrefix(intl);
  if (cc.empty()) {
    return app::FieldError(field, "UNKNOWN_COUNTRY_CODE",
                           absl::StrCat("+", std::string(intl.substr(0, 3)),
                                        "... does not start with a country calling code"));
  }
  const CountryInfo* info = CountryForCallingCode(cc);
  std::string_view nsn = intl.substr(cc.size());
  if (nsn.empty()) {
    return app::FieldError(field, "TOO_SHORT",
                           absl::StrCat("has no number after the country code +", std::string(cc)));
  }
  // "+44 (0)20 ...", "+36 06 1 ...".
  if (info != nullptr) nsn = StripTrunkPrefix(nsn, *info);
  if (Problem p = CheckNsn(cc, nsn, info); p != Problem::kNone) {
    return ProblemError(p, cc, nsn, info, field);
  }
  return absl::StrCat("+", std::string(cc), std::string(nsn));
}

absl::StatusOr<std::string> FromNational(std::string_view digits, const CountryInfo& country,
                                         std::string_view field) {
  const std::string_view nsn = StripTrunkPrefix(digits, country);
  if (Problem p = CheckNsn(country.calling_code, nsn, &country); p != Problem::kNone) {
    return ProblemError(p, country.calling_code, nsn, &country, field);
  }
  return absl::StrCat("+", std::string(country.calling_code), std::string(nsn));
}

// The part of a "tel:" URI before its parameters; a global phone-context goes to `context`.
std::string_view SplitTelUri(std::string_view uri, std::string_view& context) {
  const size_t semi = uri.find(';');
  if (semi == std::string_view::npos) return uri;
  std::string_view params = uri.substr(semi + 1);
  while (!params.empty()) {
    const size_t next = params.find(';');
    const std::string_view param = params.substr(0, next);
    constexpr std::string_view kContext = "phone-context=";
    if (StartsWithIgnoreCase(param, kContext)) context = param.substr(kContext.size());
    if (next == std::string_view::npos) break;
    params.remove_prefix(next + 1);
  }
  return uri.substr(0, semi);
}

}  // namespace

absl::StatusOr<std::string> NormalizeE164(std::string_view input, std::string_view default_country,
                                          std::string_view field) {
  std::string_view s = Trim(input);
  if (s.empty()) return app::FieldError(field, "REQUIRED", "is required");
  if (s.size() > kMaxInputChars) {
    return app::FieldError(
        field, "TOO_LONG",
        absl::StrCat("is too long: E.164 numbers have at most ", kMaxE164Digits, " digits"));
  }
  std::string_view context;
  if (StartsWithIgnoreCase(s, "tel:")) s = SplitTelUri(s.substr(4), context);
  SB_ASSIGN_OR_RETURN(Scanned number, Scan(s, field));
  if (number.digits.empty()) return app::FieldError(field, "NOT_E164", "has no digits");
  // A domain name as the context says nothing about the number's country; "+36..." does.
  if (!number.plus && !context.empty() && context[0] == '+') {
    SB_ASSIGN_OR_RETURN(Scanned prefix, Scan(context, field));
    number.digits = prefix.digits + number.digits;
    number.plus = true;
  }
  if (number.plus) return FromInternational(number.digits, field);

  const std::string_view digits = number.digits;
  const CountryInfo* country = FindCountry(default_country);
  if (country != nullptr) {
    for (std::string_view prefix : country->international_prefixes) {
      if (digits.size() > prefix.size() && digits.substr(0, prefix.size()) == prefix) {
        return FromInternational(digits.substr(prefix.size()), field);
      }
    }
    return FromNational(digits, *country, field);
  }
  // ITU-T E.164 recommends 00 as the international prefix and most of the world uses it; without
  // a country to say otherwise, "00" means what it says.
  if (digits.size() > 2 && digits.substr(0, 2) == "00") {
    return FromInternational(digits.substr(2), field);
  }
  if (Trim(default_country).empty()) {
    return app::FieldError(field, "NEEDS_COUNTRY",
                           "is a national number and no default country is set: write it with '+' "
                           "and the country code");
  }
  return app::FieldError(
      field, "NEEDS_COUNTRY",
      absl::StrCat("is a national number of ", std::string(default_country),
                   ", which are not read here: write it with '+' and the country code"));
}

bool IsE164(std::string_view number) {
  if (number.size() < 1 + static_cast<size_t>(kMinE164Digits) ||
      number.size() > 1 + static_cast<size_t>(kMaxE164Digits) || number[0] != '+') {
    return false;
  }
  const std::string_view digits = number.substr(1);
  for (char c : digits) {
    if (!IsDigit(c)) return false;
  }
  const std::string_view cc = CallingCodePrefix(digits);
  if (cc.empty()) return false;
  const std::string_view nsn = digits.substr(cc.size());
  if (nsn.empty()) return false;
  return CheckNsn(cc, nsn, CountryForCallingCode(cc)) == Problem::kNone;
}

std::vector<std::string> E164Prefixes(std::string_view partial, std::string_view default_country) {
  absl::StatusOr<Scanned> scanned = Scan(Trim(partial), "query");
  if (!scanned.ok() || scanned->digits.size() < 2) return {};
  const std::string_view digits = scanned->digits;
  if (scanned->plus) return {absl::StrCat("+", std::string(digits))};
  std::vector<std::string> out;
  auto add = [&out](std::string_view cc, std::string_view rest) {
    if (rest.empty()) return;
    std::string prefix = absl::StrCat("+", std::string(cc), std::string(rest));
    if (std::find(out.begin(), out.end(), prefix) == out.end()) out.push_back(std::move(prefix));
  };
  const CountryInfo* country = FindCountry(default_country);
  if (country == nullptr) {
    if (digits.substr(0, 2) == "00") {
      add("", digits.substr(2));
    } else {
      add("", digits);
    }
    return out;
  }
  for (std::string_view prefix : country->international_prefixes) {
    if (digits.substr(0, prefix.size()) == prefix) {
      add("", digits.substr(prefix.size()));
      return out;
    }
  }
  for (std::string_view tp : country->trunk_prefixes) {
    if (digits.substr(0, tp.size()) != tp) continue;
    add(country->calling_code, digits.substr(tp.size()));
    // A trunk prefix that is not 0 ("8" in Russia) may also be where the number starts.
    if (tp[0] != '0') add(country->calling_code, digits);
    return out;
  }
  add(country->calling_code, digits);
  add("", digits);
  return out;
}

std::string DigitsOnly(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (IsDigit(c)) out.push_back(c);
  }
  return out;
}

}  // namespace sb::phone
