#pragma once

// A service's schema migrations: numbered SQL files from services/<name>/migrations/, embedded in
// the binary by the sb_migrations() CMake helper.

#include <string_view>
#include <vector>

namespace sb::pg {

struct Migration {
  int version;            // NNNN from the file name; strictly increasing within a set
  std::string_view name;  // the file name, recorded with the version
  std::string_view sql;   // run in one transaction
};

struct MigrationSet {
  std::string_view schema;  // the PostgreSQL schema the service owns, e.g. "identity"
  std::vector<Migration> migrations;
};

}  // namespace sb::pg
