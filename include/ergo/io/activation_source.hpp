// SPDX-License-Identifier: MIT
#pragma once

/// \file activation_source.hpp
/// \brief Streams activations for SAE training from one or many .npy / .safetensors files that
/// may be larger than memory: memory-mapped, served in d × B batches through a seeded
/// shuffling pool, with a held-out validation split and exact epochs.
///
/// \code
/// ergo::io::ActivationSourceParams p;
/// p.batch_size = 4096;
/// p.validation_fraction = 0.05;
/// p.seed = 1;
/// ergo::io::ActivationSource<float> src({"acts_00.npy", "acts_01.npy"}, p);
/// ergo::MatrixXf X;
/// while (src.next(X)) { /* X is dim() × B, one sample per column */ }   // one epoch
/// src.for_each_validation_batch(4096, [&](const ergo::MatrixXf& V) { ... });
/// \endcode
///
/// HOW IT SHUFFLES. The training samples of every file are cut into chunks of `chunk_size`
/// consecutive samples (reads stay sequential on disk). Each epoch e permutes the chunks with a
/// generator seeded by derive_seed(seed, e + 1); a pool of up to `buffer_size` sample indices is
/// topped up with whole chunks in that order before every batch, and the batch draws its
/// samples uniformly without replacement from the pool. Every training sample is therefore
/// served exactly once per epoch, in an order that depends only on (seed, epoch, batch_size,
/// buffer_size, chunk_size). The pool holds indices, not data: the data are read from the
/// mapped files straight into the batch, converted to Scalar (float16 / bfloat16 / float64 /
/// integer files all work). With shuffle = false samples come in file order.
///
/// VALIDATION. `validation_fraction` of the samples is held out and never served by next():
/// ValidationSplit::Tail takes the last samples of each file (a contiguous, reproducible split);
/// ValidationSplit::Chunks takes a seeded random subset of chunks across all files.
///
/// RESUME. state() is "epoch position"; set_state() replays the epoch's index draws (no data is
/// read) so the next batch is the one an uninterrupted run would have served.

#include "error.hpp"
#include "npy.hpp"
#include "safetensors.hpp"
#include "tensor.hpp"

#include "../core/communicator.hpp"
#include "../core/error.hpp"
#include "../core/random.hpp"
#include "../core/types.hpp"

#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace ergo::io {

/// \brief Which samples are held out for validation.
enum class ValidationSplit {
  Tail,   ///< the last round(fraction · n_f) samples of each file f
  Chunks  ///< a seeded random set of round(fraction · #chunks) chunks across all files
};

/// \brief Parameters of ActivationSource.
struct ActivationSourceParams {
  Index batch_size = 4096;  ///< samples per batch, >= 1
  /// Shuffling pool size in samples, >= 1 (the larger, the better the mixing across chunks;
  /// it costs 16 bytes per sample of index memory, the data stay in the page cache).
  Index buffer_size = 262144;
  Index chunk_size = 1024;           ///< consecutive samples read from a file at a time, >= 1
  bool shuffle = true;               ///< false: serve samples in file order
  std::uint64_t seed = 0;            ///< seeds the chunk order, the pool draws and the Chunks split
  double validation_fraction = 0.0;  ///< held-out fraction, in [0, 1)
  ValidationSplit validation_split = ValidationSplit::Tail;  ///< how the hold-out is chosen
  bool drop_last = false;      ///< drop an epoch's final partial batch
  bool require_finite = true;  ///< throw FormatError on a NaN/inf in any served sample
  /// .safetensors: the tensor to stream. Empty: the file's only tensor, else "activations".
  std::string tensor;

  /// \brief Throws InvalidArgument naming the field if a value is out of range.
  void check() const {
    const char* who = "ActivationSourceParams::check";
    check_arg(batch_size >= 1, who, "batch_size", ">= 1", batch_size);
    check_arg(buffer_size >= 1, who, "buffer_size", ">= 1", buffer_size);
    check_arg(chunk_size >= 1, who, "chunk_size", ">= 1", chunk_size);
    check_arg(validation_fraction >= 0.0 && validation_fraction < 1.0, who, "validation_fraction",
              "a value in [0, 1)", validation_fraction);
  }
};

/// \brief A seeded, shuffled, epoch-exact stream of activation batches over many files.
/// \tparam Scalar_ float or double (the batch type; files of any dtype are converted).
template <class Scalar_>
class ActivationSource {
 public:
  using Scalar = Scalar_;

