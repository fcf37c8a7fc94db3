// Causal self-attention of a batch of queries over one layer's KV cache, read in its
// stored type (engine/model/kv_cache.h).
//
// Keys are taken in blocks of kKeyBlock positions, aligned to absolute positions. For
// each query and block: scores = q.k * scale over the keys the query sees (causal, and
// a sliding window's lower bound), soft-capped, then the block's partial softmax
// (m = max, p = exp(s - m), l = sum p, o = sum p v), merged into the query's running
// (M, L, O) in block order (online softmax); out = O / L.
//
// What a query computes depends only on its position and the cache, never on how
// queries are batched, how blocks are split between threads, or whether a layer's
// cache is a ring: the scores come from the matmul kernels (whose results do not depend
// on the row range, kernels.h) and every partial is merged in the same order. So batch
// size, thread count and ring vs full cache all give identical bits.
//
// Work split: one task per (KV head, block of kQueryBlock tokens), its group of query
// heads sharing each key and value row it loads (a small GEMM per key block). A single
// token (decode) is instead split over (KV head, key block): each task writes its
// partials, then the merge runs in block order, so long contexts use every thread.
#pragma once
#include <cstdint>
#include <vector>

#include "core/thread_pool.h"
#include "engine/model/config.h"
#include "engine/model/kv_cache.h"
#include "kernels/kernels.h"

namespace ember {

class Attention {
 public:
  static constexpr int32_t kKeyBlock = 128;   // positions per key block
  static constexpr int32_t kQueryBlock = 8;   // tokens per prefill task

  // Bytes Init allocates for a context of n_ctx positions on n_threads threads.
  static uint64_t PlannedBytes(const ModelConfig& c, int32_t n_ctx, int32_t n_threads);
  void Init(const ModelConfig& c, int32_t n_ctx, int32_t n_threads);  // bad_alloc escapes

  // out[t][n_head * head_dim_v] for the queries q[t][n_head * head_dim] (RoPE applied) of
  // positions pos0 + t, t < n, whose keys and values are already in `kv`. window > 0:
  // a query at p sees positions p - window + 1 .. p.
  void Run(const kernels::Table& kt, const KvCache& kv, int32_t layer, int32_t window, const float* q,
           int32_t n, int32_t pos0, float* out, ThreadPool* pool);

 private:
  // One thread's buffers, for R = kQueryBlock * group query rows.
  struct Scratch {
    std::vector<float> q;         // [R][head_dim] the task's queries, gathered
    std::vector<uint8_t> qq;      // [R] the same as Q8_0 rows (for a Q8_0 key cache)
    std::vector<float> scores;    // [R][kKeyBlock]
    std::vector<float> values;    // [kKeyBlock][head_dim_v] a block's values as floats
    std::vector<float> m, l, o;   // a block's partials: [R], [R], [R][head_dim_v]
    std::vector<float> M, L, O;   // the running merge: [R], [R], [R][head_dim_v]
    std::vector<float> rows;      // kFloatGemmRows * head_dim: the f16 GEMM's row scratch
  };
  struct Job;  // one Run's arguments
  // The partial softmax of block b for the queries of tokens [t0, t1) of KV head kvh:
  // per query (row r = (t - t0) * group + g), m[r], l[r] and o[r][head_dim_v].
  void BlockPartial(const Job& j, Scratch& s, int32_t kvh, int32_t t0, int32_t t1, int32_t b, float* m, float* l,
                    float* o) const;
  void Scores(const Job& j, Scratch& s, int32_t kvh, int32_t rows, int32_t lo, int32_t hi) const;
  const float* ValueRows(const Job& j, Scratch& s, int32_t kvh, int32_t lo, int32_t hi) const;
  void GatherQueries(const Job& j, Scratch& s, int32_t kvh, int32_t t0, int32_t t1) const;
  void QueryBlockTask(const Job& j, Scratch& s, int32_t kvh, int32_t t0, int32_t t1) const;
  void RunSplitDecode(const Job& j, ThreadPool* pool);

  int32_t n_head_ = 0, n_kv_ = 0, hd_ = 0, hdv_ = 0, group_ = 0, n_blocks_ = 0;
  float scale_ = 0, softcap_ = 0;
  std::vector<Scratch> scratch_;  // [n_threads]
  std::vector<float> partials_;   // decode split: [n_head][n_blocks][head_dim_v + 2]
};

}  // namespace ember
