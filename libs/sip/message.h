#pragma once

// Message: a received SIP request or response, as parsed by sofia-sip, read through typed
// accessors. A Message holds a reference on the underlying msg_t, so it stays valid (and its
// string_views with it) for as long as the Message lives; copies share the reference. Messages
// belong to the loop thread of the Stack that received them (see stack.h): copy out what another
// thread needs.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

struct msg_s;
struct sip_s;

namespace sb::sip {

// A header written by name and value, e.g. {"Alert-Info", "<http://x>;info=alert-internal"}.
struct Header {
  std::string name;
  std::string value;
};

// A From/To/Contact-style address.
struct NameAddr {
  std::string display;  // unquoted display name, may be empty
  std::string uri;      // the URI as text, e.g. "sip:101@acme.example.com;transport=tcp"
  std::string user;     // URI user part (unescaped as received)
  std::string host;
  std::string port;  // as written; empty when absent
  std::string tag;   // the tag parameter; empty when absent
};

// One Contact of a REGISTER or dialog-creating message.
struct ContactEntry {
  NameAddr address;
  // The expires parameter, when present.
  std::optional<uint32_t> expires;
  // q-value in thousandths (q=0.5 -> 500); 1000 when absent.
  int q = 1000;
  // RFC 5626 +sip.instance (with its <> and quotes removed) and reg-id.
  std::string instance;
  int reg_id = 0;
};

// The standard reason phrase of a status code ("Busy Here" for 486); "Unknown" for others.
std::string_view StatusPhrase(int status);

class Message {
 public:
  Message() = default;
  ~Message();
  Message(const Message& other);
  Message& operator=(const Message& other);
  Message(Message&& other) noexcept;
  Message& operator=(Message&& other) noexcept;

  bool valid() const { return msg_ != nullptr; }
  bool is_request() const;

  // Request method ("INVITE"); for responses the method of the CSeq.
  std::string_view method() const;
  // Responses: status code and reason phrase; requests: 0 and "".
  int status() const;
  std::string_view phrase() const;

  // Requests: the Request-URI as text and its parts.
  std::string request_uri() const;
  std::string request_user() const;
  std::string request_host() const;

  std::string_view call_id() const;
  uint32_t cseq() const;
  NameAddr from() const;
  NameAddr to() const;
  // Contacts in order. contact_star() is true for "Contact: *".
  std::vector<ContactEntry> contacts() const;
  bool contact_star() const;
  // The Expires header, when present.
  std::optional<uint32_t> expires() const;
  // Max-Forwards, when present.
  std::optional<uint32_t> max_forwards() const;
  // The first Authorization / Proxy-Authorization header value ("Digest username=..."), or "".
  std::string authorization() const;
  std::string proxy_authorization() const;
  std::string_view user_agent() const;
  std::string content_type() const;
  std::string_view body() const;
  // The value of a header by name (case-insensitive), the first one when repeated; "" when
  // absent. Works for every header, known to sofia or not.
  std::string header(std::string_view name) const;
  // Every value of a header (e.g. several Record-Route lines), in order.
  std::vector<std::string> headers(std::string_view name) const;

  // Where the message came from and over what: "udp", "tcp" or "tls".
  std::string source_ip() const;
  int source_port() const;
  std::string transport() const;

  // The whole message as sent on the wire (for logs and tests).
  std::string ToString() const;

  // libs/sip internals.
  static Message Adopt(msg_s* msg);  // takes over one reference
  static Message Ref(msg_s* msg);    // adds a reference
  msg_s* raw() const { return msg_; }
  sip_s* sip() const;

 private:
  msg_s* msg_ = nullptr;
};

}  // namespace sb::sip
