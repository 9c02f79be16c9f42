"""Exercise 18, decoding at the speed of memory: golden calls, drivers and named mistakes. What makes a decode step
static is graded by running it compiled (grader/specs/compiled.py) and comparing what dynamo did with what it does to
the reference: no graph break, nothing compiled after the first call; and by counting the RoPE tables built."""

import inspect

import torch

from solutions import ex07_attention
from solutions.ex18_static_decode import StaticCache, compile_step, decode_step, forward, rope_tables

from ..engine import impl as impls
from ..engine.calls import Call, Ref, generation
from ..engine.compare import GradeFailure
from ..i18n import say
from ..paths import TINY_MODELS
from .checked_cache import chunks_of
from .compiled import counting_compile
from .ex11_forward import generation_inputs, new_tokens
from .inputs import GENERATION_PROMPT_TOKENS
from .outputs import sampled
from .spec import Spec, driver

spec = Spec("ex18_static_decode")
DECODE_STEPS = 32  # decode steps run compiled: a recompile per position shows at every one of them
COMPILED_NEW_TOKENS = 4  # of the compiled generate: three decode steps show a recompile per token
SPARE = 8  # cache positions beyond those a forward case writes, holding stale values the mask must hide
ROPE_BUILDERS = ("rope_tables", "precompute_freqs_cis")  # the module's functions that build RoPE tables


