// Row kernels for sparse attention normalizers on CPU: sparsemax, 1.5-entmax, alpha-entmax (forward and
// backward) and top-k softmax, and ReLA's gated RMS norm (forward and backward).
//
// Each function takes scores [rows, keys] (contiguous, float32 or float64; -inf marks a masked key)
// and solves every row in a few passes over it, with no sort and no temporary tensors. On CPU the
// PyTorch formulations cost a dozen small operators per pass; at decoding sizes their fixed cost
// dominates (see fairseq_plugins/normalizers.py). Built on first use by fairseq_plugins/cpu_kernels.py.
//
// Exactness: every threshold is the one of the sort-based algorithms, computed from the final support
// (sparsemax: Michelot 1986 / Condat 2016 Newton steps from below; 1.5-entmax: Newton steps from
// below, then the closed form of the sort-based algorithm (Peters et al. 2019) on the support, with a sorting
// fallback; top-k: Zhao et al. 2019, the k-th largest by an 8-lane bitonic merge network (float32, k <= 8;
// from 128 keys only over the chunks of 8 keys whose maximum is among the k largest chunk maxima) or by
// insertion into a k-slot buffer, and one vectorised exp pass over the row or those chunks).

#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <mutex>
#include <string>
#include <type_traits>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>  // _mm256_max_ps / _mm256_min_ps in the AVX2 build of the top-8 network
#endif

namespace {

// Rows per parallel task: at least at::internal::GRAIN_SIZE scores, as torch's own CPU kernels do.
// A decoding step's few thousand scores then stay on one thread: a fork/join costs more than the
// work, and waiting threads spin (with a fixed 16 rows, a 2-thread training step under load spent
// 13x its attention time in the replay of benchmarks/model.py).
int64_t grain(int64_t keys) { return std::max<int64_t>(1, at::internal::GRAIN_SIZE / std::max<int64_t>(keys, 1)); }

namespace baseline {
#include "sparse_rows_impl.h"
}  // namespace baseline

// The same algorithms for AVX2 + FMA (8 floats per vector instead of SSE2's 4: the threshold passes
// take 1.4-1.8x less time), chosen at run time; the build itself stays portable (no -march).
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define SPARSE_ROWS_AVX2 1
#pragma GCC push_options
#pragma GCC target("avx2,fma")
namespace avx2 {
#include "sparse_rows_impl.h"
}  // namespace avx2
#pragma GCC pop_options
#endif

bool baseline_forced = false;  // set_baseline(true): the SSE2 build even where AVX2 runs (tests)

bool use_avx2() {
#ifdef SPARSE_ROWS_AVX2
  static const bool supported = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return supported && !baseline_forced;
#else
  return false;
#endif
}

#ifdef SPARSE_ROWS_AVX2
#define SPARSE_ROWS_DISPATCH(function, ...) (use_avx2() ? avx2::function(__VA_ARGS__) : baseline::function(__VA_ARGS__))
#else
#define SPARSE_ROWS_DISPATCH(function, ...) baseline::function(__VA_ARGS__)
#endif

void check_rows(const torch::Tensor& scores, const char* name) {
  TORCH_CHECK(scores.device().is_cpu(), name, ": CPU tensors only");
  TORCH_CHECK(scores.dim() == 2, name, ": scores must be [rows, keys]");
  TORCH_CHECK(scores.scalar_type() == torch::kFloat || scores.scalar_type() == torch::kDouble,
              name, ": float32 or float64 scores only");
}

// `vector` must be one-dimensional, with `length` entries of `like`'s dtype: alpha and the inverse RMS
// (one per row), scale and gate (one per dimension). The error reads "<name>: <what> must be a [<unit>]
// vector of <owner> dtype".
void check_vector(const torch::Tensor& vector, int64_t length, const torch::Tensor& like, const char* name,
                  const char* what, const char* unit, const char* owner) {
  TORCH_CHECK(vector.dim() == 1 && vector.size(0) == length && vector.scalar_type() == like.scalar_type(),
              name, ": ", what, " must be a [", unit, "] vector of ", owner, " dtype");
}

}  // namespace