  /// \brief Opens (memory-maps) every file and builds the train / validation split.
  /// Every file must hold a tensor [n, d] (or [a, b, ..., d], leading axes flattened) with the
  /// same d. Throws FileError / FormatError naming the offending file.
  /// \param paths  .npy or .safetensors files (by extension)
  explicit ActivationSource(const std::vector<std::string>& paths,
                            ActivationSourceParams params = {})
      : m_params(std::move(params)) {
    m_params.check();
    const char* who = "ActivationSource";
    check_arg(!paths.empty(), who, "paths", "at least one file", "none");
    for (const auto& p : paths) open(p);
    build_split();
    check_arg(train_size() > 0, who, "paths",
              "at least one training sample after the validation split",
              detail::str_cat(total_size(), " samples, ", validation_size(), " held out"));
    begin_epoch(0);
  }

  const ActivationSourceParams& params() const { return m_params; }
  /// Sample dimension d (rows of every batch).
  Index dim() const { return m_dim; }
  Index num_files() const { return static_cast<Index>(m_files.size()); }
  /// Samples in all files.
  Index total_size() const {
    Index n = 0;
    for (const auto& f : m_files) n += f.n;
    return n;
  }
  /// Training samples per epoch.
  Index train_size() const { return m_train_size; }
  /// Held-out samples.
  Index validation_size() const { return m_val_size; }
  /// Batches next() serves per epoch.
  Index batches_per_epoch() const {
    const Index B = m_params.batch_size;
    return m_params.drop_last ? m_train_size / B : (m_train_size + B - 1) / B;
  }
  /// Current epoch (0-based; next() moves to the next one after returning false).
  Index epoch() const { return m_epoch; }
  /// Samples served so far in the current epoch.
  Index position() const { return m_position; }

  /// \brief Fills `batch` (resized to dim() × b, b <= batch_size) with the next batch of the
  /// current epoch. Returns false (and leaves `batch` untouched) when the epoch is over; the
  /// following call starts the next epoch.
  bool next(Matrix<Scalar>& batch) {
    if (m_epoch_done) {
      begin_epoch(m_epoch + 1);
    }
    const Index b = next_batch_size();
    if (b == 0) {
      m_epoch_done = true;
      return false;
    }
    if (batch.rows() != m_dim || batch.cols() != b) batch.resize(m_dim, b);
    draw(b, &batch);
    return true;
  }
  /// \brief Like next(), but reads only part `part` of `parts` of the batch
  /// (share_of(b, part, parts): consecutive columns, in rank order) into `batch`; the stream
  /// advances by the whole batch. The parts of every rank together are next()'s batch: how
  /// data-parallel training reads a disjoint share of each global batch (docs/scale.md).
  bool next_part(Matrix<Scalar>& batch, int part, int parts) {
    if (m_epoch_done) begin_epoch(m_epoch + 1);
    const Index b = next_batch_size();
    if (b == 0) {
      m_epoch_done = true;
      return false;
    }
    const Share sh = share_of(b, part, parts);
    if (batch.rows() != m_dim || batch.cols() != sh.count) batch.resize(m_dim, sh.count);
    draw(b, &batch, sh.offset);
    return true;
  }
  /// \brief next_cycling() reading part `part` of `parts` of each batch (next_part()).
  Index next_cycling_part(Matrix<Scalar>& batch, int part, int parts) {
    if (!next_part(batch, part, parts)) {
      const bool ok = next_part(batch, part, parts);
      ERGO_CHECK(ok, "an epoch has at least one batch");
    }
    return m_epoch;
  }

  /// \brief Like next(), but rolls over into the next epoch instead of returning false:
  /// for step-based training loops. Returns the epoch the batch belongs to.
  Index next_cycling(Matrix<Scalar>& batch) {
    if (!next(batch)) {
      const bool ok = next(batch);
      ERGO_CHECK(ok, "an epoch has at least one batch");
    }
    return m_epoch;
  }

  /// \brief Calls fn(const Matrix<Scalar>& V) for the validation samples in file order, in
  /// batches of at most `batch_size` columns.
  template <class Fn>
  void for_each_validation_batch(Index batch_size, Fn&& fn) const {
    check_arg(batch_size >= 1, "ActivationSource::for_each_validation_batch", "batch_size", ">= 1",
              batch_size);
    Matrix<Scalar> V;
    std::vector<std::pair<Index, Index>> pending;  // (file, sample)
    auto flush = [&]() {
      if (pending.empty()) return;
      V.resize(m_dim, static_cast<Index>(pending.size()));
      for (std::size_t c = 0; c < pending.size(); ++c)
        read_sample(pending[c].first, pending[c].second, V.col(static_cast<Index>(c)).data());
      fn(static_cast<const Matrix<Scalar>&>(V));
      pending.clear();
    };
    for (const Chunk& ch : m_val_chunks)
      for (Index r = 0; r < ch.len; ++r) {
        pending.emplace_back(ch.file, ch.begin + r);
        if (static_cast<Index>(pending.size()) == batch_size) flush();
      }
    flush();
  }

