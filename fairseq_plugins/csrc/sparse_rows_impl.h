// The row algorithms of sparse_rows.cpp, compiled once per instruction set: that file includes this
// one inside namespaces `baseline` and `avx2` (the latter under `#pragma GCC target("avx2,fma")`).
// No include guard on purpose.


template <typename T>
T row_max(const T* z, int64_t keys) {
  T top = -std::numeric_limits<T>::infinity();
#pragma omp simd reduction(max : top)
  for (int64_t i = 0; i < keys; ++i) top = z[i] > top ? z[i] : top;
  return top;
}

// sum_i [x_i - tau]_+ and |{i: x_i > tau}| for x = z - top, branch-free (max, not a comparison and a
// jump: rows are short and their entries fall on either side at random, so branches would mispredict).
// Thresholds are kept relative to the row maximum, as the sort-based references do: the support's
// entries are then exact near 0 and [x - tau]_+ keeps its precision (float32 rows of 1,024 tied keys:
// the weights sum to 1 within 1e-7 instead of 2e-5).
template <typename T>
void excess_above(const T* z, int64_t keys, T top, T tau, T& excess, T& count) {
  T s = 0, n = 0;
#pragma omp simd reduction(+ : s, n)
  for (int64_t i = 0; i < keys; ++i) {
    const T x = z[i] - top;
    s += std::max(x - tau, T(0));
    n += static_cast<T>(x > tau);
  }
  excess = s;
  count = n;
}

// sparsemax of one row: out = [x - tau]_+ with sum_i [x_i - tau]_+ = 1, x = z - max z; returns the
// support size.
template <typename T>
T sparsemax_row(const T* z, T* out, int64_t keys) {
  const T top = row_max(z, keys);
  if (!(top > -std::numeric_limits<T>::infinity())) {  // every key masked (or NaN): zeros
    std::fill(out, out + keys, T(0));
    return T(0);
  }
  // Newton on the piecewise-linear f(tau) = sum_i [x_i - tau]_+ - 1 from tau = -1 (f >= 0):
  // tau <- tau + f(tau) / |{x > tau}| = (sum_{x > tau} x - 1) / |{x > tau}| rises to the root; once
  // the support no longer shrinks, tau is the sort-based threshold of that support (Duchi et al.
  // 2008), hence exact.
  T tau = -T(1), previous = -1;  // relative to top
  for (int64_t step = 0; step <= keys; ++step) {
    T excess, count;
    excess_above(z, keys, top, tau, excess, count);
    if (count == previous) break;
    previous = count;
    const T next = tau + (excess - T(1)) / count;
    if (!(next > tau)) break;  // at the root in this precision
    tau = next;
  }
  T support = 0;
#pragma omp simd reduction(+ : support)
  for (int64_t i = 0; i < keys; ++i) {
    const T v = std::max((z[i] - top) - tau, T(0));
    out[i] = v;
    support += static_cast<T>(v > T(0));
  }
  return support;
}

// 1.5-entmax threshold of x = z / 2 by sorting (Peters et al. 2019, Algorithm 2): the fallback.
template <typename T>
T entmax15_threshold_sorted(const T* z, int64_t keys, T top_half) {
  std::vector<T> ranked(z, z + keys);
  std::sort(ranked.begin(), ranked.end(), std::greater<T>());
  T s1 = 0, s2 = 0, tau = -T(1);
  for (int64_t r = 1; r <= keys; ++r) {
    const T x = ranked[r - 1] * T(0.5) - top_half;  // relative to the maximum, as the reference
    if (!(x > -std::numeric_limits<T>::infinity())) break;
    s1 += x;
    s2 += x * x;
    const T mean = s1 / r, mean_sq = s2 / r;
    const T delta = (T(1) - r * (mean_sq - mean * mean)) / r;
    const T candidate = mean - std::sqrt(delta > T(0) ? delta : T(0));
    if (candidate > x) break;  // the support ended before this entry
    tau = candidate;
  }
  return tau;  // relative to top_half
}

