#include "goodput.h"

#include <cmath>
#include <limits>
#include <stdexcept>

namespace tb {

double young_interval_s(double checkpoint_s, double mtbf_s) {
  return std::sqrt(2.0 * checkpoint_s * mtbf_s);
}

double daly_interval_s(double checkpoint_s, double mtbf_s) {
  if (checkpoint_s >= 2.0 * mtbf_s) return mtbf_s;
  const double r = checkpoint_s / (2.0 * mtbf_s);
  return young_interval_s(checkpoint_s, mtbf_s) * (1.0 + std::sqrt(r) / 3.0 + r / 9.0) -
         checkpoint_s;
}

Goodput expected_goodput(const GoodputInputs& in) {
  if (!(in.mtbf_s > 0) || !(in.checkpoint_s >= 0) || !(in.solve_s >= 0)) {
    throw std::invalid_argument("goodput: MTBF must be positive and times non-negative");
  }
  Goodput g;
  g.interval_s = daly_interval_s(in.checkpoint_s, in.mtbf_s);
  const double lost = (in.restart_s + (g.interval_s + in.checkpoint_s) / 2.0) / in.mtbf_s;
  const double write = g.interval_s > 0 ? in.checkpoint_s / g.interval_s : 0.0;
  g.wall_s = lost < 1.0 ? in.solve_s * (1.0 + write) / (1.0 - lost)
                        : std::numeric_limits<double>::infinity();
  g.overhead_fraction = in.solve_s > 0 ? g.wall_s / in.solve_s - 1.0 : 0.0;
  return g;
}

}  // namespace tb
