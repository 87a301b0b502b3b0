#include "libs/phone/countries.h"

#include <algorithm>

#include "absl/strings/ascii.h"

namespace sb::phone {
namespace {

// Sources: ITU-T E.164 and its list of assigned country codes (Operational Bulletin annex),
// national numbering plans as summarised by the ITU and libphonenumber's metadata. Bounds are the
// shortest and longest national significant numbers in use, service numbers included.
const std::vector<CountryInfo>& Table() {
  static const auto* kTable = [] {
    const std::vector<std::string_view> k00 = {"00"};
    const std::vector<std::string_view> k0 = {"0"};
    const std::vector<std::string_view> kNone = {};
    auto* t = new std::vector<CountryInfo>{
        // EU and EEA.
        {"AT", "43", k00, k0, 4, 13},
        {"BE", "32", k00, k0, 8, 9},
        {"BG", "359", k00, k0, 6, 9},
        {"HR", "385", k00, k0, 6, 9},
        {"CY", "357", k00, kNone, 8, 8},
        {"CZ", "420", k00, kNone, 9, 12},
        {"DK", "45", k00, kNone, 8, 8},
        {"EE", "372", k00, kNone, 7, 10},
        {"FI", "358", {"990", "994", "999", "00"}, k0, 5, 12},
        {"AX", "358", {"990", "994", "999", "00"}, k0, 5, 12},
        {"FR", "33", k00, k0, 9, 9},
        {"DE", "49", k00, k0, 4, 13},
        {"GR", "30", k00, kNone, 10, 10},
        {"HU", "36", k00, {"06"}, 8, 9},
        {"IE", "353", k00, k0, 7, 10},
        // Italian numbers keep their leading 0 after +39: no trunk prefix.
        {"IT", "39", k00, kNone, 6, 11},
        {"VA", "39", k00, kNone, 6, 11},
        {"LV", "371", k00, kNone, 8, 8},
        // Lithuania moves from trunk prefix 8 to 0; both are read.
        {"LT", "370", k00, {"8", "0"}, 8, 8},
        {"LU", "352", k00, kNone, 4, 11},
        {"MT", "356", k00, kNone, 8, 8},
        {"NL", "31", k00, k0, 7, 10},
        {"PL", "48", k00, kNone, 6, 10},
        {"PT", "351", k00, kNone, 9, 9},
        {"RO", "40", k00, k0, 6, 9},
        {"SK", "421", k00, k0, 6, 9},
        {"SI", "386", k00, k0, 5, 8},
        {"ES", "34", k00, kNone, 9, 9},
        {"SE", "46", k00, k0, 6, 10},
        {"IS", "354", k00, kNone, 7, 9},
        {"LI", "423", k00, kNone, 7, 9},
        {"NO", "47", k00, kNone, 5, 8},
        {"SJ", "47", k00, kNone, 5, 8},
        // The United Kingdom and Crown Dependencies, Switzerland, European neighbours.
        {"GB", "44", k00, k0, 7, 10},
        {"GG", "44", k00, k0, 7, 10},
        {"JE", "44", k00, k0, 7, 10},
        {"IM", "44", k00, k0, 7, 10},
        {"CH", "41", k00, k0, 9, 12},
        {"AD", "376", k00, kNone, 6, 9},
        {"MC", "377", k00, k0, 8, 9},
        {"SM", "378", k00, kNone, 6, 10},
        {"GI", "350", k00, kNone, 8, 8},
        {"FO", "298", k00, kNone, 6, 6},
        {"AL", "355", k00, k0, 6, 9},
        {"BA", "387", k00, k0, 8, 9},
        {"ME", "382", k00, k0, 8, 9},
        {"MK", "389", k00, k0, 8, 8},
        {"RS", "381", k00, k0, 6, 12},
        {"XK", "383", k00, k0, 8, 9},
        {"MD", "373", k00, k0, 8, 8},
        {"UA", "380", k00, k0, 9, 9},
        {"RU", "7", {"810", "00"}, {"8"}, 10, 10},
        {"KZ", "7", {"810", "00"}, {"8"}, 10, 10},
        {"TR", "90", k00, k0, 7, 10},
        // North American Numbering Plan: "1" is the trunk prefix, 011 the international one.
        {"US", "1", {"011"}, {"1"}, 10, 10},
        {"CA", "1", {"011"}, {"1"}, 10, 10},
        {"PR", "1", {"011"}, {"1"}, 10, 10},
        {"VI", "1", {"011"}, {"1"}, 10, 10},
        {"GU", "1", {"011"}, {"1"}, 10, 10},
        {"AS", "1", {"011"}, {"1"}, 10, 10},
        {"MP", "1", {"011"}, {"1"}, 10, 10},
        {"AG", "1", {"011"}, {"1"}, 10, 10},
        {"AI", "1", {"011"}, {"1"}, 10, 10},
        {"BB", "1", {"011"}, {"1"}, 10, 10},
        {"BM", "1", {"011"}, {"1"}, 10, 10},
        {"BS", "1", {"011"}, {"1"}, 10, 10},
        {"DM", "1", {"011"}, {"1"}, 10, 10},
        {"DO", "1", {"011"}, {"1"}, 10, 10},
        {"GD", "1", {"011"}, {"1"}, 10, 10},
        {"JM", "1", {"011"}, {"1"}, 10, 10},
        {"KN", "1", {"011"}, {"1"}, 10, 10},
        {"KY", "1", {"011"}, {"1"}, 10, 10},
        {"LC", "1", {"011"}, {"1"}, 10, 10},
        {"MS", "1", {"011"}, {"1"}, 10, 10},
        {"SX", "1", {"011"}, {"1"}, 10, 10},
        {"TC", "1", {"011"}, {"1"}, 10, 10},
        {"TT", "1", {"011"}, {"1"}, 10, 10},
        {"VC", "1", {"011"}, {"1"}, 10, 10},
        {"VG", "1", {"011"}, {"1"}, 10, 10},
        // Mexico dropped its trunk prefixes in 2019; the old 01/044/045 are still read.
        {"MX", "52", k00, {"044", "045", "01"}, 10, 10},
        // Brazil dials abroad through a carrier: 00 + the carrier's two digits.
        {"BR",
         "55",
         {"0012", "0014", "0015", "0021", "0023", "0025", "0031", "0041", "0043", "0055", "0065",
          "0099"},
         k0,
         8,
         11},
        // Middle East and Africa.
        {"IL", "972", {"012", "013", "014", "015", "016", "017", "018", "019", "00"}, k0, 8, 10},
        {"AE", "971", k00, k0, 8, 9},
        {"SA", "966", k00, k0, 8, 10},
        {"EG", "20", k00, k0, 8, 10},
        {"ZA", "27", k00, k0, 9, 9},
        // Asia and Oceania.
        {"AU", "61", {"0011", "0014", "0015", "0018", "0019"}, k0, 5, 10},
        {"CC", "61", {"0011", "0014", "0015", "0018", "0019"}, k0, 5, 10},
        {"CX", "61", {"0011", "0014", "0015", "0018", "0019"}, k0, 5, 10},
        {"NZ", "64", k00, k0, 8, 10},
        {"JP", "81", {"010"}, k0, 8, 10},
        {"CN", "86", k00, k0, 7, 12},
        {"IN", "91", k00, k0, 8, 13},
    };
    return t;
  }();
  return *kTable;
}

// Country calling codes in service (ITU-T E.164 assignments, including the non-geographic
// 800, 808, 870, 878, 881-883, 888 and 979), ascending as text. Assignments are prefix-free.
const std::vector<std::string_view>& CodeList() {
  static const auto* kCodes = new std::vector<std::string_view>{
      "1",   "20",  "211", "212", "213", "216", "218", "220", "221", "222", "223", "224", "225",
      "226", "227", "228", "229", "230", "231", "232", "233", "234", "235", "236", "237", "238",
      "239", "240", "241", "242", "243", "244", "245", "246", "247", "248", "249", "250", "251",
      "252", "253", "254", "255", "256", "257", "258", "260", "261", "262", "263", "264", "265",
      "266", "267", "268", "269", "27",  "290", "291", "297", "298", "299", "30",  "31",  "32",
      "33",  "34",  "350", "351", "352", "353", "354", "355", "356", "357", "358", "359", "36",
      "370", "371", "372", "373", "374", "375", "376", "377", "378", "380", "381", "382", "383",
      "385", "386", "387", "389", "39",  "40",  "41",  "420", "421", "423", "43",  "44",  "45",
      "46",  "47",  "48",  "49",  "500", "501", "502", "503", "504", "505", "506", "507", "508",
      "509", "51",  "52",  "53",  "54",  "55",  "56",  "57",  "58",  "590", "591", "592", "593",
      "594", "595", "596", "597", "598", "599", "60",  "61",  "62",  "63",  "64",  "65",  "66",
      "670", "672", "673", "674", "675", "676", "677", "678", "679", "680", "681", "682", "683",
      "685", "686", "687", "688", "689", "690", "691", "692", "7",   "800", "808", "81",  "82",
      "84",  "850", "852", "853", "855", "856", "86",  "870", "878", "880", "881", "882", "883",
      "886", "888", "90",  "91",  "92",  "93",  "94",  "95",  "960", "961", "962", "963", "964",
      "965", "966", "967", "968", "970", "971", "972", "973", "974", "975", "976", "977", "979",
      "98",  "992", "993", "994", "995", "996", "998",
  };
  return *kCodes;
}

// ISO 3166-1 alpha-2 (all 249 assigned codes) and XK, sorted, three characters apart.
constexpr std::string_view kIsoCodes =
    "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ "
    "BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ "
    "CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ "
    "DE DJ DK DM DO DZ "
    "EC EE EG EH ER ES ET "
    "FI FJ FK FM FO FR "
    "GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY "
    "HK HM HN HR HT HU "
    "ID IE IL IM IN IO IQ IR IS IT "
    "JE JM JO JP "
    "KE KG KH KI KM KN KP KR KW KY KZ "
    "LA LB LC LI LK LR LS LT LU LV LY "
    "MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ "
    "NA NC NE NF NG NI NL NO NP NR NU NZ "
    "OM "
    "PA PE PF PG PH PK PL PM PN PR PS PT PW PY "
    "QA "
    "RE RO RS RU RW "
    "SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ "
    "TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ "
    "UA UG UM US UY UZ "
    "VA VC VE VG VI VN VU "
    "WF WS "
    "XK "
    "YE YT "
    "ZA ZM ZW ";

}  // namespace

const std::vector<CountryInfo>& Countries() { return Table(); }

const CountryInfo* FindCountry(std::string_view iso) {
  if (iso.size() != 2) return nullptr;
  const char a = absl::ascii_toupper(static_cast<unsigned char>(iso[0]));
  const char b = absl::ascii_toupper(static_cast<unsigned char>(iso[1]));
  for (const CountryInfo& c : Table()) {
    if (c.iso[0] == a && c.iso[1] == b) return &c;
  }
  return nullptr;
}

const CountryInfo* CountryForCallingCode(std::string_view calling_code) {
  for (const CountryInfo& c : Table()) {
    if (c.calling_code == calling_code) return &c;
  }
  return nullptr;
}

std::string_view CallingCodePrefix(std::string_view digits) {
  const std::vector<std::string_view>& codes = CodeList();
  for (size_t len = 1; len <= 3 && len <= digits.size(); ++len) {
    const std::string_view candidate = digits.substr(0, len);
    if (std::binary_search(codes.begin(), codes.end(), candidate)) return candidate;
  }
  return {};
}

const std::vector<std::string_view>& CallingCodes() { return CodeList(); }

bool IsCountryCode(std::string_view iso) {
  if (iso.size() != 2 || !absl::ascii_isupper(static_cast<unsigned char>(iso[0])) ||
      !absl::ascii_isupper(static_cast<unsigned char>(iso[1]))) {
    return false;
  }
  for (size_t i = 0; i + 1 < kIsoCodes.size(); i += 3) {
    if (kIsoCodes[i] == iso[0] && kIsoCodes[i + 1] == iso[1]) return true;
  }
  return false;
}

}  // namespace sb::phone
