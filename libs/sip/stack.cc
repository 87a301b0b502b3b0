#include "libs/sip/stack.h"

#include <pthread.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdarg>
#include <cstdio>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "libs/common/check.h"
#include "libs/sip/sofia.h"
#include "openssl/rand.h"
#include "spdlog/spdlog.h"

extern "C" {
// Exported by libsofia-sip-ua but declared only in its private headers.
extern su_log_t nta_log[];
extern su_log_t tport_log[];
}

namespace sb::sip {
namespace {

// sofia writes log lines in fragments (several calls per line): collect them per thread and
// hand whole lines to spdlog.
void SofiaLogger(void* /*stream*/, const char* fmt, va_list ap) noexcept {
  thread_local std::string line;
  char buf[1024];
  va_list copy;
  va_copy(copy, ap);
  const int n = std::vsnprintf(buf, sizeof(buf), fmt, copy);
  va_end(copy);
  if (n <= 0) return;
  line.append(buf, static_cast<size_t>(n) < sizeof(buf) ? static_cast<size_t>(n) : sizeof(buf) - 1);
  size_t pos;
  while ((pos = line.find('\n')) != std::string::npos) {
    std::string_view text(line.data(), pos);
    if (!text.empty()) spdlog::debug("sofia: {}", text);
    line.erase(0, pos + 1);
  }
  if (line.size() > 4096) line.clear();
}

void RedirectSofiaLogs() {
  static const bool done = [] {
    for (su_log_t* log : {su_log_default, su_log_global, nta_log, tport_log}) {
      su_log_redirect(log, SofiaLogger, nullptr);
    }
    // Warnings and errors only: per-message traces would cost more than the SIP work itself.
    su_log_set_level(nullptr, 1);
    su_log_set_level(nta_log, 1);
    su_log_set_level(tport_log, 1);
    return true;
  }();
  (void)done;
}

// Header values must not smuggle in line breaks (header injection from echoed input).
void AppendClean(std::string& out, std::string_view text) {
  for (char c : text) {
    if (c != '\r' && c != '\n' && c != '\0') out.push_back(c);
  }
}

std::string HeaderText(const std::vector<Header>& headers) {
  std::string out;
  for (const Header& h : headers) {
    if (h.name.empty()) continue;
    AppendClean(out, h.name);
    out += ": ";
    AppendClean(out, h.value);
    out += "\r\n";
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Parsing leniency for what sofia-sip 1.12 gets wrong (RFC 4475).
//
// sofia's method parser rejects two of RFC 3261's token characters, '+' and '`'. A request line
// with such a method was thrown away as garbage with no answer (RFC 4475 §3.1.1.2 says it is
// valid and gets 501), and a CSeq with one made the request a 400. A Request-URI with LWS in it
// (§3.1.2.8, which must get 400) also made the request line unparsable, so it was dropped
// unanswered. Worse, over TCP a first line sofia cannot parse at all (random bytes, a status
// code beyond 699 as in §3.1.2.19) makes tport stop reading the connection while nta drops the
// message without closing it: the server never sees the peer's FIN and holds the socket in
// CLOSE_WAIT for nta's 30-minute idle time, one per junk connection.
//
// The agent therefore parses with a copy of sofia's SIP message class whose first-line and CSeq
// parsers fall back to RFC 3261's grammar when sofia's own parser fails, and never fail
// themselves on a first line:
//   - a Request-URI that cannot be parsed becomes kUnparsableUri, which the UAS checks in
//     Trampolines::LegRequest answer with 400;
//   - a request line that is not Method SP Request-URI SP SIP-Version gets an invalid URI, so
//     nta's sanity check answers 400 (when there is a Via to answer to) or drops it and
//     half-closes the stream;
//   - a status line that cannot be parsed marks the message truncated, so nta drops it.
// Either way the message is not a fatal parse error, so tport keeps reading and closes the
// connection when the peer does.

constexpr char kUnparsableScheme[] = "x-switchboard-unparsable";
constexpr char kUnparsableUri[] = "x-switchboard-unparsable:request-uri";

// RFC 3261 §25.1: token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")
bool IsTokenChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
         (c != '\0' && std::strchr("-.!%*_+`'~", c) != nullptr);
}

bool IsLws(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

size_t SpanToken(const char* s) {
  size_t n = 0;
  while (IsTokenChar(s[n])) ++n;
  return n;
}

// "SIP/" 1*DIGIT "." 1*DIGIT; sofia answers anything but 2.0 with 505.
bool IsSipVersion(const char* s) {
  if (strncasecmp(s, "SIP/", 4) != 0) return false;
  s += 4;
  if (!absl::ascii_isdigit(static_cast<unsigned char>(*s))) return false;
  while (absl::ascii_isdigit(static_cast<unsigned char>(*s))) ++s;
  if (*s++ != '.' || !absl::ascii_isdigit(static_cast<unsigned char>(*s))) return false;
  while (absl::ascii_isdigit(static_cast<unsigned char>(*s))) ++s;
  return *s == '\0';
}

// Method SP Request-URI SP SIP-Version, in `s` (a copy the message owns).
issize_t ParseRequestLineLeniently(su_home_t* home, sip_request_t* rq, char* s) {
  const size_t method_len = SpanToken(s);
  if (method_len == 0 || s[method_len] != ' ') return -1;
  s[method_len] = '\0';
  char* uri = s + method_len + 1;
  char* end = uri + std::strlen(uri);
  while (end > uri && (end[-1] == ' ' || end[-1] == '\t')) --end;
  *end = '\0';
  // The version is the last word; whatever lies between is the Request-URI.
  char* version = end;
  while (version > uri && version[-1] != ' ' && version[-1] != '\t') --version;
  if (version == uri || !IsSipVersion(version)) return -1;
  char* uri_end = version;
  while (uri_end > uri && (uri_end[-1] == ' ' || uri_end[-1] == '\t')) --uri_end;
  *uri_end = '\0';
  while (*uri == ' ' || *uri == '\t') ++uri;
  rq->rq_method = sip_method_code(s);
  rq->rq_method_name = s;
  rq->rq_version = version;
  if (*uri != '\0' && std::strpbrk(uri, " \t") == nullptr && url_d(rq->rq_url, uri) >= 0) {
    return 0;
  }
  std::memset(rq->rq_url, 0, sizeof(rq->rq_url));
  char* bad = su_strdup(home, kUnparsableUri);
  return bad != nullptr && url_d(rq->rq_url, bad) >= 0 ? 0 : -1;
}

issize_t ParseRequestLine(su_home_t* home, msg_header_t* h, char* s, isize_t slen) noexcept {
  char* pristine = su_strndup(home, s, slen);
  if (pristine == nullptr) return -1;
  if (sip_request_class->hc_parse(home, h, s, slen) >= 0) return 0;
  auto* rq = reinterpret_cast<sip_request_t*>(h);
  if (ParseRequestLineLeniently(home, rq, pristine) >= 0) return 0;
  // Not a request line at all: a request nta's sanity check refuses (url_invalid).
  rq->rq_method = sip_method_invalid;
  rq->rq_method_name = "INVALID";
  rq->rq_version = "SIP/2.0";
  std::memset(rq->rq_url, 0, sizeof(rq->rq_url));
  rq->rq_url->url_type = url_invalid;
  return 0;
}

// A status line sofia cannot parse (e.g. a code beyond 699, RFC 4475 §3.1.2.19): the message is
// marked truncated, which nta's sanity check drops. The parse home of a message is the message.
issize_t ParseStatusLine(su_home_t* home, msg_header_t* h, char* s, isize_t slen) noexcept {
  if (sip_status_class->hc_parse(home, h, s, slen) >= 0) return 0;
  auto* st = reinterpret_cast<sip_status_t*>(h);
  st->st_version = "SIP/2.0";
  st->st_status = 0;
  st->st_phrase = "";
  msg_set_flags(reinterpret_cast<msg_t*>(home), MSG_FLG_TRUNC);
  return 0;
}

// 1*DIGIT LWS Method, with the number at most 2**32-1 (RFC 3261 §8.1.1.5).
issize_t ParseCSeq(su_home_t* home, msg_header_t* h, char* s, isize_t slen) noexcept {
  char* p = su_strndup(home, s, slen);
  if (p == nullptr) return -1;
  if (sip_cseq_class->hc_parse(home, h, s, slen) >= 0) return 0;
  size_t digits = 0;
  uint64_t seq = 0;
  while (absl::ascii_isdigit(static_cast<unsigned char>(p[digits]))) {
    seq = seq * 10 + static_cast<uint64_t>(p[digits] - '0');
    if (++digits > 10) return -1;
  }
  if (digits == 0 || seq > 0xffffffffu || !IsLws(p[digits])) return -1;
  char* method = p + digits;
  while (IsLws(*method)) ++method;
  const size_t method_len = SpanToken(method);
  char* rest = method + method_len;
  while (IsLws(*rest)) ++rest;
  if (method_len == 0 || *rest != '\0') return -1;
  method[method_len] = '\0';
  auto* cs = reinterpret_cast<sip_cseq_t*>(h);
  cs->cs_seq = static_cast<uint32_t>(seq);
  cs->cs_method = sip_method_code(method);
  cs->cs_method_name = method;
  return 0;
}

// Puts `shadow` (same name and hash as `original`) where `original` sits in the class's parsing
// table, and `original` at the next free slot of the same probe chain: parsing finds the shadow
// first by name, while sofia code that looks the original class up by pointer (to insert a
// CSeq it made itself) still finds it, at the same offset.
bool ShadowHeaderClass(msg_mclass_t* mc, msg_hclass_t* original, msg_hclass_t* shadow) {
  const int n = mc->mc_hash_size;
  int at = -1;
  for (int i = original->hc_hash % n, k = 0; k < n && mc->mc_hash[i].hr_class != nullptr;
       i = (i + 1) % n, ++k) {
    if (mc->mc_hash[i].hr_class == original) {
      at = i;
      break;
    }
  }
  if (at < 0) return false;
  for (int i = (at + 1) % n, k = 1; k < n; i = (i + 1) % n, ++k) {
    if (mc->mc_hash[i].hr_class == nullptr) {
      mc->mc_hash[i] = mc->mc_hash[at];
      mc->mc_hash[at].hr_class = shadow;
      ++mc->mc_hash_used;
      return true;
    }
  }
  return false;
}

// sofia's SIP message class with the lenient parsers above; built once, never freed.
msg_mclass_t const* LenientSipClass() {
  static msg_mclass_t const* const mclass = [] {
    static msg_hclass_s request = *sip_request_class;
    request.hc_parse = ParseRequestLine;
    static msg_hclass_s status = *sip_status_class;
    status.hc_parse = ParseStatusLine;
    static msg_hclass_s cseq = *sip_cseq_class;
    cseq.hc_parse = ParseCSeq;
    msg_mclass_t* mc = msg_mclass_clone(sip_default_mclass(), 0, 0);
    SB_CHECK(mc != nullptr) << "sofia: cannot copy the SIP message class";
    // The request line has no name: sofia finds its slot by hash, not by pointer.
    mc->mc_request[0].hr_class = &request;
    mc->mc_status[0].hr_class = &status;
    SB_CHECK(ShadowHeaderClass(mc, sip_cseq_class, &cseq)) << "sofia: no room for CSeq parser";
    return mc;
  }();
  return mclass;
}

std::string RandomHex(int bytes) {
  unsigned char raw[32];
  SB_CHECK(bytes <= 32);
  SB_CHECK(RAND_bytes(raw, bytes) == 1);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes * 2);
  for (int i = 0; i < bytes; ++i) {
    out.push_back(kHex[raw[i] >> 4]);
    out.push_back(kHex[raw[i] & 0xf]);
  }
  return out;
}

}  // namespace

namespace internal {

// The noexcept functions sofia calls, each turning a typed magic pointer back into our object.
// An exception escaping into C would be undefined behaviour: each one catches everything.
struct Trampolines {
  static int Wakeup(Stack* stack, su_wait_t* /*wait*/, Stack* /*arg*/) noexcept {
    uint64_t value;
    while (read(stack->wake_fd_, &value, sizeof(value)) > 0) {
    }
    stack->Drain();
    return 0;
  }