@spec.cases
def calls(model, acts) -> list[Call]:
    """The cache (a prefill, a step and a chunk that fills it to its last position) and the mask, compiled over
    positions on the first prompt; RoPE tables of released shapes and of the model; the rotation of each prompt's q and
    k; forward through a cache with stale values beyond what it wrote, and filled to its last position; on the tiny
    models, DECODE_STEPS compiled decode steps filling their cache and compile_step's options; generate from each
    short prompt eagerly, with a stop token met at the fourth step, and on the first tiny model once compiled,
    filling its cache."""
    m, args = spec.module, model.checkpoint.args
    name0, a0 = next(iter(acts.items()))

    def cache(a, counted):
        return {"n_layers": args.n_layers, "max_seq_len": len(a.ids) + 4, "n_kv_heads": args.n_kv_heads,
                "head_dim": args.head_dim, "dtype": str(a.k_rot.dtype).removeprefix("torch."), "k_prefill": a.k_rot,
                "v_prefill": a.v, "k_steps": a.k_rot[-4:] * 0.5, "v_steps": a.v[-4:] * 0.5, "counted": counted}

    out = [Call(m, "StaticCache", name, cache(a, a is a0), driver=drive_static_cache) for name, a in acts.items()]
    out += [Call(m, "attention_mask", "positions", {"prompt_len": len(a0.ids), "max_seq_len": len(a0.ids) + 4},
                 tolerance="float32", driver=drive_attention_mask)]

    def table(head_dim, max_seq_len, theta, scale_factor):
        return {"head_dim": head_dim, "max_seq_len": max_seq_len, "theta": theta, "scale_factor": scale_factor}

    out += [Call(m, "rope_tables", "llama3-8b", table(128, 64, 500000.0, None), ("cos", "sin"), "float32 angles"),
            Call(m, "rope_tables", "llama3.2-1b", table(64, 64, 500000.0, 32.0), ("cos", "sin"), "float32 angles"),
            Call(m, "rope_tables", "model", table(args.head_dim, len(a0.ids) + DECODE_STEPS, args.rope_theta,
                                                  args.rope_scale_factor), ("cos", "sin"), "float32 angles")]
    rotations = [(f"{name}_{which}", x, a) for name, a in acts.items() for which, x in (("q", a.q), ("k", a.k))]
    out += [Call(m, "apply_rotary", case, {"x": x.float(), "cos": a.freqs_cis.real, "sin": a.freqs_cis.imag},
                 tolerance="float32") for case, x, a in rotations]
    if model.is_tiny:
        out += [Call(m, "apply_rotary", f"{case}_bf16", {"x": x, "cos": a.freqs_cis.real, "sin": a.freqs_cis.imag},
                     tolerance="bf16 rotation") for case, x, a in rotations]

    def fwd(a, dtype, chunks, spare):
        return {"tokens": a.tokens, "weights": Ref("weights", dtype=dtype), "args": Ref("args"), "chunks": chunks,
                "max_seq_len": len(a.ids) + spare}

    out += [Call(m, "forward", name, fwd(a, "float32", [["prefill", len(a.ids)]], 0), tolerance="float32 layers",
                 driver=drive_static_forward) for name, a in acts.items()]
    out += [Call(m, "forward", case, fwd(a0, "float32", chunks, SPARE), tolerance="float32 layers",
                 driver=drive_static_forward) for case, chunks in a0.cached.items()]
    if model.is_tiny:
        out += [Call(m, "forward", f"{name0}_bf16", fwd(a0, "", a0.cached["cached_decode"], SPARE),
                     tolerance="bf16 attention", driver=drive_static_forward)]
        steps = {"prompt_ids": a0.ids, "weights": Ref("weights", dtype="float32"), "args": Ref("args"),
                 "steps": DECODE_STEPS}
        out += [Call(m, "decode_step", f"{name0}_{DECODE_STEPS}_steps", steps, tolerance="float32 layers",
                     driver=drive_decode_steps),
                Call(m, "compile_step", "cpu_and_cuda", {"devices": ["cpu", "cuda"]}, driver=drive_compile_step)]
    n_new = new_tokens(model)
    out += [Call(m, "generate", name, {**generation_inputs(model, a.ids, n_new), "counted": False},
                 tolerance="float32 layers", driver=drive_static_generate)
            for name, a in acts.items() if len(a.ids) <= GENERATION_PROMPT_TOKENS]
    out += [Call(m, "generate", "stop_token", {**generation_inputs(model, a0.ids, n_new, a0.forced_stop),
                                               "counted": False}, tolerance="float32 layers",
                 driver=drive_static_generate)]
    if model.is_tiny:
        out += [Call(m, "generate", f"{name0}_bf16", {**generation_inputs(model, a0.ids, n_new, dtype=""),
                                                      "counted": False},
                     tolerance="bf16 attention", driver=drive_static_generate)]
    if model.name == TINY_MODELS[0]:  # compiled (once: compiling costs a second), with a cache its last step fills
        n = COMPILED_NEW_TOKENS
        full = {**generation_inputs(model, a0.ids, n), "max_seq_len": len(a0.ids) + n - 1, "counted": True}
        out += [Call(m, "generate", f"{name0}_compiled", full, tolerance="float32 layers",
                     driver=drive_static_generate)]
    return out


def stale_cache(args, max_seq_len: int, dtype: torch.dtype, device: torch.device) -> StaticCache:
    """The reference's cache, its buffers holding seeded values as if from an earlier conversation: whatever a forward
    has not written must be hidden by its mask."""
    cache = StaticCache(args.n_layers, max_seq_len, args.n_kv_heads, args.head_dim, dtype, device=device)
    g = torch.Generator().manual_seed(18)
    for buffer in cache.cache_k + cache.cache_v:
        buffer.copy_(torch.randn(buffer.shape, generator=g, device="cpu") * 4)
    return cache


def cache_and_tables(weights, args, max_seq_len: int) -> tuple[StaticCache, tuple[torch.Tensor, torch.Tensor]]:
    """A stale cache and the reference's RoPE tables of max_seq_len positions, in the weights' dtype, where they are."""
    embeddings = weights["tok_embeddings.weight"]
    cache = stale_cache(args, max_seq_len, embeddings.dtype, embeddings.device)
    return cache, rope_tables(args.head_dim, max_seq_len, args.rope_theta, args.rope_scale_factor,
                              device=embeddings.device)


def compilable(fn):
    """The code under test itself, not the grader's guard around it, for torch.compile."""
    return inspect.unwrap(fn)