// (output [rows, keys], support size [rows, 1] in the scores' dtype)
std::vector<torch::Tensor> sparsemax_rows(torch::Tensor scores) {
  check_rows(scores, "sparsemax_rows");
  scores = scores.contiguous();
  auto output = torch::empty_like(scores);
  auto support = torch::empty({scores.size(0), 1}, scores.options());
  const int64_t keys = scores.size(1);
  AT_DISPATCH_FLOATING_TYPES(scores.scalar_type(), "sparsemax_rows", [&] {
    const scalar_t* z = scores.data_ptr<scalar_t>();
    scalar_t* out = output.data_ptr<scalar_t>();
    scalar_t* count = support.data_ptr<scalar_t>();
    at::parallel_for(0, scores.size(0), grain(keys), [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) count[r] = SPARSE_ROWS_DISPATCH(sparsemax_row, z + r * keys, out + r * keys, keys);
    });
  });
  return {output, support};
}

// root [rows, keys] = [scores / 2 - tau]_+ (1.5-entmax = root^2)
torch::Tensor entmax15_root_rows(torch::Tensor scores) {
  check_rows(scores, "entmax15_root_rows");
  scores = scores.contiguous();
  auto root = torch::empty_like(scores);
  const int64_t keys = scores.size(1);
  AT_DISPATCH_FLOATING_TYPES(scores.scalar_type(), "entmax15_root_rows", [&] {
    const scalar_t* z = scores.data_ptr<scalar_t>();
    scalar_t* out = root.data_ptr<scalar_t>();
    at::parallel_for(0, scores.size(0), grain(keys), [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) SPARSE_ROWS_DISPATCH(entmax15_row, z + r * keys, out + r * keys, keys);
    });
  });
  return root;
}

// weights [rows, keys]: softmax over each row's entries >= its k-th largest
torch::Tensor topk_softmax_rows(torch::Tensor scores, int64_t k) {
  check_rows(scores, "topk_softmax_rows");
  TORCH_CHECK(k >= 1, "topk_softmax_rows: k must be >= 1");
  scores = scores.contiguous();
  auto weights = torch::empty_like(scores);
  const int64_t keys = scores.size(1);
  AT_DISPATCH_FLOATING_TYPES(scores.scalar_type(), "topk_softmax_rows", [&] {
    const scalar_t* z = scores.data_ptr<scalar_t>();
    scalar_t* out = weights.data_ptr<scalar_t>();
    at::parallel_for(0, scores.size(0), grain(keys), [&](int64_t begin, int64_t end) {
      // k slots for the selection buffer, or (float32, k <= 8) one per chunk of 8 keys for the chunk maxima
      std::vector<scalar_t> best(std::max<int64_t>(k, (keys + 7) / 8));
      for (int64_t r = begin; r < end; ++r)
        SPARSE_ROWS_DISPATCH(topk_softmax_row, z + r * keys, out + r * keys, keys, k, best.data());
    });
  });
  return weights;
}

// alpha-entmax of each row: (output [rows, keys], output^(2 - alpha) or undefined); alpha [rows] in (1, 2]
std::vector<torch::Tensor> alpha_entmax_rows(torch::Tensor scores, torch::Tensor alpha, int64_t n_iter, bool need_gppr,
                                             double start_tolerance, int64_t start_steps) {
  check_rows(scores, "alpha_entmax_rows");
  check_vector(alpha, scores.size(0), scores, "alpha_entmax_rows", "alpha", "rows", "the scores'");
  scores = scores.contiguous();
  alpha = alpha.contiguous();
  auto output = torch::empty_like(scores);
  torch::Tensor gppr = need_gppr ? torch::empty_like(scores) : torch::Tensor();
  const int64_t keys = scores.size(1);
  AT_DISPATCH_FLOATING_TYPES(scores.scalar_type(), "alpha_entmax_rows", [&] {
    const scalar_t* x = scores.data_ptr<scalar_t>();
    const scalar_t* a = alpha.data_ptr<scalar_t>();
    scalar_t* out = output.data_ptr<scalar_t>();
    scalar_t* g = need_gppr ? gppr.data_ptr<scalar_t>() : nullptr;
    const scalar_t tolerance = static_cast<scalar_t>(start_tolerance);
    at::parallel_for(0, scores.size(0), grain(keys), [&](int64_t begin, int64_t end) {
      std::vector<scalar_t> values(2 * keys);  // the candidates of the support, then their powers (scratch)
      std::vector<int64_t> index(keys);  // the candidates' keys
      for (int64_t r = begin; r < end; ++r)
        SPARSE_ROWS_DISPATCH(alpha_entmax_row, x + r * keys, out + r * keys, g == nullptr ? nullptr : g + r * keys, keys,
                             a[r], n_iter, tolerance, start_steps, values.data(), index.data(), values.data() + keys);
    });
  });
  return {output, gppr};
}

