# Third-party dependencies, all from Debian 12 packages (tools/lib/packages.txt).
find_package(Threads REQUIRED)
find_package(PkgConfig REQUIRED)
find_package(Protobuf REQUIRED)
find_package(gRPC CONFIG REQUIRED)
find_package(absl CONFIG REQUIRED)
find_package(spdlog CONFIG REQUIRED)
find_package(fmt CONFIG REQUIRED)
find_package(nlohmann_json CONFIG REQUIRED)
find_package(Boost 1.74 REQUIRED)
# hiredis' CMake config file is broken on Debian 12: use pkg-config.
pkg_check_modules(HIREDIS REQUIRED IMPORTED_TARGET hiredis)
pkg_check_modules(PQXX REQUIRED IMPORTED_TARGET libpqxx)
if(SB_BUILD_TESTS)
  find_package(Catch2 2 CONFIG REQUIRED)
endif()

find_program(SB_PROTOC protoc REQUIRED)
find_program(SB_GRPC_CPP_PLUGIN grpc_cpp_plugin REQUIRED)