  static void Prepoll(Stack* stack, su_root_t* /*root*/) noexcept {
    // Objects whose last reference went away inside a callback die here, once sofia's call stack
    // has unwound.
    while (!stack->deferred_.empty()) {
      std::vector<std::shared_ptr<void>> batch;
      batch.swap(stack->deferred_);
      batch.clear();
    }
  }

  static int Stateless(Stack* stack, nta_agent_t* agent, msg_t* msg, sip_t* sip) noexcept {
    // Requests always reach the default leg; what comes here is a response that matches no
    // client transaction (a late retransmission): RFC 3261 §18.1.2 says drop it.
    ++stack->stats_.responses_received;
    nta_msg_discard(agent, msg);
    return 0;
  }

  // RFC 3261 §8.2.2: what a UAS refuses before looking at the request any further. Answers and
  // ends the transaction, returning true, or returns false to let the request through.
  static bool RefuseUnacceptable(Stack& stack, nta_incoming_t* irq, const sip_t* sip) {
    if (sip == nullptr || sip->sip_request == nullptr) return false;
    const sip_method_t method = sip->sip_request->rq_method;
    if (method == sip_method_ack) return false;  // never answered
    const url_t* uri = sip->sip_request->rq_url;
    const char* server = stack.options_.name.c_str();
    if (uri->url_scheme != nullptr && std::strcmp(uri->url_scheme, kUnparsableScheme) == 0) {
      nta_incoming_treply(irq, 400, "Bad Request-URI", SIPTAG_SERVER_STR(server), TAG_END());
    } else if (uri->url_type != url_sip && uri->url_type != url_sips && uri->url_type != url_tel) {
      nta_incoming_treply(irq, SIP_416_UNSUPPORTED_URI, SIPTAG_SERVER_STR(server), TAG_END());
    } else {
      std::string unsupported;
      if (method != sip_method_cancel) {
        for (const sip_require_t* r = sip->sip_require; r != nullptr; r = r->k_next) {
          for (const msg_param_t* tag = r->k_items; tag != nullptr && *tag != nullptr; ++tag) {
            bool known = false;
            for (const std::string& s : stack.options_.supported) {
              known = known || strcasecmp(s.c_str(), *tag) == 0;
            }
            if (!known) {
              if (!unsupported.empty()) unsupported += ", ";
              AppendClean(unsupported, *tag);
            }
          }
        }
      }
      if (unsupported.empty()) return false;
      nta_incoming_treply(irq, SIP_420_BAD_EXTENSION, SIPTAG_UNSUPPORTED_STR(unsupported.c_str()),
                          SIPTAG_SERVER_STR(server), TAG_END());
    }
    nta_incoming_destroy(irq);
    return true;
  }