  /// \brief The first `max_samples` validation samples (all if negative) as a dim() × n matrix.
  Matrix<Scalar> validation_matrix(Index max_samples = -1) const {
    const Index n = max_samples < 0 ? m_val_size : std::min(max_samples, m_val_size);
    Matrix<Scalar> V(m_dim, n);
    Index c = 0;
    for (const Chunk& ch : m_val_chunks)
      for (Index r = 0; r < ch.len && c < n; ++r, ++c)
        read_sample(ch.file, ch.begin + r, V.col(c).data());
    return V;
  }

  /// \brief "epoch position": where the stream is, for checkpoints.
  std::string state() const {
    std::ostringstream os;
    os << (m_epoch_done ? m_epoch + 1 : m_epoch) << ' ' << (m_epoch_done ? 0 : m_position);
    return os.str();
  }
  /// \brief Restores state(): replays the index draws of that epoch (reading no data) so the
  /// next batch equals the one an uninterrupted run would serve. The source must have been
  /// built with the same files and parameters. Throws InvalidArgument on malformed text.
  void set_state(const std::string& s) {
    std::istringstream is(s);
    long long e = -1, pos = -1;
    is >> e >> pos;
    check_arg(static_cast<bool>(is) && e >= 0 && pos >= 0 && pos <= m_train_size,
              "ActivationSource::set_state", "state",
              detail::str_cat("\"epoch position\" with 0 <= position <= ", m_train_size),
              "'" + s + "'");
    begin_epoch(static_cast<Index>(e));
    while (m_position < pos) {
      const Index b = next_batch_size();
      check_arg(b > 0 && m_position + b <= pos, "ActivationSource::set_state", "state",
                "a position at a batch boundary of this source", "'" + s + "'");
      draw(b, nullptr);
    }
  }

 private:
  struct File {
    std::string path;
    std::unique_ptr<NpyFile> npy;
    std::unique_ptr<SafetensorsFile> st;
    std::unique_ptr<TensorView> view;
    Index n = 0;
  };
  struct Chunk {
    Index file = 0, begin = 0, len = 0;
  };
  struct Slot {
    Index file = 0, sample = 0;
  };

  static bool ends_with(const std::string& s, const std::string& suf) {
    return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
  }

  void open(const std::string& path) {
    const char* who = "ActivationSource";
    File f;
    f.path = path;
    if (ends_with(path, ".npy")) {
      f.npy = std::make_unique<NpyFile>(path, who);
      f.view = std::make_unique<TensorView>(f.npy->view());
    } else if (ends_with(path, ".safetensors")) {
      f.st = std::make_unique<SafetensorsFile>(path, who);
      std::string name = m_params.tensor;
      if (name.empty()) {
        const auto names = f.st->names();
        if (names.size() == 1)
          name = names[0];
        else if (f.st->contains("activations"))
          name = "activations";
        else
          detail::throw_format(who, path, "tensors",
                               "one tensor, or one named \"activations\" (or set params.tensor)",
                               detail::str_cat(names.size(), " tensors"));
      }
      f.view = std::make_unique<TensorView>(f.st->view(name));
    } else {
      throw_invalid(who, "paths", "files ending in .npy or .safetensors", "'" + path + "'");
    }
    const TensorInfo& info = f.view->info();
    if (info.shape.size() < 2)
      detail::throw_format(who, f.view->source(), "shape", "[n, d] (samples × features)",
                           info.describe());
    const Index d = info.sample_dim();
    if (m_files.empty()) m_dim = d;
    if (d != m_dim || d < 1)
      detail::throw_format(who, f.view->source(), "shape",
                           detail::str_cat("feature dimension ", m_dim, " (as in '",
                                           m_files.empty() ? path : m_files[0].path, "')"),
                           info.describe());
    f.n = info.num_samples();
    m_files.push_back(std::move(f));
  }

  void build_split() {
    const Index C = m_params.chunk_size;
    const double frac = m_params.validation_fraction;
    m_train_chunks.clear();
    m_val_chunks.clear();
    if (m_params.validation_split == ValidationSplit::Tail) {
      for (Index fi = 0; fi < num_files(); ++fi) {
        const Index n = m_files[static_cast<std::size_t>(fi)].n;
        const Index nv =
            std::min(n, static_cast<Index>(std::llround(frac * static_cast<double>(n))));
        add_chunks(fi, 0, n - nv, m_train_chunks);
        add_chunks(fi, n - nv, nv, m_val_chunks);
      }
    } else {
      std::vector<Chunk> all;
      for (Index fi = 0; fi < num_files(); ++fi)
        add_chunks(fi, 0, m_files[static_cast<std::size_t>(fi)].n, all);
      const Index nc = static_cast<Index>(all.size());
      const Index nv =
          std::min(nc, static_cast<Index>(std::llround(frac * static_cast<double>(nc))));
      Rng rng(derive_seed(m_params.seed, 0x76616c6964ULL));  // "valid"
      IndexVector perm = rng.permutation(nc);
      std::vector<char> is_val(static_cast<std::size_t>(nc), 0);
      for (Index k = 0; k < nv; ++k) is_val[static_cast<std::size_t>(perm[k])] = 1;
      for (Index k = 0; k < nc; ++k)
        (is_val[static_cast<std::size_t>(k)] ? m_val_chunks : m_train_chunks)
            .push_back(all[static_cast<std::size_t>(k)]);
    }
    m_train_size = 0;
    for (const auto& c : m_train_chunks) m_train_size += c.len;
    m_val_size = 0;
    for (const auto& c : m_val_chunks) m_val_size += c.len;
    (void)C;
  }
  void add_chunks(Index file, Index begin, Index len, std::vector<Chunk>& out) const {
    const Index C = m_params.chunk_size;
    for (Index s = 0; s < len; s += C) out.push_back(Chunk{file, begin + s, std::min(C, len - s)});
  }

