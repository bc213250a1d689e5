"""`onnxruntime`: the model exported to ONNX (onnx_export.py) and run by ONNX Runtime, inference
only: the CPU execution provider, or CUDA where `onnxruntime-gpu` is installed.

Threads follow the point exactly, so the comparison measures runtimes, not thread counts:
intra-op threads = the point's `threads` (torch gets the same through torch.set_num_threads),
inter-op threads = 1 with sequential execution, and spinning off for both pools
(`session.intra_op.allow_spinning` / `session.inter_op.allow_spinning` = "0"): a spinning idle
pool would keep its cores busy into the next measurement.

The timed step is what a user calling it from torch pays: the batch's tensors handed to ONNX
Runtime as numpy arrays (zero-copy for contiguous CPU tensors), the run, and the outputs wrapped
back into torch tensors in the structure the eager model returns (tuples, dicts). With the CUDA
provider inputs and outputs pass through host memory (no IO binding): that copy is in the step.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from torch import nn
from torch.utils import _pytree as pytree

from perfbench.backends.base import Backend, Prepared
from perfbench.backends.export_common import capture_call, export_skip_reason
from perfbench.backends.onnx_export import export_onnx
from perfbench.results.axes import Device, MemoryFormat

PACKAGES = ("onnx", "onnxscript", "onnxruntime")
INSTALL_HINT = "pip install -e '.[onnx]'"


def missing_packages() -> list[str]:
    """The packages of the `[onnx]` extra that cannot be imported here."""
    missing = []
    for name in PACKAGES:
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    return missing


def session_options(threads: int) -> Any:
    """ONNX Runtime session options with the thread setup the module docstring explains."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only: library code does not print
    return options


def providers_for(device: Device) -> list[str]:
    if device == Device.CUDA:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


class OrtModel:
    """Called like the eager model; runs the ONNX Runtime session on the same tensors."""

    def __init__(self, session: Any, call_kwargs: list[str], output: Any, device: str) -> None:
        self.session = session
        self.kw_order = call_kwargs  # flattened in this order, as at export
        self.kw_set = set(call_kwargs)
        self.input_names = [i.name for i in session.get_inputs()]
        # the TorchScript exporter drops inputs the graph never reads: feed only the kept ones
        self.feed_index = [(int(n.rsplit("_", 1)[1]), n) for n in self.input_names]
        leaves, self.out_spec = pytree.tree_flatten(output)
        self.out_template = list(leaves)  # non-tensor leaves are returned as eager gave them
        self.out_slots = [i for i, v in enumerate(leaves) if isinstance(v, torch.Tensor)]
        n_out = len(session.get_outputs())
        if n_out != len(self.out_slots):
            raise RuntimeError(
                f"the ONNX graph returns {n_out} tensors, the eager model {len(self.out_slots)}"
            )
        self.device = torch.device(device)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if kwargs.keys() != self.kw_set:
            raise TypeError(f"exported with keyword arguments {self.kw_order}, got {list(kwargs)}")
        leaves = pytree.tree_leaves((args, {k: kwargs[k] for k in self.kw_order}))
        tensors = [t for t in leaves if isinstance(t, torch.Tensor)]
        feeds = {n: tensors[i].detach().cpu().contiguous().numpy() for i, n in self.feed_index}
        outs = self.session.run(None, feeds)
        flat = list(self.out_template)
        for slot, array in zip(self.out_slots, outs, strict=True):
            flat[slot] = torch.from_numpy(array).to(self.device)
        return pytree.tree_unflatten(flat, self.out_spec)


def _applies(point: Any, scenario: Any) -> str | None:
    missing = missing_packages()
    if missing:
        return f"needs {', '.join(missing)} (the onnx extra): {INSTALL_HINT}"
    reason = export_skip_reason(point, "onnxruntime")
    if reason:
        return reason
    if point.memory_format != MemoryFormat.CONTIGUOUS:
        return "ONNX graphs are NCHW; ONNX Runtime picks its own layout: needs memory_format=contiguous"
    if point.device == Device.CUDA:
        import onnxruntime as ort

        if "CUDAExecutionProvider" not in ort.get_available_providers():
            return (
                "device=cuda needs onnxruntime-gpu (CUDAExecutionProvider); this onnxruntime has "
                f"{', '.join(ort.get_available_providers())}"
            )
    return None


def _prepare(model: nn.Module, point: Any, example_batch: Any, scenario: Any) -> Prepared:
    import onnxruntime as ort

    call = capture_call(model, scenario, example_batch)
    proto, info = export_onnx(model, call)
    start = time.perf_counter()
    options = session_options(point.threads)
    wanted = providers_for(point.device)
    session = ort.InferenceSession(proto.SerializeToString(), options, providers=wanted)
    provider = session.get_providers()[0]
    if provider != wanted[0]:  # ONNX Runtime falls back to CPU quietly: say it loudly instead
        raise RuntimeError(f"ONNX Runtime asked for {wanted[0]} but runs on {provider}")
    runner = OrtModel(session, list(call.kwargs), call.output, point.device.value)
    info.update(
        ort_session_s=round(time.perf_counter() - start, 3),
        ort_version=ort.__version__,
        ort_provider=provider,
        ort_intra_op_threads=options.intra_op_num_threads,
        ort_inter_op_threads=options.inter_op_num_threads,
        ort_spinning="off",
        ort_graph_optimization=str(options.graph_optimization_level).rsplit(".", 1)[-1],
        timed_step="torch -> numpy in, ONNX Runtime run, numpy -> torch out",
    )
    return Prepared(
        model=runner, info=info, changes=1, changes_what="graph exported and run by ONNX Runtime"
    )


BACKEND = Backend(
    name="onnxruntime",
    description="torch.onnx.export (torch.export-based) run by ONNX Runtime, threads matched",
    prepare=_prepare,
    applies=_applies,
)
