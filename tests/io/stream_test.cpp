// Tests for ergo::io::ActivationSource: exact epochs over many files of mixed formats and
// dtypes, the shuffling pool, validation hold-out, resume, and malformed input.
#include "io_test_utils.hpp"

#include <algorithm>
#include <map>
#include <set>

using namespace ergo;
using ergo::io::ActivationSource;
using ergo::io::ActivationSourceParams;
using ergo::io::FormatError;
using ergo::test::ScratchDir;

namespace {

constexpr Index kDim = 3;

// Samples whose feature 0 is a global id (exact in float16: ids < 2048), feature 1 = -id,
// feature 2 = id / 4: a sample read whole and in the right orientation has f1 = -f0, f2 = f0/4.
MatrixXd id_block(Index first, Index n) {
  MatrixXd m(kDim, n);
  for (Index j = 0; j < n; ++j) {
    const double id = static_cast<double>(first + j);
    m(0, j) = id;
    m(1, j) = -id;
    m(2, j) = id / 4.0;
  }
  return m;
}

// Five files of 37, 64, 1, 50 and 29 samples in five formats: float32 .npy, float16 .npy
// in Fortran order, float64 .npy, a [5, 10, 3] float32 .npy (leading axes flattened), and a
// .safetensors with float16 "activations" beside another tensor. 181 samples in all.
struct Corpus {
  ScratchDir dir;
  std::vector<std::string> files;
  std::vector<Index> sizes = {37, 64, 1, 50, 29};
  Index total = 0;
  Corpus() {
    Index id = 0;
    auto next = [&](Index n) {
      MatrixXd m = id_block(id, n);
      id += n;
      return m;
    };
    io::write_npy(dir.file("a.npy"), next(37).cast<float>());
    {
      io::NpyWriteOptions o;
      o.has_dtype = true;
      o.dtype = io::DType::F16;
      o.layout = io::NpyLayout::MatrixShape;  // Fortran [3, 64] ... transposed below
      const MatrixXd m = next(64);
      MatrixXd mt = m.transpose();  // 64 × 3 matrix with its own shape = logical [64, 3]
      io::write_npy(dir.file("b.npy"), mt, o);
    }
    io::write_npy(dir.file("c.npy"), next(1));
    {
      // [5, 10, 3]: C-order with the same bytes as the 3 × 50 matrix.
      const MatrixXf m = next(50).cast<float>();
      io::TensorInfo info;
      info.dtype = io::DType::F32;
      info.shape = {5, 10, 3};
      io::AtomicFile f(dir.file("d.npy"));
      f.write(io::npy_preamble(info));
      f.write(m.data(), static_cast<std::size_t>(m.size()) * sizeof(float));
      f.commit();
    }
    {
      io::SafetensorsWriter w;
      w.add("activations", next(29), io::DType::F16);
      w.add("tokens", IntMatrix::Zero(1, 29));
      w.write(dir.file("e.safetensors"));
    }
    total = id;
    for (const char* n : {"a.npy", "b.npy", "c.npy", "d.npy", "e.safetensors"})
      files.push_back(dir.file(n));
  }
};

// Serves one epoch and returns the ids in serving order (checking every sample's integrity).
std::vector<Index> serve_epoch(ActivationSource<float>& src,
                               std::vector<Index>* batch_sizes = nullptr) {
  std::vector<Index> ids;
  MatrixXf X;
  while (src.next(X)) {
    EXPECT_EQ(X.rows(), kDim);
    if (batch_sizes) batch_sizes->push_back(X.cols());
    for (Index j = 0; j < X.cols(); ++j) {
      EXPECT_EQ(X(1, j), -X(0, j));
      EXPECT_EQ(X(2, j), X(0, j) / 4.0f);
      ids.push_back(static_cast<Index>(X(0, j)));
    }
  }
  return ids;
}

}  // namespace

