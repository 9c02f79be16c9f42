"""Every device a learner has: the reference makes each tensor where its inputs are, so it runs on CUDA, MPS or the
CPU without relying on a default device; code that pins a device is named; the device is chosen one way.

CI has no GPU, so the contract is checked on the meta device, whose tensors have shapes but no data: a tensor made
on the CPU that meets one fails, and an output made on the CPU shows. Calls that read values (an argmax, a draw)
cannot run there; the tensors they make are recorded on the CPU instead (Creations)."""

import ast
import contextlib
import inspect
import sys
import textwrap
import types
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from torch.overrides import TorchFunctionMode

from grader import devices
from grader.engine import goldens
from grader.engine.calls import GradeFailure, NotStarted, Ref, differences
from grader.engine.checking import run_call
from grader.engine.models import tiny
from grader.errors import KitError
from grader.learner import curriculum, pristine
from grader.paths import ROOT, TINY_MODELS

SOLUTIONS = ROOT / "solutions"
MODULES = sorted(p.stem for p in SOLUTIONS.glob("ex[0-9][0-9]_*.py"))

# What runs where. Every golden call not named below runs on meta, its inputs moved there, with no default device.
# Calls whose driver makes tensors of the grader's own on the default device (the KV cache that checks how it is
# called, int8 weights, exercise 18's positions, caches and tables), as the grader makes them within torch.device(D):
# on meta, within torch.device("meta").
GRADER_TENSORS = {"drive_kv_cache", "drive_layer_cached", "drive_forward_cached", "drive_int8_forward",
                  "drive_int8_forward_cached", "drive_static_cache", "drive_attention_mask", "drive_static_forward"}
# Calls that read values, which meta tensors do not have: run on the CPU, recording the tensors they make.
READS_VALUES = {
    "next_token": "int(logits.argmax())",
    "generate_uncached": "each token is chosen by value",
    "generate": "each token is chosen by value",
    "Chat": "each token is chosen by value",
    "top_k_filter": "topk's k is read from a tensor",
    "top_p_filter": "takes more candidates until they hold p",
    "probabilities": "calls the two filters",
    "sample": "a draw",
    "Sampler": "a draw",
    "decode_step": "its driver reads the chosen tokens back, as generation compares them",
}
# Calls run within torch.device above whose reference code is recorded on the CPU too: the int8 forward (the grader
# makes its int8 weights) has no other call that runs it without a default device.
ALSO_RECORDED = {"drive_int8_forward"}
# Not run here.
ELSEWHERE = {
    "ex01_tokenizer": "text and token ids, no tensors",
    "load_params": "a file loader",
    "load_weights": "a file loader: its tensors come from disk onto the CPU, and the grader moves them",
    "drive_ranks": "N processes: parallel_generate is recorded on one rank below, the rest is exercises 8-12's code",
}


def place(golden) -> str:
    """Where the checks run a golden call: "meta", "meta within torch.device", "recorded" or "elsewhere"."""
    call = golden.call
    if {call.module, call.function, call.driver} & set(ELSEWHERE):
        return "elsewhere"
    if call.function in READS_VALUES:
        return "recorded"
    return "meta within torch.device" if call.driver in GRADER_TENSORS else "meta"


def golden_calls(model_name: str, module: str) -> list:
    return goldens.read(tiny(model_name).golden_dir, module)


def label(golden, model_name: str) -> str:
    return f"{golden.call.function} ({model_name}, {golden.call.case})"


def inputs(golden, model_name: str, device) -> dict:
    """The call's inputs, weights resolved from the model, every tensor moved to device."""
    model = tiny(model_name)
    kwargs = {k: model.resolve(v) if isinstance(v, Ref) else v for k, v in golden.call.kwargs.items()}
    return devices.to_device(kwargs, device)