// 1.5-entmax of one row: root = [x - tau]_+ with sum_i root_i^2 = 1, x = (z - max z) / 2 (the output
// is root^2).
template <typename T>
void entmax15_row(const T* z, T* root, int64_t keys) {
  const T top = row_max(z, keys);
  if (!(top > -std::numeric_limits<T>::infinity())) {
    std::fill(root, root + keys, T(0));
    return;
  }
  const T top_half = top * T(0.5);
  // relative to top_half: f(tau) = sum [x - tau]_+^2 - 1 >= 0 at -1, where the maximum alone gives 1
  T tau = -T(1);
  T previous = -1;
  bool exact = false;
  for (int step = 0; step < 64; ++step) {
    // row sums of y = x - tau over the support S = {x > tau}
    T s1 = 0, s2 = 0, n = 0;
#pragma omp simd reduction(+ : s1, s2, n)
    for (int64_t i = 0; i < keys; ++i) {
      const T y = std::max((z[i] * T(0.5) - top_half) - tau, T(0));  // branch-free, as in excess_above
      s1 += y;
      s2 += y * y;
      n += static_cast<T>(y > T(0));
    }
    // Newton step on the convex, decreasing f: stays below the root
    const T next = tau + (s2 - T(1)) / (T(2) * s1);
    const bool stalled = !(next > tau);  // at the root in this precision
    if (n == previous || stalled) {
      // S settled: the exact root of sum_S (y_i - d)^2 = 1, i.e. M2 + n (mean - d)^2 = 1 with M2 the
      // sum of squared deviations from the mean (a second pass: s2 - s1^2 / n would cancel
      // catastrophically in float32 when S is wide), taking the smaller d. It is the threshold if
      // its own support is S again.
      const T mean = s1 / n;
      T m2 = 0;
#pragma omp simd reduction(+ : m2)
      for (int64_t i = 0; i < keys; ++i) {
        const T y = (z[i] * T(0.5) - top_half) - tau;
        const T deviation = y > T(0) ? y - mean : T(0);
        m2 += deviation * deviation;
      }
      if (m2 <= T(1)) {
        const T candidate = tau + mean - std::sqrt((T(1) - m2) / n);
        T kept = 0;
#pragma omp simd reduction(+ : kept)
        for (int64_t i = 0; i < keys; ++i) kept += static_cast<T>(z[i] * T(0.5) - top_half > candidate);
        if (kept == n) {
          tau = candidate;
          exact = true;
          break;
        }
      }
    }
    if (stalled) break;  // settled by sorting below
    previous = n;
    tau = next;
  }
  if (!exact) tau = entmax15_threshold_sorted(z, keys, top_half);
#pragma omp simd
  for (int64_t i = 0; i < keys; ++i) {
    root[i] = std::max((z[i] * T(0.5) - top_half) - tau, T(0));
  }
}

constexpr int64_t kChunk = 8;
constexpr int64_t kChunkedFrom = 128;  // float32 top-k rows from this many keys go through their chunk maxima (measured
                                      // crossover: at 64 keys every chunk qualifies, and the running merge is faster)

template <typename T>
inline T chunk_max(const T* z) {  // kChunk = 8 keys, straight-line (a reduction loop costs 2x here)
  static_assert(kChunk == 8, "chunk_max reads 8 keys");
  const T a = std::max(z[0], z[1]), b = std::max(z[2], z[3]), c = std::max(z[4], z[5]), d = std::max(z[6], z[7]);
  return std::max(std::max(a, b), std::max(c, d));
}

// v into the descending buffer best[0..k), dropping its last entry, if v beats that entry. The shift
// is branch-free (new best[j] = max(best[j], min(best[j - 1], v)), from the top down): where v lands
// is random, so a shifting loop's exit branch mispredicts (measured: a third of top-k's time).
template <typename T>
inline void insert(T* best, int64_t k, T v) {
  if (!(v > best[k - 1])) return;
  for (int64_t j = k - 1; j > 0; --j) best[j] = std::max(best[j], std::min(best[j - 1], v));
  best[0] = std::max(best[0], v);
}

#if defined(__GNUC__) && !defined(__clang__)
#define SPARSE_ROWS_TOP8 1
// The 8 largest of a float32 row in one vector register (GCC vector extensions: one AVX2 register, or
// two SSE2 ones in the baseline build), merged a chunk of 8 keys at a time with a bitonic network: a
// chunk costs 10 compare-exchange stages, where inserting its keys one by one into a k-slot buffer is 8
// dependent shifts (measured on float32 rows of 64 / 256 / 1,024 keys, AVX2: selection 3.6x / 1.4x /
// 1.2x faster than the branch-free buffer below).
typedef float top8_t __attribute__((vector_size(32)));
typedef int32_t top8_lanes __attribute__((vector_size(32)));

// lane-wise maximum and minimum: one vmaxps / vminps each (GCC turns the selects of a shared comparison
// into a compare and two variable blends, twice the latency)
inline top8_t lane_max(top8_t a, top8_t b) {
#ifdef __AVX__
  return reinterpret_cast<top8_t>(_mm256_max_ps(reinterpret_cast<__m256>(a), reinterpret_cast<__m256>(b)));
#else
  return a > b ? a : b;
#endif
}