def positions(start: int, end: int, device: torch.device) -> torch.Tensor:
    return torch.arange(start, end, device=device)  # [end - start]


@driver
def drive_static_cache(StaticCache, n_layers, max_seq_len, n_kv_heads, head_dim, dtype, k_prefill, v_prefill,
                       k_steps, v_steps, counted):
    """Fill layer n_layers - 1 with a prompt's keys and values at positions 0.., one step, then a chunk up to the last
    position; what update gave each time. counted: also update a fresh cache one position at a time, compiled."""
    cache = StaticCache(n_layers, max_seq_len, n_kv_heads, head_dim, getattr(torch, dtype))
    layer, start = n_layers - 1, k_prefill.shape[0]
    out = {}
    for name, first, k, v in (("prefill", 0, k_prefill, v_prefill), ("step", start, k_steps[:1], v_steps[:1]),
                              ("chunk", start + 1, k_steps[1:], v_steps[1:])):
        keys, values = cache.update(layer, positions(first, first + k.shape[0], k.device), k, v)
        out[f"keys_after_{name}"], out[f"values_after_{name}"] = keys.clone(), values.clone()  # views of its buffers
    if counted:
        fresh = StaticCache(n_layers, max_seq_len, n_kv_heads, head_dim, getattr(torch, dtype))
        with counting_compile() as compiled:
            update = torch.compile(fresh.update)
            for i in range(len(k_steps)):
                update(layer, positions(start + i, start + i + 1, k_steps.device), k_steps[i:i + 1], v_steps[i:i + 1])
            out.update(compiled.report())
    return out


@driver
def drive_attention_mask(attention_mask, prompt_len, max_seq_len):
    """The masks of a prefill, a step, a chunk and the last position; then the mask of each position after the
    prompt, compiled."""
    device = torch.get_default_device()  # the device the call runs on: the mask's only input is its positions
    out = {name: attention_mask(positions(start, end, device), max_seq_len)
           for name, start, end in (("prefill", 0, prompt_len), ("step", prompt_len, prompt_len + 1),
                                    ("chunk", prompt_len + 1, max_seq_len - 1), ("last", max_seq_len - 1, max_seq_len))}
    with counting_compile() as compiled:
        mask = torch.compile(compilable(attention_mask))
        for pos in range(prompt_len, max_seq_len):
            mask(positions(pos, pos + 1, device), max_seq_len)
        out.update(compiled.report())
    return out


@driver
def drive_static_forward(forward, tokens, weights, args, chunks, max_seq_len):
    """forward over tokens in chunks at their positions, through one stale cache of max_seq_len positions and the
    reference's RoPE tables: every 251st column of each chunk's logits, and how many RoPE tables forward built."""
    cache, rope = cache_and_tables(weights, args, max_seq_len)
    out = {}
    with impls.spy(forward, ROPE_BUILDERS[0]) as built, impls.spy(forward, ROPE_BUILDERS[1]) as built_too:
        for name, start, end in chunks_of(chunks):
            logits = forward(tokens[start:end], positions(start, end, tokens.device), weights, args, cache, rope)
            out[name] = sampled(logits, f"{forward.__name__} ({name})")["columns"]
    out["rope_tables_built"] = len(built) + len(built_too)
    return out


def step_outputs(result, i: int) -> tuple[torch.Tensor, torch.Tensor]:
    """decode_step's (token, logits), checked: tensors, the token one integer, the logits one row."""
    if not (isinstance(result, (tuple, list)) and len(result) == 2):
        raise GradeFailure(say("ex18.step_not_a_pair", step=i, kind=type(result).__name__))
    token, logits = result
    if not (isinstance(token, torch.Tensor) and token.numel() == 1 and not token.is_floating_point()):
        what = (f"a {token.dtype} tensor {list(token.shape)}" if isinstance(token, torch.Tensor)
                else type(token).__name__)
        raise GradeFailure(say("ex18.token_not_a_tensor", step=i, what=what))
    if not (isinstance(logits, torch.Tensor) and logits.dim() == 1):
        what = f"a tensor {list(logits.shape)}" if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise GradeFailure(say("ex18.step_logits", step=i, what=what))
    return token.reshape(1).clone(), logits.clone()


