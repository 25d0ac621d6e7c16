"""C emitters of the hierarchical low-rank (HODLR, HEDLR, H-matrix) and Toeplitz-like layers."""

import numpy as np

from ..approx.layers_blocks import BlockLowRankLayer, ToeplitzLikeLayer
from ._emit import register_layer_emitter
from ._emit_approx import _StructuredEmitter

__all__ = ["BlockLowRankEmitter", "ToeplitzLikeEmitter"]


class BlockLowRankEmitter(_StructuredEmitter):
    """Leaf by leaf: ``y[r0:r1] += U (V x[c0:c1])`` or ``+= D x[c0:c1]`` for a dense leaf.

    The leaves of the trained `BlockLowRank` (``to_approximation().leaves``) are described by
    a table of six integers each (first row, rows, first column, columns, rank with 0 for a
    dense leaf, offset of its values); the values table holds, leaf after leaf, a dense block
    row-major, or V (rank x q) row-major then U transposed (rank x p, so that ``U h`` is a
    sweep of long independent updates of the output). ``y`` starts at the bias (blocks the
    approximation left out are zero), then every leaf adds its product. Cost per sample: one
    multiply-add per weight parameter (``n_params``: ``r (p + q)`` per low-rank leaf, ``p q``
    per dense leaf) plus a loop overhead per leaf; the dense matrix is never formed.

    Parameters
    ----------
    layer : BlockLowRankLayer
        The layer (kind ``hodlr``, ``hedlr`` or ``hmatrix``).
    name : str
        C identifier prefix of its symbols.
    ctype : CType
        The exported floating type.
    """

    def __init__(self, layer, name, ctype):
        super().__init__(layer, name, ctype)
        self.kind = str(layer.kind).replace("_", "-")
        self.leaves = self.approx.leaves
        self.work = max([1] + [int(U.shape[1]) for *_, U, V in self.leaves if V is not None])

    def tables(self):
        meta, vals, off = [], [], 0
        for a, b, c, d, U, V in self.leaves:
            if V is None:  # dense leaf: U is the p x q block
                parts, rank = [U.ravel()], 0
            else:
                parts, rank = [V.ravel(), U.T.ravel()], U.shape[1]
            meta += [a, b - a, c, d - c, rank, off]
            vals += parts
            off += sum(p.size for p in parts)
        return (self._values("bias", self.bias)
                + self._values("val", np.concatenate(vals) if vals else [])
                + self._ints("leaf", meta, per_line=6))

    def function(self):
        n, z = self.name, self.ct.lit(0.0)
        return self._mv() + self._mvt() + self._head() + [
            "    uint32_t k;", f"    for (j = 0; j < {self.n_out}u; ++j)  /* 0 + b: no memcpy */",
            f"        y[j] = {z} + {n}_bias[j];",
            f"    for (k = 0; k < {len(self.leaves)}u; ++k) {{",
            f"        const uint32_t *b = {n}_leaf + 6u * k;  /* r0, p, c0, q, rank, offset */",
            f"        const {self.ct.name} *v = {n}_val + b[5];",
            "        if (b[4] == 0u) {  /* dense p x q leaf */",
            f"            {n}_mv(v, b[1], b[3], x + b[2], y + b[0], 1);",
            "        } else {  /* low rank: w = V x (rank values), y += U w */",
            f"            {n}_mv(v, b[4], b[3], x + b[2], w, 0);",
            f"            {n}_mvt(v + (size_t)b[4] * b[3], b[1], b[4], w, y + b[0]);",
            "        }", "    }", "}"]


def fft_length(n):
    """The smallest power of two ``N >= max(2, 2 n - 1)``: a linear convolution of two length-n signals fits.

    Parameters
    ----------
    n : int
        Signal length.

    Returns
    -------
    int
        N.
    """
    return max(2, 1 << (2 * n - 2).bit_length())


