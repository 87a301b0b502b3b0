// switchboard: every Switchboard service in one binary; --target chooses which run here.
#include "cmd/switchboard/modules.h"
#include "libs/app/app.h"

int main(int argc, char** argv) {
  static const std::vector<sb::app::ModuleSpec> kModules = sb::AllModules();
  return sb::app::RunMain(argc, argv, kModules);
}