@driver
def drive_decode_steps(decode_step, prompt_ids, weights, args, steps):
    """The reference's prefill into a stale cache of exactly len(prompt_ids) + steps positions, then steps calls of
    decode_step compiled, each fed the token the last one chose: what generation compares of them, what dynamo did,
    and how many RoPE tables the steps built."""
    max_seq_len = len(prompt_ids) + steps
    cache, rope = cache_and_tables(weights, args, max_seq_len)
    device = weights["tok_embeddings.weight"].device
    input_pos = positions(0, len(prompt_ids), device)
    tokens = torch.tensor(prompt_ids, device=device)  # [seq]
    logits = forward(tokens, input_pos, weights, args, cache, rope)[-1]  # [vocab_size]
    token, input_pos = logits.argmax(-1, keepdim=True), input_pos[-1:] + 1  # [1], [1]
    chosen = []
    with (counting_compile() as compiled, impls.spy(decode_step, ROPE_BUILDERS[0]) as built,
          impls.spy(decode_step, ROPE_BUILDERS[1]) as built_too):
        step = torch.compile(compilable(decode_step))
        for i in range(steps):
            token, logits = step_outputs(step(token, input_pos, weights, args, cache, rope), i)
            chosen.append((token, logits))
            input_pos += 1
        report = compiled.report()
    tokens = torch.cat([t for t, _ in chosen]).tolist()
    return {**generation(list(zip(tokens, [x for _, x in chosen])), decode_step.__name__, ()), **report,
            "rope_tables_built": len(built) + len(built_too)}


def _probe(token, input_pos):
    return token


@driver
def drive_compile_step(compile_step, devices):
    """The options compile_step passes to torch.compile for each device (nothing is compiled): whether it compiles the
    step once and returns what torch.compile gave, whether whole (fullgraph), and on a GPU whether with CUDA graphs."""
    out = {}
    for device in devices:
        with counting_compile(count=False) as compiled:
            returned = compile_step(_probe, device)
        options = compiled.asked[0] if compiled.asked else {}
        said = {"torch_compile_calls": len(compiled.asked), "returns_the_compiled_step": returned in compiled.made,
                "fullgraph": bool(options.get("fullgraph", False))}
        if device == "cuda":
            said["cuda_graphs"] = uses_cuda_graphs(options)
        out[device] = said
    return out


def uses_cuda_graphs(options: dict) -> bool:
    """Whether torch.compile's options record CUDA graphs: mode reduce-overhead or max-autotune, or the inductor
    option triton.cudagraphs."""
    return (options.get("mode") in ("reduce-overhead", "max-autotune")
            or bool((options.get("options") or {}).get("triton.cudagraphs", False)))


@driver
def drive_static_generate(generate, prompt_ids, weights, args, max_new_tokens, stop_tokens, counted, max_seq_len=None):
    """generate run with torch.compile counting (counted) or giving the function back to run eagerly: what generation
    compares of its (token, logits) pairs, the RoPE tables built once the first compiled call began, and (counted)
    what dynamo did and whether the decode steps ran compiled."""
    extra = {} if max_seq_len is None else {"max_seq_len": max_seq_len}
    with (counting_compile(counted) as compiled, impls.spy(generate, ROPE_BUILDERS[0]) as built,
          impls.spy(generate, ROPE_BUILDERS[1]) as built_too):
        before = []
        compiled.at_first_call = lambda: before.append(len(built) + len(built_too))
        steps = list(generate(prompt_ids, weights, args, max_new_tokens, stop_tokens, **extra))
        report = compiled.report() if counted else {}
    out = generation(steps, generate.__name__, stop_tokens)
    out["rope_tables_built_while_decoding"] = len(built) + len(built_too) - before[0] if before else 0
    if counted:
        out.update(report, decode_steps_compiled=compiled.calls >= max_new_tokens - 1)
    return out