// Its backward: (d scores [rows, keys], d alpha [rows] or undefined when !need_alpha), from the forward's
// output and output^(2 - alpha) (gppr).
std::vector<torch::Tensor> alpha_entmax_rows_backward(torch::Tensor grad_out, torch::Tensor output, torch::Tensor gppr,
                                                      torch::Tensor alpha, bool need_alpha) {
  check_rows(output, "alpha_entmax_rows_backward");
  TORCH_CHECK(grad_out.sizes() == output.sizes() && grad_out.scalar_type() == output.scalar_type() &&
                  gppr.sizes() == output.sizes() && gppr.scalar_type() == output.scalar_type(),
              "alpha_entmax_rows_backward: grad_out and gppr must match output");
  check_vector(alpha, output.size(0), output, "alpha_entmax_rows_backward", "alpha", "rows", "the output's");
  grad_out = grad_out.contiguous();
  output = output.contiguous();
  gppr = gppr.contiguous();
  alpha = alpha.contiguous();
  auto grad_scores = torch::empty_like(output);
  torch::Tensor grad_alpha = need_alpha ? torch::empty_like(alpha) : torch::Tensor();
  const int64_t keys = output.size(1);
  AT_DISPATCH_FLOATING_TYPES(output.scalar_type(), "alpha_entmax_rows_backward", [&] {
    const scalar_t* g = grad_out.data_ptr<scalar_t>();
    const scalar_t* p = output.data_ptr<scalar_t>();
    const scalar_t* w = gppr.data_ptr<scalar_t>();
    const scalar_t* a = alpha.data_ptr<scalar_t>();
    scalar_t* dx = grad_scores.data_ptr<scalar_t>();
    scalar_t* da = need_alpha ? grad_alpha.data_ptr<scalar_t>() : nullptr;
    at::parallel_for(0, output.size(0), grain(keys), [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const int64_t at = r * keys;
        const scalar_t d = SPARSE_ROWS_DISPATCH(alpha_entmax_row_backward, g + at, p + at, w + at, dx + at, keys, a[r],
                                                need_alpha);
        if (da != nullptr) da[r] = d;
      }
    });
  });
  return {grad_scores, grad_alpha};
}

namespace {

// scale and gate (when given) must be [dim] vectors of z's dtype; returns the contiguous gate, or undefined
torch::Tensor check_norm_parameters(const torch::Tensor& z, const torch::Tensor& scale,
                                    const c10::optional<torch::Tensor>& gate, const char* name) {
  check_rows(z, name);
  const int64_t dim = z.size(1);
  check_vector(scale, dim, z, name, "scale", "dim", "z's");
  if (!gate.has_value() || !gate->defined()) return torch::Tensor();
  check_vector(*gate, dim, z, name, "gate", "dim", "z's");
  return gate->contiguous();
}

// out [rows, dim] and, when `inverse_rms` is defined, r [rows] of every row
torch::Tensor rms_norm_gate_forward(torch::Tensor z, torch::Tensor scale, const torch::Tensor& gate, double eps,
                                    torch::Tensor inverse_rms) {
  z = z.contiguous();
  scale = scale.contiguous();
  auto output = torch::empty_like(z);
  const int64_t dim = z.size(1);
  AT_DISPATCH_FLOATING_TYPES(z.scalar_type(), "rms_norm_gate_rows", [&] {
    const scalar_t* in = z.data_ptr<scalar_t>();
    const scalar_t* s = scale.data_ptr<scalar_t>();
    const scalar_t* g = gate.defined() ? gate.data_ptr<scalar_t>() : nullptr;
    scalar_t* out = output.data_ptr<scalar_t>();
    scalar_t* r_out = inverse_rms.defined() ? inverse_rms.data_ptr<scalar_t>() : nullptr;
    const scalar_t e = static_cast<scalar_t>(eps);
    at::parallel_for(0, z.size(0), grain(dim), [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const scalar_t inverse = SPARSE_ROWS_DISPATCH(rms_norm_gate_row, in + r * dim, s, g, out + r * dim, dim, e);
        if (r_out != nullptr) r_out[r] = inverse;
      }
    });
  });
  return output;
}

}  // namespace

