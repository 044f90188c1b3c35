// Tests for the format layer of ergo/io.hpp: float16/bfloat16 conversion, dtypes, .npy and
// .safetensors reading (files written by NumPy and PyTorch) and writing, malformed input, and
// atomic replacement of files.
#include "io_test_utils.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <limits>

using namespace ergo;
using namespace ergo::io;
using ergo::test::fixture;
using ergo::test::read_bytes;
using ergo::test::ScratchDir;
using ergo::test::write_bytes;

namespace {

// The fixture grid: a[i][j] = -1 + 0.25 * (4 i + j), shape [3, 4]; exactly representable in
// float16 and bfloat16, so every dtype must read it back exactly (tolerance 0).
MatrixXd expected_grid() {
  MatrixXd m(4, 3);  // samples are columns: [3, 4] -> 4 × 3
  for (Index i = 0; i < 3; ++i)
    for (Index j = 0; j < 4; ++j) m(j, i) = -1.0 + 0.25 * static_cast<double>(4 * i + j);
  return m;
}

std::string le64(std::uint64_t v) {
  std::string s;
  for (int b = 0; b < 8; ++b) s += static_cast<char>((v >> (8 * b)) & 0xff);
  return s;
}

// A .safetensors file from a header string and a data buffer.
std::string st_file(const std::string& header, const std::string& data) {
  return le64(header.size()) + header + data;
}

// A .npy v1 file from a header dict and raw data.
std::string npy_file(const std::string& dict, const std::string& data) {
  std::string h = dict;
  std::size_t total = 10 + h.size() + 1;
  total = (total + 63) / 64 * 64;
  h.append(total - 10 - h.size() - 1, ' ');
  h += '\n';
  std::string out = "\x93NUMPY";
  out += '\x01';
  out += '\x00';
  out += static_cast<char>(h.size() & 0xff);
  out += static_cast<char>((h.size() >> 8) & 0xff);
  return out + h + data;
}

std::string floats(std::initializer_list<float> v) {
  std::string s(v.size() * 4, '\0');
  std::memcpy(&s[0], v.begin(), s.size());
  return s;
}

}  // namespace

// ------------------------------------------------------------------ half / bfloat16 ----

TEST(IoHalf, EveryFloat16RoundTripsExactly) {
  for (std::uint32_t b = 0; b < 65536u; ++b) {
    const auto h = static_cast<std::uint16_t>(b);
    const float f = io::detail::half_to_float(h);
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(io::detail::decode_small_float(io::detail::double_to_half(f), 5, 10)));
      continue;
    }
    ASSERT_EQ(io::detail::double_to_half(f), h) << "bits " << b;
    ASSERT_EQ(static_cast<double>(f), io::detail::decode_small_float(h, 5, 10));
  }
}

TEST(IoHalf, Float16RoundsToNearestEven) {
  // 1 + 2^-11 is halfway between 1 and the next half (1 + 2^-10): ties go to even (1.0).
  EXPECT_EQ(io::detail::double_to_half(1.0 + std::ldexp(1.0, -11)), 0x3C00);
  EXPECT_EQ(io::detail::double_to_half(1.0 + 3 * std::ldexp(1.0, -11)),
            0x3C02);  // tie -> even 0x3C02
  EXPECT_EQ(io::detail::double_to_half(1.0 + std::ldexp(1.0, -11) + std::ldexp(1.0, -30)), 0x3C01);
  EXPECT_EQ(io::detail::double_to_half(65504.0), 0x7BFF);  // largest finite
  EXPECT_EQ(io::detail::double_to_half(65519.0), 0x7BFF);  // below the overflow midpoint
  EXPECT_EQ(io::detail::double_to_half(65520.0), 0x7C00);  // midpoint ties to even = inf
  EXPECT_EQ(io::detail::double_to_half(-1e9), 0xFC00);
  EXPECT_EQ(io::detail::double_to_half(std::ldexp(1.0, -24)), 0x0001);  // smallest subnormal
  EXPECT_EQ(io::detail::double_to_half(std::ldexp(1.0, -25)), 0x0000);  // tie -> even (zero)
  EXPECT_EQ(io::detail::double_to_half(1.5 * std::ldexp(1.0, -25)), 0x0001);
  EXPECT_EQ(io::detail::double_to_half(std::ldexp(1023.5, -24)), 0x0400);  // rounds up into normals
  EXPECT_EQ(io::detail::double_to_half(-0.0), 0x8000);
}

