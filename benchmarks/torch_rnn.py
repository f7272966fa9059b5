"""PyTorch on the CPU: an explicit cell loop with autograd, and torch.nn.RNN.

Both train with the loss of docs/math.md (sum over steps, mean over the batch; BCE from
logits for the sigmoid head, cross-entropy for softmax), global-norm clipping and
SGD or Adam, from the same initial weights and data as fastrnn, in float64.
torch.nn.RNN offers tanh and relu units only, so with sigmoid hidden units only the
cell loop runs.
"""

import numpy as np
import torch


class _Base:
    def __init__(self, params, activation, head, lr, optimizer="sgd", clip=None, batch=1, threads=None):
        self.activation, self.head, self.lr, self.clip, self.batch = activation, head, lr, clip, batch
        self.threads = threads  # torch's intra-op threads while training (None: leave torch's setting)
        self.threads_used = None
        self.tensors = {k: torch.tensor(np.asarray(v), dtype=torch.float64, requires_grad=True) for k, v in params.items()}
        self._setup()
        weights = list(self._trainable())
        self.opt = torch.optim.SGD(weights, lr=lr) if optimizer == "sgd" else torch.optim.Adam(weights, lr=lr, betas=(0.9, 0.999), eps=1e-8)

    def _loss_and_logits(self, x, y):
        logits = self._logits(x)  # (B, T, O)
        if self.head == "sigmoid":
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y, reduction="sum") / x.shape[0]
        else:
            loss = -(y * torch.log_softmax(logits, dim=2)).sum() / x.shape[0]
        return loss, logits

    def train(self, X, Y, n):
        before = torch.get_num_threads()
        if self.threads is not None:
            torch.set_num_threads(self.threads)
        self.threads_used = torch.get_num_threads()  # read back, not assumed
        try:
            return self._train(X, Y, n)
        finally:
            torch.set_num_threads(before)

    def _train(self, X, Y, n):
        B = self.batch
        X = torch.from_numpy(np.ascontiguousarray(X))
        Y = torch.from_numpy(np.ascontiguousarray(Y))
        errors = np.zeros(n * B, dtype=np.int64)
        weights = list(self._trainable())
        for it in range(n):
            x, y = X[it * B : (it + 1) * B], Y[it * B : (it + 1) * B]
            self.opt.zero_grad(set_to_none=True)
            loss, logits = self._loss_and_logits(x, y)
            loss.backward()
            if self.clip:
                torch.nn.utils.clip_grad_norm_(weights, self.clip)
            self.opt.step()
            with torch.no_grad():
                if self.head == "sigmoid":
                    wrong = ((logits > 0) != (y > 0.5)).any(dim=2)
                else:
                    wrong = logits.argmax(dim=2) != y.argmax(dim=2)
                errors[it * B : (it + 1) * B] = wrong.sum(dim=1).numpy()
        return errors


class CellLoop(_Base):
    """h_t = f(x_t U^T + h_{t-1} W^T + b) in a Python loop over time; autograd does BPTT."""

    name = "torch cell loop"

    def _setup(self):
        self.f = {"tanh": torch.tanh, "sigmoid": torch.sigmoid, "relu": torch.relu}[self.activation]

    def _trainable(self):
        return [self.tensors[k] for k in ("U0", "W0", "b0", "V", "c")]

    def _logits(self, x):
        U, W, b, V, c = self._trainable()
        h = torch.zeros(x.shape[0], W.shape[0], dtype=torch.float64)
        out = []
        for t in range(x.shape[1]):
            h = self.f(x[:, t] @ U.T + h @ W.T + b)
            out.append(h @ V.T + c)
        return torch.stack(out, dim=1)

    def params(self):
        return {k: v.detach().numpy().copy() for k, v in self.tensors.items()}


class NNRNN(_Base):
    """torch.nn.RNN (one layer, no second bias) and a linear output layer."""

    name = "torch nn.RNN"

    def _setup(self):
        if self.activation not in ("tanh", "relu"):
            raise ValueError("torch.nn.RNN supports tanh and relu only")
        U, W, b = (self.tensors[k].detach() for k in ("U0", "W0", "b0"))
        self.rnn = torch.nn.RNN(U.shape[1], W.shape[0], nonlinearity=self.activation, bias=True, batch_first=True, dtype=torch.float64)
        with torch.no_grad():
            self.rnn.weight_ih_l0.copy_(U)
            self.rnn.weight_hh_l0.copy_(W)
            self.rnn.bias_ih_l0.copy_(b)
        self.rnn.bias_hh_l0.requires_grad_(False)  # fastrnn has one bias per layer
        with torch.no_grad():
            self.rnn.bias_hh_l0.zero_()

    def _trainable(self):
        return [self.rnn.weight_ih_l0, self.rnn.weight_hh_l0, self.rnn.bias_ih_l0, self.tensors["V"], self.tensors["c"]]

    def _logits(self, x):
        hs, _ = self.rnn(x)
        return hs @ self.tensors["V"].T + self.tensors["c"]

    def params(self):
        return {"U0": self.rnn.weight_ih_l0.detach().numpy().copy(), "W0": self.rnn.weight_hh_l0.detach().numpy().copy(),
                "b0": self.rnn.bias_ih_l0.detach().numpy().copy(), "V": self.tensors["V"].detach().numpy().copy(),
                "c": self.tensors["c"].detach().numpy().copy()}


def loss_and_grads_fn(params, activation, head):
    """A (X, Y) -> None callable running one forward + backward of torch.nn.RNN (throughput).

    The second value, called after a step, returns that step's gradients as numpy arrays
    under fastrnn's names (U0, W0, b0, V, c), so that the grid can check them.
    """
    trainer = NNRNN(params, activation, head, lr=0.0)

    def step(X, Y):
        trainer.opt.zero_grad(set_to_none=True)
        loss, _ = trainer._loss_and_logits(X, Y)
        loss.backward()

    def grads():
        return dict(zip(("U0", "W0", "b0", "V", "c"), (w.grad.detach().numpy().copy() for w in trainer._trainable())))

    return step, grads


def threads():
    return torch.get_num_threads()
