#include "services/org/contact_sql.h"

#include "absl/strings/str_cat.h"
#include "libs/pg/fields.h"
#include "libs/pg/prepared.h"

namespace sb::org {
namespace {

namespace v1 = ::switchboard::org::v1;

constexpr char kLookupStatement[] = "org_lookup_contacts_by_number";

// $1 tenant, $2 E.164 number, $3 project (NULL: any), $4 every owner, $5 owners, $6 limit.
// The phone index finds the few contacts with the number; the rest filters and orders them.
const std::string& LookupSql() {
  static const auto* kSql = new std::string(absl::StrCat(
      "SELECT ", kContactColumns,
      " FROM org.contacts c "
      "WHERE c.id IN (SELECT p.contact_id FROM org.contact_phones p "
      "               WHERE p.tenant_id = $1 AND p.number = $2) "
      "AND c.tenant_id = $1 "
      "AND ($3::uuid IS NULL OR c.project_id IS NULL OR c.project_id = $3::uuid) "
      "AND ($4 OR c.owner_user_id = ANY($5::uuid[])) "
      "ORDER BY ($3::uuid IS NOT NULL AND c.project_id IS NOT NULL) DESC, c.updated_at DESC, c.id "
      "LIMIT $6"));
  return *kSql;
}

}  // namespace

const char kContactColumns[] =
    "c.id::text, c.tenant_id::text, c.first_name, c.last_name, c.company, c.email, c.street, "
    "c.house_number, c.city, c.zip_code, c.country, c.description, "
    "coalesce(c.project_id::text, ''), c.owner_user_id::text, c.crm_record_id, c.crm_url, "
    "extract(epoch FROM c.created_at)::float8, extract(epoch FROM c.updated_at)::float8, "
    // Phones as {{number, raw, label}, ...} in their order; custom fields as {{name, value}, ...}.
    // Arrays rather than JSON: libpqxx reads them without a JSON parser on the hot path.
    "(SELECT array_agg(ARRAY[p.number, p.raw, p.label] ORDER BY p.position) "
    " FROM org.contact_phones p WHERE p.contact_id = c.id), "
    "(SELECT array_agg(ARRAY[f.key, f.value] ORDER BY f.key) "
    " FROM jsonb_each_text(c.custom_fields) f)";

v1::Contact ContactFromRow(const pqxx::row& row) {
  v1::Contact c;
  // Two-dimensional arrays come flattened, row by row.
  const std::vector<std::string> phones = pg::TextArray(row[18]);
  for (size_t i = 0; i + 2 < phones.size(); i += 3) {
    v1::ContactPhone* p = c.add_phone_numbers();
    p->set_number(phones[i]);
    p->set_raw(phones[i + 1]);
    p->set_label(phones[i + 2]);
  }
  const std::vector<std::string> fields = pg::TextArray(row[19]);
  for (size_t i = 0; i + 1 < fields.size(); i += 2)
    (*c.mutable_custom_fields())[fields[i]] = fields[i + 1];
  c.set_id(row[0].as<std::string>());
  c.set_tenant_id(row[1].as<std::string>());
  c.set_first_name(row[2].as<std::string>());
  c.set_last_name(row[3].as<std::string>());
  c.set_company(row[4].as<std::string>());
  c.set_email(row[5].as<std::string>());
  v1::Address* a = c.mutable_address();
  a->set_street(row[6].as<std::string>());
  a->set_house_number(row[7].as<std::string>());
  a->set_city(row[8].as<std::string>());
  a->set_zip_code(row[9].as<std::string>());
  a->set_country(row[10].as<std::string>());
  c.set_description(row[11].as<std::string>());
  c.set_project_id(row[12].as<std::string>());
  c.set_owner_user_id(row[13].as<std::string>());
  c.set_crm_record_id(row[14].as<std::string>());
  c.set_crm_url(row[15].as<std::string>());
  pg::SetTimestamp(c.mutable_created_at(), row[16]);
  pg::SetTimestamp(c.mutable_updated_at(), row[17]);
  return c;
}

std::vector<v1::Contact> LookupContactsByNumber(pqxx::transaction_base& tx,
                                                const NumberLookup& lookup) {
  const bool every_owner = !lookup.owner_user_ids.has_value();
  const std::string owners = every_owner ? std::string("{}") : pg::PgArray(*lookup.owner_user_ids);
  std::vector<v1::Contact> out;
  for (const auto& row :
       pg::ExecPrepared(tx, kLookupStatement, LookupSql(), lookup.tenant_id, lookup.number,
                        pg::NullIfEmpty(lookup.project_id), every_owner, owners, lookup.limit)) {
    out.push_back(ContactFromRow(row));
  }
  return out;
}

}  // namespace sb::org