TEST(IoHalf, BFloat16MatchesFloatBitRounding) {
  // Every bfloat16 pattern round-trips, and for random floats our correctly rounded double
  // path agrees with the classic float-bits formula (u + 0x7fff + lsb) >> 16 used by PyTorch.
  for (std::uint32_t b = 0; b < 65536u; ++b) {
    const auto h = static_cast<std::uint16_t>(b);
    const float f = io::detail::bfloat16_to_float(h);
    if (std::isnan(f)) continue;
    ASSERT_EQ(io::detail::double_to_bfloat16(f), h) << "bits " << b;
  }
  Rng rng(3);
  for (int t = 0; t < 20000; ++t) {
    const float f = static_cast<float>(rng.normal(0.0, std::pow(10.0, rng.uniform(-30, 30))));
    std::uint32_t u;
    std::memcpy(&u, &f, 4);
    const auto ref = static_cast<std::uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
    ASSERT_EQ(io::detail::double_to_bfloat16(f), ref) << f;
  }
}

TEST(IoDType, NamesRoundTrip) {
  for (DType t : {DType::Bool, DType::U8, DType::I8, DType::U16, DType::I16, DType::U32, DType::I32,
                  DType::U64, DType::I64, DType::F16, DType::BF16, DType::F32, DType::F64}) {
    DType back;
    ASSERT_TRUE(parse_safetensors_dtype(safetensors_dtype_name(t), back));
    EXPECT_EQ(back, t);
    ASSERT_TRUE(parse_dtype_name(dtype_name(t), back));
    EXPECT_EQ(back, t);
    if (t != DType::BF16) {
      bool be = true;
      ASSERT_TRUE(parse_npy_descr(npy_descr(t), back, be));
      EXPECT_EQ(back, t);
      EXPECT_FALSE(be);
    }
  }
  DType t;
  bool be;
  EXPECT_TRUE(parse_npy_descr(">f8", t, be));
  EXPECT_TRUE(be);
  EXPECT_FALSE(parse_npy_descr("<c8", t, be));  // complex
  EXPECT_FALSE(parse_npy_descr("<U5", t, be));  // strings
  EXPECT_FALSE(parse_safetensors_dtype("F8_E4M3", t));
  EXPECT_TRUE(parse_dtype_name("torch.bfloat16", t));
  EXPECT_EQ(t, DType::BF16);
}

// ------------------------------------------------------------ .npy written by NumPy ----

TEST(IoNpy, ReadsEveryNumpyFixtureDtypeAndOrder) {
  const MatrixXd want = expected_grid();
  for (const char* name : {"np_f32_c.npy", "np_f32_f.npy", "np_f64_c.npy", "np_f16_c.npy",
                           "np_f64_be.npy", "np_f32_v2.npy", "np_f32_v3.npy"}) {
    SCOPED_TRACE(name);
    EXPECT_EIGEN_NEAR(read_npy<double>(fixture(name)), want, 0.0);
    EXPECT_EIGEN_NEAR(read_npy<float>(fixture(name)).cast<double>(), want, 0.0);
  }
  NpyFile v2(fixture("np_f32_v2.npy"));
  EXPECT_EQ(v2.header().major, 2);
  NpyFile v3(fixture("np_f32_v3.npy"));
  EXPECT_EQ(v3.header().major, 3);
}