// ReLA's gated RMS norm without gradients: out [rows, dim] = scale * RMSNorm(z) * sigmoid(gate * z)
// (gate undefined: no gate factor).
torch::Tensor rms_norm_gate_rows(torch::Tensor z, torch::Tensor scale, c10::optional<torch::Tensor> gate, double eps) {
  const torch::Tensor gate_c = check_norm_parameters(z, scale, gate, "rms_norm_gate_rows");
  return rms_norm_gate_forward(z, scale, gate_c, eps, torch::Tensor());
}

// The same for training: (out [rows, dim], r [rows] = (mean(z^2) + eps)^-1/2), r for the backward.
std::vector<torch::Tensor> rms_norm_gate_rows_forward(torch::Tensor z, torch::Tensor scale,
                                                      c10::optional<torch::Tensor> gate, double eps) {
  const torch::Tensor gate_c = check_norm_parameters(z, scale, gate, "rms_norm_gate_rows_forward");
  auto inverse_rms = torch::empty({z.size(0)}, z.options());
  return {rms_norm_gate_forward(z, scale, gate_c, eps, inverse_rms), inverse_rms};
}

// Its backward: (dz [rows, dim], d scale [dim], d gate [dim] or undefined). The parameter gradients sum
// over rows: each task accumulates blocks of rows in the rows' dtype and adds the blocks in float64.
std::vector<torch::Tensor> rms_norm_gate_rows_backward(torch::Tensor grad_out, torch::Tensor z, torch::Tensor inverse_rms,
                                                       torch::Tensor scale, c10::optional<torch::Tensor> gate) {
  const torch::Tensor gate_c = check_norm_parameters(z, scale, gate, "rms_norm_gate_rows_backward");
  TORCH_CHECK(grad_out.sizes() == z.sizes() && grad_out.scalar_type() == z.scalar_type(),
              "rms_norm_gate_rows_backward: grad_out must match z");
  check_vector(inverse_rms, z.size(0), z, "rms_norm_gate_rows_backward", "inverse_rms", "rows", "z's");
  z = z.contiguous();
  grad_out = grad_out.contiguous();
  inverse_rms = inverse_rms.contiguous();
  scale = scale.contiguous();
  const bool gated = gate_c.defined();
  const int64_t dim = z.size(1);
  auto grad_z = torch::empty_like(z);
  std::vector<double> total_scale(dim, 0.0), total_gate(gated ? dim : 0, 0.0);
  std::mutex total_lock;
  constexpr int64_t kBlock = 32;  // rows summed in the rows' dtype before a float64 addition
  AT_DISPATCH_FLOATING_TYPES(z.scalar_type(), "rms_norm_gate_rows_backward", [&] {
    const scalar_t* dy = grad_out.data_ptr<scalar_t>();
    const scalar_t* in = z.data_ptr<scalar_t>();
    const scalar_t* inverse = inverse_rms.data_ptr<scalar_t>();
    const scalar_t* s = scale.data_ptr<scalar_t>();
    const scalar_t* g = gated ? gate_c.data_ptr<scalar_t>() : nullptr;
    scalar_t* dz = grad_z.data_ptr<scalar_t>();
    at::parallel_for(0, z.size(0), grain(dim), [&](int64_t begin, int64_t end) {
      // block sums (scale, gate) and the recomputed sigmoid of one row
      std::vector<scalar_t> block(3 * dim);
      scalar_t* block_scale = block.data();
      scalar_t* block_gate = block_scale + dim;
      scalar_t* s_buf = block_gate + dim;
      std::vector<double> task_scale(dim, 0.0), task_gate(gated ? dim : 0, 0.0);
      for (int64_t first = begin; first < end; first += kBlock) {
        std::fill(block_scale, block_scale + 2 * dim, scalar_t(0));
        const int64_t last = std::min(end, first + kBlock);
        for (int64_t r = first; r < last; ++r)
          SPARSE_ROWS_DISPATCH(rms_norm_gate_row_backward, dy + r * dim, in + r * dim, inverse[r], s, g, dz + r * dim,
                               block_scale, gated ? block_gate : nullptr, s_buf, dim);
        for (int64_t i = 0; i < dim; ++i) task_scale[i] += block_scale[i];
        if (gated)
          for (int64_t i = 0; i < dim; ++i) task_gate[i] += block_gate[i];
      }
      std::lock_guard<std::mutex> guard(total_lock);
      for (int64_t i = 0; i < dim; ++i) total_scale[i] += task_scale[i];
      if (gated)
        for (int64_t i = 0; i < dim; ++i) total_gate[i] += task_gate[i];
    });
  });
  auto as_tensor = [&](const std::vector<double>& values) {
    return torch::from_blob(const_cast<double*>(values.data()), {dim}, torch::kDouble).to(z.scalar_type(), false, /*copy=*/true);
  };
  return {grad_z, as_tensor(total_scale), gated ? as_tensor(total_gate) : torch::Tensor()};
}

