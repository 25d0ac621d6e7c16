# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False
"""The kernels of _cython.pyx compiled for x86-64-v3 (AVX2, FMA, BMI2); imported only where the CPU has it."""

include "_cython.pyx"