TEST(IoActivationSource, EveryEpochVisitsEveryTrainingSampleExactlyOnce) {
  Corpus c;
  struct Setting {
    Index batch, buffer, chunk;
    bool shuffle;
  };
  // Pool larger than the data, smaller than a chunk, smaller than a batch; no shuffle.
  for (const Setting s :
       {Setting{16, 1000, 8, true}, Setting{7, 5, 11, true}, Setting{32, 10, 4, true},
        Setting{1, 64, 1, true}, Setting{20, 50, 9, false}}) {
    SCOPED_TRACE(::testing::Message()
                 << "batch " << s.batch << " buffer " << s.buffer << " chunk " << s.chunk);
    ActivationSourceParams p;
    p.batch_size = s.batch;
    p.buffer_size = s.buffer;
    p.chunk_size = s.chunk;
    p.shuffle = s.shuffle;
    p.seed = 42;
    ActivationSource<float> src(c.files, p);
    ASSERT_EQ(src.dim(), kDim);
    ASSERT_EQ(src.train_size(), c.total);
    std::vector<std::vector<Index>> epochs;
    for (int e = 0; e < 3; ++e) {
      std::vector<Index> sizes;
      std::vector<Index> ids = serve_epoch(src, &sizes);
      EXPECT_EQ(static_cast<Index>(sizes.size()), src.batches_per_epoch());
      for (std::size_t k = 0; k + 1 < sizes.size(); ++k) EXPECT_EQ(sizes[k], s.batch);
      std::vector<Index> sorted = ids;
      std::sort(sorted.begin(), sorted.end());
      std::vector<Index> all(static_cast<std::size_t>(c.total));
      for (Index k = 0; k < c.total; ++k) all[static_cast<std::size_t>(k)] = k;
      EXPECT_EQ(sorted, all);  // each sample exactly once
      epochs.push_back(ids);
      EXPECT_EQ(src.epoch(), e);
    }
    if (s.shuffle) {
      EXPECT_NE(epochs[0], epochs[1]);  // reshuffled every epoch
    } else {
      EXPECT_EQ(epochs[0], epochs[1]);
      EXPECT_EQ(epochs[0][0], 0);
      EXPECT_TRUE(std::is_sorted(epochs[0].begin(), epochs[0].end()));  // file order
    }
    // Reproducible from the seed alone.
    ActivationSource<float> again(c.files, p);
    EXPECT_EQ(serve_epoch(again), epochs[0]);
  }
}

TEST(IoActivationSource, SeedsChangeTheOrderAndTheBufferMixesFiles) {
  Corpus c;
  ActivationSourceParams p;
  p.batch_size = 181;
  p.buffer_size = 1000;
  p.chunk_size = 16;
  p.seed = 1;
  ActivationSource<float> a(c.files, p);
  p.seed = 2;
  ActivationSource<float> b(c.files, p);
  const auto ea = serve_epoch(a), eb = serve_epoch(b);
  EXPECT_NE(ea, eb);
  // With a pool holding all samples, the first 30 served come from several files.
  std::set<int> files_seen;
  for (std::size_t k = 0; k < 30; ++k)
    files_seen.insert(ea[k] < 37 ? 0 : ea[k] < 101 ? 1 : ea[k] < 102 ? 2 : ea[k] < 152 ? 3 : 4);
  EXPECT_GE(files_seen.size(), 3u);
}

TEST(IoActivationSource, ValidationSplitsAreDisjointAndComplete) {
  Corpus c;
  for (const auto split : {io::ValidationSplit::Tail, io::ValidationSplit::Chunks}) {
    ActivationSourceParams p;
    p.batch_size = 13;
    p.buffer_size = 30;
    p.chunk_size = 6;
    p.validation_fraction = 0.2;
    p.validation_split = split;
    p.seed = 9;
    ActivationSource<float> src(c.files, p);
    std::vector<Index> val;
    src.for_each_validation_batch(7, [&](const MatrixXf& V) {
      EXPECT_LE(V.cols(), 7);
      for (Index j = 0; j < V.cols(); ++j) val.push_back(static_cast<Index>(V(0, j)));
    });
    EXPECT_EQ(static_cast<Index>(val.size()), src.validation_size());
    const MatrixXf Vm = src.validation_matrix();
    ASSERT_EQ(Vm.cols(), src.validation_size());
    for (Index j = 0; j < Vm.cols(); ++j)
      EXPECT_EQ(static_cast<Index>(Vm(0, j)), val[static_cast<std::size_t>(j)]);
    EXPECT_EQ(src.validation_matrix(5).cols(), 5);
    const std::vector<Index> train = serve_epoch(src);
    std::set<Index> vs(val.begin(), val.end()), ts(train.begin(), train.end());
    EXPECT_EQ(vs.size(), val.size());
    EXPECT_EQ(ts.size(), train.size());
    for (Index id : vs) EXPECT_EQ(ts.count(id), 0u) << id;          // disjoint
    EXPECT_EQ(static_cast<Index>(vs.size() + ts.size()), c.total);  // complete
    if (split == io::ValidationSplit::Tail) {
      // The last round(0.2 n_f) samples of each file: 7 of 37, 13 of 64, 0 of 1, 10 of 50, 6 of 29.
      std::set<Index> want;
      Index first = 0;
      for (Index n : c.sizes) {
        const Index nv = static_cast<Index>(std::llround(0.2 * static_cast<double>(n)));
        for (Index k = n - nv; k < n; ++k) want.insert(first + k);
        first += n;
      }
      EXPECT_EQ(vs, want);
    } else {
      // round(0.2 · #chunks) whole chunks: chunk counts 7 + 11 + 1 + 9 + 5 = 33 -> 7 chunks.
      EXPECT_GE(src.validation_size(), 7 * 1);
      EXPECT_LE(src.validation_size(), 7 * 6);
    }
  }
}