@spec.mistake("StaticCache", "static_cache_sliced_to_end",
              en="update returns the buffers sliced to [:end]: their shape changes at every token, so the compiled "
                 "step is traced again (and end needs the position on the host); return the whole buffers "
                 "[max_seq_len, n_kv_heads, head_dim] and let the mask hide what is not written yet",
              zh="update 返回了切到 [:end] 的缓冲区：它的形状每个 token 都在变，编译好的步骤只好重新追踪（而且 end "
                 "需要把位置读回主机）；应返回整个缓冲区 [max_seq_len, n_kv_heads, head_dim]，让掩码遮住还没写入的位置")
class StaticCacheSlicedToEnd(StaticCache):
    def update(self, layer_id, input_pos, k, v):
        self.cache_k[layer_id].index_copy_(0, input_pos, k)
        self.cache_v[layer_id].index_copy_(0, input_pos, v)
        end = int(input_pos[-1]) + 1
        return self.cache_k[layer_id][:end], self.cache_v[layer_id][:end]


@spec.mistake("attention_mask", "mask_from_a_python_int",
              en="the mask is built from a Python int (int(input_pos[0]) or .item()): that reads the position back to "
                 "the host, a graph break and a recompile at every position; compare torch.arange(max_seq_len) with "
                 "input_pos[:, None], all on the device",
              zh="掩码是用 Python int 构造的（int(input_pos[0]) 或 .item()）：这要把位置读回主机，造成图中断，"
                 "每个位置都重新编译；应在设备上用 torch.arange(max_seq_len) 与 input_pos[:, None] 比较")
def attention_mask_from_int(input_pos, max_seq_len):
    start, seqlen = int(input_pos[0]), input_pos.shape[0]
    mask = ex07_attention.causal_mask(seqlen, start, device=input_pos.device)  # [seq, start + seq]
    hidden = torch.full((seqlen, max_seq_len - start - seqlen), float("-inf"), device=input_pos.device)
    return torch.cat([mask, hidden], dim=1)


@spec.mistake("apply_rotary", "rotary_on_halves",
              en="the pairs rotated are (k, k + head_dim/2), the two halves of the head, as Hugging Face's rotate_half "
                 "does: Meta's checkpoints pair adjacent dimensions (2k, 2k+1), as in exercise 6",
              zh="旋转的配对是 (k, k + head_dim/2)，即头的前后两半（Hugging Face 的 rotate_half 就是这样）：Meta "
                 "的检查点把相邻维度 (2k, 2k+1) 配成一对，和练习 6 一样")
def apply_rotary_on_halves(x, cos, sin):
    first, second = x.float().chunk(2, dim=-1)
    cos, sin = cos[:, None, :], sin[:, None, :]
    return torch.cat([first * cos - second * sin, first * sin + second * cos], dim=-1).type_as(x)


@spec.mistake("forward", "rope_tables_rebuilt",
              en="forward builds RoPE tables on every call: make them once for the cache's length (rope_tables, in "
                 "generate) and index the rows with input_pos; rebuilding costs work at every token and puts "
                 "position-dependent arithmetic into the compiled step",
              zh="forward 每次调用都重新构造 RoPE 表：应按缓存长度只构造一次（在 generate 里调用 rope_tables），再用 "
                 "input_pos 取出对应的行；每次重建都让每个 token 多做一份工作，还把依赖位置的计算带进编译后的步骤")
def forward_rebuilding_rope(tokens, input_pos, weights, args, cache, rope):
    rope = rope_tables(args.head_dim, rope[0].shape[0], args.rope_theta, args.rope_scale_factor,
                       device=tokens.device)
    return forward(tokens, input_pos, weights, args, cache, rope)


