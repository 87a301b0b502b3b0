#include "libs/sip/message.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <strings.h>

#include <cstdlib>
#include <cstring>

#include "libs/sip/sofia.h"

namespace sb::sip {
namespace {

std::string_view View(const char* s) { return s == nullptr ? std::string_view() : s; }

// Encodes a header's field value (without "Name: ") into a string.
std::string FieldValue(const msg_header_t* h) {
  if (h == nullptr) return {};
  char stack_buf[512];
  issize_t n = msg_header_field_e(stack_buf, sizeof(stack_buf), h, 0);
  if (n < 0) return {};
  if (static_cast<size_t>(n) < sizeof(stack_buf)) return std::string(stack_buf, n);
  std::string out(static_cast<size_t>(n) + 1, '\0');
  n = msg_header_field_e(out.data(), static_cast<isize_t>(out.size()), h, 0);
  if (n < 0) return {};
  out.resize(static_cast<size_t>(n));
  return out;
}

std::string UrlText(const url_t* url) {
  if (url == nullptr || url->url_type == url_invalid) return {};
  char buf[1024];
  const issize_t n = url_e(buf, sizeof(buf), url);
  if (n < 0 || static_cast<size_t>(n) >= sizeof(buf)) return {};
  return std::string(buf, static_cast<size_t>(n));
}

NameAddr ToNameAddr(const char* display, const url_t* url, const char* tag) {
  NameAddr out;
  if (display != nullptr) {
    std::string_view d = display;
    if (d.size() >= 2 && d.front() == '"' && d.back() == '"') d = d.substr(1, d.size() - 2);
    out.display = std::string(d);
  }
  out.uri = UrlText(url);
  if (url != nullptr) {
    out.user = std::string(View(url->url_user));
    out.host = std::string(View(url->url_host));
    out.port = std::string(View(url->url_port));
  }
  out.tag = std::string(View(tag));
  return out;
}

std::string StripInstance(const char* raw) {
  std::string_view v = View(raw);
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
  if (v.size() >= 2 && v.front() == '<' && v.back() == '>') v = v.substr(1, v.size() - 2);
  return std::string(v);
}

// Parses q-values like "0.5", "1", "0.125" into thousandths.
int ParseQ(const char* q) {
  if (q == nullptr) return 1000;
  std::string_view v = q;
  int whole = 0;
  size_t i = 0;
  if (i < v.size() && (v[i] == '0' || v[i] == '1')) whole = v[i++] - '0';
  int frac = 0;
  int scale = 100;
  if (i < v.size() && v[i] == '.') {
    ++i;
    for (; i < v.size() && scale > 0 && v[i] >= '0' && v[i] <= '9'; ++i, scale /= 10) {
      frac += (v[i] - '0') * scale;
    }
  }
  const int value = whole * 1000 + frac;
  return value > 1000 ? 1000 : value;
}

}  // namespace

std::string_view StatusPhrase(int status) {
  const char* phrase = sip_status_phrase(status);
  return phrase != nullptr ? std::string_view(phrase) : std::string_view("Unknown");
}

Message::~Message() {
  if (msg_ != nullptr) msg_destroy(msg_);
}

Message::Message(const Message& other)
    : msg_(other.msg_ == nullptr ? nullptr : msg_ref_create(other.msg_)) {}

Message& Message::operator=(const Message& other) {
  if (this != &other) {
    msg_t* next = other.msg_ == nullptr ? nullptr : msg_ref_create(other.msg_);
    if (msg_ != nullptr) msg_destroy(msg_);
    msg_ = next;
  }
  return *this;
}

Message::Message(Message&& other) noexcept : msg_(other.msg_) { other.msg_ = nullptr; }

Message& Message::operator=(Message&& other) noexcept {
  if (this != &other) {
    if (msg_ != nullptr) msg_destroy(msg_);
    msg_ = other.msg_;
    other.msg_ = nullptr;
  }
  return *this;
}

Message Message::Adopt(msg_t* msg) {
  Message m;
  m.msg_ = msg;
  return m;
}

Message Message::Ref(msg_t* msg) {
  Message m;
  m.msg_ = msg == nullptr ? nullptr : msg_ref_create(msg);
  return m;
}

sip_t* Message::sip() const { return msg_ == nullptr ? nullptr : sip_object(msg_); }

bool Message::is_request() const {
  const sip_t* s = sip();
  return s != nullptr && s->sip_request != nullptr;
}

std::string_view Message::method() const {
  const sip_t* s = sip();
  if (s == nullptr) return {};
  if (s->sip_request != nullptr) return View(s->sip_request->rq_method_name);
  if (s->sip_cseq != nullptr) return View(s->sip_cseq->cs_method_name);
  return {};
}

int Message::status() const {
  const sip_t* s = sip();
  return s != nullptr && s->sip_status != nullptr ? s->sip_status->st_status : 0;
}

std::string_view Message::phrase() const {
  const sip_t* s = sip();
  return s != nullptr && s->sip_status != nullptr ? View(s->sip_status->st_phrase)
                                                  : std::string_view();
}

std::string Message::request_uri() const {
  const sip_t* s = sip();
  return s != nullptr && s->sip_request != nullptr ? UrlText(s->sip_request->rq_url)
                                                   : std::string();
}

std::string Message::request_user() const {
  const sip_t* s = sip();
  return s != nullptr && s->sip_request != nullptr
             ? std::string(View(s->sip_request->rq_url->url_user))
             : std::string();
}

std::string Message::request_host() const {
  const sip_t* s = sip();
  return s != nullptr && s->sip_request != nullptr
             ? std::string(View(s->sip_request->rq_url->url_host))
             : std::string();
}

std::string_view Message::call_id() const {
  const sip_t* s = sip();
  return s != nullptr && s->sip_call_id != nullptr ? View(s->sip_call_id->i_id)
                                                   : std::string_view();
}

uint32_t Message::cseq() const {
  const sip_t* s = sip();
  return s != nullptr && s->sip_cseq != nullptr ? s->sip_cseq->cs_seq : 0;
}

NameAddr Message::from() const {
  const sip_t* s = sip();
  if (s == nullptr || s->sip_from == nullptr) return {};
  return ToNameAddr(s->sip_from->a_display, s->sip_from->a_url, s->sip_from->a_tag);
}

NameAddr Message::to() const {
  const sip_t* s = sip();
  if (s == nullptr || s->sip_to == nullptr) return {};
  return ToNameAddr(s->sip_to->a_display, s->sip_to->a_url, s->sip_to->a_tag);
}

std::vector<ContactEntry> Message::contacts() const {
  std::vector<ContactEntry> out;
  const sip_t* s = sip();
  if (s == nullptr) return out;
  for (const sip_contact_t* m = s->sip_contact; m != nullptr; m = m->m_next) {
    if (m->m_url->url_type == url_any) continue;  // "*"
    ContactEntry entry;
    entry.address = ToNameAddr(m->m_display, m->m_url, nullptr);
    if (m->m_expires != nullptr) {
      char* end = nullptr;
      const unsigned long v = std::strtoul(m->m_expires, &end, 10);
      if (end != m->m_expires && *end == '\0') {
        entry.expires = static_cast<uint32_t>(v > 0xffffffffUL ? 0xffffffffUL : v);
      }
    }
    entry.q = ParseQ(m->m_q);
    entry.instance = StripInstance(msg_header_find_param(m->m_common, "+sip.instance"));
    if (const char* reg_id = msg_header_find_param(m->m_common, "reg-id")) {
      entry.reg_id = std::atoi(reg_id);
    }
    out.push_back(std::move(entry));
  }
  return out;
}

bool Message::contact_star() const {
  const sip_t* s = sip();
  if (s == nullptr) return false;
  for (const sip_contact_t* m = s->sip_contact; m != nullptr; m = m->m_next) {
    if (m->m_url->url_type == url_any) return true;
  }
  return false;
}

std::optional<uint32_t> Message::expires() const {
  const sip_t* s = sip();
  if (s == nullptr || s->sip_expires == nullptr) return std::nullopt;
  return static_cast<uint32_t>(s->sip_expires->ex_delta);
}

std::optional<uint32_t> Message::max_forwards() const {
  const sip_t* s = sip();
  if (s == nullptr || s->sip_max_forwards == nullptr) return std::nullopt;
  return static_cast<uint32_t>(s->sip_max_forwards->mf_count);
}

std::string Message::authorization() const {
  const sip_t* s = sip();
  return s == nullptr ? std::string()
                      : FieldValue(reinterpret_cast<const msg_header_t*>(s->sip_authorization));
}

std::string Message::proxy_authorization() const {
  const sip_t* s = sip();
  return s == nullptr
             ? std::string()
             : FieldValue(reinterpret_cast<const msg_header_t*>(s->sip_proxy_authorization));
}

std::string_view Message::user_agent() const {
  const sip_t* s = sip();
  return s != nullptr && s->sip_user_agent != nullptr ? View(s->sip_user_agent->g_string)
                                                      : std::string_view();
}

std::string Message::content_type() const {
  const sip_t* s = sip();
  return s != nullptr && s->sip_content_type != nullptr
             ? std::string(View(s->sip_content_type->c_type))
             : std::string();
}

std::string_view Message::body() const {
  const sip_t* s = sip();
  if (s == nullptr || s->sip_payload == nullptr) return {};
  return std::string_view(s->sip_payload->pl_data, s->sip_payload->pl_len);
}

std::vector<std::string> Message::headers(std::string_view name) const {
  std::vector<std::string> out;
  sip_t* s = sip();
  if (s == nullptr || name.empty() || name.size() > 128) return out;
  const std::string key(name);
  isize_t name_len = 0;
  const msg_href_t* href = msg_find_hclass(msg_mclass(msg_), key.c_str(), &name_len);
  if (href == nullptr || href->hr_class == nullptr) return out;
  auto* slot = reinterpret_cast<msg_header_t**>(reinterpret_cast<char*>(s) + href->hr_offset);
  const bool unknown = href->hr_class->hc_hash == msg_unknown_hash;
  for (msg_header_t* h = *slot; h != nullptr; h = h->sh_next) {
    if (unknown) {
      if (h->sh_unknown->un_name != nullptr &&
          strcasecmp(h->sh_unknown->un_name, key.c_str()) == 0) {
        out.emplace_back(View(h->sh_unknown->un_value));
      }
    } else {
      out.push_back(FieldValue(h));
    }
  }
  return out;
}

std::string Message::header(std::string_view name) const {
  std::vector<std::string> all = headers(name);
  return all.empty() ? std::string() : std::move(all.front());
}

std::string Message::source_ip() const {
  if (msg_ == nullptr) return {};
  const su_addrinfo_t* ai = msg_addrinfo(msg_);
  if (ai == nullptr || ai->ai_addr == nullptr) return {};
  char buf[INET6_ADDRSTRLEN] = {0};
  if (ai->ai_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(ai->ai_addr)->sin_addr, buf,
              sizeof(buf));
  } else if (ai->ai_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(ai->ai_addr)->sin6_addr, buf,
              sizeof(buf));
  }
  return buf;
}

int Message::source_port() const {
  if (msg_ == nullptr) return 0;
  const su_addrinfo_t* ai = msg_addrinfo(msg_);
  if (ai == nullptr || ai->ai_addr == nullptr) return 0;
  if (ai->ai_family == AF_INET) {
    return ntohs(reinterpret_cast<const sockaddr_in*>(ai->ai_addr)->sin_port);
  }
  if (ai->ai_family == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6*>(ai->ai_addr)->sin6_port);
  }
  return 0;
}

std::string Message::transport() const {
  if (msg_ == nullptr) return {};
  const su_addrinfo_t* ai = msg_addrinfo(msg_);
  if (ai == nullptr) return {};
  // TLS runs over TCP too: ServerTransaction::transport() tells them apart.
  return ai->ai_protocol == IPPROTO_TCP ? "tcp" : "udp";
}

std::string Message::ToString() const {
  if (msg_ == nullptr) return {};
  su_home_t home[1] = {SU_HOME_INIT(home)};
  size_t len = 0;
  char* text = msg_as_string(home, msg_, nullptr, 0, &len);
  std::string out = text == nullptr ? std::string() : std::string(text, len);
  su_home_deinit(home);
  return out;
}

}  // namespace sb::sip
