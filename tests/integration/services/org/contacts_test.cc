// Contacts through OrgService's gRPC API: create, read, update, list, delete, lookup by number in
// any format, input errors naming the field, access by owner (agent, group leader, admin), the
// objects.delete right, tenant isolation and internal lookups.

#include <catch2/catch.hpp>

#include <google/protobuf/util/message_differencer.h>

#include <algorithm>
#include <functional>
#include <string>
#include <vector>

#include "libs/common/ids.h"
#include "libs/pg/fields.h"
#include "tests/integration/services/org/org_fixture.h"

namespace sb::org::test {
namespace {

namespace cv1 = ::switchboard::common::v1;

// What a caller sees of a finished call.
struct Outcome {
  grpc::StatusCode code = grpc::OK;
  std::string field;  // the first FieldViolation's field
  std::string message;
};

Outcome Call(const OrgFixture& f, const std::string& token,
             const std::function<grpc::Status(grpc::ClientContext*)>& rpc) {
  auto ctx = f.Ctx(token);
  const grpc::Status s = rpc(ctx.get());
  return {s.error_code(), ViolationField(*ctx), s.error_message()};
}

// Sets how the tenant reads national numbers, as its admin would in identity.
void SetCountry(OrgFixture& f, const TenantInfo& t, const std::string& country) {
  iv1::UpdateTenantRequest req;
  req.mutable_tenant()->set_id(t.id);
  req.mutable_tenant()->set_default_country(country);
  req.mutable_update_mask()->add_paths("default_country");
  iv1::Tenant out;
  SB_REQUIRE_GRPC_OK(f.identity_stub().UpdateTenant(f.Ctx(t.admin_token).get(), req, &out));
}

v1::Contact Person(const std::string& first, const std::string& last,
                   const std::vector<std::string>& numbers = {}) {
  v1::Contact c;
  c.set_first_name(first);
  c.set_last_name(last);
  for (const std::string& n : numbers) c.add_phone_numbers()->set_number(n);
  return c;
}

Outcome TryCreate(OrgFixture& f, const std::string& token, const v1::Contact& c,
                  v1::Contact* out = nullptr, const std::string& call_id = "") {
  v1::CreateContactRequest req;
  *req.mutable_contact() = c;
  req.set_call_id(call_id);
  v1::Contact ignored;
  return Call(f, token, [&](grpc::ClientContext* ctx) {
    return f.stub().CreateContact(ctx, req, out != nullptr ? out : &ignored);
  });
}

v1::Contact Create(OrgFixture& f, const std::string& token, const v1::Contact& c,
                   const std::string& call_id = "") {
  v1::Contact out;
  const Outcome o = TryCreate(f, token, c, &out, call_id);
  INFO(o.code << ": " << o.message);
  REQUIRE(o.code == grpc::OK);
  return out;
}

Outcome TryGet(OrgFixture& f, const std::string& token, const std::string& id,
               v1::Contact* out = nullptr) {
  v1::GetContactRequest req;
  req.set_contact_id(id);
  v1::Contact ignored;
  return Call(f, token, [&](grpc::ClientContext* ctx) {
    return f.stub().GetContact(ctx, req, out != nullptr ? out : &ignored);
  });
}

Outcome TryUpdate(OrgFixture& f, const std::string& token, const v1::Contact& c,
                  const std::vector<std::string>& paths, v1::Contact* out = nullptr,
                  const std::string& call_id = "") {
  v1::UpdateContactRequest req;
  *req.mutable_contact() = c;
  req.set_call_id(call_id);
  for (const auto& p : paths) req.mutable_update_mask()->add_paths(p);
  v1::Contact ignored;
  return Call(f, token, [&](grpc::ClientContext* ctx) {
    return f.stub().UpdateContact(ctx, req, out != nullptr ? out : &ignored);
  });
}

Outcome TryDelete(OrgFixture& f, const std::string& token, const std::string& id,
                  bool erase_history = false) {
  v1::DeleteContactRequest req;
  req.set_contact_id(id);
  req.set_erase_history(erase_history);
  google::protobuf::Empty out;
  return Call(f, token,
              [&](grpc::ClientContext* ctx) { return f.stub().DeleteContact(ctx, req, &out); });
}

// The ids ListContacts returns, in order (REQUIREs success).
std::vector<std::string> ListIds(OrgFixture& f, const std::string& token,
                                 v1::ListContactsRequest req = {}) {
  v1::ListContactsResponse resp;
  SB_REQUIRE_GRPC_OK(f.stub().ListContacts(f.Ctx(token).get(), req, &resp));
  std::vector<std::string> ids;
  for (const auto& c : resp.contacts()) ids.push_back(c.id());
  CHECK(resp.total_size() == static_cast<int32_t>(ids.size()));
  return ids;
}

std::vector<std::string> Search(OrgFixture& f, const std::string& token, const std::string& q) {
  v1::ListContactsRequest req;
  req.set_query(q);
  return ListIds(f, token, req);
}

// LookupContacts as sip asks: the service credential and the tenant in the request.
v1::LookupContactsResponse LookupInternal(OrgFixture& f, const std::string& tenant_id,
                                          const std::string& number,
                                          const std::string& project_id = "", int max_results = 0) {
  v1::LookupContactsRequest req;
  req.set_tenant_id(tenant_id);
  req.set_phone_number(number);
  req.set_project_id(project_id);
  req.set_max_results(max_results);
  v1::LookupContactsResponse resp;
  SB_REQUIRE_GRPC_OK(f.stub().LookupContacts(f.InternalCtx().get(), req, &resp));
  return resp;
}

std::vector<std::string> Ids(const v1::LookupContactsResponse& resp) {
  std::vector<std::string> ids;
  for (const auto& c : resp.contacts()) ids.push_back(c.id());
  return ids;
}

std::string CreateProject(OrgFixture& f, const std::string& token, const std::string& name) {
  v1::CreateProjectRequest req;
  req.mutable_project()->set_name(name);
  v1::Project out;
  SB_REQUIRE_GRPC_OK(f.stub().CreateProject(f.Ctx(token).get(), req, &out));
  return out.id();
}

TEST_CASE("contacts are created read updated listed and deleted", "[contacts]") {
  OrgFixture f;
  TenantInfo acme = f.CreateTenant("acme");
  SetCountry(f, acme, "HU");
  const std::string& admin = acme.admin_token;

  v1::Contact in = Person("  Kata ", "Kovács", {"06 1 234 5678"});
  in.mutable_phone_numbers(0)->set_label("office");
  in.add_phone_numbers()->set_raw("+36 (20) 123-4567");
  in.set_company("Acme Kft.");
  in.set_email("kata@example.com");
  in.mutable_address()->set_street("Fő utca");
  in.mutable_address()->set_house_number("12/B");
  in.mutable_address()->set_city("Budapest");
  in.mutable_address()->set_zip_code("1011");
  in.mutable_address()->set_country("hu");
  in.set_description("Prefers calls in the morning.");
  (*in.mutable_custom_fields())["customer_no"] = "C-1001";
  (*in.mutable_custom_fields())["note, \"quoted\""] = "a\\b \"c\" {x,y} NULL";
  in.add_phone_numbers()->set_number("+44 20 7946 0958");
  in.mutable_phone_numbers(2)->set_label("London \"HQ\", {2}\\");
  in.set_crm_url("https://crm.example.com/c/1001");
  in.set_id("ignored");
  const v1::Contact created = Create(f, admin, in, "call-42");

  CHECK(IsUuid(created.id()));
  CHECK(created.tenant_id() == acme.id);
  CHECK(created.first_name() == "Kata");
  CHECK(created.owner_user_id() == acme.admin_id);
  CHECK(created.project_id().empty());
  REQUIRE(created.phone_numbers_size() == 3);
  CHECK(created.phone_numbers(0).number() == "+3612345678");
  CHECK(created.phone_numbers(0).raw() == "06 1 234 5678");
  CHECK(created.phone_numbers(0).label() == "office");
  CHECK(created.phone_numbers(1).number() == "+36201234567");
  CHECK(created.phone_numbers(1).raw() == "+36 (20) 123-4567");
  CHECK(created.address().country() == "HU");
  CHECK(created.address().house_number() == "12/B");
  CHECK(created.custom_fields().at("customer_no") == "C-1001");
  CHECK(created.custom_fields().at("note, \"quoted\"") == "a\\b \"c\" {x,y} NULL");
  CHECK(created.phone_numbers(2).number() == "+442079460958");
  CHECK(created.phone_numbers(2).label() == "London \"HQ\", {2}\\");
  CHECK(created.created_at().seconds() > 0);
  // The call whose contact form saved it, for reporting to link the CDR.
  auto last_call = [&] {
    return *f.pg().Run([&](pqxx::work& tx) -> absl::StatusOr<std::string> {
      return tx.exec_params1("SELECT last_call_id FROM org.contacts WHERE id = $1", created.id())[0]
          .as<std::string>();
    });
  };
  CHECK(last_call() == "call-42");

  v1::Contact got;
  REQUIRE(TryGet(f, admin, created.id(), &got).code == grpc::OK);
  CHECK(google::protobuf::util::MessageDifferencer::Equals(got, created));

  // Only the masked fields change; the address keeps what the mask leaves out.
  v1::Contact change;
  change.set_id(created.id());
  change.set_last_name("Kovács-Nagy");
  change.add_phone_numbers()->set_number("0036 30 765 4321");
  change.mutable_address()->set_city("Debrecen");
  change.set_first_name("not applied");
  v1::Contact updated;
  REQUIRE(
      TryUpdate(f, admin, change, {"last_name", "phone_numbers", "address.city"}, &updated).code ==
      grpc::OK);
  CHECK(updated.first_name() == "Kata");
  CHECK(updated.last_name() == "Kovács-Nagy");
  REQUIRE(updated.phone_numbers_size() == 1);
  CHECK(updated.phone_numbers(0).number() == "+36307654321");
  CHECK(updated.address().city() == "Debrecen");
  CHECK(updated.address().street() == "Fő utca");
  CHECK(updated.email() == "kata@example.com");
  CHECK(updated.custom_fields().at("customer_no") == "C-1001");
  CHECK(updated.created_at().seconds() == created.created_at().seconds());
  CHECK(pg::FromProto(updated.updated_at()) >= pg::FromProto(created.updated_at()));
  CHECK(last_call() == "call-42");  // an update without a call keeps it
  v1::Contact note;
  note.set_id(created.id());
  note.set_description("Called about the invoice.");
  REQUIRE(TryUpdate(f, admin, note, {"description"}, nullptr, "call-43").code == grpc::OK);
  CHECK(last_call() == "call-43");
  // The old numbers no longer find it, the new one does.
  CHECK(LookupInternal(f, acme.id, "+3612345678").contacts_size() == 0);
  CHECK(Ids(LookupInternal(f, acme.id, "06 30 765 4321")) ==
        std::vector<std::string>{created.id()});

  const v1::Contact other = Create(f, admin, Person("Béla", "Szabó", {"+36 1 999 8888"}));
  const v1::Contact firm = Create(f, admin, [] {
    v1::Contact c;
    c.set_company("Globex Zrt.");
    c.set_email("info@globex.example");
    return c;
  }());

  // Ordered by last name; the free text finds word prefixes of names, company and email, and a
  // number's start in any format.
  CHECK(ListIds(f, admin) == std::vector<std::string>{firm.id(), created.id(), other.id()});
  CHECK(Search(f, admin, "kov") == std::vector<std::string>{created.id()});
  CHECK(Search(f, admin, "KATA kovács-nagy") == std::vector<std::string>{created.id()});
  CHECK(Search(f, admin, "nagy") == std::vector<std::string>{created.id()});
  CHECK(Search(f, admin, "globex") == std::vector<std::string>{firm.id()});
  CHECK(Search(f, admin, "info") == std::vector<std::string>{firm.id()});
  CHECK(Search(f, admin, "06 30 765") == std::vector<std::string>{created.id()});
  CHECK(Search(f, admin, "+36 1 999") == std::vector<std::string>{other.id()});
  CHECK(Search(f, admin, "0036") ==
        std::vector<std::string>{created.id(), other.id()});  // by last name
  CHECK(Search(f, admin, "zzz").empty());
  {
    v1::ListContactsRequest req;
    req.set_order_by("created_at desc");
    CHECK(ListIds(f, admin, req) == std::vector<std::string>{firm.id(), other.id(), created.id()});
    req.set_order_by("name");
    v1::ListContactsResponse resp;
    auto ctx = f.Ctx(admin);
    CHECK(Code(f.stub().ListContacts(ctx.get(), req, &resp)) == grpc::INVALID_ARGUMENT);
    CHECK(ViolationField(*ctx) == "order_by");
  }
  {
    // Pages of one, then a token bound to its query.
    v1::ListContactsRequest req;
    req.set_page_size(1);
    v1::ListContactsResponse page1, page2;
    SB_REQUIRE_GRPC_OK(f.stub().ListContacts(f.Ctx(admin).get(), req, &page1));
    REQUIRE(page1.contacts_size() == 1);
    CHECK(page1.total_size() == 3);
    REQUIRE_FALSE(page1.next_page_token().empty());
    req.set_page_token(page1.next_page_token());
    SB_REQUIRE_GRPC_OK(f.stub().ListContacts(f.Ctx(admin).get(), req, &page2));
    REQUIRE(page2.contacts_size() == 1);
    CHECK(page2.contacts(0).id() == created.id());
    req.set_query("kov");
    v1::ListContactsResponse other_query;
    CHECK(Code(f.stub().ListContacts(f.Ctx(admin).get(), req, &other_query)) ==
          grpc::INVALID_ARGUMENT);
  }

  // Admins hold objects.delete; erasure from call history is recorded for reporting.
  REQUIRE(TryDelete(f, admin, created.id(), /*erase_history=*/true).code == grpc::OK);
  CHECK(TryGet(f, admin, created.id()).code == grpc::NOT_FOUND);
  CHECK(TryDelete(f, admin, created.id()).code == grpc::NOT_FOUND);
  CHECK(LookupInternal(f, acme.id, "+36307654321").contacts_size() == 0);
  CHECK(*f.pg().Run([&](pqxx::work& tx) -> absl::StatusOr<std::string> {
    return tx
        .exec_params1("SELECT numbers::text FROM org.contact_erasures WHERE contact_id = $1",
                      created.id())[0]
        .as<std::string>();
  }) == "{+36307654321}");
  REQUIRE(TryDelete(f, admin, other.id()).code == grpc::OK);
  CHECK(*f.pg().Run([&](pqxx::work& tx) -> absl::StatusOr<int64_t> {
    return tx
        .exec_params1("SELECT count(*) FROM org.contact_erasures WHERE contact_id = $1",
                      other.id())[0]
        .as<int64_t>();
  }) == 0);
  CHECK(ListIds(f, admin) == std::vector<std::string>{firm.id()});
}

// Every id of the list, page by page through the tokens.
std::vector<std::string> AllPages(OrgFixture& f, const std::string& token,
                                  v1::ListContactsRequest req, int* pages = nullptr) {
  std::vector<std::string> ids;
  int n = 0;
  for (;;) {
    v1::ListContactsResponse resp;
    SB_REQUIRE_GRPC_OK(f.stub().ListContacts(f.Ctx(token).get(), req, &resp));
    ++n;
    for (const auto& c : resp.contacts()) ids.push_back(c.id());
    if (resp.next_page_token().empty()) break;
    REQUIRE(resp.contacts_size() == req.page_size());
    req.set_page_token(resp.next_page_token());
  }
  if (pages != nullptr) *pages = n;
  return ids;
}

TEST_CASE("contact lists page by key in every order", "[contacts]") {
  OrgFixture f;
  TenantInfo acme = f.CreateTenant("acme");
  SetCountry(f, acme, "HU");
  const std::string& admin = acme.admin_token;
  // Equal last names, first names and creation times, so that ties need the id to order them.
  for (const char* first : {"Anna", "anna", "Béla", "Anna", "Cecil"}) {
    Create(f, admin, Person(first, "Kovács", {}));
    Create(f, admin, Person(first, "Szabó", {}));
  }
  for (const char* order : {"", "last_name", "created_at desc", "updated_at desc"}) {
    INFO(order);
    v1::ListContactsRequest req;
    req.set_order_by(order);
    const std::vector<std::string> all = ListIds(f, admin, req);
    REQUIRE(all.size() == 10);
    for (int size : {1, 3, 10}) {
      req.set_page_size(size);
      int pages = 0;
      CHECK(AllPages(f, admin, req, &pages) == all);
      CHECK(pages == (10 + size - 1) / size);
    }
  }
  {
    v1::ListContactsRequest req;
    req.set_page_token("garbage");
    v1::ListContactsResponse resp;
    auto ctx = f.Ctx(admin);
    CHECK(Code(f.stub().ListContacts(ctx.get(), req, &resp)) == grpc::INVALID_ARGUMENT);
    CHECK(ViolationField(*ctx) == "page_token");
  }

  SECTION("a large list counts up to 10000 and pages to its end") {
    REQUIRE(f.pg()
                .Run([&](pqxx::work& tx) -> absl::Status {
                  tx.exec_params(
                      "INSERT INTO org.contacts (tenant_id, id, last_name, owner_user_id) "
                      "SELECT $1, gen_random_uuid(), 'Bulk ' || i, $2 "
                      "FROM generate_series(1, 10050) i",
                      acme.id, acme.admin_id);
                  return absl::OkStatus();
                })
                .ok());
    v1::ListContactsRequest req;
    req.set_page_size(1000);
    v1::ListContactsResponse first;
    SB_REQUIRE_GRPC_OK(f.stub().ListContacts(f.Ctx(admin).get(), req, &first));
    CHECK(first.total_size() == 10000);
    std::vector<std::string> ids = AllPages(f, admin, req);
    CHECK(ids.size() == 10060);
    std::sort(ids.begin(), ids.end());
    CHECK(std::unique(ids.begin(), ids.end()) == ids.end());
    req.set_query("kovács");
    v1::ListContactsResponse few;
    SB_REQUIRE_GRPC_OK(f.stub().ListContacts(f.Ctx(admin).get(), req, &few));
    CHECK(few.total_size() == 5);
  }
}

TEST_CASE("a contact is found by its number in any format", "[contacts]") {
  OrgFixture f;
  TenantInfo acme = f.CreateTenant("acme");
  SetCountry(f, acme, "HU");
  const std::string& admin = acme.admin_token;
  const v1::Contact kata = Create(f, admin, Person("Kata", "Kovács", {"+36 1 234 5678"}));

  for (const char* format : {"+36 1 234 5678", "0036 1 234 5678", "06 1 234 5678", "06-1-234-5678",
                             "(06 1) 234 5678", "+3612345678", "tel:+36-1-234-5678"}) {
    INFO(format);
    const v1::LookupContactsResponse resp = LookupInternal(f, acme.id, format);
    CHECK(resp.normalized_number() == "+3612345678");
    CHECK(Ids(resp) == std::vector<std::string>{kata.id()});
    CHECK(resp.contacts(0).first_name() == "Kata");
  }
  // A contact saved in national form is found by the international one too.
  const v1::Contact bela = Create(f, admin, Person("Béla", "Szabó", {"06 20 555 1234"}));
  CHECK(Ids(LookupInternal(f, acme.id, "+36205551234")) == std::vector<std::string>{bela.id()});
  CHECK(LookupInternal(f, acme.id, "+36 1 234 5679").contacts_size() == 0);

  SECTION("the tenant may come as metadata instead of in the request") {
    v1::LookupContactsRequest req;
    req.set_phone_number("06 1 234 5678");
    v1::LookupContactsResponse resp;
    SB_REQUIRE_GRPC_OK(f.stub().LookupContacts(f.InternalCtx(acme.id).get(), req, &resp));
    CHECK(Ids(resp) == std::vector<std::string>{kata.id()});
    // Without any tenant an internal lookup names the missing field.
    const grpc::Status s = f.stub().LookupContacts(f.InternalCtx().get(), req, &resp);
    CHECK(s.error_code() == grpc::INVALID_ARGUMENT);
    CHECK(s.error_message().find("tenant_id") != std::string::npos);
  }

  SECTION("a bad number is refused naming phone_number") {
    for (const char* bad : {"06 1 234", "call me", "+999 123 4567", ""}) {
      INFO(bad);
      v1::LookupContactsRequest req;
      req.set_tenant_id(acme.id);
      req.set_phone_number(bad);
      v1::LookupContactsResponse resp;
      auto ctx = f.InternalCtx();
      CHECK(Code(f.stub().LookupContacts(ctx.get(), req, &resp)) == grpc::INVALID_ARGUMENT);
      CHECK(ViolationField(*ctx) == "phone_number");
    }
  }

  SECTION("several contacts with one number come best first") {
    const std::string sales = CreateProject(f, admin, "Sales");
    const std::string service = CreateProject(f, admin, "Service");
    v1::Contact in_sales = Person("Sára", "Sales", {"06 1 234 5678"});
    in_sales.set_project_id(sales);
    const v1::Contact sales_contact = Create(f, admin, in_sales);
    CHECK(sales_contact.project_id() == sales);
    v1::Contact in_service = Person("Szilvia", "Service", {"+3612345678"});
    in_service.set_project_id(service);
    const v1::Contact service_contact = Create(f, admin, in_service);
    const v1::Contact plain = Create(f, admin, Person("Pál", "Plain", {"+36 1 234 5678"}));

    // Without a project: the most recently updated first.
    CHECK(
        Ids(LookupInternal(f, acme.id, "06 1 234 5678")) ==
        std::vector<std::string>{plain.id(), service_contact.id(), sales_contact.id(), kata.id()});
    // With one: its contacts first, then plain ones; other projects' contacts are left out.
    CHECK(Ids(LookupInternal(f, acme.id, "06 1 234 5678", sales)) ==
          std::vector<std::string>{sales_contact.id(), plain.id(), kata.id()});
    CHECK(Ids(LookupInternal(f, acme.id, "06 1 234 5678", sales, 2)) ==
          std::vector<std::string>{sales_contact.id(), plain.id()});
    // Touching a contact moves it up.
    v1::Contact touch;
    touch.set_id(kata.id());
    touch.set_description("called back");
    REQUIRE(TryUpdate(f, admin, touch, {"description"}).code == grpc::OK);
    CHECK(Ids(LookupInternal(f, acme.id, "+3612345678", "", 1)) ==
          std::vector<std::string>{kata.id()});
    // The CRM answer arrives with issue #13; until then include_crm changes nothing.
    v1::LookupContactsRequest req;
    req.set_tenant_id(acme.id);
    req.set_phone_number("+3612345678");
    req.set_include_crm(true);
    v1::LookupContactsResponse resp;
    SB_REQUIRE_GRPC_OK(f.stub().LookupContacts(f.InternalCtx().get(), req, &resp));
    CHECK(resp.contacts_size() == 4);
    CHECK_FALSE(resp.has_crm_match());
  }

  SECTION("people look up with their own token and see what they may") {
    const std::string anna_id = f.CreateUser(admin, "anna", {"agent"});
    const std::string anna = f.Token("acme", "anna");
    v1::LookupContactsRequest req;
    req.set_phone_number("06 1 234 5678");
    v1::LookupContactsResponse resp;
    SB_REQUIRE_GRPC_OK(f.stub().LookupContacts(f.Ctx(anna).get(), req, &resp));
    CHECK(resp.normalized_number() == "+3612345678");
    CHECK(resp.contacts_size() == 0);  // the admin's contact
    const v1::Contact own = Create(f, anna, Person("Olga", "Own", {"+3612345678"}));
    CHECK(own.owner_user_id() == anna_id);
    v1::LookupContactsResponse again;
    SB_REQUIRE_GRPC_OK(f.stub().LookupContacts(f.Ctx(anna).get(), req, &again));
    CHECK(Ids(again) == std::vector<std::string>{own.id()});
    v1::LookupContactsResponse by_admin;
    SB_REQUIRE_GRPC_OK(f.stub().LookupContacts(f.Ctx(admin).get(), req, &by_admin));
    CHECK(by_admin.contacts_size() == 2);
    // Nobody names another tenant, and nobody looks up without a token.
    TenantInfo globex = f.CreateTenant("globex");
    req.set_tenant_id(globex.id);
    CHECK(Code(f.stub().LookupContacts(f.Ctx(anna).get(), req, &resp)) == grpc::NOT_FOUND);
    CHECK(Code(f.stub().LookupContacts(f.Ctx().get(), req, &resp)) == grpc::UNAUTHENTICATED);
  }
}

TEST_CASE("bad contact input is refused naming the field", "[contacts]") {
  OrgFixture f;
  TenantInfo acme = f.CreateTenant("acme");
  SetCountry(f, acme, "HU");
  const std::string& admin = acme.admin_token;

  auto refused = [&](const v1::Contact& c) {
    const Outcome o = TryCreate(f, admin, c);
    INFO(o.message);
    CHECK(o.code == grpc::INVALID_ARGUMENT);
    return o.field;
  };
  CHECK(refused(Person("Kata", "Kovács", {"06 1 234"})) == "contact.phone_numbers[0].number");
  CHECK(refused(Person("Kata", "Kovács", {"+36 1 234 5678", "call me"})) ==
        "contact.phone_numbers[1].number");
  CHECK(refused(Person("Kata", "Kovács", {"+999 1234 5678"})) == "contact.phone_numbers[0].number");
  CHECK(refused(Person("Kata", "Kovács", {"+36 1 234 5678", "06 1 234 5678"})) ==
        "contact.phone_numbers[1].number");  // the same number twice
  {
    v1::Contact c = Person("Kata", "Kovács");
    c.add_phone_numbers()->set_raw("06 1 23");
    CHECK(refused(c) == "contact.phone_numbers[0].raw");
    c.mutable_phone_numbers(0)->set_raw("");
    CHECK(refused(c) == "contact.phone_numbers[0].number");
  }
  {
    std::vector<std::string> eleven;
    for (int i = 0; i < 11; ++i) eleven.push_back("+36 1 234 56" + std::to_string(10 + i));
    CHECK(refused(Person("Kata", "Kovács", eleven)) == "contact.phone_numbers");
  }
  {
    v1::Contact c = Person("Kata", "Kovács");
    c.set_email("kata at example");
    CHECK(refused(c) == "contact.email");
  }
  for (const char* country : {"XX", "Hungary", "UK", "H"}) {
    INFO(country);
    v1::Contact c = Person("Kata", "Kovács");
    c.mutable_address()->set_country(country);
    CHECK(refused(c) == "contact.address.country");
  }
  {
    v1::Contact c = Person("Kata", "Kovács");
    c.set_crm_url("javascript:alert(1)");
    CHECK(refused(c) == "contact.crm_url");
  }
  CHECK(refused(v1::Contact()) == "contact.last_name");
  {
    v1::Contact c = Person("Kata", "Kovács");
    c.set_owner_user_id("nobody");
    CHECK(refused(c) == "contact.owner_user_id");
  }

  // Unknown projects and owners are bad input naming the field.
  {
    v1::Contact c = Person("Kata", "Kovács");
    c.set_project_id(NewUuid());
    const Outcome o = TryCreate(f, admin, c);
    CHECK(o.code == grpc::INVALID_ARGUMENT);
    CHECK(o.field == "contact.project_id");
    c.set_project_id("not-a-project");
    CHECK(TryCreate(f, admin, c).field == "contact.project_id");
  }
  {
    v1::Contact c = Person("Kata", "Kovács");
    c.set_owner_user_id(NewUuid());
    const Outcome o = TryCreate(f, admin, c);
    CHECK(o.code == grpc::INVALID_ARGUMENT);
    CHECK(o.field == "contact.owner_user_id");
  }

  // Updates check what they change, and need a mask.
  v1::Contact kata = Create(f, admin, Person("Kata", "Kovács", {"+36 1 234 5678"}));
  v1::Contact change;
  change.set_id(kata.id());
  change.add_phone_numbers()->set_number("06 1 234 56789 0");
  Outcome o = TryUpdate(f, admin, change, {"phone_numbers"});
  CHECK(o.code == grpc::INVALID_ARGUMENT);
  CHECK(o.field == "contact.phone_numbers[0].number");
  change.set_email("@");
  CHECK(TryUpdate(f, admin, change, {"email"}).field == "contact.email");
  CHECK(TryUpdate(f, admin, change, {}).field == "update_mask");
  CHECK(TryUpdate(f, admin, change, {"id"}).field == "update_mask");
  change.set_project_id(NewUuid());
  o = TryUpdate(f, admin, change, {"project_id"});
  CHECK(o.code == grpc::INVALID_ARGUMENT);
  CHECK(o.field == "contact.project_id");
  change.set_id(NewUuid());
  CHECK(TryUpdate(f, admin, change, {"description"}).code == grpc::NOT_FOUND);
  // Nothing of the refused updates stuck.
  v1::Contact got;
  REQUIRE(TryGet(f, admin, kata.id(), &got).code == grpc::OK);
  CHECK(google::protobuf::util::MessageDifferencer::Equals(got, kata));
  CHECK(TryGet(f, admin, "not-a-uuid").code == grpc::NOT_FOUND);

  SECTION("national numbers need the tenant's default country") {
    TenantInfo globex = f.CreateTenant("globex");
    const Outcome national =
        TryCreate(f, globex.admin_token, Person("Kata", "K", {"06 1 234 5678"}));
    CHECK(national.code == grpc::INVALID_ARGUMENT);
    CHECK(national.field == "contact.phone_numbers[0].number");
    const v1::Contact ok =
        Create(f, globex.admin_token, Person("Kata", "K", {"+36 1 234 5678", "0049 30 1234567"}));
    CHECK(ok.phone_numbers(1).number() == "+49301234567");
  }
}

TEST_CASE("agents see their own contacts and group leaders their teams' members'", "[contacts]") {
  OrgFixture f;
  TenantInfo acme = f.CreateTenant("acme");
  SetCountry(f, acme, "HU");
  const std::string& admin = acme.admin_token;
  const std::string anna_id = f.CreateUser(admin, "anna", {"agent"});
  const std::string bob_id = f.CreateUser(admin, "bob", {"agent"});
  const std::string gina_id = f.CreateUser(admin, "gina", {"group_leader"});
  f.CreateTeam(admin, "Blue", {anna_id}, {gina_id});
  const std::string anna = f.Token("acme", "anna");
  const std::string bob = f.Token("acme", "bob");
  const std::string gina = f.Token("acme", "gina");

  const v1::Contact annas = Create(f, anna, Person("Anna's", "Customer", {"+36 1 111 1111"}));
  const v1::Contact bobs = Create(f, bob, Person("Bob's", "Customer", {"+36 1 222 2222"}));
  const v1::Contact ginas = Create(f, gina, Person("Gina's", "Customer"));
  CHECK(annas.owner_user_id() == anna_id);
  CHECK(bobs.owner_user_id() == bob_id);

  // An agent: their own contacts only.
  CHECK(TryGet(f, anna, annas.id()).code == grpc::OK);
  CHECK(TryGet(f, anna, bobs.id()).code == grpc::PERMISSION_DENIED);
  CHECK(ListIds(f, anna) == std::vector<std::string>{annas.id()});
  CHECK(Search(f, anna, "customer") == std::vector<std::string>{annas.id()});
  v1::Contact change;
  change.set_id(bobs.id());
  change.set_description("mine now");
  CHECK(TryUpdate(f, anna, change, {"description"}).code == grpc::PERMISSION_DENIED);
  change.set_id(annas.id());
  change.set_owner_user_id(bob_id);
  CHECK(TryUpdate(f, anna, change, {"owner_user_id"}).code == grpc::PERMISSION_DENIED);
  v1::Contact for_bob = Person("For", "Bob");
  for_bob.set_owner_user_id(bob_id);
  CHECK(TryCreate(f, anna, for_bob).code == grpc::PERMISSION_DENIED);
  CHECK(TryDelete(f, anna, bobs.id()).code == grpc::PERMISSION_DENIED);

  // The group leader: their own and their team members' (Anna's), not Bob's.
  CHECK(TryGet(f, gina, annas.id()).code == grpc::OK);
  CHECK(TryGet(f, gina, bobs.id()).code == grpc::PERMISSION_DENIED);
  CHECK(ListIds(f, gina) == std::vector<std::string>{annas.id(), ginas.id()});
  change.set_id(annas.id());
  v1::Contact updated;
  REQUIRE(TryUpdate(f, gina, change, {"description"}, &updated).code == grpc::OK);
  CHECK(updated.description() == "mine now");
  CHECK(TryUpdate(f, gina,
                  [&] {
                    v1::Contact c;
                    c.set_id(bobs.id());
                    c.set_description("no");
                    return c;
                  }(),
                  {"description"})
            .code == grpc::PERMISSION_DENIED);
  // Gina may hand Anna's contact to herself (she reaches both owners), not to Bob.
  change.set_owner_user_id(bob_id);
  CHECK(TryUpdate(f, gina, change, {"owner_user_id"}).code == grpc::PERMISSION_DENIED);
  change.set_owner_user_id(gina_id);
  REQUIRE(TryUpdate(f, gina, change, {"owner_user_id"}, &updated).code == grpc::OK);
  CHECK(updated.owner_user_id() == gina_id);
  CHECK(TryGet(f, anna, annas.id()).code == grpc::PERMISSION_DENIED);
  v1::Contact for_anna = Person("For", "Anna");
  for_anna.set_owner_user_id(anna_id);
  const v1::Contact made_for_anna = Create(f, gina, for_anna);
  CHECK(TryGet(f, anna, made_for_anna.id()).code == grpc::OK);

  // The admin (tenant-wide) sees everything.
  CHECK(ListIds(f, admin).size() == 4);
  {
    v1::ListContactsRequest req;
    req.set_owner_user_id(bob_id);
    CHECK(ListIds(f, admin, req) == std::vector<std::string>{bobs.id()});
    CHECK(ListIds(f, gina, req).empty());
  }

  // contacts.access edits but does not delete: that takes objects.delete as well.
  const Outcome refused = TryDelete(f, anna, made_for_anna.id());
  CHECK(refused.code == grpc::PERMISSION_DENIED);
  CHECK(refused.message.find("objects.delete") != std::string::npos);
  CHECK(TryDelete(f, gina, made_for_anna.id()).code == grpc::PERMISSION_DENIED);
  CHECK(TryGet(f, anna, made_for_anna.id()).code == grpc::OK);
  f.Grant(admin, anna_id, "objects.delete", cv1::SCOPE_OWN);
  const std::string anna_deletes = f.Token("acme", "anna");
  CHECK(TryDelete(f, anna_deletes, bobs.id()).code == grpc::PERMISSION_DENIED);
  CHECK(TryDelete(f, anna_deletes, made_for_anna.id()).code == grpc::OK);
  CHECK(TryGet(f, admin, made_for_anna.id()).code == grpc::NOT_FOUND);
  CHECK(TryDelete(f, admin, bobs.id()).code == grpc::OK);
}

TEST_CASE("without contacts.access nothing of contacts is reachable", "[contacts]") {
  OrgFixture f;
  TenantInfo acme = f.CreateTenant("acme");
  SetCountry(f, acme, "HU");
  const std::string anna_id = f.CreateUser(acme.admin_token, "anna", {"agent"});
  const std::string before = f.Token("acme", "anna");
  const v1::Contact own = Create(f, before, Person("Olga", "Own", {"+36 1 234 5678"}));
  iv1::RevokeUserPermissionRequest revoke;
  revoke.set_user_id(anna_id);
  revoke.set_permission("contacts.access");
  iv1::UserPermissions perms;
  SB_REQUIRE_GRPC_OK(
      f.identity_stub().RevokeUserPermission(f.Ctx(acme.admin_token).get(), revoke, &perms));
  const std::string anna = f.Token("acme", "anna");

  CHECK(TryCreate(f, anna, Person("New", "One")).code == grpc::PERMISSION_DENIED);
  v1::Contact bad_owner = Person("New", "One");
  bad_owner.set_owner_user_id(NewUuid());  // refused for the permission, not for the owner
  CHECK(TryCreate(f, anna, bad_owner).code == grpc::PERMISSION_DENIED);
  CHECK(TryGet(f, anna, own.id()).code == grpc::PERMISSION_DENIED);
  v1::Contact change;
  change.set_id(own.id());
  change.set_description("x");
  CHECK(TryUpdate(f, anna, change, {"description"}).code == grpc::PERMISSION_DENIED);
  CHECK(TryDelete(f, anna, own.id()).code == grpc::PERMISSION_DENIED);
  v1::ListContactsResponse list;
  CHECK(Code(f.stub().ListContacts(f.Ctx(anna).get(), {}, &list)) == grpc::PERMISSION_DENIED);
  v1::LookupContactsRequest lookup;
  lookup.set_phone_number("+3612345678");
  v1::LookupContactsResponse found;
  CHECK(Code(f.stub().LookupContacts(f.Ctx(anna).get(), lookup, &found)) ==
        grpc::PERMISSION_DENIED);
  // The contact is still there for those who may see it.
  CHECK(Ids(LookupInternal(f, acme.id, "+3612345678")) == std::vector<std::string>{own.id()});
}

TEST_CASE("another tenant's contact ids are not found", "[contacts]") {
  OrgFixture f;
  TenantInfo acme = f.CreateTenant("acme");
  TenantInfo globex = f.CreateTenant("globex");
  SetCountry(f, acme, "HU");
  SetCountry(f, globex, "HU");
  const v1::Contact secret =
      Create(f, acme.admin_token, Person("Kata", "Kovács", {"+36 1 234 5678"}));
  const std::string& intruder = globex.admin_token;

  CHECK(TryGet(f, intruder, secret.id()).code == grpc::NOT_FOUND);
  v1::Contact change;
  change.set_id(secret.id());
  change.set_last_name("Hacked");
  CHECK(TryUpdate(f, intruder, change, {"last_name"}).code == grpc::NOT_FOUND);
  CHECK(TryDelete(f, intruder, secret.id()).code == grpc::NOT_FOUND);
  CHECK(ListIds(f, intruder).empty());
  CHECK(Search(f, intruder, "kov").empty());
  CHECK(LookupInternal(f, globex.id, "+3612345678").contacts_size() == 0);
  // A project of another tenant does not exist for this one (the same answer as a made-up id).
  const std::string acme_project = CreateProject(f, acme.admin_token, "Sales");
  v1::Contact c = Person("Gábor", "Globex");
  c.set_project_id(acme_project);
  const Outcome o = TryCreate(f, intruder, c);
  CHECK(o.code == grpc::INVALID_ARGUMENT);
  CHECK(o.field == "contact.project_id");
  // All of it left acme's contact as it was.
  v1::Contact got;
  REQUIRE(TryGet(f, acme.admin_token, secret.id(), &got).code == grpc::OK);
  CHECK(got.last_name() == "Kovács");
  CHECK(Ids(LookupInternal(f, acme.id, "06 1 234 5678")) == std::vector<std::string>{secret.id()});
}

TEST_CASE("CRM lookup settings answer UNIMPLEMENTED until issue 13", "[contacts]") {
  OrgFixture f;
  TenantInfo acme = f.CreateTenant("acme");
  v1::GetCrmLookupConfigRequest req;
  v1::CrmLookupConfig out;
  const grpc::Status s = f.stub().GetCrmLookupConfig(f.Ctx(acme.admin_token).get(), req, &out);
  CHECK(s.error_code() == grpc::UNIMPLEMENTED);
  CHECK(s.error_message() == "CRM lookup settings arrive with issue #13");
}

}  // namespace
}  // namespace sb::org::test