  static int LegRequest(Dialog* dialog, nta_leg_t* /*leg*/, nta_incoming_t* irq,
                        const sip_t* sip) noexcept {
    Stack& stack = dialog->stack_;
    ++stack.stats_.requests_received;
    try {
      if (RefuseUnacceptable(stack, irq, sip)) return 0;
      auto tx = std::shared_ptr<ServerTransaction>(
          new ServerTransaction(stack, irq, Message::Adopt(nta_incoming_getrequest(irq))));
      nta_incoming_bind(irq, AckCancel, tx.get());
      // The dialog may be dropped by its own handler (a BYE ends the call).
      stack.DeferRelease(dialog->shared_from_this());
      if (dialog->on_request_) dialog->on_request_(tx);
      stack.DeferRelease(std::move(tx));
    } catch (const std::exception& e) {
      spdlog::error("sip: request handler threw: {}", e.what());
    } catch (...) {
      spdlog::error("sip: request handler threw");
    }
    return 0;
  }

  static int AckCancel(ServerTransaction* tx, nta_incoming_t* irq, const sip_t* sip) noexcept {
    try {
      auto self = tx->shared_from_this();
      tx->stack_.DeferRelease(self);
      if (sip != nullptr && sip->sip_request != nullptr &&
          sip->sip_request->rq_method == sip_method_cancel) {
        tx->final_status_ = 487;  // nta answered the INVITE
        if (tx->on_cancel_) tx->on_cancel_();
      } else if (tx->on_ack_) {
        tx->on_ack_(Message::Adopt(nta_incoming_getrequest_ackcancel(irq)));
      }
      tx->stack_.Post([self] { self->Release(); });
    } catch (const std::bad_weak_ptr&) {
      // The transaction object is being destroyed: nobody listens any more.
    } catch (const std::exception& e) {
      spdlog::error("sip: ACK/CANCEL handler threw: {}", e.what());
    } catch (...) {
      spdlog::error("sip: ACK/CANCEL handler threw");
    }
    return 0;
  }

