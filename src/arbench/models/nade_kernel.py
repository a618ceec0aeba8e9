"""The fused CPU kernel for NADE training (Bernoulli outputs), behind the same `nll` as the
tensor formulation in `nade.py`, which stays the reference the tests compare it to and the GPU
path.

The tensor formulation materialises (B, D, H) activations and is memory-bound on a CPU; the
kernel in `nade_kernel.c` walks the positions of one image at a time and keeps only O(H) state.
It is compiled with the system C compiler on first use and cached by source hash; without a
compiler NADE falls back to the reference, with one warning.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
import threading
from functools import cache
from pathlib import Path

import torch

log = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("nade_kernel.c")
# -ffast-math lets the compiler vectorize the sigmoid loops (the kernel's inline exp) and
# reassociate their dot products. It also assumes no infinities: the kernel clamps every exp
# argument so that none arises.
COMPILE_FLAGS = ["-O3", "-march=native", "-ffast-math", "-fPIC", "-fopenmp"]
# Linked without -ffast-math: with it, GCC before 13 adds startup code that switches the loading
# thread to flushing denormals, a process-wide change nobody asked for.
LINK_FLAGS = ["-shared", "-fopenmp"]
FLOAT_P = ctypes.POINTER(ctypes.c_float)


def cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "arbench"


@cache
def library() -> ctypes.CDLL | None:
    """Compile (once per source, flags and CPU) and load the kernel; None if that fails."""
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        log.warning("no C compiler found: NADE uses the slower tensor formulation on CPU")
        return None
    cpuinfo = Path("/proc/cpuinfo")
    machine = cpuinfo.read_bytes()[:2048] if cpuinfo.exists() else platform.processor().encode()
    flags = " ".join([*COMPILE_FLAGS, *LINK_FLAGS]).encode()
    key = hashlib.sha256(SOURCE.read_bytes() + flags + machine).hexdigest()[:16]
    target = cache_dir() / f"nade_kernel-{key}.so"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".so")
        os.close(fd)
        try:
            for command in (
                [compiler, *COMPILE_FLAGS, "-c", str(SOURCE), "-o", f"{tmp}.o"],
                [compiler, *LINK_FLAGS, f"{tmp}.o", "-o", tmp, "-lm"],
            ):
                subprocess.run(command, check=True, capture_output=True, text=True)
            os.replace(tmp, target)
        except (OSError, subprocess.CalledProcessError) as error:
            Path(tmp).unlink(missing_ok=True)
            detail = getattr(error, "stderr", "") or error
            log.warning(
                "compiling the NADE kernel failed, using the tensor formulation: %s", detail
            )
            return None
        finally:
            Path(f"{tmp}.o").unlink(missing_ok=True)
    lib = ctypes.CDLL(str(target))
    lib.nade_bernoulli.restype = None
    lib.nade_bernoulli.argtypes = [ctypes.c_int] * 5 + [FLOAT_P] * 11
    lib.nade_workspace_floats.restype = ctypes.c_size_t
    lib.nade_workspace_floats.argtypes = [ctypes.c_int] * 5
    return lib


_workspaces = threading.local()


def workspace(floats: int) -> torch.Tensor:
    """Scratch memory for the kernel, kept between calls (one buffer per Python thread)."""
    buffer = getattr(_workspaces, "buffer", None)
    if buffer is None or buffer.numel() < floats:
        buffer = _workspaces.buffer = torch.empty(floats)
    return buffer


def applies(model, x: torch.Tensor) -> bool:
    """The kernel serves Bernoulli NADE on CPU unless the config asks for the reference."""
    from arbench.models.distributions import Bernoulli

    choice = model.config.get("kernel", "auto")
    if choice == "reference" or x.device.type != "cpu":
        return False
    if not isinstance(model.output, Bernoulli):
        return False
    if choice == "fused" and library() is None:
        raise RuntimeError("kernel: fused was asked for, but the NADE kernel could not be built")
    return library() is not None


def _pointer(tensor: torch.Tensor):
    return ctypes.cast(tensor.data_ptr(), FLOAT_P)


class FusedBernoulliNADE(torch.autograd.Function):
    """Per-image NLL; gradients are computed in the forward pass for a uniformly weighted sum."""

    @staticmethod
    def forward(ctx, values, weights, bias_hidden, out_weights, out_bias, relu):
        batch, dims = values.shape
        hidden = bias_hidden.shape[0]
        tensors = [
            t.detach().contiguous().float()
            for t in (values, weights, bias_hidden, out_weights, out_bias)
        ]
        nll = torch.empty(batch)
        wanted = any(ctx.needs_input_grad)
        grads = [torch.zeros_like(t) for t in tensors[1:]] if wanted else []
        pointers = [_pointer(g) for g in grads] if wanted else [None] * 4
        lib, threads = library(), torch.get_num_threads()
        scratch = workspace(lib.nade_workspace_floats(batch, dims, hidden, threads, int(wanted)))
        lib.nade_bernoulli(
            batch,
            dims,
            hidden,
            int(relu),
            threads,
            *(_pointer(t) for t in tensors),
            _pointer(nll),
            *pointers,
            _pointer(scratch),
        )
        ctx.grads = grads
        return nll

    @staticmethod
    def backward(ctx, grad_nll):
        scale = grad_nll[0]
        if not torch.all(grad_nll == scale):
            raise RuntimeError("the fused NADE kernel supports losses that weight images equally")
        return (None, *(g * scale for g in ctx.grads), None)


def nll(model, x: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """Per-image NLL (nats) of binary long x (B, D) under `order`, through the fused kernel."""
    if torch.equal(order, torch.arange(len(order))):
        values, weights, out_weights, out_bias = x.float(), model.W, model.V[:, 0], model.b[:, 0]
    else:  # gathering costs a copy of the weights each step, and a scatter of their gradients
        values, weights = x[:, order].float(), model.W[order]
        out_weights, out_bias = model.V[order, 0], model.b[order, 0]
    relu = model.config["activation"] == "relu"
    return FusedBernoulliNADE.apply(values, weights, model.c, out_weights, out_bias, relu)
