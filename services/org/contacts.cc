// Contacts (the CRM side): CreateContact ... LookupContacts. Phone numbers are stored in E.164
// (libs/phone), read with the tenant's default country, and kept as entered too. Access is
// contacts.access on the contact as a resource owned by its owner, in the owner's teams and units;
// deleting also needs objects.delete. The CRM caller lookup (GetCrmLookupConfig,
// UpdateCrmLookupConfig, LookupContacts' include_crm) arrives with issue #13.

#include <algorithm>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "libs/app/paging.h"
#include "libs/app/rpc_errors.h"
#include "libs/app/validation.h"
#include "libs/common/ids.h"
#include "libs/common/status_macros.h"
#include "libs/pg/fields.h"
#include "libs/phone/countries.h"
#include "libs/phone/e164.h"
#include "services/org/contact_sql.h"
#include "services/org/org_service.h"

namespace sb::org {
namespace {

namespace perm = auth::perm;

constexpr int kMaxPhones = 10;
constexpr int kMaxCustomFields = 50;
constexpr int kDefaultLookupResults = 5;
constexpr int kMaxLookupResults = 50;
// ListContacts counts matches up to this many; a larger total_size is reported as this.
constexpr int64_t kCountCap = 10000;

std::string Trimmed(const std::string& s) { return std::string(absl::StripAsciiWhitespace(s)); }

// A contact for the authorizer: its owner as a user (teams and units of the owner's placement).
auth::Resource AsContact(auth::Resource owner) {
  owner.type = "contact";
  return owner;
}

// The owners whose contacts a reach covers, for SQL (`= ANY($n::uuid[])`); nullopt: everyone.
std::optional<std::vector<std::string>> Owners(const auth::Reach& reach) {
  if (reach.all) return std::nullopt;
  std::vector<std::string> ids;
  for (const std::string& id : reach.user_ids) {
    if (IsUuid(id)) ids.push_back(id);
  }
  return ids;
}

absl::StatusOr<v1::Contact> LoadContact(pqxx::work& tx, const std::string& tenant_id,
                                        const std::string& id, bool for_update = false) {
  const std::string lower = absl::AsciiStrToLower(id);
  if (!IsUuid(lower)) {
    if (id.empty()) return app::FieldError("contact_id", "REQUIRED", "is required");
    return app::FieldError(absl::StatusCode::kNotFound, "contact_id", "NOT_FOUND",
                           "contact not found");
  }
  if (for_update) {
    tx.exec_params("SELECT 1 FROM org.contacts WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
                   tenant_id, lower);
  }
  pqxx::result r =
      tx.exec_params(absl::StrCat("SELECT ", kContactColumns,
                                  " FROM org.contacts c WHERE c.tenant_id = $1 AND c.id = $2"),
                     tenant_id, lower);
  if (r.empty()) {
    return app::FieldError(absl::StatusCode::kNotFound, "contact_id", "NOT_FOUND",
                           "contact not found");
  }
  return ContactFromRow(r[0]);
}

// InvalidArgument naming `field` unless `id` is a project of the tenant (a field of the request
// refers to it: the form shows the error on that field).
absl::Status RequireProject(pqxx::work& tx, const std::string& tenant_id, const std::string& id,
                            std::string_view field) {
  if (IsUuid(id) &&
      !tx.exec_params("SELECT 1 FROM org.projects WHERE tenant_id = $1 AND id = $2", tenant_id, id)
           .empty()) {
    return absl::OkStatus();
  }
  return app::FieldError(field, "NOT_FOUND",
                         absl::StrCat("project '", id.substr(0, 64), "' does not exist"));
}

absl::Status NormalizePhones(v1::Contact& c, const std::string& country) {
  if (c.phone_numbers_size() > kMaxPhones) {
    return app::FieldError("contact.phone_numbers", "TOO_MANY",
                           absl::StrCat("a contact has at most ", kMaxPhones, " phone numbers"));
  }
  std::vector<std::string> seen;
  for (int i = 0; i < c.phone_numbers_size(); ++i) {
    v1::ContactPhone& p = *c.mutable_phone_numbers(i);
    const std::string base = absl::StrCat("contact.phone_numbers[", i, "]");
    // Clients send what the user typed in `number` (or only in `raw`); both are read alike.
    const bool from_raw = Trimmed(p.number()).empty();
    const std::string source = Trimmed(from_raw ? p.raw() : p.number());
    if (source.empty()) return app::FieldError(base + ".number", "REQUIRED", "is required");
    SB_ASSIGN_OR_RETURN(
        std::string e164,
        phone::NormalizeE164(source, country, base + (from_raw ? ".raw" : ".number")));
    const std::string raw = Trimmed(p.raw()).empty() ? source : Trimmed(p.raw());
    SB_RETURN_IF_ERROR(app::ValidateText(raw, base + ".raw", 100));
    const std::string label = Trimmed(p.label());
    SB_RETURN_IF_ERROR(app::ValidateText(label, base + ".label", 50));
    if (auto it = std::find(seen.begin(), seen.end(), e164); it != seen.end()) {
      return app::FieldError(
          base + ".number", "DUPLICATE",
          absl::StrCat("is the same number as phone_numbers[", it - seen.begin(), "]"));
    }
    seen.push_back(e164);
    p.set_number(e164);
    p.set_raw(raw);
    p.set_label(label);
  }
  return absl::OkStatus();
}

// Validates and normalises the fields a client sets (not project and owner, which need lookups).
absl::Status NormalizeContact(v1::Contact& c, const std::string& country) {
  SB_ASSIGN_OR_RETURN(std::string first,
                      app::NormalizeName(c.first_name(), "contact.first_name", false));
  c.set_first_name(first);
  SB_ASSIGN_OR_RETURN(std::string last,
                      app::NormalizeName(c.last_name(), "contact.last_name", false));
  c.set_last_name(last);
  SB_ASSIGN_OR_RETURN(std::string company,
                      app::NormalizeName(c.company(), "contact.company", false));
  c.set_company(company);
  if (!Trimmed(c.email()).empty()) {
    SB_ASSIGN_OR_RETURN(std::string email, app::NormalizeEmail(c.email(), "contact.email"));
    c.set_email(email);
  } else {
    c.clear_email();
  }
  SB_RETURN_IF_ERROR(NormalizePhones(c, country));

  v1::Address& a = *c.mutable_address();
  a.set_street(Trimmed(a.street()));
  a.set_house_number(Trimmed(a.house_number()));
  a.set_city(Trimmed(a.city()));
  a.set_zip_code(Trimmed(a.zip_code()));
  a.set_country(absl::AsciiStrToUpper(Trimmed(a.country())));
  SB_RETURN_IF_ERROR(app::ValidateText(a.street(), "contact.address.street", 200));
  SB_RETURN_IF_ERROR(app::ValidateText(a.house_number(), "contact.address.house_number", 20));
  SB_RETURN_IF_ERROR(app::ValidateText(a.city(), "contact.address.city", 100));
  SB_RETURN_IF_ERROR(app::ValidateText(a.zip_code(), "contact.address.zip_code", 20));
  if (!a.country().empty() && !phone::IsCountryCode(a.country())) {
    return app::FieldError("contact.address.country", "NOT_COUNTRY_CODE",
                           "must be an ISO 3166-1 alpha-2 code like HU");
  }
  SB_RETURN_IF_ERROR(app::ValidateText(c.description(), "contact.description", 4000));

  if (c.custom_fields_size() > kMaxCustomFields) {
    return app::FieldError(
        "contact.custom_fields", "TOO_MANY",
        absl::StrCat("a contact has at most ", kMaxCustomFields, " custom fields"));
  }
  std::map<std::string, std::string> fields;
  for (const auto& [key, value] : c.custom_fields()) {
    const std::string name = Trimmed(key);
    const std::string field = absl::StrCat("contact.custom_fields[", name.substr(0, 64), "]");
    if (name.empty()) {
      return app::FieldError("contact.custom_fields", "INVALID_KEY",
                             "field names must not be empty");
    }
    SB_RETURN_IF_ERROR(app::ValidateText(name, field, 64));
    SB_RETURN_IF_ERROR(app::ValidateText(value, field, 2000));
    fields[name] = value;
  }
  c.mutable_custom_fields()->clear();
  for (auto& [key, value] : fields) (*c.mutable_custom_fields())[key] = value;

  c.set_crm_record_id(Trimmed(c.crm_record_id()));
  SB_RETURN_IF_ERROR(app::ValidateText(c.crm_record_id(), "contact.crm_record_id", 200));
  c.set_crm_url(Trimmed(c.crm_url()));
  SB_RETURN_IF_ERROR(app::ValidateText(c.crm_url(), "contact.crm_url", 2000));
  if (!c.crm_url().empty() && !absl::StartsWithIgnoreCase(c.crm_url(), "https://") &&
      !absl::StartsWithIgnoreCase(c.crm_url(), "http://")) {
    return app::FieldError("contact.crm_url", "NOT_URL", "must be an http or https URL");
  }
  if (c.first_name().empty() && c.last_name().empty() && c.company().empty() && c.email().empty() &&
      c.phone_numbers().empty()) {
    return app::FieldError("contact.last_name", "REQUIRED",
                           "a contact needs a name, a company, an email or a phone number");
  }
  return absl::OkStatus();
}

absl::Status ValidateCallId(const std::string& call_id) {
  return app::ValidateText(call_id, "call_id", 128);
}

// Writes every column of `c` (a new contact when `insert`) and, when `phones` is set, its numbers.
void WriteContact(pqxx::work& tx, const v1::Contact& c, bool insert, bool phones,
                  const std::string& call_id) {
  v1::Contact custom;
  *custom.mutable_custom_fields() = c.custom_fields();
  const std::string custom_json = pg::ToJson(custom);
  const v1::Address& a = c.address();
  // New rows are inserted; a stored one (loaded in this transaction) is overwritten in place,
  // keeping its creation time and, when no call is named, its last call.
  tx.exec_params(
      "INSERT INTO org.contacts AS o (tenant_id, id, first_name, last_name, company, email, "
      "street, house_number, city, zip_code, country, description, project_id, owner_user_id, "
      "custom_fields, crm_record_id, crm_url, last_call_id) VALUES ($1, $2, $3, $4, $5, $6, $7, "
      "$8, $9, $10, $11, $12, $13, $14, coalesce($15::jsonb -> 'customFields', '{}'), $16, $17, "
      "$18) "
      "ON CONFLICT (id) DO UPDATE SET first_name = EXCLUDED.first_name, "
      "last_name = EXCLUDED.last_name, company = EXCLUDED.company, email = EXCLUDED.email, "
      "street = EXCLUDED.street, house_number = EXCLUDED.house_number, city = EXCLUDED.city, "
      "zip_code = EXCLUDED.zip_code, country = EXCLUDED.country, "
      "description = EXCLUDED.description, project_id = EXCLUDED.project_id, "
      "owner_user_id = EXCLUDED.owner_user_id, custom_fields = EXCLUDED.custom_fields, "
      "crm_record_id = EXCLUDED.crm_record_id, crm_url = EXCLUDED.crm_url, "
      "last_call_id = CASE WHEN EXCLUDED.last_call_id = '' THEN o.last_call_id "
      "ELSE EXCLUDED.last_call_id END, updated_at = now() "
      "WHERE o.tenant_id = EXCLUDED.tenant_id",
      c.tenant_id(), c.id(), c.first_name(), c.last_name(), c.company(), c.email(), a.street(),
      a.house_number(), a.city(), a.zip_code(), a.country(), c.description(),
      pg::NullIfEmpty(c.project_id()), c.owner_user_id(), custom_json, c.crm_record_id(),
      c.crm_url(), call_id);
  if (!phones) return;
  if (!insert) {
    tx.exec_params("DELETE FROM org.contact_phones WHERE contact_id = $1", c.id());
  }
  std::vector<std::string> numbers, raws, labels;
  for (const v1::ContactPhone& p : c.phone_numbers()) {
    numbers.push_back(p.number());
    raws.push_back(p.raw());
    labels.push_back(p.label());
  }
  if (numbers.empty()) return;
  tx.exec_params(
      "INSERT INTO org.contact_phones (tenant_id, contact_id, position, number, raw, label) "
      "SELECT $1, $2, t.ord - 1, t.number, t.raw, t.label "
      "FROM unnest($3::text[], $4::text[], $5::text[]) "
      "     WITH ORDINALITY AS t(number, raw, label, ord)",
      c.tenant_id(), c.id(), pg::PgArray(numbers), pg::PgArray(raws), pg::PgArray(labels));
}

// The owner id from a request: lowercased; InvalidArgument naming `field` when not a UUID.
absl::StatusOr<std::string> OwnerId(const std::string& requested, std::string_view field) {
  const std::string id = absl::AsciiStrToLower(Trimmed(requested));
  if (!IsUuid(id)) return app::FieldError(field, "NOT_UUID", "must be a user id (UUID)");
  return id;
}

// ListContacts' orders with keyset paging: the page token holds the sort key of the page's last
// contact, and the next page starts after it, so that page 1,000 costs what page 1 does.
struct ListOrder {
  const char* name;
  const char* order_by;
  // The sort key, selected after kContactColumns (as text), and its length.
  const char* key_columns;
  int key_size;
  // True for the rows after the key in $10 (text[]).
  const char* after;
};

const ListOrder* FindListOrder(std::string_view name) {
  static constexpr ListOrder kOrders[] = {
      {"last_name", "lower(c.last_name), lower(c.first_name), c.id",
       "lower(c.last_name), lower(c.first_name), c.id::text", 3,
       "(lower(c.last_name), lower(c.first_name), c.id) > ($10[1], $10[2], $10[3]::uuid)"},
      // Newest first, ties by id descending too: one direction, so the (tenant_id, created_at,
      // id) index serves both the order (read backwards) and the row comparison.
      {"created_at desc", "c.created_at DESC, c.id DESC",
       "(extract(epoch FROM c.created_at) * 1000000)::bigint::text, c.id::text", 2,
       "(c.created_at, c.id) < (to_timestamp(0) + $10[1]::bigint * interval '1 microsecond', "
       "$10[2]::uuid)"},
      {"updated_at desc", "c.updated_at DESC, c.id DESC",
       "(extract(epoch FROM c.updated_at) * 1000000)::bigint::text, c.id::text", 2,
       "(c.updated_at, c.id) < (to_timestamp(0) + $10[1]::bigint * interval '1 microsecond', "
       "$10[2]::uuid)"},
  };
  if (name.empty()) return &kOrders[0];
  for (const ListOrder& o : kOrders) {
    if (o.name == name) return &o;
  }
  return nullptr;
}

// A keyset page token: base64 of "<binding>|<key parts joined by \x1f>". The binding is an
// offset token of libs/app/paging.h for the same fingerprint, so a token used with other filters
// is refused as ParsePage refuses its own; names cannot hold \x1f (control characters are
// refused on input).
constexpr char kKeySeparator = '\x1f';

std::string EncodeCursor(std::string_view fingerprint, const std::vector<std::string>& key) {
  const std::string binding = app::NextPageToken(app::Page{.limit = 1}, 2, fingerprint);
  return absl::WebSafeBase64Escape(
      absl::StrCat(binding, "|", absl::StrJoin(key, std::string(1, kKeySeparator))));
}

// The key after which the page starts (nullopt: the first page). InvalidArgument naming
// page_token for a token of another list, other filters or a damaged one.
absl::StatusOr<std::optional<std::vector<std::string>>> DecodeCursor(std::string_view token,
                                                                     std::string_view fingerprint,
                                                                     int key_size) {
  if (token.empty()) return std::optional<std::vector<std::string>>();
  const absl::Status invalid = app::FieldError("page_token", "INVALID_PAGE_TOKEN",
                                               "is not a token of this list with these filters");
  std::string raw;
  if (!absl::WebSafeBase64Unescape(absl::string_view(token.data(), token.size()), &raw)) {
    return invalid;
  }
  const size_t bar = raw.find('|');
  if (bar == std::string::npos) return invalid;
  absl::StatusOr<app::Page> binding = app::ParsePage(0, raw.substr(0, bar), fingerprint);
  if (!binding.ok() || binding->offset != 1) return invalid;
  std::vector<std::string> key = absl::StrSplit(raw.substr(bar + 1), kKeySeparator);
  if (static_cast<int>(key.size()) != key_size || !IsUuid(key.back())) return invalid;
  int64_t micros = 0;
  if (key_size == 2 && !absl::SimpleAtoi(key[0], &micros)) return invalid;
  return std::optional<std::vector<std::string>>(std::move(key));
}

// PermissionDenied unless the caller holds contacts.access with some scope: checked before
// anything is looked up for them (the owner's existence, the tenant's country).
absl::Status RequireContactsAccess(const auth::Principal& caller) {
  if (caller.permissions.HasAny(perm::kContactsAccess)) return absl::OkStatus();
  return absl::PermissionDeniedError(
      absl::StrCat("permission ", perm::kContactsAccess, " is required"));
}

// InvalidArgument naming `field` (reason NOT_FOUND) unless `user_id` is a user of the tenant.
absl::Status RequireOwner(Directory& directory, const std::string& tenant_id,
                          const std::string& user_id, std::string_view field) {
  absl::Status s = directory.RequireUsers(tenant_id, {user_id}, field);
  if (absl::IsNotFound(s)) {
    return app::FieldError(field, "NOT_FOUND", absl::StrCat("user '", user_id, "' does not exist"));
  }
  return s;
}

}  // namespace

grpc::Status OrgService::CreateContact(grpc::ServerContext* context,
                                       const v1::CreateContactRequest* request,
                                       v1::Contact* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
    SB_RETURN_IF_ERROR(RequireContactsAccess(caller));
    const std::string& tenant = caller.tenant_id;
    v1::Contact c = request->contact();
    SB_RETURN_IF_ERROR(ValidateCallId(request->call_id()));
    std::string country;
    if (c.phone_numbers_size() > 0) {
      SB_ASSIGN_OR_RETURN(country, deps_.directory.TenantCountry(tenant));
    }
    SB_RETURN_IF_ERROR(NormalizeContact(c, country));
    std::string owner = caller.user_id;
    if (!c.owner_user_id().empty() || owner.empty()) {
      SB_ASSIGN_OR_RETURN(owner, OwnerId(c.owner_user_id(), "contact.owner_user_id"));
    }
    if (owner != caller.user_id) {
      SB_RETURN_IF_ERROR(RequireOwner(deps_.directory, tenant, owner, "contact.owner_user_id"));
    }
    c.set_id(NewUuid());
    c.set_tenant_id(tenant);
    c.set_owner_user_id(owner);
    c.set_project_id(absl::AsciiStrToLower(Trimmed(c.project_id())));
    return Run([&](pqxx::work& tx) -> absl::Status {
      SB_RETURN_IF_ERROR(authorizer().Check(caller, perm::kContactsAccess,
                                            AsContact(UserResource(tx, tenant, owner))));
      if (!c.project_id().empty()) {
        SB_RETURN_IF_ERROR(RequireProject(tx, tenant, c.project_id(), "contact.project_id"));
      }
      // The call id links the call's CDR to this contact once reporting reads it (caller name).
      WriteContact(tx, c, /*insert=*/true, /*phones=*/true, request->call_id());
      SB_ASSIGN_OR_RETURN(*response, LoadContact(tx, tenant, c.id()));
      return absl::OkStatus();
    });
  }());
}

