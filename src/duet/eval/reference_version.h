// The versioned reference networks. FID-ref, KID-ref, precision / recall and diversity live in a
// reference network's penultimate features, so they are comparable only between runs that use
// the same network; each released reference gets a version, recognised by its file's sha256, and
// every report names it (or says that the network is not a versioned reference).
#pragma once

#include <string>

namespace duet::eval {

// Reference v1: models/resnet20-fmnist.safetensors (ResNet-20, seed 1, 93.56 % test accuracy).
inline constexpr const char* kReferenceV1Sha256 =
    "78146793c648937566632edadcaeb3d7228a1c86cd27099f0564452db9b172df";

// "v1" when sha256 (lower-case hex) is a released reference's, "" otherwise.
std::string reference_version(const std::string& sha256);

}  // namespace duet::eval
