# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False
"""The kernels of _cython.pyx compiled for x86-64-v4 (AVX-512); imported only where the CPU has it."""

include "_cython.pyx"