grpc::Status OrgService::GetContact(grpc::ServerContext* context,
                                    const v1::GetContactRequest* request, v1::Contact* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
    return Run([&](pqxx::work& tx) -> absl::Status {
      SB_ASSIGN_OR_RETURN(v1::Contact c, LoadContact(tx, caller.tenant_id, request->contact_id()));
      SB_RETURN_IF_ERROR(
          authorizer().Check(caller, perm::kContactsAccess,
                             AsContact(UserResource(tx, caller.tenant_id, c.owner_user_id()))));
      *response = std::move(c);
      return absl::OkStatus();
    });
  }());
}

grpc::Status OrgService::ListContacts(grpc::ServerContext* context,
                                      const v1::ListContactsRequest* request,
                                      v1::ListContactsResponse* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
    SB_ASSIGN_OR_RETURN(auth::Reach reach, authorizer().ReachFor(caller, perm::kContactsAccess));
    const ListOrder* order = FindListOrder(request->order_by());
    if (order == nullptr) {
      return app::FieldError("order_by", "UNSUPPORTED",
                             "must be last_name, created_at desc or updated_at desc");
    }
    std::string project;
    if (!request->project_id().empty()) {
      project = absl::AsciiStrToLower(request->project_id());
      if (!IsUuid(project)) return app::FieldError("project_id", "NOT_UUID", "must be a UUID");
      if (request->without_project()) {
        return app::FieldError("without_project", "CONFLICT",
                               "cannot be set together with project_id");
      }
    }
    std::string owner;
    if (!request->owner_user_id().empty()) {
      SB_ASSIGN_OR_RETURN(owner, OwnerId(request->owner_user_id(), "owner_user_id"));
    }
    SB_RETURN_IF_ERROR(app::ValidateText(request->query(), "query", 100));
    // A query that reads as the start of a phone number searches the numbers (in E.164, so any
    // format finds them); any other query searches word prefixes of names, company and email.
    std::string text = Trimmed(request->query());
    std::vector<std::string> prefixes = phone::E164Prefixes(text, "");
    if (!prefixes.empty()) {
      SB_ASSIGN_OR_RETURN(std::string country, deps_.directory.TenantCountry(caller.tenant_id));
      prefixes = phone::E164Prefixes(text, country);
      text.clear();
    }
    // quote_literal() would write a backslash as E'\\', which tsquery does not read.
    std::replace(text.begin(), text.end(), '\\', ' ');
    prefixes.resize(2);  // the SQL takes two (an empty pattern matches no number)
    for (std::string& p : prefixes) {
      if (!p.empty()) p += '%';
    }
    const std::string fingerprint =
        absl::StrCat("contacts|", request->query(), "|", project, "|", request->without_project(),
                     "|", owner, "|", request->order_by());
    SB_ASSIGN_OR_RETURN(app::Page page, app::ParsePage(request->page_size(), "", fingerprint));
    SB_ASSIGN_OR_RETURN(std::optional<std::vector<std::string>> after,
                        DecodeCursor(request->page_token(), fingerprint, order->key_size));
    const std::optional<std::vector<std::string>> owners = Owners(reach);
    return Run([&](pqxx::work& tx) -> absl::Status {
      // Searches collect the matching ids through their own index first (the phone numbers' or
      // the text index), so that the planner never walks the whole tenant in name order looking
      // for rare matches.
      const std::string where =
          "c.tenant_id = $1 "
          "AND ($2::uuid IS NULL OR c.project_id = $2::uuid) "
          "AND (NOT $3 OR c.project_id IS NULL) "
          "AND ($4::uuid IS NULL OR c.owner_user_id = $4::uuid) "
          "AND ($5 OR c.owner_user_id = ANY($6::uuid[])) "
          "AND ($7 = '' OR c.id = ANY(ARRAY(SELECT s.id FROM org.contacts s "
          "    WHERE s.tenant_id = $1 AND s.search @@ (SELECT coalesce(string_agg("
          "    quote_literal(t.lexeme) || ':*', ' & '), '')::tsquery "
          "    FROM unnest(to_tsvector('simple', $7)) t)))) "
          "AND ($8 = '' OR c.id = ANY(ARRAY(SELECT p.contact_id FROM org.contact_phones p "
          "    WHERE p.tenant_id = $1 AND (p.number LIKE $8 OR p.number LIKE $9)))) ";
      const std::string owner_ids = pg::PgArray(owners.value_or(std::vector<std::string>{}));
      // Counting every match of a large tenant would cost more than the page: up to the cap.
      const int64_t total =
          tx.exec_params1(absl::StrCat("SELECT count(*) FROM (SELECT 1 FROM org.contacts c WHERE ",
                                       where, "LIMIT ", kCountCap, ") m"),
                          caller.tenant_id, pg::NullIfEmpty(project), request->without_project(),
                          pg::NullIfEmpty(owner), !owners.has_value(), owner_ids, text, prefixes[0],
                          prefixes[1])[0]
              .as<int64_t>();
      std::optional<std::string> cursor;
      if (after.has_value()) cursor = pg::PgArray(*after);
      pqxx::result rows = tx.exec_params(
          absl::StrCat("SELECT ", kContactColumns, ", ", order->key_columns,
                       " FROM org.contacts c WHERE ", where, "AND ($10::text[] IS NULL OR ",
                       order->after, ") ORDER BY ", order->order_by, " LIMIT $11"),
          caller.tenant_id, pg::NullIfEmpty(project), request->without_project(),
          pg::NullIfEmpty(owner), !owners.has_value(), owner_ids, text, prefixes[0], prefixes[1],
          cursor, page.limit + 1);
      const bool more = static_cast<int>(rows.size()) > page.limit;
      for (int i = 0; i < std::min<int>(rows.size(), page.limit); ++i) {
        *response->add_contacts() = ContactFromRow(rows[i]);
      }
      response->set_total_size(static_cast<int32_t>(total));
      if (more) {
        const pqxx::row last = rows[page.limit - 1];
        std::vector<std::string> key;
        for (int k = 0; k < order->key_size; ++k) key.push_back(last[20 + k].as<std::string>());
        response->set_next_page_token(EncodeCursor(fingerprint, key));
      }
      return absl::OkStatus();
    });
  }());
}

