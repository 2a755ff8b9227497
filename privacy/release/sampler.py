"""Exact discrete Laplace and discrete Gaussian samplers driven by a keyed ChaCha20 keystream.

The algorithms are those of Canonne, Kamath & Steinke, "The Discrete Gaussian for Differential
Privacy" (NeurIPS 2020), Algorithms 1–3: every random choice is a uniform integer (rejection of
masked words) or a Bernoulli(num/den) decided by exact integer comparison, so the output
distribution is exactly the stated one (no floating point is involved in sampling; floats appear
only once, when a plan's scale is turned into a rational, rounded *up* so the noise is never
smaller than the accounted one). Speed: BENCHMARKS.md "Noise".

Why keyed, not drawn from the OS: the random bits of one draw family (window, resolution,
metric) come from the ChaCha20 keystream of a key derived from a secret day key
(:mod:`privacy.release.seeds`). A second draw of the same family under the same plan and the
same exact input therefore reproduces the first one bit for bit, which is what makes "noise
once" hold under concurrent or restarted releasers (PRIVACY.md §5); once the day key is
destroyed, nobody can recompute the noise.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

KEY_BYTES = 32
#: Scales are made rational with this denominator (2^32), rounded up: the noise parameter used is
#: at most 2^-32 (absolute, in σ² or b) above the accounted one, never below it.
_SCALE_DENOMINATOR = 1 << 32
_REFILL = 4096  # keystream bytes produced per refill


class KeyStream:
    """Uniform random integers from the ChaCha20 keystream (RFC 8439, nonce 0, counter 0) of a
    32-byte key, read as little-endian 32-bit words. Each key must drive one stream only;
    :mod:`privacy.release.seeds` derives one key per draw family."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError(f"a keystream key has {KEY_BYTES} bytes, not {len(key)}")
        # cryptography takes a 16-byte counter ‖ nonce block; all zero = counter 0, nonce 0.
        self._cipher = Cipher(algorithms.ChaCha20(key, bytes(16)), mode=None).encryptor()
        self._words: list[int] = []
        self._i = 0
        self.words_used = 0

    def word(self) -> int:
        """The next 32 keystream bits as an integer in [0, 2^32)."""
        if self._i == len(self._words):
            self.words_used += len(self._words)
            self._words = np.frombuffer(self._cipher.update(bytes(_REFILL)), dtype="<u4").tolist()
            self._i = 0
        w = self._words[self._i]
        self._i += 1
        return w

    def below(self, n: int) -> int:
        """A uniform integer in [0, n) (n ≥ 1): rejection of masked whole words, so exact."""
        if n == 1:
            return 0
        bits = (n - 1).bit_length()
        mask = (1 << bits) - 1
        if bits <= 32:
            while True:
                v = self.word() & mask
                if v < n:
                    return v
        words = (bits + 31) // 32
        while True:
            v = 0
            for _ in range(words):
                v = (v << 32) | self.word()
            v &= mask
            if v < n:
                return v


def bernoulli(rng: KeyStream, num: int, den: int) -> bool:
    """True with probability num/den exactly (0 ≤ num ≤ den, den ≥ 1).

    Compares a uniform U in [0, 1), 32 bits at a time, with the binary expansion of num/den (long
    division): the first differing word decides, so one word is read except with probability
    2^-32 per word, whatever the size of den.
    """
    if num >= den:
        return True
    while True:
        num <<= 32
        digit, num = divmod(num, den)
        w = rng.word()
        if w != digit:
            return w < digit
        if num == 0:
            return False  # U's expansion equals p's so far and p ends here: U ≥ p


def _bernoulli_exp_le1(rng: KeyStream, num: int, den: int) -> bool:
    """True with probability exp(−num/den) for 0 ≤ num/den ≤ 1 (CKS 2020, Algorithm 1)."""
    k = 1
    while bernoulli(rng, num, den * k):
        k += 1
    return k % 2 == 1


def bernoulli_exp(rng: KeyStream, num: int, den: int) -> bool:
    """True with probability exp(−num/den) for any num ≥ 0, den ≥ 1: exp(−γ) = exp(−1)^⌊γ⌋·exp(−{γ})."""
    while num > den:
        if not _bernoulli_exp_le1(rng, 1, 1):
            return False
        num -= den
    return _bernoulli_exp_le1(rng, num, den)


def discrete_laplace(rng: KeyStream, t: int, s: int = 1) -> int:
    """One draw with P(x) ∝ exp(−|x|·s/t), i.e. scale t/s (CKS 2020, Algorithm 2)."""
    while True:
        u = rng.below(t)
        if not bernoulli_exp(rng, u, t):
            continue
        v = 0
        while bernoulli_exp(rng, 1, 1):
            v += 1
        y = (u + t * v) // s
        negative = rng.below(2) == 1
        if negative and y == 0:
            continue  # zero would otherwise be counted twice
        return -y if negative else y


def discrete_gaussian(rng: KeyStream, a: int, b: int) -> int:
    """One draw with P(x) ∝ exp(−x²/(2σ²)), σ² = a/b (CKS 2020, Algorithm 3)."""
    t = math.isqrt(a // b) + 1  # ⌊σ⌋ + 1
    den = 2 * a * b * t * t
    while True:
        y = discrete_laplace(rng, t)
        # Accept with probability exp(−(|y| − σ²/t)² / (2σ²)), in integers.
        if bernoulli_exp(rng, (abs(y) * b * t - a) ** 2, den):
            return y


def _scaled_up(value: Fraction) -> int:
    """⌈value · 2^32⌉: the numerator of the smallest multiple of 2^-32 that is ≥ ``value``."""
    exact = value * _SCALE_DENOMINATOR
    return -(-exact.numerator // exact.denominator)


def _positive(name: str, value: float) -> Fraction:
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"the noise {name} must be a finite number > 0, not {value}")
    return Fraction(value)  # exact: a float is a dyadic rational


def gaussian_vector(key: bytes, sigma: float, n: int) -> npt.NDArray[np.int64]:
    """``n`` independent discrete Gaussian draws with parameter σ (σ² rounded up to k/2^32)."""
    a = _scaled_up(_positive("sigma", sigma) ** 2)
    rng = KeyStream(key)
    return np.fromiter((discrete_gaussian(rng, a, _SCALE_DENOMINATOR) for _ in range(n)), np.int64, n)


def laplace_vector(key: bytes, scale: float, n: int) -> npt.NDArray[np.int64]:
    """``n`` independent discrete Laplace draws, P(x) ∝ exp(−|x|/b), b = ``scale`` rounded up to k/2^32."""
    t = _scaled_up(_positive("scale", scale))
    rng = KeyStream(key)
    return np.fromiter((discrete_laplace(rng, t, _SCALE_DENOMINATOR) for _ in range(n)), np.int64, n)
