#pragma once

// What libs/phone knows about countries and their telephone numbering:
//
// - the ITU-T E.164 country calling codes in service (1 to 3 digits, prefix-free), used to check
//   numbers written with "+";
// - for the countries we read national numbers of (the EU/EEA, GB, CH, NANP, RU/KZ, UA, TR, IL,
//   AU, NZ, JP, CN, IN, BR, MX, ZA, AE, SA, EG and European neighbours): the international prefixes
//   ("00", "011", "810"), the national trunk prefixes ("0", "06" in Hungary, "8" in Russia, "1"
//   in NANP countries) and the bounds of the national significant number's length;
// - the ISO 3166-1 alpha-2 codes (and XK for Kosovo), for validating country fields.
//
// Limits: lengths are checked per country where the table knows them, not full numbering plans
// (which area codes exist, which ranges are mobile). NANP numbers are also checked for the
// NPA/NXX rule (area code and exchange start with 2-9). Carrier-selection codes inside national
// numbers (Brazil's "0 XX ..."), Mexico's old "+52 1" mobile prefix and vanity letters are not
// read. Numbers of countries outside the detailed table are read in international form only
// ("+..." or "00...").
//
// The tables are immutable; every function is thread-safe.

#include <string_view>
#include <vector>

namespace sb::phone {

struct CountryInfo {
  std::string_view iso;           // ISO 3166-1 alpha-2, upper case: "HU"
  std::string_view calling_code;  // "36"
  // Dialled before a country calling code from this country, longest first: "00", "011".
  std::vector<std::string_view> international_prefixes;
  // Dialled before a national number inside the country, longest first; empty when numbers are
  // dialled as they are (IT, ES, PL, ...). The first one is the usual one.
  std::vector<std::string_view> trunk_prefixes;
  // Bounds of the national significant number (after the calling code), in digits.
  int min_length = 0;
  int max_length = 0;
};

// The countries whose national numbers can be read, in a stable order.
const std::vector<CountryInfo>& Countries();

// The entry for an ISO alpha-2 code (case-insensitive), or nullptr when national numbers of that
// country are not read.
const CountryInfo* FindCountry(std::string_view iso);

// The length bounds for numbers under `calling_code`: the first table entry with that code
// (numbers of countries sharing a code, like US and CA under "1", have the same bounds), or
// nullptr when the table has none.
const CountryInfo* CountryForCallingCode(std::string_view calling_code);

// The country calling code that `digits` (an international number without "+") starts with, or
// "" when it starts with none in service.
std::string_view CallingCodePrefix(std::string_view digits);

// Every country calling code in service, ascending as text.
const std::vector<std::string_view>& CallingCodes();

// True for an ISO 3166-1 alpha-2 code in upper case ("HU"), or "XK" (Kosovo, a user-assigned code
// that CLDR and libphonenumber use).
bool IsCountryCode(std::string_view iso);

}  // namespace sb::phone