inline top8_t lane_min(top8_t a, top8_t b) {
#ifdef __AVX__
  return reinterpret_cast<top8_t>(_mm256_min_ps(reinterpret_cast<__m256>(a), reinterpret_cast<__m256>(b)));
#else
  return a < b ? a : b;
#endif
}

// compare-exchange of each lane with lane `partner[i]`; lanes where keep_max is set keep the larger
// (the constant selection compiles to one immediate blend)
inline top8_t compare_exchange(top8_t x, top8_lanes partner, top8_lanes keep_max) {
  const top8_t other = __builtin_shuffle(x, partner);
  const top8_lanes lanes = {0, 1, 2, 3, 4, 5, 6, 7};
  return __builtin_shuffle(lane_max(x, other), lane_min(x, other), lanes + (~keep_max & 8));
}

// the last three stages of a bitonic sort: a bitonic sequence of 8 -> descending
inline top8_t bitonic_clean_descending(top8_t x) {
  x = compare_exchange(x, top8_lanes{4, 5, 6, 7, 0, 1, 2, 3}, top8_lanes{-1, -1, -1, -1, 0, 0, 0, 0});
  x = compare_exchange(x, top8_lanes{2, 3, 0, 1, 6, 7, 4, 5}, top8_lanes{-1, -1, 0, 0, -1, -1, 0, 0});
  return compare_exchange(x, top8_lanes{1, 0, 3, 2, 5, 4, 7, 6}, top8_lanes{-1, 0, -1, 0, -1, 0, -1, 0});
}

// 8 lanes sorted by a bitonic network (6 stages); descending flips every direction of the ascending one
inline top8_t sort8(top8_t x, top8_lanes flip) {
  x = compare_exchange(x, top8_lanes{1, 0, 3, 2, 5, 4, 7, 6}, top8_lanes{0, -1, -1, 0, 0, -1, -1, 0} ^ flip);
  x = compare_exchange(x, top8_lanes{2, 3, 0, 1, 6, 7, 4, 5}, top8_lanes{0, 0, -1, -1, -1, -1, 0, 0} ^ flip);
  x = compare_exchange(x, top8_lanes{1, 0, 3, 2, 5, 4, 7, 6}, top8_lanes{0, -1, 0, -1, -1, 0, -1, 0} ^ flip);
  x = compare_exchange(x, top8_lanes{4, 5, 6, 7, 0, 1, 2, 3}, top8_lanes{0, 0, 0, 0, -1, -1, -1, -1} ^ flip);
  x = compare_exchange(x, top8_lanes{2, 3, 0, 1, 6, 7, 4, 5}, top8_lanes{0, 0, -1, -1, 0, 0, -1, -1} ^ flip);
  return compare_exchange(x, top8_lanes{1, 0, 3, 2, 5, 4, 7, 6}, top8_lanes{0, -1, 0, -1, 0, -1, 0, -1} ^ flip);
}
inline top8_t sort_ascending8(top8_t x) { return sort8(x, top8_lanes{0, 0, 0, 0, 0, 0, 0, 0}); }
inline top8_t sort_descending8(top8_t x) { return sort8(x, top8_lanes{-1, -1, -1, -1, -1, -1, -1, -1}); }

// the 8 largest of `best` (descending) and `chunk`, descending
inline top8_t merge_top8(top8_t best, top8_t chunk) {
  // descending against ascending: the lane-wise maxima are the 8 largest of both, as a bitonic sequence
  return bitonic_clean_descending(lane_max(best, sort_ascending8(chunk)));
}

// the 8 largest of two descending vectors, descending
inline top8_t merge_descending8(top8_t a, top8_t b) {
  return bitonic_clean_descending(lane_max(a, __builtin_shuffle(b, top8_lanes{7, 6, 5, 4, 3, 2, 1, 0})));
}

inline top8_t load_chunk(const float* z, int64_t c, int64_t keys) {  // chunk c, -inf past the row's end
  top8_t chunk;
  if ((c + 1) * kChunk <= keys) {
    std::memcpy(&chunk, z + c * kChunk, sizeof chunk);
  } else {
    const float neg_inf = -std::numeric_limits<float>::infinity();
    chunk = top8_t{neg_inf, neg_inf, neg_inf, neg_inf, neg_inf, neg_inf, neg_inf, neg_inf};
    for (int64_t i = c * kChunk; i < keys; ++i) chunk[i - c * kChunk] = z[i];
  }
  return chunk;
}

