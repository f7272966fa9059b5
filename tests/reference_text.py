"""Plain-numpy twin of min-char-rnn's training, written from its math. Never imports fastrnn.

The algorithm, with min-char-rnn's names (Wxh = U0, Whh = W0, bh = b0, Why = V, by = c):

* the data walk: a pointer p starts at 0; before each iteration, if it is the first
  one or p + L + 1 >= len(data), the hidden state is reset to zeros and p = 0; the
  inputs are data[p:p+L], the targets data[p+1:p+L+1]; then p += L;
* a vanilla tanh RNN with a softmax over the vocabulary, one character per step,
  one-hot inputs; the loss of a window is sum_t -ln p_t(target_t);
* full BPTT inside the window, starting from the state carried from the previous
  window (the gradient never crosses the boundary);
* every gradient entry clipped to [-5, 5]; Adagrad: mem += g*g;
  theta -= lr g / sqrt(mem + 1e-8);
* weights N(0, 0.01^2), biases 0.

With B streams (char-rnn's layout) the text is cut into B equal contiguous parts
(the tail that does not divide is dropped); each stream walks its part with its own
pointer and state. The loss and the gradient are the means over the streams.
"""

import numpy as np

PARAM_NAMES = ("Wxh", "Whh", "bh", "Why", "by")


def init_weights(vocab_size, hidden_size, rng, std=0.01):
    """min-char-rnn's initialisation: weights N(0, std^2), biases zero."""
    return dict(
        Wxh=rng.standard_normal((hidden_size, vocab_size)) * std,
        Whh=rng.standard_normal((hidden_size, hidden_size)) * std,
        bh=np.zeros(hidden_size),
        Why=rng.standard_normal((vocab_size, hidden_size)) * std,
        by=np.zeros(vocab_size),
    )


def loss_fun(p, inputs, targets, hprev):
    """One window of one stream: the summed loss, the gradients, and the last state.

    inputs, targets: lists of character indices; hprev: (H,) state before the window.
    """
    Wxh, Whh, bh, Why, by = (p[k] for k in PARAM_NAMES)
    V = Wxh.shape[1]
    xs, hs, ps = {}, {-1: hprev.copy()}, {}
    loss = 0.0
    for t in range(len(inputs)):
        xs[t] = np.zeros(V)
        xs[t][inputs[t]] = 1.0
        hs[t] = np.tanh(Wxh @ xs[t] + Whh @ hs[t - 1] + bh)
        ys = Why @ hs[t] + by
        e = np.exp(ys - ys.max())
        ps[t] = e / e.sum()
        loss += -np.log(ps[t][targets[t]])
    grads = {k: np.zeros_like(p[k]) for k in PARAM_NAMES}
    dhnext = np.zeros_like(hprev)
    for t in reversed(range(len(inputs))):
        dy = ps[t].copy()
        dy[targets[t]] -= 1.0  # softmax + cross-entropy: dL/dz = p - y
        grads["Why"] += np.outer(dy, hs[t])
        grads["by"] += dy
        dh = Why.T @ dy + dhnext
        dhraw = (1.0 - hs[t] * hs[t]) * dh
        grads["bh"] += dhraw
        grads["Wxh"] += np.outer(dhraw, xs[t])
        grads["Whh"] += np.outer(dhraw, hs[t - 1])
        dhnext = Whh.T @ dhraw
    return loss, grads, hs[len(inputs) - 1]


def train(data, params, seq_length, iters, lr, batch=1, clip=5.0, decay=None):
    """Run min-char-rnn's loop for ``iters`` iterations from ``params`` (not modified).

    ``decay=None``: Adagrad (mem += g^2); a number: RMSprop as char-rnn writes it,
    mem = decay mem + (1 - decay) g^2. ``clip=None``: no clipping.

    data: list or array of character indices. Returns (losses (iters,), final params).
    """
    p = {k: np.array(v, dtype=np.float64) for k, v in params.items()}
    mem = {k: np.zeros_like(v) for k, v in p.items()}
    H = p["Whh"].shape[0]
    L = seq_length
    part = len(data) // batch
    streams = [list(data[b * part:(b + 1) * part]) for b in range(batch)]
    pointers = [0] * batch
    hprev = [np.zeros(H) for _ in range(batch)]
    losses = []
    for n in range(iters):
        total = 0.0
        grads = {k: np.zeros_like(v) for k, v in p.items()}
        for b in range(batch):
            if n == 0 or pointers[b] + L + 1 >= len(streams[b]):
                hprev[b] = np.zeros(H)
                pointers[b] = 0
            q = pointers[b]
            inputs = streams[b][q:q + L]
            targets = streams[b][q + 1:q + L + 1]
            loss, g, hprev[b] = loss_fun(p, inputs, targets, hprev[b])
            total += loss
            for k in grads:
                grads[k] += g[k]
            pointers[b] += L
        losses.append(total / batch)
        for k in p:
            g = grads[k] / batch
            if clip is not None:
                g = np.clip(g, -clip, clip)  # clip to mitigate exploding gradients
            if decay is None:
                mem[k] += g * g
            else:
                mem[k] = decay * mem[k] + (1.0 - decay) * g * g
            p[k] -= lr * g / np.sqrt(mem[k] + 1e-8)
    return np.array(losses), p
