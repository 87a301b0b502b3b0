// libs/sip against itself and raw sockets on loopback: the loop, transactions, dialogs, timers.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "libs/sip/stack.h"
#include "libs/testing/eventually.h"
#include "libs/testing/ports.h"

namespace sb::sip {
namespace {

using testing::Eventually;

// Sends one datagram to 127.0.0.1:port and returns the first reply (or "" after 2 s).
std::string UdpExchange(int port, const std::string& datagram, bool expect_reply = true) {
  const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in local{};
  local.sin_family = AF_INET;
  local.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof local) == 0);
  timeval tv{.tv_sec = expect_reply ? 2 : 0, .tv_usec = expect_reply ? 0 : 300000};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  to.sin_port = htons(static_cast<uint16_t>(port));
  ::sendto(fd, datagram.data(), datagram.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
  char buf[65536];
  const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
  ::close(fd);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

std::string Options(int port, const std::string& branch) {
  return absl::StrCat("OPTIONS sip:127.0.0.1:", port,
                      " SIP/2.0\r\n"
                      "Via: SIP/2.0/UDP 192.0.2.1:9;branch=z9hG4bK",
                      branch,
                      ";rport\r\n"
                      "Max-Forwards: 70\r\n"
                      "From: <sip:probe@127.0.0.1>;tag=1\r\n"
                      "To: <sip:127.0.0.1>\r\n"
                      "Call-ID: ",
                      branch,
                      "@probe\r\n"
                      "CSeq: 1 OPTIONS\r\n"
                      "Content-Length: 0\r\n\r\n");
}

// Runs `fn` on the stack's loop and waits for it.
template <typename Fn>
void OnLoop(Stack& stack, Fn fn) {
  absl::Notification done;
  stack.Post([&] {
    fn();
    done.Notify();
  });
  done.WaitForNotification();
}

StackStats StatsOf(Stack& stack) {
  StackStats out;
  OnLoop(stack, [&] { out = stack.stats(); });
  return out;
}

TEST_CASE("Stack answers OPTIONS over UDP with rport filled in and survives garbage") {
  const int port = testing::FreeTcpUdpPort();
  auto stack = Stack::Start({.port = port}, [](ServerTransactionPtr tx) {
    if (tx->request().method() == "OPTIONS") {
      tx->Reply(200, "", {.headers = {{"Allow", "INVITE, ACK, BYE, CANCEL, OPTIONS"}}});
    } else {
      tx->Reply(501);
    }
  });
  REQUIRE(stack.ok());

  std::string reply = UdpExchange(port, Options(port, "opt1"));
  CHECK(absl::StartsWith(reply, "SIP/2.0 200 OK\r\n"));
  CHECK(absl::StrContains(reply, "branch=z9hG4bKopt1"));
  // The response goes back to where the request came from (RFC 3581): received= and rport=N.
  CHECK(absl::StrContains(reply, "received=127.0.0.1"));
  CHECK(absl::StrContains(reply, ";rport="));
  CHECK(absl::StrContains(reply, "Allow: INVITE, ACK, BYE, CANCEL, OPTIONS"));

  // Garbage, a truncated request and an unknown method: no crash; answers where there is one to
  // give, and OPTIONS still works afterwards.
  for (const std::string& junk :
       {std::string("\x00\x01\x02garbage", 10), std::string("INVITE sip:x SIP/2.0\r\nVia: "),
        std::string(3000, 'A')}) {
    UdpExchange(port, junk, /*expect_reply=*/false);
  }
  std::string unknown = Options(port, "unk1");
  unknown.replace(0, 7, "FROBNICATE");
  unknown.replace(unknown.find("CSeq: 1 OPTIONS"), 15, "CSeq: 1 FROBNICATE");
  CHECK(absl::StartsWith(UdpExchange(port, unknown), "SIP/2.0 501 "));
  CHECK(absl::StartsWith(UdpExchange(port, Options(port, "opt2")), "SIP/2.0 200 OK\r\n"));
  stack.value()->Stop();
}

TEST_CASE("Two stacks set up a call: INVITE 180 200 ACK then BYE from the callee") {
  const int port_a = testing::FreeTcpUdpPort();
  const int port_b = testing::FreeTcpUdpPort();

  // B: the callee. Accepts INVITEs, rings, answers, and later hangs up.
  DialogPtr b_dialog;
  ServerTransactionPtr b_invite;
  std::atomic<bool> b_got_ack{false};
  std::atomic<int> b_bye_status{0};
  std::unique_ptr<Stack>* b_holder = nullptr;
  auto b = Stack::Start({.port = port_b}, [&](ServerTransactionPtr tx) {
    if (tx->request().method() != "INVITE") {
      tx->Reply(481);
      return;
    }
    auto dialog = Dialog::Accept(**b_holder, *tx,
                                 [](ServerTransactionPtr in_dialog) { in_dialog->Reply(200); });
    REQUIRE(dialog.ok());
    b_dialog = *dialog;
    b_invite = tx;
    tx->OnAck([&](const Message& ack) { b_got_ack = ack.method() == "ACK"; });
    tx->Reply(180);
    tx->Reply(200, "",
              {.contact = (*b_holder)->ContactFor("udp"),
               .content_type = "application/sdp",
               .body = "v=0\r\n"});
  });
  REQUIRE(b.ok());
  b_holder = &b.value();

  // A: the caller.
  auto a = Stack::Start({.port = port_a}, [](ServerTransactionPtr tx) { tx->Reply(481); });
  REQUIRE(a.ok());
  Stack& stack_a = **a;
  DialogPtr a_dialog;
  ClientTransactionPtr invite;
  std::vector<int> statuses;
  std::atomic<bool> a_got_bye{false};
  std::string answer_body;
  OnLoop(stack_a, [&] {
    auto dialog =
        Dialog::Create(stack_a,
                       {.from = absl::StrCat("\"Caller\" <sip:alice@127.0.0.1:", port_a, ">"),
                        .to = absl::StrCat("<sip:bob@127.0.0.1:", port_b, ">")},
                       [&](ServerTransactionPtr tx) {
                         a_got_bye = tx->request().method() == "BYE";
                         tx->Reply(200);
                       });
    REQUIRE(dialog.ok());
    a_dialog = *dialog;
    auto sent = a_dialog->Send({.method = "INVITE",
                                .request_uri = absl::StrCat("sip:bob@127.0.0.1:", port_b),
                                .contact = stack_a.ContactFor("udp"),
                                .content_type = "application/sdp",
                                .body = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\n"},
                               [&](const Message& response) {
                                 statuses.push_back(response.status());
                                 if (response.status() >= 200 && response.status() < 300) {
                                   answer_body = std::string(response.body());
                                   a_dialog->Establish(response);
                                   a_dialog->Ack(response);
                                 }
                               });
    REQUIRE(sent.ok());
    invite = *sent;
  });
  REQUIRE(Eventually([&] { return b_got_ack.load(); }));
  OnLoop(stack_a, [&] {
    CHECK(statuses == std::vector<int>{180, 200});
    CHECK(answer_body == "v=0\r\n");
    CHECK(!a_dialog->remote_tag().empty());
    CHECK(a_dialog->remote_tag() == b_dialog->local_tag());
  });

  // B hangs up in the dialog: the BYE reaches A's dialog handler.
  ClientTransactionPtr bye;
  OnLoop(**b_holder, [&] {
    auto sent = b_dialog->Send({.method = "BYE"},
                               [&](const Message& response) { b_bye_status = response.status(); });
    REQUIRE(sent.ok());
    bye = *sent;
  });
  REQUIRE(Eventually([&] { return b_bye_status.load() == 200; }));
  CHECK(a_got_bye.load());

  // Everything released on the loops leaves nothing open.
  OnLoop(stack_a, [&] {
    invite.reset();
    a_dialog.reset();
  });
  OnLoop(**b_holder, [&] {
    bye.reset();
    b_dialog.reset();
    b_invite.reset();
  });
  CHECK(Eventually(
      [&] { return StatsOf(stack_a).dialogs == 1 && StatsOf(**b_holder).dialogs == 1; }));
  stack_a.Stop();
  (*b_holder)->Stop();
}

TEST_CASE("A CANCEL during ringing ends the INVITE with 487 on both sides") {
  const int port_a = testing::FreeTcpUdpPort();
  const int port_b = testing::FreeTcpUdpPort();
  std::atomic<bool> b_cancelled{false};
  ServerTransactionPtr b_invite;
  auto b = Stack::Start({.port = port_b}, [&](ServerTransactionPtr tx) {
    b_invite = tx;
    tx->OnCancel([&] { b_cancelled = true; });
    tx->Reply(180);
  });
  REQUIRE(b.ok());
  auto a = Stack::Start({.port = port_a}, [](ServerTransactionPtr tx) { tx->Reply(481); });
  REQUIRE(a.ok());
  Stack& stack_a = **a;
  DialogPtr dialog;
  ClientTransactionPtr invite;
  std::atomic<int> last_status{0};
  OnLoop(stack_a, [&] {
    dialog = *Dialog::Create(stack_a,
                             {.from = absl::StrCat("<sip:alice@127.0.0.1:", port_a, ">"),
                              .to = absl::StrCat("<sip:bob@127.0.0.1:", port_b, ">")},
                             nullptr);
    invite = *dialog->Send({.method = "INVITE",
                            .request_uri = absl::StrCat("sip:bob@127.0.0.1:", port_b),
                            .contact = stack_a.ContactFor("udp")},
                           [&](const Message& r) { last_status = r.status(); });
  });
  REQUIRE(Eventually([&] { return last_status.load() == 180; }));
  OnLoop(stack_a, [&] { invite->Cancel(); });
  REQUIRE(Eventually([&] { return last_status.load() == 487; }));
  CHECK(b_cancelled.load());
  OnLoop(stack_a, [&] {
    invite.reset();
    dialog.reset();
  });
  b.value()->Stop([&] { b_invite.reset(); });
  stack_a.Stop();
}

TEST_CASE("Timers fire on the loop and cancelled ones do not") {
  const int port = testing::FreeTcpUdpPort();
  auto stack = Stack::Start({.port = port, .tcp = false}, [](ServerTransactionPtr tx) {});
  REQUIRE(stack.ok());
  std::atomic<int> fired{0};
  std::unique_ptr<Timer> keep;
  std::unique_ptr<Timer> cancelled;
  std::unique_ptr<Timer> now;
  std::unique_ptr<Timer> past;
  OnLoop(**stack, [&] {
    keep = (*stack)->After(absl::Milliseconds(20), [&] { fired += 1; });
    cancelled = (*stack)->After(absl::Milliseconds(10), [&] { fired += 100; });
    cancelled->Cancel();
    // No delay, or a negative one, fires on the next turn of the loop (sofia itself asserts on a
    // zero duration).
    now = (*stack)->After(absl::ZeroDuration(), [&] { fired += 10; });
    past = (*stack)->After(-absl::Seconds(1), [&] { fired += 10; });
  });
  REQUIRE(Eventually([&] { return fired.load() >= 21; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  CHECK(fired.load() == 21);
  (*stack)->Stop([&] {
    keep.reset();
    cancelled.reset();
    now.reset();
    past.reset();
  });
}

TEST_CASE("Stack::Start reports a port it cannot bind") {
  const int port = testing::FreeTcpUdpPort();
  auto first = Stack::Start({.port = port}, [](ServerTransactionPtr) {});
  REQUIRE(first.ok());
  auto second = Stack::Start({.port = port}, [](ServerTransactionPtr) {});
  CHECK(!second.ok());
  CHECK(second.status().code() == absl::StatusCode::kUnavailable);
  CHECK(absl::StrContains(second.status().message(), std::to_string(port)));
}

}  // namespace
}  // namespace sb::sip