// the largest and the k-th largest (k <= 8) of a float32 row (-inf when fewer than k keys are finite)
inline void top8_select(const float* z, int64_t keys, int64_t k, float& top, float& kth) {
  const float neg_inf = -std::numeric_limits<float>::infinity();
  top8_t best = {neg_inf, neg_inf, neg_inf, neg_inf, neg_inf, neg_inf, neg_inf, neg_inf};
  const int64_t full = keys / kChunk;
  for (int64_t c = 0; c < full; ++c) {
    if (!(chunk_max(z + c * kChunk) > best[k - 1])) continue;  // no key of the chunk can enter
    best = merge_top8(best, load_chunk(z, c, keys));
  }
  if (full * kChunk < keys) best = merge_top8(best, load_chunk(z, full, keys));  // the partial chunk
  top = best[0];
  kth = best[k - 1];
}

// lane j: the maximum of the 8 keys z[8j .. 8j + 8), for 64 keys (a transposing reduction: 3 levels of
// two shuffles and a max, where 8 straight-line chunk maxima cost 56 scalar max operations)
inline top8_t chunk_maxima8(const float* z) {
  top8_t pairs[4], quads[2];
  // within each 128-bit half (unpack, shufps, then vperm2f128 across halves: one instruction per shuffle)
  for (int j = 0; j < 4; ++j) {  // lanes [a02 b02 a13 b13 | a46 b46 a57 b57] of chunks a = 2j, b = 2j + 1
    top8_t a, b;
    std::memcpy(&a, z + 16 * j, sizeof a);
    std::memcpy(&b, z + 16 * j + 8, sizeof b);
    pairs[j] = lane_max(__builtin_shuffle(a, b, top8_lanes{0, 8, 1, 9, 4, 12, 5, 13}),
                        __builtin_shuffle(a, b, top8_lanes{2, 10, 3, 11, 6, 14, 7, 15}));
  }
  for (int j = 0; j < 2; ++j)  // lane 4h + s: max of keys 4h .. 4h + 3 of v[4j + s]
    quads[j] = lane_max(__builtin_shuffle(pairs[2 * j], pairs[2 * j + 1], top8_lanes{0, 1, 8, 9, 4, 5, 12, 13}),
                        __builtin_shuffle(pairs[2 * j], pairs[2 * j + 1], top8_lanes{2, 3, 10, 11, 6, 7, 14, 15}));
  return lane_max(__builtin_shuffle(quads[0], quads[1], top8_lanes{0, 1, 2, 3, 8, 9, 10, 11}),
                  __builtin_shuffle(quads[0], quads[1], top8_lanes{4, 5, 6, 7, 12, 13, 14, 15}));
}

template <typename T>
inline T exp_nonpositive(T x);

// top-k softmax (k <= 8) of a float32 row through its chunk maxima. The k largest chunk maxima are k
// distinct keys, so the k-th largest of them, `bound`, is at most the row's k-th largest: only the chunks
// whose maximum reaches `bound` (k of them, more with ties) can hold a kept key. Those alone are sorted
// and merged, in a tree (independent merges: no chain of dependent ones), and get exponentials; the
// rest of the output is zero-filled. Their list is built without branches (a skip per chunk
// mispredicts: which chunks qualify is random). Returns false, having written nothing to `out`, when
// more than kMaxPicked chunks qualify (wide ties): the caller then takes the row-wide path. `maxima` holds ceil(keys / 8) floats.
constexpr int64_t kMaxPicked = 32;

inline bool topk_softmax_row_chunked(const float* z, float* out, int64_t keys, int64_t k, float* maxima) {
  const int64_t full = keys / kChunk, chunks = (keys + kChunk - 1) / kChunk;
  int64_t c = 0;
  for (; c + 8 <= full; c += 8) {
    const top8_t m = chunk_maxima8(z + c * kChunk);
    std::memcpy(maxima + c, &m, sizeof m);
  }
  for (; c < full; ++c) maxima[c] = chunk_max(z + c * kChunk);
  if (full < chunks) maxima[full] = row_max(z + full * kChunk, keys - full * kChunk);  // the partial chunk
  float top, bound;
  top8_select(maxima, chunks, k, top, bound);  // -inf when fewer than k chunks hold a finite key
  if (!(top > -std::numeric_limits<float>::infinity())) {  // every key masked (or NaN): zeros
    std::fill(out, out + keys, 0.0f);
    return true;
  }
  bound = std::max(bound, std::numeric_limits<float>::lowest());  // chunks of masked keys alone never qualify
  int32_t picked[kMaxPicked];
  int64_t count = 0;
  for (c = 0; c < chunks; ++c) {  // branch-free: written at min(count, last slot), counted when qualifying
    picked[std::min<int64_t>(count, kMaxPicked - 1)] = static_cast<int32_t>(c);
    count += static_cast<int64_t>(maxima[c] >= bound);
  }
  if (count > kMaxPicked) return false;
  top8_t sorted[kMaxPicked];
  for (int64_t j = 0; j < count; ++j) sorted[j] = sort_descending8(load_chunk(z, picked[j], keys));
  for (int64_t n = count; n > 1;) {  // pairwise merges, level by level
    const int64_t half = n / 2;
    for (int64_t j = 0; j < half; ++j) sorted[j] = merge_descending8(sorted[2 * j], sorted[2 * j + 1]);
    if (n & 1) sorted[half] = sorted[n - 1];
    n = half + (n & 1);
  }
  const float kth = sorted[0][k - 1];
  const float lowest = std::max(kth, std::numeric_limits<float>::lowest());  // masked (-inf) keys stay out
  std::fill(out, out + keys, 0.0f);
  float total = 0.0f;
  for (int64_t j = 0; j < count; ++j) {  // exponentials in the picked chunks, the unkept keys set to 0
    const int64_t begin = picked[j] * kChunk, n = std::min(kChunk, keys - begin);
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int64_t i = begin; i < begin + n; ++i) {
      const float e = exp_nonpositive(z[i] - top) * static_cast<float>(z[i] >= lowest);
      out[i] = e;
      sum += e;
    }
    total += sum;
  }
  const float scale = 1.0f / total;
  for (int64_t j = 0; j < count; ++j) {
    const int64_t begin = picked[j] * kChunk, n = std::min(kChunk, keys - begin);
#pragma omp simd
    for (int64_t i = begin; i < begin + n; ++i) out[i] *= scale;
  }
  return true;
}
#endif