grpc::Status OrgService::UpdateContact(grpc::ServerContext* context,
                                       const v1::UpdateContactRequest* request,
                                       v1::Contact* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
    SB_RETURN_IF_ERROR(RequireContactsAccess(caller));
    const std::string& tenant = caller.tenant_id;
    SB_ASSIGN_OR_RETURN(
        auto paths,
        app::MaskPaths(request->update_mask(),
                       {"first_name", "last_name", "company", "phone_numbers", "email", "address",
                        "address.street", "address.house_number", "address.city",
                        "address.zip_code", "address.country", "description", "project_id",
                        "owner_user_id", "custom_fields", "crm_record_id", "crm_url"}));
    SB_RETURN_IF_ERROR(ValidateCallId(request->call_id()));
    const v1::Contact& in = request->contact();
    std::string country;
    if (paths.contains("phone_numbers") && in.phone_numbers_size() > 0) {
      SB_ASSIGN_OR_RETURN(country, deps_.directory.TenantCountry(tenant));
    }
    std::string new_owner;
    if (paths.contains("owner_user_id")) {
      SB_ASSIGN_OR_RETURN(new_owner, OwnerId(in.owner_user_id(), "contact.owner_user_id"));
      if (new_owner != caller.user_id) {
        SB_RETURN_IF_ERROR(
            RequireOwner(deps_.directory, tenant, new_owner, "contact.owner_user_id"));
      }
    }
    return Run([&](pqxx::work& tx) -> absl::Status {
      SB_ASSIGN_OR_RETURN(v1::Contact c, LoadContact(tx, tenant, in.id(), /*for_update=*/true));
      SB_RETURN_IF_ERROR(authorizer().Check(
          caller, perm::kContactsAccess, AsContact(UserResource(tx, tenant, c.owner_user_id()))));
      // The stored contact with the masked fields of the request on top, then checked as a whole.
      if (paths.contains("first_name")) c.set_first_name(in.first_name());
      if (paths.contains("last_name")) c.set_last_name(in.last_name());
      if (paths.contains("company")) c.set_company(in.company());
      if (paths.contains("phone_numbers")) *c.mutable_phone_numbers() = in.phone_numbers();
      if (paths.contains("email")) c.set_email(in.email());
      v1::Address& a = *c.mutable_address();
      if (paths.contains("address")) a = in.address();
      if (paths.contains("address.street")) a.set_street(in.address().street());
      if (paths.contains("address.house_number")) a.set_house_number(in.address().house_number());
      if (paths.contains("address.city")) a.set_city(in.address().city());
      if (paths.contains("address.zip_code")) a.set_zip_code(in.address().zip_code());
      if (paths.contains("address.country")) a.set_country(in.address().country());
      if (paths.contains("description")) c.set_description(in.description());
      if (paths.contains("custom_fields")) *c.mutable_custom_fields() = in.custom_fields();
      if (paths.contains("crm_record_id")) c.set_crm_record_id(in.crm_record_id());
      if (paths.contains("crm_url")) c.set_crm_url(in.crm_url());
      SB_RETURN_IF_ERROR(NormalizeContact(c, country));
      if (paths.contains("project_id")) {
        const std::string project = absl::AsciiStrToLower(Trimmed(in.project_id()));
        if (!project.empty() && project != c.project_id()) {
          SB_RETURN_IF_ERROR(RequireProject(tx, tenant, project, "contact.project_id"));
        }
        c.set_project_id(project);
      }
      if (paths.contains("owner_user_id") && new_owner != c.owner_user_id()) {
        // Handing a contact over needs access to the new owner's contacts as well.
        SB_RETURN_IF_ERROR(authorizer().Check(caller, perm::kContactsAccess,
                                              AsContact(UserResource(tx, tenant, new_owner))));
        c.set_owner_user_id(new_owner);
      }
      WriteContact(tx, c, /*insert=*/false, paths.contains("phone_numbers"), request->call_id());
      SB_ASSIGN_OR_RETURN(*response, LoadContact(tx, tenant, c.id()));
      return absl::OkStatus();
    });
  }());
}

