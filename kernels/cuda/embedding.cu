// Token + position embeddings. The backward scatter into the token table is deterministic
// without atomics: the positions are sorted by token id with a stable radix sort (CUB), then one
// block per distinct token sums that token's rows of dout in position order and adds the sum to
// its row of dwte (which no other block touches). The position table's gradient is a column
// sum over the batch (column_sum.cuh).
#include <cub/device/device_radix_sort.cuh>

#include <climits>
#include <stdexcept>
#include <string>

#include "column_sum.cuh"

namespace tb::cuda {

namespace {

constexpr int kBlock = 256;
constexpr std::size_t kAlign = 256;

std::size_t align_up(std::size_t b) { return (b + kAlign - 1) / kAlign * kAlign; }

// Bits of the sort keys: token ids in [0, V) and the sentinel V for invalid tokens.
int key_bits(I64 V) {
  int bits = 1;
  while (bits < 32 && (I64{1} << bits) <= V) ++bits;
  return bits;
}

__global__ void embedding_forward_kernel(Out out, const std::int32_t* tokens, In wte, In wpe, I64 B,
                                         I64 T, I64 C, I64 V) {
  const I64 n = B * T * C;
  for (I64 i = thread_index(); i < n; i += grid_threads()) {
    const I64 bt = i / C, c = i % C;
    const I64 tok = tokens[bt];
    const float v = (tok >= 0 && tok < V) ? ld(wte, tok * C + c) + ld(wpe, (bt % T) * C + c)
                                          : __int_as_float(0x7fc00000);
    st(out, i, v);
  }
}

// keys[i] = tokens[i] (V for a token outside [0, V), sorted last and skipped), values[i] = i.
__global__ void sort_input_kernel(unsigned* keys, int* values, const std::int32_t* tokens, I64 n,
                                  I64 V) {
  for (I64 i = thread_index(); i < n; i += grid_threads()) {
    const I64 tok = tokens[i];
    keys[i] = static_cast<unsigned>((tok >= 0 && tok < V) ? tok : V);
    values[i] = static_cast<int>(i);
  }
}

// Position i starts a run of equal keys: its block adds the run's dout rows (in position order,
// which the stable sort kept) into dwte[key].
__global__ void token_rows_kernel(Out dwte, In dout, const unsigned* keys, const int* positions,
                                  I64 n, I64 C, I64 V) {
  for (I64 i = blockIdx.x; i < n; i += gridDim.x) {
    const unsigned key = keys[i];
    if (key >= V || (i > 0 && keys[i - 1] == key)) continue;
    for (I64 c = threadIdx.x; c < C; c += blockDim.x) {
      float acc = 0;
      for (I64 j = i; j < n && keys[j] == key; ++j) acc += ld(dout, I64{positions[j]} * C + c);
      const I64 o = I64{key} * C + c;
      st(dwte, o, ld(dwte, o) + acc);
    }
  }
}

struct BatchColumn {  // entry (b, j) of dout seen as (B × T·C)
  In dout;
  I64 cols;
  __device__ float2 operator()(I64 b, I64 j) const {
    return make_float2(ld(dout, b * cols + j), 0.0f);
  }
};

struct SortBuffers {
  unsigned *keys_in, *keys_out;
  int *values_in, *values_out;
  void* cub_temp;
  std::size_t cub_bytes;
  void* column_scratch;
};

std::size_t cub_sort_bytes(I64 n, int bits) {
  std::size_t bytes = 0;
  cuda::check(cub::DeviceRadixSort::SortPairs(
                  nullptr, bytes, static_cast<const unsigned*>(nullptr),
                  static_cast<unsigned*>(nullptr), static_cast<const int*>(nullptr),
                  static_cast<int*>(nullptr), static_cast<int>(n), 0, bits),
              "cub::DeviceRadixSort::SortPairs (temporary storage size)");
  return bytes;
}

// Carves scratch (or, with base == nullptr, only sizes it).
SortBuffers carve(void* base, I64 B, I64 T, I64 C, I64 V, std::size_t* total) {
  const I64 n = B * T;
  const std::size_t key_bytes = align_up(static_cast<std::size_t>(n) * sizeof(unsigned));
  SortBuffers s{};
  s.cub_bytes = cub_sort_bytes(n, key_bits(V));
  auto* p = static_cast<unsigned char*>(base);
  std::size_t off = 0;
  const auto take = [&](std::size_t bytes) {
    void* q = p ? p + off : nullptr;
    off += align_up(bytes);
    return q;
  };
  s.keys_in = static_cast<unsigned*>(take(key_bytes));
  s.keys_out = static_cast<unsigned*>(take(key_bytes));
  s.values_in = static_cast<int*>(take(key_bytes));
  s.values_out = static_cast<int*>(take(key_bytes));
  s.cub_temp = take(s.cub_bytes);
  s.column_scratch = take(column_sum_scratch_bytes(B, T * C));
  *total = off;
  return s;
}

}  // namespace

void embedding_forward(Out out, const std::int32_t* tokens, In wte, In wpe, I64 B, I64 T, I64 C,
                       I64 V, cudaStream_t stream) {
  const I64 n = B * T * C;
  if (n <= 0) return;
  embedding_forward_kernel<<<grid_blocks(n, kBlock), kBlock, 0, stream>>>(out, tokens, wte, wpe, B,
                                                                          T, C, V);
  check_launch("embedding_forward_kernel");
}

std::size_t embedding_backward_scratch_bytes(I64 B, I64 T, I64 C, I64 V) {
  if (B * T <= 0) return 0;
  if (B * T > INT_MAX) {
    throw std::invalid_argument("embedding_backward: B·T = " + std::to_string(B * T) +
                                " positions (at most " + std::to_string(INT_MAX) + ")");
  }
  std::size_t total = 0;
  carve(nullptr, B, T, C, V, &total);
  return total;
}

void embedding_backward(Out dwte, Out dwpe, In dout, const std::int32_t* tokens, I64 B, I64 T,
                        I64 C, I64 V, void* scratch, std::size_t scratch_bytes,
                        cudaStream_t stream) {
  const I64 n = B * T;
  if (n <= 0 || C <= 0) return;
  std::size_t total = 0;
  const SortBuffers s = carve(scratch, B, T, C, V, &total);
  if (total > scratch_bytes) throw std::logic_error("embedding_backward: scratch too small");
  sort_input_kernel<<<grid_blocks(n, kBlock), kBlock, 0, stream>>>(s.keys_in, s.values_in, tokens,
                                                                   n, V);
  check_launch("sort_input_kernel");
  std::size_t cub_bytes = s.cub_bytes;
  cuda::check(
      cub::DeviceRadixSort::SortPairs(s.cub_temp, cub_bytes, s.keys_in, s.keys_out, s.values_in,
                                      s.values_out, static_cast<int>(n), 0, key_bits(V), stream),
      "cub::DeviceRadixSort::SortPairs");
  token_rows_kernel<<<grid_blocks(n, 1), kBlock, 0, stream>>>(dwte, dout, s.keys_out, s.values_out,
                                                              n, C, V);
  check_launch("token_rows_kernel");
  column_sum(BatchColumn{dout, T * C}, B, T * C, dwpe, Out{}, s.column_scratch, stream);
}

}  // namespace tb::cuda
