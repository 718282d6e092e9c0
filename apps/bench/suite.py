"""`soundstorm bench`: every speed claim of the project, measured in one run on one machine.

Sections (each a table; medians of `repeats` timed calls after an untimed one):

- end_to_end: seconds of audio per second of compute through the client library
  (embedded SavedModel + Lyra decoding), long lengths in windows;
- savedmodel_vs_jax: the exported serving_default against the JAX `decode` of the
  same parameters on the same request, with each one's achieved FLOP/s (XLA's cost
  analysis of the forward pass x passes) against the measured matmul peak;
- compute_dtype: bfloat16 against float32 compute (JAX, same parameters): time and
  generated tokens that agree;
- heap: the JAX decode with glibc's malloc settings against freed memory retained
  (apps/heap.py), each in a fresh process: time and page faults;
- autoregressive: our decoder against an autoregressive one of the same size
  (soundstorm/autoregressive.py): forward passes and wall time as ratios;
- peer: lucidrains' soundstorm-pytorch at the same shape and schedule;
- grpc: the client over gRPC to our model server against the embedded client;
- batching: requests/s of 1, 4 and 16 concurrent clients, without and with TF
  Serving-style batching.

Speed does not depend on parameter values, so the autoregressive model and the
peer are freshly initialised; ours is the exported model's own parameters.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Callable

import numpy as np

from soundstorm.apps.bench.measure import (alternating_medians, concurrent_throughput, decode_flops,
                                      machine, matmul_peak_flops, median_seconds)
from soundstorm.apps.bench.config import BATCHING, SECTIONS, VOICE_SPEAKER, VOICE_TEXT, BenchConfig
from soundstorm.apps.heap import freed_memory_retained

@dataclasses.dataclass
class Table:
    name: str
    title: str
    columns: list[str]
    rows: list[list[str]] = dataclasses.field(default_factory=list)
    note: str = ""
    values: list[dict] = dataclasses.field(default_factory=list)  # the numbers, for bench.json

    def markdown(self) -> str:
        lines = [f"### {self.title}", ""]
        if self.note:
            lines += [self.note, ""]
        if self.rows:
            lines += ["| " + " | ".join(self.columns) + " |",
                      "|" + "---|" * len(self.columns)]
            lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        return "\n".join(lines) + "\n"


def jax_decoder(config, params, request: dict[str, np.ndarray],
                schedule: tuple[int, ...]) -> Callable[[], np.ndarray]:
    """A call of jitted `decode` on a serving_default request (`_Context.request`); returns
    the acoustic tokens [B, T, Q] int32."""
    import jax
    from soundstorm.export.signatures import GENERATE_INPUTS
    from soundstorm.decoding import DecodingConfig, check_decode_inputs, decode
    checked = check_decode_inputs(config, *(request[k] for k in GENERATE_INPUTS))
    decoding = DecodingConfig(level_schedule=tuple(schedule))
    return lambda: np.asarray(jax.block_until_ready(
        decode(params, *checked, config=config, decoding=decoding)))


class _Context:
    """What the sections share: the model, its JAX twin, one request per length, cached timings."""

    def __init__(self, model_dir: Path, voice, config: BenchConfig, log: Callable[[str], None]):
        from soundstorm.export.reload import load_jax_model
        from soundstorm.runtime.client import Client
        from soundstorm.runtime.savedmodel.layout import find_version_dir
        self.bench, self.log = config, log
        self.version_dir = find_version_dir(Path(model_dir))
        self.client = Client.embedded(self.version_dir)
        self.voice = (self.client.voice_prompt(voice) if voice is not None
                      else _default_voice(self.client))
        self.model_config, self.params = load_jax_model(self.version_dir)
        self.schedule = tuple(next(s.level_schedule for s in self.client.contract.signatures
                                   if s.name == "serving_default"))
        self.jax_seconds: dict[float, float] = {}
        self._server = None

    def frames(self, seconds: float) -> int:
        """Frames of `seconds`, a whole number of semantic tokens."""
        per_token = self.model_config.frames_per_semantic_token
        return round(seconds * self.model_config.frame_rate_hz / per_token) * per_token

    def request(self, seconds: float, seed: int = 0) -> dict[str, np.ndarray]:
        """A batch-1 serving_default request: random tokens (cost does not depend on them)."""
        c, rng = self.model_config, np.random.default_rng(seed)
        frames, prompt = self.frames(seconds), self.frames(self.bench.prompt_seconds)
        semantic_shape = (1, frames // c.frames_per_semantic_token)
        return {"semantic_tokens": rng.integers(0, c.semantic_vocab_size, semantic_shape, np.int32),
                "prompt_tokens": rng.integers(0, c.codebook_size, (1, prompt, c.num_levels),
                                              np.int32),
                "prompt_lengths": np.array([prompt], np.int32),
                "lengths": np.array([frames], np.int32), "seeds": np.array([seed], np.int32),
                "temperature": np.ones(1, np.float32),
                "choice_temperature": np.full(1, 4.5, np.float32)}

    def run_jax(self, seconds: float, compute_dtype: str | None = None) -> Callable[[], np.ndarray]:
        """Jitted `decode` of the request of `seconds`, in the model's compute dtype or this one."""
        config = self.model_config.replace(compute_dtype=compute_dtype or
                                           self.model_config.compute_dtype)
        return jax_decoder(config, self.params, self.request(seconds), self.schedule)

    def jax_time(self, seconds: float) -> float:
        if seconds not in self.jax_seconds:
            self.jax_seconds[seconds] = median_seconds(self.run_jax(seconds), self.bench.repeats)
        return self.jax_seconds[seconds]

    def server(self):
        """Our model server on this model, no batching, on a free port (started once)."""
        if self._server is None:
            self._server = _start_server(self.version_dir, batching=None)
        return self._server

    def close(self) -> None:
        if self._server is not None:
            self._server.stop(1)