grpc::Status OrgService::DeleteContact(grpc::ServerContext* context,
                                       const v1::DeleteContactRequest* request,
                                       google::protobuf::Empty*) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    SB_ASSIGN_OR_RETURN(auth::Principal caller, Caller(*context));
    const std::string& tenant = caller.tenant_id;
    return Run([&](pqxx::work& tx) -> absl::Status {
      SB_ASSIGN_OR_RETURN(v1::Contact c,
                          LoadContact(tx, tenant, request->contact_id(), /*for_update=*/true));
      const auth::Resource resource = AsContact(UserResource(tx, tenant, c.owner_user_id()));
      SB_RETURN_IF_ERROR(authorizer().Check(caller, perm::kContactsAccess, resource));
      // contacts.access alone edits but does not delete.
      SB_RETURN_IF_ERROR(authorizer().Check(caller, perm::kObjectsDelete, resource));
      if (request->erase_history()) {
        // Anonymising the person's CDRs is reporting's: it reads the request from here (and an
        // event will carry it once reporting consumes org's events). Only the numbers stay.
        std::vector<std::string> numbers;
        for (const v1::ContactPhone& p : c.phone_numbers()) numbers.push_back(p.number());
        tx.exec_params(
            "INSERT INTO org.contact_erasures (tenant_id, contact_id, numbers, requested_by) "
            "VALUES ($1, $2, $3::text[], $4) ON CONFLICT (contact_id) DO NOTHING",
            tenant, c.id(), pg::PgArray(numbers),
            pg::NullIfEmpty(IsUuid(caller.user_id) ? caller.user_id : std::string()));
      }
      tx.exec_params("DELETE FROM org.contacts WHERE tenant_id = $1 AND id = $2", tenant, c.id());
      return absl::OkStatus();
    });
  }());
}

