#pragma once

// The SIP stack of one worker: a sofia-sip event loop (su_root_t) on its own thread, with one
// transaction-level agent (nta_agent_t) on it. libs/sip is the only code that includes sofia-sip:
// this header shows C++ types only.
//
// Threading: a Stack's loop thread runs every callback, and every method of ServerTransaction,
// ClientTransaction, Dialog and Timer must be called on it (they check). Other threads hand work
// to the loop with Stack::Post(). Objects are shared_ptrs owned by the code in the loop; a callback
// may drop the last reference to the object it runs on: its destruction waits until the callback
// has returned to sofia.
//
// Why nta rather than nua for the B2BUA: see libs/sip/README.md.
//
//   auto stack = Stack::Start({.bind_host = "127.0.0.1", .port = 5060},
//       [](ServerTransactionPtr tx) {            // requests outside any dialog
//         if (tx->request().method() == "OPTIONS") tx->Reply(200);
//         else tx->Reply(501);
//       });

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "libs/sip/message.h"

namespace sb::sip {

class Stack;
class ServerTransaction;
class ClientTransaction;
class Dialog;
class Timer;
using ServerTransactionPtr = std::shared_ptr<ServerTransaction>;
using ClientTransactionPtr = std::shared_ptr<ClientTransaction>;
using DialogPtr = std::shared_ptr<Dialog>;

namespace internal {
struct Trampolines;
}

// A request received on a dialog or outside one; the handler replies (now or later, keeping the
// pointer). A transaction dropped without a final response answers 500 by itself.
using RequestFn = std::function<void(ServerTransactionPtr tx)>;
// A response (provisional or final) to a request this side sent. A timeout or transport error
// comes as a response that nta made itself (408 / 503).
using ResponseFn = std::function<void(const Message& response)>;

struct StackOptions {
  // For logs and the Server / User-Agent headers.
  std::string name = "Switchboard";
  // Address to listen on; "0.0.0.0" for every IPv4 address.
  std::string bind_host = "127.0.0.1";
  int port = 5060;
  bool udp = true;
  bool tcp = true;
  // A directory with sofia's TLS files (agent.pem with key and certificate, cafile.pem); empty:
  // no TLS listener.
  std::string tls_dir;
  int tls_port = 5061;
  // Host put in Via, Contact and Record-Route (the address phones and trunks reach us at);
  // empty: bind_host.
  std::string public_host;
  // Largest message accepted (over TCP a longer one closes the connection).
  int max_message_bytes = 64 * 1024;
  // A TCP/TLS connection with nothing sent or received for this long, and no transaction
  // using it, is closed. It is also what ends a connection whose peer sent something that
  // cannot be framed: sofia stops reading such a stream, so it would never see the peer's
  // close. Keep it longer than the OPTIONS keepalive to registered phones, whose connections
  // must stay open. Zero: never (such connections then stay until the process ends).
  absl::Duration tcp_idle_timeout = absl::Seconds(120);
  // The option tags this side implements (RFC 3261 §8.2.2.3). A request that Requires any other
  // gets 420 Bad Extension listing them in Unsupported before a handler sees it.
  std::vector<std::string> supported = {"replaces", "timer"};
};

// What the stack answers by itself, before any RequestFn (RFC 3261 §8.2.2, RFC 4475):
//   - a Request-URI that cannot be parsed (e.g. with LWS in it): 400;
//   - a Request-URI scheme other than sip, sips or tel: 416;
//   - a Require option tag not in StackOptions::supported (not for ACK and CANCEL): 420;
// and what sofia's nta answers: 400 to unparsable or incomplete requests, 505 to versions other
// than SIP/2.0, 413 past max_message_bytes. Requests without a parsable Via cannot be answered:
// they are dropped (over TCP the connection is closed once it has been idle for
// StackOptions::tcp_idle_timeout). Responses that match no client transaction are dropped.

struct ReplyOptions {
  std::vector<Header> headers;
  // The Contact header value, e.g. "<sip:10.0.0.1:5060>"; empty: none (or nta's own for 2xx
  // to a dialog-creating request).
  std::string contact;
  std::string content_type;
  std::string body;
};

struct RequestOptions {
  // "INVITE", "BYE", "OPTIONS", ...
  std::string method;
  // Empty: the dialog's remote target (its peer's Contact).
  std::string request_uri;
  // Send to this URI instead of resolving the Request-URI: the address a NATed phone really
  // registered from, or a trunk's proxy. Not written into the message.
  std::string next_hop;
  std::vector<Header> headers;
  // Contact header value; empty: none.
  std::string contact;
  std::string content_type;
  std::string body;
  // 0: the next sequence number of the dialog.
  uint32_t cseq = 0;
};

// A server transaction: one request received and the responses to it.
class ServerTransaction : public std::enable_shared_from_this<ServerTransaction> {
 public:
  ~ServerTransaction();
  ServerTransaction(const ServerTransaction&) = delete;
  ServerTransaction& operator=(const ServerTransaction&) = delete;

