"""The optional second thread for batch-1 products: bit-identical rows, no hang, fork-safe."""

from __future__ import annotations

import multiprocessing as mp

import numpy as np
import pytest

from seofp_lab.infer import kernels as K
from tests.kernel_data import PACKINGS, activations, seofp_weights

pytestmark = pytest.mark.kernel
VARIANTS = ["portable"] + (["avx2"] if K.lib.seofp_avx2_supported() else [])


@pytest.mark.parametrize("var", VARIANTS)
def test_two_threads_give_the_same_bytes_on_every_layout(var: str) -> None:
    rng = np.random.default_rng(4)
    w = seofp_weights(rng, 1030, 257, -9, -3)  # 66K weights: above the pool's minimum
    x = activations(rng, 257)
    x[::7] = 0.0  # masked activations too
    packings = [*PACKINGS, ("intadd", "nibbles")]
    with K.use_variant(var):  # type: ignore[arg-type]
        for kernel, layout in packings:
            layer = K.pack_layer(w, kernel, layout)  # type: ignore[arg-type]
            one, _ = K.gemv(layer, x)
            with K.use_threads(2):
                assert K.threads() == 2
                for _ in range(50):  # many hand-offs: the worker spins, then sleeps
                    two, _ = K.gemv(layer, x)
                    assert two.tobytes() == one.tobytes(), (kernel, layout)
    assert K.threads() == 1


def test_lstm_stack_streams_identically_on_two_threads() -> None:
    rng = np.random.default_rng(5)
    hidden, n_in = 128, 257  # W_hh 512 x 128 and W_ih 512 x 257: both use the pool
    cells = [(K.pack_layer(seofp_weights(rng, 4 * hidden, w, -6, -1), "intadd"),
              K.pack_layer(seofp_weights(rng, 4 * hidden, hidden, -6, -1), "intadd"),
              activations(rng, 4 * hidden) * 0.1) for w in (n_in, hidden)]
    stack = K.LSTMStack(cells)
    x = activations(rng, 12, n_in)
    outs = []
    for n in (1, 2):
        with K.use_threads(n):
            state = stack.new_state()
            outs.append(np.concatenate([stack.run(x[t:t + 1], state)[0] for t in range(12)]))
    assert outs[0].tobytes() == outs[1].tobytes()


def _child(q: mp.Queue) -> None:  # a forked child has no worker thread: it must not hang
    w = np.ones((1024, 128), np.float32)
    y, _ = K.gemv(K.pack_layer(w, "intadd"), np.ones(128, np.float32))
    q.put(float(y[0]))


def test_a_forked_child_runs_without_the_parents_worker() -> None:
    with K.use_threads(2):
        K.gemv(K.pack_layer(np.ones((1024, 128), np.float32), "intadd"), np.ones(128, np.float32))
        ctx = mp.get_context("fork")
        q = ctx.Queue()
        p = ctx.Process(target=_child, args=(q,))
        p.start()
        p.join(timeout=60)
        alive = p.is_alive()
        if alive:
            p.kill()
        assert not alive and q.get(timeout=5) == 128.0


def test_thread_counts_other_than_one_or_two_are_refused() -> None:
    for bad in (0, 3, 1.5):
        with pytest.raises(K.KernelError, match="1 or 2 threads"):
            K.set_threads(bad)  # type: ignore[arg-type]