@spec.mistake("decode_step", "item_in_the_step",
              en="the step takes the next token to the host (int(...) or .item()) and back with torch.tensor: a host "
                 "sync at every token, and a graph break that splits the compiled step; return "
                 "logits.argmax(-1, keepdim=True), a tensor that stays on the device",
              zh="这一步把下一个 token 读回主机（int(...) 或 .item()），再用 torch.tensor 送回去：每个 token "
                 "都同步一次主机，还造成图中断，把编译的步骤切开；应返回 logits.argmax(-1, keepdim=True)，"
                 "一个留在设备上的张量")
def decode_step_with_item(token, input_pos, weights, args, cache, rope):
    logits = forward(token, input_pos, weights, args, cache, rope)[-1]
    return torch.tensor([int(logits.argmax())], device=logits.device), logits


@spec.mistake("compile_step", "compiled_without_fullgraph",
              en="torch.compile is called without fullgraph=True: a graph break would then split the step silently "
                 "into pieces run between Python, and CUDA graphs could not capture it whole; fullgraph=True makes a "
                 "break an error that names its line",
              zh="调用 torch.compile 时没有 fullgraph=True：这样一旦有图中断，步骤会被悄悄切成几段、中间回到 Python "
                 "执行，CUDA graphs 也无法整体捕获；fullgraph=True 会把图中断变成报错，并指出是哪一行")
def compile_step_without_fullgraph(step, device):
    if torch.device(device).type == "cuda":
        return torch.compile(step, mode="reduce-overhead")
    return torch.compile(step)


@spec.mistake("compile_step", "no_cuda_graphs",
              en="on CUDA the step is compiled in the default mode: the kernels are fused, but each token still "
                 "launches every one of them from Python; mode=\"reduce-overhead\" captures the step in a CUDA graph "
                 "and replays it with one launch",
              zh="在 CUDA 上用默认模式编译了这一步：内核融合了，但每个 token 仍要从 Python 逐个启动它们；"
                 "mode=\"reduce-overhead\" 会把这一步捕获成 CUDA graph，每次只需一次启动就能重放")
def compile_step_without_cuda_graphs(step, device):
    return torch.compile(step, fullgraph=True)


@spec.mistake("generate", "position_as_a_python_int",
              en="the compiled step takes the position as a Python int: torch.compile treats an int argument as a "
                 "constant, so every new position compiles the step again; keep input_pos a tensor on the device "
                 "and advance it in place (input_pos += 1)",
              zh="编译后的步骤以 Python int 接收位置：torch.compile 把 int 参数当作常量，"
                 "于是每个新位置都要重新编译这一步；应让 input_pos 保持为设备上的张量，并原地推进（input_pos += 1）")
def generate_with_int_positions(prompt_ids, weights, args, max_new_tokens, stop_tokens=(), max_seq_len=None):
    if max_new_tokens < 1:
        return []
    device, dtype = weights["tok_embeddings.weight"].device, weights["tok_embeddings.weight"].dtype
    max_seq_len = max_seq_len or len(prompt_ids) + max_new_tokens
    cache = StaticCache(args.n_layers, max_seq_len, args.n_kv_heads, args.head_dim, dtype, device=device)
    rope = rope_tables(args.head_dim, max_seq_len, args.rope_theta, args.rope_scale_factor, device=device)

    def step_at(token, pos: int):
        return decode_step(token, torch.tensor([pos], device=device), weights, args, cache, rope)

    step = compile_step(step_at, device)
    logits = forward(torch.tensor(prompt_ids, device=device), torch.arange(len(prompt_ids), device=device), weights,
                     args, cache, rope)[-1]
    token = logits.argmax(-1, keepdim=True)
    tokens, all_logits = [token], [logits]
    for pos in range(len(prompt_ids), len(prompt_ids) + max_new_tokens - 1):
        token, logits = step(token, pos)
        tokens.append(token.clone())
        all_logits.append(logits.clone())
    out = []
    for token, logits in zip(torch.cat(tokens).tolist(), all_logits):
        if token in stop_tokens:
            break
        out.append((token, logits))
    return out