TEST(IoNpy, MapsCOrderWithoutCopy) {
  NpyFile f(fixture("np_f32_c.npy"));
  ASSERT_TRUE(f.can_map<float>());
  auto m = f.map<float>();
  EXPECT_EQ(m.rows(), 4);
  EXPECT_EQ(m.cols(), 3);
  // The map points into the mapped file itself: no copy was made.
  EXPECT_EQ(reinterpret_cast<const unsigned char*>(m.data()),
            f.file().data() + f.header().data_offset);
  EXPECT_EIGEN_NEAR(m.cast<double>(), expected_grid(), 0.0);
  EXPECT_FALSE(f.can_map<double>());  // dtype differs: convert instead
  EXPECT_THROW_MSG(f.map<double>(), FormatError, "np_f32_c.npy", "float64");
  NpyFile ff(fixture("np_f32_f.npy"));
  EXPECT_FALSE(ff.can_map<float>());  // Fortran order needs a transposing copy
  EXPECT_EIGEN_NEAR(ff.matrix<float>().cast<double>(), expected_grid(), 0.0);
}

TEST(IoNpy, ReadsHigherRankIntegersBoolsAndTorchArrays) {
  // [2, 3, 4] -> 4 × 6, column c = 3 i + j holds a[i][j][:]; same for the Fortran copy.
  MatrixXd want(4, 6);
  for (Index i = 0; i < 2; ++i)
    for (Index j = 0; j < 3; ++j)
      for (Index k = 0; k < 4; ++k)
        want(k, 3 * i + j) = 0.5 * static_cast<double>(12 * i + 4 * j + k);
  EXPECT_EIGEN_NEAR(read_npy<double>(fixture("np_f32_3d.npy")), want, 0.0);
  EXPECT_EIGEN_NEAR(read_npy<double>(fixture("np_f32_3d_f.npy")), want, 0.0);

  IntMatrix labels = read_npy_labels(fixture("np_i64_labels.npy"));
  ASSERT_EQ(labels.rows(), 1);
  ASSERT_EQ(labels.cols(), 5);
  EXPECT_EQ(labels, (IntMatrix(1, 5) << 0, 2, 1, 2, 0).finished());
  EXPECT_EQ(read_npy<double>(fixture("np_i64_labels.npy")).rows(), 5);  // default: n × 1

  IntMatrix i2 = read_npy<std::int32_t>(fixture("np_i32_2d.npy"));  // [5, 2] -> 2 × 5
  ASSERT_EQ(i2.rows(), 2);
  for (Index j = 0; j < 5; ++j)
    for (Index k = 0; k < 2; ++k) EXPECT_EQ(i2(k, j), 2 * j + k - 3);
  EXPECT_EIGEN_NEAR(read_npy<double>(fixture("np_u8.npy")),
                    (VectorXd(6) << 0, 1, 2, 3, 4, 5).finished(), 0.0);
  EXPECT_EQ(read_npy<std::int32_t>(fixture("np_bool.npy")),
            (IntMatrix(3, 1) << 1, 0, 1).finished());
  EXPECT_EQ(read_npy<float>(fixture("np_f32_empty.npy")).rows(), 4);
  EXPECT_EQ(read_npy<float>(fixture("np_f32_empty.npy")).cols(), 0);

  // tensor.numpy() of torch.arange(24).reshape(6, 4) / 8
  const MatrixXf t = read_npy<float>(fixture("torch_f32_acts.npy"));
  ASSERT_EQ(t.rows(), 4);
  ASSERT_EQ(t.cols(), 6);
  for (Index n = 0; n < 6; ++n)
    for (Index d = 0; d < 4; ++d) EXPECT_EQ(t(d, n), static_cast<float>(4 * n + d) / 8.0f);
}