  static int Response(ClientTransaction* ct, nta_outgoing_t* orq, const sip_t* sip) noexcept {
    try {
      ++ct->stack_.stats_.responses_received;
      auto self = ct->shared_from_this();
      ct->stack_.DeferRelease(self);
      Message response = Message::Adopt(nta_outgoing_getresponse(orq));
      if (!response.valid()) return 0;
      const int status = response.status();
      const bool invite = nta_outgoing_method(orq) == sip_method_invite;
      if (ct->on_response_) ct->on_response_(response);
      if (status >= 200 && ct->orq_ != nullptr) {
        // A transaction kept by its owner after the end (a call keeps its BYEs until it is
        // forgotten) would stay in nta's queues, which nta walks on every timer tick: with
        // thousands of calls that walk was most of the loop's time. So nta gets it back as soon
        // as its final response is handled; an INVITE's 2xx after the 32 s in which the far end
        // may retransmit it (each retransmission is handed to on_response for a new ACK).
        ct->final_status_ = status;
        if (!invite || status >= 300) {
          ct->stack_.Post([self] { self->Release(); });
        } else if (ct->release_timer_ == nullptr) {
          std::weak_ptr<ClientTransaction> weak = self;
          ct->release_timer_ = ct->stack_.After(absl::Seconds(32), [weak] {
            if (auto t = weak.lock()) t->Release();
          });
        }
      }
    } catch (const std::bad_weak_ptr&) {
    } catch (const std::exception& e) {
      spdlog::error("sip: response handler threw: {}", e.what());
    } catch (...) {
      spdlog::error("sip: response handler threw");
    }
    return 0;
  }