// the largest and the k-th largest of a row through the k-slot buffer `best`
template <typename T>
void topk_select(const T* z, int64_t keys, int64_t k, T* best, T& top, T& kth) {
#ifdef SPARSE_ROWS_TOP8
  if constexpr (std::is_same<T, float>::value) {
    if (k <= 8) return top8_select(z, keys, k, top, kth);
  }
#endif
  std::fill(best, best + k, -std::numeric_limits<T>::infinity());  // best[0] >= best[1] >= ... >= best[k-1]
  // Chunks of kChunk keys whose maximum cannot enter the buffer are skipped after one vectorised
  // max: past the first chunks that is most of them, and the insertion's branches stay rare.
  int64_t i = 0;
  for (; i + kChunk <= keys; i += kChunk) {
    if (!(chunk_max(z + i) > best[k - 1])) continue;
    for (int64_t c = i; c < i + kChunk; ++c) insert(best, k, z[c]);
  }
  for (; i < keys; ++i) insert(best, k, z[i]);
  top = best[0];
  kth = best[k - 1];
}

// exp(x) for x <= 0, branch-free so that a loop of it vectorises (std::exp does not): float32 as Cephes'
// expf, 2^n exp(r) with |r| <= ln 2 / 2 and a degree-5 polynomial (within 8.5e-8 relative of exp over
// [-87, 0], under one float32 ulp), and exp(-87) ~ 1.6e-38 below; float64 is std::exp.
template <typename T>
inline T exp_nonpositive(T x) {
  if constexpr (std::is_same<T, float>::value) {
    x = x > -87.0f ? x : -87.0f;
    const float fx = x * 1.44269504088896341f + 0.5f;
    const int32_t truncated = static_cast<int32_t>(fx);
    const int32_t n = truncated - static_cast<int32_t>(static_cast<float>(truncated) > fx);  // floor(fx)
    const float nf = static_cast<float>(n);
    const float r = (x - nf * 0.693359375f) + nf * 2.12194440e-4f;  // x - n ln 2, in two parts
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    return (p * r * r + r + 1.0f) * __builtin_bit_cast(float, (n + 127) << 23);
  } else {
    return std::exp(x);
  }
}

// log(x) for normal x > 0, branch-free so that a loop of it vectorises: float32 as Cephes' logf,
// x = m 2^e with m in [sqrt(1/2), sqrt(2)), log(1 + (m - 1)) by a degree-9 polynomial (within 2 float32
// ulp); float64 is std::log.
template <typename T>
inline T log_positive(T x) {
  if constexpr (std::is_same<T, float>::value) {
    const int32_t bits = __builtin_bit_cast(int32_t, x);
    int32_t e = ((bits >> 23) & 0xff) - 126;
    float m = __builtin_bit_cast(float, (bits & 0x007fffff) | 0x3f000000);  // [0.5, 1)
    const int32_t low = static_cast<int32_t>(m < 0.707106781186547524f);
    e -= low;
    m = m + m * static_cast<float>(low) - 1.0f;  // [sqrt(1/2) - 1, sqrt(2) - 1)
    const float z = m * m;
    float p = 7.0376836292e-2f;
    p = p * m - 1.1514610310e-1f;
    p = p * m + 1.1676998740e-1f;
    p = p * m - 1.2420140846e-1f;
    p = p * m + 1.4249322787e-1f;
    p = p * m - 1.6668057665e-1f;
    p = p * m + 2.0000714765e-1f;
    p = p * m - 2.4999993993e-1f;
    p = p * m + 3.3333331174e-1f;
    const float ef = static_cast<float>(e);
    float y = p * m * z + ef * -2.12194440e-4f - 0.5f * z;
    return m + y + ef * 0.693359375f;
  } else {
    return std::log(x);
  }
}

