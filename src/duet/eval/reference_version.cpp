#include "duet/eval/reference_version.h"

namespace duet::eval {

std::string reference_version(const std::string& sha256) {
  return sha256 == kReferenceV1Sha256 ? "v1" : "";
}

}  // namespace duet::eval
