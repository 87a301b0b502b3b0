#pragma once

// The one place that includes sofia-sip, for libs/sip's own .cc files only (never from a public
// header). The *_MAGIC_T macros make every context pointer that sofia hands back typed: a leg's
// callback receives a Dialog*, an outgoing transaction's a ClientTransaction*, and so on, instead
// of void* casts at each trampoline.

namespace sb::sip {
class Stack;
class Dialog;
class ClientTransaction;
class ServerTransaction;
class Timer;
}  // namespace sb::sip

#define SU_ROOT_MAGIC_T ::sb::sip::Stack
#define SU_WAKEUP_ARG_T ::sb::sip::Stack
#define SU_PREPOLL_MAGIC_T ::sb::sip::Stack
#define SU_TIMER_ARG_T ::sb::sip::Timer
#define NTA_AGENT_MAGIC_T ::sb::sip::Stack
#define NTA_LEG_MAGIC_T ::sb::sip::Dialog
#define NTA_OUTGOING_MAGIC_T ::sb::sip::ClientTransaction
#define NTA_INCOMING_MAGIC_T ::sb::sip::ServerTransaction

#include <sofia-sip/msg_addr.h>
#include <sofia-sip/msg_mclass.h>
#include <sofia-sip/nta.h>
#include <sofia-sip/nta_tport.h>
#include <sofia-sip/sip.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_protos.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/sip_tag.h>
#include <sofia-sip/su.h>
#include <sofia-sip/su_log.h>
#include <sofia-sip/su_tag.h>
#include <sofia-sip/su_wait.h>
#include <sofia-sip/tport.h>
#include <sofia-sip/tport_tag.h>
#include <sofia-sip/url.h>
