// main() for GoogleTest binaries that run under mpirun: MPI is initialised first, only rank
// 0 prints, and the process exits non-zero when a test failed on ANY rank (the outcome is
// summed over the world), so ctest sees every rank's failures.
#include <gtest/gtest.h>
#include <mpi.h>

#include "parallel/mpi_comm.h"

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  tb::MpiRuntime::init();
  const int rank = tb::MpiRuntime::world_rank();
  if (rank != 0) {
    // Failures on other ranks are still printed: their listener is kept, only the default
    // result printer's progress lines are not.
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
    struct FailurePrinter : ::testing::EmptyTestEventListener {
      int rank;
      explicit FailurePrinter(int r) : rank(r) {}
      void OnTestPartResult(const ::testing::TestPartResult& r) override {
        if (r.failed())
          std::fprintf(stderr, "[rank %d] %s:%d: %s\n", rank, r.file_name(), r.line_number(),
                       r.summary());
      }
    };
    listeners.Append(new FailurePrinter(rank));
  }
  int failed = RUN_ALL_TESTS() != 0 ? 1 : 0;
  MPI_Allreduce(MPI_IN_PLACE, &failed, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  return failed ? 1 : 0;
}
