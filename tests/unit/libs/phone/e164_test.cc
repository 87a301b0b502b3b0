// E.164 parsing and normalisation, and the country tables behind it.

#include <set>
#include <string>

#include <catch2/catch.hpp>

#include "libs/app/rpc_errors.h"
#include "libs/phone/countries.h"
#include "libs/phone/e164.h"
#include "switchboard/common/v1/errors.pb.h"

namespace sb::phone {
namespace {

namespace cv1 = ::switchboard::common::v1;

std::string Norm(std::string_view input, std::string_view country) {
  absl::StatusOr<std::string> r = NormalizeE164(input, country, "phone");
  if (!r.ok()) return "error: " + std::string(r.status().message());
  return *r;
}

// The reason of the FieldViolation that a refused number carries, after checking that the error
// is InvalidArgument naming `field`.
std::string Reason(std::string_view input, std::string_view country,
                   std::string_view field = "contact.phone_numbers[0].number") {
  absl::StatusOr<std::string> r = NormalizeE164(input, country, field);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(std::string(r.status().message()).rfind(std::string(field) + ": ", 0) == 0);
  auto payload = r.status().GetPayload(app::kErrorDetailsPayloadUrl);
  REQUIRE(payload.has_value());
  cv1::ErrorDetails details;
  REQUIRE(details.ParseFromString(std::string(*payload)));
  REQUIRE(details.details_size() == 1);
  CHECK(details.details(0).field_violation().field() == field);
  return details.details(0).field_violation().reason();
}

TEST_CASE("The three Hungarian ways of writing a number give one E.164", "[phone]") {
  CHECK(Norm("+36 1 234 5678", "HU") == "+3612345678");
  CHECK(Norm("0036 1 234 5678", "HU") == "+3612345678");
  CHECK(Norm("06 1 234 5678", "HU") == "+3612345678");
  CHECK(Norm("06-1-234-5678", "hu") == "+3612345678");
  CHECK(Norm("(06 1) 234 5678", "HU") == "+3612345678");
  CHECK(Norm("1 234 5678", "HU") == "+3612345678");  // without the trunk prefix
  // Mobile numbers: 9 digits after +36.
  CHECK(Norm("06 20 123 4567", "HU") == "+36201234567");
  CHECK(Norm("+36 (20) 123-4567", "HU") == "+36201234567");
  CHECK(Norm("+36 06 20 123 4567", "") == "+36201234567");
  // +numbers and 00 numbers need no default country.
  CHECK(Norm("+36 1 234 5678", "") == "+3612345678");
  CHECK(Norm("0036 1 234 5678", "") == "+3612345678");
  CHECK(Norm("+36 1 234 5678", "US") == "+3612345678");
}

TEST_CASE("North American numbers in their usual formats", "[phone]") {
  CHECK(Norm("(212) 555-0100", "US") == "+12125550100");
  CHECK(Norm("1-212-555-0100", "US") == "+12125550100");
  CHECK(Norm("212.555.0100", "US") == "+12125550100");
  CHECK(Norm("+1 212 555 0100", "") == "+12125550100");
  CHECK(Norm("416 555 0199", "CA") == "+14165550199");
  CHECK(Norm("011 44 20 7946 0958", "US") == "+442079460958");
  // From the US 00 is not an international prefix, and 0 is no trunk prefix.
  CHECK(Reason("00 44 20 7946 0958", "US") == "TOO_LONG");
  CHECK(Reason("(112) 555-0100", "US") == "NOT_E164");  // area codes start with 2-9
  CHECK(Reason("(212) 155-0100", "US") == "NOT_E164");  // exchanges too
  CHECK(Reason("212 555 010", "US") == "TOO_SHORT");
  CHECK(Reason("+1 212 555 01000", "") == "TOO_LONG");
}

TEST_CASE("German and other European national numbers", "[phone]") {
  CHECK(Norm("030 1234567", "DE") == "+49301234567");
  CHECK(Norm("030/1234567", "DE") == "+49301234567");
  CHECK(Norm("+49 (0)30 1234567", "") == "+49301234567");
  CHECK(Norm("0049 30 1234567", "DE") == "+49301234567");
  CHECK(Norm("020 7946 0958", "GB") == "+442079460958");
  CHECK(Norm("+44 (0)20 7946 0958", "HU") == "+442079460958");
  CHECK(Norm("01 23 45 67 89", "FR") == "+33123456789");
  CHECK(Norm("044 668 18 00", "CH") == "+41446681800");
  CHECK(Norm("0664 1234567", "AT") == "+436641234567");
  // Italian numbers keep their 0.
  CHECK(Norm("06 1234 5678", "IT") == "+390612345678");
  CHECK(Norm("+39 06 1234 5678", "") == "+390612345678");
  // Spain and Poland have no trunk prefix.
  CHECK(Norm("912 345 678", "ES") == "+34912345678");
  CHECK(Norm("512 345 678", "PL") == "+48512345678");
}

TEST_CASE("Russian numbers with the 8 trunk prefix and the 810 international prefix", "[phone]") {
  CHECK(Norm("8 (495) 123-45-67", "RU") == "+74951234567");
  CHECK(Norm("495 123 45 67", "RU") == "+74951234567");
  // St Petersburg's code starts with 8: it is not a trunk prefix there.
  CHECK(Norm("812 123 45 67", "RU") == "+78121234567");
  CHECK(Norm("8 812 123 45 67", "RU") == "+78121234567");
  CHECK(Norm("+7 812 123 45 67", "") == "+78121234567");
  CHECK(Norm("810 36 1 234 5678", "RU") == "+3612345678");
}

TEST_CASE("Numbers of the other countries in the table", "[phone]") {
  CHECK(Norm("044 123 4567", "UA") == "+380441234567");
  CHECK(Norm("0212 123 45 67", "TR") == "+902121234567");
  CHECK(Norm("03-123-4567", "IL") == "+97231234567");
  CHECK(Norm("014 44 20 7946 0958", "IL") == "+442079460958");
  CHECK(Norm("(02) 9876 5432", "AU") == "+61298765432");
  CHECK(Norm("0011 36 1 234 5678", "AU") == "+3612345678");
  CHECK(Norm("09 123 4567", "NZ") == "+6491234567");
  CHECK(Norm("03-1234-5678", "JP") == "+81312345678");
  CHECK(Norm("010 36 1 234 5678", "JP") == "+3612345678");
  CHECK(Norm("010 1234 5678", "CN") == "+861012345678");
  CHECK(Norm("098765 43210", "IN") == "+919876543210");
  CHECK(Norm("(11) 91234-5678", "BR") == "+5511912345678");
  CHECK(Norm("0 11 91234-5678", "BR") == "+5511912345678");
  CHECK(Norm("0021 36 1 234 5678", "BR") == "+3612345678");
  CHECK(Norm("55 1234 5678", "MX") == "+525512345678");
  CHECK(Norm("01 55 1234 5678", "MX") == "+525512345678");
  CHECK(Norm("011 123 4567", "ZA") == "+27111234567");
}

TEST_CASE("tel URIs and unusual separators", "[phone]") {
  CHECK(Norm("tel:+36-1-234-5678", "") == "+3612345678");
  CHECK(Norm("TEL:+36-1-234-5678;ext=12", "") == "+3612345678");
  CHECK(Norm("tel:2345678;phone-context=+361", "") == "+3612345678");
  CHECK(Norm("tel:06-1-234-5678;phone-context=example.com", "HU") == "+3612345678");
  CHECK(Norm("  +36\t1 234 5678  ", "") == "+3612345678");
  CHECK(Norm("+36\xC2\xA0"
             "1\xE2\x80\xAF"
             "234\xE2\x80\x93"
             "5678",
             "") == "+3612345678");
  CHECK(Norm("+36.1.234.5678", "") == "+3612345678");
}

TEST_CASE("Refused numbers name the field and say why", "[phone]") {
  CHECK(Reason("", "HU") == "REQUIRED");
  CHECK(Reason("   ", "HU") == "REQUIRED");
  CHECK(Reason("+36 1 CALL NOW", "HU") == "NOT_E164");
  CHECK(Reason("1-800-FLOWERS", "US") == "NOT_E164");
  CHECK(Reason("+36 1 234 5678 ext. 12", "HU") == "NOT_E164");
  CHECK(Reason("36+1 234 5678", "HU") == "NOT_E164");
  CHECK(Reason("++36 1 234 5678", "HU") == "NOT_E164");
  CHECK(Reason("+36 1 234 5678#", "HU") == "NOT_E164");
  CHECK(Reason("---", "HU") == "NOT_E164");
  CHECK(Reason("+36 1 234", "HU") == "TOO_SHORT");
  CHECK(Reason("06 1 234 56789 0", "HU") == "TOO_LONG");
  CHECK(Reason("+49 30 1234 5678 9012 3", "") == "TOO_LONG");
  CHECK(Reason("+12", "") == "TOO_SHORT");
  CHECK(Reason("+", "") == "NOT_E164");
  CHECK(Reason(std::string(100, '1'), "HU") == "TOO_LONG");
  // 0 is not where a Hungarian national number starts: the user meant 06.
  CHECK(Reason("0 1 234 5678", "HU") == "NOT_E164");
  CHECK(Reason("+36 0 1 234 5678", "") == "NOT_E164");
  CHECK(Reason("+999 1234 5678", "") == "UNKNOWN_COUNTRY_CODE");
  CHECK(Reason("+0 1234 5678", "") == "UNKNOWN_COUNTRY_CODE");
  CHECK(Reason("0099 1234 5678", "HU") == "UNKNOWN_COUNTRY_CODE");
  CHECK(Reason("06 1 234 5678", "") == "NEEDS_COUNTRY");
  CHECK(Reason("(212) 555-0100", "") == "NEEDS_COUNTRY");
  CHECK(Reason("0712 345678", "KE") == "NEEDS_COUNTRY");  // not in the national table
  CHECK(Reason("06 1 234 5678", "hungary") == "NEEDS_COUNTRY");
  CHECK(Reason("+36 1 234", "HU", "agent.phones[3].number") == "TOO_SHORT");
}

TEST_CASE("Numbers outside the national table are checked only against E.164", "[phone]") {
  CHECK(Norm("+254 712 345678", "") == "+254712345678");  // Kenya
  CHECK(Norm("+683 4002", "") == "+6834002");             // Niue: 7 digits
  CHECK(Norm("+800 1234 5678", "") == "+80012345678");    // international freephone
  CHECK(Reason("+683 400", "") == "TOO_SHORT");
  CHECK(Reason("+254 1234 5678 9012 34", "") == "TOO_LONG");
}

TEST_CASE("IsE164 accepts normalised numbers only", "[phone]") {
  CHECK(IsE164("+3612345678"));
  CHECK(IsE164("+12125550100"));
  CHECK(IsE164("+390612345678"));
  CHECK(IsE164("+78121234567"));
  CHECK(IsE164("+6834002"));
  CHECK_FALSE(IsE164(""));
  CHECK_FALSE(IsE164("+"));
  CHECK_FALSE(IsE164("3612345678"));
  CHECK_FALSE(IsE164("+36 1 234 5678"));
  CHECK_FALSE(IsE164("+36-12345678"));
  CHECK_FALSE(IsE164("+0612345678"));
  CHECK_FALSE(IsE164("+36012345678"));       // trunk prefix left in
  CHECK_FALSE(IsE164("+361234567"));         // too short for Hungary
  CHECK_FALSE(IsE164("+3612345678901"));     // too long for Hungary
  CHECK_FALSE(IsE164("+9991234567"));        // no such calling code
  CHECK_FALSE(IsE164("+11125550100"));       // not NANP
  CHECK_FALSE(IsE164("+1234567890123456"));  // 16 digits
  CHECK_FALSE(IsE164("+683400"));
}

TEST_CASE("NormalizeE164 returns E.164 input unchanged and its output passes IsE164", "[phone]") {
  const char* inputs[][2] = {
      {"06 1 234 5678", "HU"},  {"+44 (0)20 7946 0958", ""}, {"8 812 123 45 67", "RU"},
      {"(212) 555-0100", "US"}, {"06 1234 5678", "IT"},      {"0011 61 2 9876 5432", "AU"},
      {"+683 4002", ""},        {"03-1234-5678", "JP"},      {"0 11 91234-5678", "BR"},
  };
  for (const auto& [input, country] : inputs) {
    INFO(input << " in " << country);
    absl::StatusOr<std::string> once = NormalizeE164(input, country, "phone");
    REQUIRE(once.ok());
    CHECK(IsE164(*once));
    // Read again under any default country, the E.164 form stays what it is.
    for (const char* other : {"", "HU", "US", "RU", "IT"}) {
      absl::StatusOr<std::string> twice = NormalizeE164(*once, other, "phone");
      REQUIRE(twice.ok());
      CHECK(*twice == *once);
    }
  }
}

TEST_CASE("E164Prefixes reads the start of a number typed into a search box", "[phone]") {
  using V = std::vector<std::string>;
  CHECK(E164Prefixes("+36 1 23", "") == V{"+36123"});
  CHECK(E164Prefixes("+36 1 23", "HU") == V{"+36123"});
  CHECK(E164Prefixes("0036 1 23", "HU") == V{"+36123"});
  CHECK(E164Prefixes("06 1 23", "HU") == V{"+36123"});
  CHECK(E164Prefixes("1 23", "HU") == V{"+36123", "+123"});
  CHECK(E164Prefixes("0036 1 23", "") == V{"+36123"});
  CHECK(E164Prefixes("3612", "") == V{"+3612"});
  CHECK(E164Prefixes("011 44 20", "US") == V{"+4420"});
  CHECK(E164Prefixes("1 212 555", "US") == V{"+1212555", "+11212555"});
  CHECK(E164Prefixes("8 812", "RU") == V{"+7812", "+78812"});
  CHECK(E164Prefixes("06", "HU").empty());  // only the trunk prefix so far
  CHECK(E164Prefixes("0", "HU").empty());
  CHECK(E164Prefixes("Kovács", "HU").empty());
  CHECK(E164Prefixes("06 1 Kovács", "HU").empty());
  CHECK(E164Prefixes("", "HU").empty());
}

TEST_CASE("DigitsOnly keeps the ASCII digits", "[phone]") {
  CHECK(DigitsOnly("+36 (1) 234-5678") == "3612345678");
  CHECK(DigitsOnly("Kovács 06/20") == "0620");
  CHECK(DigitsOnly("") == "");
}

TEST_CASE("Calling codes are sorted and prefix-free and cover the table", "[phone]") {
  const auto& codes = CallingCodes();
  CHECK(codes.size() > 200);
  for (size_t i = 1; i < codes.size(); ++i) {
    INFO(codes[i - 1] << " " << codes[i]);
    CHECK(codes[i - 1] < codes[i]);
  }
  for (std::string_view a : codes) {
    CHECK(!a.empty());
    CHECK(a.size() <= 3);
    CHECK(a[0] != '0');
    for (std::string_view b : codes) {
      if (a != b) CHECK_FALSE(b.substr(0, a.size()) == a);
    }
  }
  CHECK(CallingCodePrefix("3612345678") == "36");
  CHECK(CallingCodePrefix("12125550100") == "1");
  CHECK(CallingCodePrefix("380441234567") == "380");
  CHECK(CallingCodePrefix("999") == "");
  CHECK(CallingCodePrefix("") == "");
  std::set<std::string_view> isos;
  for (const CountryInfo& c : Countries()) {
    INFO(c.iso);
    CHECK(isos.insert(c.iso).second);
    CHECK(IsCountryCode(c.iso));
    CHECK(CallingCodePrefix(std::string(c.calling_code) + "123") == c.calling_code);
    CHECK(!c.international_prefixes.empty());
    CHECK(c.min_length >= 4);
    CHECK(c.min_length <= c.max_length);
    CHECK(c.calling_code.size() + c.max_length <= static_cast<size_t>(kMaxE164Digits));
    for (size_t i = 1; i < c.international_prefixes.size(); ++i) {
      CHECK(c.international_prefixes[i - 1].size() >= c.international_prefixes[i].size());
    }
    // Countries sharing a calling code share its bounds (CountryForCallingCode takes the first).
    const CountryInfo* first = CountryForCallingCode(c.calling_code);
    REQUIRE(first != nullptr);
    CHECK(first->min_length == c.min_length);
    CHECK(first->max_length == c.max_length);
  }
  for (const char* required :
       {"AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR",
        "HU", "IE", "IT", "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK",
        "SI", "ES", "SE", "IS", "LI", "NO", "GB", "CH", "US", "CA", "RU", "UA",
        "TR", "IL", "AU", "NZ", "JP", "CN", "IN", "BR", "MX", "ZA"}) {
    INFO(required);
    CHECK(FindCountry(required) != nullptr);
  }
  CHECK(FindCountry("hu") == FindCountry("HU"));
  CHECK(FindCountry("XX") == nullptr);
  CHECK(FindCountry("") == nullptr);
}

TEST_CASE("IsCountryCode knows the ISO 3166-1 alpha-2 codes", "[phone]") {
  CHECK(IsCountryCode("HU"));
  CHECK(IsCountryCode("ZW"));
  CHECK(IsCountryCode("AD"));
  CHECK(IsCountryCode("XK"));
  CHECK_FALSE(IsCountryCode("hu"));
  CHECK_FALSE(IsCountryCode("UK"));  // the United Kingdom is GB
  CHECK_FALSE(IsCountryCode("XX"));
  CHECK_FALSE(IsCountryCode("HUN"));
  CHECK_FALSE(IsCountryCode(""));
  int count = 0;
  for (char a = 'A'; a <= 'Z'; ++a) {
    for (char b = 'A'; b <= 'Z'; ++b) count += IsCountryCode(std::string{a, b});
  }
  CHECK(count == 250);  // 249 assigned codes and XK
}

}  // namespace
}  // namespace sb::phone