grpc::Status OrgService::LookupContacts(grpc::ServerContext* context,
                                        const v1::LookupContactsRequest* request,
                                        v1::LookupContactsResponse* response) {
  return app::ToGrpc(*context, [&]() -> absl::Status {
    // Internal callers (sip, routing: the caller's name on a call) name the tenant; people need
    // contacts.access and see the contacts their reach covers.
    SB_ASSIGN_OR_RETURN(Access access, CallerOrService(*context, request->tenant_id()));
    NumberLookup lookup{.tenant_id = access.tenant_id};
    if (!access.internal()) {
      SB_ASSIGN_OR_RETURN(auth::Reach reach,
                          authorizer().ReachFor(*access.caller, perm::kContactsAccess));
      lookup.owner_user_ids = Owners(reach);
    }
    if (request->max_results() < 0) {
      return app::FieldError("max_results", "OUT_OF_RANGE", "must not be negative");
    }
    lookup.limit = request->max_results() == 0
                       ? kDefaultLookupResults
                       : std::min(request->max_results(), kMaxLookupResults);
    if (!request->project_id().empty()) {
      lookup.project_id = absl::AsciiStrToLower(request->project_id());
      if (!IsUuid(lookup.project_id)) {
        return app::FieldError("project_id", "NOT_UUID", "must be a UUID");
      }
    }
    // Numbers in E.164 (what sip sends) need no country; national ones are read with the
    // tenant's default country.
    std::string country;
    const std::string number = Trimmed(request->phone_number());
    if (!absl::StartsWith(number, "+")) {
      SB_ASSIGN_OR_RETURN(country, deps_.directory.TenantCountry(access.tenant_id));
    }
    SB_ASSIGN_OR_RETURN(lookup.number, phone::NormalizeE164(number, country, "phone_number"));
    response->set_normalized_number(lookup.number);
    // include_crm is ignored until the CRM lookup exists (issue #13): crm_match stays unset.
    // One statement, on every inbound call: no BEGIN/COMMIT round trips (pg::Pool::Read).
    return deps_.pg.Read([&](pqxx::nontransaction& tx) -> absl::Status {
      for (v1::Contact& c : LookupContactsByNumber(tx, lookup)) {
        *response->add_contacts() = std::move(c);
      }
      return absl::OkStatus();
    });
  }());
}

grpc::Status OrgService::GetCrmLookupConfig(grpc::ServerContext*,
                                            const v1::GetCrmLookupConfigRequest*,
                                            v1::CrmLookupConfig*) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "CRM lookup settings arrive with issue #13");
}

grpc::Status OrgService::UpdateCrmLookupConfig(grpc::ServerContext*,
                                               const v1::UpdateCrmLookupConfigRequest*,
                                               v1::CrmLookupConfig*) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "CRM lookup settings arrive with issue #13");
}

}  // namespace sb::org