TEST(IoNpy, WrittenFilesAreByteIdenticalToNumpy) {
  // Our writer produces exactly the bytes np.save produced for the same array (header text,
  // 64-byte padding and data), in both C and Fortran order.
  ScratchDir dir;
  const MatrixXf g = expected_grid().cast<float>();  // 4 × 3 = C-order [3, 4]
  write_npy(dir.file("c.npy"), g);
  EXPECT_EQ(read_bytes(dir.file("c.npy")), read_bytes(fixture("np_f32_c.npy")));
  NpyWriteOptions fo;
  fo.layout = NpyLayout::MatrixShape;
  const MatrixXf gt = g.transpose();  // 3 × 4 matrix written with its own shape, Fortran order
  write_npy(dir.file("f.npy"), gt, fo);
  EXPECT_EQ(read_bytes(dir.file("f.npy")), read_bytes(fixture("np_f32_f.npy")));
  NpyWriteOptions lo;
  lo.layout = NpyLayout::Vector;
  write_npy(dir.file("l.npy"), (Eigen::Matrix<std::int64_t, 5, 1>() << 0, 2, 1, 2, 0).finished(),
            lo);
  EXPECT_EQ(read_bytes(dir.file("l.npy")), read_bytes(fixture("np_i64_labels.npy")));
}

template <class T>
class IoNpyRoundTrip : public ::testing::Test {};
TYPED_TEST_SUITE(IoNpyRoundTrip, ergo::test::FloatTypes);

TYPED_TEST(IoNpyRoundTrip, EveryDtypeAndLayout) {
  using S = TypeParam;
  ScratchDir dir;
  // Small non-negative integers: representable in every dtype, so every round trip is exact.
  Matrix<S> m(3, 5);
  for (Index k = 0; k < m.size(); ++k) m.data()[k] = static_cast<S>(k % 7);
  for (DType t : {DType::Bool, DType::U8, DType::I8, DType::U16, DType::I16, DType::U32, DType::I32,
                  DType::U64, DType::I64, DType::F16, DType::F32, DType::F64}) {
    for (NpyLayout layout : {NpyLayout::SamplesAsRows, NpyLayout::MatrixShape}) {
      SCOPED_TRACE(dtype_name(t));
      NpyWriteOptions o;
      o.has_dtype = true;
      o.dtype = t;
      o.layout = layout;
      write_npy(dir.file("x.npy"), m, o);
      Matrix<S> back = read_npy<S>(dir.file("x.npy"));
      Matrix<S> want = t == DType::Bool ? Matrix<S>((m.array() != S(0)).template cast<S>()) : m;
      if (layout == NpyLayout::MatrixShape) back.transposeInPlace();  // [3, 5] reads as 5 × 3
      EXPECT_EIGEN_NEAR(back, want, 0.0);
      EXPECT_EQ(NpyFile(dir.file("x.npy")).info().dtype, t);
    }
  }
  // Full-precision values round-trip exactly in the scalar's own dtype.
  Rng rng(5);
  const Matrix<S> r = rng.normal_matrix<S>(7, 9);
  write_npy(dir.file("r.npy"), r);
  EXPECT_EIGEN_NEAR(read_npy<S>(dir.file("r.npy")), r, 0.0);
  // float16 storage rounds each value to nearest even: relative error <= 2^-11.
  NpyWriteOptions h;
  h.has_dtype = true;
  h.dtype = DType::F16;
  write_npy(dir.file("h.npy"), r, h);
  const Matrix<S> hb = read_npy<S>(dir.file("h.npy"));
  for (Index k = 0; k < r.size(); ++k)
    EXPECT_LE(std::abs(hb.data()[k] - r.data()[k]), std::ldexp(std::abs(r.data()[k]), -11) + 1e-7);
}

TEST(IoNpy, WriteRejectsUnrepresentableValues) {
  ScratchDir dir;
  NpyWriteOptions o;
  o.has_dtype = true;
  o.dtype = DType::I8;
  EXPECT_THROW_MSG(write_npy(dir.file("x.npy"), (VectorXd(2) << 1, 300).finished(), o),
                   InvalidArgument, "write_npy", "int8", "300");
  o.dtype = DType::I32;
  EXPECT_THROW_MSG(write_npy(dir.file("x.npy"), (VectorXd(2) << 1.5, 3).finished(), o),
                   InvalidArgument, "1.5");
  EXPECT_TRUE(dir.list().empty());  // no file and no temporary left behind
}

// ----------------------------------------------------------------- malformed .npy ----