def _default_voice(client):
    from soundstorm.runtime.frontend import get_speaker, synthesize
    utterance = synthesize(VOICE_TEXT, get_speaker(VOICE_SPEAKER))
    return client.voice_prompt(utterance.waveform, sample_rate=utterance.sample_rate,
                               transcript=VOICE_TEXT)


def _start_server(version_dir: Path, batching):
    from soundstorm.runtime.serving.batching import BatchingOptions
    from soundstorm.runtime.serving.server import ModelServer, ServerOptions, single_model_config
    config = single_model_config(version_dir.parent.name, version_dir.parent)
    options = ServerOptions(host="127.0.0.1", port=0, poll_seconds=0,
                            batching=BatchingOptions(**batching) if batching else None)
    return ModelServer(config, options, log=lambda message: None).start()


def _grpc_client(ctx: _Context, server):
    from soundstorm.runtime.client import Client
    return Client(f"127.0.0.1:{server.grpc_port}", ctx.version_dir.parent.name)


def end_to_end(ctx: _Context) -> Table:
    from soundstorm.apps.bench.client_timing import measure
    count, warm_up_s = ctx.client.backend.warm_up()
    table = Table("end_to_end", "Seconds of audio per second of compute (client, embedded)",
                  ["audio s", "windows", "total s", "model s", "codec s", "first audio s",
                   "audio s / s"],
                  note=f"Semantic tokens of a fixed passage, "
                       f"{ctx.voice.frames / ctx.client.frame_rate_hz:g} s "
                       f"voice prompt, batch 1, streaming; the model's warm-up ({count} records, "
                       f"{warm_up_s:.1f} s) replayed first, as a server does at load. Windows "
                       f"of at "
                       f"most {ctx.client.max_frames / ctx.client.frame_rate_hz:g} s.")
    for seconds in ctx.bench.seconds:
        ctx.log(f"end to end: {seconds:g} s")
        rows = sorted((measure(ctx.client, ctx.voice, seconds) for _ in range(ctx.bench.repeats)),
                      key=lambda row: row.total_s)
        row = rows[len(rows) // 2]
        table.rows.append([f"{row.audio_s:.1f}", str(row.windows), f"{row.total_s:.2f}",
                           f"{row.timings.model_s:.2f}", f"{row.timings.codec_s:.2f}",
                           f"{row.first_audio_s:.2f}", f"{row.audio_s / row.total_s:.2f}"])
        table.values.append({"audio_s": row.audio_s, "windows": row.windows,
                             "total_s": row.total_s, "model_s": row.timings.model_s,
                             "codec_s": row.timings.codec_s, "first_audio_s": row.first_audio_s,
                             "audio_s_per_s": row.audio_s / row.total_s})
    return table


def savedmodel_vs_jax(ctx: _Context) -> Table:
    import tensorflow as tf
    from soundstorm.decoding import DecodingConfig
    peak, peak_size = matmul_peak_flops()
    decoding = DecodingConfig(level_schedule=ctx.schedule)
    serving = tf.saved_model.load(str(ctx.version_dir)).signatures["serving_default"]
    table = Table("savedmodel_vs_jax", "SavedModel against JAX; achieved FLOP/s",
                  ["total s", "passes", "GFLOP", "JAX s", "SavedModel s", "SavedModel / JAX",
                   "tokens equal", "JAX GFLOP/s", "SavedModel GFLOP/s", "% of matmul peak"],
                  note=f"serving_default against jitted `decode` of the same parameters, same "
                       f"request ({ctx.bench.prompt_seconds:g} s prompt included), alternating, "
                       f"batch 1. FLOPs: XLA cost analysis of one forward pass x passes. Matmul "
                       f"peak: {peak / 1e9:.1f} GFLOP/s (best float32 jitted square matmul, "
                       f"{peak_size}x{peak_size}); the % is the SavedModel's.")
    for seconds in ctx.bench.compare_seconds:
        ctx.log(f"SavedModel vs JAX: {seconds:g} s")
        frames = ctx.frames(seconds)
        tensors = {k: tf.constant(v) for k, v in ctx.request(seconds).items()}
        run_tf = lambda: serving(**tensors)["acoustic_tokens"].numpy()
        run_jax = ctx.run_jax(seconds)
        same = np.array_equal(run_tf(), run_jax())  # also the untimed compiling calls
        jax_s, tf_s = alternating_medians([run_jax, run_tf], ctx.bench.repeats)
        ctx.jax_seconds[seconds] = jax_s
        flops = decode_flops(ctx.model_config, ctx.params, frames, decoding)
        table.rows.append([f"{seconds:g}", str(decoding.num_passes), f"{flops / 1e9:.1f}",
                           f"{jax_s:.2f}", f"{tf_s:.2f}", f"{tf_s / jax_s:.3f}",
                           "yes" if same else "NO", f"{flops / jax_s / 1e9:.1f}",
                           f"{flops / tf_s / 1e9:.1f}", f"{100 * flops / tf_s / peak:.0f}"])
        table.values.append({"total_s": seconds, "passes": decoding.num_passes, "flops": flops,
                             "jax_s": jax_s, "savedmodel_s": tf_s, "tokens_equal": same,
                             "matmul_peak_flops": peak})
    return table


def compute_dtype(ctx: _Context) -> Table:
    prompt = ctx.frames(ctx.bench.prompt_seconds)
    table = Table("compute_dtype", "bfloat16 compute against float32 (JAX, this CPU)",
                  ["total s", "float32 s", "bfloat16 s", "bfloat16 / float32 time",
                   "generated tokens equal"],
                  note="The model's own parameters decoded with activations and matmuls in "
                       "float32 and in bfloat16 (logits, softmax and sampling stay float32: "
                       "SoundStormConfig.compute_dtype, `soundstorm export --compute-dtype`), "
                       "same request and seed, alternating, batch 1. The float32 time is the "
                       "one the other sections use.")
    for seconds in ctx.bench.compare_seconds:
        ctx.log(f"bfloat16 vs float32: {seconds:g} s")
        run_f32, run_bf16 = ctx.run_jax(seconds, "float32"), ctx.run_jax(seconds, "bfloat16")
        agree = float((run_f32()[:, prompt:] == run_bf16()[:, prompt:]).mean())  # also compiles
        f32_s, bf16_s = alternating_medians([run_f32, run_bf16], ctx.bench.repeats)
        ctx.jax_seconds.setdefault(seconds, f32_s)
        table.rows.append([f"{seconds:g}", f"{f32_s:.2f}", f"{bf16_s:.2f}", f"{bf16_s / f32_s:.2f}",
                           f"{100 * agree:.1f}%"])
        table.values.append({"total_s": seconds, "float32_s": f32_s, "bfloat16_s": bf16_s,
                             "generated_token_agreement": agree})
    return table


def autoregressive(ctx: _Context) -> Table:
    import jax
    from soundstorm import autoregressive as ar
    c = ctx.model_config
    ar_params = ar.init_params(c, jax.random.key(0))
    prompt_frames = ctx.frames(ctx.bench.prompt_seconds)
    table = Table("autoregressive", "Parallel decoding against autoregressive decoding",
                  ["total s", "SoundStorm passes", "AR passes", "AR / SoundStorm passes",
                   "SoundStorm s", "AR s", "AR / SoundStorm time"],
                  note=f"Same size and width ({c.num_layers} layers x {c.model_dim}), same request "
                       f"({ctx.bench.prompt_seconds:g} s prompt included), JAX, batch 1. The "
                       "autoregressive decoder generates one token per pass (frame-major, all "
                       "levels) with a key-value cache.")
    for seconds in ctx.bench.autoregressive_seconds:
        ctx.log(f"autoregressive: {seconds:g} s")
        inputs = ctx.request(seconds)
        ours = ctx.jax_time(seconds)
        theirs = median_seconds(lambda: jax.block_until_ready(ar.generate(
            ar_params, inputs["semantic_tokens"], inputs["prompt_tokens"], 0, 1.0, config=c,
            prompt_frames=prompt_frames)), ctx.bench.repeats)
        passes = sum(ctx.schedule)
        ar_passes = (ctx.frames(seconds) - prompt_frames) * c.num_levels
        table.rows.append([f"{seconds:g}", str(passes), str(ar_passes),
                           f"{ar_passes / passes:.0f}", f"{ours:.2f}", f"{theirs:.2f}",
                           f"{theirs / ours:.1f}"])
        table.values.append({"total_s": seconds, "passes": passes, "ar_passes": ar_passes,
                             "soundstorm_s": ours, "ar_s": theirs})
    return table


def heap(ctx: _Context) -> Table:
    from soundstorm.apps.bench.heap_timing import compare_heap_settings
    from soundstorm.apps.heap import malloc_tuned_by_environment
    table = Table("heap", "JAX decode: glibc's heap settings against freed memory retained",
                  ["total s", "glibc s", "retained s", "glibc / retained", "page faults glibc",
                   "page faults retained", "tokens equal"],
                  note="apps/heap.py: `decode` in two fresh processes, one with glibc's own "
                       "malloc settings, one with every block served from the heap and freed "
                       "memory kept (what the `soundstorm` command applies at start), timed "
                       "alternately; minor page faults per decode. Batch 1, same request.")
    if malloc_tuned_by_environment():
        table.note = "skipped: this process's environment sets malloc's parameters"
        return table
    for seconds in ctx.bench.compare_seconds:
        ctx.log(f"heap settings: {seconds:g} s")
        figures = compare_heap_settings(ctx.version_dir, ctx.request(seconds), ctx.schedule,
                                        ctx.bench.repeats)
        table.rows.append([f"{seconds:g}", f"{figures['default_s']:.2f}",
                           f"{figures['retained_s']:.2f}",
                           f"{figures['default_s'] / figures['retained_s']:.2f}",
                           f"{figures['default_faults']:,.0f}",
                           f"{figures['retained_faults']:,.0f}",
                           "yes" if figures["tokens_equal"] else "NO"])
        table.values.append({"total_s": seconds, **figures})
    return table


def peer(ctx: _Context) -> Table:
    from soundstorm.apps.bench.peer import (PEER_VERSION, PeerMissing, build_peer, forward_passes,
                                       peer_generate)
    c = ctx.model_config
    table = Table("peer", "Against the peer: lucidrains' soundstorm-pytorch",
                  ["total s", "our passes", "peer passes", "ours s", "peer s", "peer / ours"])
    try:
        import torch
        model = build_peer(c, ctx.schedule[0])
    except (PeerMissing, ImportError) as error:
        table.note = f"skipped: {error}"
        return table
    parameters = sum(p.numel() for p in model.parameters())
    table.note = (f"soundstorm-pytorch {PEER_VERSION} on torch {torch.__version__} "
                  f"({torch.get_num_threads()} threads, {parameters / 1e6:.1f}M parameters) at our "
                  f"width, depth, heads, feed-forward, levels, codebook and kernel, "
                  f"{ctx.schedule[0]} "
                  "iterations for level 1 and one greedy pass per finer level, like ours (its "
                  "passes counted with a forward hook); "
                  "ours: JAX. Same request, batch 1, the two timed alternately.")
    for seconds in ctx.bench.peer_seconds:
        ctx.log(f"peer: {seconds:g} s")
        inputs = ctx.request(seconds)
        run_ours = ctx.run_jax(seconds)
        run_ours()  # compiled before the timing
        run = lambda: peer_generate(model, inputs["semantic_tokens"], inputs["prompt_tokens"],
                                    ctx.frames(seconds))
        peer_passes = forward_passes(model, run)  # also the untimed first call
        # Alternating, as every comparison here: noise falls on both alike.
        ours, theirs = alternating_medians([run_ours, run], ctx.bench.repeats)
        table.rows.append([f"{seconds:g}", str(sum(ctx.schedule)), str(peer_passes),
                           f"{ours:.2f}", f"{theirs:.2f}", f"{theirs / ours:.1f}"])
        table.values.append({"total_s": seconds, "passes": sum(ctx.schedule),
                             "peer_passes": peer_passes, "ours_s": ours, "peer_s": theirs})
    return table


def grpc(ctx: _Context) -> Table:
    from soundstorm.apps.passage import semantic_of_seconds
    ctx.log("gRPC vs embedded")
    remote = _grpc_client(ctx, ctx.server())
    semantic = semantic_of_seconds(ctx.client, ctx.bench.request_seconds)
    embedded_run = lambda: ctx.client.synthesize(voice=ctx.voice, semantic_tokens=semantic).waveform
    remote_run = lambda: remote.synthesize(voice=ctx.voice, semantic_tokens=semantic).waveform
    same = np.array_equal(embedded_run(), remote_run())
    embedded_s, remote_s = alternating_medians([embedded_run, remote_run], ctx.bench.repeats)
    remote.close()
    table = Table("grpc", "gRPC against embedded",
                  ["audio s", "embedded s", "gRPC s", "gRPC / embedded", "same audio"],
                  note="Client.synthesize (prompt assembly, model, Lyra decoding) in-process "
                       "against the same client over gRPC to our model server on localhost "
                       "(server and client share the machine), alternating.")
    table.rows.append([f"{ctx.bench.request_seconds:g}", f"{embedded_s:.2f}", f"{remote_s:.2f}",
                       f"{remote_s / embedded_s:.3f}", "yes" if same else "NO"])
    table.values.append({"audio_s": ctx.bench.request_seconds, "embedded_s": embedded_s,
                         "grpc_s": remote_s, "same_audio": same})
    return table


def _throughput(ctx: _Context, server, clients: int, rounds: int) -> float:
    """Requests/s of `clients` threads, each sending requests back to back over gRPC."""
    from soundstorm.runtime.client.backends import GrpcBackend
    backend = GrpcBackend(f"127.0.0.1:{server.grpc_port}", ctx.version_dir.parent.name)
    requests = [ctx.request(ctx.bench.request_seconds, seed) for seed in range(clients)]
    try:
        return concurrent_throughput(lambda i: backend.generate(requests[i]), clients,
                                     per_client=max(1, 8 // clients), rounds=rounds)
    finally:
        backend.close()


def batching(ctx: _Context) -> Table:
    rounds = max(1, ctx.bench.repeats - 1)
    plain = {}
    for clients in ctx.bench.clients:
        ctx.log(f"throughput, no batching: {clients} clients")
        plain[clients] = _throughput(ctx, ctx.server(), clients, rounds)
    batched_server = _start_server(ctx.version_dir, BATCHING)
    batched = {}
    try:
        for clients in ctx.bench.clients:
            ctx.log(f"throughput, batching: {clients} clients")
            batched[clients] = _throughput(ctx, batched_server, clients, rounds)
    finally:
        batched_server.stop(1)
    seconds = ctx.bench.request_seconds
    generated = seconds - ctx.bench.prompt_seconds  # audio seconds each request produces
    table = Table("batching", "Batch throughput (model server, gRPC)",
                  ["clients", "no batching req/s", "batching req/s", "batching / none",
                   "generated audio s / s (batching)"],
                  note=f"{seconds:g} s requests ({ctx.bench.prompt_seconds:g} s prompt included) "
                       f"from concurrent client threads, back to back; batching: max "
                       f"{BATCHING['max_batch_size']}, sizes "
                       f"{list(BATCHING['allowed_batch_sizes'])}, "
                       f"{BATCHING['batch_timeout_micros'] // 1000} ms timeout. Server and "
                       "clients share the machine.")
    for clients in ctx.bench.clients:
        table.rows.append([str(clients), f"{plain[clients]:.2f}", f"{batched[clients]:.2f}",
                           f"{batched[clients] / plain[clients]:.2f}",
                           f"{batched[clients] * generated:.2f}"])
        table.values.append({"clients": clients, "no_batching_rps": plain[clients],
                             "batching_rps": batched[clients]})
    return table


_RUNNERS = {"end_to_end": end_to_end, "savedmodel_vs_jax": savedmodel_vs_jax,
            "compute_dtype": compute_dtype,
            "heap": heap, "autoregressive": autoregressive, "peer": peer, "grpc": grpc,
            "batching": batching}


def run_bench(model_dir: Path, config: BenchConfig = BenchConfig(), voice=None,
              out_dir: Path | None = None, log: Callable[[str], None] = print) -> list[Table]:
    """Runs the sections in order; prints each table as it completes; writes the report.

    `voice`: the voice prompt's audio file (default: an espeak-ng sentence).
    """
    ctx = _Context(model_dir, voice, config, log)
    heap = ("freed memory retained (apps/heap.py)" if freed_memory_retained()
            else "glibc's own malloc settings")
    header = (f"Machine: {machine()}. Model: {ctx.version_dir} "
              f"({ctx.model_config.num_layers} layers x {ctx.model_config.model_dim}, "
              f"{ctx.model_config.num_levels} levels, schedule {list(ctx.schedule)}). "
              f"Medians of {config.repeats}. Heap of this process: {heap}.")
    log(header)
    tables = []
    try:
        for name in config.sections:
            table = _RUNNERS[name](ctx)
            tables.append(table)
            log(table.markdown())
    finally:
        ctx.close()
    if out_dir is not None:
        write_report(Path(out_dir), header, config, tables)
    return tables


def write_report(out_dir: Path, header: str, config: BenchConfig, tables: list[Table]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    body = "\n".join(table.markdown() for table in tables)
    (out_dir / "report.md").write_text(f"# Benchmarks\n\n{header}\n\n{body}")
    (out_dir / "bench.json").write_text(json.dumps(
        {"header": header, "config": dataclasses.asdict(config),
         "tables": {table.name: table.values for table in tables}}, indent=1, default=str) + "\n")