  const Message& request() const { return request_; }
  // "udp", "tcp" or "tls".
  std::string transport() const;
  // The highest status sent so far; 0 before any.
  int status() const;
  // Sends a response (100..699). A final response can be sent once; later ones are ignored and
  // return false, as is anything after the transaction ended.
  bool Reply(int status, std::string_view phrase = {}, const ReplyOptions& options = {});
  // INVITE only: called with the ACK of a 2xx, and when the caller CANCELs before a final
  // response (nta has already answered the CANCEL 200 and the INVITE 487).
  void OnAck(std::function<void(const Message& ack)> fn) { on_ack_ = std::move(fn); }
  // Sends nothing, now or when dropped: for requests that deserve no answer (a banned scanner).
  void Discard() { discard_ = true; }
  void OnCancel(std::function<void()> fn) { on_cancel_ = std::move(fn); }

 private:
  friend struct internal::Trampolines;
  friend class Dialog;
  friend class Stack;
  ServerTransaction(Stack& stack, void* irq, Message request);

  Stack& stack_;
  // Lets go of nta's transaction once its final response is out (and, for an INVITE's 2xx, its
  // ACK came or 32 s passed): nta finishes it by itself. Loop thread.
  void Release();
  void ReleaseSoon();

  void* irq_;              // nta_incoming_t*; null once released
  int final_status_ = 0;   // kept for status() after Release()
  std::string transport_;  // kept for transport() after Release()
  std::unique_ptr<Timer> release_timer_;
  Message request_;
  std::function<void(const Message&)> on_ack_;
  std::function<void()> on_cancel_;
  bool discard_ = false;
};

// A client transaction: one request sent and the responses to it.
class ClientTransaction : public std::enable_shared_from_this<ClientTransaction> {
 public:
  ~ClientTransaction();
  ClientTransaction(const ClientTransaction&) = delete;
  ClientTransaction& operator=(const ClientTransaction&) = delete;

  // INVITE: sends CANCEL (now when a provisional response came, else as soon as one does); the
  // INVITE then ends with 487 (or with the 2xx that crossed the CANCEL).
  void Cancel();
  // The last status received; 0 before any.
  int status() const;

 private:
  friend struct internal::Trampolines;
  friend class Dialog;
  ClientTransaction(Stack& stack, ResponseFn on_response);

  // Lets go of nta's transaction once it needs nothing more from us (nta finishes it by itself:
  // retransmissions, timer K, the ACK of a non-2xx). Loop thread.
  void Release();

  Stack& stack_;
  void* orq_ = nullptr;   // nta_outgoing_t*; null once released
  int final_status_ = 0;  // kept for status() after Release()
  ResponseFn on_response_;
  std::unique_ptr<Timer> release_timer_;
};

// A dialog (an nta leg): the Call-ID, tags, route set and CSeq counters shared by the requests of
// one call leg.
class Dialog : public std::enable_shared_from_this<Dialog> {
 public:
  struct Params {
    // Header values, e.g. "\"Alice\" <sip:+3612345678@10.0.0.1>"; the local tag is added.
    std::string from;
    std::string to;
    // Empty: a fresh random one.
    std::string call_id;
  };
  // A dialog this side starts (UAC): send its first request with Send().
  static absl::StatusOr<DialogPtr> Create(Stack& stack, const Params& params, RequestFn on_request);
  // The dialog of a dialog-creating request received outside any dialog (UAS): the request's
  // responses carry this dialog's To tag, and later requests of the dialog go to on_request.
  static absl::StatusOr<DialogPtr> Accept(Stack& stack, ServerTransaction& request,
                                          RequestFn on_request);
  ~Dialog();
  Dialog(const Dialog&) = delete;
  Dialog& operator=(const Dialog&) = delete;

