// The Hub client of a build without libcurl/OpenSSL: every call says what is missing.
#include "wick/hub/hub_client.h"

namespace wick::hub {

HubOptions HubOptions::from_env() { return HubOptions{}; }

bool matches_pattern(const std::string&, const std::string&) { return false; }

PullResult pull(const std::string&, const std::string&, const HubOptions&) {
  fail("this wick was built without the Hub client: install libcurl4-openssl-dev and libssl-dev, then rebuild");
}

}  // namespace wick::hub