  static void TimerFired(Stack* /*stack*/, su_timer_t* /*t*/, Timer* timer) noexcept {
    try {
      // Move the function out first: it may destroy the Timer.
      absl::AnyInvocable<void()> fn = std::move(timer->fn_);
      timer->fn_ = nullptr;
      if (fn) fn();
    } catch (const std::exception& e) {
      spdlog::error("sip: timer threw: {}", e.what());
    } catch (...) {
      spdlog::error("sip: timer threw");
    }
  }
};

}  // namespace internal

// ---------------------------------------------------------------------------------------------
// ServerTransaction

ServerTransaction::ServerTransaction(Stack& stack, void* irq, Message request)
    : stack_(stack), irq_(irq), request_(std::move(request)) {
  ++stack_.stats_.server_transactions;
}

ServerTransaction::~ServerTransaction() {
  --stack_.stats_.server_transactions;
  release_timer_.reset();
  Release();
}

// A transaction held after its end (a call keeps its INVITE until it is forgotten) would stay in
// nta's terminated queue, which nta walks on every timer tick to free the released ones: with
// thousands of calls that walk was most of the SIP loop's time.
void ServerTransaction::ReleaseSoon() {
  const bool invite_2xx =
      nta_incoming_method(static_cast<nta_incoming_t*>(irq_)) == sip_method_invite &&
      final_status_ < 300;
  if (!invite_2xx) {
    stack_.Post([self = shared_from_this()] { self->Release(); });
  } else if (release_timer_ == nullptr) {
    // The ACK releases it (AckCancel); a caller whose ACK never comes, after nta gives up.
    std::weak_ptr<ServerTransaction> weak = shared_from_this();
    release_timer_ = stack_.After(absl::Seconds(32), [weak] {
      if (auto t = weak.lock()) t->Release();
    });
  }
}

void ServerTransaction::Release() {
  auto* irq = static_cast<nta_incoming_t*>(irq_);
  if (irq != nullptr && stack_.agent_ != nullptr && transport_.empty()) transport_ = transport();
  irq_ = nullptr;
  if (irq == nullptr || stack_.agent_ == nullptr) return;
  nta_incoming_bind(irq, nullptr, nullptr);
  if (!discard_ && nta_incoming_method(irq) != sip_method_ack && nta_incoming_status(irq) < 200) {
    nta_incoming_treply(irq, SIP_500_INTERNAL_SERVER_ERROR, TAG_END());
  }
  nta_incoming_destroy(irq);
}

std::string ServerTransaction::transport() const {
  auto* irq = static_cast<nta_incoming_t*>(irq_);
  if (irq == nullptr) return transport_.empty() ? "udp" : transport_;
  tport_t* tp = nta_incoming_transport(static_cast<nta_agent_t*>(stack_.agent_), irq, nullptr);
  std::string out = "udp";
  if (tp != nullptr) {
    const tp_name_t* name = tport_name(tp);
    if (name != nullptr && name->tpn_proto != nullptr) {
      out = absl::AsciiStrToLower(name->tpn_proto);
    }
    tport_unref(tp);
  }
  return out;
}

int ServerTransaction::status() const {
  return irq_ == nullptr ? final_status_ : nta_incoming_status(static_cast<nta_incoming_t*>(irq_));
}

bool ServerTransaction::Reply(int status, std::string_view phrase, const ReplyOptions& options) {
  SB_CHECK(stack_.InLoop());
  auto* irq = static_cast<nta_incoming_t*>(irq_);
  if (irq == nullptr || status < 100 || status > 699) return false;
  if (nta_incoming_method(irq) == sip_method_ack) return false;
  if (nta_incoming_status(irq) >= 200) return false;
  std::string phrase_text(phrase);
  if (phrase_text.empty()) {
    const char* standard = sip_status_phrase(status);
    phrase_text = standard != nullptr ? standard : "Unknown";
  }
  const std::string headers = HeaderText(options.headers);
  const int rc = nta_incoming_treply(
      irq, status, phrase_text.c_str(),
      TAG_IF(!options.contact.empty(), SIPTAG_CONTACT_STR(options.contact.c_str())),
      TAG_IF(!options.content_type.empty(), SIPTAG_CONTENT_TYPE_STR(options.content_type.c_str())),
      TAG_IF(!options.body.empty(), SIPTAG_PAYLOAD_STR(options.body.c_str())),
      TAG_IF(!headers.empty(), SIPTAG_HEADER_STR(headers.c_str())),
      SIPTAG_SERVER_STR(stack_.options_.name.c_str()), TAG_END());
  if (rc != 0) return false;
  if (status >= 200) {
    final_status_ = status;
    ReleaseSoon();
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// ClientTransaction

ClientTransaction::ClientTransaction(Stack& stack, ResponseFn on_response)
    : stack_(stack), on_response_(std::move(on_response)) {
  ++stack_.stats_.client_transactions;
}

ClientTransaction::~ClientTransaction() {
  --stack_.stats_.client_transactions;
  release_timer_.reset();
  Release();
}

void ClientTransaction::Release() {
  auto* orq = static_cast<nta_outgoing_t*>(orq_);
  orq_ = nullptr;
  if (orq == nullptr || stack_.agent_ == nullptr) return;
  nta_outgoing_bind(orq, nullptr, nullptr);
  nta_outgoing_destroy(orq);
}

void ClientTransaction::Cancel() {
  SB_CHECK(stack_.InLoop());
  auto* orq = static_cast<nta_outgoing_t*>(orq_);
  if (orq == nullptr || nta_outgoing_method(orq) != sip_method_invite) return;
  if (nta_outgoing_status(orq) >= 200) return;
  nta_outgoing_cancel(orq);
}

int ClientTransaction::status() const {
  return orq_ == nullptr ? final_status_ : nta_outgoing_status(static_cast<nta_outgoing_t*>(orq_));
}

// ---------------------------------------------------------------------------------------------
// Dialog

Dialog::Dialog(Stack& stack, RequestFn on_request)
    : stack_(stack), on_request_(std::move(on_request)) {
  ++stack_.stats_.dialogs;
}

Dialog::~Dialog() {
  --stack_.stats_.dialogs;
  auto* leg = static_cast<nta_leg_t*>(leg_);
  if (leg == nullptr || stack_.agent_ == nullptr) return;
  nta_leg_destroy(leg);
}

absl::StatusOr<DialogPtr> Dialog::Create(Stack& stack, const Params& params, RequestFn on_request) {
  SB_CHECK(stack.InLoop());
  auto dialog = DialogPtr(new Dialog(stack, std::move(on_request)));
  const std::string call_id = params.call_id.empty()
                                  ? absl::StrCat(RandomHex(16), "@", stack.public_host_)
                                  : params.call_id;
  nta_leg_t* leg = nta_leg_tcreate(
      static_cast<nta_agent_t*>(stack.agent_), internal::Trampolines::LegRequest, dialog.get(),
      SIPTAG_CALL_ID_STR(call_id.c_str()), SIPTAG_FROM_STR(params.from.c_str()),
      SIPTAG_TO_STR(params.to.c_str()), TAG_END());
  if (leg == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("cannot create a SIP dialog from \"",
                                                   params.from, "\" to \"", params.to,
                                                   "\": bad address"));
  }
  dialog->leg_ = leg;
  if (nta_leg_tag(leg, nullptr) == nullptr) {
    return absl::InternalError("cannot tag a new SIP dialog");
  }
  return dialog;
}

absl::StatusOr<DialogPtr> Dialog::Accept(Stack& stack, ServerTransaction& request,
                                         RequestFn on_request) {
  SB_CHECK(stack.InLoop());
  sip_t* sip = request.request().sip();
  auto* irq = static_cast<nta_incoming_t*>(request.irq_);
  if (sip == nullptr || irq == nullptr || sip->sip_from == nullptr || sip->sip_to == nullptr ||
      sip->sip_call_id == nullptr) {
    return absl::InvalidArgumentError("request lacks From, To or Call-ID");
  }
  auto dialog = DialogPtr(new Dialog(stack, std::move(on_request)));
  // The leg's local address is the request's To, its remote one the request's From.
  nta_leg_t* leg =
      nta_leg_tcreate(static_cast<nta_agent_t*>(stack.agent_), internal::Trampolines::LegRequest,
                      dialog.get(), SIPTAG_CALL_ID(sip->sip_call_id), SIPTAG_FROM(sip->sip_to),
                      SIPTAG_TO(sip->sip_from), TAG_END());
  if (leg == nullptr) return absl::InternalError("cannot create a SIP dialog for the request");
  dialog->leg_ = leg;
  const char* tag = nta_leg_tag(leg, nullptr);
  if (tag == nullptr) return absl::InternalError("cannot tag the SIP dialog");
  nta_incoming_tag(irq, tag);
  nta_leg_server_route(leg, sip->sip_record_route, sip->sip_contact);
  return dialog;
}

absl::StatusOr<ClientTransactionPtr> Dialog::Send(RequestOptions options, ResponseFn on_response) {
  SB_CHECK(stack_.InLoop());
  auto* leg = static_cast<nta_leg_t*>(leg_);
  if (leg == nullptr) return absl::FailedPreconditionError("dialog is closed");
  auto ct = ClientTransactionPtr(new ClientTransaction(stack_, std::move(on_response)));
  const std::string method = absl::AsciiStrToUpper(options.method);
  const std::string headers = HeaderText(options.headers);
  const std::string cseq =
      options.cseq == 0 ? std::string() : absl::StrCat(options.cseq, " ", method);
  const bool has_hop = !options.next_hop.empty();
  const bool has_uri = !options.request_uri.empty();
  nta_outgoing_t* orq = nta_outgoing_tcreate(
      leg, internal::Trampolines::Response, ct.get(),
      has_hop ? URL_STRING_MAKE(options.next_hop.c_str()) : nullptr,
      sip_method_code(method.c_str()), method.c_str(),
      has_uri ? URL_STRING_MAKE(options.request_uri.c_str()) : nullptr,
      TAG_IF(!cseq.empty(), SIPTAG_CSEQ_STR(cseq.c_str())),
      TAG_IF(!options.contact.empty(), SIPTAG_CONTACT_STR(options.contact.c_str())),
      TAG_IF(!options.content_type.empty(), SIPTAG_CONTENT_TYPE_STR(options.content_type.c_str())),
      TAG_IF(!options.body.empty(), SIPTAG_PAYLOAD_STR(options.body.c_str())),
      TAG_IF(!headers.empty(), SIPTAG_HEADER_STR(headers.c_str())),
      SIPTAG_USER_AGENT_STR(stack_.options_.name.c_str()), TAG_END());
  if (orq == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot send ", method, " to \"", options.request_uri, "\": bad request"));
  }
  ct->orq_ = orq;
  return ct;
}

void Dialog::Establish(const Message& response) {
  SB_CHECK(stack_.InLoop());
  auto* leg = static_cast<nta_leg_t*>(leg_);
  const sip_t* sip = response.sip();
  if (leg == nullptr || sip == nullptr || sip->sip_to == nullptr) return;
  if (nta_leg_get_rtag(leg) == nullptr && sip->sip_to->a_tag != nullptr) {
    nta_leg_rtag(leg, sip->sip_to->a_tag);
  }
  nta_leg_client_reroute(leg, sip->sip_record_route, sip->sip_contact, 1);
}

void Dialog::Ack(const Message& response, std::string_view content_type, std::string_view body) {
  SB_CHECK(stack_.InLoop());
  auto* leg = static_cast<nta_leg_t*>(leg_);
  const sip_t* sip = response.sip();
  if (leg == nullptr || sip == nullptr || sip->sip_cseq == nullptr) return;
  const std::string cseq = absl::StrCat(sip->sip_cseq->cs_seq, " ACK");
  const std::string type(content_type);
  const std::string payload(body);
  nta_outgoing_t* ack = nta_outgoing_tcreate(
      leg, nullptr, nullptr, nullptr, SIP_METHOD_ACK, nullptr, SIPTAG_CSEQ_STR(cseq.c_str()),
      TAG_IF(!type.empty(), SIPTAG_CONTENT_TYPE_STR(type.c_str())),
      TAG_IF(!payload.empty(), SIPTAG_PAYLOAD_STR(payload.c_str())), TAG_END());
  if (ack != nullptr) nta_outgoing_destroy(ack);
}

std::string Dialog::call_id() const {
  auto* leg = static_cast<nta_leg_t*>(leg_);
  if (leg == nullptr) return {};
  // nta has no getter for the Call-ID: make a Replaces header and read it from there.
  su_home_t home[1] = {SU_HOME_INIT(home)};
  sip_replaces_t* rp = nta_leg_make_replaces(leg, home, 0);
  std::string out = rp != nullptr && rp->rp_call_id != nullptr ? rp->rp_call_id : "";
  su_home_deinit(home);
  return out;
}

std::string Dialog::local_tag() const {
  auto* leg = static_cast<nta_leg_t*>(leg_);
  const char* tag = leg == nullptr ? nullptr : nta_leg_get_tag(leg);
  return tag == nullptr ? "" : tag;
}

std::string Dialog::remote_tag() const {
  auto* leg = static_cast<nta_leg_t*>(leg_);
  const char* tag = leg == nullptr ? nullptr : nta_leg_get_rtag(leg);
  return tag == nullptr ? "" : tag;
}

// ---------------------------------------------------------------------------------------------
// Timer

Timer::Timer(Stack& stack, absl::AnyInvocable<void()> fn) : stack_(stack), fn_(std::move(fn)) {}

Timer::~Timer() {
  if (timer_ != nullptr && stack_.root_ != nullptr) {
    su_timer_destroy(static_cast<su_timer_t*>(timer_));
  }
}

void Timer::Cancel() {
  fn_ = nullptr;
  if (timer_ != nullptr) su_timer_reset(static_cast<su_timer_t*>(timer_));
}

// ---------------------------------------------------------------------------------------------
// Stack

Stack::Stack(StackOptions options, RequestFn on_request)
    : options_(std::move(options)), on_request_(std::move(on_request)) {
  public_host_ = options_.public_host.empty() ? options_.bind_host : options_.public_host;
}

absl::StatusOr<std::unique_ptr<Stack>> Stack::Start(StackOptions options, RequestFn on_request) {
  if (options.port <= 0 || options.port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("SIP port ", options.port, " out of range"));
  }
  if (!options.udp && !options.tcp && options.tls_dir.empty()) {
    return absl::InvalidArgumentError("no SIP transport enabled (udp, tcp or tls)");
  }
  RedirectSofiaLogs();
  auto stack = std::unique_ptr<Stack>(new Stack(std::move(options), std::move(on_request)));
  absl::Status started;
  absl::Notification ready;
  Stack* raw = stack.get();
  stack->thread_ = std::thread([raw, &started, &ready] { raw->Run(&started, &ready); });
  ready.WaitForNotification();
  if (!started.ok()) {
    stack->thread_.join();
    {
      absl::MutexLock lock(&stack->mu_);
      stack->stopped_ = true;
    }
    return started;
  }
  return stack;
}