TEST(IoNpyMalformed, EveryCaseNamesTheFileAndTheProblem) {
  ScratchDir dir;
  const std::string good_dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }";
  const std::string good_data = floats({1, 2, 3, 4});
  struct Case {
    const char* name;
    std::string bytes;
    std::vector<const char*> msg;
  };
  std::string bad_version = npy_file(good_dict, good_data);
  bad_version[6] = 4;
  std::string long_hlen = npy_file(good_dict, good_data);
  long_hlen[8] = '\xff';
  long_hlen[9] = '\xff';
  const std::vector<Case> cases = {
      {"magic.npy", "PK\x03\x04 this is a zip" + std::string(20, 'x'), {"magic", "\\x93NUMPY"}},
      {"tiny.npy", "\x93NUM", {"magic", "a file of 4 bytes"}},
      {"version.npy", bad_version, {"version", "4.0"}},
      {"hlen.npy", long_hlen, {"header", "header length"}},
      {"syntax.npy", npy_file("{'descr' '<f4'}", good_data), {"header", "':'"}},
      {"missing.npy",
       npy_file("{'descr': '<f4', 'shape': (2, 2), }", good_data),
       {"'fortran_order'"}},
      {"extra.npy",
       npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), 'x': 1}", good_data),
       {"key 'x'"}},
      {"struct.npy",
       npy_file("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", good_data),
       {"descr", "structured"}},
      {"complex.npy",
       npy_file("{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }", good_data),
       {"descr", "'<c8'"}},
      {"negative.npy",
       npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': (-2, 2), }", good_data),
       {"shape", "non-negative"}},
      {"order.npy",
       npy_file("{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2, 2), }", good_data),
       {"fortran_order", "True or False"}},
      {"truncated.npy",
       npy_file(good_dict, good_data.substr(0, 10)),
       {"data", "16 bytes", "truncated"}},
      {"long.npy", npy_file(good_dict, good_data + "junk"), {"data", "longer than its header"}},
      // The header lies about the dtype: float64 declared, float32 data present.
      {"dtype_lie.npy",
       npy_file("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }", good_data),
       {"32 bytes", "got 16"}},
      // Huge declared sizes: an element count or byte count that overflows 64 bits.
      {"huge1.npy",
       npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 16), }",
                good_data),
       {"shape", "fits in 64 bits"}},
      {"huge2.npy",
       npy_file("{'descr': '<f8', 'fortran_order': False, 'shape': (4611686018427387904,), }",
                good_data),
       {"shape", "byte count"}},
      {"huge3.npy",
       npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }",
                good_data),
       {"shape", "64 bits"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string p = dir.file(c.name);
    write_bytes(p, c.bytes);
    try {
      (void)read_npy<float>(p);
      ADD_FAILURE() << "no error for " << c.name;
    } catch (const FormatError& e) {
      EXPECT_THAT(e.what(), ::testing::HasSubstr(std::string("read_npy(): '") + p + "'"));
      for (const char* s : c.msg) EXPECT_THAT(e.what(), ::testing::HasSubstr(s));
    }
  }
  // A missing file is a FileError (the OS refused), not a FormatError.
  EXPECT_THROW_MSG(read_npy<float>(dir.file("nope.npy")), FileError, "nope.npy", "No such file");
  // Non-finite values where they are not allowed; allowed by default.
  const std::string nan_path = dir.file("nan.npy");
  write_bytes(nan_path,
              npy_file(good_dict, floats({1, std::numeric_limits<float>::quiet_NaN(), 3, 4})));
  EXPECT_NO_THROW(read_npy<float>(nan_path));
  ReadOptions fin;
  fin.require_finite = true;
  EXPECT_THROW_MSG(read_npy<float>(nan_path, fin), FormatError, "nan.npy", "finite",
                   "sample 0, feature 1");
  // Integers requested from non-integral data.
  EXPECT_THROW_MSG(read_npy_labels(fixture("np_f32_c.npy")), FormatError, "np_f32_c.npy",
                   "integral", "sample 0, feature 1");
}

// --------------------------------------------------------------------- safetensors ----