def holds_tensor(value) -> bool:
    if isinstance(value, dict):
        return any(holds_tensor(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(holds_tensor(v) for v in value)
    return isinstance(value, torch.Tensor)


def on_meta(target, golden, model_name: str, within_context: bool) -> str | None:
    """Run a golden call on meta; what went wrong, or None. A call fed tensors must return its tensors on meta; one
    fed none (causal_mask, precompute_freqs_cis) is asked for meta with its device keyword, if it has one."""
    kwargs = inputs(golden, model_name, "meta")
    expected = "meta" if within_context or holds_tensor(kwargs) else "cpu"
    if expected == "cpu" and golden.call.driver is None and "device" in inspect.signature(target).parameters:
        kwargs["device"], expected = "meta", "meta"
    try:
        with torch.device("meta") if within_context else contextlib.nullcontext():
            out = run_call(target, golden.call, kwargs, label(golden, model_name))
    except (GradeFailure, NotStarted) as e:
        return f"{label(golden, model_name)}: {e}"
    problem = devices.pinned_device_problem(out, expected)
    return f"{label(golden, model_name)}: {problem}" if problem else None


@pytest.mark.parametrize("module", MODULES)
@pytest.mark.parametrize("model_name", TINY_MODELS)
def test_the_reference_runs_on_meta_without_a_default_device(model_name, module):
    reference = __import__(f"solutions.{module}", fromlist=["_"])
    problems, ran = [], 0
    for golden in golden_calls(model_name, module):
        where = place(golden)
        if where.startswith("meta"):
            ran += 1
            problems.append(on_meta(getattr(reference, golden.call.function), golden, model_name,
                                    where == "meta within torch.device"))
    assert [p for p in problems if p] == []
    assert ran or module in ("ex01_tokenizer", "ex13_sampling")  # no tensors; every call reads values


def test_the_kv_cache_is_made_on_the_device_it_is_given():
    from solutions.ex12_generation import KVCache

    cache = KVCache(2, 8, 2, 4, torch.bfloat16, device="meta")
    new = torch.ones(3, 2, 4, dtype=torch.bfloat16, device="meta")  # [seq, n_kv_heads, head_dim]
    k, v = cache.update(1, 0, new, new)
    assert (k.device.type, v.device.type, k.shape, k.dtype) == ("meta", "meta", (3, 2, 4), torch.bfloat16)
    # five positional arguments, as the grader calls it: the default device
    assert KVCache(2, 8, 2, 4, torch.float32).cache_k[0].device.type == "cpu"


# The calls that read values: the tensors the reference makes, recorded on the CPU.

FACTORIES = {torch.tensor, torch.as_tensor, torch.zeros, torch.ones, torch.empty, torch.full, torch.arange,
             torch.linspace, torch.logspace, torch.eye, torch.rand, torch.randn, torch.randint, torch.randperm,
             torch.empty_strided, torch.scalar_tensor}


def pinned(func, args, kwargs) -> str | None:
    """What is wrong with one torch call as code that must follow its inputs' device, or None."""
    if func in FACTORIES:
        device = kwargs.get("device")
        if device is None:
            return f"torch.{func.__name__} without a device (it lands on the default device, not where the inputs are)"
        if isinstance(device, str):
            return f"torch.{func.__name__}(device={device!r}) pins a device"
    if func in (torch.Tensor.cpu, torch.Tensor.cuda):
        return f".{func.__name__}() pins a device"
    if func is torch.Tensor.to and any(isinstance(a, str) for a in (*args[1:], kwargs.get("device"))):
        return ".to(...) a device by name pins it"
    return None


class Creations(TorchFunctionMode):
    """Within the block, records each tensor that code in folder makes without a device, or on a device it names
    (device="cpu", .cpu(), .to("cpu")): self.found, as 'file:line: what'. A torch.device object (x.device) is
    following an input and passes."""

    def __init__(self, folder: Path = SOLUTIONS):
        super().__init__()
        self.folder, self.found = folder, []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        what = pinned(func, args, kwargs)
        frame = sys._getframe(1)
        while frame is not None and frame.f_code.co_filename.endswith("torch/overrides.py"):
            frame = frame.f_back  # a torch function written in Python: its caller
        if what and frame is not None and Path(frame.f_code.co_filename).parent == self.folder:
            self.found.append(f"{Path(frame.f_code.co_filename).name}:{frame.f_lineno}: {what}")
        return func(*args, **kwargs)


def test_calls_that_read_values_make_their_tensors_where_their_inputs_are():
    """One call of each such function (tiny-llama3, float32, at most 3 new tokens: what is made is the same for all)."""
    found, ran = [], set()
    for module in MODULES:
        reference = __import__(f"solutions.{module}", fromlist=["_"])
        for golden in golden_calls("tiny-llama3", module):
            call = golden.call
            if (place(golden) != "recorded" and call.driver not in ALSO_RECORDED) or call.case.endswith("bf16") \
                    or (module, call.function) in ran:
                continue
            kwargs = inputs(golden, "tiny-llama3", "cpu")
            if "max_new_tokens" in kwargs:
                kwargs["max_new_tokens"] = min(kwargs["max_new_tokens"], 3)
            with Creations() as made:
                run_call(getattr(reference, call.function), call, kwargs, label(golden, "tiny-llama3"))
            found += [f"{label(golden, 'tiny-llama3')}: {f}" for f in made.found]
            ran.add((module, call.function))
    assert found == []
    assert {function for _, function in ran} == set(READS_VALUES) | {"forward"}


@pytest.fixture
def one_rank():
    """A torch.distributed group of this process alone (gloo)."""
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        yield
    finally:
        dist.destroy_process_group()


def test_parallel_generate_makes_its_tensors_where_the_weights_are(one_rank):
    from solutions.ex17_tensor_parallel import parallel_generate

    model = tiny("tiny-llama3")
    with Creations() as made:
        steps = list(parallel_generate([128000, 1820, 4320], model.weights("float32"), model.checkpoint.args, 3))
    assert made.found == [] and len(steps) == 3


def test_the_recorder_names_a_tensor_made_without_a_device_and_a_pinned_one():
    here = Path(__file__).parent
    x = torch.ones(3)
    with Creations(here) as made:
        torch.zeros(3, device=x.device)  # follows x
        x.to(x.device), x.to(torch.float64)
        torch.tensor([1, 2])
        torch.zeros(3, device="cpu")
        x.cpu()
        x.to("cpu")
    named = [f.split(": ", 1)[1].split(" ")[0] for f in made.found]
    assert named == ["torch.tensor", "torch.zeros(device='cpu')", ".cpu()", ".to(...)"]


# The correct variants, graded as a learner's code is: on meta, within torch.device("meta").

def correct_variants() -> dict[str, tuple[str, str]]:
    """name -> (exercise module, the module's whole source) of every correct variant. The one place that knows where
    they are kept."""
    import plants

    return {name: (p.module, p.planted()) for name, p in plants.variants().items()}


def load(module: str, source: str, name: str) -> types.ModuleType:
    """source as a module of the solutions package: its relative imports are the reference's other exercises."""
    mod = types.ModuleType(f"solutions.{module}")
    mod.__package__ = "solutions"
    exec(compile(source, f"<{name}>", "exec"), mod.__dict__)
    return mod


@pytest.mark.parametrize("name", sorted(correct_variants()))
def test_a_correct_variant_runs_on_meta_as_the_grader_runs_it(name):
    module, source = correct_variants()[name]
    variant = load(module, source, name)
    problems = [on_meta(getattr(variant, g.call.function), g, "tiny-llama3", True)
                for g in golden_calls("tiny-llama3", module) if place(g).startswith("meta")]
    assert [p for p in problems if p] == []


# Code that pins a device is named.

FORWARD_PINNED = '''
def forward(tokens, weights, args, cache=None, start_pos=0):
    seqlen = tokens.shape[0]
    h = embed(tokens, weights["tok_embeddings.weight"])
    freqs_cis = precompute_freqs_cis(args.head_dim, start_pos + seqlen, args.rope_theta, args.rope_scale_factor)
    mask = causal_mask(seqlen, start_pos, device="cpu") if seqlen > 1 else None
    for layer_id in range(args.n_layers):
        h = transformer_block(h, weights, layer_id, args, freqs_cis[start_pos:], mask, cache, start_pos)
    h = rms_norm(h, weights["norm.weight"], args.norm_eps)
    return linear(h, weights["output.weight"]).float()
'''
FORWARD_CPU_MIDWAY = FORWARD_PINNED.replace('device="cpu"', "device=tokens.device").replace(
    'args.norm_eps)\n', 'args.norm_eps).cpu()\n')
MASK_PINNED = '''
def causal_mask(seqlen, start_pos=0, device=None):
    mask = torch.full((seqlen, seqlen), float("-inf"), device="cpu").triu(diagonal=1)
    return torch.hstack([torch.zeros(seqlen, start_pos, device="cpu"), mask])
'''


def with_source(module: str, source: str) -> types.ModuleType:
    return load(module, (SOLUTIONS / f"{module}.py").read_text() + textwrap.dedent(source), f"{module} planted")


def graded_on_meta(fn, golden):
    """fn on the golden inputs, as the grader runs it on a device: (output, None) or (None, the error)."""
    with torch.device("meta"):
        kwargs = inputs(golden, "tiny-llama3", "meta")
        try:
            return fn(**kwargs), None
        except Exception as e:  # what torch raises is the point
            return None, e


@pytest.mark.parametrize("source", [FORWARD_PINNED, FORWARD_CPU_MIDWAY], ids=["device=cpu", ".cpu() midway"])
def test_a_forward_that_pins_the_cpu_is_named(source):
    golden = next(g for g in golden_calls("tiny-llama3", "ex11_forward") if g.call.function == "forward")
    out, error = graded_on_meta(with_source("ex11_forward", source).forward, golden)
    assert out is None and error is not None
    message = devices.pinned_device_problem(error, "meta")
    assert message and "\n" not in message and "cpu" in message and "device=x.device" in message, (message, error)


def test_an_output_left_on_the_cpu_is_named():
    golden = next(g for g in golden_calls("tiny-llama3", "ex07_attention") if g.call.function == "causal_mask")
    out, error = graded_on_meta(with_source("ex07_attention", MASK_PINNED).causal_mask, golden)
    assert error is None and out.device.type == "cpu"
    message = devices.pinned_device_problem(out, "meta")
    assert message and "returned a tensor on cpu" in message


def test_correct_code_and_other_errors_are_not_named():
    golden = next(g for g in golden_calls("tiny-llama3", "ex11_forward") if g.call.function == "forward")
    from solutions.ex11_forward import forward

    out, error = graded_on_meta(forward, golden)
    assert error is None and devices.pinned_device_problem(out, "meta") is None
    assert devices.pinned_device_problem({"a": [out, (out, 1)]}, "meta") is None
    try:
        torch.ones(2, 3) @ torch.ones(2, 3)
    except RuntimeError as e:
        assert devices.pinned_device_problem(e, "cpu") is None
    assert devices.pinned_device_problem(ValueError("anything"), "cuda") is None


@pytest.mark.parametrize("text, device, other", [
    ("Expected all tensors to be on the same device, but found at least two devices, cuda:0 and cpu!", "cuda", "cpu"),
    ("Expected all tensors to be on the same device, but got mat2 is on cpu, different from other tensors on cuda:0 "
     "(when checking argument in method wrapper_CUDA_mm)", "cuda", "cpu"),
    ("Placeholder storage has not been allocated on MPS device!", "mps", "cpu"),
    ("Tensor on device cpu is not on the expected device meta!", "meta", "cpu"),
    ("Expected all tensors to be on the same device, but found at least two devices, cuda:0 and cpu!", "cpu", "cuda:0"),
])
def test_torchs_errors_where_devices_meet_are_named(text, device, other):
    """The wording of torch's checks (CUDA's, MPS's, the meta device's): each names the device the code pinned."""
    message = devices.pinned_device_problem(RuntimeError(text), device)
    assert message and f"to {other} while grading on {device}" in message


def test_a_generator_on_another_device_is_named():
    message = devices.pinned_device_problem(RuntimeError("Expected a 'cuda' device type for generator but found 'cpu'"),
                                            "cuda")
    assert message and "probs.to(generator.device)" in message


# The fallbacks for kernels a device lacks, checked here on the CPU: a tensor whose .device names that device takes
# the reference's path for it, and must pass the graded comparison with the CPU goldens.

class Pretending(torch.Tensor):
    """A CPU tensor whose .device names another device (set as pretend), so that code choosing its path by
    x.device.type takes that device's path, computed here."""

    @property
    def device(self):
        return torch.device(self.__dict__.get("pretend", "cpu"))


def pretending(t: torch.Tensor, device: str) -> torch.Tensor:
    p = t.as_subclass(Pretending)
    p.pretend = device
    return p


class Calls(TorchFunctionMode):
    """Within the block, the torch functions called: self.made."""

    def __init__(self):
        super().__init__()
        self.made = set()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.made.add(func)
        return func(*args, **(kwargs or {}))


def test_rope_on_mps_rotates_by_cos_and_sin_within_the_graded_tolerance():
    from solutions.ex06_rope import apply_rope

    for model_name in TINY_MODELS:
        for g in (g for g in golden_calls(model_name, "ex06_rope") if g.call.function == "apply_rope"):
            with Calls() as calls:
                got = apply_rope(pretending(g.call.kwargs["x"], "mps"), g.call.kwargs["freqs_cis"])
            assert torch.view_as_complex not in calls.made  # the path for MPS ran
            got = got.as_subclass(torch.Tensor)
            assert differences({"out": got}, g.expected, g.call.tolerance) == [], label(g, model_name)


def test_int8_off_the_cpu_is_the_dequantized_product_within_the_graded_tolerance():
    from solutions.ex16_int8 import Int8Weight, int8_linear

    for model_name in TINY_MODELS:
        for g in (g for g in golden_calls(model_name, "ex16_int8") if g.call.function == "int8_linear"):
            kw = g.call.kwargs
            with Calls() as calls:
                got = int8_linear(pretending(kw["x"].clone(), "cuda"), Int8Weight(kw["q"].clone(), kw["scale"].clone()))
            assert torch._weight_int8pack_mm not in calls.made  # the path for other devices ran
            got = got.as_subclass(torch.Tensor)
            assert differences({"out": got}, g.expected, g.call.tolerance) == [], label(g, model_name)


# The device is chosen one way.

def test_the_device_is_the_option_else_the_environment_else_the_cpu(monkeypatch):
    monkeypatch.delenv("LLAMA3_KIT_DEVICE", raising=False)
    assert devices.choice() == "cpu"
    monkeypatch.setenv("LLAMA3_KIT_DEVICE", "cpu")
    assert devices.choice() == "cpu"
    monkeypatch.setenv("LLAMA3_KIT_DEVICE", "tpu")
    with pytest.raises(KitError, match="LLAMA3_KIT_DEVICE"):
        devices.choice()
    assert devices.choice("cpu") == "cpu"  # the option first


def test_auto_is_cuda_then_mps_then_the_cpu():
    expected = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    assert devices.choice("auto") == expected


@pytest.mark.parametrize("name", ["gpu", "cuda:x", "auto:1", "meta",
                                  *(["cuda"] if not torch.cuda.is_available() else []),
                                  *(["mps"] if not torch.backends.mps.is_available() else [])])
def test_a_device_that_cannot_be_used_is_one_line_that_says_what_to_do(name):
    with pytest.raises(KitError) as e:
        devices.choice(name)
    assert "\n" not in str(e.value) and name in str(e.value) and ("use" in str(e.value) or "install" in str(e.value))


def test_on_a_device_tensors_made_without_one_land_there_and_tf32_is_restored():
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    with devices.on("meta"):
        assert torch.zeros(2).device.type == "meta"
    assert torch.zeros(2).device.type == "cpu"
    assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == before
    assert devices.peak_memory("cpu") is None
    devices.synchronize("cpu")


def test_to_device_moves_every_tensor_keeps_dtypes_and_ties():
    from solutions.ex16_int8 import Int8Weight

    t = torch.ones(2, dtype=torch.bfloat16)
    moved = devices.to_device({"a": t, "b": t, "w": Int8Weight(torch.zeros(2, 2, dtype=torch.int8), torch.ones(2)),
                               "list": [1, (t, "x")], "n": None}, "meta")
    assert moved["a"].device.type == "meta" and moved["a"].dtype == torch.bfloat16 and moved["a"] is moved["b"]
    assert isinstance(moved["w"], Int8Weight) and (moved["w"].q.dtype, moved["w"].q.device.type) == (torch.int8, "meta")
    assert moved["list"][0] == 1 and moved["list"][1][0].device.type == "meta" and moved["list"][1][1] == "x"
    assert moved["n"] is None and t.device.type == "cpu"


# The stubs take the device keywords the reference takes.

def test_the_stubs_take_the_same_device_keywords_as_the_reference():
    def signatures(tree: ast.Module) -> dict[str, list[str]]:
        """name -> parameters of each top-level function, and of each class's __init__."""
        out = {}
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                fn = next((n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None) \
                    if isinstance(node, ast.ClassDef) else node
                if fn is not None:
                    out[node.name] = [a.arg for a in fn.args.args + fn.args.kwonlyargs]
        return out

    checked = 0
    for e in curriculum.exercises():
        ours = signatures(ast.parse((SOLUTIONS / e.stub).read_text()))
        stub = signatures(ast.parse(pristine.read(e.stub)))
        for name, params in ours.items():
            if "device" in params:
                assert stub.get(name) == params, f"{e.stub}: {name}"
                checked += 1
    assert checked == 6  # causal_mask, precompute_freqs_cis, KVCache; StaticCache, rope_tables, compile_step


# The grader on a device: golden inputs and weights go there, the code under test runs within torch.device(D), and
# what it returns must be there. (Correct code on a real GPU is graded by the gpu tests; meta tensors have no values
# to compare, so only the refusals show here.)

def _golden(module: str, function: str, case: str):
    return next(g for g in goldens.read(tiny("tiny-llama3").golden_dir, module)
                if g.call.function == function and g.call.case == case)


def test_grading_on_a_device_names_an_output_left_on_the_cpu():
    from grader.engine.checking import check

    def rms_norm(x, weight, eps):  # returns its result on the CPU, wherever its inputs are
        return torch.zeros(x.shape, dtype=x.dtype, device="cpu")

    with pytest.raises(GradeFailure) as failure:
        check(rms_norm, _golden("ex04_rms_norm", "rms_norm", "prompt42"), tiny("tiny-llama3"), "meta")
    assert "rms_norm (tiny-llama3, prompt42): " in str(failure.value) and "cpu" in str(failure.value)


def test_grading_on_a_device_names_code_that_pins_the_cpu():
    from grader.engine.checking import check

    def attention(q, k, v, mask):
        scores = q @ k.transpose(-2, -1) + torch.zeros(q.shape[0], k.shape[0], device="cpu")
        return scores @ v

    with pytest.raises(GradeFailure) as failure:
        check(attention, _golden("ex07_attention", "attention", "prompt42_head0"), tiny("tiny-llama3"), "meta")
    message = str(failure.value)
    assert ".attention: your code made or moved a tensor to cpu while grading on meta" in message, message
    assert devices.pinned_device_problem(RuntimeError("Expected all tensors to be on the same device, but found at "
                                                      "least two devices, meta and cpu!"), "meta") in message


def test_the_weights_go_to_the_device_once_in_their_own_dtype():
    model = tiny("tiny-llama3")
    own = model.weights("", "meta")
    assert own is model.weights("", "meta") and all(w.device.type == "meta" for w in own.values())
    assert model.weights("float32", "meta")["norm.weight"].dtype == torch.float32


def test_pytest_on_a_gpu_that_is_not_there_is_one_line():
    import subprocess

    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(ROOT / "exercises"),
                          "--device", "cuda"], capture_output=True, text=True, cwd=ROOT)
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert out.returncode == 4, out.stdout + out.stderr
    assert "--device asks for cuda" in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
