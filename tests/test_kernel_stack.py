"""The one-call unidirectional LSTM stack (``seofp_lstm_stack``) against per-layer calls."""

from __future__ import annotations

import numpy as np
import pytest

from seofp_lab.infer import kernels as K
from tests.kernel_data import PACKINGS, activations, seofp_weights

pytestmark = pytest.mark.kernel

HIDDEN, N_IN, LAYERS, FRAMES = 9, 21, 3, 7


def _cells(rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    cells = []
    for li in range(LAYERS):
        width = N_IN if li == 0 else HIDDEN
        cells.append((seofp_weights(rng, 4 * HIDDEN, width, -6, -1),
                      seofp_weights(rng, 4 * HIDDEN, HIDDEN, -6, -1),
                      seofp_weights(rng, 1, 4 * HIDDEN, -4, 0)[0]))
    return cells


def _per_layer(packed: list, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The reference: lstm_direction layer by layer; returns (last output, state rows)."""
    state = []
    for wih, whh, b in packed:
        h, c = np.zeros(HIDDEN, np.float32), np.zeros(HIDDEN, np.float32)
        out = np.empty((x.shape[0], HIDDEN), np.float32)
        K.lstm_direction(wih, whh, b, x, h, c, out)
        state += [h, c]
        x = out
    return x, np.stack(state)


def test_stack_is_bit_identical_to_per_layer_calls_and_across_kernels() -> None:
    rng = np.random.default_rng(21)
    cells = _cells(rng)
    x = activations(rng, FRAMES, N_IN)
    first = None
    for kernel, layout in PACKINGS:
        packed = [(K.pack_layer(a, kernel, layout), K.pack_layer(b, kernel, layout), c)  # type: ignore[arg-type]
                  for a, b, c in cells]
        ref, ref_state = _per_layer(packed, x)
        stack = K.LSTMStack(packed)
        state = stack.new_state()
        # streaming: chunks of 1, 2 and 4 frames with the state carried in place
        outs = [stack.run(x[t0:t1], state)[0] for t0, t1 in ((0, 1), (1, 3), (3, FRAMES))]
        got = np.concatenate(outs)
        assert got.tobytes() == ref.tobytes(), (kernel, layout)
        assert state.tobytes() == ref_state.tobytes(), (kernel, layout)
        first = got if first is None else first
        assert got.tobytes() == first.tobytes(), kernel  # intadd == decode == fp32


def test_stack_rejects_bad_state_input_and_layer_shapes() -> None:
    rng = np.random.default_rng(22)
    packed = [(K.pack_layer(a, "decode"), K.pack_layer(b, "decode"), c) for a, b, c in
              _cells(rng)]
    stack = K.LSTMStack(packed)
    x = activations(rng, 2, N_IN)
    with pytest.raises(K.KernelError, match="state"):
        stack.run(x, np.zeros((2 * LAYERS, HIDDEN + 1), np.float32))
    with pytest.raises(K.KernelError, match="LSTM input"):
        stack.run(x[:, :-1], stack.new_state())
    bad = x.copy()
    bad[1, 3] = np.nan
    state = stack.new_state()
    with pytest.raises(K.KernelError, match="finite"):
        stack.run(bad, state)
    assert not state.any()  # refused before any layer ran
    with pytest.raises(K.KernelError, match="layer 1"):
        K.LSTMStack([packed[0], packed[0]])  # layer 1 expects W_ih (4H, H)