TEST(IoSafetensors, ReadsTorchWrittenTensorsOfEveryDtype) {
  SafetensorsFile f(fixture("st_mixed.safetensors"));
  const MatrixXd want = expected_grid();
  for (const char* n : {"w_f32", "w_f64", "w_f16", "w_bf16"}) {
    SCOPED_TRACE(n);
    EXPECT_EIGEN_NEAR(f.matrix<double>(n), want, 0.0);
    EXPECT_EIGEN_NEAR(f.matrix<float>(n).cast<double>(), want, 0.0);
  }
  EXPECT_EQ(f.entry("w_bf16").info.dtype, DType::BF16);
  EXPECT_EQ(f.vector<std::int64_t>("v_i64"),
            (Eigen::Matrix<std::int64_t, 4, 1>() << 3, -1, 4, 1).finished());
  EXPECT_EIGEN_NEAR(f.vector<double>("v_u8"), (VectorXd(3) << 7, 8, 9).finished(), 0.0);
  EXPECT_EQ(f.matrix<float>("s_f32")(0, 0), 2.5f);
  EXPECT_EQ(f.metadata().at("format"), "pt");
  EXPECT_EQ(f.metadata().at("note"), "ergo fixture");
  ASSERT_TRUE(f.view("w_f32").can_map<float>());
  EXPECT_EIGEN_NEAR(f.map<float>("w_f32").cast<double>(), want, 0.0);
  EXPECT_THROW_MSG(f.matrix<float>("nope"), FormatError, "st_mixed.safetensors", "tensor 'nope'",
                   "w_f32");
  EXPECT_THROW_MSG(f.vector<float>("w_f32"), FormatError, "w_f32", "rank 1");
  // Negative int64 into an unsigned type is out of range.
  EXPECT_THROW_MSG(f.vector<std::uint32_t>("v_i64"), FormatError, "v_i64", "out-of-range");
}

template <class T>
class IoSafetensorsRoundTrip : public ::testing::Test {};
TYPED_TEST_SUITE(IoSafetensorsRoundTrip, ergo::test::FloatTypes);

TYPED_TEST(IoSafetensorsRoundTrip, EveryDtypeAlignedAndAtomic) {
  using S = TypeParam;
  ScratchDir dir;
  Matrix<S> m(3, 5);
  for (Index k = 0; k < m.size(); ++k) m.data()[k] = static_cast<S>(k % 7);  // exact in all dtypes
  SafetensorsWriter w;
  const std::vector<DType> all = {DType::Bool, DType::U8,  DType::I8,  DType::U16, DType::I16,
                                  DType::U32,  DType::I32, DType::U64, DType::I64, DType::F16,
                                  DType::BF16, DType::F32, DType::F64};
  for (DType t : all) w.add(std::string("m_") + dtype_name(t), m, t);
  Rng rng(11);
  const Matrix<S> r = rng.normal_matrix<S>(4, 6);
  const Vector<S> v = rng.normal_matrix<S>(5, 1);
  w.add("r", r);
  w.add_vector("v", v);
  w.add_scalar("s", S(0.375));
  w.add_shaped("t3", r, {2, 3, 4});  // [2, 3, 4] -> 4 × 6, the same matrix
  w.set_metadata("k", "v");
  const std::string path = dir.file("x.safetensors");
  w.write(path);
  EXPECT_EQ(read_bytes(path), w.to_bytes());
  SafetensorsFile f(path);
  for (DType t : all) {
    SCOPED_TRACE(dtype_name(t));
    const std::string n = std::string("m_") + dtype_name(t);
    EXPECT_EQ(f.entry(n).info.shape, (std::vector<std::int64_t>{5, 3}));
    const Matrix<S> want = t == DType::Bool ? Matrix<S>((m.array() != S(0)).template cast<S>()) : m;
    EXPECT_EIGEN_NEAR(f.matrix<S>(n), want, 0.0);
  }
  for (const auto& e : f.entries()) EXPECT_EQ(e.begin % dtype_size(e.info.dtype), 0u) << e.name;
  EXPECT_EIGEN_NEAR(f.matrix<S>("r"), r, 0.0);
  EXPECT_TRUE(f.view("r").can_map<S>());
  EXPECT_EIGEN_NEAR(f.vector<S>("v"), v, 0.0);
  EXPECT_EQ(f.matrix<S>("s")(0, 0), S(0.375));
  EXPECT_EIGEN_NEAR(f.matrix<S>("t3"), r, 0.0);
  EXPECT_EQ(f.metadata().at("k"), "v");
  EXPECT_EQ(dir.list().size(), 1u);  // only the target, no temporary
  // Writer misuse.
  EXPECT_THROW(w.add("r", r), InvalidArgument);
  EXPECT_THROW(w.add("__metadata__", r), InvalidArgument);
  EXPECT_THROW(w.add_shaped("bad", r, {5, 5}), InvalidArgument);
}