void Stack::Run(absl::Status* started, absl::Notification* ready) {
  loop_thread_id_.store(std::this_thread::get_id());
  pthread_setname_np(pthread_self(), "sip-loop");  // for top -H and perf
  // Once per process and never undone: sofia's global tables stay valid for every stack.
  static const int su_initialised = su_init();
  (void)su_initialised;
  auto* root = su_root_create(this);
  if (root == nullptr) {
    *started = absl::InternalError("sofia: su_root_create failed");
    ready->Notify();
    return;
  }
  root_ = root;
  su_root_add_prepoll(root, internal::Trampolines::Prepoll, this);
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  su_wait_t wait[1];
  su_wait_create(wait, wake_fd_, SU_WAIT_IN);
  const int wait_index = su_root_register(root, wait, internal::Trampolines::Wakeup, this, 0);

  std::string transports;
  if (options_.udp) transports = "udp";
  if (options_.tcp) transports += transports.empty() ? "tcp" : ",tcp";
  const std::string url = transports.empty()
                              ? std::string()
                              : absl::StrCat("sip:", options_.bind_host, ":", options_.port,
                                             options_.udp && options_.tcp ? "" : ";transport=",
                                             options_.udp && options_.tcp ? "" : transports);
  nta_agent_t* agent = nta_agent_create(
      root,
      url.empty() ? reinterpret_cast<url_string_t*>(static_cast<intptr_t>(-1))
                  : URL_STRING_MAKE(url.c_str()),
      internal::Trampolines::Stateless, this, NTATAG_UA(1), NTATAG_SERVER_RPORT(1),
      NTATAG_CLIENT_RPORT(1), NTATAG_TCP_RPORT(1), NTATAG_MAXSIZE(options_.max_message_bytes),
      NTATAG_USE_SRV(0), NTATAG_USE_NAPTR(0), NTATAG_CANCEL_487(1), NTATAG_EXTRA_100(0),
      NTATAG_MCLASS(LenientSipClass()),
      // A stream that stops halfway through a message is closed after 32 s (64*T1) rather than
      // held open for ever (RFC 4475 §3.1.2.2; sofia's default has no limit).
      TPTAG_TIMEOUT(32000),
      TPTAG_IDLE(options_.tcp_idle_timeout > absl::ZeroDuration()
                     ? static_cast<unsigned>(std::min<int64_t>(
                           absl::ToInt64Milliseconds(options_.tcp_idle_timeout), UINT_MAX - 1))
                     : UINT_MAX),
      TAG_END());
  absl::Status status;
  if (agent == nullptr) {
    status = absl::UnavailableError(absl::StrCat("cannot listen for SIP on ", options_.bind_host,
                                                 ":", options_.port, " (", transports,
                                                 "): ", std::strerror(errno)));
  } else if (!options_.tls_dir.empty()) {
    const std::string tls_url =
        absl::StrCat("sips:", options_.bind_host, ":", options_.tls_port, ";transport=tls");
    if (nta_agent_add_tport(agent, URL_STRING_MAKE(tls_url.c_str()),
                            TPTAG_CERTIFICATE(options_.tls_dir.c_str()), TAG_END()) < 0) {
      status = absl::InvalidArgumentError(absl::StrCat(
          "cannot listen for SIP over TLS on ", options_.bind_host, ":", options_.tls_port,
          " with the certificate in ", options_.tls_dir, ": ", std::strerror(errno)));
    }
  }
  if (status.ok()) {
    agent_ = agent;
    default_dialog_ = DialogPtr(new Dialog(*this, on_request_));
    nta_leg_t* leg = nta_leg_tcreate(agent, internal::Trampolines::LegRequest,
                                     default_dialog_.get(), NTATAG_NO_DIALOG(1), TAG_END());
    if (leg == nullptr) {
      status = absl::InternalError("sofia: cannot create the default leg");
    } else {
      default_dialog_->leg_ = leg;
    }
  }
  *started = status;
  ready->Notify();
  if (status.ok()) su_root_run(root);

  // Shut down: whatever the owner did not release in its cleanup goes now.
  {
    absl::MutexLock lock(&mu_);
    stopped_ = true;
    queue_.clear();
  }
  deferred_.clear();
  default_dialog_.reset();
  if (agent != nullptr) nta_agent_destroy(agent);
  agent_ = nullptr;
  su_root_deregister(root, wait_index);
  close(wake_fd_);
  wake_fd_ = -1;
  su_root_destroy(root);
  root_ = nullptr;
}

