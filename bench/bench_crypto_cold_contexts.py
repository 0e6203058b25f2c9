"""What a cold key-table slot pays per packet: building cipher objects from key bytes.

A slot outside the warm set keeps only its key bytes; each packet it seals or opens needs
an AEAD object and one header-protection mask.  Measured side by side in one run, per
suite (best of ``--repeat`` rounds of ``--ops`` operations, interleaved):

* the AEAD object (``AESGCM(key)`` / ``ChaCha20Poly1305(key)``);
* a header-protection mask from a context built for it: ECB for AES, ChaCha20 with the
  sample as counter and nonce (what a kept context costs to build, plus one mask);
* the one-shot mask the table uses for cold slots: one-block AES-CMAC with the stored
  subkey K1 (AES), the per-sample ChaCha20 context (ChaCha20);
* deriving K1 (one ECB block, once per key, kept with the key);
* one mask from a kept context, for scale.

Prints microseconds and the ratio to the ECB/ChaCha20 context build.  Bounded: a fixed
number of operations per section.

    python bench/bench_crypto_cold_contexts.py [--ops 5000] [--repeat 7]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from quic_offload.packet.header_protection import (
    aes_cmac_subkey,
    aes_mask_function,
    aes_mask_once,
    chacha20_mask_function,
    chacha20_mask_once,
)

SUITES = {"aes128": 16, "aes256": 32, "chacha20": 32}


def sections_for(name: str, key_length: int) -> list[tuple[str, Callable[[int], None]]]:
    key = os.urandom(key_length)
    hp_key = bytearray(os.urandom(key_length))  # the table passes views of a bytearray
    hp_view = memoryview(hp_key)
    sample = os.urandom(16)
    if name == "chacha20":
        aead_factory: Callable[[bytes], object] = ChaCha20Poly1305
        kept = chacha20_mask_function(hp_view)

        def context_mask(ops: int) -> None:
            for _ in range(ops):
                chacha20_mask_function(hp_view)(sample)

        def one_shot(ops: int) -> None:
            for _ in range(ops):
                chacha20_mask_once(hp_view, sample)

        extra: list[tuple[str, Callable[[int], None]]] = []
        labels = ("ChaCha20 context + 1 mask", "one-shot ChaCha20 mask")
    else:
        aead_factory = AESGCM
        kept = aes_mask_function(hp_view)
        subkey = aes_cmac_subkey(hp_view)

        def context_mask(ops: int) -> None:
            for _ in range(ops):
                aes_mask_function(hp_view)(sample)

        def one_shot(ops: int) -> None:
            for _ in range(ops):
                aes_mask_once(hp_view, subkey, sample)

        def derive_subkey(ops: int) -> None:
            for _ in range(ops):
                aes_cmac_subkey(hp_view)

        extra = [("CMAC subkey K1 (once per key)", derive_subkey)]
        labels = ("ECB context + 1 mask", "one-shot mask (AES-CMAC)")

    def aead_object(ops: int) -> None:
        for _ in range(ops):
            aead_factory(key)

    def kept_mask(ops: int) -> None:
        for _ in range(ops):
            kept(sample)

    return [
        (labels[0], context_mask),
        (labels[1], one_shot),
        ("AEAD object", aead_object),
        *extra,
        ("mask from a kept context", kept_mask),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    for name, key_length in SUITES.items():
        sections = sections_for(name, key_length)
        best = {label: float("inf") for label, _ in sections}
        for _ in range(args.repeat):
            for label, run in sections:
                start = time.perf_counter()
                run(args.ops)
                best[label] = min(best[label], (time.perf_counter() - start) / args.ops * 1e6)
        reference = best[sections[0][0]]
        print(f"\n{name}, {args.ops} operations x best of {args.repeat}")
        print(f"  {'what':34s} {'us':>8s} {'x context':>10s}")
        for label, _ in sections:
            print(f"  {label:34s} {best[label]:8.2f} {best[label] / reference:10.2f}")


if __name__ == "__main__":
    main()