TEST(IoActivationSource, DropLastAndCyclingAndResume) {
  Corpus c;
  ActivationSourceParams p;
  p.batch_size = 25;
  p.buffer_size = 40;
  p.chunk_size = 10;
  p.drop_last = true;
  p.seed = 3;
  ActivationSource<float> src(c.files, p);
  std::vector<Index> sizes;
  const auto ids = serve_epoch(src, &sizes);
  EXPECT_EQ(sizes.size(), 7u);  // 181 = 7 · 25 + 6: the final 6 are dropped
  EXPECT_EQ(ids.size(), 175u);
  EXPECT_EQ(std::set<Index>(ids.begin(), ids.end()).size(), 175u);

  // A stream checkpointed mid-epoch resumes with the very batches of an uninterrupted one.
  p.drop_last = false;
  ActivationSource<float> straight(c.files, p), first(c.files, p), resumed(c.files, p);
  MatrixXf X, Y;
  std::vector<MatrixXf> want;
  for (int k = 0; k < 20; ++k) {  // crosses two epoch boundaries (8 batches per epoch)
    straight.next_cycling(X);
    want.push_back(X);
  }
  for (int k = 0; k < 11; ++k) first.next_cycling(X);
  resumed.set_state(first.state());
  EXPECT_EQ(resumed.epoch(), 1);
  for (int k = 11; k < 20; ++k) {
    resumed.next_cycling(Y);
    EXPECT_EIGEN_NEAR(Y, want[static_cast<std::size_t>(k)], 0.0f);
  }
  EXPECT_THROW(resumed.set_state("1 13"), InvalidArgument);  // not at a batch boundary
  EXPECT_THROW(resumed.set_state("garbage"), InvalidArgument);
}

TEST(IoActivationSource, RejectsBadFilesAndParameters) {
  Corpus c;
  ScratchDir dir;
  io::write_npy(dir.file("d4.npy"), MatrixXf::Zero(4, 10));
  io::NpyWriteOptions v;
  v.layout = io::NpyLayout::Vector;
  io::write_npy(dir.file("vec.npy"), VectorXf::Zero(10), v);
  MatrixXf bad = MatrixXf::Zero(3, 10);
  bad(2, 7) = std::numeric_limits<float>::infinity();
  io::write_npy(dir.file("inf.npy"), bad);
  io::SafetensorsWriter w;
  w.add("x", MatrixXf::Zero(3, 4));
  w.add("y", MatrixXf::Zero(3, 4));
  w.write(dir.file("two.safetensors"));

  EXPECT_THROW_MSG(ActivationSource<float>({c.files[0], dir.file("d4.npy")}), FormatError, "d4.npy",
                   "feature dimension 3", "float32 [10, 4]");
  EXPECT_THROW_MSG(ActivationSource<float>({dir.file("vec.npy")}), FormatError, "vec.npy",
                   "[n, d]");
  EXPECT_THROW_MSG(ActivationSource<float>({dir.file("two.safetensors")}), FormatError,
                   "two.safetensors", "activations");
  ActivationSourceParams named;
  named.tensor = "y";
  EXPECT_NO_THROW(ActivationSource<float>({dir.file("two.safetensors")}, named));
  EXPECT_THROW_MSG(ActivationSource<float>({dir.file("x.txt")}), InvalidArgument,
                   ".npy or .safetensors");
  EXPECT_THROW_MSG(ActivationSource<float>({dir.file("missing.npy")}), io::FileError,
                   "missing.npy");
  {
    ActivationSourceParams p;
    p.shuffle = false;
    ActivationSource<float> src({dir.file("inf.npy")}, p);
    MatrixXf X;
    EXPECT_THROW_MSG(src.next(X), FormatError, "inf.npy", "finite", "sample 7, feature 2");
  }
  ActivationSourceParams p;
  p.batch_size = 0;
  EXPECT_THROW_MSG(ActivationSource<float>(c.files, p), InvalidArgument, "batch_size");
  p = ActivationSourceParams{};
  p.validation_fraction = 1.0;
  EXPECT_THROW_MSG(ActivationSource<float>(c.files, p), InvalidArgument, "validation_fraction");
  p.validation_fraction = 0.99;
  p.chunk_size = 1000;  // every file is one chunk; Chunks split of 5 chunks holds out 5
  p.validation_split = io::ValidationSplit::Chunks;
  EXPECT_THROW_MSG(ActivationSource<float>(c.files, p), InvalidArgument,
                   "at least one training sample");
  EXPECT_THROW(ActivationSource<float>(std::vector<std::string>{}), InvalidArgument);
}