Stack::~Stack() { Stop(); }

void Stack::Stop(absl::AnyInvocable<void()> cleanup) {
  SB_CHECK(!InLoop()) << "Stack::Stop from its own loop thread";
  bool first = false;
  {
    absl::MutexLock lock(&mu_);
    first = !stopping_;
    stopping_ = true;
  }
  if (first) {
    Post([this, cleanup = std::move(cleanup)]() mutable {
      if (cleanup) cleanup();
      deferred_.clear();
      su_root_break(static_cast<su_root_t*>(root_));
    });
  }
  if (thread_.joinable()) thread_.join();
}

void Stack::Post(absl::AnyInvocable<void()> fn) {
  bool wake = false;
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return;
    wake = queue_.empty();
    queue_.push_back(std::move(fn));
  }
  if (wake) {
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t n = write(wake_fd_, &one, sizeof(one));
  }
}

void Stack::Drain() {
  std::vector<absl::AnyInvocable<void()>> batch;
  {
    absl::MutexLock lock(&mu_);
    batch.swap(queue_);
  }
  for (auto& fn : batch) {
    try {
      fn();
    } catch (const std::exception& e) {
      spdlog::error("sip: posted task threw: {}", e.what());
    } catch (...) {
      spdlog::error("sip: posted task threw");
    }
  }
}

