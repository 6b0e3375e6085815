#include "local_ranks.h"

#include <mpi.h>

#include <cstdlib>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace tb {

namespace {

int parse_count(const char* name, std::string_view v) {
  int x = 0;
  if (v.empty() || v.size() > 9) {
    throw std::invalid_argument(std::string(name) + " = '" + std::string(v) +
                                "' (expected a non-negative integer)");
  }
  for (char ch : v) {
    if (ch < '0' || ch > '9') {
      throw std::invalid_argument(std::string(name) + " = '" + std::string(v) +
                                  "' (expected a non-negative integer)");
    }
    x = x * 10 + (ch - '0');
  }
  return x;
}

// Slurm's compressed task list: comma-separated "N" or "N(xK)" (K nodes with N tasks each).
std::vector<int> expand_tasks_per_node(const char* name, std::string_view v) {
  std::vector<int> out;
  while (!v.empty()) {
    const auto comma = v.find(',');
    std::string_view item = v.substr(0, comma);
    v = comma == std::string_view::npos ? std::string_view{} : v.substr(comma + 1);
    int repeat = 1;
    if (const auto paren = item.find("(x"); paren != std::string_view::npos) {
      if (item.back() != ')') {
        throw std::invalid_argument(std::string(name) + " entry '" + std::string(item) +
                                    "' (expected N or N(xK))");
      }
      repeat = parse_count(name, item.substr(paren + 2, item.size() - paren - 3));
      item = item.substr(0, paren);
    }
    const int n = parse_count(name, item);
    out.insert(out.end(), static_cast<std::size_t>(repeat), n);
  }
  return out;
}

std::optional<LocalRanks> pair(const std::function<const char*(const char*)>& getenv,
                               const char* rank_var, const char* size_var) {
  const char* r = getenv(rank_var);
  const char* s = getenv(size_var);
  if (!r || !s) return std::nullopt;
  LocalRanks l{parse_count(rank_var, r), parse_count(size_var, s)};
  if (l.rank >= l.size) {
    throw std::invalid_argument(std::string(rank_var) + " = " + r + " (expected < " + size_var +
                                " = " + s + ")");
  }
  return l;
}

}  // namespace

std::optional<LocalRanks> local_ranks_from_env(
    const std::function<const char*(const char*)>& getenv) {
  if (auto l = pair(getenv, "OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE")) return l;
  if (auto l = pair(getenv, "MPI_LOCALRANKID", "MPI_LOCALNRANKS")) return l;
  const char* id = getenv("SLURM_LOCALID");
  const char* node = getenv("SLURM_NODEID");
  const char* tasks = getenv("SLURM_STEP_TASKS_PER_NODE");
  if (!id || !node || !tasks) return std::nullopt;
  const auto per_node = expand_tasks_per_node("SLURM_STEP_TASKS_PER_NODE", tasks);
  const int n = parse_count("SLURM_NODEID", node);
  if (n >= static_cast<int>(per_node.size())) {
    throw std::invalid_argument(std::string("SLURM_NODEID = ") + node + " (expected < the " +
                                std::to_string(per_node.size()) +
                                " nodes of SLURM_STEP_TASKS_PER_NODE = '" + tasks + "')");
  }
  LocalRanks l{parse_count("SLURM_LOCALID", id), per_node[static_cast<std::size_t>(n)]};
  if (l.rank >= l.size) {
    throw std::invalid_argument(std::string("SLURM_LOCALID = ") + id + " (expected < " +
                                std::to_string(l.size) + " tasks on node " + node + ")");
  }
  return l;
}

LocalRanks local_ranks() {
  if (auto l = local_ranks_from_env([](const char* n) { return std::getenv(n); })) return *l;
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (!initialized || finalized) return {};
  MPI_Comm node = MPI_COMM_NULL;
  int world_rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
  if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, world_rank, MPI_INFO_NULL, &node) !=
      MPI_SUCCESS) {
    throw std::runtime_error("MPI_Comm_split_type(MPI_COMM_TYPE_SHARED) failed");
  }
  LocalRanks l;
  MPI_Comm_rank(node, &l.rank);
  MPI_Comm_size(node, &l.size);
  MPI_Comm_free(&node);
  return l;
}

}  // namespace tb
