// The HTTP server of a build without cpp-httplib: `wick serve` says what is missing.
#include "wick/serve/server.h"

namespace wick::serve {

struct Server::Impl {};

Server::Server(ServerOptions, ServedModels) {
  fail("wick serve: this wick was built without cpp-httplib (Debian: libcpp-httplib-dev); install it and rebuild");
}

Server::~Server() = default;

void Server::run(const std::function<void(int)>&) {}

void Server::shutdown() {}

}  // namespace wick::serve
