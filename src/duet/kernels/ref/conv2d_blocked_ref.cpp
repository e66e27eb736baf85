// Reference twin of the channel-blocked convolution: the reference channel-major convolution
// between layout conversions.
#include "duet/kernels/conv2d_blocked.h"
#include "duet/kernels/conv2d_impl.h"

namespace duet::kernels::ref {

void conv2d_forward_blocked(const Conv2dShape& s, bool x_blocked, const float* x, const float* w,
                            float* y, const Epilogue& e) {
  detail::check_blocked(s, x, w, y);
  if (s.batch == 0) return;
  detail::forward_blocked_via_channel_major(ref::conv2d_forward, s, x_blocked, x, w, y, e);
}

}  // namespace duet::kernels::ref