// y^e for y in [0, 1] and e >= 0, branch-free; 0 at y = 0 for every e (at e = 0, alpha = 2, a key
// outside the support must stay out: 0^0 is not 1 here). Below the smallest normal y, y^e is taken at it.
template <typename T>
inline T pow_unit(T y, T e) {
  const T safe = std::max(y, std::numeric_limits<T>::min());
  return exp_nonpositive(e * log_positive(safe)) * static_cast<T>(y > T(0));
}

// sigmoid(g) = e / (1 + e) for g < 0, 1 / (1 + e) otherwise, with e = exp(-|g|) (no overflow), the
// branch selected arithmetically so that a loop of it vectorises.
template <typename T>
inline T sigmoid(T g) {
  const T e = exp_nonpositive(-std::fabs(g));
  return (e + (T(1) - e) * static_cast<T>(g >= T(0))) / (T(1) + e);
}

// top-k softmax of one row: softmax over the entries >= the k-th largest (ties kept); with fewer
// than k finite entries, over every finite entry.
template <typename T>
void topk_softmax_row(const T* z, T* out, int64_t keys, int64_t k, T* best) {
#ifdef SPARSE_ROWS_TOP8
  if constexpr (std::is_same<T, float>::value) {
    if (k <= 8 && keys >= kChunkedFrom && topk_softmax_row_chunked(z, out, keys, k, best)) return;
  }
#endif
  const T neg_inf = -std::numeric_limits<T>::infinity();
  T top, kth;
  topk_select(z, keys, k, best, top, kth);
  if (!(top > neg_inf)) {
    std::fill(out, out + keys, T(0));
    return;
  }
  // one branch-free, vectorised pass over the row (exp of every key, the rest set to 0) costs less
  // than finding the kept keys and calling std::exp on them alone
  const T lowest = std::max(kth, std::numeric_limits<T>::lowest());  // masked (-inf) keys stay out
  T total = 0;
#pragma omp simd reduction(+ : total)
  for (int64_t i = 0; i < keys; ++i) {
    const T x = exp_nonpositive(z[i] - top);  // for every key, then selected: no branch in the loop
    const T e = x * static_cast<T>(z[i] >= lowest);
    out[i] = e;
    total += e;
  }
  const T scale = T(1) / total;
#pragma omp simd
  for (int64_t i = 0; i < keys; ++i) out[i] *= scale;
}

// ReLA's output normalisation of one row (Zhang et al. 2021, Sec. 3; fairseq_plugins/attention.py
// rms_norm_gate): out = scale * z * r * sigmoid(gate * z), r = (mean(z^2) + eps)^-1/2; gate null: no
// gate factor. Two passes over the row instead of torch's four operators (rms_norm, mul, sigmoid, mul),
// whose fixed cost dominates a decoding step. Returns r, which the backward needs.
template <typename T>
T rms_norm_gate_row(const T* z, const T* scale, const T* gate, T* out, int64_t dim, T eps) {
  T squares = 0;
#pragma omp simd reduction(+ : squares)
  for (int64_t i = 0; i < dim; ++i) squares += z[i] * z[i];
  const T r = T(1) / std::sqrt(squares / static_cast<T>(dim) + eps);
  if (gate == nullptr) {
#pragma omp simd
    for (int64_t i = 0; i < dim; ++i) out[i] = scale[i] * (z[i] * r);
    return r;
  }
#pragma omp simd
  for (int64_t i = 0; i < dim; ++i) out[i] = scale[i] * (z[i] * r) * sigmoid(gate[i] * z[i]);
  return r;
}

