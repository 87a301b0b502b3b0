#pragma once

// E.164 phone numbers: reading what people type into the one canonical form that org stores
// (contacts, agent phones, DIDs) and sip matches ("+" and up to 15 digits).
//
//   SB_ASSIGN_OR_RETURN(std::string e164,
//                       phone::NormalizeE164("06 1 234 5678", "HU", "contact.phone_numbers[0]"));
//   // e164 == "+3612345678"
//
// What NormalizeE164 reads:
// - international form: "+36 1 234 5678", "+44 (0)20 7946 0958" (the "(0)" trunk prefix that
//   some countries write after the calling code is dropped when the number would be too long
//   with it), and with the default country's international prefix: "0036 1 234 5678" (HU),
//   "011 44 20 7946 0958" (US), "810 49 30 1234567" (RU); "00" also without a default country;
// - national form with the default country's trunk prefix or without it: "06 1 234 5678" (HU),
//   "030 1234567" (DE), "1-212-555-0100" and "(212) 555-0100" (US), "8 495 123-45-67" (RU);
// - separators: spaces (also no-break and thin spaces), tabs, '.', '-', '/', '(', ')', en and
//   em dashes; "tel:" URIs (RFC 3966): parameters are dropped, except that a local number with a
//   global phone-context ("tel:1234567;phone-context=+3612") is read under that prefix.
// Letters (vanity numbers, "ext. 12"), other characters, a '+' inside the number, unknown
// calling codes and lengths outside E.164 (7..15 digits) or outside the country's bounds
// (libs/phone/countries.h) are refused.
//
// Thread-safe (pure functions).

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace sb::phone {

// E.164 allows at most 15 digits; we refuse fewer than 7 (the shortest numbers in service, in
// Niue and Tokelau, have a 3-digit code and 4 digits).
inline constexpr int kMinE164Digits = 7;
inline constexpr int kMaxE164Digits = 15;

// Reads `input` as described above; `default_country` (ISO 3166-1 alpha-2, any case, may be
// empty) says how numbers without "+" are read. Returns "+<digits>".
//
// InvalidArgument naming `field` (app::FieldError) with one of the reasons:
//   REQUIRED              nothing but blanks;
//   NOT_E164              characters that are not digits or separators, a misplaced '+';
//   TOO_SHORT / TOO_LONG  too few or too many digits (for E.164, or for the country);
//   UNKNOWN_COUNTRY_CODE  "+" followed by no country calling code in service;
//   NEEDS_COUNTRY         a national number and no default country, or one whose national
//                         numbers this library does not read (write it with "+").
absl::StatusOr<std::string> NormalizeE164(std::string_view input, std::string_view default_country,
                                          std::string_view field);

// Strict check of an already-normalised number: "+", 7..15 ASCII digits not starting with 0, a
// calling code in service, and the length bounds of its country when the table knows them.
// IsE164(*NormalizeE164(...)) always holds, and NormalizeE164 returns such a number unchanged.
bool IsE164(std::string_view number);

// The E.164 prefixes that a partly typed number may be the start of, for search as you type:
// "+36 1 23" -> {"+36123"}; with HU "0036 1 23" and "06 1 23" -> {"+36123"}, "1 23" -> {"+36123",
// "+123"}. Empty when `partial` is not the start of a number (other characters than digits and
// separators) or has fewer than 2 digits.
std::vector<std::string> E164Prefixes(std::string_view partial, std::string_view default_country);

// The ASCII digits of `text`, in order ("+36 (1) 234-5678" -> "3612345678"); for matching phone
// numbers in free-text search.
std::string DigitsOnly(std::string_view text);

}  // namespace sb::phone