class ToeplitzLikeEmitter(_StructuredEmitter):
    """``y = 1/2 fold_+(sum_i g_i * fold_-(v_i * x)) + b`` by a radix-2 complex FFT of length N.

    As the Python layer: ``Z_-1(v) x`` is the first n entries of the linear convolution
    ``v * x`` minus the next n - 1 (``fold_-``), ``Z_1(g) w`` the first n plus the next n - 1
    (``fold_+``), with ``v_i = J h_i`` and N the smallest power of two ``>= 2 n - 1``. The
    half spectra (N/2 + 1 values) of the fixed generators ``g_i`` and ``v_i`` are computed in
    float64 by NumPy from ``to_approximation()`` (with the 1/N of the inverse transforms and
    the 1/2 folded in) and stored as tables, rounded once to the exported type; so are the
    twiddles of every butterfly stage and the bit-reversal permutation. Generators go in pairs
    (a zero partner for an odd r): the two real convolutions ``v_i * x``, ``v_j * x`` are the
    real and imaginary parts of one complex inverse transform, and the spectra of the two
    folded signals are separated from one forward transform by conjugate symmetry.

    Cost per sample: ``2 + 2 ceil(r / 2)`` complex FFTs of length N (``N/2 log2 N``
    butterflies each) and ``4 ceil(r / 2) (N/2 + 1)`` complex multiplications: ``O(r N log
    N)``, against ``r (2 n)`` parameters: ``(5 log2 N + 6) N / (2 n)`` floating-point
    operations per parameter, about 62 at n = 1000 (N = 2048), against 2 for a dense or
    low-rank layer. Measured at n = 1000 (gcc -O2, ``benchmarks/README.md``): faster than the
    exported dense layer up to r = 10, 3.7 times slower at r = 50 (share 0.1), 2.2 times faster
    than the Python layer. Toeplitz-like layers save parameters, not time, unless r is small.
    Tables:
    the half spectra, ``4 ceil(r / 2) (N/2 + 1)`` complex values (about ``N / n`` times
    ``n_params`` real values: 2 to 4 times), N - 4 twiddles and N indices; workspace 6 N
    values. The dense matrix is never formed.

    Parameters
    ----------
    layer : ToeplitzLikeLayer
        The layer.
    name : str
        C identifier prefix of its symbols.
    ctype : CType
        The exported floating type.
    """

    kind = "toeplitz-like"

    def __init__(self, layer, name, ctype):
        super().__init__(layer, name, ctype)
        n, r = self.approx.G.shape
        self.n, self.N = n, fft_length(n)
        self.bits = self.N.bit_length() - 1
        self.pairs = (r + 1) // 2
        self.work = 6 * self.N

    def _spectra(self, M, scale):
        """Half spectra (2 pairs x (N/2 + 1)) of M's columns padded to an even count, times scale."""
        cols = np.zeros((self.n, 2 * self.pairs))
        cols[:, :M.shape[1]] = M
        return np.fft.rfft(cols.T, self.N, axis=1) * scale

    def tables(self):
        a, N = self.approx, self.N
        Gs = self._spectra(a.G, 0.25 / N)  # 1/2 of the layer, 1/2 of the separation, 1/N
        Vs = self._spectra(a.H[::-1], 1.0 / N)  # v_i = J h_i; 1/N of the inverse transform
        # twiddles exp(-2 pi i k / (2 h)), k < h, of the stages h = 4, 8, .., N/2 (at h - 4)
        k = np.concatenate([np.zeros(0)] + [np.arange(h) / (2 * h)
                                            for h in 2 ** np.arange(2, self.bits)])
        rev = [int(format(i, f"0{self.bits}b")[::-1], 2) for i in range(N)]
        return (self._values("bias", self.bias) + self._values("gr", Gs.real)
                + self._values("gi", Gs.imag) + self._values("vr", Vs.real)
                + self._values("vi", Vs.imag) + self._ints("rev", rev)
                + (self._values("twr", np.cos(2 * np.pi * k))
                   + self._values("twi", -np.sin(2 * np.pi * k)) if k.size else []))

    def _fft(self):
        """In-place radix-2 FFT of (re, im): bit reversal, the stages of half-length 1 and 2
        (twiddles 1 and -i sgn: additions only), then one loop per other stage, its
        half-length h a constant and its h twiddles contiguous (from ``tw + h - 4``), which
        compilers vectorise; ``sgn`` = 1 forward
        (``exp(-2 pi i jk / N)``), -1 inverse (unnormalised)."""
        T, n, N = self.ct.name, self.name, self.N
        lines = [f"static void {n}_fft({T} *restrict re, {T} *restrict im, {T} sgn)", "{",
                 "    uint32_t i, j;" if N < 8 else "    uint32_t i, j, k;",
                 f"    {T} t;\n    (void)sgn;" if N < 4 else f"    {T} t, u;",
                 f"    for (i = 0; i < {N}u; ++i) {{", f"        j = {n}_rev[i];",
                 "        if (i < j) {",
                 "            t = re[i]; re[i] = re[j]; re[j] = t;",
                 "            t = im[i]; im[i] = im[j]; im[j] = t;", "        }", "    }",
                 f"    for (i = 0; i < {N}u; i += 2u) {{  /* h = 1: twiddle 1 */",
                 "        t = re[i + 1]; re[i + 1] = re[i] - t; re[i] += t;",
                 "        t = im[i + 1]; im[i + 1] = im[i] - t; im[i] += t;", "    }"]
        if N >= 4:
            lines += [f"    for (i = 0; i < {N}u; i += 4u) {{  /* h = 2: twiddles 1 and -i sgn */",
                      "        t = re[i + 2]; re[i + 2] = re[i] - t; re[i] += t;",
                      "        t = im[i + 2]; im[i + 2] = im[i] - t; im[i] += t;",
                      "        t = sgn * im[i + 3]; u = -sgn * re[i + 3];",
                      "        re[i + 3] = re[i + 1] - t; re[i + 1] += t;",
                      "        im[i + 3] = im[i + 1] - u; im[i + 1] += u;", "    }"]
        for h in 2 ** np.arange(2, self.bits):  # constant h: trip counts multiples of 4
            lines += [f"    for (i = 0; i < {N}u; i += {2 * h}u) {{  /* h = {h} */",
                      f"        {T} *restrict ar = re + i, *restrict ai = im + i;",
                      f"        for (k = 0; k < {h}u; ++k) {{",
                      f"            const {T} cr = {n}_twr[{h - 4}u + k], "
                      f"ci = sgn * {n}_twi[{h - 4}u + k];",
                      f"            const {T} tr = ar[k + {h}u] * cr - ai[k + {h}u] * ci;",
                      f"            const {T} ti = ar[k + {h}u] * ci + ai[k + {h}u] * cr;",
                      f"            ar[k + {h}u] = ar[k] - tr;", f"            ai[k + {h}u] = ai[k] - ti;",
                      "            ar[k] += tr;", "            ai[k] += ti;", "        }", "    }"]
        lines += ["}", ""]
        return lines

    def function(self):
        T, nm, n, N = self.ct.name, self.name, self.n, self.N
        H, one, z = N // 2, self.ct.lit(1.0), "zero"
        return self._fft() + self._head() + [
            *self.ct.zero(),
            f"    {T} *xr = w, *xi = w + {N}, *pr = w + {2 * N}, *pi = w + {3 * N};",
            f"    {T} *ar = w + {4 * N}, *ai = w + {5 * N};", "    uint32_t k, t;",
            f"    for (j = 0; j < {N}u; ++j) {{  /* X = FFT(x, zero-padded to {N}) */",
            f"        xr[j] = j < {n}u ? x[j] : {z};", f"        xi[j] = {z};", "    }",
            f"    {nm}_fft(xr, xi, {one});",
            f"    for (k = 0; k <= {H}u; ++k) {{", f"        ar[k] = {z};", f"        ai[k] = {z};",
            "    }",
            f"    for (t = 0; t < {self.pairs}u; ++t) {{  /* generators 2t and 2t + 1 */",
            f"        const size_t o0 = (size_t)(2u * t) * {H + 1}u, o1 = o0 + {H + 1}u;",
            f"        const {T} *gr0 = {nm}_gr + o0, *gi0 = {nm}_gi + o0, *gr1 = {nm}_gr + o1, "
            f"*gi1 = {nm}_gi + o1;",
            f"        const {T} *vr0 = {nm}_vr + o0, *vi0 = {nm}_vi + o0, *vr1 = {nm}_vr + o1, "
            f"*vi1 = {nm}_vi + o1;",
            f"        for (k = 0; k <= {H}u; ++k) {{  /* P = X (V_0 + i V_1) */",
            f"            const {T} sr = vr0[k] - vi1[k], si = vi0[k] + vr1[k];",
            "            pr[k] = xr[k] * sr - xi[k] * si;",
            "            pi[k] = xr[k] * si + xi[k] * sr;", "        }",
            f"        for (k = {H + 1}u; k < {N}u; ++k) {{  /* V[N - k] = conj(V[k]) */",
            f"            const {T} sr = vr0[{N}u - k] + vi1[{N}u - k], "
            f"si = vr1[{N}u - k] - vi0[{N}u - k];",
            "            pr[k] = xr[k] * sr - xi[k] * si;",
            "            pi[k] = xr[k] * si + xi[k] * sr;", "        }",
            f"        {nm}_fft(pr, pi, -{one});  /* pr = v_0 * x, pi = v_1 * x */",
            f"        for (j = 0; j + 1u < {n}u; ++j) {{  /* fold_- */",
            f"            pr[j] -= pr[j + {n}u];", f"            pi[j] -= pi[j + {n}u];", "        }",
            f"        for (j = {n}u; j < {N}u; ++j) {{", f"            pr[j] = {z};",
            f"            pi[j] = {z};", "        }",
            f"        {nm}_fft(pr, pi, {one});  /* Q = W_0 + i W_1 */",
            f"        for (k = 0; k <= {H}u; ++k) {{  /* acc += G_0 W_0 + G_1 W_1 */",
            f"            const uint32_t q = ({N}u - k) & {N - 1}u;",
            f"            const {T} sr = pr[k] + pr[q], si = pi[k] - pi[q];  /* 2 W_0 */",
            f"            const {T} dr = pr[k] - pr[q], di = pi[k] + pi[q];  /* 2i W_1 */",
            "            ar[k] += gr0[k] * sr - gi0[k] * si + (gr1[k] * di + gi1[k] * dr);",
            "            ai[k] += gr0[k] * si + gi0[k] * sr - (gr1[k] * dr - gi1[k] * di);",
            "        }", "    }",
            f"    for (k = 1u; k < {H}u; ++k) {{  /* a real signal's spectrum */",
            f"        ar[{N}u - k] = ar[k];", f"        ai[{N}u - k] = -ai[k];", "    }",
            f"    {nm}_fft(ar, ai, -{one});",
            f"    for (j = 0; j + 1u < {n}u; ++j)  /* fold_+ */",
            f"        y[j] = ar[j] + ar[j + {n}u];", f"    y[{n - 1}u] = ar[{n - 1}u];",
            *self._bias_lines(), "}"]


register_layer_emitter(BlockLowRankLayer, "csr", BlockLowRankEmitter)
register_layer_emitter(ToeplitzLikeLayer, "csr", ToeplitzLikeEmitter)