  // Sends a request in the dialog. The first INVITE of a UAC dialog establishes it: call
  // Establish() with its answer.
  absl::StatusOr<ClientTransactionPtr> Send(RequestOptions options, ResponseFn on_response);
  // UAC: takes the remote tag, route set and remote target from a 2xx (or a tagged 1xx) answer
  // to this dialog's INVITE. Once set, the remote tag stays.
  void Establish(const Message& response);
  // Sends the ACK for a 2xx answer to an INVITE of this dialog (again for each retransmission).
  void Ack(const Message& response, std::string_view content_type = {}, std::string_view body = {});

  std::string call_id() const;
  std::string local_tag() const;
  std::string remote_tag() const;
  // Replaces the handler of the dialog's requests (a leg that moves to another call). Loop thread,
  // not from inside that handler.
  void OnRequest(RequestFn on_request) { on_request_ = std::move(on_request); }

 private:
  friend struct internal::Trampolines;
  friend class Stack;
  Dialog(Stack& stack, RequestFn on_request);

  Stack& stack_;
  void* leg_ = nullptr;  // nta_leg_t*
  RequestFn on_request_;
};

// A one-shot timer on the loop. Destroying or cancelling it before it fires stops it.
class Timer {
 public:
  ~Timer();
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;
  void Cancel();

 private:
  friend struct internal::Trampolines;
  friend class Stack;
  Timer(Stack& stack, absl::AnyInvocable<void()> fn);

  Stack& stack_;
  void* timer_ = nullptr;  // su_timer_t*
  absl::AnyInvocable<void()> fn_;
};

struct StackStats {
  uint64_t requests_received = 0;
  uint64_t responses_received = 0;
  uint64_t bad_messages = 0;
  uint64_t server_transactions = 0;  // open now
  uint64_t client_transactions = 0;  // open now
  uint64_t dialogs = 0;              // open now
};

class Stack {
 public:
  // Starts the loop thread, binds the transports and returns once they listen (or why not).
  static absl::StatusOr<std::unique_ptr<Stack>> Start(StackOptions options, RequestFn on_request);
  // Stops the loop (see Stop) and joins its thread.
  ~Stack();
  Stack(const Stack&) = delete;
  Stack& operator=(const Stack&) = delete;

  // Runs `cleanup` on the loop (drop every dialog and transaction there), then stops the loop and
  // closes the transports. Idempotent; called by the destructor.
  void Stop(absl::AnyInvocable<void()> cleanup = nullptr);

  // Runs `fn` on the loop thread, in posting order. From any thread; dropped after Stop.
  void Post(absl::AnyInvocable<void()> fn);
  bool InLoop() const { return std::this_thread::get_id() == loop_thread_id_.load(); }

  // Calls `fn` on the loop after `delay` unless the timer is destroyed first. Loop thread only.
  std::unique_ptr<Timer> After(absl::Duration delay, absl::AnyInvocable<void()> fn);

  // Our own Contact for a transport ("udp", "tcp", "tls"), e.g.
  // "<sip:10.0.0.1:5060;transport=tcp>".
  std::string ContactFor(std::string_view transport) const;
  const std::string& public_host() const { return public_host_; }
  int port() const { return options_.port; }
  const StackOptions& options() const { return options_; }

  // Loop thread only.
  StackStats stats() const;

 private:
  friend struct internal::Trampolines;
  friend class ServerTransaction;
  friend class ClientTransaction;
  friend class Dialog;
  friend class Timer;
  explicit Stack(StackOptions options, RequestFn on_request);

  void Run(absl::Status* started, absl::Notification* ready);
  void Drain();
  // Keeps `self` alive until the current sofia callback has returned.
  void DeferRelease(std::shared_ptr<void> self);

  StackOptions options_;
  std::string public_host_;
  RequestFn on_request_;
  std::thread thread_;
  std::atomic<std::thread::id> loop_thread_id_{};
  void* root_ = nullptr;   // su_root_t*
  void* agent_ = nullptr;  // nta_agent_t*
  DialogPtr default_dialog_;
  int wake_fd_ = -1;

  absl::Mutex mu_;
  std::vector<absl::AnyInvocable<void()>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;

  std::vector<std::shared_ptr<void>> deferred_;
  StackStats stats_;
};

}  // namespace sb::sip
