"""Leaf constants shared by every kernel backend: float flags, parallel thresholds, tile sizes."""

# LLVM fast-math flags for Numba: reassociation lets the batch reductions vectorise; no
# 'nnan'/'ninf', so NaN/Inf checks keep working (the C build uses the matching GCC flags).
FASTMATH = frozenset({"reassoc", "nsz", "contract", "arcp"})

# A kernel runs serially when its work (2 * nnz * batch multiply-adds) is below this.
PAR_MIN_FLOPS = 65_536

# Entries processed per chunk by the NumPy reference SDDMM (bounds its temporaries).
REF_CHUNK = 1 << 16

# Fused backward (spmm_t + sddmm in one pass over W's rows) where the layer needs dX.
FUSED_BACKWARD = True