TEST(IoSafetensorsMalformed, EveryCaseNamesTheFileAndTheProblem) {
  ScratchDir dir;
  const std::string data = floats({1, 2, 3, 4});
  auto hdr = [](const std::string& entries) { return "{" + entries + "}"; };
  const std::string ok_entry = R"("a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]})";
  struct Case {
    const char* name;
    std::string bytes;
    std::vector<const char*> msg;
  };
  const std::vector<Case> cases = {
      {"short.st", "abc", {"at least 8 bytes"}},
      {"hlen.st", le64(1000) + "{}", {"header length", "at most 2 bytes"}},
      {"hcap.st", le64(std::uint64_t(1) << 40) + "{}", {"header length", "at most 100000000"}},
      {"notjson.st", st_file("{\"a\": [1, 2", data), {"header", "malformed JSON"}},
      {"nobrace.st", st_file("[1, 2, 3]", data), {"header", "starting with '{'"}},
      {"fields.st",
       st_file(hdr(R"("a":{"dtype":"F32"})"), data),
       {"tensor 'a'", "dtype, shape and data_offsets"}},
      {"dtype.st",
       st_file(hdr(R"("a":{"dtype":"F8_E4M3","shape":[4],"data_offsets":[0,4]})"), data),
       {"tensor 'a' dtype", "F8_E4M3"}},
      {"shape.st",
       st_file(hdr(R"("a":{"dtype":"F32","shape":[-2,2],"data_offsets":[0,16]})"), data),
       {"tensor 'a' shape", "non-negative"}},
      // Header lies about the shape (or dtype): byte count differs from the offsets.
      {"lie.st",
       st_file(hdr(R"("a":{"dtype":"F64","shape":[2,2],"data_offsets":[0,16]})"), data),
       {"tensor 'a'", "32 bytes for float64 [2, 2]", "got 16 bytes"}},
      {"beyond.st",
       st_file(hdr(R"("a":{"dtype":"F32","shape":[2,4],"data_offsets":[0,32]})"), data),
       {"data_offsets", "data buffer size", "truncated"}},
      {"reversed.st",
       st_file(hdr(R"("a":{"dtype":"F32","shape":[0],"data_offsets":[8,4]})"), data),
       {"data_offsets", "begin <= end"}},
      {"overlap.st",
       st_file(hdr(ok_entry + R"(,"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]})"), data),
       {"overlap"}},
      {"huge.st",
       st_file(
           hdr(R"("a":{"dtype":"F32","shape":[4294967296,4294967296,4],"data_offsets":[0,16]})"),
           data),
       {"shape", "fits in 64 bits"}},
      {"meta.st",
       st_file(hdr(ok_entry + R"(,"__metadata__":{"x":1})"), data),
       {"__metadata__ 'x'", "a string"}},
      {"offsets.st",
       st_file(hdr(R"("a":{"dtype":"F32","shape":[4],"data_offsets":[0]})"), data),
       {"data_offsets", "[begin, end]"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string p = dir.file(c.name);
    write_bytes(p, c.bytes);
    try {
      SafetensorsFile f(p);
      ADD_FAILURE() << "no error for " << c.name;
    } catch (const FormatError& e) {
      EXPECT_THAT(e.what(), ::testing::HasSubstr(std::string("SafetensorsFile(): '") + p + "'"));
      for (const char* s : c.msg) EXPECT_THAT(e.what(), ::testing::HasSubstr(s));
    }
  }
  // The well-formed version of the same file reads fine, and non-finite data are caught when
  // asked for.
  const std::string p = dir.file("ok.st");
  write_bytes(p, st_file(hdr(ok_entry), floats({1, 2, std::numeric_limits<float>::infinity(), 4})));
  SafetensorsFile f(p);
  EXPECT_EQ(f.matrix<float>("a")(0, 1), 3.0f - 3.0f + std::numeric_limits<float>::infinity());
  ReadOptions fin;
  fin.require_finite = true;
  EXPECT_THROW_MSG(f.matrix<float>("a", fin), FormatError, "ok.st:a", "finite",
                   "sample 1, feature 0");
}

