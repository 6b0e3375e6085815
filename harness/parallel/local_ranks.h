// This process's place among the ranks on its own node: what picks its GPU (one per rank, by
// local rank) and bounds the memory a benchmark may take (the node's ranks share it).
#pragma once
#include <functional>
#include <optional>

namespace tb {

struct LocalRanks {
  int rank = 0;  // 0 … size−1 among the ranks of this node
  int size = 1;
  bool operator==(const LocalRanks&) const = default;
};

// From the launcher's environment, read through `getenv`: OpenMPI's mpirun
// (OMPI_COMM_WORLD_LOCAL_RANK, OMPI_COMM_WORLD_LOCAL_SIZE), MPICH's hydra (MPI_LOCALRANKID,
// MPI_LOCALNRANKS), Slurm's srun (SLURM_LOCALID; the node's task count is entry SLURM_NODEID of
// SLURM_STEP_TASKS_PER_NODE, a list such as "4(x2),3"). nullopt when no launcher gives both.
// Throws std::invalid_argument naming the variable when one is set but malformed.
std::optional<LocalRanks> local_ranks_from_env(
    const std::function<const char*(const char*)>& getenv);

// The launcher's variables when they are set; otherwise, when MPI is initialised,
// MPI_Comm_split_type(MPI_COMM_TYPE_SHARED) over the world — a collective: every rank must call
// it; otherwise {0, 1}.
LocalRanks local_ranks();

}  // namespace tb