void Stack::DeferRelease(std::shared_ptr<void> self) { deferred_.push_back(std::move(self)); }

std::unique_ptr<Timer> Stack::After(absl::Duration delay, absl::AnyInvocable<void()> fn) {
  SB_CHECK(InLoop());
  auto timer = std::unique_ptr<Timer>(new Timer(*this, std::move(fn)));
  // sofia asserts on a zero duration (su_timer_queue): "now" is the next millisecond. Rounded
  // up, so that a timer never fires before its delay.
  int64_t ms = absl::ToInt64Milliseconds(absl::Ceil(delay, absl::Milliseconds(1)));
  if (ms < 1) ms = 1;
  auto* t =
      su_timer_create(su_root_task(static_cast<su_root_t*>(root_)), static_cast<su_duration_t>(ms));
  SB_CHECK(t != nullptr) << "sofia: su_timer_create failed";
  timer->timer_ = t;
  su_timer_set(t, internal::Trampolines::TimerFired, timer.get());
  return timer;
}

std::string Stack::ContactFor(std::string_view transport) const {
  if (transport == "tls") {
    return absl::StrCat("<sips:", public_host_, ":", options_.tls_port, ";transport=tls>");
  }
  if (transport == "tcp") {
    return absl::StrCat("<sip:", public_host_, ":", options_.port, ";transport=tcp>");
  }
  return absl::StrCat("<sip:", public_host_, ":", options_.port, ">");
}

StackStats Stack::stats() const { return stats_; }

}  // namespace sb::sip