std::string instruction_set() { return use_avx2() ? "avx2" : "baseline"; }

void set_baseline(bool forced) { baseline_forced = forced; }

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("instruction_set", &instruction_set, "which build of the row algorithms runs: avx2 or baseline");
  m.def("set_baseline", &set_baseline, "force the baseline (SSE2) build: for tests");
  m.def("sparsemax_rows", &sparsemax_rows, "sparsemax of each row, and its support size");
  m.def("entmax15_root_rows", &entmax15_root_rows, "[z / 2 - tau]_+ of 1.5-entmax for each row");
  m.def("topk_softmax_rows", &topk_softmax_rows, "softmax over each row's k largest entries");
  m.def("alpha_entmax_rows", &alpha_entmax_rows, "alpha-entmax of each row, and output^(2 - alpha) when asked",
        py::arg("scores"), py::arg("alpha"), py::arg("n_iter"), py::arg("need_gppr"), py::arg("start_tolerance"),
        py::arg("start_steps"));
  m.def("alpha_entmax_rows_backward", &alpha_entmax_rows_backward,
        "gradients of alpha_entmax_rows: (d scores, d alpha per row or None)", py::arg("grad_out"), py::arg("output"),
        py::arg("gppr"), py::arg("alpha"), py::arg("need_alpha"));
  m.def("rms_norm_gate_rows", &rms_norm_gate_rows, "ReLA's gated RMS norm of each row (inference)",
        py::arg("z"), py::arg("scale"), py::arg("gate") = py::none(), py::arg("eps") = 1e-8);
  m.def("rms_norm_gate_rows_forward", &rms_norm_gate_rows_forward,
        "ReLA's gated RMS norm of each row, and each row's inverse RMS (training)",
        py::arg("z"), py::arg("scale"), py::arg("gate") = py::none(), py::arg("eps") = 1e-8);
  m.def("rms_norm_gate_rows_backward", &rms_norm_gate_rows_backward,
        "gradients of rms_norm_gate_rows_forward: (dz, d scale, d gate or None)",
        py::arg("grad_out"), py::arg("z"), py::arg("inverse_rms"), py::arg("scale"), py::arg("gate") = py::none());
}