// Backward of rms_norm_gate_row for one row, given its r. With n = z r, s = sigmoid(gate z) (1 without
// gate), a = dy scale s (dL/dn) and c = mean(a n):
//   dz = r (a - n c) + dy scale n s (1 - s) gate,   d scale += dy n s,   d gate += dy scale n s (1 - s) z.
// Two passes; s is recomputed (not stored by the forward) into `s_buf` [dim], read back in the second pass.
// `dscale` and `dgate` (null without gate) accumulate over the rows a caller hands in.
template <typename T>
void rms_norm_gate_row_backward(const T* dy, const T* z, T r, const T* scale, const T* gate, T* dz, T* dscale,
                                T* dgate, T* s_buf, int64_t dim) {
  T an = 0;
  if (gate == nullptr) {
#pragma omp simd reduction(+ : an)
    for (int64_t i = 0; i < dim; ++i) an += dy[i] * scale[i] * z[i];
  } else {
#pragma omp simd reduction(+ : an)
    for (int64_t i = 0; i < dim; ++i) {
      const T s = sigmoid(gate[i] * z[i]);
      s_buf[i] = s;
      an += dy[i] * scale[i] * s * z[i];
    }
  }
  const T rc = r * r * (an * r / static_cast<T>(dim));  // r^2 c, since r (a - n c) = r a - z (r^2 c)
  if (gate == nullptr) {
#pragma omp simd
    for (int64_t i = 0; i < dim; ++i) {
      const T n = z[i] * r;
      dscale[i] += dy[i] * n;
      dz[i] = r * (dy[i] * scale[i]) - z[i] * rc;
    }
    return;
  }
#pragma omp simd
  for (int64_t i = 0; i < dim; ++i) {
    const T s = s_buf[i];
    const T n = z[i] * r;
    const T dn = dy[i] * n;                        // gradient of the factor scale * s
    const T dgz = dn * scale[i] * s * (T(1) - s);  // dL/d(gate z)
    dscale[i] += dn * s;
    dgate[i] += dgz * z[i];
    dz[i] = r * (dy[i] * scale[i] * s) - z[i] * rc + dgz * gate[i];
  }
}

// alpha-entmax of one row (Correia, Niculae & Martins 2019), the algorithm of fairseq_plugins/normalizers.py
// _alpha_entmax_newton: with z = (x - max x)(alpha - 1) <= 0, p = 1 / (alpha - 1) and y = [z - tau]_+, the
// output is y^p / T (T = sum y^p) at the root of g(tau) = ||y||_p - 1, which is convex and decreasing, in
// [-1, 0). So only keys with z > -1 can be in the support: one branch-free pass gathers them into `values`
// and `index` (keys slots each), and every later pass runs over them alone; `scratch` (keys slots) keeps
// the last evaluation's powers, from which the output comes without another power. Start: the root of
// sum y^2 = 1 (no powers; exact at alpha = 1.5); then Newton steps, which from the second on rise to the
// root (a tangent step of a convex function lands at or below it). Stops once a step is below sqrt(eps),
// after evaluating the next point, or after n_iter evaluations. gppr (null: not wanted) gets
// output^(2 - alpha), which the backward needs.
// Scaled by the largest y, m = -tau (the row maximum's): with u = y / m, U = sum u^p and V = sum u^(p-1),
// the Newton step (T - T^(2 - alpha)) / sum y^(p-1) is (m U - U^(2 - alpha)) / V, the output u^p / U and
// gppr u^(p-1) U^(alpha - 2), exactly; y^p itself underflows float32 when alpha is near 1 (p = 100 at 1.01).
template <typename T>
void alpha_entmax_row(const T* x, T* out, T* gppr, int64_t keys, T alpha, int64_t n_iter, T start_tolerance,
                      int64_t start_steps, T* values, int64_t* index, T* scratch) {
  const T neg_inf = -std::numeric_limits<T>::infinity();
  T top = neg_inf;
#pragma omp simd reduction(max : top)
  for (int64_t i = 0; i < keys; ++i) top = std::max(top, x[i]);
  if (!(top > neg_inf)) {  // every key masked: zeros
    std::fill(out, out + keys, T(0));
    if (gppr != nullptr) std::fill(gppr, gppr + keys, T(0));
    return;
  }
  const T am1 = alpha - T(1);
  const T exponent = (T(1) - am1) / am1;  // p - 1
  const T tiny = std::numeric_limits<T>::min();
  int64_t count = 0;
  for (int64_t i = 0; i < keys; ++i) {  // branch-free: every key is written, only candidates advance
    const T z = (x[i] - top) * am1;
    values[count] = z;
    index[count] = i;
    count += static_cast<int64_t>(z > T(-1));
  }
  // the power-free start: Newton on sum [z - tau]_+^2 - 1 from tau = -1, rising (to a root below 0)
  T tau = -1;
  for (int64_t s = 0; s < start_steps; ++s) {
    T squares = 0, total = 0;
#pragma omp simd reduction(+ : squares, total)
    for (int64_t j = 0; j < count; ++j) {
      const T y = std::max(values[j] - tau, T(0));
      squares += y * y;
      total += y;
    }
    const T step = std::max((squares - T(1)) / std::max(T(2) * total, tiny), T(0));
    tau += step;
    if (!(step > start_tolerance)) break;
  }
  const T tolerance = std::sqrt(std::numeric_limits<T>::epsilon());
  T total = 0, slope = 0, inverse_m = 1;  // U and V at tau, 1 / m
  bool converged = false;
  for (int64_t evaluations = 1;; ++evaluations) {
    inverse_m = T(1) / -tau;
    total = 0;
    slope = 0;
#pragma omp simd reduction(+ : total, slope)
    for (int64_t j = 0; j < count; ++j) {
      const T u = std::min(std::max(values[j] - tau, T(0)) * inverse_m, T(1));
      const T w = pow_unit(u, exponent);
      scratch[j] = w;  // kept for the output, should this evaluation be the last
      slope += w;
      total += w * u;
    }
    if (converged || evaluations >= n_iter) break;
    const T step = (-tau * total - std::pow(total, T(1) - am1)) / std::max(slope, tiny);  // (m U - U^(2 - alpha)) / V
    tau = std::max(tau + step, T(-1));
    converged = !(std::fabs(step) > tolerance);
  }
  // the output at the last evaluated tau (U >= 1: the row maximum has u = 1), computed over the candidates
  // from that evaluation's powers u^(p-1) (in `scratch`), in place, then scattered to their keys
  const T inverse_total = T(1) / total;
  const T gppr_scale = std::pow(total, am1 - T(1));
#pragma omp simd
  for (int64_t j = 0; j < count; ++j) {
    const T u = std::min(std::max(values[j] - tau, T(0)) * inverse_m, T(1));
    const T w = scratch[j];
    values[j] = w * u * inverse_total;
    scratch[j] = w * gppr_scale;
  }
  if (count == keys) {  // every key a candidate: index is the identity
    std::copy(values, values + keys, out);
    if (gppr != nullptr) std::copy(scratch, scratch + keys, gppr);
    return;
  }
  std::fill(out, out + keys, T(0));
  for (int64_t j = 0; j < count; ++j) out[index[j]] = values[j];
  if (gppr != nullptr) {
    std::fill(gppr, gppr + keys, T(0));
    for (int64_t j = 0; j < count; ++j) gppr[index[j]] = scratch[j];
  }
}

