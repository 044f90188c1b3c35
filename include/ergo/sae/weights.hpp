// SPDX-License-Identifier: MIT
#pragma once

/// \file weights.hpp
/// \brief The tensors of an SAE (the four every architecture has, plus the ones its architecture
/// adds) and the configuration record written with them on export.
///
/// Samples are columns: activations X are d × B, codes Z are m × B, the encoder W_enc is m × d
/// and the decoder W_dec is d × m (its columns are the dictionary atoms). SAELens stores W_enc as
/// [d_in, d_sae] and W_dec as [d_sae, d_in] in C order; those buffers are exactly our
/// column-major m × d and d × m matrices, so checkpoints map over without copies.

#include "../core/error.hpp"
#include "../core/types.hpp"

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace ergo::sae {

/// \brief A tensor an architecture adds to the four every SAE has (a vector is stored as n × 1).
template <class Scalar>
struct NamedTensor {
  std::string name;      ///< SAELens-style name: "threshold", "W_dense", "b_dense", ...
  Matrix<Scalar> value;  ///< its values (shape given by the architecture's TensorSpec)
};

/// \brief All tensors of an SAE (also used, with the same shapes, for gradients).
///
/// Every SAE has the encoder (m × d), encoder bias (m), decoder (d × m, columns = dictionary
/// atoms) and decoder bias (d). `extras` holds the tensors of the architecture, in the order its
/// `tensors()` lists them: JumpReLU and BatchTopK have "threshold" (m × 1); Structured has the
/// dense branch "W_dense" (h × d) and "b_dense" (h × 1); the Unmixer with a normalisation has
/// "norm_weight" and "norm_bias" (m × 1).
///
/// \code
/// auto& w = sae.weights();
/// w.decoder_bias.setZero();                       // d
/// Eigen::MatrixXf& theta = w.extra("threshold");  // m × 1 (JumpReLU)
/// \endcode
template <class Scalar_>
struct Weights {
  using Scalar = Scalar_;
  Matrix<Scalar> encoder;                   ///< W_enc, m × d
  Vector<Scalar> encoder_bias;              ///< b_enc, m
  Matrix<Scalar> decoder;                   ///< W_dec, d × m
  Vector<Scalar> decoder_bias;              ///< b_dec, d
  std::vector<NamedTensor<Scalar>> extras;  ///< the architecture's own tensors

  /// True when the architecture has an extra tensor called `name`.
  bool has_extra(const std::string& name) const {
    for (const auto& t : extras)
      if (t.name == name) return true;
    return false;
  }
  /// \brief The extra tensor called `name`; throws InvalidArgument naming the tensors there are.
  Matrix<Scalar>& extra(const std::string& name) {
    return const_cast<Matrix<Scalar>&>(static_cast<const Weights&>(*this).extra(name));
  }
  const Matrix<Scalar>& extra(const std::string& name) const {
    std::string names;
    for (const auto& t : extras) {
      if (t.name == name) return t.value;
      names += (names.empty() ? "" : ", ") + t.name;
    }
    throw_invalid("Weights::extra", "name",
                  names.empty() ? std::string("no name (this architecture has no extra tensor)")
                                : "one of " + names,
                  "\"" + name + "\"");
  }

  /// Zero tensors with the shapes (and extra names) of `o`.
  static Weights zeros_like(const Weights& o) {
    Weights g;
    g.encoder = Matrix<Scalar>::Zero(o.encoder.rows(), o.encoder.cols());
    g.encoder_bias = Vector<Scalar>::Zero(o.encoder_bias.size());
    g.decoder = Matrix<Scalar>::Zero(o.decoder.rows(), o.decoder.cols());
    g.decoder_bias = Vector<Scalar>::Zero(o.decoder_bias.size());
    for (const auto& t : o.extras)
      g.extras.push_back({t.name, Matrix<Scalar>::Zero(t.value.rows(), t.value.cols())});
    return g;
  }

  /// \brief Every tensor under its SAELens-style name: "W_enc" (m × d), "b_enc" (m × 1), "W_dec"
  /// (d × m), "b_dec" (d × 1), and the extras ("threshold" m × 1, "W_dense" h × d, "b_dense"
  /// h × 1, "norm_weight" / "norm_bias" m × 1).
  std::map<std::string, Matrix<Scalar>> to_map() const {
    std::map<std::string, Matrix<Scalar>> out;
    out["W_enc"] = encoder;
    out["b_enc"] = encoder_bias;
    out["W_dec"] = decoder;
    out["b_dec"] = decoder_bias;
    for (const auto& t : extras) out[t.name] = t.value;
    return out;
  }
};

/// \brief Configuration record of an SAE for export (serialize.hpp writes it into SAELens's
/// cfg.json and ergo's own files).
struct Config {
  std::string architecture;          ///< ergo's name (to_string(Architecture))
  std::string saelens_architecture;  ///< SAELens equivalent, or "" if none
  Index d_in = 0;                    ///< input dimension d
  Index d_sae = 0;                   ///< number of latents m
  Index k = 0;                       ///< active latents per sample (TopK, BatchTopK), else 0
  double threshold = 0.0;            ///< BatchTopK global inference threshold, else 0
  /// Input scale s used during training (x' = s·x, so that E‖x'‖ = √d); 1 if none.
  double normalization_factor = 1.0;
  /// True when s has been folded into the weights (the SAE then takes raw x); the trainer
  /// always folds, so an exported SAE needs no input scaling.
  bool normalization_folded = true;
  bool apply_b_dec_to_input = true;  ///< encode x − b_dec (false for the Unmixer)
  /// The architecture's hyper-parameters by name (e.g. "bandwidth" → "0.01").
  std::map<std::string, std::string> extra;
};

}  // namespace ergo::sae