  void begin_epoch(Index e) {
    m_epoch = e;
    m_position = 0;
    m_epoch_done = false;
    m_next_chunk = 0;
    m_chunk_offset = 0;
    m_pool.clear();
    m_order.resize(m_train_chunks.size());
    for (std::size_t k = 0; k < m_order.size(); ++k) m_order[k] = static_cast<Index>(k);
    m_rng.reseed(derive_seed(m_params.seed, static_cast<std::uint64_t>(e) + 1));
    if (m_params.shuffle) m_rng.shuffle(m_order);
  }

  Index next_batch_size() const {
    const Index left = m_train_size - m_position;
    const Index b = std::min(m_params.batch_size, left);
    if (b < m_params.batch_size && m_params.drop_last) return 0;
    return b;
  }

  /// Serves the next b samples into `out` (nullptr: advance only, for set_state): samples
  /// first, first + 1, ... of the batch, as many as `out` has columns.
  void draw(Index b, Matrix<Scalar>* out, Index first = 0) {
    const Index last = out ? first + out->cols() : first;
    auto dst = [&](Index c) {
      return out && c >= first && c < last ? out->col(c - first).data() : nullptr;
    };
    if (!m_params.shuffle) {
      for (Index c = 0; c < b; ++c) {
        const Chunk& ch = m_train_chunks[static_cast<std::size_t>(
            m_order[static_cast<std::size_t>(m_next_chunk)])];
        if (Scalar* p = dst(c)) read_sample(ch.file, ch.begin + m_chunk_offset, p);
        if (++m_chunk_offset == ch.len) {
          m_chunk_offset = 0;
          ++m_next_chunk;
        }
      }
    } else {
      // Top the pool up with whole chunks (in this epoch's order), then draw without replacement.
      while (static_cast<Index>(m_pool.size()) < m_params.buffer_size &&
             m_next_chunk < static_cast<Index>(m_order.size())) {
        const Chunk& ch = m_train_chunks[static_cast<std::size_t>(
            m_order[static_cast<std::size_t>(m_next_chunk++)])];
        for (Index r = 0; r < ch.len; ++r) m_pool.push_back(Slot{ch.file, ch.begin + r});
      }
      for (Index c = 0; c < b; ++c) {
        ERGO_CHECK(!m_pool.empty(), "pool holds the rest of the epoch");
        const std::size_t j = static_cast<std::size_t>(m_rng.uniform_int(m_pool.size()));
        const Slot s = m_pool[j];
        m_pool[j] = m_pool.back();
        m_pool.pop_back();
        if (Scalar* p = dst(c)) read_sample(s.file, s.sample, p);
        if (m_pool.empty() && m_next_chunk < static_cast<Index>(m_order.size())) {
          // buffer smaller than the batch: refill mid-batch
          const Chunk& ch = m_train_chunks[static_cast<std::size_t>(
              m_order[static_cast<std::size_t>(m_next_chunk++)])];
          for (Index r = 0; r < ch.len; ++r) m_pool.push_back(Slot{ch.file, ch.begin + r});
        }
      }
    }
    m_position += b;
  }

  void read_sample(Index file, Index sample, Scalar* dst) const {
    m_files[static_cast<std::size_t>(file)].view->read_samples(sample, 1, dst,
                                                               m_params.require_finite);
  }

  ActivationSourceParams m_params;
  std::vector<File> m_files;
  Index m_dim = 0;
  std::vector<Chunk> m_train_chunks, m_val_chunks;
  Index m_train_size = 0, m_val_size = 0;
  // epoch state
  Index m_epoch = 0, m_position = 0;
  bool m_epoch_done = false;
  std::vector<Index> m_order;
  Index m_next_chunk = 0, m_chunk_offset = 0;
  std::vector<Slot> m_pool;
  Rng m_rng;
};

}  // namespace ergo::io