// Backward of alpha_entmax_row (Correia, Niculae & Martins 2019, Prop. 2; fairseq_plugins/normalizers.py
// _AlphaEntmax.backward) for one row: with gppr = p^(2 - alpha), q = sum(g gppr) / sum(gppr) and
// H = sum(p log p),
//   dx = gppr (g - q),   d alpha = (sum(g p) - q) / (alpha - 1)^2 - (sum(g p log p) - H q) / (alpha - 1).
// Two vectorised passes (row sums, then dx) instead of torch's dozen operators; p log p is taken at every
// key, 0 off the support (p log(min normal) times p = 0). The sums are float64: d alpha subtracts sums of
// size 1 and divides by (alpha - 1)^2 (1e-4 at alpha = 1.01). Returns d alpha (0 when !need_alpha; 0 on a
// row whose keys are all masked, where dx is 0 too).
template <typename T>
T alpha_entmax_row_backward(const T* g, const T* p, const T* gppr, T* dx, int64_t keys, T alpha, bool need_alpha) {
  double weight = 0, weighted = 0;  // sum(gppr), sum(g gppr)
  double g_output = 0, entropy = 0, g_shannon = 0;  // sum(g p), sum(p log p), sum(g p log p)
  if (need_alpha) {
    const T tiny = std::numeric_limits<T>::min();
#pragma omp simd reduction(+ : weight, weighted, g_output, entropy, g_shannon)
    for (int64_t i = 0; i < keys; ++i) {
      const T shannon = p[i] * log_positive(std::max(p[i], tiny));
      weight += gppr[i];
      weighted += static_cast<double>(g[i]) * gppr[i];
      g_output += static_cast<double>(g[i]) * p[i];
      entropy += shannon;
      g_shannon += static_cast<double>(g[i]) * shannon;
    }
  } else {
#pragma omp simd reduction(+ : weight, weighted)
    for (int64_t i = 0; i < keys; ++i) {
      weight += gppr[i];
      weighted += static_cast<double>(g[i]) * gppr[i];
    }
  }
  const double q = weight > 0 ? weighted / weight : 0;
  const T q_t = static_cast<T>(q);
#pragma omp simd
  for (int64_t i = 0; i < keys; ++i) dx[i] = gppr[i] * (g[i] - q_t);
  if (!need_alpha || !(weight > 0)) return T(0);
  const double am1 = static_cast<double>(alpha) - 1;
  return static_cast<T>((g_output - q) / (am1 * am1) - (g_shannon - entropy * q) / am1);
}