// ------------------------------------------------------------------ atomic writes ----

TEST(IoAtomicWrite, ReplacesOnlyOnCommit) {
  ScratchDir dir;
  const std::string p = dir.file("f.bin");
  atomic_write_file(p, "good old content");
  {
    AtomicFile f(p);
    f.write("new partial");
    EXPECT_EQ(read_bytes(p), "good old content");  // not visible before commit
    // destroyed without commit (an exception or early return)
  }
  EXPECT_EQ(read_bytes(p), "good old content");
  EXPECT_EQ(dir.list().size(), 1u);  // temporary removed
  {
    AtomicFile f(p);
    f.write(std::string(3 << 20, 'x'));  // larger than the internal buffer
    f.commit();
  }
  EXPECT_EQ(read_bytes(p).size(), std::size_t(3) << 20);
  EXPECT_EQ(dir.list().size(), 1u);
  // A failed write (a value that cannot be stored, detected mid-file) leaves the old file.
  write_npy(dir.file("a.npy"), MatrixXf::Ones(2, 2));
  const std::string before = read_bytes(dir.file("a.npy"));
  NpyWriteOptions o;
  o.has_dtype = true;
  o.dtype = DType::U8;
  EXPECT_THROW(write_npy(dir.file("a.npy"), (MatrixXf(2, 2) << 1, 2, 3, -4).finished(), o),
               InvalidArgument);
  EXPECT_EQ(read_bytes(dir.file("a.npy")), before);
  EXPECT_EQ(dir.list().size(), 2u);
}

TEST(IoAtomicWrite, KilledWriterNeverLeavesATruncatedTarget) {
  // A child process starts replacing a good file, writes half of the new content and dies
  // without committing (as a crash would). The target must still hold the complete old file.
  ScratchDir dir;
  const std::string p = dir.file("model.npy");
  const MatrixXf good = MatrixXf::Constant(64, 64, 1.5f);
  write_npy(p, good);
  const std::string before = read_bytes(p);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    AtomicFile f(p);
    f.write(std::string(before.size() / 2, '\0'));
    ::_exit(0);  // no commit, no destructors
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_EQ(read_bytes(p), before);
  EXPECT_EIGEN_NEAR(read_npy<float>(p), good, 0.0f);
  // The dead writer's temporary is a separate dot-file; it never replaced the target.
  for (const auto& n : dir.list()) {
    if (n != "model.npy") {
      EXPECT_EQ(n.rfind(".model.npy.tmp-", 0), 0u) << n;
    }
  }
}

TEST(IoAtomicWrite, MakesDirectoriesAndReportsFailures) {
  ScratchDir dir;
  make_directories(dir.file("a/b/c"));
  atomic_write_file(dir.file("a/b/c/x.txt"), "hi");
  EXPECT_EQ(read_bytes(dir.file("a/b/c/x.txt")), "hi");
  EXPECT_THROW_MSG(AtomicFile(dir.file("missing/x.txt")), FileError, "create a temporary file");
  EXPECT_THROW_MSG(make_directories(dir.file("a/b/c/x.txt")), FileError, "x.txt");
  EXPECT_THROW(MappedFile(dir.path()), FileError);  // a directory is not mappable
}
